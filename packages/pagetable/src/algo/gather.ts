/**
 * The IOTLB gather (struct iommu_iotlb_gather): the IOVA range an operation
 * touched and the table pages it unlinked. Unlinked pages are freed only when the
 * gather is synced, after the invalidation, because a hardware walker may still
 * hold them until then ("flush before free", hazard H6).
 */
export class IotlbGather {
  /** First IOVA to invalidate; `Infinity` while empty (the kernel uses start=U64_MAX). */
  start = Number.POSITIVE_INFINITY;
  /** Last IOVA to invalidate (inclusive); `-Infinity` while empty. */
  last = Number.NEGATIVE_INFINITY;
  /** Physical addresses of unlinked table pages waiting for the flush. */
  readonly freelist: number[] = [];

  /** True when there is no range to invalidate. */
  get isEmpty(): boolean {
    return this.start > this.last;
  }

  /** iommu_iotlb_gather_add_range(): widen the range to cover [iova, iova+len). */
  addRange(iova: number, len: number): void {
    if (iova < this.start) this.start = iova;
    const last = iova + len - 1;
    if (last > this.last) this.last = last;
  }

  /** iommu_iotlb_gather_is_disjoint(): true when [iova, iova+len) neither overlaps nor touches the range. */
  isDisjoint(iova: number, len: number): boolean {
    if (this.isEmpty) return false;
    return iova + len < this.start || iova > this.last + 1;
  }

  /** Forgets the range and the list (after a sync). */
  reset(): void {
    this.start = Number.POSITIVE_INFINITY;
    this.last = Number.NEGATIVE_INFINITY;
    if (this.freelist.length !== 0) this.freelist.length = 0;
  }
}
