import { fail } from "../errors.js";

/**
 * The smashlab HWPT page-size cap: the domain's pgsize_bitmap without every size
 * above `maxPageSize` (0 keeps them all). The cap must be a power of two no
 * smaller than the domain's smallest page (EINVAL).
 */
export function capPgsizeBitmap(bitmap: number, maxPageSize: number): number {
  if (maxPageSize === 0) return bitmap;
  if (
    !Number.isSafeInteger(maxPageSize) ||
    maxPageSize < 0 ||
    2 ** Math.round(Math.log2(maxPageSize)) !== maxPageSize
  ) {
    fail("EINVAL", "maxPageSize", maxPageSize, "must be a power of two (or 0 for no cap)");
  }
  const capped = bitmap % (maxPageSize * 2);
  if (capped === 0)
    fail("EINVAL", "maxPageSize", maxPageSize, "is below the smallest page size of the domain");
  return capped;
}
