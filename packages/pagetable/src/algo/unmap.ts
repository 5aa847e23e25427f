import { Errno } from "../errors.js";
import { EntryType } from "../format/format.js";
import { indexAt, itemStart } from "../iter/geometry.js";
import { POW2 } from "../log2.js";
import { childTable } from "./child-table.js";
import type { PtTable } from "./table-like.js";

/**
 * unmap_pages() over [va, va + length): clear whole entries, never splitting one.
 *
 * - A first entry that is a leaf starting before `va` (va inside a large page)
 *   stops the walk with nothing removed from it.
 * - A hole stops the walk; what was cleared before it stays cleared.
 * - A leaf reaching past `last` is cleared whole and counted whole.
 * - A table fully inside the range is unlinked and queued on the free list.
 *
 * Adds the bytes cleared to `pt.scratch.unmapped`; the unlinked tables are in
 * `pt.scratch.freeList`.
 */
export function unmapPages(pt: PtTable, va: number, length: number): number {
  const top = pt.topLevel;
  pt.scratch.walkVa[top] = va;
  pt.scratch.walkLast[top] = va + length - 1;
  return unmapLevel(pt, pt.topWords, top);
}

/**
 * The common single-page case: descend through tables to a level-0 leaf of one
 * item and clear it. Returns the bytes cleared, or 0 when the full walk must
 * decide (a large leaf on the way, a hole, a contiguous run): its result is the
 * same, this only skips the general loop. The level-0 table is never freed here,
 * as in the full walk (one page never covers a whole table).
 */
export function unmapSinglePage(pt: PtTable, va: number): number {
  const fmt = pt.fmt;
  let t = pt.topWords;
  for (let level = pt.topLevel; ; level--) {
    const i = indexAt(pt, va, level);
    const type = fmt.load(t, i, level);
    if (level === 0) {
      if (type !== EntryType.OA || fmt.numContigLg2(t, i, 0) !== 0) return 0;
      fmt.clearEntries(t, i, 0);
      return pt.itemSize[0]!;
    }
    if (type !== EntryType.TABLE) return 0;
    t = childTable(pt, t, i);
  }
}

/** One level of unmapPages(), over the range `pt.scratch.walkVa/walkLast` hold for it. */
function unmapLevel(pt: PtTable, t: Uint32Array, level: number): number {
  const fmt = pt.fmt;
  const s = pt.scratch;
  const va = s.walkVa[level]!;
  const last = s.walkLast[level]!;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  let i = indexAt(pt, va, level);
  const end = indexAt(pt, last, level) + 1;
  let itemVa = itemStart(pt, va, level);
  let numItems = 0;
  let ret = 0;
  let type = fmt.load(t, i, level);
  // A start inside a leaf: va off the item, or the item not the first of its run.
  if (
    type === EntryType.OA &&
    (va !== itemVa || (i & ((1 << fmt.numContigLg2(t, i, level)) - 1)) !== 0)
  ) {
    return -Errno.EINVAL;
  }
  for (;;) {
    if (type === EntryType.OA) {
      // Leaves from here on are cleared in one go, as map writes them, finishing
      // a contiguous entry that reaches past `last` (each entry goes whole).
      let stop = end;
      if (fmt.load(t, end - 1, level) === EntryType.OA) {
        stop = ((end - 1) | ((1 << fmt.numContigLg2(t, end - 1, level)) - 1)) + 1;
      }
      const j = fmt.clearLeaves(t, i, stop, level);
      numItems += j - i;
      itemVa += (j - i) * itemSize;
      i = j;
    } else if (type === EntryType.TABLE) {
      const childVa = Math.max(va, itemVa);
      const itemLast = itemVa + itemSize - 1;
      const fullyCovered = childVa === itemVa && last >= itemLast;
      s.walkVa[level - 1] = childVa;
      s.walkLast[level - 1] = Math.min(last, itemLast);
      ret = unmapLevel(pt, childTable(pt, t, i), level - 1);
      if (ret) break;
      // Only a table the range covers whole is freed; one that merely became empty stays.
      if (fullyCovered) {
        s.freeList.push(fmt.tablePa(t, i));
        fmt.clearEntries(t, i, 0);
      }
      i++;
      itemVa += itemSize;
    } else {
      ret = -Errno.EINVAL;
      break;
    }
    if (i >= end) break;
    type = fmt.load(t, i, level);
  }
  s.unmapped += numItems * itemSize;
  return ret;
}
