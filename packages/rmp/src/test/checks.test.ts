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
import { RefRmp } from "../test-support/reference.js";

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

  // The 4K entries of a smashed region take their own path through the check: each
  // rule must hold there too, not only on 2M entries.
  test("4K entries: WRONG_ASID, WRONG_GPA and (with the switch) NOT_VALIDATED through a 4K leaf", () => {
    for (const req of [false, true]) {
      const rmp = vm({ trustedDmaRequiresValidated: req });
      expect(rmp.psmash(BASE)).toBe(0);
      const spa = BASE + 7 * K4 + 0x40;
      const gpa = GPA + 7 * K4 + 0x40;
      expect(rmp.checkDmaTrusted(spa, 12, ASID, gpa)).toBe(DmaVerdict.ALLOWED);
      expect(rmp.checkDmaTrusted(spa, 20, ASID + 1, gpa)).toBe(DmaVerdict.WRONG_ASID);
      expect(rmp.checkDmaTrusted(spa, 12, ASID, gpa + K4)).toBe(DmaVerdict.WRONG_GPA);
      // PSMASH kept Validated; the guest rescinds one page.
      expect(
        rmp.pvalidate(BASE + 7 * K4, {
          asid: ASID,
          gpa: GPA + 7 * K4,
          pageSize: 0,
          validate: false,
        }),
      ).toBe(0);
      expect(rmp.checkDmaTrusted(spa, 12, ASID, gpa)).toBe(
        req ? DmaVerdict.NOT_VALIDATED : DmaVerdict.ALLOWED,
      );
      expect(rmp.checkDmaTrusted(spa + K4, 12, ASID, gpa + K4)).toBe(DmaVerdict.ALLOWED);
    }
  });

  test("checkDmaTrustedBurst gives every access the verdict checkDmaTrusted gives it", () => {
    for (const req of [false, true]) {
      const rmp = vm({ trustedDmaRequiresValidated: req });
      // Region 1 smashed, one page of it shared and one rescinded by the guest.
      expect(rmp.psmash(BASE + M2)).toBe(0);
      expect(rmpMakeShared(rmp, (BASE + M2) / K4 + 3, PgLevel.PG_LEVEL_4K)).toBe(0);
      const rescinded = {
        asid: ASID,
        gpa: GPA + M2 + 4 * K4,
        pageSize: 0,
        validate: false,
      } as const;
      expect(rmp.pvalidate(BASE + M2 + 4 * K4, rescinded)).toBe(0);
      // [spa offset from BASE, iova offset from GPA]: on a 2M entry, on 4K entries, a
      // wrong GPA on each, a shared page, an unvalidated one, an untouched region,
      // and an address beyond the host.
      const accesses: [number, number][] = [
        [0x40, 0x40],
        [0x40, M2 + 0x40],
        [M2 + 5 * K4, M2 + 5 * K4],
        [M2 + 5 * K4, M2 + 6 * K4],
        [M2 + 3 * K4, M2 + 3 * K4],
        [M2 + 4 * K4, M2 + 4 * K4],
        [8 * M2, 8 * M2],
        [64 * 2 ** 30 - BASE, 0],
      ];
      const n = accesses.length;
      const spas = Float64Array.from(accesses, ([s]) => BASE + s);
      const iovas = Float64Array.from(accesses, ([, i]) => GPA + i);
      const verdicts = new Uint8Array(n);
      const seen = new Set<number>();
      // One device per burst: the guest's own, and another guest's.
      for (const asid of [ASID, ASID + 1]) {
        for (const leafLg2 of [12, 20, 21, 30]) {
          const want: number[] = [];
          for (let k = 0; k < n; k++)
            want.push(rmp.checkDmaTrusted(spas[k]!, leafLg2, asid, iovas[k]!));
          verdicts.fill(0xff);
          const denied = rmp.checkDmaTrustedBurst(spas, iovas, n, leafLg2, asid, verdicts);
          expect([...verdicts].map(dmaVerdictName)).toEqual(want.map(dmaVerdictName));
          expect(denied).toBe(want.filter((v) => v !== DmaVerdict.ALLOWED).length);
          for (const v of want) seen.add(v);
        }
      }
      // The mix reaches every trusted verdict, so the comparison is not vacuous.
      const expected: number[] = [
        DmaVerdict.ALLOWED,
        DmaVerdict.LEAF_LARGER_THAN_RMP,
        DmaVerdict.LEAF_SMALLER_THAN_RMP,
        DmaVerdict.NOT_ASSIGNED,
        DmaVerdict.WRONG_ASID,
        DmaVerdict.WRONG_GPA,
        DmaVerdict.NOT_COVERED,
      ];
      if (req) expected.push(DmaVerdict.NOT_VALIDATED);
      expect([...seen].sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
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

describe("the trusted check's GPA comparison, at the edges of a page", () => {
  // The check compares IOVA and GFN without Math.floor (store.ts, check/dma.ts): it
  // must give floor(iova / 4K) === GFN's answer for any number, not only whole pages.
  test("every IOVA near, below, above and far from the entry's page gets the reference's verdict", () => {
    const host = 64 * 2 ** 30;
    const rmp = new Rmp({ hostBytes: host });
    const ref = new RefRmp(host);
    const entries: [number, number, 0 | 1][] = [
      [0, 0, 1], // a 2M entry at GPA 0: the -0 and tiny-IOVA corner
      [M2, 2 ** 44 + 6 * 2 ** 30, 1], // GFN bits 32 and 21:20
      [8 * M2, 2 ** 50, 1], // the top of the 39-bit GFN
      [16 * M2 + 3 * K4, 0, 0], // a 4K entry at GPA 0
      [16 * M2 + 4 * K4, 2 ** 44 + 2 ** 32 - K4, 0], // GFN bits 31:12 all set, bit 32 set
      [16 * M2 + 5 * K4, 2 ** 51 - K4, 0], // the largest GFN
    ];
    for (const [spa, gpa, size] of entries) {
      const st = { assigned: true, pageSize: size, immutable: false, asid: ASID, gpa } as const;
      expect(rmp.rmpupdate(spa, st)).toBe(0);
      expect(ref.rmpupdate(spa, st)).toBe(0);
    }
    const diffs: string[] = [];
    const weird = [
      0,
      -0,
      5e-324,
      -5e-324,
      -(2 ** -1060),
      2 ** -1060,
      -1,
      -4096,
      -0.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      2 ** 53,
      2 ** 60,
      1e308,
      -1e308,
    ];
    for (const [spa0, gpa, size] of entries) {
      for (const off of [0, 7 * K4 + 0x10, 511 * K4]) {
        if (size === 0 && off !== 0) continue;
        const spa = spa0 + off;
        const at = gpa + off;
        const iovas = [...weird];
        for (const d of [
          0,
          1,
          0.5,
          4095,
          4095.5,
          4096,
          4097,
          -1,
          -0.5,
          -4096,
          M2,
          -M2,
          2 ** 32,
          -(2 ** 32),
        ])
          iovas.push(at - (at % K4) + d, at + d);
        for (const iova of iovas) {
          for (const leaf of size ? [21, 30] : [12]) {
            const got = rmp.checkDmaTrusted(spa, leaf, ASID, iova);
            const want = ref.dmaTrusted(spa, leaf, ASID, iova);
            if (got !== want)
              diffs.push(`spa 0x${spa.toString(16)} iova ${iova}: ${got} vs ${want}`);
          }
        }
      }
    }
    expect(diffs).toEqual([]);
  });

  test("a burst longer than the chunks it is checked in, and one whose count is not whole", () => {
    const rmp = vm();
    expect(rmp.psmash(BASE + 2 * M2)).toBe(0);
    expect(rmpMakeShared(rmp, (BASE + 2 * M2) / K4 + 9, PgLevel.PG_LEVEL_4K)).toBe(0);
    const n = 1000;
    const spas = new Float64Array(n);
    const iovas = new Float64Array(n);
    let x = 7;
    for (let k = 0; k < n; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const off = (x % 6) * M2 + ((x >>> 8) % 512) * K4 + 0x40;
      spas[k] = BASE + off;
      iovas[k] = GPA + off + ((x >>> 20) % 8 === 0 ? K4 : 0);
    }
    for (const leafLg2 of [12, 21]) {
      for (const count of [n, 600, 257.5]) {
        const verdicts = new Uint8Array(n).fill(0xff);
        const want: number[] = [];
        for (let k = 0; k < count; k++)
          want.push(rmp.checkDmaTrusted(spas[k]!, leafLg2, ASID, iovas[k]!));
        const denied = rmp.checkDmaTrustedBurst(spas, iovas, count, leafLg2, ASID, verdicts);
        expect([...verdicts.subarray(0, want.length)]).toEqual(want);
        expect(verdicts[want.length] ?? 0xff).toBe(0xff);
        expect(denied).toBe(want.filter((v) => v !== DmaVerdict.ALLOWED).length);
        expect(new Set(want).size).toBeGreaterThan(2);
      }
    }
  });
});
