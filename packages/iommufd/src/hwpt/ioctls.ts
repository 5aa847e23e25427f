import { checkFlags, checkReserved, checkU32, checkU64 } from "../core/check.js";
import type { CtxInternals } from "../core/ctx-internals.js";
import type { IommufdObject } from "../core/object.js";
import type { IommufdDevice } from "../device/device.js";
import { fail, IommufdError } from "../errors.js";
import type { Ioas } from "../ioas/ioas.js";
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  ObjectType,
} from "../uapi.js";
import { type AdjustReport, adjustPageSize } from "./adjust-page-size.js";
import { readDirtyBitmap, setDirtyTracking } from "./dirty-bitmap.js";
import { allocHwptPaging } from "./hwpt-alloc.js";
import type { HwptPaging } from "./hwpt-paging.js";

/** struct iommu_hwpt_alloc, plus the smashlab page-size cap. */
export interface HwptAllocArgs {
  /** IOMMU_HWPT_ALLOC_NEST_PARENT | DIRTY_TRACKING | FAULT_ID_VALID | PASID. */
  flags: number;
  devId: number;
  /** An IOAS (a HWPT_PAGING is made); a HWPT_PAGING (HWPT_NESTED, not modelled). */
  ptId: number;
  __reserved?: number;
  /** enum iommu_hwpt_data_type; 0 (NONE) for a paging HWPT. */
  dataType?: number;
  dataLen?: number;
  faultId?: number;
  /**
   * smashlab, not upstream: the largest leaf the domain may install (the "known
   * upper bound on the RMP page size" of the seed thread), a power of two, or 0.
   */
  maxPageSize?: number;
  /** Out: the new HWPT's ID. */
  outHwptId?: number;
}

/**
 * IOMMU_HWPT_ALLOC. Checks in the kernel's order: EOPNOTSUPP (`__reserved`);
 * EINVAL (data_type NONE with data, or data without a type); ENOENT (dev_id);
 * EINVAL (pt_id not found, or not an IOAS or a HWPT_PAGING); for an IOAS:
 * EOPNOTSUPP for unknown flags, NEST_PARENT with FAULT_ID_VALID, PASID, or
 * DIRTY_TRACKING on a device that cannot track; ENOENT for FAULT_ID_VALID (no
 * fault queues are modelled); then the domain's EINVAL/EADDRINUSE/EFAULT/ENOMEM
 * while it is filled from the IOAS.
 */
export function hwptAlloc(ctx: CtxInternals, args: HwptAllocArgs): number {
  checkReserved("__reserved", args.__reserved);
  const dataType = checkU32("data_type", args.dataType ?? 0);
  const dataLen = checkU32("data_len", args.dataLen ?? 0);
  if ((dataType === 0 && dataLen !== 0) || (dataType !== 0 && dataLen === 0)) {
    fail("EINVAL", "data_len", dataLen, "data_type and data_len must agree");
  }
  const flags = checkU32("flags", args.flags);
  const idev = ctx.objects.get<IommufdDevice>(
    "dev_id",
    checkU32("dev_id", args.devId),
    ObjectType.DEVICE,
  );
  let pt: IommufdObject;
  try {
    pt = ctx.objects.get("pt_id", checkU32("pt_id", args.ptId));
  } catch (e) {
    if (e instanceof IommufdError && e.code === "ENOENT")
      fail("EINVAL", "pt_id", args.ptId, "no such IOAS or HWPT");
    throw e;
  }
  if (pt.type === ObjectType.HWPT_PAGING) {
    fail("EOPNOTSUPP", "pt_id", args.ptId, "HWPT_NESTED (a HWPT on a nest parent) is not modelled");
  }
  if (pt.type !== ObjectType.IOAS)
    fail("EINVAL", "pt_id", args.ptId, `is a ${pt.type}, not an IOAS`);
  const known =
    IOMMU_HWPT_ALLOC_NEST_PARENT |
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
    IOMMU_HWPT_FAULT_ID_VALID |
    IOMMU_HWPT_ALLOC_PASID;
  checkFlags("flags", flags, known);
  const bothNestAndFault = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID;
  if ((flags & bothNestAndFault) === bothNestAndFault) {
    fail("EOPNOTSUPP", "flags", flags, "a nest parent cannot take a fault queue");
  }
  if (flags & IOMMU_HWPT_ALLOC_PASID)
    fail("EOPNOTSUPP", "flags", flags, "the IOMMU has no PASID support");
  if (dataType !== 0)
    fail("EOPNOTSUPP", "data_type", dataType, "a paging HWPT takes no driver data");
  if (
    flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING &&
    !idev.dev.iommu.capable(idev.dev, "dirty-tracking")
  ) {
    fail("EOPNOTSUPP", "flags", flags, `${idev.dev.name} cannot track dirty pages`);
  }
  if (flags & IOMMU_HWPT_FAULT_ID_VALID)
    fail("ENOENT", "fault_id", args.faultId, "no such FAULT object");
  const maxPageSize = checkU64("maxPageSize", args.maxPageSize ?? 0);
  const hwpt = allocHwptPaging(ctx, pt as Ioas, idev, {
    flags: flags & (IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING),
    maxPageSize,
    autoDomain: false,
    immediateAttach: false,
  });
  args.outHwptId = hwpt.id;
  return hwpt.id;
}

/** The HWPT_PAGING an ID names (ENOENT otherwise). */
export function getHwptPaging(ctx: CtxInternals, argument: string, id: unknown): HwptPaging {
  return ctx.objects.get<HwptPaging>(argument, checkU32(argument, id), ObjectType.HWPT_PAGING);
}

/** struct iommu_hwpt_set_dirty_tracking. */
export interface SetDirtyTrackingArgs {
  /** IOMMU_HWPT_DIRTY_TRACKING_ENABLE or 0. */
  flags: number;
  hwptId: number;
  __reserved?: number;
}

/** IOMMU_HWPT_SET_DIRTY_TRACKING: EOPNOTSUPP (flags, reserved, no dirty ops); ENOENT. */
export function hwptSetDirtyTracking(ctx: CtxInternals, args: SetDirtyTrackingArgs): void {
  const flags = checkFlags("flags", args.flags, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
  checkReserved("__reserved", args.__reserved);
  const hwpt = getHwptPaging(ctx, "hwpt_id", args.hwptId);
  setDirtyTracking(hwpt, (flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0);
}

/** struct iommu_hwpt_get_dirty_bitmap. */
export interface GetDirtyBitmapArgs {
  hwptId: number;
  /** IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR or 0. */
  flags: number;
  __reserved?: number;
  iova: number;
  length: number;
  pageSize: number;
  /** The bitmap (u64 words), written in place; any byte offset. */
  data: Uint8Array;
}

/** IOMMU_HWPT_GET_DIRTY_BITMAP: see {@link readDirtyBitmap}; EOPNOTSUPP for flags or reserved, ENOENT. */
export function hwptGetDirtyBitmap(ctx: CtxInternals, args: GetDirtyBitmapArgs): void {
  const flags = checkFlags("flags", args.flags, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
  checkReserved("__reserved", args.__reserved);
  const hwpt = getHwptPaging(ctx, "hwpt_id", args.hwptId);
  const iova = checkU64("iova", args.iova);
  const length = checkU64("length", args.length);
  const pageSize = checkU64("page_size", args.pageSize);
  if (!(args.data instanceof Uint8Array)) fail("EFAULT", "data", args.data, "must be a Uint8Array");
  readDirtyBitmap(hwpt, iova, length, pageSize, flags, args.data);
}

/** Arguments of IOMMU_HWPT_ADJUST_PAGE_SIZE (smashlab). */
export interface AdjustPageSizeArgs {
  hwptId: number;
  iova: number;
  length: number;
  /** The page size the range should have: leaves above it split, uniform runs below it merge. */
  pageSize: number;
  /** Out: what changed. */
  report?: AdjustReport;
}

/** IOMMU_HWPT_ADJUST_PAGE_SIZE: ENOENT for the HWPT, then {@link adjustPageSize}. */
export function hwptAdjustPageSize(ctx: CtxInternals, args: AdjustPageSizeArgs): AdjustReport {
  const hwpt = getHwptPaging(ctx, "hwpt_id", args.hwptId);
  const report = adjustPageSize(
    hwpt,
    checkU64("iova", args.iova),
    checkU64("length", args.length),
    checkU64("page_size", args.pageSize),
  );
  args.report = report;
  return report;
}

/** struct iommu_hw_info. */
export interface HwInfoArgs {
  /** IOMMU_HW_INFO_FLAG_INPUT_TYPE (1) to ask for `inDataType`. */
  flags?: number;
  devId: number;
  /** In: the buffer's length; out: the kernel's length. */
  dataLen?: number;
  /** The buffer (may be shorter or longer than the driver's data; the tail is zeroed). */
  data?: Uint8Array;
  inDataType?: number;
  __reserved?: number;
  /** Out. */
  outDataType?: number;
  /** Out. */
  outMaxPasidLog2?: number;
  /** Out: IOMMU_HW_CAP_*. */
  outCapabilities?: number;
}

/**
 * IOMMU_GET_HW_INFO: copies min(buffer, driver) bytes, zero-fills the rest of
 * the buffer and reports the driver's length. EOPNOTSUPP (flags, reserved, a
 * requested type the driver lacks); ENOENT (dev_id).
 */
export function getHwInfo(ctx: CtxInternals, args: HwInfoArgs): void {
  const flags = checkFlags("flags", args.flags ?? 0, 1);
  checkReserved("__reserved", args.__reserved);
  const idev = ctx.objects.get<IommufdDevice>(
    "dev_id",
    checkU32("dev_id", args.devId),
    ObjectType.DEVICE,
  );
  const info = idev.dev.iommu.hwInfo(idev.dev);
  if (
    flags & 1 &&
    args.inDataType !== undefined &&
    args.inDataType !== 0 &&
    args.inDataType !== info.type
  ) {
    fail("EOPNOTSUPP", "in_data_type", args.inDataType, "the driver does not report that type");
  }
  const userLen = checkU32("data_len", args.dataLen ?? args.data?.length ?? 0);
  if (args.data !== undefined) {
    const n = Math.min(userLen, info.data.length, args.data.length);
    args.data.set(info.data.subarray(0, n));
    args.data.fill(0, n, Math.min(userLen, args.data.length));
  }
  args.dataLen = info.data.length;
  args.outDataType = info.type;
  args.outMaxPasidLog2 = info.maxPasidLog2;
  args.outCapabilities = idev.dev.iommu.capable(idev.dev, "dirty-tracking")
    ? IOMMU_HW_CAP_DIRTY_TRACKING
    : 0;
}
