import type { Rmp } from "../rmp.js";
import { F_ASSIGNED, F_VALIDATED, RegionMode } from "../table/store.js";
import { DmaVerdict } from "./verdict.js";

const INV_4K = 1 / 4096;
const INV_2M = 1 / 2 ** 21;

/**
 * The IOMMU's RMP check for a trusted (T=1) DMA (coco.md §3): translate IOVA
 * (= GPA) to SPA, then the RMP entry ruling the page must be assigned to the
 * device's guest, at that GPA, with a size class equal to the IO leaf's: a leaf
 * of 2M or more is checked as 2M and needs a 2M entry; a leaf of 4K..1M is
 * checked as 4K and needs a 4K entry; there is no retry at the other size. A 1G
 * leaf is checked one 2M region at a time.
 *
 * Reads one directory slot, one region record and at most one 4K entry.
 */
export function checkDmaTrusted(
  rmp: Rmp,
  spa: number,
  leafLg2: number,
  asid: number,
  iova: number,
): DmaVerdict {
  const s = rmp.store;
  const region = Math.floor(spa * INV_2M);
  if (region >= s.regionCount || spa < 0) return DmaVerdict.NOT_COVERED;
  const c = s.dir[region >>> 9]!;
  if (c < 0) return DmaVerdict.NOT_ASSIGNED;
  const rec = (c << 9) | (region & 511);
  const mode = s.mode[rec]!;
  const large = leafLg2 >= 21;
  if (mode === RegionMode.LARGE) {
    const f = s.flags[rec]!;
    if ((f & F_ASSIGNED) === 0) return DmaVerdict.NOT_ASSIGNED;
    if (!large) return DmaVerdict.LEAF_SMALLER_THAN_RMP;
    if (s.asid[rec] !== asid) return DmaVerdict.WRONG_ASID;
    const page = Math.floor(spa * INV_4K) & 511;
    if (s.gfn[rec]! + page !== Math.floor(iova * INV_4K)) return DmaVerdict.WRONG_GPA;
    if (rmp.options.trustedDmaRequiresValidated && (f & F_VALIDATED) === 0)
      return DmaVerdict.NOT_VALIDATED;
    return DmaVerdict.ALLOWED;
  }
  if (mode === RegionMode.SMALL) {
    const i = s.slot[rec]! * 512 + (Math.floor(spa * INV_4K) & 511);
    const f = s.sFlags[i]!;
    if ((f & F_ASSIGNED) === 0) return DmaVerdict.NOT_ASSIGNED;
    if (large) return DmaVerdict.LEAF_LARGER_THAN_RMP;
    if (s.sAsid[i] !== asid) return DmaVerdict.WRONG_ASID;
    if (s.sGfn[i] !== Math.floor(iova * INV_4K)) return DmaVerdict.WRONG_GPA;
    if (rmp.options.trustedDmaRequiresValidated && (f & F_VALIDATED) === 0)
      return DmaVerdict.NOT_VALIDATED;
    return DmaVerdict.ALLOWED;
  }
  return DmaVerdict.NOT_ASSIGNED;
}

/**
 * The IOMMU's RMP check for an untrusted (T=0) DMA: the page must not be
 * assigned; through a leaf of 2M or more (with `untrustedLargeLeafChecksWholeRegion`,
 * the default) no page of its 2M region may be. Whether reads of assigned pages
 * are blocked as well as writes is open (coco.md §8 q4); both are, here.
 */
export function checkDmaUntrusted(rmp: Rmp, spa: number, leafLg2: number): DmaVerdict {
  const s = rmp.store;
  const region = Math.floor(spa * INV_2M);
  if (region >= s.regionCount || spa < 0) return DmaVerdict.NOT_COVERED;
  const c = s.dir[region >>> 9]!;
  if (c < 0) return DmaVerdict.ALLOWED;
  const rec = (c << 9) | (region & 511);
  const mode = s.mode[rec]!;
  if (mode === RegionMode.LARGE) {
    return (s.flags[rec]! & F_ASSIGNED) === 0 ? DmaVerdict.ALLOWED : DmaVerdict.ASSIGNED_TO_GUEST;
  }
  if (mode === RegionMode.SMALL) {
    const i = s.slot[rec]! * 512 + (Math.floor(spa * INV_4K) & 511);
    if ((s.sFlags[i]! & F_ASSIGNED) !== 0) return DmaVerdict.ASSIGNED_TO_GUEST;
    if (
      leafLg2 >= 21 &&
      rmp.options.untrustedLargeLeafChecksWholeRegion &&
      s.assigned4k[rec]! > 0
    ) {
      return DmaVerdict.ASSIGNED_IN_REGION;
    }
  }
  return DmaVerdict.ALLOWED;
}
