/**
 * Field helpers shared by the formats: the OA field of bits 51:12 split across
 * the two words of an entry.
 */

/** Mask of bits 51:32 of the OA field within the high word. */
export const OA_HI_MASK = 0xfffff;

/** Writes OA field value `field` (an integer < 2^40) into bits 51:12 of (lo, hi). */
export function oaFieldLo(field: number): number {
  return ((field % 0x100000) * 0x1000) >>> 0;
}

/** High-word part of an OA field value. */
export function oaFieldHi(field: number): number {
  return Math.floor(field / 0x100000) & OA_HI_MASK;
}

/** Reads the 40-bit OA field (bits 51:12) of item `i`. */
export function readOaField(t: Uint32Array, i: number): number {
  return (t[2 * i + 1]! & OA_HI_MASK) * 0x100000 + (t[2 * i]! >>> 12);
}

/** Number of trailing one bits of a 20-bit value (20 when all are ones). */
function trailingOnes20(x: number): number {
  const lowestZero = ~x & (x + 1);
  return lowestZero & 0xfffff ? 31 - Math.clz32(lowestZero) : 20;
}

/** Number of trailing one bits of a 40-bit field value given as (bits 19:0, bits 39:20). */
export function trailingOnes40(f0: number, f1: number): number {
  const n0 = trailingOnes20(f0);
  return n0 < 20 ? n0 : 20 + trailingOnes20(f1);
}

/**
 * Bits [shift, shift+32) of the 64-bit item `i` as an unsigned 32-bit value
 * (the kernel's `(u32)(entry >> shift)`).
 */
export function entryShr32(t: Uint32Array, i: number, shift: number): number {
  const lo = t[2 * i]!;
  const hi = t[2 * i + 1]!;
  if (shift === 0) return lo;
  if (shift < 32) return ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
  return hi >>> (shift - 32);
}
