import { describe, expect, test } from "vitest";
import {
  PgLevel,
  PsmashRet,
  PvalidateRet,
  Rmp,
  RmpPageSize,
  RmpUpdateRet,
  rmpMakeGuestContextPage,
  rmpMakeHvFixed,
  rmpMakePrivate,
  VmplPerm,
} from "../index.js";

const K4 = 4096;
const M2 = 2 ** 21;
const BASE = 16 * 2 ** 30; // host physical base of the test guest
const GPA = 2 * 2 ** 30;
const ASID = 7;
const HOST = 32 * 2 ** 30;

/** A guest region assigned at 2M (and validated when asked). */
function private2M(rmp: Rmp, spa = BASE, gpa = GPA, validate = false): void {
  expect(rmpMakePrivate(rmp, spa / K4, gpa, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
  if (validate) {
    expect(
      rmp.pvalidate(spa, { asid: ASID, gpa, pageSize: RmpPageSize.SIZE_2M, validate: true }),
    ).toBe(0);
  }
}

const assigned4K = {
  assigned: true,
  pageSize: RmpPageSize.SIZE_4K,
  immutable: false,
  asid: ASID,
  gpa: GPA,
} as const;
const assigned2M = { ...assigned4K, pageSize: RmpPageSize.SIZE_2M } as const;
const shared4K = {
  assigned: false,
  pageSize: RmpPageSize.SIZE_4K,
  immutable: false,
  asid: 0,
  gpa: 0,
} as const;

interface Row {
  /** What the row checks. */
  name: string;
  /** Where the rule comes from. */
  rule: string;
  setup?: (rmp: Rmp) => void;
  act: (rmp: Rmp) => number;
  expected: number;
}

const rows: Row[] = [
  // --- RMPUPDATE -----------------------------------------------------------
  {
    name: "RMPUPDATE 4K assign on an untouched page",
    rule: "APM RMPUPDATE; rmp_make_private",
    act: (r) => r.rmpupdate(BASE, assigned4K),
    expected: RmpUpdateRet.SUCCESS,
  },
  {
    name: "RMPUPDATE 2M assign on an untouched region",
    rule: "APM RMPUPDATE; sev_gmem_prepare 2M path",
    act: (r) => r.rmpupdate(BASE, assigned2M),
    expected: RmpUpdateRet.SUCCESS,
  },
  {
    name: "RMPUPDATE FAIL_INPUT: 2M entry at an address that is not 2M aligned",
    rule: "APM RMPUPDATE: 2M pages must be 2M aligned",
    act: (r) => r.rmpupdate(BASE + K4, assigned2M),
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  {
    name: "RMPUPDATE FAIL_INPUT: address beyond the RMP (RMP_END)",
    rule: "APM RMPUPDATE: SPA must be covered by the RMP",
    act: (r) => r.rmpupdate(HOST, assigned4K),
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  {
    name: "RMPUPDATE FAIL_INPUT: assigned with ASID 0",
    rule: "guest pages carry a guest ASID; ASID 0 is hypervisor/firmware",
    act: (r) => r.rmpupdate(BASE, { ...assigned4K, asid: 0 }),
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  {
    name: "RMPUPDATE FAIL_INPUT: a hypervisor page with an ASID",
    rule: "rmp_make_shared writes the all-zero state",
    act: (r) => r.rmpupdate(BASE, { ...shared4K, asid: 3 }),
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  {
    name: "RMPUPDATE FAIL_INPUT: Immutable without Assigned (HV-Fixed is the firmware's)",
    rule: "sev_rmp.h page states: HV_FIXED set by firmware",
    act: (r) => r.rmpupdate(BASE, { ...shared4K, immutable: true }),
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  {
    name: "RMPUPDATE FAIL_INPUT: a 2M entry at a GPA that is not 2M aligned",
    rule: "a 2M entry maps a 2M-aligned GPA",
    act: (r) => r.rmpupdate(BASE, { ...assigned2M, gpa: GPA + K4 }),
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  {
    name: "RMPUPDATE FAIL_PERMISSION: the page is Immutable",
    rule: "APM RMPUPDATE: only firmware changes Immutable entries",
    setup: (r) =>
      expect(rmpMakePrivate(r, BASE / K4, GPA, PgLevel.PG_LEVEL_4K, ASID, true)).toBe(0),
    act: (r) => r.rmpupdate(BASE, shared4K),
    expected: RmpUpdateRet.FAIL_PERMISSION,
  },
  {
    name: "RMPUPDATE FAIL_PERMISSION: a 2M update over a region holding an Immutable 4K page",
    rule: "APM RMPUPDATE",
    setup: (r) => expect(rmpMakeHvFixed(r, BASE / K4 + 5)).toBe(0),
    act: (r) => r.rmpupdate(BASE, assigned2M),
    expected: RmpUpdateRet.FAIL_PERMISSION,
  },
  {
    name: "RMPUPDATE FAIL_PERMISSION: changing an Immutable 2M entry",
    rule: "APM RMPUPDATE",
    setup: (r) =>
      expect(rmpMakePrivate(r, BASE / K4, GPA, PgLevel.PG_LEVEL_2M, ASID, true)).toBe(0),
    act: (r) => r.rmpupdate(BASE, { ...assigned2M, asid: ASID + 1 }),
    expected: RmpUpdateRet.FAIL_PERMISSION,
  },
  {
    name: "RMPUPDATE FAIL_INUSE: another CPU is updating the 2M region",
    rule: "APM RMPUPDATE: FAIL_INUSE on concurrent access (H11)",
    setup: (r) => r.markInUse(BASE, RmpPageSize.SIZE_2M, true),
    act: (r) => r.rmpupdate(BASE + 3 * K4, assigned4K),
    expected: RmpUpdateRet.FAIL_INUSE,
  },
  {
    name: "RMPUPDATE FAIL_INUSE: the in-use hook says busy",
    rule: "simulator hook for H11",
    setup: (r) => r.setInUseHook((spa) => spa === BASE),
    act: (r) => r.rmpupdate(BASE, assigned4K),
    expected: RmpUpdateRet.FAIL_INUSE,
  },
  {
    name: "RMPUPDATE FAIL_OVERLAP: 4K inside an assigned 2M entry",
    rule: "asm/sev.h RMPUPDATE_FAIL_OVERLAP: 4K/2M overlap in one 2M region",
    setup: (r) => private2M(r),
    act: (r) => r.rmpupdate(BASE + 9 * K4, shared4K),
    expected: RmpUpdateRet.FAIL_OVERLAP,
  },
  {
    name: "RMPUPDATE FAIL_OVERLAP: 2M over a region with an assigned 4K page",
    rule: "subpage_count != 0 (sev_rmp.h rmp_fields)",
    setup: (r) => expect(r.rmpupdate(BASE + 9 * K4, { ...assigned4K, gpa: GPA + 9 * K4 })).toBe(0),
    act: (r) => r.rmpupdate(BASE, assigned2M),
    expected: RmpUpdateRet.FAIL_OVERLAP,
  },
  {
    name: "RMPUPDATE 4K inside a 2M hypervisor entry splits it",
    rule: "rmp_make_shared(2M) then rmp_make_private(4K) in sev_gmem_prepare",
    setup: (r) => expect(r.rmpupdate(BASE, { ...shared4K, pageSize: RmpPageSize.SIZE_2M })).toBe(0),
    act: (r) => r.rmpupdate(BASE + K4, { ...assigned4K, gpa: GPA + K4 }),
    expected: RmpUpdateRet.SUCCESS,
  },
  // --- PSMASH --------------------------------------------------------------
  {
    name: "PSMASH an assigned 2M entry",
    rule: "APM PSMASH; snp_rmptable_psmash",
    setup: (r) => private2M(r, BASE, GPA, true),
    act: (r) => r.psmash(BASE),
    expected: PsmashRet.SUCCESS,
  },
  {
    name: "PSMASH FAIL_INPUT: not 2M aligned (KVM rounds down before calling)",
    rule: "snp_rmptable_psmash rounds pfn to PMD",
    setup: (r) => private2M(r),
    act: (r) => r.psmash(BASE + K4),
    expected: PsmashRet.FAIL_INPUT,
  },
  {
    name: "PSMASH FAIL_INPUT: a region of 4K entries",
    rule: "only a 2M entry can be smashed",
    setup: (r) => expect(r.rmpupdate(BASE, assigned4K)).toBe(0),
    act: (r) => r.psmash(BASE),
    expected: PsmashRet.FAIL_INPUT,
  },
  {
    name: "PSMASH FAIL_INPUT: an unassigned 2M entry",
    rule: "sev_gmem_invalidate psmashes only assigned 2M entries",
    setup: (r) => expect(r.rmpupdate(BASE, { ...shared4K, pageSize: RmpPageSize.SIZE_2M })).toBe(0),
    act: (r) => r.psmash(BASE),
    expected: PsmashRet.FAIL_INPUT,
  },
  {
    name: "PSMASH FAIL_PERMISSION: an Immutable 2M entry",
    rule: "early SNP patch: PSMASH FAIL_PERMISSION 2",
    setup: (r) =>
      expect(rmpMakePrivate(r, BASE / K4, GPA, PgLevel.PG_LEVEL_2M, ASID, true)).toBe(0),
    act: (r) => r.psmash(BASE),
    expected: PsmashRet.FAIL_PERMISSION,
  },
  {
    name: "PSMASH FAIL_INUSE: another CPU is on the region",
    rule: "asm/sev.h PSMASH_FAIL_INUSE; KVM treats it as spurious (H11, H27)",
    setup: (r) => {
      private2M(r);
      r.markInUse(BASE, RmpPageSize.SIZE_2M, true);
    },
    act: (r) => r.psmash(BASE),
    expected: PsmashRet.FAIL_INUSE,
  },
  {
    name: "PSMASH FAIL_BADADDR: beyond the RMP",
    rule: "early SNP patch: FAIL_BADADDR 4",
    act: (r) => r.psmash(HOST),
    expected: PsmashRet.FAIL_BADADDR,
  },
  // --- PVALIDATE -----------------------------------------------------------
  {
    name: "PVALIDATE 2M over a 2M entry",
    rule: "APM PVALIDATE; guest __set_pages_state uses 2M when aligned",
    setup: (r) => private2M(r),
    act: (r) =>
      r.pvalidate(BASE, { asid: ASID, gpa: GPA, pageSize: RmpPageSize.SIZE_2M, validate: true }),
    expected: PvalidateRet.SUCCESS,
  },
  {
    name: "PVALIDATE NO_UPDATE: already validated (CF=1)",
    rule: "APM PVALIDATE; PVALIDATE_FAIL_NOUPDATE 255 in Linux",
    setup: (r) => private2M(r, BASE, GPA, true),
    act: (r) =>
      r.pvalidate(BASE, { asid: ASID, gpa: GPA, pageSize: RmpPageSize.SIZE_2M, validate: true }),
    expected: PvalidateRet.NO_UPDATE,
  },
  {
    name: "PVALIDATE FAIL_INPUT: a 2M request not 2M aligned",
    rule: "APM PVALIDATE",
    setup: (r) => private2M(r),
    act: (r) =>
      r.pvalidate(BASE + K4, {
        asid: ASID,
        gpa: GPA + K4,
        pageSize: RmpPageSize.SIZE_2M,
        validate: true,
      }),
    expected: PvalidateRet.FAIL_INPUT,
  },
  {
    name: "PVALIDATE FAIL_SIZEMISMATCH: 2M over 4K entries (guest falls back to 4K)",
    rule: "APM PVALIDATE FAIL_SIZEMISMATCH 6; coco.md §5.4 step 3",
    setup: (r) => {
      private2M(r);
      expect(r.psmash(BASE)).toBe(0);
    },
    act: (r) =>
      r.pvalidate(BASE, { asid: ASID, gpa: GPA, pageSize: RmpPageSize.SIZE_2M, validate: true }),
    expected: PvalidateRet.FAIL_SIZEMISMATCH,
  },
  {
    name: "PVALIDATE #NPF(RMP|SIZEM): 4K on a 2M entry (KVM answers with PSMASH)",
    rule: "sev_handle_rmp_fault; coco.md §2",
    setup: (r) => private2M(r),
    act: (r) =>
      r.pvalidate(BASE + K4, {
        asid: ASID,
        gpa: GPA + K4,
        pageSize: RmpPageSize.SIZE_4K,
        validate: true,
      }),
    expected: PvalidateRet.NPF_RMP_SIZEM,
  },
  {
    name: "PVALIDATE #NPF(RMP): another guest's page",
    rule: "RMP check: ASID must match (H20)",
    setup: (r) => private2M(r),
    act: (r) =>
      r.pvalidate(BASE, {
        asid: ASID + 1,
        gpa: GPA,
        pageSize: RmpPageSize.SIZE_2M,
        validate: true,
      }),
    expected: PvalidateRet.NPF_RMP,
  },
  {
    name: "PVALIDATE #NPF(RMP): the wrong GPA (remap attack)",
    rule: "RMP check: GPA must match (H19)",
    setup: (r) => private2M(r),
    act: (r) =>
      r.pvalidate(BASE, {
        asid: ASID,
        gpa: GPA + M2,
        pageSize: RmpPageSize.SIZE_2M,
        validate: true,
      }),
    expected: PvalidateRet.NPF_RMP,
  },
  {
    name: "PVALIDATE #NPF(RMP): a hypervisor page",
    rule: "RMP check: the page must be assigned",
    act: (r) =>
      r.pvalidate(BASE, { asid: ASID, gpa: GPA, pageSize: RmpPageSize.SIZE_4K, validate: true }),
    expected: PvalidateRet.NPF_RMP,
  },
  {
    name: "PVALIDATE rescind a 4K page after PSMASH (the guest before sharing)",
    rule: "coco.md §5.2 step 1",
    setup: (r) => {
      private2M(r, BASE, GPA, true);
      expect(r.psmash(BASE)).toBe(0);
    },
    act: (r) =>
      r.pvalidate(BASE + K4, {
        asid: ASID,
        gpa: GPA + K4,
        pageSize: RmpPageSize.SIZE_4K,
        validate: false,
      }),
    expected: PvalidateRet.SUCCESS,
  },
  // --- RMPADJUST -----------------------------------------------------------
  {
    name: "RMPADJUST VMPL0 grants VMPL1 read/write",
    rule: "APM RMPADJUST",
    setup: (r) => private2M(r, BASE, GPA, true),
    act: (r) =>
      r.rmpadjust(BASE, {
        asid: ASID,
        gpa: GPA,
        pageSize: RmpPageSize.SIZE_2M,
        callerVmpl: 0,
        targetVmpl: 1,
        perms: VmplPerm.READ | VmplPerm.WRITE,
        vmsa: false,
      }),
    expected: PvalidateRet.SUCCESS,
  },
  {
    name: "RMPADJUST FAIL_PERMISSION: the target VMPL is not lower than the caller's",
    rule: "APM RMPADJUST",
    setup: (r) => private2M(r, BASE, GPA, true),
    act: (r) =>
      r.rmpadjust(BASE, {
        asid: ASID,
        gpa: GPA,
        pageSize: RmpPageSize.SIZE_2M,
        callerVmpl: 2,
        targetVmpl: 1,
        perms: VmplPerm.READ,
        vmsa: false,
      }),
    expected: PvalidateRet.FAIL_PERMISSION,
  },
  {
    name: "RMPADJUST FAIL_PERMISSION: granting more than the caller holds",
    rule: "APM RMPADJUST",
    setup: (r) => private2M(r, BASE, GPA, true),
    act: (r) =>
      r.rmpadjust(BASE, {
        asid: ASID,
        gpa: GPA,
        pageSize: RmpPageSize.SIZE_2M,
        callerVmpl: 1,
        targetVmpl: 2,
        perms: VmplPerm.WRITE,
        vmsa: false,
      }),
    expected: PvalidateRet.FAIL_PERMISSION,
  },
  {
    name: "RMPADJUST FAIL_SIZEMISMATCH: 2M over 4K entries",
    rule: "APM RMPADJUST size rules as PVALIDATE",
    setup: (r) => {
      private2M(r, BASE, GPA, true);
      expect(r.psmash(BASE)).toBe(0);
    },
    act: (r) =>
      r.rmpadjust(BASE, {
        asid: ASID,
        gpa: GPA,
        pageSize: RmpPageSize.SIZE_2M,
        callerVmpl: 0,
        targetVmpl: 1,
        perms: 0,
        vmsa: true,
      }),
    expected: PvalidateRet.FAIL_SIZEMISMATCH,
  },
  {
    name: "RMPADJUST #NPF(RMP|SIZEM): a 4K VMSA on a 2M entry",
    rule: "coco.md §2: 4K RMPADJUST on a 2M entry; sev_snp_ap_creation",
    setup: (r) => private2M(r, BASE, GPA, true),
    act: (r) =>
      r.rmpadjust(BASE + K4, {
        asid: ASID,
        gpa: GPA + K4,
        pageSize: RmpPageSize.SIZE_4K,
        callerVmpl: 0,
        targetVmpl: 1,
        perms: 0,
        vmsa: true,
      }),
    expected: PvalidateRet.NPF_RMP_SIZEM,
  },
  // --- RMPREAD -------------------------------------------------------------
  {
    name: "RMPREAD of a covered page",
    rule: "get_rmpentry() with X86_FEATURE_RMPREAD",
    act: (r) => r.rmpread(BASE).ret,
    expected: RmpUpdateRet.SUCCESS,
  },
  {
    name: "RMPREAD FAIL_INPUT beyond the RMP",
    rule: "RMPREAD status in RAX",
    act: (r) => r.rmpread(HOST).ret,
    expected: RmpUpdateRet.FAIL_INPUT,
  },
  // --- unsmash (the model's PUNSMASH inference) ----------------------------
  {
    name: "unsmash a uniform smashed region",
    rule: "inference for TMPM PUNSMASH_IO (coco.md §8 q6)",
    setup: (r) => {
      private2M(r, BASE, GPA, true);
      expect(r.psmash(BASE)).toBe(0);
    },
    act: (r) => r.unsmash(BASE),
    expected: PsmashRet.SUCCESS,
  },
  {
    name: "unsmash FAIL_INPUT: one page is shared",
    rule: "inference: only a uniform region merges",
    setup: (r) => {
      private2M(r, BASE, GPA, true);
      expect(r.psmash(BASE)).toBe(0);
      expect(r.rmpupdate(BASE + 3 * K4, shared4K)).toBe(0);
    },
    act: (r) => r.unsmash(BASE),
    expected: PsmashRet.FAIL_INPUT,
  },
];

describe("every instruction through every status code", () => {
  for (const row of rows) {
    test(`${row.name} [${row.rule}]`, () => {
      const rmp = new Rmp({ hostBytes: HOST });
      row.setup?.(rmp);
      const before = rmp.fingerprint();
      const ret = row.act(rmp);
      expect(ret).toBe(row.expected);
      // A failed instruction changes nothing.
      const failed = ret !== 0;
      if (failed) expect(rmp.fingerprint()).toBe(before);
    });
  }

  test("the table covers every code of every instruction", () => {
    const seen = new Set(rows.map((r) => `${r.name.split(" ")[0]}:${r.expected}`));
    for (const code of Object.values(RmpUpdateRet))
      expect(seen.has(`RMPUPDATE:${code}`)).toBe(true);
    for (const code of Object.values(PsmashRet)) expect(seen.has(`PSMASH:${code}`)).toBe(true);
    for (const code of Object.values(PvalidateRet)) {
      if (code === PvalidateRet.FAIL_PERMISSION) continue; // RMPADJUST's
      expect(seen.has(`PVALIDATE:${code}`)).toBe(true);
    }
  });
});

describe("effects", () => {
  test("PSMASH gives 512 4K entries with the 2M fields, GPAs advancing, Validated kept", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    private2M(rmp, BASE, GPA, true);
    expect(rmp.psmash(BASE)).toBe(0);
    for (let i = 0; i < 512; i++) {
      const { entry, level } = rmp.lookup(BASE + i * K4);
      expect(level).toBe(RmpPageSize.SIZE_4K);
      expect(entry).toEqual({
        assigned: true,
        pageSize: RmpPageSize.SIZE_4K,
        immutable: false,
        validated: true,
        vmsa: false,
        asid: ASID,
        gpa: GPA + i * K4,
        vmplPerms: [0, 0, 0],
      });
    }
  });

  test("RMPUPDATE clears Validated and the VMPL permissions (a silent re-assignment shows: H21)", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    private2M(rmp, BASE, GPA, true);
    expect(rmp.psmash(BASE)).toBe(0);
    expect(rmp.rmpupdate(BASE, shared4K)).toBe(0);
    expect(rmp.rmpupdate(BASE, assigned4K)).toBe(0);
    expect(rmp.lookup(BASE).entry.validated).toBe(false);
    expect(rmp.lookup(BASE + K4).entry.validated).toBe(true);
  });

  test("rmpMakePrivate retries FAIL_OVERLAP up to the limit, then gives up and counts it", () => {
    const rmp = new Rmp({ hostBytes: HOST, overlapRetryLimit: 3 });
    private2M(rmp);
    let calls = 0;
    rmp.subscribe(() => calls++);
    expect(rmpMakePrivate(rmp, BASE / K4 + 1, GPA + K4, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(
      RmpUpdateRet.FAIL_OVERLAP,
    );
    expect(rmp.stats().overlapLivelocks).toBe(1);
    expect(calls).toBe(0);
  });

  test("a transient overlap clears on retry: the kernel's loop works when a racing CPU finishes", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    let busy = 2;
    rmp.setInUseHook(() => busy-- > 0);
    // FAIL_INUSE is not retried by the kernel's rmpupdate(); only FAIL_OVERLAP is.
    expect(rmpMakePrivate(rmp, BASE / K4, GPA, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(
      RmpUpdateRet.FAIL_INUSE,
    );
  });

  test("notifications: kind, address and length of every change, none for failures", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    const seen: string[] = [];
    const off = rmp.subscribe((c) =>
      seen.push(`${c.kind}@${c.spa.toString(16)}+${c.length.toString(16)}`),
    );
    private2M(rmp, BASE, GPA, true);
    expect(rmp.psmash(BASE + K4)).toBe(PsmashRet.FAIL_INPUT);
    expect(rmp.psmash(BASE)).toBe(0);
    off();
    expect(rmp.unsmash(BASE)).toBe(0);
    expect(seen).toEqual([
      "rmpupdate@400000000+200000",
      "pvalidate@400000000+200000",
      "psmash@400000000+200000",
    ]);
  });

  test("HV-Fixed: the TMPM ring page state", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    expect(rmpMakeHvFixed(rmp, BASE / K4)).toBe(0);
    expect(rmp.pageState(BASE)).toBe("HV-Fixed");
    expect(rmpMakeHvFixed(rmp, BASE / K4)).toBe(RmpUpdateRet.FAIL_INPUT);
    expect(rmp.rmpupdate(BASE, assigned4K)).toBe(RmpUpdateRet.FAIL_PERMISSION);
  });

  test("guest-context page (SNP_GCTX_CREATE): the Context state", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    expect(rmpMakeGuestContextPage(rmp, BASE / K4)).toBe(0);
    expect(rmp.pageState(BASE)).toBe("Context");
    expect(rmpMakeGuestContextPage(rmp, BASE / K4)).toBe(RmpUpdateRet.FAIL_INPUT);
    expect(rmp.rmpupdate(BASE, shared4K)).toBe(RmpUpdateRet.FAIL_PERMISSION);
  });

  test("page-state taxonomy", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    expect(rmp.pageState(BASE)).toBe("Hypervisor");
    private2M(rmp);
    expect(rmp.pageState(BASE)).toBe("Guest-Invalid");
    expect(
      rmp.pvalidate(BASE, { asid: ASID, gpa: GPA, pageSize: RmpPageSize.SIZE_2M, validate: true }),
    ).toBe(0);
    expect(rmp.pageState(BASE + 17 * K4)).toBe("Guest-Valid");
    expect(rmpMakePrivate(rmp, BASE / K4 + 512, GPA + M2, PgLevel.PG_LEVEL_4K, ASID, true)).toBe(0);
    expect(rmp.pageState(BASE + M2)).toBe("Pre-Guest");
  });

  test("RMPREAD reports the effective entry and whether the region has assigned 4K pages", () => {
    const rmp = new Rmp({ hostBytes: HOST });
    private2M(rmp);
    expect(rmp.rmpread(BASE + 5 * K4).entry).toEqual({
      gpa: GPA + 5 * K4,
      assigned: true,
      pageSize: RmpPageSize.SIZE_2M,
      hpageRegionStatus: 0,
      immutable: false,
      asid: ASID,
    });
    expect(rmp.psmash(BASE)).toBe(0);
    expect(rmp.rmpread(BASE).entry?.hpageRegionStatus).toBe(1);
  });

  test("clone is deep and fingerprint is independent of storage history", () => {
    const a = new Rmp({ hostBytes: HOST });
    private2M(a, BASE, GPA, true);
    const b = a.clone();
    expect(b.fingerprint()).toBe(a.fingerprint());
    expect(b.psmash(BASE)).toBe(0);
    expect(b.fingerprint()).not.toBe(a.fingerprint());
    expect(b.unsmash(BASE)).toBe(0);
    expect(b.fingerprint()).toBe(a.fingerprint());
    expect(a.lookup(BASE).level).toBe(RmpPageSize.SIZE_2M);
  });
});
