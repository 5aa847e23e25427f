import { EntryType } from "../format/format.js";
import { indexAt } from "../iter/geometry.js";
import { lg2Mod } from "../log2.js";
import { childTable } from "./child-table.js";
import type { PtTable } from "./table-like.js";

/**
 * What a hardware walk of one IOVA finds: filled by `IoPageTable.lookup()`, reused by
 * callers (an IOMMU model keeps one) so that a walk allocates nothing.
 */
export class WalkResult {
  /** Output address of the IOVA (entry OA plus the offset inside the leaf). */
  oa = -1;
  /** Output address where the leaf starts. */
  leafOa = -1;
  /** IOVA where the leaf starts. */
  leafVa = 0;
  /** log2 of the leaf size (a contiguous AMD run counts whole). */
  leafLg2 = 0;
  /** Level the leaf sits at. */
  level = 0;
  /** Table entries read by the walk (the memory accesses of a page walk). */
  reads = 0;
  /** DMA may read through the leaf. */
  readable = false;
  /** DMA may write through the leaf. */
  writable = false;
  /** Physical address of the table holding the leaf. */
  leafTablePa = 0;
  /** Index of the leaf's item in that table. */
  leafIndex = 0;
}

/**
 * One IOVA walked from the top: the model of the hardware walk and of
 * iova_to_phys(). Returns false (result.oa = -1) when nothing translates it.
 * The caller has checked the range.
 */
export function walkIova(pt: PtTable, va: number, out: WalkResult): boolean {
  const fmt = pt.fmt;
  const top = pt.topLevel;
  let t = pt.topWords;
  let tablePa = pt.topPa;
  out.reads = 0;
  for (let level = top; level >= 0; level--) {
    const i = indexAt(pt, va, level);
    out.reads++;
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      tablePa = fmt.tablePa(t, i);
      t = pt.mem.words(tablePa);
      continue;
    }
    if (type === EntryType.EMPTY) break;
    const lg2 = pt.itemLg2[level]! + fmt.numContigLg2(t, i, level);
    const off = lg2Mod(va, lg2);
    out.leafOa = fmt.entryOa(t, i, level);
    out.oa = out.leafOa + off;
    out.leafVa = va - off;
    out.leafLg2 = lg2;
    out.level = level;
    out.readable = fmt.readable(t, i);
    out.writable = fmt.writable(t, i);
    out.leafTablePa = tablePa;
    out.leafIndex = i;
    return true;
  }
  out.oa = -1;
  out.leafOa = -1;
  out.leafLg2 = 0;
  out.readable = false;
  out.writable = false;
  return false;
}

/** iova_to_phys() without a result object: the OA, or -1 when unmapped. */
export function translateIova(pt: PtTable, va: number): number {
  const fmt = pt.fmt;
  const top = pt.topLevel;
  let t = pt.topWords;
  for (let level = top; level >= 0; level--) {
    const i = indexAt(pt, va, level);
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      t = childTable(pt, t, i);
      continue;
    }
    if (type === EntryType.EMPTY) return -1;
    const lg2 = pt.itemLg2[level]! + fmt.numContigLg2(t, i, level);
    return fmt.entryOa(t, i, level) + lg2Mod(va, lg2);
  }
  return -1;
}
