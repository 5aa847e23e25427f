import { hasFeature, PtFeature } from "../features.js";
import type { PtFormat } from "../format/format.js";
import { ITEMS_PER_TABLE_LG2 } from "../format/format.js";
import { lg2Div, lg2Mod } from "../log2.js";

/**
 * The geometry every walker needs: the format, the features, the VA/OA widths and
 * the current top. The table object implements it; walkers read it.
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
}

/** The item size of a level, log2 (the kernel's pt_table_item_lg2sz default). */
export function tableItemLg2(fmt: PtFormat, level: number): number {
  return fmt.granuleLg2 + ITEMS_PER_TABLE_LG2 * level;
}

/**
 * The VA width a range at the current top may use (the kernel's _pt_top_range):
 * with DYNAMIC_TOP below the highest level, what the current top can reach.
 */
export function rangeMaxVaLg2(g: PtGeometry, topLevel: number): number {
  if (hasFeature(g.features, PtFeature.DYNAMIC_TOP) && topLevel !== g.fmt.maxTopLevel) {
    return Math.min(g.maxVaLg2, g.fmt.numItemsLg2(topLevel) + g.itemLg2[topLevel]!);
  }
  return g.maxVaLg2;
}

/**
 * pt_check_range(): both ends inside the VA the top can reach, with the same
 * prefix. With SIGN_EXTEND a range lies wholly in the lower half [0, 2^(n-1)) or
 * wholly in the upper half [-2^(n-1), 0), upper-half IOVAs being negative numbers.
 */
export function checkRange(g: PtGeometry, va: number, last: number, maxVaLg2: number): boolean {
  if (hasFeature(g.features, PtFeature.SIGN_EXTEND)) {
    const half = 2 ** (maxVaLg2 - 1);
    if (va < 0) return va >= -half && last < 0;
    return last < half;
  }
  return va >= 0 && last < 2 ** maxVaLg2;
}

/**
 * Index of `va` in a table at `level`. At the top level the index takes every VA
 * bit above the item (the kernel's pt_range_to_index); below it, the table's bits.
 */
export function indexAt(
  g: PtGeometry,
  va: number,
  level: number,
  topLevel: number,
  maxVaLg2: number,
): number {
  const isz = g.itemLg2[level]!;
  const bits = level === topLevel ? maxVaLg2 - isz : g.fmt.numItemsLg2(level);
  return lg2Mod(lg2Div(va, isz), bits);
}
