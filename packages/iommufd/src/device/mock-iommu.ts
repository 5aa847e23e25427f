import { IoPageTable, pageSizeBitmap } from "@smashlab/pagetable";
import { fail } from "../errors.js";
import { IommuDomain } from "../hwpt/domain.js";
import {
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_PAGE_SIZE,
} from "../uapi.js";
import type {
  DomainAllocArgs,
  HwInfo,
  IommuDriver,
  PhysDevice,
  ReservedRegion,
} from "./iommu-driver.js";
import { capPgsizeBitmap } from "./page-size-cap.js";

/**
 * The iommufd selftest's mock IOMMU (drivers/iommu/iommufd/selftest.c): paging
 * domains are iommupt AMD v1 "mock" tables with a 2 KiB granule
 * (MOCK_PAGE_SIZE, so the IOAS alignment becomes 2048), aperture
 * [MOCK_APERTURE_START, MOCK_APERTURE_LAST], MOCK_HUGE_PAGE_SIZE leaves for a
 * HUGE_IOVA device, dirty ops when asked for and the device can track dirty
 * pages. No reserved regions.
 */
export class MockIommu implements IommuDriver {
  readonly name = "iommufd_mock";
  readonly isolatedMsi = true;

  domainAllocPaging(dev: PhysDevice, args: DomainAllocArgs): IommuDomain {
    const known = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    if ((args.flags & ~known) !== 0)
      fail(
        "EOPNOTSUPP",
        "flags",
        args.flags,
        "the mock IOMMU knows NEST_PARENT and DIRTY_TRACKING",
      );
    const dirty = (args.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
    if (dirty && (dev.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) {
      fail("EOPNOTSUPP", "flags", args.flags, `${dev.name} cannot track dirty pages`);
    }
    const sizes =
      (dev.flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0
        ? pageSizeBitmap(MOCK_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE)
        : pageSizeBitmap(MOCK_PAGE_SIZE);
    const bitmap = capPgsizeBitmap(sizes, args.maxPageSize);
    return new IommuDomain(
      this,
      (driver) =>
        new IoPageTable({
          format: "amdv1-mock",
          pgsizeBitmap: bitmap,
          memory: args.memory,
          driver,
        }),
      { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST },
      dirty,
    );
  }

  attachDev(domain: IommuDomain, dev: PhysDevice): void {
    if (domain.driver !== this)
      fail("EINVAL", "domain", domain.driver.name, "belongs to another IOMMU");
    if (domain.hasDirtyOps && (dev.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) !== 0) {
      fail("EINVAL", "dev", dev.name, "cannot track dirty pages but the domain does");
    }
  }

  capable(dev: PhysDevice, cap: "cache-coherency" | "dirty-tracking"): boolean {
    return cap === "cache-coherency" || (dev.flags & MOCK_FLAGS_DEVICE_NO_DIRTY) === 0;
  }

  reservedRegions(_dev: PhysDevice): ReservedRegion[] {
    return [];
  }

  hwInfo(_dev: PhysDevice): HwInfo {
    // struct iommu_test_hw_info { __u32 flags; __u32 test_reg; }
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(4, IOMMU_HW_INFO_SELFTEST_REGVAL, true);
    return { type: IOMMU_HW_INFO_TYPE_SELFTEST, data, maxPasidLog2: 0 };
  }
}
