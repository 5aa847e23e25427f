import { checkU32 } from "../core/check.js";
import { fail, IommufdError } from "../errors.js";
import type { Iommufd } from "../iommufd.js";
import { LAYOUTS, type StructLayout } from "./layout.js";

/** IOMMUFD_TYPE: the ioctl type byte, ';'. */
export const IOMMUFD_TYPE = 0x3b;
/** IOMMUFD_CMD_BASE: the first command number. */
export const IOMMUFD_CMD_BASE = 0x80;

/** _IO(IOMMUFD_TYPE, nr): no direction and no size bits, as iommufd encodes every command. */
export function iommufdIo(nr: number): number {
  return (IOMMUFD_TYPE << 8) | nr;
}

/** The commands of enum iommufd_cmd, in order from IOMMUFD_CMD_BASE (names without `IOMMU_`). */
export const IOMMUFD_COMMANDS = [
  "DESTROY",
  "IOAS_ALLOC",
  "IOAS_ALLOW_IOVAS",
  "IOAS_COPY",
  "IOAS_IOVA_RANGES",
  "IOAS_MAP",
  "IOAS_UNMAP",
  "OPTION",
  "VFIO_IOAS",
  "HWPT_ALLOC",
  "GET_HW_INFO",
  "HWPT_SET_DIRTY_TRACKING",
  "HWPT_GET_DIRTY_BITMAP",
  "HWPT_INVALIDATE",
  "FAULT_QUEUE_ALLOC",
  "IOAS_MAP_FILE",
  "VIOMMU_ALLOC",
  "VDEVICE_ALLOC",
  "IOAS_CHANGE_PROCESS",
  "VEVENTQ_ALLOC",
  "HW_QUEUE_ALLOC",
] as const;

/** The name of a command (`IOMMU_<name>` in the uAPI). */
export type IommufdCommand = (typeof IOMMUFD_COMMANDS)[number];

/** The ioctl number of each command: IOMMU_DESTROY is `IOMMU.DESTROY`, and so on. */
export const IOMMU = Object.fromEntries(
  IOMMUFD_COMMANDS.map((c, i) => [c, iommufdIo(IOMMUFD_CMD_BASE + i)]),
) as Record<IommufdCommand, number>;

/** What an ioctl takes: the struct's fields by the model's names, its `size`, and bytes past the kernel's struct. */
export interface IoctlArg {
  /** The struct's first u32: how many bytes userspace passed. */
  size: number;
  /** Bytes userspace passed beyond the kernel's struct (a newer uAPI's fields); missing bytes read as 0. */
  tail?: Uint8Array;
  [field: string]: unknown;
}

type Handler = (fd: Iommufd, arg: Record<string, unknown>) => unknown;

/** Commands whose handler writes outputs back even when it fails (the kernel copies before returning the errno). */
const RESPOND_ON_ERROR = new Set<IommufdCommand>(["IOAS_IOVA_RANGES", "HWPT_INVALIDATE"]);

const HANDLERS: Partial<Record<IommufdCommand, Handler>> = {
  DESTROY: (fd, a) => fd.destroy(a as { id: number }),
  IOAS_ALLOC: (fd, a) => fd.ioasAlloc(a),
  IOAS_ALLOW_IOVAS: (fd, a) => fd.ioasAllowIovas(a as never),
  IOAS_COPY: (fd, a) => fd.ioasCopy(a as never),
  IOAS_IOVA_RANGES: (fd, a) => fd.ioasIovaRanges(a as never),
  IOAS_MAP: (fd, a) => fd.ioasMap(a as never),
  IOAS_UNMAP: (fd, a) => fd.ioasUnmap(a as never),
  OPTION: (fd, a) => fd.option(a as never),
  VFIO_IOAS: (fd, a) => fd.vfioIoas(a as never),
  HWPT_ALLOC: (fd, a) => fd.hwptAlloc(a as never),
  GET_HW_INFO: (fd, a) => fd.getHwInfo(a as never),
  HWPT_SET_DIRTY_TRACKING: (fd, a) => fd.hwptSetDirtyTracking(a as never),
  HWPT_GET_DIRTY_BITMAP: (fd, a) => fd.hwptGetDirtyBitmap(a as never),
  HWPT_INVALIDATE: (fd, a) => fd.hwptInvalidate(a as never),
  IOAS_MAP_FILE: (fd, a) => fd.ioasMapFile(a as never),
  IOAS_CHANGE_PROCESS: (fd, a) => fd.ioasChangeProcess(a as never),
};

/**
 * iommufd_fops_ioctl(): the generic part of every command. A number outside
 * the table goes to the VFIO compat handler, which knows no such command
 * (ENOTTY); a NULL argument cannot have its size read (EFAULT); a number in the
 * table with another encoding is ENOTTY; a size below the command's min_size is
 * EINVAL; bytes past the kernel's struct must be zero (E2BIG). Fields past the
 * user's size read as 0, and outputs are written back for min(user, kernel)
 * bytes. Commands the model does not implement (fault queues, vIOMMU, vDEVICE,
 * vEVENTQ, HW queues) are ENOTTY.
 */
export function iommufdIoctl(fd: Iommufd, cmd: number, arg: IoctlArg | null): unknown {
  const nr = cmd & 0xff;
  const index = nr - IOMMUFD_CMD_BASE;
  if (cmd >>> 8 !== IOMMUFD_TYPE || index < 0 || index >= IOMMUFD_COMMANDS.length) {
    fail(
      "ENOTTY",
      "cmd",
      cmd,
      "not an iommufd command (and not a VFIO compat one the model knows)",
    );
  }
  if (arg === null || arg === undefined || typeof arg !== "object")
    fail("EFAULT", "arg", arg, "the struct's size cannot be read");
  const name = IOMMUFD_COMMANDS[index]!;
  const layout: StructLayout | undefined = (LAYOUTS as Record<string, StructLayout>)[name];
  const handler = HANDLERS[name];
  if (layout === undefined || handler === undefined)
    fail("ENOTTY", "cmd", cmd, `IOMMU_${name} is not modelled`);
  const size = checkU32("size", arg.size);
  if (size < layout.minSize)
    fail("EINVAL", "size", size, `IOMMU_${name} needs at least ${layout.minSize} bytes`);
  for (let i = layout.size; i < size; i++) {
    if ((arg.tail?.[i - layout.size] ?? 0) !== 0) {
      fail(
        "E2BIG",
        "size",
        size,
        `byte ${i} is beyond the kernel's ${layout.size}-byte struct and not zero`,
      );
    }
  }
  const view: Record<string, unknown> = {};
  for (const f of layout.fields)
    view[f.name] = f.offset + f.bytes <= size ? arg[f.name] : zeroOf(arg[f.name]);
  // The model's own extras (a process, a file object, a page-size cap) ride along as they are.
  for (const k of Object.keys(arg))
    if (!(k in view) && k !== "size" && k !== "tail") view[k] = arg[k];
  const respond = () => {
    const visible = Math.min(size, layout.size);
    for (const f of layout.fields) if (f.offset + f.bytes <= visible) arg[f.name] = view[f.name];
  };
  let result: unknown;
  try {
    result = handler(fd, view);
  } catch (e) {
    if (e instanceof IommufdError && RESPOND_ON_ERROR.has(name)) respond();
    throw e;
  }
  respond();
  return result;
}

/** What a field reads as when the user's struct ends before it. */
function zeroOf(v: unknown): unknown {
  return typeof v === "number" || v === undefined ? 0 : null;
}
