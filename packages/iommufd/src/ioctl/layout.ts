/**
 * The byte layout of each ioctl struct of include/uapi/linux/iommufd.h: its
 * fields in order with their offsets, its size, and the kernel's min_size (the
 * end of the last field the first version had). The dispatcher uses it for the
 * extensible-struct rules: a short struct is EINVAL, a longer one must be zero
 * past the kernel's size (E2BIG), fields past the user's size read as 0, and
 * only min(user, kernel) bytes are written back.
 */

/** One field: its name in the model's struct, its offset and its width in bytes. */
export interface Field {
  name: string;
  offset: number;
  bytes: number;
}

/** A struct's layout. */
export interface StructLayout {
  /** sizeof(struct). */
  size: number;
  /** offsetofend(struct, last field of the first version). */
  minSize: number;
  /** Fields after `size`, in order. */
  fields: Field[];
}

/**
 * Builds a layout from [name, bytes] pairs the way C lays a struct out: each
 * scalar aligned to its width (byte arrays to 1), the size rounded up to the
 * widest member.
 */
function layout(minField: string, ...fields: [string, number][]): StructLayout {
  let offset = 4; // every struct starts with __u32 size
  let widest = 4;
  let minSize = 0;
  const out: Field[] = [];
  for (const [name, bytes] of fields) {
    const align = (bytes & (bytes - 1)) === 0 ? bytes : 1;
    offset = Math.ceil(offset / align) * align;
    out.push({ name, offset, bytes });
    offset += bytes;
    widest = Math.max(widest, align);
    if (name === minField) minSize = offset;
  }
  return { size: Math.ceil(offset / widest) * widest, minSize, fields: out };
}

/** The layouts, by command name. */
export const LAYOUTS = {
  DESTROY: layout("id", ["id", 4]),
  IOAS_ALLOC: layout("outIoasId", ["flags", 4], ["outIoasId", 4]),
  IOAS_ALLOW_IOVAS: layout(
    "allowedIovas",
    ["ioasId", 4],
    ["numIovas", 4],
    ["__reserved", 4],
    ["allowedIovas", 8],
  ),
  IOAS_COPY: layout(
    "srcIova",
    ["flags", 4],
    ["dstIoasId", 4],
    ["srcIoasId", 4],
    ["length", 8],
    ["dstIova", 8],
    ["srcIova", 8],
  ),
  IOAS_IOVA_RANGES: layout(
    "outIovaAlignment",
    ["ioasId", 4],
    ["numIovas", 4],
    ["__reserved", 4],
    ["allowedIovas", 8],
    ["outIovaAlignment", 8],
  ),
  IOAS_MAP: layout(
    "iova",
    ["flags", 4],
    ["ioasId", 4],
    ["__reserved", 4],
    ["userVa", 8],
    ["length", 8],
    ["iova", 8],
  ),
  IOAS_UNMAP: layout("length", ["ioasId", 4], ["iova", 8], ["length", 8]),
  OPTION: layout(
    "val64",
    ["optionId", 4],
    ["op", 2],
    ["__reserved", 2],
    ["objectId", 4],
    ["val64", 8],
  ),
  VFIO_IOAS: layout("__reserved", ["ioasId", 4], ["op", 2], ["__reserved", 2]),
  HWPT_ALLOC: layout(
    "__reserved",
    ["flags", 4],
    ["devId", 4],
    ["ptId", 4],
    ["outHwptId", 4],
    ["__reserved", 4],
    ["dataType", 4],
    ["dataLen", 4],
    ["dataUptr", 8],
    ["faultId", 4],
    ["__reserved2", 4],
  ),
  GET_HW_INFO: layout(
    "__reserved",
    ["flags", 4],
    ["devId", 4],
    ["dataLen", 4],
    ["data", 8],
    ["outDataType", 4],
    ["outMaxPasidLog2", 1],
    ["__reserved", 3],
    ["outCapabilities", 8],
  ),
  HWPT_SET_DIRTY_TRACKING: layout("__reserved", ["flags", 4], ["hwptId", 4], ["__reserved", 4]),
  HWPT_GET_DIRTY_BITMAP: layout(
    "data",
    ["hwptId", 4],
    ["flags", 4],
    ["__reserved", 4],
    ["iova", 8],
    ["length", 8],
    ["pageSize", 8],
    ["data", 8],
  ),
  HWPT_INVALIDATE: layout(
    "__reserved",
    ["hwptId", 4],
    ["dataUptr", 8],
    ["dataType", 4],
    ["entryLen", 4],
    ["entryNum", 4],
    ["__reserved", 4],
  ),
  IOAS_MAP_FILE: layout(
    "iova",
    ["flags", 4],
    ["ioasId", 4],
    ["file", 4],
    ["start", 8],
    ["length", 8],
    ["iova", 8],
  ),
  IOAS_CHANGE_PROCESS: layout("__reserved", ["__reserved", 4]),
} as const satisfies Record<string, StructLayout>;
