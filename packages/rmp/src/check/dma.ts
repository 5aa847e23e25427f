import type { Rmp } from "../rmp.js";
import { F_ASSIGNED, F_VALIDATED, RegionMode, type RmpStore } from "../table/store.js";
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
  // Kept small so that a DMA loop inlines it; the 2M and 4K paths are separate.
  const s = rmp.store;
  const region = Math.floor(spa * INV_2M);
  if (region >= s.regionCount || spa < 0) return DmaVerdict.NOT_COVERED;
  const c = s.dir[region >>> 9]!;
  if (c < 0) return DmaVerdict.NOT_ASSIGNED;
  const rec = (c << 9) | (region & 511);
  const meta = s.meta[rec]!;
  const mode = meta & 3;
  if (mode === RegionMode.LARGE) return checkLarge(s, meta, rec, spa, leafLg2, asid, iova);
  if (mode === RegionMode.SMALL) return checkSmall(s, rec, spa, leafLg2, asid, iova);
  return DmaVerdict.NOT_ASSIGNED;
}

// meta words: flags in bits 9:2 (F_ASSIGNED = bit 2, F_VALIDATED = bit 4), ASID in 19:10.
const M_ASSIGNED = F_ASSIGNED << 2;
const M_VALIDATED = F_VALIDATED << 2;

function checkLarge(
  s: RmpStore,
  meta: number,
  rec: number,
  spa: number,
  leafLg2: number,
  asid: number,
  iova: number,
): DmaVerdict {
  if ((meta & M_ASSIGNED) === 0) return DmaVerdict.NOT_ASSIGNED;
  if (leafLg2 < 21) return DmaVerdict.LEAF_SMALLER_THAN_RMP;
  if (meta >>> 10 !== asid) return DmaVerdict.WRONG_ASID;
  if (s.gfn[rec]! + (Math.floor(spa * INV_4K) & 511) !== Math.floor(iova * INV_4K))
    return DmaVerdict.WRONG_GPA;
  if (s.requireValidated && (meta & M_VALIDATED) === 0) return DmaVerdict.NOT_VALIDATED;
  return DmaVerdict.ALLOWED;
}

function checkSmall(
  s: RmpStore,
  rec: number,
  spa: number,
  leafLg2: number,
  asid: number,
  iova: number,
): DmaVerdict {
  const i = s.slot[rec]! * 512 + (Math.floor(spa * INV_4K) & 511);
  const meta = s.sMeta[i]!;
  if ((meta & M_ASSIGNED) === 0) return DmaVerdict.NOT_ASSIGNED;
  if (leafLg2 >= 21) return DmaVerdict.LEAF_LARGER_THAN_RMP;
  if (meta >>> 10 !== asid) return DmaVerdict.WRONG_ASID;
  if (s.sGfn[i] !== Math.floor(iova * INV_4K)) return DmaVerdict.WRONG_GPA;
  if (s.requireValidated && (meta & M_VALIDATED) === 0) return DmaVerdict.NOT_VALIDATED;
  return DmaVerdict.ALLOWED;
}

/**
 * {@link checkDmaTrusted} for a burst of accesses by one device (a scatter-gather
 * transfer), writing one verdict per access into `verdicts` and returning how many
 * were denied. The loop keeps the table's arrays in locals, so its cost does not
 * depend on the caller's code being inlined.
 */
export function checkDmaTrustedBurst(
  rmp: Rmp,
  spas: Float64Array,
  iovas: Float64Array,
  count: number,
  leafLg2: number,
  asid: number,
  verdicts: Uint8Array,
): number {
  const s = rmp.store;
  const dir = s.dir;
  const meta = s.meta;
  const gfn = s.gfn;
  const regions = s.regionCount;
  const large = leafLg2 >= 21;
  let denied = 0;
  for (let k = 0; k < count; k++) {
    const spa = spas[k]!;
    const region = Math.floor(spa * INV_2M);
    let v: number = DmaVerdict.NOT_ASSIGNED;
    if (region >= regions || spa < 0) {
      v = DmaVerdict.NOT_COVERED;
    } else {
      const c = dir[region >>> 9]!;
      if (c >= 0) {
        const rec = (c << 9) | (region & 511);
        const m = meta[rec]!;
        const mode = m & 3;
        if (mode === RegionMode.LARGE) {
          if ((m & M_ASSIGNED) === 0) v = DmaVerdict.NOT_ASSIGNED;
          else if (!large) v = DmaVerdict.LEAF_SMALLER_THAN_RMP;
          else if (m >>> 10 !== asid) v = DmaVerdict.WRONG_ASID;
          else if (gfn[rec]! + (Math.floor(spa * INV_4K) & 511) !== Math.floor(iovas[k]! * INV_4K))
            v = DmaVerdict.WRONG_GPA;
          else if (s.requireValidated && (m & M_VALIDATED) === 0) v = DmaVerdict.NOT_VALIDATED;
          else v = DmaVerdict.ALLOWED;
        } else if (mode === RegionMode.SMALL) {
          v = checkSmall(s, rec, spa, leafLg2, asid, iovas[k]!);
        }
      }
    }
    verdicts[k] = v;
    if (v !== DmaVerdict.ALLOWED) denied++;
  }
  return denied;
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
  const mode = s.modeAt(rec);
  if (mode === RegionMode.LARGE) {
    return (s.flagsAt(rec) & F_ASSIGNED) === 0 ? DmaVerdict.ALLOWED : DmaVerdict.ASSIGNED_TO_GUEST;
  }
  if (mode === RegionMode.SMALL) {
    const i = s.slot[rec]! * 512 + (Math.floor(spa * INV_4K) & 511);
    if ((s.sFlagsAt(i) & F_ASSIGNED) !== 0) return DmaVerdict.ASSIGNED_TO_GUEST;
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
