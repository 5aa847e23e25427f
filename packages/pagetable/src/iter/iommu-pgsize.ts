import { ctzNumber, floorLog2 } from "../log2.js";

/**
 * iommu_pgsize() of drivers/iommu/iommu.c: how the IOMMU core cuts an
 * iommu_map() into map_pages() calls. The page size is the largest allowed one
 * that fits the remaining size and the alignment of iova|paddr; the count runs up
 * to the next larger allowed size's boundary when iova and paddr are mutually
 * aligned for it and at least one such larger page fits after it, else over all
 * that remains.
 *
 * Returns the log2 page size (0 if none) and writes the count into `out[0]`.
 */
export function iommuPgsize(
  sizes: Uint8Array,
  iova: number,
  paddr: number,
  size: number,
  out: Float64Array,
): number {
  const sizeLg2 = floorLog2(size);
  const merge = Math.min(ctzNumber(Math.abs(iova)), ctzNumber(paddr));
  let idx = 0;
  for (let lg2 = Math.min(sizeLg2, merge, 63); lg2 > 0; lg2--) {
    if (sizes[lg2] === 1) {
      idx = lg2;
      break;
    }
  }
  if (idx === 0) {
    out[0] = 0;
    return 0;
  }
  let next = 0;
  for (let lg2 = idx + 1; lg2 < 64; lg2++) {
    if (sizes[lg2] === 1) {
      next = lg2;
      break;
    }
  }
  let span = size;
  if (next !== 0) {
    const pgsizeNext = 2 ** next;
    const mutuallyAligned = mod(iova, pgsizeNext) === mod(paddr, pgsizeNext);
    if (mutuallyAligned) {
      const offset = pgsizeNext - mod(iova, pgsizeNext);
      if (offset + pgsizeNext <= size) span = offset;
    }
  }
  out[0] = Math.floor(span / 2 ** idx);
  return idx;
}

function mod(x: number, m: number): number {
  return x - Math.floor(x / m) * m;
}
