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
  /**
   * The table spans the whole 64-bit VA space (set by init when the top range is
   * 64 bits wide; AMD v1 is built with it). IOVAs still stop at 2^53 in this model.
   */
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

/**
 * PT_SUPPORTED_FEATURES of a CONFIG_DEBUG_GENERIC_PT build (pt_defs.h): every
 * format is compiled with every feature, except DMA_INCOHERENT where the format
 * was not built with it (it needs a software bit), and except what cannot
 * coexist with sign extension: DYNAMIC_TOP and FULL_VA for a sign-extended
 * format, SIGN_EXTEND for the others. The kernel's KUnit runs in this build.
 */
export function debugSupportedFeatures(supported: number): number {
  let m = 0xffffffff;
  if (!hasFeature(supported, PtFeature.DMA_INCOHERENT)) m &= ~(1 << PtFeature.DMA_INCOHERENT);
  if (hasFeature(supported, PtFeature.SIGN_EXTEND)) {
    m &= ~((1 << PtFeature.DYNAMIC_TOP) | (1 << PtFeature.FULL_VA));
  } else {
    m &= ~(1 << PtFeature.SIGN_EXTEND);
  }
  return m >>> 0;
}
