import { ctzNumber, floorLog2, INV_POW2, lg2Mod, POW2 } from "../log2.js";

/**
 * iommu_pgsize() of drivers/iommu/iommu.c: how the IOMMU core cuts an
 * iommu_map() into map_pages() calls. The page size is the largest allowed one
 * that fits the remaining size and the alignment of iova|paddr; the count runs up
 * to the next larger allowed size's boundary when iova and paddr are mutually
 * aligned for it and at least one such larger page fits after it, else over all
 * that remains.
 *
 * Returns the log2 page size (0 if none) and writes the count into `out[0]`.
 * Runs once per map_pages() call of every iommu_map(), so it allocates nothing
 * and uses the power-of-two tables rather than Math.pow and division.
 */
export function iommuPgsize(
  sizes: Uint8Array,
  iova: number,
  paddr: number,
  size: number,
  out: Float64Array,
): number {
  let idx = Math.min(floorLog2(size), ctzNumber(iova), ctzNumber(paddr), 63);
  while (idx > 0 && sizes[idx] !== 1) idx--;
  if (idx === 0) {
    out[0] = 0;
    return 0;
  }
  let next = idx + 1;
  while (next < 64 && sizes[next] !== 1) next++;
  let span = size;
  if (next < 64) {
    // Only worth stopping at the next size's boundary when iova and paddr sit at
    // the same offset inside it, and one such page fits after the boundary.
    const iovaOff = lg2Mod(iova, next);
    if (iovaOff === lg2Mod(paddr, next)) {
      const pgsizeNext = POW2[next]!;
      const offset = pgsizeNext - iovaOff;
      if (offset + pgsizeNext <= size) span = offset;
    }
  }
  out[0] = Math.floor(span * INV_POW2[idx]!);
  return idx;
}
