import { hasFeature, PtFeature } from "../features.js";
import type { PtFormat } from "../format/format.js";
import { ITEMS_PER_TABLE_LG2 } from "../format/format.js";
import { POW2 } from "../log2.js";

/**
 * The geometry every walker needs: the format, the features, the VA/OA widths,
 * the current top, and per-level constants precomputed so that the index of an
 * IOVA at a level is one multiply, one floor and one mask.
 */
export interface PtGeometry {
  readonly fmt: PtFormat;
  readonly features: number;
  /** The table's VA width (common.max_vasz_lg2), sign bit included with SIGN_EXTEND. */
  readonly maxVaLg2: number;
  /** The table's OA width (common.max_oasz_lg2). */
  readonly maxOaLg2: number;
  /** Current top level (it grows with DYNAMIC_TOP). */
  readonly topLevel: number;
  /** Item size per level, log2. */
  readonly itemLg2: Int32Array;
  /** Item size per level, in bytes. */
  readonly itemSize: Float64Array;
  /** 1 / item size per level (exact: a power of two). */
  readonly invItemSize: Float64Array;
  /**
   * Per level, the mask that turns floor(va / item size) into an index: the
   * table's own bits below the top, and every VA bit above the item at the top.
   */
  readonly indexMask: Int32Array;
  /** First IOVA the current top reaches (negative with SIGN_EXTEND). */
  readonly vaFirst: number;
  /** Last IOVA the current top reaches. */
  readonly vaLast: number;
}

/** The item size of a level, log2 (the kernel's pt_table_item_lg2sz default). */
export function tableItemLg2(fmt: PtFormat, level: number): number {
  return fmt.granuleLg2 + ITEMS_PER_TABLE_LG2 * level;
}

/**
 * The VA width a range at `topLevel` may use (the kernel's _pt_top_range): with
 * DYNAMIC_TOP below the highest level, what that top can reach.
 */
export function rangeMaxVaLg2(g: PtGeometry, topLevel: number): number {
  if (hasFeature(g.features, PtFeature.DYNAMIC_TOP) && topLevel !== g.fmt.maxTopLevel) {
    return Math.min(g.maxVaLg2, g.fmt.numItemsLg2(topLevel) + g.itemLg2[topLevel]!);
  }
  return g.maxVaLg2;
}

/**
 * pt_check_range() for a top of width `maxVaLg2`: both ends inside, with the same
 * prefix. With SIGN_EXTEND a range lies wholly in the lower half [0, 2^(n-1)) or
 * wholly in the upper half [-2^(n-1), 0), upper-half IOVAs being negative numbers.
 */
export function checkRange(g: PtGeometry, va: number, last: number, maxVaLg2: number): boolean {
  if (hasFeature(g.features, PtFeature.SIGN_EXTEND)) {
    const half = POW2[maxVaLg2 - 1]!;
    if (va < 0) return va >= -half && last < 0;
    return last < half;
  }
  return va >= 0 && last < POW2[maxVaLg2]!;
}

/** pt_check_range() against the current top, from the cached bounds. */
export function inRange(g: PtGeometry, va: number, last: number): boolean {
  return va >= g.vaFirst && last <= g.vaLast && va < 0 === last < 0;
}

/** Index of `va` in a table at `level` (pt_range_to_index). */
export function indexAt(g: PtGeometry, va: number, level: number): number {
  return Math.floor(va * g.invItemSize[level]!) & g.indexMask[level]!;
}

/** Start of the item at `level` that contains `va` (va rounded down to the item size). */
export function itemStart(g: PtGeometry, va: number, level: number): number {
  return Math.floor(va * g.invItemSize[level]!) * g.itemSize[level]!;
}
