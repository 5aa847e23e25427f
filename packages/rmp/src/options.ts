/**
 * The RMP model's switches: hardware behaviour the sources leave open
 * (../shared/reference/coco.md §8), with the defaults of MODEL.md.
 */
export interface RmpOptions {
  /**
   * Bytes of host memory the RMP covers (RMP_BASE..RMP_END covers all RAM).
   * Up to 4 TiB; memory use follows what is assigned or smashed, not this.
   * Default 4 TiB.
   */
  hostBytes?: number;
  /**
   * Open question 3: does a trusted (T=1) DMA also need the page Validated?
   * Default false (MODEL.md): the sources name only ASID, GPA and size.
   */
  trustedDmaRequiresValidated?: boolean;
  /**
   * Untrusted (T=0) DMA through a leaf of 2M or more: the whole 2M region must be
   * free of assigned pages (MR, [RFCv2-12]: "a 2M mapping needs ... every page in
   * the 2M range shared"). Default true. False checks only the page accessed.
   */
  untrustedLargeLeafChecksWholeRegion?: boolean;
  /**
   * How many times the Linux helpers retry an RMPUPDATE that returns FAIL_OVERLAP.
   * The kernel loops without bound (a transient overlap from a racing CPU clears);
   * a deterministic overlap would hang it. The model stops after this many and
   * reports FAIL_OVERLAP (counted in `stats().overlapLivelocks`). Default 16.
   */
  overlapRetryLimit?: number;
}

/** The options with every default filled in. */
export interface ResolvedRmpOptions {
  hostBytes: number;
  trustedDmaRequiresValidated: boolean;
  untrustedLargeLeafChecksWholeRegion: boolean;
  overlapRetryLimit: number;
}

/** MODEL.md's defaults. */
export const DEFAULT_RMP_OPTIONS: ResolvedRmpOptions = {
  hostBytes: 4 * 2 ** 40,
  trustedDmaRequiresValidated: false,
  untrustedLargeLeafChecksWholeRegion: true,
  overlapRetryLimit: 16,
};
