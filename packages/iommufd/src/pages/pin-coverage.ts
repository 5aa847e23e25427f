import { firstEndingAtOrAfter } from "./extents.js";

// A segment's three numbers in the store: first index, last index, count.
const START = 0;
const LAST = 1;
const COUNT = 2;
const W = 3;

/** Where a coverage starts: nothing allocated until the first change. */
const NONE = new Float64Array(0);

/** Where a change builds the new segments (changes do not nest), copied back after. */
let build = new Float64Array(64 * W);

/**
 * How many users cover each page index of an iopt_pages: the union of the
 * kernel's domains_itree (one node per area filled into domains) and
 * access_itree (one node per access pin). A page is pinned exactly while its
 * count is non-zero, so adding a user reports the sub-ranges that went from 0 to
 * 1 (to pin) and removing one those that went back to 0 (to unpin).
 *
 * Kept as sorted, disjoint segments with a count each, touching segments of
 * equal count joined: the number of segments grows with the number of users,
 * never with the number of pages. They live in a typed array (indices exceed
 * 2^30), rebuilt in a shared scratch array on each change and copied back, so a
 * change allocates nothing once the array is large enough (the first one holds
 * two segments, small enough for V8 to keep on its heap: an iopt_pages is made
 * per MAP).
 */
export class PinCoverage {
  private d = NONE;
  private n = 0;
  /** Segments built so far by the current change. */
  private m = 0;

  /** Pages with a non-zero count. */
  covered = 0;

  /** The sub-ranges of [first, last] no user covers yet (what {@link add} would pin). */
  uncovered(first: number, last: number): [number, number][] {
    const out: [number, number][] = [];
    const d = this.d;
    let cur = first;
    for (let i = this.firstEndingAtOrAfter(first); i < this.n && d[W * i + START]! <= last; i++) {
      const start = d[W * i + START]!;
      if (start > cur) out.push([cur, start - 1]);
      cur = d[W * i + LAST]! + 1;
    }
    if (cur <= last) out.push([cur, last]);
    return out;
  }

  /**
   * The first sub-range of [from, last] no user covers: returns its first index
   * and puts its last in `out[0]`; -1 when [from, last] is all covered. Walks
   * what {@link uncovered} lists without making the list.
   */
  firstUncovered(from: number, last: number, out: Float64Array): number {
    const d = this.d;
    let cur = from;
    for (let i = this.firstEndingAtOrAfter(from); i < this.n; i++) {
      const start = d[W * i + START]!;
      if (start > last) break;
      if (start > cur) {
        out[0] = start - 1;
        return cur;
      }
      cur = d[W * i + LAST]! + 1;
    }
    if (cur > last) return -1;
    out[0] = last;
    return cur;
  }

  /** One more user over [first, last]. */
  add(first: number, last: number): void {
    if (this.n === 0) {
      // The first user: one segment.
      if (this.d.length < W) this.d = new Float64Array(2 * W);
      this.d[START] = first;
      this.d[LAST] = last;
      this.d[COUNT] = 1;
      this.n = 1;
      this.covered = last - first + 1;
      return;
    }
    this.change(first, last, 1, null);
  }

  /** One user fewer over [first, last]; returns the sub-ranges now uncovered. */
  remove(first: number, last: number): [number, number][] {
    const gone: [number, number][] = [];
    const d = this.d;
    if (this.n === 1 && d[COUNT] === 1 && d[START] === first && d[LAST] === last) {
      // The last user of exactly its own range.
      gone.push([first, last]);
      this.n = 0;
      this.covered = 0;
      return gone;
    }
    this.change(first, last, -1, gone);
    return gone;
  }

  /** The count at one page index. */
  countAt(index: number): number {
    const i = this.firstEndingAtOrAfter(index);
    return i < this.n && this.d[W * i + START]! <= index ? this.d[W * i + COUNT]! : 0;
  }

  /** True when nothing is covered. */
  get isEmpty(): boolean {
    return this.n === 0;
  }

  /**
   * Adds `delta` (+1 or -1) to the count of every covered page in [first,
   * last]; with +1 the uncovered pages there get a count of 1. Pieces whose
   * count drops to 0 go to `gone`, in order.
   */
  private change(
    first: number,
    last: number,
    delta: number,
    gone: [number, number][] | null,
  ): void {
    // Each old segment gives at most two (a gap or a head, then its middle), plus
    // a tail and a last gap: at most 2n + 2.
    const need = W * (2 * this.n + 2);
    if (build.length < need) build = new Float64Array(Math.max(need, 2 * build.length));
    this.m = 0;
    const d = this.d;
    const n = this.n;
    let i = 0;
    while (i < n && d[W * i + LAST]! < first) {
      this.emit(d[W * i + START]!, d[W * i + LAST]!, d[W * i + COUNT]!);
      i++;
    }
    let cur = first;
    for (; i < n && d[W * i + START]! <= last; i++) {
      const a = d[W * i + START]!;
      const b = d[W * i + LAST]!;
      const c = d[W * i + COUNT]!;
      if (a < first) this.emit(a, first - 1, c);
      const from = Math.max(a, first);
      if (delta > 0 && from > cur) {
        this.emit(cur, from - 1, 1);
        this.covered += from - cur;
      }
      const to = Math.min(b, last);
      if (c + delta === 0) {
        this.covered -= to - from + 1;
        gone?.push([from, to]);
      }
      this.emit(from, to, c + delta);
      if (b > last) this.emit(last + 1, b, c);
      cur = to + 1;
    }
    if (delta > 0 && cur <= last) {
      this.emit(cur, last, 1);
      this.covered += last - cur + 1;
    }
    for (; i < n; i++) this.emit(d[W * i + START]!, d[W * i + LAST]!, d[W * i + COUNT]!);
    const size = W * this.m;
    if (this.d.length < size) this.d = new Float64Array(Math.max(size, 2 * W, 2 * this.d.length));
    const d2 = this.d;
    for (let k = 0; k < size; k++) d2[k] = build[k]!;
    this.n = this.m;
  }

  /** Appends a segment to the array being built: zero counts dropped, equal neighbours joined. */
  private emit(start: number, last: number, count: number): void {
    if (count === 0) return;
    const o = build;
    const prev = W * (this.m - 1);
    if (this.m > 0 && o[prev + LAST]! + 1 === start && o[prev + COUNT] === count) {
      o[prev + LAST] = last;
      return;
    }
    const at = W * this.m;
    o[at + START] = start;
    o[at + LAST] = last;
    o[at + COUNT] = count;
    this.m++;
  }

  private firstEndingAtOrAfter(index: number): number {
    return firstEndingAtOrAfter(this.d, this.n, W, LAST, index);
  }
}
