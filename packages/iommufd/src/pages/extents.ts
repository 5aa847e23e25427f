/**
 * The search both extent stores share: records of `stride` doubles, sorted and
 * disjoint, with their last index at offset `lastAt`; the position of the first
 * record whose last index is at or after `index` (`n` when there is none).
 */
export function firstEndingAtOrAfter(
  d: Float64Array,
  n: number,
  stride: number,
  lastAt: number,
  index: number,
): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (d[stride * mid + lastAt]! < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
