/**
 * Size arithmetic on addresses held in JavaScript numbers. Every size in a page
 * table is a power of two, so all of it is log2 arithmetic, as in the kernel's
 * pt_log2.h. Numbers are exact integers up to 2^53; division by a power of two is
 * exact in floating point, so `lg2Div`/`lg2Mod` never lose bits.
 */

/** 2^n for n in 0..127, so hot paths never call Math.pow. */
export const POW2: Float64Array = (() => {
  const a = new Float64Array(128);
  for (let i = 0; i < 128; i++) a[i] = 2 ** i;
  return a;
})();

/** 2^-n for n in 0..127: multiplying by it divides exactly by a power of two. */
export const INV_POW2: Float64Array = (() => {
  const a = new Float64Array(128);
  for (let i = 0; i < 128; i++) a[i] = 2 ** -i;
  return a;
})();

/** 2^lg2 as a number (exact for lg2 < 128). */
export function lg2ToInt(lg2: number): number {
  return POW2[lg2]!;
}

/**
 * floor(x / 2^lg2). Negative x (sign-extended upper-half IOVAs) round toward
 * minus infinity, which is what two's complement shifting does.
 */
export function lg2Div(x: number, lg2: number): number {
  return lg2 < 32 && (x | 0) === x ? x >> lg2 : Math.floor(x * INV_POW2[lg2]!);
}

/** x mod 2^lg2, always in [0, 2^lg2): the low lg2 bits of x in two's complement. */
export function lg2Mod(x: number, lg2: number): number {
  if (lg2 < 31 && (x | 0) === x) return x & ((1 << lg2) - 1);
  const m = POW2[lg2]!;
  return x - Math.floor(x * INV_POW2[lg2]!) * m;
}

/** x rounded down to a multiple of 2^lg2 (toward minus infinity). */
export function lg2AlignDown(x: number, lg2: number): number {
  return x - lg2Mod(x, lg2);
}

/** True when x is a multiple of 2^lg2. */
export function lg2IsAligned(x: number, lg2: number): boolean {
  return lg2Mod(x, lg2) === 0;
}

/** Index of the lowest set bit of a 32-bit value; 32 for 0 (the kernel's ffs_t, 0-based). */
export function ffs32(v: number): number {
  v >>>= 0;
  return v === 0 ? 32 : 31 - Math.clz32(v & -v);
}

/** 1-based index of the highest set bit of a 32-bit value; fls(0) = 0. */
export function fls32(v: number): number {
  return 32 - Math.clz32(v >>> 0);
}

/** Index of the lowest clear bit of a 32-bit value; 32 for all ones. */
export function ffz32(v: number): number {
  return ffs32(~v);
}

/** Lowest set bit of a 64-bit value given as two words; 64 for 0. */
export function ffs64(lo: number, hi: number): number {
  if (lo >>> 0 !== 0) return ffs32(lo);
  if (hi >>> 0 !== 0) return 32 + ffs32(hi);
  return 64;
}

/** 1-based highest set bit of a 64-bit value given as two words; 0 for 0. */
export function fls64(lo: number, hi: number): number {
  return hi >>> 0 !== 0 ? 32 + fls32(hi) : fls32(lo);
}

/** Lowest clear bit of a 64-bit value given as two words; 64 for all ones. */
export function ffz64(lo: number, hi: number): number {
  return ffs64(~lo, ~hi);
}

/**
 * Count of trailing zero bits of an integer number (its alignment as a power of
 * two; a negative one, an upper-half IOVA, has its magnitude's, as in two's
 * complement). 0 → 64, matching the kernel's treatment of a zero address as
 * aligned to everything.
 */
export function ctzNumber(x: number): number {
  if (x === 0) return 64;
  // ToUint32 of an exact integer is its low 32 bits (no floating-point modulo).
  const lo = x >>> 0;
  if (lo !== 0) return ffs32(lo);
  return 32 + ffs32(Math.floor(x * 2.3283064365386963e-10));
}

/** floor(log2(x)) for x ≥ 1 (the index of the highest set bit). */
export function floorLog2(x: number): number {
  if (x < 0x100000000) return 31 - Math.clz32(x);
  return 32 + (31 - Math.clz32(Math.floor(x / 0x100000000)));
}

/** Low 32 bits of a non-negative integer number as an unsigned word. */
export function loWord(x: number): number {
  return x >>> 0;
}

/** Bits 63:32 of a non-negative integer number (exact up to 2^53). */
export function hiWord(x: number): number {
  return Math.floor(x / 0x100000000) >>> 0;
}

/** Joins two 32-bit words into a number; exact while hi < 2^21. */
export function joinWords(lo: number, hi: number): number {
  return (hi >>> 0) * 0x100000000 + (lo >>> 0);
}
