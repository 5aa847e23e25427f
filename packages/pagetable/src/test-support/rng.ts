/**
 * A small seeded PRNG for tests (splitmix32 stepping a 32-bit state): every run of
 * a test sees the same sequence, so a failure reproduces.
 */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.s = (this.s + 0x9e3779b9) | 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** A uniform integer in [0, n) for n ≤ 2^32 (get_random_u32_below). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }

  /** A uniform integer in [0, 2^53). */
  u53(): number {
    return (this.u32() & 0x1fffff) * 0x100000000 + this.u32();
  }

  /** A uniform 64-bit value as a BigInt. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  /** True or false with equal odds. */
  bool(): boolean {
    return (this.u32() & 1) === 1;
  }
}
