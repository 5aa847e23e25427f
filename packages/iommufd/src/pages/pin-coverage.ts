/**
 * How many users cover each page index of an iopt_pages: the union of the
 * kernel's domains_itree (one node per area filled into domains) and
 * access_itree (one node per access pin). A page is pinned exactly while its
 * count is non-zero, so adding a user reports the sub-ranges that went from 0 to
 * 1 (to pin) and removing one those that went back to 0 (to unpin).
 *
 * Kept as sorted, disjoint segments with a count each: the number of segments
 * grows with the number of users, never with the number of pages.
 */
export class PinCoverage {
  private starts: number[] = [];
  private lasts: number[] = [];
  private counts: number[] = [];

  /** Pages with a non-zero count. */
  covered = 0;

  /** The sub-ranges of [first, last] no user covers yet (what {@link add} would pin). */
  uncovered(first: number, last: number): [number, number][] {
    const out: [number, number][] = [];
    let cur = first;
    for (
      let i = this.firstEndingAtOrAfter(first);
      i < this.starts.length && this.starts[i]! <= last;
      i++
    ) {
      if (this.starts[i]! > cur) out.push([cur, this.starts[i]! - 1]);
      cur = this.lasts[i]! + 1;
    }
    if (cur <= last) out.push([cur, last]);
    return out;
  }

  /** One more user over [first, last]. */
  add(first: number, last: number): void {
    for (const [a, b] of this.uncovered(first, last)) this.insert(a, b, 0);
    this.split(first);
    this.split(last + 1);
    for (
      let i = this.firstEndingAtOrAfter(first);
      i < this.starts.length && this.starts[i]! <= last;
      i++
    ) {
      if (this.counts[i] === 0) this.covered += this.lasts[i]! - this.starts[i]! + 1;
      this.counts[i]!++;
    }
    this.merge();
  }

  /** One user fewer over [first, last]; returns the sub-ranges now uncovered. */
  remove(first: number, last: number): [number, number][] {
    this.split(first);
    this.split(last + 1);
    const gone: [number, number][] = [];
    for (
      let i = this.firstEndingAtOrAfter(first);
      i < this.starts.length && this.starts[i]! <= last;
      i++
    ) {
      if (--this.counts[i]! === 0) {
        gone.push([this.starts[i]!, this.lasts[i]!]);
        this.covered -= this.lasts[i]! - this.starts[i]! + 1;
      }
    }
    this.merge();
    return gone;
  }

  /** The count at one page index. */
  countAt(index: number): number {
    const i = this.firstEndingAtOrAfter(index);
    return i < this.starts.length && this.starts[i]! <= index ? this.counts[i]! : 0;
  }

  /** True when nothing is covered. */
  get isEmpty(): boolean {
    return this.starts.length === 0;
  }

  private firstEndingAtOrAfter(index: number): number {
    let lo = 0;
    let hi = this.lasts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lasts[mid]! < index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(a: number, b: number, count: number): void {
    const i = this.firstEndingAtOrAfter(a);
    this.starts.splice(i, 0, a);
    this.lasts.splice(i, 0, b);
    this.counts.splice(i, 0, count);
  }

  /** Makes `index` the start of a segment if a segment spans it. */
  private split(index: number): void {
    const i = this.firstEndingAtOrAfter(index);
    if (i >= this.starts.length || this.starts[i]! >= index) return;
    this.starts.splice(i + 1, 0, index);
    this.lasts.splice(i + 1, 0, this.lasts[i]!);
    this.counts.splice(i + 1, 0, this.counts[i]!);
    this.lasts[i] = index - 1;
  }

  /** Drops zero segments and joins touching segments of equal count. */
  private merge(): void {
    const s: number[] = [];
    const l: number[] = [];
    const c: number[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      if (this.counts[i] === 0) continue;
      const n = s.length - 1;
      if (n >= 0 && l[n]! + 1 === this.starts[i] && c[n] === this.counts[i]) l[n] = this.lasts[i]!;
      else {
        s.push(this.starts[i]!);
        l.push(this.lasts[i]!);
        c.push(this.counts[i]!);
      }
    }
    this.starts = s;
    this.lasts = l;
    this.counts = c;
  }
}
