import { firstEndingAtOrAfter } from "./extents.js";

const PAGE = 4096;

// An extent's four numbers in the store: first index, last index, PA of first, piece size.
const FIRST = 0;
const LAST = 1;
const PA = 2;
const PIECE = 3;
const W = 4;

/** Where a store starts: nothing allocated until the first run. */
const NONE = new Float64Array(0);

/**
 * The PFNs an iopt_pages has pinned, as runs of physically contiguous pages
 * (first index, last index, physical address of the first). Once pinned, a
 * page's address no longer depends on its source: a process may exit or munmap
 * and the pinned pages stay (the selftest's fork_gone).
 *
 * Runs are kept as the source gave them (one folio at most) and never joined:
 * a lookup stops at the end of its run, so a domain never maps across a folio.
 * They are stored compactly, though, so that pinning 64 GiB of 2M folios does
 * not store 32768 runs: an extent is a physically contiguous stretch of
 * indices with a piece size P (a power of two), standing for the runs one gets
 * by cutting it at every physical address that is a multiple of P. Two stored
 * stretches join only when that still describes exactly the runs added (they
 * touch, are contiguous, meet at a multiple of P, and each side is cut at P
 * already or is a single run that fits in one piece). P = 0 marks an extent of
 * one run whose piece size is not known yet.
 *
 * Extents live in one typed array (values exceed 2^30), four numbers each,
 * sorted by first index; the first one holds two extents, small enough for V8
 * to keep on its heap (an iopt_pages is made per MAP).
 */
export class PfnRuns {
  private d = NONE;
  private n = 0;

  /** Adds the run [first, last] at `pa`; the range must not be stored yet. */
  add(first: number, last: number, pa: number): void {
    this.insert(first, last, pa, 0);
  }

  /**
   * Adds the runs of [first, last], physically contiguous from `pa`, cut at
   * every physical address that is a multiple of `pieceBytes` (a power of two
   * of at least a page): what {@link PfnRuns.add} of each run would store,
   * without visiting the runs. The range must not be stored yet.
   */
  addPieces(first: number, last: number, pa: number, pieceBytes: number): void {
    const len = (last - first + 1) * PAGE;
    // A stretch that fits in one piece is a single run: its P is not settled by it.
    const single = Math.floor(pa / pieceBytes) === Math.floor((pa + len - 1) / pieceBytes);
    this.insert(first, last, pa, single ? 0 : pieceBytes);
  }

  /** Forgets [first, last] (any part of it that is stored). */
  remove(first: number, last: number): void {
    let i = this.firstEndingAtOrAfter(first);
    const d = this.d;
    if (i >= this.n || d[W * i + FIRST]! > last) return;
    const at = W * i;
    // An extent sticking out on the left keeps its head.
    if (d[at + FIRST]! < first) {
      if (d[at + LAST]! > last) {
        // Both ends stick out: one extent becomes two.
        this.open(i + 1);
        const e = this.d;
        const next = at + W;
        e[next + FIRST] = last + 1;
        e[next + LAST] = e[at + LAST]!;
        e[next + PA] = e[at + PA]! + (last + 1 - e[at + FIRST]!) * PAGE;
        e[next + PIECE] = e[at + PIECE]!;
        e[at + LAST] = first - 1;
        return;
      }
      d[at + LAST] = first - 1;
      i++;
    }
    let j = i;
    while (j < this.n && d[W * j + LAST]! <= last) j++;
    // An extent sticking out on the right keeps its tail.
    const tail = W * j;
    if (j < this.n && d[tail + FIRST]! <= last) {
      d[tail + PA] = d[tail + PA]! + (last + 1 - d[tail + FIRST]!) * PAGE;
      d[tail + FIRST] = last + 1;
    }
    this.close(i, j);
  }

  /**
   * The physical address of page `index` and, in `out[0]`, how many pages from
   * it on are contiguous in its run (at most up to `last`); -1 when it is not
   * pinned.
   */
  lookup(index: number, last: number, out: Float64Array): number {
    const i = this.firstEndingAtOrAfter(index);
    const d = this.d;
    const at = W * i;
    if (i >= this.n || d[at + FIRST]! > index) return -1;
    const pa = d[at + PA]! + (index - d[at + FIRST]!) * PAGE;
    let end = Math.min(d[at + LAST]!, last);
    const p = d[at + PIECE]!;
    if (p !== 0) end = Math.min(end, index + (p - (pa % p)) / PAGE - 1);
    out[0] = end - index + 1;
    return pa;
  }

  /**
   * Like {@link PfnRuns.lookup}, but `out[0]` counts the pages from `index` on
   * that are stored contiguously in one extent (up to `last`), and `out[1]` is
   * the piece size their runs are cut at (0: one run). For callers that handle
   * many runs at once and cut them themselves.
   */
  lookupExtent(index: number, last: number, out: Float64Array): number {
    const i = this.firstEndingAtOrAfter(index);
    const d = this.d;
    const at = W * i;
    if (i >= this.n || d[at + FIRST]! > index) return -1;
    out[0] = Math.min(d[at + LAST]!, last) - index + 1;
    out[1] = d[at + PIECE]!;
    return d[at + PA]! + (index - d[at + FIRST]!) * PAGE;
  }

  /** First index of the run that holds pinned page `index`; -1 when it is not pinned. */
  runFirst(index: number): number {
    const i = this.firstEndingAtOrAfter(index);
    const d = this.d;
    const at = W * i;
    if (i >= this.n || d[at + FIRST]! > index) return -1;
    const p = d[at + PIECE]!;
    if (p === 0) return d[at + FIRST]!;
    const pa = d[at + PA]! + (index - d[at + FIRST]!) * PAGE;
    return Math.max(d[at + FIRST]!, index - (pa % p) / PAGE);
  }

  /** True when the physical page `pa` is pinned here. */
  holds(pa: number): boolean {
    const d = this.d;
    for (let at = 0; at < W * this.n; at += W) {
      const start = d[at + PA]!;
      if (pa >= start && pa < start + (d[at + LAST]! - d[at + FIRST]! + 1) * PAGE) return true;
    }
    return false;
  }

  /** Number of stored runs (as added, not as stored). */
  get runs(): number {
    const d = this.d;
    let count = 0;
    for (let at = 0; at < W * this.n; at += W) {
      const p = d[at + PIECE]!;
      if (p === 0) {
        count++;
        continue;
      }
      const pa = d[at + PA]!;
      const end = pa + (d[at + LAST]! - d[at + FIRST]! + 1) * PAGE;
      count += Math.floor((end - 1) / p) - Math.floor(pa / p) + 1;
    }
    return count;
  }

  /** Number of extents the runs are stored in (at most {@link PfnRuns.runs}). */
  get extents(): number {
    return this.n;
  }

  /** Stores [first, last] at `pa` with piece size `p`, joined with its neighbours when exact. */
  private insert(first: number, last: number, pa: number, p: number): void {
    const i = this.firstEndingAtOrAfter(first);
    const d = this.d;
    // Join the extent before, then the one after.
    if (i > 0 && d[W * (i - 1) + LAST]! + 1 === first) {
      const k = i - 1;
      const prev = W * k;
      const start = d[prev + PA]!;
      if (start + (first - d[prev + FIRST]!) * PAGE === pa) {
        const q = joinPiece(start, pa, pa + (last - first + 1) * PAGE, d[prev + PIECE]!, p);
        if (q >= 0) {
          d[prev + LAST] = last;
          d[prev + PIECE] = q;
          this.joinNext(k);
          return;
        }
      }
    }
    this.open(i);
    const e = this.d;
    const at = W * i;
    e[at + FIRST] = first;
    e[at + LAST] = last;
    e[at + PA] = pa;
    e[at + PIECE] = p;
    this.joinNext(i);
  }

  /** Joins extent k with extent k + 1 when they touch and the join is exact. */
  private joinNext(k: number): void {
    const m = k + 1;
    const d = this.d;
    const at = W * k;
    const next = W * m;
    if (m >= this.n || d[at + LAST]! + 1 !== d[next + FIRST]!) return;
    const start = d[at + PA]!;
    const mid = start + (d[next + FIRST]! - d[at + FIRST]!) * PAGE;
    if (d[next + PA]! !== mid) return;
    const end = mid + (d[next + LAST]! - d[next + FIRST]! + 1) * PAGE;
    const q = joinPiece(start, mid, end, d[at + PIECE]!, d[next + PIECE]!);
    if (q < 0) return;
    d[at + LAST] = d[next + LAST]!;
    d[at + PIECE] = q;
    this.close(m, m + 1);
  }

  /** Makes room for one extent at position i. */
  private open(i: number): void {
    if (W * (this.n + 1) > this.d.length) {
      const bigger = new Float64Array(Math.max(2 * W, this.d.length * 2));
      bigger.set(this.d);
      this.d = bigger;
    }
    if (i < this.n) this.d.copyWithin(W * (i + 1), W * i, W * this.n);
    this.n++;
  }

  /** Drops the extents at positions [i, j). */
  private close(i: number, j: number): void {
    if (j <= i) return;
    if (j < this.n) this.d.copyWithin(W * i, W * j, W * this.n);
    this.n -= j - i;
  }

  private firstEndingAtOrAfter(index: number): number {
    return firstEndingAtOrAfter(this.d, this.n, W, LAST, index);
  }
}

/**
 * The piece size of [start, end) made of [start, mid) with piece size `pl`
 * and [mid, end) with `pr` (0: a single run), or -1 when no piece size
 * describes exactly the runs of both: each side must be cut at that size
 * already, or be one run inside one piece, and `mid` must be a multiple of it.
 */
function joinPiece(start: number, mid: number, end: number, pl: number, pr: number): number {
  let q: number;
  if (pl !== 0 && pr !== 0) {
    if (pl !== pr) return -1;
    q = pl;
  } else if (pl !== 0) q = pl;
  else if (pr !== 0) q = pr;
  else {
    // Two single runs: the longer one, if a power of two, may be the piece.
    q = Math.max(mid - start, end - mid);
    if (2 ** Math.round(Math.log2(q)) !== q) return -1;
  }
  if (mid % q !== 0) return -1;
  if (pl === 0 && mid - start > q) return -1;
  if (pr === 0 && end - mid > q) return -1;
  return q;
}
