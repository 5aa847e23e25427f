import { fail } from "../errors.js";
import { ULONG_MAX } from "../uapi.js";

/**
 * Argument checks every ioctl shares. The uAPI's fields are unsigned integers;
 * here they are JavaScript numbers, so a value that is not one is EINVAL and one
 * beyond the model's ULONG_MAX is EOVERFLOW (the kernel's ">= ULONG_MAX" rule).
 */

/** A u32 field (object IDs, flags, counts). */
export function checkU32(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    fail("EINVAL", name, v, "must be a u32");
  }
  return v;
}

/** A u64 field: a non-negative integer; beyond 2^53 - 1 is EOVERFLOW. */
export function checkU64(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    fail("EINVAL", name, v, "must be a non-negative integer");
  }
  if (v > ULONG_MAX) fail("EOVERFLOW", name, v, "is beyond the model's ULONG_MAX (2^53 - 1)");
  return v;
}

/** Flags: only bits in `known` may be set, else EOPNOTSUPP (the kernel's rule for every flags field). */
export function checkFlags(name: string, v: unknown, known: number): number {
  const f = checkU32(name, v);
  if ((f & ~known) !== 0)
    fail("EOPNOTSUPP", name, f, `has unknown bits 0x${((f & ~known) >>> 0).toString(16)}`);
  return f;
}

/** A `__reserved` field: anything but 0 is EOPNOTSUPP. */
export function checkReserved(name: string, v: unknown): void {
  if (v !== undefined && v !== 0) fail("EOPNOTSUPP", name, v, "is reserved and must be 0");
}

/** [iova, iova + length - 1] without wrapping: the kernel's check_add_overflow. */
export function lastOf(name: string, iova: number, length: number): number {
  const last = iova + length - 1;
  if (last > ULONG_MAX)
    fail("EOVERFLOW", name, iova, `+ length 0x${length.toString(16)} overflows`);
  return last;
}

/** roundup_pow_of_two(). */
export function roundupPow2(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}

/** 1 << __ffs64(v): the lowest set bit of a non-zero integer. */
export function lowestBit(v: number): number {
  let b = 1;
  while (v % (b * 2) === 0) b *= 2;
  return b;
}

/** ALIGN(v, a) for a power of two a. */
export function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}
