import { checkU32, checkU64, lastOf } from "../core/check.js";
import type { CtxInternals } from "../core/ctx-internals.js";
import { fail } from "../errors.js";
import type { Ioas } from "../ioas/ioas.js";
import type { IoasCtx } from "../ioas/ioctls.js";
import { ioasMap } from "../ioas/ioctls.js";
import type { Span } from "../iopt/iova-alloc.js";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  ULONG_MAX,
} from "../uapi.js";

/** VFIO_API_VERSION. */
export const VFIO_API_VERSION = 0;
/** VFIO_TYPE1_IOMMU: the original type1, which may split mappings on unmap. */
export const VFIO_TYPE1_IOMMU = 1;
/** VFIO_TYPE1v2_IOMMU: unmaps must cover whole mappings. */
export const VFIO_TYPE1v2_IOMMU = 3;
/** vfio_iommu_type1_dma_map flags. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** The device may write. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** vfio_iommu_type1_dma_unmap flags: unmap everything (iova and size must be 0). */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** vfio_iommu_type1_info flags. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** The info carries a capability chain. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/** sizeof(struct vfio_iommu_type1_dma_map) and _unmap up to `size`, and _info up to `cap_offset`. */
const MAP_MINSZ = 32;
const UNMAP_MINSZ = 24;
const INFO_MINSZ = 16;
const INFO_SIZE = 24;
/** Bytes of the IOVA_RANGE capability: header (8), nr_iovas and reserved (8), 16 per range. */
const CAP_IOVA_RANGE_HDR = 16;
/** Bytes of the DMA_AVAIL capability: header (8) and avail (4) and padding. */
const CAP_DMA_AVAIL = 16;

/** The compat side of a context: the IOAS VFIO uses and the type it was set to. */
export interface VfioCompatState {
  /** IOMMU_VFIO_IOAS's IOAS, 0 for none. */
  ioasId: number;
  /** VFIO_SET_IOMMU's type, 0 before it. */
  type: number;
}

function compatIoas(ctx: CtxInternals, state: VfioCompatState): Ioas {
  const ioas = state.ioasId === 0 ? undefined : ctx.objects.peek(state.ioasId);
  if (ioas === undefined)
    fail("ENODEV", "container", 0, "no compat IOAS (IOMMU_VFIO_IOAS or a group) is set");
  return ioas as Ioas;
}

/** VFIO_CHECK_EXTENSION: 1 for the type1 flavours iommufd implements. */
export function vfioCheckExtension(ext: number): number {
  return ext === VFIO_TYPE1_IOMMU || ext === VFIO_TYPE1v2_IOMMU ? 1 : 0;
}

/**
 * VFIO_SET_IOMMU: ENODEV without a compat IOAS; EINVAL for another type; type1
 * (v1) turns large pages off on the IOAS, since it must be able to split any
 * mapping later.
 */
export function vfioSetIommu(ctx: CtxInternals, state: VfioCompatState, type: number): void {
  const ioas = compatIoas(ctx, state);
  if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU)
    fail("EINVAL", "type", type, "not a type1 IOMMU");
  if (type === VFIO_TYPE1_IOMMU) ioas.iopt.disableLarge();
  state.type = type;
}

/** struct vfio_iommu_type1_dma_map. */
export interface VfioDmaMap {
  argsz: number;
  flags: number;
  vaddr: number;
  iova: number;
  size: number;
}

/** VFIO_IOMMU_MAP_DMA: EINVAL (argsz, unknown flags); ENODEV; then IOAS_MAP's errors at a fixed IOVA. */
export function vfioMapDma(ctx: IoasCtx, state: VfioCompatState, args: VfioDmaMap): void {
  if (checkU32("argsz", args.argsz) < MAP_MINSZ)
    fail("EINVAL", "argsz", args.argsz, `below ${MAP_MINSZ}`);
  const flags = checkU32("flags", args.flags);
  if (flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE))
    fail("EINVAL", "flags", flags, "unknown flags");
  const ioas = compatIoas(ctx, state);
  const f =
    IOMMU_IOAS_MAP_FIXED_IOVA |
    (flags & VFIO_DMA_MAP_FLAG_READ ? IOMMU_IOAS_MAP_READABLE : 0) |
    (flags & VFIO_DMA_MAP_FLAG_WRITE ? IOMMU_IOAS_MAP_WRITEABLE : 0);
  ioasMap(ctx, {
    ioasId: ioas.id,
    flags: f,
    userVa: args.vaddr,
    length: args.size,
    iova: args.iova,
  });
}

/** struct vfio_iommu_type1_dma_unmap. */
export interface VfioDmaUnmap {
  argsz: number;
  flags: number;
  iova: number;
  /** In: bytes; out: bytes unmapped. */
  size: number;
}

/**
 * VFIO_IOMMU_UNMAP_DMA: EINVAL (argsz, unknown flags, UNMAP_FLAG_ALL with a
 * non-zero iova or size); ENODEV. Unmapping nothing succeeds with size 0.
 * type1 (v1) first cuts the mappings at both ends of the range; type1v2
 * refuses a partial unmap with ENOENT.
 */
export function vfioUnmapDma(ctx: CtxInternals, state: VfioCompatState, args: VfioDmaUnmap): void {
  if (checkU32("argsz", args.argsz) < UNMAP_MINSZ)
    fail("EINVAL", "argsz", args.argsz, `below ${UNMAP_MINSZ}`);
  const flags = checkU32("flags", args.flags);
  if (flags & ~VFIO_DMA_UNMAP_FLAG_ALL) fail("EINVAL", "flags", flags, "unknown flags");
  const ioas = compatIoas(ctx, state);
  if (flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (args.iova !== 0 || args.size !== 0)
      fail("EINVAL", "iova", args.iova, "UNMAP_FLAG_ALL needs iova and size 0");
    args.size = ioas.iopt.unmapAll();
    return;
  }
  const iova = checkU64("iova", args.iova);
  const size = checkU64("size", args.size);
  if (size === 0) fail("EINVAL", "size", size, "must not be 0");
  const last = lastOf("iova", iova, size);
  if (state.type === VFIO_TYPE1_IOMMU) {
    const cuts = [iova - 1, last].filter((v) => v >= 0 && v < ULONG_MAX);
    ioas.iopt.cutIova(cuts);
  }
  args.size = ioas.iopt.unmapIovaRange(iova, last);
}

/** What VFIO_IOMMU_GET_INFO returns (the byte layout of its capability chain as sizes). */
export interface VfioIommuInfo {
  /** In: the buffer's size; out: the size the whole answer needs when the caps did not fit. */
  argsz: number;
  flags?: number;
  iovaPgsizes?: number;
  /** 0 when the capability chain did not fit in `argsz`; else where it starts. */
  capOffset?: number;
  /** The chain: the IOVA ranges and the DMA mappings still available. */
  caps?: { iovaRanges: Span[]; dmaAvail: number };
}

/**
 * VFIO_IOMMU_GET_INFO: EINVAL below the pre-cap size; ENODEV. The page sizes
 * are those of the IOAS's alignment and up; the chain (IOVA_RANGE with the
 * IOAS's usable ranges, DMA_AVAIL) is returned only when `argsz` holds it all,
 * else `argsz` says how much is needed and `capOffset` is 0.
 */
export function vfioGetInfo(
  ctx: CtxInternals,
  state: VfioCompatState,
  args: VfioIommuInfo,
  ranges: Span[],
): void {
  if (checkU32("argsz", args.argsz) < INFO_MINSZ)
    fail("EINVAL", "argsz", args.argsz, `below ${INFO_MINSZ}`);
  const ioas = compatIoas(ctx, state);
  args.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
  // Every power of two from the IOAS alignment (at least PAGE_SIZE, as vfio reports) up.
  const min = Math.max(ioas.iopt.iovaAlignment, 4096);
  args.iovaPgsizes = 2 ** 64 - min;
  if (args.argsz < INFO_SIZE) return;
  const need = INFO_SIZE + CAP_IOVA_RANGE_HDR + 16 * ranges.length + CAP_DMA_AVAIL;
  if (args.argsz < need) {
    args.argsz = need;
    args.capOffset = 0;
    return;
  }
  args.capOffset = INFO_SIZE;
  args.caps = { iovaRanges: ranges, dmaAvail: 65535 };
}
