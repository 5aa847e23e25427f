import { describe, expect, test } from "vitest";
import {
  CpuVerdict,
  DmaVerdict,
  dmaVerdictName,
  PgLevel,
  Rmp,
  RmpPageSize,
  rmpMakePrivate,
  rmpMakeShared,
  VERDICT_HAZARDS,
} from "../index.js";

const K4 = 4096;
const M2 = 2 ** 21;
const BASE = 8 * 2 ** 30;
const GPA = 2 ** 30;
const ASID = 9;

function vm(opts = {}): Rmp {
  const rmp = new Rmp({ hostBytes: 64 * 2 ** 30, ...opts });
  for (let r = 0; r < 4; r++) {
    expect(
      rmpMakePrivate(rmp, (BASE + r * M2) / K4, GPA + r * M2, PgLevel.PG_LEVEL_2M, ASID, false),
    ).toBe(0);
    expect(
      rmp.pvalidate(BASE + r * M2, {
        asid: ASID,
        gpa: GPA + r * M2,
        pageSize: RmpPageSize.SIZE_2M,
        validate: true,
      }),
    ).toBe(0);
  }
  return rmp;
}

describe("trusted (T=1) DMA: the size-class rule", () => {
  const cases: [string, (r: Rmp) => void, number, number, DmaVerdict, string][] = [
    ["2M leaf over a 2M entry", () => {}, 21, 0, DmaVerdict.ALLOWED, ""],
    ["1G leaf over a 2M entry (checked as 2M)", () => {}, 30, 0, DmaVerdict.ALLOWED, ""],
    ["4M AMD leaf over two 2M entries", () => {}, 22, M2 + 5 * K4, DmaVerdict.ALLOWED, ""],
    ["4K leaf over a 2M entry", () => {}, 12, 0, DmaVerdict.LEAF_SMALLER_THAN_RMP, "H2"],
    [
      "1M AMD leaf over a 2M entry (checked as 4K)",
      () => {},
      20,
      0,
      DmaVerdict.LEAF_SMALLER_THAN_RMP,
      "H3",
    ],
    [
      "2M leaf after PSMASH (RMP first)",
      (r) => expect(r.psmash(BASE)).toBe(0),
      21,
      7 * K4,
      DmaVerdict.LEAF_LARGER_THAN_RMP,
      "H1",
    ],
    [
      "4K leaf after PSMASH",
      (r) => expect(r.psmash(BASE)).toBe(0),
      12,
      7 * K4,
      DmaVerdict.ALLOWED,
      "",
    ],
    [
      "4K leaf to the page that went shared",
      (r) => {
        expect(r.psmash(BASE)).toBe(0);
        expect(rmpMakeShared(r, BASE / K4 + 7, PgLevel.PG_LEVEL_4K)).toBe(0);
      },
      12,
      7 * K4,
      DmaVerdict.NOT_ASSIGNED,
      "H16",
    ],
  ];
  for (const [name, setup, leaf, off, verdict, hazard] of cases) {
    test(`${name} → ${dmaVerdictName(verdict)}`, () => {
      const rmp = vm();
      setup(rmp);
      expect(rmp.checkDmaTrusted(BASE + off + 0x40, leaf, ASID, GPA + off + 0x40)).toBe(verdict);
      if (hazard) expect(VERDICT_HAZARDS[verdict]).toContain(hazard);
    });
  }

  test("another guest's device: WRONG_ASID (H20); a remapped IOVA: WRONG_GPA (H19, H9)", () => {
    const rmp = vm();
    expect(rmp.checkDmaTrusted(BASE, 21, ASID + 1, GPA)).toBe(DmaVerdict.WRONG_ASID);
    expect(rmp.checkDmaTrusted(BASE, 21, ASID, GPA + M2)).toBe(DmaVerdict.WRONG_GPA);
    expect(rmp.checkDmaTrusted(64 * 2 ** 30, 12, ASID, 0)).toBe(DmaVerdict.NOT_COVERED);
  });

  test("trustedDmaRequiresValidated: an unvalidated page refuses T=1 DMA only with the switch on", () => {
    for (const req of [false, true]) {
      const rmp = new Rmp({ hostBytes: 64 * 2 ** 30, trustedDmaRequiresValidated: req });
      expect(rmpMakePrivate(rmp, BASE / K4, GPA, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
      expect(rmp.checkDmaTrusted(BASE, 21, ASID, GPA)).toBe(
        req ? DmaVerdict.NOT_VALIDATED : DmaVerdict.ALLOWED,
      );
    }
  });
});

describe("untrusted (T=0) DMA", () => {
  test("a private page refuses; a shared neighbour through a 2M leaf refuses with the whole-region rule", () => {
    const rmp = vm();
    expect(rmp.checkDmaUntrusted(BASE, 12)).toBe(DmaVerdict.ASSIGNED_TO_GUEST);
    expect(rmp.psmash(BASE)).toBe(0);
    expect(rmpMakeShared(rmp, BASE / K4 + 3, PgLevel.PG_LEVEL_4K)).toBe(0);
    expect(rmp.checkDmaUntrusted(BASE + 3 * K4, 12)).toBe(DmaVerdict.ALLOWED);
    expect(rmp.checkDmaUntrusted(BASE + 3 * K4, 21)).toBe(DmaVerdict.ASSIGNED_IN_REGION);
    expect(VERDICT_HAZARDS[DmaVerdict.ASSIGNED_IN_REGION]).toContain("H15");
    const relaxed = vm({ untrustedLargeLeafChecksWholeRegion: false });
    expect(relaxed.psmash(BASE)).toBe(0);
    expect(rmpMakeShared(relaxed, BASE / K4 + 3, PgLevel.PG_LEVEL_4K)).toBe(0);
    expect(relaxed.checkDmaUntrusted(BASE + 3 * K4, 21)).toBe(DmaVerdict.ALLOWED);
    expect(rmp.checkDmaUntrusted(32 * 2 ** 30, 30)).toBe(DmaVerdict.ALLOWED);
  });
});

describe("CPU accesses", () => {
  test("guest private access through NPT: RMP, SIZEM, validated", () => {
    const rmp = vm();
    expect(rmp.checkCpuAccess(BASE + K4, GPA + K4, ASID, 21)).toBe(CpuVerdict.ALLOWED);
    expect(rmp.checkCpuAccess(BASE + K4, GPA + K4, ASID, 12)).toBe(CpuVerdict.ALLOWED);
    expect(rmp.psmash(BASE)).toBe(0);
    expect(rmp.checkCpuAccess(BASE + K4, GPA + K4, ASID, 21)).toBe(CpuVerdict.NPF_RMP_SIZEM);
    expect(rmp.checkCpuAccess(BASE + K4, GPA + K4, ASID + 1, 12)).toBe(CpuVerdict.NPF_RMP);
    expect(
      rmp.pvalidate(BASE + K4, { asid: ASID, gpa: GPA + K4, pageSize: 0, validate: false }),
    ).toBe(0);
    expect(rmp.checkCpuAccess(BASE + K4, GPA + K4, ASID, 12)).toBe(CpuVerdict.VC_NOT_VALIDATED);
  });

  test("host writes: an assigned page, or a 2M direct-map page over one, faults until adjust_direct_map (H13)", () => {
    const rmp = new Rmp({ hostBytes: 64 * 2 ** 30 });
    // Assign one 4K page with the raw instruction: no direct-map split.
    expect(
      rmp.rmpupdate(BASE + K4, {
        assigned: true,
        pageSize: 0,
        immutable: false,
        asid: ASID,
        gpa: GPA,
      }),
    ).toBe(0);
    expect(rmp.checkHostWrite(BASE + K4)).toBe(CpuVerdict.HOST_RMP_PF);
    expect(rmp.checkHostWrite(BASE + 2 * K4)).toBe(CpuVerdict.HOST_RMP_PF);
    // The kernel's helper splits the direct map first.
    expect(rmpMakePrivate(rmp, BASE / K4 + 3, GPA + 3 * K4, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(
      0,
    );
    expect(rmp.checkHostWrite(BASE + 2 * K4)).toBe(CpuVerdict.ALLOWED);
    expect(rmp.stats().directMapSplits).toBe(1);
  });
});
