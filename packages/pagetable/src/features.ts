/**
 * Table features, with the kernel's bit numbers (include/linux/generic_pt/common.h,
 * enum pt_features), plus the two the RFC `cut_mapping` series proposed.
 *
 * A table is created with a feature set; asking for a feature the format was not
 * built with fails with EOPNOTSUPP, as pt_init_common() does.
 */
export const PtFeature = {
  /** Table memory must be flushed from CPU caches before the IOMMU may walk it. Accepted, not modelled (no cache model). */
  DMA_INCOHERENT: 0,
  /** The table spans the whole 64-bit VA space. Never set in this model: IOVAs stop at 2^53. */
  FULL_VA: 1,
  /** The top level grows during map, the old top becoming index 0 of the new one. */
  DYNAMIC_TOP: 2,
  /** x86-style canonical addresses: a lower and an upper half, upper IOVAs given as negative numbers. */
  SIGN_EXTEND: 3,
  /** One IOVA range per invalidation, which may cover gaps. */
  FLUSH_RANGE: 4,
  /** Flush instead of covering gaps (shadowing hypervisors). */
  FLUSH_RANGE_NO_GAPS: 5,
  /** AMD v1: SME C-bit on table pointers and PTEs (not modelled beyond acceptance). */
  AMDV1_ENCRYPT_TABLES: 6,
  /** AMD v1: FC bit on every leaf. */
  AMDV1_FORCE_COHERENCE: 7,
  /** VT-d SS: SNP bit on every leaf (same bit number as AMDV1_ENCRYPT_TABLES, format specific). */
  VTDSS_FORCE_COHERENCE: 6,
  /** VT-d SS: read-only maps rejected (erratum 772415_SPR17). */
  VTDSS_FORCE_WRITEABLE: 7,
  /** x86_64: SME C-bit (format specific). */
  X86_64_AMD_ENCRYPT_TABLES: 6,
  /**
   * RFC "iommupt: Add cut_mapping op": a present OA may change size in place
   * (single item ↔ contiguous run, or resize a run) without a non-present window.
   * Model-only bit number (upstream has no such feature).
   */
  OA_SIZE_CHANGE: 16,
  /**
   * RFC: a present single-item OA may be replaced by an equivalent fully populated
   * table, and back, hitlessly. Model-only bit number.
   */
  OA_TABLE_XCHG: 17,
} as const;

/** Name of a feature of {@link PtFeature}. */
export type PtFeatureName = keyof typeof PtFeature;

/** Bit mask of a list of feature bit numbers. */
export function featureMask(...bits: number[]): number {
  let m = 0;
  for (const b of bits) m |= 1 << b;
  return m;
}

/** True when the mask contains the feature bit. */
export function hasFeature(mask: number, bit: number): boolean {
  return (mask & (1 << bit)) !== 0;
}
