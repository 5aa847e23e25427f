import { PAGES_PER_REGION, PvalidateRet, RmpPageSize } from "../constants.js";
import type { Rmp } from "../rmp.js";
import { F_ASSIGNED, RegionMode } from "../table/store.js";

/**
 * Where a guest instruction (PVALIDATE, RMPADJUST) lands: the RMP check that the
 * page is this guest's at this GPA, and the size rule. Returns a
 * {@link PvalidateRet} failure, or SUCCESS with `out` set to the store location
 * to change: `out[0]` the region record, `out[1]` the slab index (-1 for a 2M entry).
 */
export function locateGuestPage(
  rmp: Rmp,
  spa: number,
  asid: number,
  gpa: number,
  size: RmpPageSize,
  out: Int32Array,
): number {
  if (size === RmpPageSize.SIZE_2M && (spa % 2 ** 21 !== 0 || gpa % 2 ** 21 !== 0)) {
    return PvalidateRet.FAIL_INPUT;
  }
  if (spa >= rmp.hostBytes) return PvalidateRet.NPF_RMP;
  const s = rmp.store;
  const pfn = spa / 4096;
  const region = Math.floor(pfn / PAGES_PER_REGION);
  const rec = s.recordOf(region);
  const mode = rec < 0 ? RegionMode.UNTOUCHED : s.modeAt(rec);
  const gfn = gpa / 4096;
  if (mode === RegionMode.LARGE) {
    const offset = pfn - region * PAGES_PER_REGION;
    if (!(s.flagsAt(rec) & F_ASSIGNED) || s.asidAt(rec) !== asid || s.gfnAt(rec) + offset !== gfn) {
      return PvalidateRet.NPF_RMP;
    }
    // A 4K request on a 2M entry: #NPF with SIZEM, which KVM answers with PSMASH.
    if (size === RmpPageSize.SIZE_4K) return PvalidateRet.NPF_RMP_SIZEM;
    out[0] = rec;
    out[1] = -1;
    return PvalidateRet.SUCCESS;
  }
  if (mode === RegionMode.SMALL) {
    const i = s.slabIndex(rec, pfn);
    if (!(s.sFlagsAt(i) & F_ASSIGNED) || s.sAsidAt(i) !== asid || s.sGfnAt(i) !== gfn) {
      return PvalidateRet.NPF_RMP;
    }
    // A 2M request over 4K entries fails with a status the guest can handle.
    if (size === RmpPageSize.SIZE_2M) return PvalidateRet.FAIL_SIZEMISMATCH;
    out[0] = rec;
    out[1] = i;
    return PvalidateRet.SUCCESS;
  }
  return PvalidateRet.NPF_RMP;
}
