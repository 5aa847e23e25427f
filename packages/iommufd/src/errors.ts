import { PageTableError } from "@smashlab/pagetable";

/** The errno names iommufd returns. */
export type IommufdErrno =
  | "EINVAL"
  | "ENOENT"
  | "EBUSY"
  | "EEXIST"
  | "ENOSPC"
  | "EOVERFLOW"
  | "EADDRINUSE"
  | "ENOMEM"
  | "EOPNOTSUPP"
  | "EFAULT"
  | "EPERM"
  | "EMSGSIZE"
  | "E2BIG"
  | "ENOTTY"
  | "ENODEV"
  | "EBADF"
  | "EDEADLOCK"
  | "ERANGE"
  | "ENXIO";

/**
 * The error of `@smashlab/iommufd`: the errno the kernel returns for the same
 * call, the argument at fault and its value. A failed call changes nothing.
 */
export class IommufdError extends Error {
  override readonly name = "IommufdError";
  readonly code: IommufdErrno;
  readonly argument: string;
  readonly value: unknown;

  constructor(code: IommufdErrno, argument: string, value: unknown, detail: string) {
    super(`${code}: ${argument}=${show(value)}: ${detail}`);
    this.code = code;
    this.argument = argument;
    this.value = value;
  }
}

function show(v: unknown): string {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return `0x${v.toString(16)}`;
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

/** Throws an {@link IommufdError}. */
export function fail(code: IommufdErrno, argument: string, value: unknown, detail: string): never {
  throw new IommufdError(code, argument, value, detail);
}

/**
 * A page-table error surfacing through iommufd keeps its errno (ENOMEM from the
 * table allocator, EADDRINUSE, ...) under iommufd's error class.
 */
export function fromPageTable(e: unknown, argument: string, value: unknown): never {
  if (e instanceof PageTableError) {
    throw new IommufdError(e.code as IommufdErrno, argument, value, e.message);
  }
  throw e;
}
