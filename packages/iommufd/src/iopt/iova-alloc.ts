import { alignUp, lowestBit, roundupPow2 } from "../core/check.js";
import { fail } from "../errors.js";
import { PAGE_SIZE, ULONG_MAX } from "../uapi.js";

/** An inclusive IOVA interval. */
export interface Span {
  start: number;
  last: number;
}

/**
 * The holes of the union of `used` lists inside [start, last], in ascending
 * order (interval_tree_double_span_iter's holes). Each list is sorted by start.
 */
export function holesOf(used: readonly (readonly Span[])[], start: number, last: number): Span[] {
  const all: Span[] = [];
  for (const list of used)
    for (const s of list) if (s.last >= start && s.start <= last) all.push(s);
  all.sort((a, b) => a.start - b.start);
  const holes: Span[] = [];
  let cur = start;
  for (const s of all) {
    if (s.start > cur) holes.push({ start: cur, last: s.start - 1 });
    if (s.last + 1 > cur) cur = s.last + 1;
    if (cur > last) return holes;
  }
  if (cur <= last) holes.push({ start: cur, last });
  return holes;
}

/**
 * iopt_alloc_iova(): first fit. The IOVA keeps the source address's sub-page
 * offset and is aligned to roundup_pow_of_two(length), or to the lowest set bit
 * of the source address when that is smaller (so a THP can map huge). Candidates
 * are the allowed ranges, or [PAGE_SIZE, ULONG_MAX - PAGE_SIZE] when none are
 * set, so IOVA 0 is never returned. EOVERFLOW for length 0 or >= ULONG_MAX / 2;
 * EINVAL when that alignment is below the table's; ENOSPC when nothing fits.
 */
export function allocIova(
  uptr: number,
  length: number,
  tableAlignment: number,
  allowed: readonly Span[],
  used: readonly (readonly Span[])[],
): number {
  if (length === 0 || length >= ULONG_MAX / 2) {
    fail("EOVERFLOW", "length", length, "is 0 or too large for an automatic IOVA");
  }
  const pageOffset = uptr % PAGE_SIZE;
  const align = uptr === 0 ? roundupPow2(length) : Math.min(roundupPow2(length), lowestBit(uptr));
  if (align < tableAlignment) {
    fail(
      "EINVAL",
      "user_va",
      uptr,
      `gives an IOVA alignment 0x${align.toString(16)} below the IOAS's 0x${tableAlignment.toString(16)}`,
    );
  }
  const lo = PAGE_SIZE;
  const hi = ULONG_MAX - PAGE_SIZE;
  const candidates =
    allowed.length === 0
      ? [{ start: lo, last: hi }]
      : allowed
          .filter((a) => a.last >= lo && a.start <= hi)
          .map((a) => ({ start: Math.max(a.start, lo), last: Math.min(a.last, hi) }));
  for (const c of candidates) {
    const start = fits(c, length, align, pageOffset);
    if (start < 0) continue;
    for (const h of holesOf(used, c.start, c.last)) {
      const s = fits(h, length, align, pageOffset);
      if (s >= 0) return s;
    }
  }
  return fail("ENOSPC", "length", length, "no free IOVA range fits");
}

/** ALIGN(start, align) | page_offset if [that, +length) still fits in the span, else -1. */
function fits(span: Span, length: number, align: number, pageOffset: number): number {
  if (span.last - span.start < length - 1) return -1;
  const a = alignUp(span.start, align);
  // The kernel ORs the offset in; only the low 12 bits can differ.
  const low = a % PAGE_SIZE;
  const s = a - low + (low | pageOffset);
  if (s > span.last || span.last - s < length - 1) return -1;
  return s;
}
