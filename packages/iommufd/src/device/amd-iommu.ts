import { IoPageTable } from "@smashlab/pagetable";
import { fail } from "../errors.js";
import { IommuDomain } from "../hwpt/domain.js";
import {
  IOMMU_HW_INFO_TYPE_AMD,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
} from "../uapi.js";
import type {
  DomainAllocArgs,
  HwInfo,
  IommuDriver,
  PhysDevice,
  ReservedRegion,
} from "./iommu-driver.js";
import { capPgsizeBitmap } from "./page-size-cap.js";

/** Options of {@link AmdIommu}. */
export interface AmdIommuOptions {
  /** The IOMMU sets dirty bits (EFR HDSup): domains may track dirty pages. Default true. */
  dirtyTracking?: boolean;
  /** IVMD unity ranges the firmware declares (IOMMU_RESV_DIRECT). Default none. */
  unityRanges?: { start: number; length: number }[];
}

/** MSI window every AMD IOMMU reserves (MSI_RANGE_START..MSI_RANGE_END). */
export const AMD_MSI_RANGE = { start: 0xfee00000, length: 0x100000 } as const;
/** HyperTransport window (HT_RANGE_START..HT_RANGE_END). */
export const AMD_HT_RANGE = { start: 0xfd00000000, length: 0x300000000 } as const;

/**
 * AMD v1 leaf sizes with a 52-bit OA: every power of two from 4K to 2^51 but
 * 512G, which the driver leaves out for a hardware erratum.
 */
export const AMD_V1_PGSIZES = (() => {
  let b = 0;
  for (let lg2 = 12; lg2 <= 51; lg2++) if (lg2 !== 39) b += 2 ** lg2;
  return b;
})();

/**
 * The AMD IOMMU driver's paging domains: iommupt AMD v1 tables (host page
 * table, the one SEV-SNP checks trusted DMA against), the v1 page sizes, the
 * whole IOVA space as aperture, and the driver's reserved regions: IVMD unity
 * ranges, the MSI window and the HyperTransport window.
 */
export class AmdIommu implements IommuDriver {
  readonly name = "amd_iommu";
  readonly isolatedMsi = true;
  private readonly dirty: boolean;
  private readonly unity: { start: number; length: number }[];

  constructor(options: AmdIommuOptions = {}) {
    this.dirty = options.dirtyTracking ?? true;
    this.unity = options.unityRanges ?? [];
  }

  domainAllocPaging(_dev: PhysDevice, args: DomainAllocArgs): IommuDomain {
    const known = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    if ((args.flags & ~known) !== 0)
      fail("EOPNOTSUPP", "flags", args.flags, "amd_iommu knows NEST_PARENT and DIRTY_TRACKING");
    const dirty = (args.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
    if (dirty && !this.dirty)
      fail("EOPNOTSUPP", "flags", args.flags, "this IOMMU cannot track dirty pages");
    const capped = capPgsizeBitmap(AMD_V1_PGSIZES, args.maxPageSize);
    return new IommuDomain(
      this,
      (driver) =>
        new IoPageTable({ format: "amdv1", pgsizeBitmap: capped, memory: args.memory, driver }),
      null,
      dirty,
    );
  }

  attachDev(domain: IommuDomain, _dev: PhysDevice): void {
    if (domain.driver !== this)
      fail("EINVAL", "domain", domain.driver.name, "belongs to another IOMMU");
  }

  capable(_dev: PhysDevice, cap: "cache-coherency" | "dirty-tracking"): boolean {
    return cap === "cache-coherency" || this.dirty;
  }

  reservedRegions(_dev: PhysDevice): ReservedRegion[] {
    return [
      ...this.unity.map((u) => ({ start: u.start, length: u.length, type: "direct" as const })),
      { ...AMD_MSI_RANGE, type: "msi" },
      { ...AMD_HT_RANGE, type: "reserved" },
    ];
  }

  hwInfo(_dev: PhysDevice): HwInfo {
    // struct iommu_hw_info_amd { __aligned_u64 efr; __aligned_u64 efr2; }: HDSup is EFR bit 52.
    const data = new Uint8Array(16);
    if (this.dirty) new DataView(data.buffer).setUint32(4, 1 << 20, true);
    return { type: IOMMU_HW_INFO_TYPE_AMD, data, maxPasidLog2: 0 };
  }
}
