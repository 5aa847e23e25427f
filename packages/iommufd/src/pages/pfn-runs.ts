/**
 * The PFNs an iopt_pages has pinned, as runs of physically contiguous pages
 * (first index, last index, physical address of the first). Once pinned, a
 * page's address no longer depends on its source: a process may exit or munmap
 * and the pinned pages stay (the selftest's fork_gone).
 */
export class PfnRuns {
  private firsts: number[] = [];
  private lasts: number[] = [];
  private pas: number[] = [];

  /** Adds the run [first, last] at `pa`; the range must not be stored yet. */
  add(first: number, last: number, pa: number): void {
    // Runs are kept as the source gave them (one folio at most), never joined.
    const i = this.indexAfter(first);
    this.firsts.splice(i, 0, first);
    this.lasts.splice(i, 0, last);
    this.pas.splice(i, 0, pa);
  }

  /** Forgets [first, last] (any part of it that is stored). */
  remove(first: number, last: number): void {
    const f: number[] = [];
    const l: number[] = [];
    const p: number[] = [];
    for (let i = 0; i < this.firsts.length; i++) {
      const a = this.firsts[i]!;
      const b = this.lasts[i]!;
      const pa = this.pas[i]!;
      if (b < first || a > last) {
        f.push(a);
        l.push(b);
        p.push(pa);
        continue;
      }
      if (a < first) {
        f.push(a);
        l.push(first - 1);
        p.push(pa);
      }
      if (b > last) {
        f.push(last + 1);
        l.push(b);
        p.push(pa + (last + 1 - a) * 4096);
      }
    }
    this.firsts = f;
    this.lasts = l;
    this.pas = p;
  }

  /**
   * The physical address of page `index` and, in `out[0]`, how many pages from
   * it on are contiguous (at most up to `last`); -1 when it is not pinned.
   */
  lookup(index: number, last: number, out: Float64Array): number {
    const i = this.indexAfter(index) - 1;
    if (i < 0 || this.lasts[i]! < index) return -1;
    out[0] = Math.min(this.lasts[i]!, last) - index + 1;
    return this.pas[i]! + (index - this.firsts[i]!) * 4096;
  }

  /** True when the physical page `pa` is pinned here. */
  holds(pa: number): boolean {
    for (let i = 0; i < this.firsts.length; i++) {
      const start = this.pas[i]!;
      if (pa >= start && pa < start + (this.lasts[i]! - this.firsts[i]! + 1) * 4096) return true;
    }
    return false;
  }

  /** Number of stored runs. */
  get runs(): number {
    return this.firsts.length;
  }

  private indexAfter(index: number): number {
    let lo = 0;
    let hi = this.firsts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.firsts[mid]! <= index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
