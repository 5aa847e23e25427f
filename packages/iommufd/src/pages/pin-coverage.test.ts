import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PinCoverage } from "./pin-coverage.js";

const N = 120;

/** Maximal runs of the indices in [first, last] where `pick` holds. */
function runsWhere(first: number, last: number, pick: (i: number) => boolean): [number, number][] {
  const out: [number, number][] = [];
  for (let i = first; i <= last; i++) {
    if (!pick(i)) continue;
    const a = i;
    while (i + 1 <= last && pick(i + 1)) i++;
    out.push([a, i]);
  }
  return out;
}

type Op = { add: boolean; first: number; len: number };
// Often the same few ranges, so that users come and go over exactly their own range.
const opArb: fc.Arbitrary<Op> = fc.record({
  add: fc.boolean(),
  first: fc.oneof(fc.integer({ min: 0, max: N - 1 }), fc.constantFrom(10, 40)),
  len: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom(1, 30)),
});

describe("PinCoverage", () => {
  it("counts users per page like a per-page array", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const cov = new PinCoverage();
        const counts = new Array<number>(N + 60).fill(0);
        for (const op of ops) {
          const last = op.first + op.len - 1;
          if (op.add) {
            const before = counts.slice();
            expect(cov.uncovered(op.first, last)).toEqual(
              runsWhere(op.first, last, (i) => before[i] === 0),
            );
            cov.add(op.first, last);
            for (let i = op.first; i <= last; i++) counts[i]!++;
          } else {
            const before = counts.slice();
            const gone = cov.remove(op.first, last);
            for (let i = op.first; i <= last; i++) if (counts[i]! > 0) counts[i]!--;
            expect(gone).toEqual(
              runsWhere(op.first, last, (i) => before[i]! > 0 && counts[i] === 0),
            );
          }
          for (let i = 0; i < counts.length; i++)
            expect(cov.countAt(i), `count at ${i}`).toBe(counts[i]);
          expect(cov.covered).toBe(counts.filter((c) => c > 0).length);
          expect(cov.isEmpty).toBe(counts.every((c) => c === 0));
          expect(cov.uncovered(0, counts.length - 1)).toEqual(
            runsWhere(0, counts.length - 1, (i) => counts[i] === 0),
          );
          // firstUncovered walks the same list, from any start.
          const out = new Float64Array(1);
          for (const [from, to] of [
            [0, counts.length - 1],
            [op.first, last],
            [op.first + 1, last + 7],
          ] as const) {
            const walked: [number, number][] = [];
            for (let a = cov.firstUncovered(from, to, out); a >= 0; ) {
              walked.push([a, out[0]!]);
              a = out[0]! < to ? cov.firstUncovered(out[0]! + 1, to, out) : -1;
            }
            expect(walked).toEqual(runsWhere(from, to, (i) => counts[i] === 0));
          }
        }
      }),
      { seed: 0xc0e, numRuns: 150 },
    );
  });

  it("keeps one segment per distinct count, however many pages", () => {
    const cov = new PinCoverage();
    cov.add(0, 2 ** 40);
    cov.add(10, 20);
    expect(cov.covered).toBe(2 ** 40 + 1);
    expect(cov.countAt(15)).toBe(2);
    expect(cov.remove(0, 2 ** 40)).toEqual([
      [0, 9],
      [21, 2 ** 40],
    ]);
    expect(cov.remove(10, 20)).toEqual([[10, 20]]);
    expect(cov.isEmpty).toBe(true);
    expect(cov.covered).toBe(0);
  });
});
