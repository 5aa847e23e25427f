import type { Rmp } from "../rmp.js";
import { F_ASSIGNED, F_VALIDATED, RegionMode } from "../table/store.js";
import { CpuVerdict } from "./verdict.js";

const INV_4K = 1 / 4096;
const INV_2M = 1 / 2 ** 21;

/**
 * A guest's private (C-bit) access through NPT (coco.md §2 "CPU-side checks"):
 * the page must be assigned to the guest's ASID at that GPA (#NPF RMP), an NPT
 * leaf larger than the 4K RMP entry under it is #NPF RMP|SIZEM (KVM PSMASHes and
 * zaps), and the page must be validated (#VC in the guest otherwise). A 4K NPT
 * leaf over a 2M entry is fine for ordinary accesses.
 */
export function checkCpuAccess(
  rmp: Rmp,
  spa: number,
  gpa: number,
  asid: number,
  nptLeafLg2: number,
): CpuVerdict {
  const s = rmp.store;
  const region = Math.floor(spa * INV_2M);
  if (region >= s.regionCount || spa < 0) return CpuVerdict.NPF_RMP;
  const rec = s.recordOf(region);
  const mode = rec < 0 ? RegionMode.UNTOUCHED : s.modeAt(rec);
  const page = Math.floor(spa * INV_4K) & 511;
  const gfn = Math.floor(gpa * INV_4K);
  let f: number;
  if (mode === RegionMode.LARGE) {
    f = s.flagsAt(rec);
    if ((f & F_ASSIGNED) === 0 || s.asidAt(rec) !== asid || s.gfnAt(rec) + page !== gfn)
      return CpuVerdict.NPF_RMP;
  } else if (mode === RegionMode.SMALL) {
    const i = s.slabIndex(rec, page);
    f = s.sFlagsAt(i);
    if ((f & F_ASSIGNED) === 0 || s.sAsidAt(i) !== asid || s.sGfnAt(i) !== gfn)
      return CpuVerdict.NPF_RMP;
    if (nptLeafLg2 >= 21) return CpuVerdict.NPF_RMP_SIZEM;
  } else {
    return CpuVerdict.NPF_RMP;
  }
  return (f & F_VALIDATED) === 0 ? CpuVerdict.VC_NOT_VALIDATED : CpuVerdict.ALLOWED;
}

/**
 * A host write through the direct map: an assigned page faults, and so does any
 * page written through a 2M mapping that covers an assigned 4K page — which is
 * why Linux splits its direct map around a page before making it private
 * (adjust_direct_map; hazard H13). The helpers record those splits.
 */
export function checkHostAccess(rmp: Rmp, spa: number): CpuVerdict {
  const s = rmp.store;
  const region = Math.floor(spa * INV_2M);
  if (region >= s.regionCount || spa < 0) return CpuVerdict.ALLOWED;
  const rec = s.recordOf(region);
  const mode = rec < 0 ? RegionMode.UNTOUCHED : s.modeAt(rec);
  if (mode === RegionMode.LARGE)
    return (s.flagsAt(rec) & F_ASSIGNED) !== 0 ? CpuVerdict.HOST_RMP_PF : CpuVerdict.ALLOWED;
  if (mode === RegionMode.SMALL) {
    const i = s.slabIndex(rec, Math.floor(spa * INV_4K));
    if ((s.sFlagsAt(i) & F_ASSIGNED) !== 0) return CpuVerdict.HOST_RMP_PF;
    if (s.assigned4kAt(rec) > 0 && !rmp.directMapSplit.has(region)) return CpuVerdict.HOST_RMP_PF;
  }
  return CpuVerdict.ALLOWED;
}
