import type { TableMemory } from "@smashlab/pagetable";
import type { IommuDomain } from "../hwpt/domain.js";

/** enum iommu_resv_type (the ones that matter to iommufd). */
export type ReservedRegionType = "direct" | "direct-relaxable" | "reserved" | "msi" | "sw-msi";

/** struct iommu_resv_region: IOVA a device can never use for DMA. */
export interface ReservedRegion {
  start: number;
  length: number;
  type: ReservedRegionType;
}

/** A physical device behind an IOMMU (what VFIO binds to iommufd). */
export interface PhysDevice {
  /** A name for messages. */
  readonly name: string;
  /** The IOMMU driver of the IOMMU the device sits behind. */
  readonly iommu: IommuDriver;
  /** The iommu_group: devices that cannot be isolated from each other share one. */
  readonly group: object;
  /** Driver-specific flags (the mock's MOCK_FLAGS_DEVICE_*). */
  readonly flags: number;
}

/** What GET_HW_INFO reports for a device. */
export interface HwInfo {
  type: number;
  data: Uint8Array;
  maxPasidLog2: number;
}

/** Arguments of {@link IommuDriver.domainAllocPaging}. */
export interface DomainAllocArgs {
  /** IOMMU_HWPT_ALLOC_* flags (NEST_PARENT, DIRTY_TRACKING). */
  flags: number;
  /** Where table pages come from. */
  memory: TableMemory;
  /** smashlab extension: the largest leaf the domain may ever install (a power of two), or 0. */
  maxPageSize: number;
}

/**
 * The part of struct iommu_ops iommufd uses: allocate a paging domain, attach,
 * capabilities, reserved regions, hw_info. Errors are thrown as IommufdError
 * with the errno the driver returns.
 */
export interface IommuDriver {
  /** Driver name ("amd_iommu", "iommufd_mock"). */
  readonly name: string;
  /** domain_alloc_paging_flags(). */
  domainAllocPaging(dev: PhysDevice, args: DomainAllocArgs): IommuDomain;
  /** attach_dev(): EINVAL when the domain is incompatible with the device. */
  attachDev(domain: IommuDomain, dev: PhysDevice): void;
  /** device_iommu_capable(). */
  capable(dev: PhysDevice, cap: "cache-coherency" | "dirty-tracking"): boolean;
  /** True when the IOMMU isolates MSIs (interrupt remapping). */
  readonly isolatedMsi: boolean;
  /** iommu_get_resv_regions(). */
  reservedRegions(dev: PhysDevice): ReservedRegion[];
  /** hw_info(). */
  hwInfo(dev: PhysDevice): HwInfo;
}
