/**
 * The Linux errno names this package returns. Each error names the argument at
 * fault and the value it was given.
 */
export type PtErrno =
  | "EINVAL"
  | "ERANGE"
  | "EOVERFLOW"
  | "ENXIO"
  | "EADDRINUSE"
  | "ENOMEM"
  | "ENOENT"
  | "EOPNOTSUPP"
  | "EAGAIN"
  | "EBUSY";

/**
 * The error every operation of `@smashlab/pagetable` throws.
 *
 * `code` is the errno the kernel's iommupt returns for the same condition;
 * `argument` and `value` say which input was at fault. For `map`, `mapped`
 * reports the bytes installed before the failure (the kernel's `*mapped`).
 */
export class PageTableError extends Error {
  override readonly name = "PageTableError";
  readonly code: PtErrno;
  readonly argument: string;
  readonly value: unknown;
  /** Bytes mapped before a failing `map` gave up (kernel `*mapped`); 0 otherwise. */
  mapped = 0;

  constructor(code: PtErrno, argument: string, value: unknown, detail: string) {
    super(`${code}: ${argument}=${formatValue(value)}: ${detail}`);
    this.code = code;
    this.argument = argument;
    this.value = value;
  }
}

function formatValue(v: unknown): string {
  if (typeof v === "number" && Number.isInteger(v)) {
    return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
  }
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

/** Throws a {@link PageTableError}. */
export function fail(code: PtErrno, argument: string, value: unknown, detail: string): never {
  throw new PageTableError(code, argument, value, detail);
}

/**
 * Linux errno numbers, used inside the walkers (which return 0 or a negative errno
 * like the kernel's, so the hot paths allocate nothing); turned into a
 * {@link PageTableError} at the API boundary.
 */
export const Errno = {
  ENOENT: 2,
  ENXIO: 6,
  EAGAIN: 11,
  ENOMEM: 12,
  EBUSY: 16,
  EINVAL: 22,
  ERANGE: 34,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
} as const;

const ERRNO_NAMES: Record<number, PtErrno> = {
  2: "ENOENT",
  6: "ENXIO",
  11: "EAGAIN",
  12: "ENOMEM",
  16: "EBUSY",
  22: "EINVAL",
  34: "ERANGE",
  75: "EOVERFLOW",
  95: "EOPNOTSUPP",
  98: "EADDRINUSE",
};

/** The name of a (positive or negative) errno number. */
export function errnoName(e: number): PtErrno {
  return ERRNO_NAMES[Math.abs(e)] ?? "EINVAL";
}
