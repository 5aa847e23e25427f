/**
 * xoroshiro128+ (Blackman and Vigna) with each 64-bit lane held as two 32-bit
 * words, seeded by splitmix32: the playground's only source of randomness, so
 * the same seed gives the same run, bit for bit. No BigInt.
 */
export class SeededRng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    // splitmix32 spreads a small seed over the whole state.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = (next() | 1) >>> 0;
  }

  /** The next 32 random bits (the high half of the 64-bit output) as an unsigned integer. */
  nextU32(): number {
    // xoroshiro128+ with 64-bit lanes (s0:s1) and (s2:s3), high halves first.
    const a0 = this.s0;
    const a1 = this.s1;
    let b0 = this.s2;
    let b1 = this.s3;
    // The high half of the 64-bit sum: xoroshiro128+'s low bits are its weakest.
    const carry = a1 + b1 > 0xffffffff ? 1 : 0;
    const result = (a0 + b0 + carry) >>> 0;
    b0 ^= a0;
    b1 ^= a1;
    // a = rotl(a, 24) ^ b ^ (b << 16)
    const r0 = (a0 << 24) | (a1 >>> 8);
    const r1 = (a1 << 24) | (a0 >>> 8);
    this.s0 = (r0 ^ b0 ^ ((b0 << 16) | (b1 >>> 16))) >>> 0;
    this.s1 = (r1 ^ b1 ^ (b1 << 16)) >>> 0;
    // b = rotl(b, 37)
    this.s2 = ((b1 << 5) | (b0 >>> 27)) >>> 0;
    this.s3 = ((b0 << 5) | (b1 >>> 27)) >>> 0;
    return result;
  }

  /** A uniform integer in [0, n), n ≤ 2^32. */
  below(n: number): number {
    if (n <= 0) return 0;
    // Rejection sampling keeps it exactly uniform.
    const limit = Math.floor(0x100000000 / n) * n;
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }
}
