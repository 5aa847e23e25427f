import { IommuProt, type IoPageTable, type PtDriverOps } from "@smashlab/pagetable";
import type { IommuDriver } from "../device/iommu-driver.js";
import { fromPageTable } from "../errors.js";

/** The IOTLB invalidations a domain has issued, for observers and tests. */
export interface FlushRecord {
  start: number;
  last: number;
  /** Table pages freed after this flush. */
  freed: number;
}

/**
 * struct iommu_domain of type UNMANAGED: an IO page table with the driver's
 * geometry, page sizes and dirty ops. iommufd maps and unmaps through it; the
 * table's IOTLB syncs land in {@link IommuDomain.flushes} and reach
 * {@link IommuDomain.onFlush}, so an IOMMU model can drop cached translations.
 */
export class IommuDomain {
  /** The page table; hardware models walk it, the TMPM engine edits it. */
  readonly table: IoPageTable;
  /** First IOVA of the aperture. */
  readonly apertureStart: number;
  /** Last IOVA of the aperture (inclusive). */
  readonly apertureLast: number;
  /** True when the domain has dirty ops (allocated with DIRTY_TRACKING). */
  readonly hasDirtyOps: boolean;
  /** True while dirty tracking is enabled. */
  dirtyTracking = false;
  /** Invalidations issued so far (count). */
  flushes = 0;
  /** Called after each IOTLB invalidation (INVALIDATE_IOMMU_PAGES + COMPLETION_WAIT). */
  onFlush: ((flush: FlushRecord) => void) | null = null;
  private freed = false;

  constructor(
    readonly driver: IommuDriver,
    makeTable: (ops: PtDriverOps) => IoPageTable,
    aperture: { start: number; last: number } | null,
    hasDirtyOps: boolean,
  ) {
    this.table = makeTable({
      flushIotlb: (start, last, freed) => {
        this.flushes++;
        this.onFlush?.({ start, last, freed: freed.length });
      },
    });
    // A driver that states no geometry of its own reports the table's.
    this.apertureStart = (aperture ?? this.table.aperture).start;
    this.apertureLast = (aperture ?? this.table.aperture).last;
    this.hasDirtyOps = hasDirtyOps;
  }

  /** The domain's page sizes (pgsize_bitmap) as a number. */
  get pgsizeBitmap(): number {
    return this.table.pgsizeBitmap;
  }

  /** 1 << __ffs(pgsize_bitmap): the smallest page size. */
  get minPageSize(): number {
    return this.table.minPageSize;
  }

  /** iommu_map(): all or nothing; table errors surface with their errno. */
  map(iova: number, paddr: number, length: number, prot: number): void {
    try {
      this.table.mapRange(iova, paddr, length, prot);
    } catch (e) {
      fromPageTable(e, "iova", iova);
    }
  }

  /** iommu_unmap(): returns the bytes removed. */
  unmap(iova: number, length: number): number {
    return this.table.unmapRange(iova, length);
  }

  /** iommu_domain_free(): the table pages go back to the allocator. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.table.destroy();
  }

  /** True once freed. */
  get isFreed(): boolean {
    return this.freed;
  }
}

/** IOMMU_READ/WRITE from a map's flags, and IOMMU_CACHE always (iommufd sets it). */
export function iommuProtOf(readable: boolean, writable: boolean): number {
  return (readable ? IommuProt.READ : 0) | (writable ? IommuProt.WRITE : 0) | IommuProt.CACHE;
}
