/** Errno names the engine driver returns (the Linux TMPM driver's choices). */
export type EngineErrno =
  | "EINVAL"
  | "ENODEV"
  | "EEXIST"
  | "EAGAIN"
  | "EIO"
  | "ENOMEM"
  | "EBUSY"
  | "ERANGE";

/**
 * The error of `@smashlab/hw-engine`: a driver call that failed, with the errno
 * the Linux TMPM driver returns, the argument at fault and its value; for a
 * command the engine refused, `status` holds the engine's status code.
 */
export class EngineError extends Error {
  override readonly name = "EngineError";
  readonly code: EngineErrno;
  readonly argument: string;
  readonly value: unknown;
  /** The engine's status code when the engine refused the command; 0 otherwise. */
  status = 0;

  constructor(code: EngineErrno, argument: string, value: unknown, detail: string) {
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

/** Throws an {@link EngineError}. */
export function fail(code: EngineErrno, argument: string, value: unknown, detail: string): never {
  throw new EngineError(code, argument, value, detail);
}
