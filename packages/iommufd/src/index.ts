/**
 * iommufd's objects and ioctls (drivers/iommu/iommufd/) over `@smashlab/pagetable`
 * domains: the object table, IOAS and io_pagetable (areas, allowed and reserved
 * IOVA, alignment, automatic IOVA), lazy pinning and accounting, HWPT_PAGING
 * with auto domains, devices and groups, accesses, dirty tracking, the
 * selftest's mock IOMMU and test ops, and fault injection in the style of
 * iommufd_fail_nth. Beyond upstream, for the SEV-TIO flow: a HWPT page-size cap,
 * IOMMU_HWPT_ADJUST_PAGE_SIZE, and guest_memfd conversion notifications.
 *
 * @packageDocumentation
 */
export type { AccessOps, AccessPin, IommufdAccess } from "./access/access.js";
export { FaultInjector, InjectableTableMemory } from "./core/inject.js";
export {
  AMD_HT_RANGE,
  AMD_MSI_RANGE,
  AMD_V1_PGSIZES,
  AmdIommu,
  type AmdIommuOptions,
} from "./device/amd-iommu.js";
export type {
  DomainAllocArgs,
  HwInfo,
  IommuDriver,
  PhysDevice,
  ReservedRegion,
  ReservedRegionType,
} from "./device/iommu-driver.js";
export { MockIommu } from "./device/mock-iommu.js";
export { type IommufdErrno, IommufdError } from "./errors.js";
export type { AdjustReport } from "./hwpt/adjust-page-size.js";
export { type FlushRecord, IommuDomain } from "./hwpt/domain.js";
export type {
  AdjustPageSizeArgs,
  GetDirtyBitmapArgs,
  HwInfoArgs,
  HwptAllocArgs,
  SetDirtyTrackingArgs,
} from "./hwpt/ioctls.js";
export type {
  AllowIovasArgs,
  ChangeProcessArgs,
  IoasAllocArgs,
  IoasCopyArgs,
  IoasMapArgs,
  IoasMapFileArgs,
  IoasUnmapArgs,
  IovaRangesArgs,
  OptionArgs,
} from "./ioas/ioctls.js";
export {
  IOMMU,
  IOMMUFD_CMD_BASE,
  IOMMUFD_COMMANDS,
  IOMMUFD_TYPE,
  type IoctlArg,
  type IommufdCommand,
  iommufdIo,
} from "./ioctl/dispatch.js";
export { type Field, LAYOUTS, type StructLayout } from "./ioctl/layout.js";
export { Iommufd, type IommufdOptions, type IommufdStats } from "./iommufd.js";
export type { Span } from "./iopt/iova-alloc.js";
export type { ConversionEvent, ConversionPolicy, RevokeEvent } from "./notify/file-events.js";
export { UserAccount } from "./pages/account.js";
export { ProcessAddressSpace } from "./pages/address-space.js";
export type { FileEvent, FileSource } from "./pages/file-source.js";
export { Memfd, type MemfdOptions } from "./pages/memfd.js";
export { PhysMemory } from "./pages/phys-memory.js";
export { IommufdTest, type MockDomainResult } from "./selftest/test-ops.js";
export * from "./uapi.js";
export {
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  type VfioDmaMap,
  type VfioDmaUnmap,
  type VfioIommuInfo,
} from "./vfio/compat.js";
