/** Errno names the RMP model uses for calls the hardware could not even be asked. */
export type RmpErrno = "EINVAL" | "ERANGE" | "EOVERFLOW";

/**
 * The error of `@smashlab/rmp`: a call the hardware could not even be asked (an
 * address that is not an integer, a level that does not exist, an ASID wider than
 * its field). Instruction outcomes are status codes, returned as values.
 */
export class RmpError extends Error {
  override readonly name = "RmpError";
  readonly code: RmpErrno;
  readonly argument: string;
  readonly value: unknown;

  constructor(code: RmpErrno, argument: string, value: unknown, detail: string) {
    const shown =
      typeof value === "number" && Number.isInteger(value) && value >= 0
        ? `0x${value.toString(16)}`
        : String(value);
    super(`${code}: ${argument}=${shown}: ${detail}`);
    this.code = code;
    this.argument = argument;
    this.value = value;
  }
}

/** Throws an {@link RmpError}. */
export function fail(code: RmpErrno, argument: string, value: unknown, detail: string): never {
  throw new RmpError(code, argument, value, detail);
}
