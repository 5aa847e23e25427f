import { fail } from "./errors.js";
import { hasFeature, PtFeature } from "./features.js";

/**
 * Argument checks shared by the public API. Addresses are JavaScript numbers;
 * anything that is not an exact integer is refused before the table is touched.
 */

/** An IOVA: an integer; negative only on a SIGN_EXTEND table (the upper half). */
export function checkIova(name: string, v: unknown, features: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    fail("EINVAL", name, v, "must be an integer IOVA");
  }
  if (!Number.isSafeInteger(v)) {
    fail("EOVERFLOW", name, v, "is beyond 2^53, the largest IOVA a number holds exactly");
  }
  if (v < 0 && !hasFeature(features, PtFeature.SIGN_EXTEND)) {
    fail(
      "EINVAL",
      name,
      v,
      "is negative; only SIGN_EXTEND tables have upper-half (negative) IOVAs",
    );
  }
  return v;
}

/** A physical address: a non-negative integer. */
export function checkPhys(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    fail("EINVAL", name, v, "must be an integer physical address");
  }
  if (v < 0) fail("EINVAL", name, v, "must not be negative");
  if (!Number.isSafeInteger(v)) fail("ERANGE", name, v, "is beyond 2^53");
  return v;
}

/** A length: a positive integer whose last byte stays exact. */
export function checkLength(name: string, v: unknown, start: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    fail("EINVAL", name, v, "must be an integer byte count");
  }
  if (v <= 0) fail("EINVAL", name, v, v === 0 ? "must not be zero" : "must be positive");
  if (!Number.isSafeInteger(start + v - 1)) {
    fail("EOVERFLOW", name, v, "makes the range end beyond 2^53");
  }
  return v;
}

/** A power-of-two size; returns its log2. */
export function checkPow2Size(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    fail("EINVAL", name, v, "must be a positive integer power of two");
  }
  const lg2 = Math.log2(v);
  if (!Number.isInteger(lg2)) fail("EINVAL", name, v, "must be a power of two");
  return lg2;
}

/** A non-negative integer count or flag word. */
export function checkUint(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    fail("EINVAL", name, v, "must be a non-negative integer");
  }
  return v;
}
