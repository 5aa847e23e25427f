import { Errno } from "../errors.js";
import { hasFeature, PtFeature } from "../features.js";
import { EntryType } from "../format/format.js";
import { indexAt, inRange, itemStart } from "../iter/geometry.js";
import { POW2 } from "../log2.js";
import { childTable } from "./child-table.js";
import { collectTables } from "./collect.js";
import type { PtTable } from "./table-like.js";
import { increaseTop } from "./top.js";

/**
 * map_pages() over [va, va + length): install leaves of one size, `leafLg2` (the
 * caller computed the best page size of the whole range), from `oa` on. Returns 0
 * or a negative errno; `pt.scratch.oa` ends at the first byte not mapped, so the
 * caller knows how much was installed (the kernel's *mapped). One 4K page goes
 * through {@link mapOnePage} instead, the kernel's single-page fast path.
 *
 * Like the kernel, a failure leaves the installed prefix in place.
 */
export function mapPages(
  pt: PtTable,
  va: number,
  length: number,
  oa: number,
  leafLg2: number,
): number {
  const s = pt.scratch;
  const last = va + length - 1;
  s.oa = oa;
  s.leafLg2 = leafLg2;
  s.leafLevel = Math.floor((leafLg2 - pt.fmt.granuleLg2) / 9);
  // check_map_range() has nothing to do when the range fits below the top.
  if (!inRange(pt, va, last) || s.leafLevel > pt.topLevel) {
    const ret = checkMapRange(pt, va, last);
    if (ret) return ret;
  }
  const top = pt.topLevel;
  s.walkVa[top] = va;
  s.walkLast[top] = last;
  return mapRange(pt);
}

/** The walk of map_pages() once the range fits the top, then map's own flush-and-free. */
function mapRange(pt: PtTable): number {
  const s = pt.scratch;
  const top = pt.topLevel;
  const ret =
    s.leafLevel === top
      ? mapLeafLevel(pt, pt.topWords, top, false)
      : mapTableLevel(pt, pt.topWords, top, false);

  // Tables were replaced by large leaves: flush walk caches before freeing them.
  if (s.mapGather.freelist.length !== 0) pt.iotlbSync(s.mapGather);
  else if (!s.mapGather.isEmpty) s.mapGather.reset();
  return ret;
}

/** check_map_range(): the range must fit the top; with DYNAMIC_TOP, grow until it does. */
function checkMapRange(pt: PtTable, va: number, last: number): number {
  for (;;) {
    const fits = inRange(pt, va, last);
    if (!hasFeature(pt.features, PtFeature.DYNAMIC_TOP)) return fits ? 0 : -Errno.ERANGE;
    if (fits && pt.scratch.leafLevel <= pt.topLevel) return 0;
    const ret = increaseTop(pt, va, last);
    if (ret && ret !== -Errno.EAGAIN) return ret;
  }
}

/**
 * map_pages() of one 4K page at `va` to `oa`, the IOMMU core's commonest call (the
 * caller checked alignment and that 4K is a page size of a 4K-granule table;
 * `pt.scratch.attrs` holds the leaf's bits). Like the kernel's
 * __map_single_page(), it descends through existing tables only and writes an
 * empty level-0 item; a missing table on the way falls back to the full walk.
 * Returns 0 or a negative errno, with `pt.scratch.oa` as mapPages() leaves it.
 */
export function mapOnePage(pt: PtTable, va: number, oa: number): number {
  if (!inRange(pt, va, va + 4095) || hasFeature(pt.features, PtFeature.DMA_INCOHERENT)) {
    return mapOnePageSlow(pt, va, oa);
  }
  const fmt = pt.fmt;
  let t = pt.topWords;
  for (let level = pt.topLevel; ; level--) {
    const i = indexAt(pt, va, level);
    const type = fmt.load(t, i, level);
    if (level === 0) {
      if (type === EntryType.EMPTY) {
        fmt.installLeaf(t, i, 0, oa, 12, pt.scratch.attrs);
        return 0;
      }
      pt.scratch.oa = oa;
      return -Errno.EADDRINUSE;
    }
    // A table missing on the way: the full walk.
    if (type !== EntryType.TABLE) return mapPages(pt, va, 4096, oa, 12);
    t = childTable(pt, t, i);
  }
}

/**
 * mapOnePage() when the page is beyond the top (check_map_range() may grow it,
 * then the single-page walk goes on) or with DMA_INCOHERENT (the full walk).
 */
function mapOnePageSlow(pt: PtTable, va: number, oa: number): number {
  if (!inRange(pt, va, va + 4095)) {
    const s = pt.scratch;
    s.oa = oa;
    s.leafLg2 = 12;
    s.leafLevel = 0;
    const ret = checkMapRange(pt, va, va + 4095);
    if (ret) return ret;
  }
  if (!hasFeature(pt.features, PtFeature.DMA_INCOHERENT)) return mapOnePage(pt, va, oa);
  return mapPages(pt, va, 4096, oa, 12);
}

/**
 * __map_range(): levels above the leaf level: descend, allocating tables over
 * holes, over the range `pt.scratch.walkVa/walkLast` hold for `level`. `fresh`:
 * `t` was allocated by this call, so every item is still empty.
 */
function mapTableLevel(pt: PtTable, t: Uint32Array, level: number, fresh: boolean): number {
  const fmt = pt.fmt;
  const s = pt.scratch;
  const va = s.walkVa[level]!;
  const last = s.walkLast[level]!;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  let i = indexAt(pt, va, level);
  const end = indexAt(pt, last, level) + 1;
  let itemVa = itemStart(pt, va, level);
  for (; i < end; i++, itemVa += itemSize) {
    const type = fresh ? EntryType.EMPTY : fmt.load(t, i, level);
    let child: Uint32Array;
    if (type === EntryType.TABLE) {
      child = childTable(pt, t, i);
    } else if (type !== EntryType.EMPTY) {
      return -Errno.EADDRINUSE;
    } else {
      const pa = pt.allocTable();
      if (pa < 0) return -Errno.ENOMEM;
      fmt.installTable(t, i, level, pa, 0, 0);
      child = pt.mem.words(pa);
    }
    s.walkVa[level - 1] = Math.max(va, itemVa);
    s.walkLast[level - 1] = Math.min(last, itemVa + itemSize - 1);
    // A table allocated here is zeroed: nothing in it to load or to clear.
    const childFresh = type === EntryType.EMPTY;
    const ret =
      s.leafLevel === level - 1
        ? mapLeafLevel(pt, child, level - 1, childFresh)
        : mapTableLevel(pt, child, level - 1, childFresh);
    if (ret) return ret;
  }
  return 0;
}

/**
 * __map_range_leaf(): write the leaves. A contiguous leaf, or a slot that is not
 * empty, first goes through clear_contig: leaves there are EADDRINUSE, empty
 * leftover tables are unlinked and freed after a flush. In a `fresh` table (one
 * this call allocated) every slot is empty: the leaves go in as one run.
 */
function mapLeafLevel(pt: PtTable, t: Uint32Array, level: number, fresh: boolean): number {
  const fmt = pt.fmt;
  const s = pt.scratch;
  const va = s.walkVa[level]!;
  const last = s.walkLast[level]!;
  const isz = pt.itemLg2[level]!;
  const leafLg2 = s.leafLg2;
  const step = POW2[leafLg2 - isz]!;
  const leafSize = POW2[leafLg2]!;
  const needContig = leafLg2 !== isz;
  let i = indexAt(pt, va, level);
  const end = indexAt(pt, last, level) + 1;
  const attrs = s.attrs;
  let oa = s.oa;
  if (fresh) {
    const n = (end - i) / step;
    fmt.installLeafRun(t, i, n, level, oa, leafLg2, attrs);
    s.oa = oa + n * leafSize;
    return 0;
  }
  let ret = 0;
  while (i < end) {
    if (!needContig) {
      // Empty slots take leaves in one run; the kernel loads each slot too.
      const j = fmt.firstNonEmpty(t, i, end);
      if (j > i) {
        const n = j - i;
        fmt.installLeafRun(t, i, n, level, oa, leafLg2, attrs);
        oa += n * leafSize;
        i = j;
        continue;
      }
    }
    ret = clearContig(pt, t, level, i, step);
    if (ret) break;
    fmt.installLeaf(t, i, level, oa, leafLg2, attrs);
    oa += leafSize;
    i += step;
  }
  s.oa = oa;
  return ret;
}

/**
 * clear_contig(): the items a new leaf will cover must hold no leaf. Tables there
 * that map nothing are unlinked and queued, with their whole subtree, on map's
 * gather (an empty leftover table may be replaced by a larger leaf).
 */
function clearContig(
  pt: PtTable,
  t: Uint32Array,
  level: number,
  start: number,
  step: number,
): number {
  const fmt = pt.fmt;
  const gather = pt.scratch.mapGather;
  const itemSize = POW2[pt.itemLg2[level]!]!;
  for (let i = start; i < start + step; i++) {
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      // The item's IOVA: from the walk's range at this level (rarely needed).
      const walkVa = pt.scratch.walkVa[level]!;
      const va = itemStart(pt, walkVa, level) + (i - indexAt(pt, walkVa, level)) * itemSize;
      const pa = fmt.tablePa(t, i);
      const sub: number[] = [];
      if (!collectTables(pt, pt.mem.words(pa), level - 1, sub, true)) {
        return -Errno.EADDRINUSE;
      }
      // The item is cleared before the gather learns of it, as the kernel does.
      fmt.clearEntries(t, i, 0);
      sub.push(pa);
      if (
        gather.isDisjoint(va, itemSize) &&
        hasFeature(pt.features, PtFeature.FLUSH_RANGE_NO_GAPS)
      ) {
        pt.iotlbSync(gather);
      }
      gather.addRange(va, itemSize);
      for (const p of sub) gather.freelist.push(p);
    } else if (type !== EntryType.EMPTY) {
      return -Errno.EADDRINUSE;
    }
  }
  return 0;
}
