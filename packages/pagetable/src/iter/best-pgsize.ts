import { ctzNumber, floorLog2 } from "../log2.js";

/**
 * pt_compute_best_pgsize(): the largest page size, allowed by `sizes`, at which
 * both `va` and `oa` start a page and that fits before `last`. 0 when none does.
 *
 * `sizes` is a 64-entry membership table indexed by log2 size (1 = allowed).
 * The length is `last - va + 1`, computed on exact integers.
 */
export function computeBestPgsize(sizes: Uint8Array, va: number, last: number, oa: number): number {
  return bestPgsizeOfLength(sizes, va, last - va + 1, oa);
}

/**
 * computeBestPgsize() of [va, va + len): the form map takes, so that no new
 * double (`last`) is made to pass along.
 */
export function bestPgsizeOfLength(sizes: Uint8Array, va: number, len: number, oa: number): number {
  if (len <= 1) return 0;
  let limit = Math.min(ctzNumber(va), ctzNumber(oa), floorLog2(len));
  if (limit > 63) limit = 63;
  for (let lg2 = limit; lg2 > 0; lg2--) if (sizes[lg2] === 1) return lg2;
  return 0;
}

/** The largest allowed size ≤ `limitLg2`, or 0. */
export function largestSizeAtMost(sizes: Uint8Array, limitLg2: number): number {
  for (let lg2 = Math.min(limitLg2, 63); lg2 > 0; lg2--) if (sizes[lg2] === 1) return lg2;
  return 0;
}

/** Builds a membership table from a page-size bitmap given as a number (sum of sizes). */
export function sizesFromBitmap(bitmap: number): Uint8Array {
  const sizes = new Uint8Array(64);
  let rest = bitmap;
  for (let lg2 = 63; lg2 >= 0 && rest > 0; lg2--) {
    const v = 2 ** lg2;
    if (rest >= v) {
      sizes[lg2] = 1;
      rest -= v;
    }
  }
  return sizes;
}

/** The page-size bitmap (sum of 2^lg2 over allowed sizes) of a membership table. */
export function bitmapFromSizes(sizes: Uint8Array): number {
  let bitmap = 0;
  for (let lg2 = 0; lg2 < 64; lg2++) if (sizes[lg2] === 1) bitmap += 2 ** lg2;
  return bitmap;
}

/** The log2 sizes set in a page-size bitmap, ascending. */
export function sizesOfBitmap(bitmap: number): number[] {
  const out: number[] = [];
  const m = sizesFromBitmap(bitmap);
  for (let lg2 = 0; lg2 < 64; lg2++) if (m[lg2] === 1) out.push(lg2);
  return out;
}
