import { Errno } from "../errors.js";
import { hasFeature, PtFeature } from "../features.js";
import { EntryType } from "../format/format.js";
import { computeBestPgsize } from "../iter/best-pgsize.js";
import { checkRange, indexAt, rangeMaxVaLg2 } from "../iter/geometry.js";
import { lg2AlignDown } from "../log2.js";
import { collectTables } from "./collect.js";
import type { PtTable } from "./table-like.js";
import { increaseTop } from "./top.js";

/**
 * map_pages() over [va, last]: install leaves of one size (the best page size of
 * the whole range, or 4K on the single-page fast path) from `oa` on. Returns 0 or
 * a negative errno; `pt.scratch.oa` ends at the first byte not mapped, so the
 * caller knows how much was installed (the kernel's *mapped).
 *
 * Like the kernel, a failure leaves the installed prefix in place.
 */
export function mapPages(
  pt: PtTable,
  va: number,
  last: number,
  oa: number,
  singlePage: boolean,
): number {
  const s = pt.scratch;
  s.oa = oa;
  if (singlePage) {
    s.leafLg2 = 12;
    s.leafLevel = 0;
  } else {
    s.leafLg2 = computeBestPgsize(pt.pageSizes, va, last, oa);
    if (s.leafLg2 === 0) return -Errno.ENXIO;
    s.leafLevel = Math.floor((s.leafLg2 - pt.fmt.granuleLg2) / 9);
  }

  let ret = checkMapRange(pt, va, last);
  if (ret) return ret;

  if (singlePage && !hasFeature(pt.features, PtFeature.DMA_INCOHERENT)) {
    ret = mapSinglePage(pt, va);
    if (ret !== -Errno.EAGAIN) return ret;
  }

  const top = pt.topLevel;
  const maxVa = rangeMaxVaLg2(pt, top);
  ret =
    s.leafLevel === top
      ? mapLeafLevel(pt, pt.topWords, top, va, last, top, maxVa)
      : mapTableLevel(pt, pt.topWords, top, va, last, top, maxVa);

  // Tables were replaced by large leaves: flush walk caches before freeing them.
  if (s.mapGather.freelist.length !== 0) pt.iotlbSync(s.mapGather);
  else s.mapGather.reset();
  return ret;
}

/** check_map_range(): the range must fit the top; with DYNAMIC_TOP, grow until it does. */
function checkMapRange(pt: PtTable, va: number, last: number): number {
  for (;;) {
    const fits = checkRange(pt, va, last, rangeMaxVaLg2(pt, pt.topLevel));
    if (!hasFeature(pt.features, PtFeature.DYNAMIC_TOP)) return fits ? 0 : -Errno.ERANGE;
    if (fits && pt.scratch.leafLevel <= pt.topLevel) return 0;
    const ret = increaseTop(pt, va, last);
    if (ret && ret !== -Errno.EAGAIN) return ret;
  }
}

/**
 * __map_single_page(): descend through existing tables only; the level-0 item
 * must be empty. Anything else falls back to the full walk (-EAGAIN).
 */
function mapSinglePage(pt: PtTable, va: number): number {
  const fmt = pt.fmt;
  const top = pt.topLevel;
  const maxVa = rangeMaxVaLg2(pt, top);
  let t = pt.topWords;
  for (let level = top; ; level--) {
    const i = indexAt(pt, va, level, top, maxVa);
    const type = fmt.load(t, i, level);
    if (level === 0) {
      if (type !== EntryType.EMPTY) return -Errno.EADDRINUSE;
      fmt.installLeaf(t, i, 0, pt.scratch.oa, 12, pt.scratch.attrs);
      pt.scratch.oa += 4096;
      return 0;
    }
    if (type !== EntryType.TABLE) return -Errno.EAGAIN;
    t = pt.mem.words(fmt.tablePa(t, i));
  }
}

/** __map_range(): levels above the leaf level: descend, allocating tables over holes. */
function mapTableLevel(
  pt: PtTable,
  t: Uint32Array,
  level: number,
  va: number,
  last: number,
  top: number,
  maxVa: number,
): number {
  const fmt = pt.fmt;
  const isz = pt.itemLg2[level]!;
  const itemSize = 2 ** isz;
  let i = indexAt(pt, va, level, top, maxVa);
  const end = indexAt(pt, last, level, top, maxVa) + 1;
  let itemVa = lg2AlignDown(va, isz);
  for (; i < end; i++, itemVa += itemSize) {
    const type = fmt.load(t, i, level);
    let child: Uint32Array;
    if (type === EntryType.TABLE) {
      child = pt.mem.words(fmt.tablePa(t, i));
    } else if (type !== EntryType.EMPTY) {
      return -Errno.EADDRINUSE;
    } else {
      const pa = pt.allocTable();
      if (pa < 0) return -Errno.ENOMEM;
      fmt.installTable(t, i, level, pa, 0, 0);
      child = pt.mem.words(pa);
    }
    const childVa = Math.max(va, itemVa);
    const itemLast = itemVa + itemSize - 1;
    const childLast = Math.min(last, itemLast);
    const ret =
      pt.scratch.leafLevel === level - 1
        ? mapLeafLevel(pt, child, level - 1, childVa, childLast, top, maxVa)
        : mapTableLevel(pt, child, level - 1, childVa, childLast, top, maxVa);
    if (ret) return ret;
  }
  return 0;
}

/**
 * __map_range_leaf(): write the leaves. A contiguous leaf, or a slot that is not
 * empty, first goes through clear_contig: leaves there are EADDRINUSE, empty
 * leftover tables are unlinked and freed after a flush.
 */
function mapLeafLevel(
  pt: PtTable,
  t: Uint32Array,
  level: number,
  va: number,
  last: number,
  top: number,
  maxVa: number,
): number {
  const fmt = pt.fmt;
  const s = pt.scratch;
  const isz = pt.itemLg2[level]!;
  const leafLg2 = s.leafLg2;
  const step = 2 ** (leafLg2 - isz);
  const leafSize = 2 ** leafLg2;
  const needContig = leafLg2 !== isz;
  let i = indexAt(pt, va, level, top, maxVa);
  const end = indexAt(pt, last, level, top, maxVa) + 1;
  let itemVa = lg2AlignDown(va, isz);
  const attrs = s.attrs;
  let oa = s.oa;
  let ret = 0;
  do {
    if (needContig || fmt.load(t, i, level) !== EntryType.EMPTY) {
      ret = clearContig(pt, t, level, i, step, itemVa);
      if (ret) break;
    }
    fmt.installLeaf(t, i, level, oa, leafLg2, attrs);
    oa += leafSize;
    i += step;
    itemVa += leafSize;
  } while (i < end);
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
  va: number,
): number {
  const fmt = pt.fmt;
  const gather = pt.scratch.mapGather;
  const itemSize = 2 ** pt.itemLg2[level]!;
  for (let i = start; i < start + step; i++, va += itemSize) {
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
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
