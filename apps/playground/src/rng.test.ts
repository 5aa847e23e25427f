import { describe, expect, test } from "vitest";
import { SeededRng } from "./rng.js";

/** xoroshiro128+ as published, on BigInt lanes: the reference the 32-bit version must match. */
function reference(s0: bigint, s1: bigint) {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (64n - k))) & M;
  return () => {
    const result = (s0 + s1) & M;
    s1 ^= s0;
    s0 = rotl(s0, 24n) ^ s1 ^ ((s1 << 16n) & M);
    s1 = rotl(s1, 37n);
    return Number(result >> 32n);
  };
}

/** The state the constructor derives from a seed, read back to seed the reference. */
function lanes(rng: SeededRng): [bigint, bigint] {
  const w = rng as unknown as { s0: number; s1: number; s2: number; s3: number };
  return [(BigInt(w.s0) << 32n) | BigInt(w.s1), (BigInt(w.s2) << 32n) | BigInt(w.s3)];
}

describe("SeededRng", () => {
  test("is xoroshiro128+ (high 32 bits of each output), checked against a BigInt reference", () => {
    for (const seed of [0, 1, 42, 0xffffffff]) {
      const rng = new SeededRng(seed);
      const ref = reference(...lanes(rng));
      for (let i = 0; i < 2000; i++) expect(rng.nextU32()).toBe(ref());
    }
  });

  test("the same seed gives the same sequence; another seed another one", () => {
    const a = new SeededRng(7);
    const b = new SeededRng(7);
    const c = new SeededRng(8);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.nextU32())).not.toEqual(xs);
  });

  test("below(n) stays in [0, n) and reaches every value of a small range", () => {
    const rng = new SeededRng(3);
    for (const n of [1, 2, 7, 511, 512, 2 ** 32]) {
      for (let i = 0; i < 500; i++) {
        const v = rng.below(n);
        expect(Number.isInteger(v) && v >= 0 && v < n).toBe(true);
      }
    }
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(rng.below(10));
    expect(seen.size).toBe(10);
  });

  test("below(n) is uniform: each of 8 buckets within 10% of its share over 80000 draws", () => {
    const rng = new SeededRng(11);
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 80_000; i++) counts[rng.below(8)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(1_000);
  });
});
