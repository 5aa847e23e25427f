import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PfnRuns } from "./pfn-runs.js";

const PAGE = 4096;
const N = 160;

/**
 * The obviously-correct model: per page index, its PA and whether a run starts
 * there. Runs are what was added, cut where a remove cut them, never joined.
 */
class PageModel {
  readonly pa = new Array<number>(N + 2).fill(-1);
  readonly start = new Array<boolean>(N + 2).fill(false);

  stored(i: number): boolean {
    return i >= 0 && i < this.pa.length && this.pa[i]! >= 0;
  }
  add(first: number, last: number, pa: number, piece: number): void {
    for (let i = first; i <= last; i++) {
      const p = pa + (i - first) * PAGE;
      this.pa[i] = p;
      this.start[i] = i === first || (piece !== 0 && p % piece === 0);
    }
  }
  remove(first: number, last: number): void {
    for (let i = first; i <= last; i++) {
      this.pa[i] = -1;
      this.start[i] = false;
    }
    if (this.stored(last + 1)) this.start[last + 1] = true;
  }
  lookup(index: number, last: number): [number, number] {
    if (!this.stored(index)) return [-1, 0];
    let j = index + 1;
    while (j <= last && this.stored(j) && !this.start[j]) j++;
    return [this.pa[index]!, j - index];
  }
  runFirst(index: number): number {
    if (!this.stored(index)) return -1;
    let j = index;
    while (!this.start[j]) j--;
    return j;
  }
  runs(): number {
    let n = 0;
    for (let i = 0; i < this.pa.length; i++) if (this.stored(i) && this.start[i]) n++;
    return n;
  }
  holds(pa: number): boolean {
    return this.pa.some((p) => p >= 0 && pa >= p && pa < p + PAGE);
  }
}

type Op =
  | { kind: "add"; first: number; len: number; base: number; off: number; piece: number }
  | { kind: "remove"; first: number; len: number };

// PAs from a few bases (so runs often continue each other) at page offsets; pieces 4K..64K.
const BASES = [0x100000000, 0x100000000 + 0x40000, 0x7fff0000000];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("add" as const),
    first: fc.integer({ min: 0, max: N - 1 }),
    len: fc.integer({ min: 1, max: 40 }),
    base: fc.integer({ min: 0, max: BASES.length - 1 }),
    off: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 64 })),
    piece: fc.constantFrom(0, 0, PAGE, 2 * PAGE, 4 * PAGE, 8 * PAGE, 16 * PAGE),
  }),
  fc.record({
    kind: fc.constant("remove" as const),
    first: fc.integer({ min: 0, max: N - 1 }),
    len: fc.integer({ min: 1, max: 30 }),
  }),
);

/** Applies an op to both; an add is clipped to the free pages from `first` on (skipped if none). */
function apply(op: Op, runs: PfnRuns, model: PageModel): void {
  if (op.kind === "remove") {
    const last = Math.min(op.first + op.len - 1, N - 1);
    runs.remove(op.first, last);
    model.remove(op.first, last);
    return;
  }
  if (model.stored(op.first)) return;
  let last = op.first;
  while (last + 1 < op.first + op.len && last + 1 < N && !model.stored(last + 1)) last++;
  // off -1: the PA that continues the pages as if the whole index space were one stretch.
  const pa = BASES[op.base]! + (op.off < 0 ? op.first : op.off) * PAGE;
  if (op.piece === 0) {
    // One run: split it at the pieces of a random size, as a source would, when asked.
    runs.add(op.first, last, pa);
    model.add(op.first, last, pa, 0);
  } else {
    runs.addPieces(op.first, last, pa, op.piece);
    model.add(op.first, last, pa, op.piece);
  }
}

/** Every query against the model; throws naming the first difference. */
function check(runs: PfnRuns, model: PageModel): void {
  const out = new Float64Array(2);
  const same = (what: string, got: number, want: number) => {
    if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`);
  };
  for (let i = 0; i <= N; i++) {
    for (const last of [i, i + 3, N + 1]) {
      const [pa, count] = model.lookup(i, last);
      same(`lookup(${i}, ${last})`, runs.lookup(i, last, out), pa);
      if (pa >= 0) same(`lookup(${i}, ${last}) count`, out[0]!, count);
      // The extent holds at least the run, contiguously, and its cut says where the run ends.
      same(`lookupExtent(${i}, ${last})`, runs.lookupExtent(i, last, out), pa);
      if (pa < 0) continue;
      const pages = out[0]!;
      const piece = out[1]!;
      for (let k = 0; k < pages; k++) same(`extent page ${i + k}`, model.pa[i + k]!, pa + k * PAGE);
      const cut = piece === 0 ? pages : Math.min(pages, (piece - (pa % piece)) / PAGE);
      same(`lookupExtent(${i}, ${last}) cut`, cut, count);
    }
    same(`runFirst(${i})`, runs.runFirst(i), model.runFirst(i));
  }
  same("runs", runs.runs, model.runs());
  if (runs.extents > runs.runs) throw new Error("more extents than runs");
  for (const base of BASES) {
    for (const off of [0, 1, 7, 40, 41, 100, 159, 160, 161]) {
      const pa = base + off * PAGE + (off % 3) * 100;
      same(`holds(0x${pa.toString(16)})`, Number(runs.holds(pa)), Number(model.holds(pa)));
    }
  }
}

describe("PfnRuns", () => {
  it("stores exactly the runs added (cut by removes, never joined), per a per-page model", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const runs = new PfnRuns();
        const model = new PageModel();
        for (const op of ops) {
          apply(op, runs, model);
          check(runs, model);
        }
      }),
      { seed: 0x9f1, numRuns: 150 },
    );
  });

  it("stores 64 GiB of 2M folios added folio by folio as one extent", () => {
    const runs = new PfnRuns();
    const folio = 512;
    const base = 2 ** 40;
    for (let f = 0; f < 32768; f++) runs.add(f * folio, f * folio + folio - 1, base + f * 2 ** 21);
    expect(runs.extents).toBe(1);
    expect(runs.runs).toBe(32768);
    const out = new Float64Array(2);
    expect(runs.lookup(700, 2 ** 30, out)).toBe(base + 700 * PAGE);
    expect(out[0]).toBe(1024 - 700);
  });

  it("does not cut a long single run at the piece size of a neighbour cut finer", () => {
    const out = new Float64Array(2);
    // A 16K run, then 8K pieces right after it: joining at 8K would cut the run in two.
    const a = new PfnRuns();
    a.add(0, 3, 0x100000);
    a.addPieces(4, 7, 0x104000, 0x2000);
    expect(a.lookup(0, 100, out)).toBe(0x100000);
    expect(out[0]).toBe(4);
    expect(a.lookup(4, 100, out)).toBe(0x104000);
    expect(out[0]).toBe(2);
    expect(a.runs).toBe(3);
    // The same the other way round: 8K pieces, then a 24K run after them.
    const b = new PfnRuns();
    b.addPieces(0, 3, 0x100000, 0x2000);
    b.add(4, 9, 0x104000);
    expect(b.lookup(4, 100, out)).toBe(0x104000);
    expect(out[0]).toBe(6);
    expect(b.lookup(2, 100, out)).toBe(0x102000);
    expect(out[0]).toBe(2);
    // And a run that fills the gap between two stretches.
    const c = new PfnRuns();
    c.addPieces(0, 3, 0x100000, 0x2000);
    c.addPieces(6, 9, 0x106000, 0x2000);
    c.add(4, 5, 0x104000);
    expect(c.extents).toBe(1);
    expect(c.runs).toBe(5);
    c.remove(5, 5);
    expect(c.lookup(4, 100, out)).toBe(0x104000);
    expect(out[0]).toBe(1);
    expect(c.lookup(6, 100, out)).toBe(0x106000);
    expect(out[0]).toBe(2);
  });

  it("keeps a run that does not end at a piece boundary apart from the next", () => {
    const runs = new PfnRuns();
    const out = new Float64Array(2);
    // [0, 2] then [3, 4]: contiguous, but 3 pages is no piece size, so the first ends at 2.
    runs.add(0, 2, 0x10000);
    runs.add(3, 4, 0x10000 + 3 * PAGE);
    expect(runs.lookup(0, 10, out)).toBe(0x10000);
    expect(out[0]).toBe(3);
    expect(runs.runs).toBe(2);
  });
});
