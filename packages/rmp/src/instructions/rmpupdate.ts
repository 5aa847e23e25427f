import { PAGES_PER_REGION, RmpPageSize, RmpUpdateRet } from "../constants.js";
import type { RmpState } from "../entry/entry.js";
import { fail } from "../errors.js";
import { checkAsid, checkGpa, checkPageSize, type Rmp } from "../rmp.js";
import { F_ASSIGNED, F_IMMUTABLE, RegionMode } from "../table/store.js";

const INV_4K = 1 / 4096;

/**
 * RMPUPDATE: the hypervisor writes a page's (or a 2M region's) entry. Checks, in
 * order (APM vol.3 RMPUPDATE; codes from asm/sev.h):
 *
 * 1. FAIL_INPUT: an address the RMP does not cover, a 2M entry at an address
 *    that is not 2M aligned (or assigned at a GPA that is not), an assigned
 *    state with ASID 0, an unassigned one with an ASID or Immutable (HV-Fixed
 *    and firmware pages are the firmware's to make, not RMPUPDATE's);
 * 2. FAIL_INUSE: another processor is updating the page or its region;
 * 3. FAIL_PERMISSION: the entry, or for a 2M update any entry of the region, is
 *    Immutable;
 * 4. FAIL_OVERLAP: a 4K update inside an assigned 2M entry, or a 2M update over a
 *    region with assigned 4K entries (the raw entry's subpage_count).
 *
 * The new entry starts with Validated, VMSA and the VMPL permissions cleared.
 */
export function rmpupdate(rmp: Rmp, spa: number, state: RmpState): number {
  rmp.checkSpa("spa", spa);
  if (spa % 4096 !== 0) fail("EINVAL", "spa", spa, "must be 4 KiB aligned");
  if (typeof state !== "object" || state === null)
    fail("EINVAL", "state", state, "must be an RmpState");
  const size = checkPageSize(state.pageSize, "state.pageSize");
  const asid = checkAsid("state.asid", state.asid);
  const gpa = checkGpa("state.gpa", state.gpa);
  if (typeof state.assigned !== "boolean")
    fail("EINVAL", "state.assigned", state.assigned, "must be a boolean");
  if (typeof state.immutable !== "boolean")
    fail("EINVAL", "state.immutable", state.immutable, "must be a boolean");

  if (spa >= rmp.hostBytes) return RmpUpdateRet.FAIL_INPUT;
  if (size === RmpPageSize.SIZE_2M && spa % 2 ** 21 !== 0) return RmpUpdateRet.FAIL_INPUT;
  if (state.assigned ? asid === 0 : asid !== 0 || state.immutable) return RmpUpdateRet.FAIL_INPUT;
  if (size === RmpPageSize.SIZE_2M && state.assigned && gpa % 2 ** 21 !== 0)
    return RmpUpdateRet.FAIL_INPUT;

  if (rmp.isBusy(spa, size, "rmpupdate")) return RmpUpdateRet.FAIL_INUSE;

  const s = rmp.store;
  const pfn = spa * INV_4K;
  const region = Math.floor(pfn / PAGES_PER_REGION);
  const rec = s.ensureRecord(region);
  const mode = s.modeAt(rec);
  const flags = (state.assigned ? F_ASSIGNED : 0) | (state.immutable ? F_IMMUTABLE : 0);
  const gfn = state.assigned ? gpa * INV_4K : 0;

  if (size === RmpPageSize.SIZE_2M) {
    if (mode === RegionMode.LARGE && s.flagsAt(rec) & F_IMMUTABLE)
      return RmpUpdateRet.FAIL_PERMISSION;
    if (mode === RegionMode.SMALL) {
      for (let p = 0; p < PAGES_PER_REGION; p++) {
        if (s.sImmutableAt(s.slabIndex(rec, p))) return RmpUpdateRet.FAIL_PERMISSION;
      }
      if (s.assigned4kAt(rec) > 0) return RmpUpdateRet.FAIL_OVERLAP;
    }
    s.setLarge(rec, flags, asid, gfn, 0);
    rmp.notify("rmpupdate", spa, 2 ** 21);
    return RmpUpdateRet.SUCCESS;
  }

  if (mode === RegionMode.LARGE) {
    const f = s.flagsAt(rec);
    if (f & F_IMMUTABLE) return RmpUpdateRet.FAIL_PERMISSION;
    if (f & F_ASSIGNED) return RmpUpdateRet.FAIL_OVERLAP;
  } else if (mode === RegionMode.SMALL && s.sImmutableAt(s.slabIndex(rec, pfn))) {
    return RmpUpdateRet.FAIL_PERMISSION;
  }
  // A 2M hypervisor entry, or an untouched region, becomes 512 4K entries.
  if (mode !== RegionMode.SMALL) s.expand(rec);
  s.setSmall(rec, pfn, flags, asid, gfn, 0);
  s.compact(rec);
  rmp.notify("rmpupdate", spa, 4096);
  return RmpUpdateRet.SUCCESS;
}
