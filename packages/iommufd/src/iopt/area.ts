import type { IoptPages } from "../pages/iopt-pages.js";
import { PAGE_SIZE } from "../uapi.js";
import type { IoPagetable } from "./io-pagetable.js";

/**
 * struct iopt_area: an IOVA interval [iova, last] mapping a byte slice of one
 * iopt_pages. `pages` is null while the area is being built or torn down (an
 * unmap meeting it then is EBUSY).
 */
export class IoptArea {
  /** The pages while the area is live; null while it is being built or destroyed. */
  pages: IoptPages | null = null;
  /** In-kernel accesses that hold pins in this area. */
  numAccesses = 0;
  /** Set while an unmap waits for accesses to let go: new pins are refused. */
  preventAccess = false;
  /** True while the area's pages are pinned for the domains (its pages_node is in domains_itree). */
  filled = false;
  /** Set when the file under the area was truncated or punched: nothing maps it any more. */
  revoked = false;

  constructor(
    /** The io_pagetable the area lives in. */
    readonly iopt: IoPagetable,
    /** First IOVA. */
    readonly iova: number,
    /** Last IOVA (inclusive). */
    readonly last: number,
    /** The pages the area maps (kept while `pages` is null during set-up). */
    readonly source: IoptPages,
    /** Byte offset of `iova` in the pages. */
    readonly startByte: number,
    /** IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE. */
    readonly prot: number,
  ) {}

  /** Bytes mapped. */
  get length(): number {
    return this.last - this.iova + 1;
  }

  /** Offset of the first byte inside its page. */
  get pageOffset(): number {
    return this.startByte % PAGE_SIZE;
  }

  /** Index of the first page (pages_node.start). */
  get firstIndex(): number {
    return Math.floor(this.startByte / PAGE_SIZE);
  }

  /** Index of the last page (pages_node.last). */
  get lastIndex(): number {
    return Math.floor((this.startByte + this.length - 1) / PAGE_SIZE);
  }

  /** Byte offset in the pages of `iova` (iopt_area_start_byte). */
  startByteOf(iova: number): number {
    return this.startByte + (iova - this.iova);
  }
}
