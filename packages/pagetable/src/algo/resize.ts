import { Errno } from "../errors.js";
import { hasFeature, PtFeature } from "../features.js";
import { EntryType } from "../format/format.js";
import { indexAt, itemStart } from "../iter/geometry.js";
import { ctzNumber, floorLog2, lg2AlignDown, lg2Mod, POW2 } from "../log2.js";
import type { IotlbGather } from "./gather.js";
import type { LiveEntryWrite, PtTable } from "./table-like.js";

/**
 * Hitless page-size changes beyond upstream iommupt: the RFC's cut_mapping and
 * the planned "increase / decrease page size".
 *
 * Every change keeps each translation identical at every instant:
 * - a single-item leaf becomes a privately built, fully populated lower table
 *   installed with one entry write (needs OA_TABLE_XCHG), or the reverse;
 * - a contiguous run is rewritten in place with other sizes (needs OA_SIZE_CHANGE);
 *   every item always describes a correct translation of its own addresses.
 *
 * Changes are planned first and applied after: a refusal or an allocation failure
 * changes nothing.
 */

/** What cut, splitRange and collapseRange did. */
export interface ResizeReport {
  /** Leaf entries (whole runs) replaced by smaller ones. */
  leavesSplit: number;
  /** Leaf entries produced by merging smaller ones. */
  leavesMerged: number;
  /** Table pages allocated (and linked) by the change. */
  tablesAllocated: number;
  /** Table pages unlinked and queued on the gather (freed when it is synced). */
  tablesFreed: number;
  /** Every write to an entry a walker could see, in order. */
  writes: LiveEntryWrite[];
}

/** A new empty report. */
export function newReport(): ResizeReport {
  return { leavesSplit: 0, leavesMerged: 0, tablesAllocated: 0, tablesFreed: 0, writes: [] };
}

/**
 * Where leaves may be large. Inside [capStart, capEnd) no leaf exceeds 2^capLg2;
 * capStart and capEnd are also boundaries no new leaf crosses.
 */
interface SizeRule {
  capStart: number;
  capEnd: number;
  capLg2: number;
}

/** One planned write to a live item. */
interface PlannedWrite {
  t: Uint32Array;
  tablePa: number;
  i: number;
  level: number;
  va: number;
  /** Leaf: its OA and log2 size. Table: tablePa of the private subtree in `oa`, lg2 = -1. */
  oa: number;
  lg2: number;
  attrLo: number;
  attrHi: number;
  dirty: boolean;
}

class Plan {
  readonly writes: PlannedWrite[] = [];
  /** Every table page built privately (freed if the plan is abandoned). */
  readonly built: number[] = [];
  /** Leaf entries being replaced. */
  replaced = 0;
  /** Span to invalidate once applied. */
  spanStart = Number.POSITIVE_INFINITY;
  spanEnd = Number.NEGATIVE_INFINITY;

  abandon(pt: PtTable): void {
    for (const pa of this.built) pt.freeTable(pa);
  }
}

/** The largest leaf size at `level` for [va, end) from `oa` under `rule`; 0 if none. */
function bestLeafAt(
  pt: PtTable,
  level: number,
  va: number,
  end: number,
  oa: number,
  rule: SizeRule,
): number {
  let segEnd = end;
  let cap = 63;
  if (va < rule.capStart) {
    if (rule.capStart < segEnd) segEnd = rule.capStart;
  } else if (va < rule.capEnd) {
    cap = rule.capLg2;
    if (rule.capEnd < segEnd) segEnd = rule.capEnd;
  }
  const len = segEnd - va;
  if (len <= 0) return 0;
  let limit = Math.min(ctzNumber(Math.abs(va)), ctzNumber(oa), floorLog2(len), cap);
  if (limit > 63) limit = 63;
  const sizes = pt.levelSizes[level]!;
  for (let lg2 = limit; lg2 > 0; lg2--) if (sizes[lg2] === 1) return lg2;
  return 0;
}

/**
 * __build_tree(): a private table at `level` mapping [va, va + table span) from
 * `oa`, with leaves as large as `rule` allows. Returns its PA, or -1 on ENOMEM
 * (pages built so far are on plan.built either way).
 */
function buildTable(
  pt: PtTable,
  level: number,
  va: number,
  oa: number,
  attrs: Uint32Array,
  dirty: boolean,
  rule: SizeRule,
  plan: Plan,
): number {
  const fmt = pt.fmt;
  const pa = pt.allocTable();
  if (pa < 0) return -1;
  plan.built.push(pa);
  const t = pt.mem.words(pa);
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  const end = va + itemSize * (1 << fmt.numItemsLg2(level));
  let i = 0;
  while (va < end) {
    const lg2 = bestLeafAt(pt, level, va, end, oa, rule);
    if (lg2 === isz && rule.capLg2 === isz && va >= rule.capStart && va < rule.capEnd) {
      // Inside the capped span every leaf has the item size (IOVA and OA stay
      // aligned to it): write the whole stretch as one run, as a map does.
      const n = Math.floor((Math.min(end, rule.capEnd) - va) / itemSize);
      fmt.installLeafRun(t, i, n, level, oa, lg2, attrs);
      if (dirty) for (let j = i; j < i + n; j++) fmt.makeWriteDirty(t, j, t[2 * j]!, t[2 * j + 1]!);
      i += n;
      va += n * itemSize;
      oa += n * itemSize;
      continue;
    }
    if (lg2 >= isz) {
      fmt.installLeaf(t, i, level, oa, lg2, attrs);
      if (dirty) fmt.makeWriteDirty(t, i, t[2 * i]!, t[2 * i + 1]!);
      const n = POW2[lg2 - isz]!;
      i += n;
      va += n * itemSize;
      oa += n * itemSize;
      continue;
    }
    if (level === 0) return -1;
    const child = buildTable(pt, level - 1, va, oa, attrs, dirty, rule, plan);
    if (child < 0) return -1;
    fmt.installTable(t, i, level, child, 0, 0);
    i++;
    va += itemSize;
    oa += itemSize;
  }
  return pa;
}

/**
 * Plans the replacement of the leaf entry (a single item or a whole contiguous
 * run starting at `runStart`) by leaves obeying `rule`, building private tables
 * where an item must become one. Returns 0 or a negative errno.
 */
function planRebuild(
  pt: PtTable,
  t: Uint32Array,
  tablePa: number,
  level: number,
  runStart: number,
  runVa: number,
  rule: SizeRule,
  plan: Plan,
): number {
  const fmt = pt.fmt;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  const c = fmt.numContigLg2(t, runStart, level);
  if (c !== 0 && !hasFeature(pt.features, PtFeature.OA_SIZE_CHANGE)) return -Errno.EOPNOTSUPP;
  const attrs = pt.scratch.attrs2;
  fmt.attrFromEntry(t, runStart, attrs);
  const dirty = fmt.isWriteDirty(t, runStart, level);
  const runEnd = runVa + itemSize * (1 << c);
  let oa = fmt.entryOa(t, runStart, level);
  let va = runVa;
  let i = runStart;
  while (va < runEnd) {
    const lg2 = bestLeafAt(pt, level, va, runEnd, oa, rule);
    const w: PlannedWrite = {
      t,
      tablePa,
      i,
      level,
      va,
      oa,
      lg2,
      attrLo: attrs[0]!,
      attrHi: attrs[1]!,
      dirty,
    };
    if (lg2 >= isz) {
      const n = POW2[lg2 - isz]!;
      plan.writes.push(w);
      i += n;
      va += n * itemSize;
      oa += n * itemSize;
      continue;
    }
    if (level === 0) return -Errno.ENXIO;
    if (!hasFeature(pt.features, PtFeature.OA_TABLE_XCHG)) return -Errno.EOPNOTSUPP;
    const sub = buildTable(pt, level - 1, va, oa, attrs, dirty, rule, plan);
    if (sub < 0) return -Errno.ENOMEM;
    w.oa = sub;
    w.lg2 = -1;
    plan.writes.push(w);
    i++;
    va += itemSize;
    oa += itemSize;
  }
  plan.replaced++;
  if (runVa < plan.spanStart) plan.spanStart = runVa;
  if (runEnd > plan.spanEnd) plan.spanEnd = runEnd;
  return 0;
}

/** Applies a plan: one live write per planned item, observed one by one. */
function applyPlan(pt: PtTable, plan: Plan, gather: IotlbGather, report: ResizeReport): void {
  const fmt = pt.fmt;
  const attrs = pt.scratch.attrs2;
  for (const w of plan.writes) {
    const t = w.t;
    const before: [number, number] = [t[2 * w.i]!, t[2 * w.i + 1]!];
    let items = 1;
    if (w.lg2 < 0) {
      // Cannot fail: the item is exactly what was planned against.
      fmt.installTable(t, w.i, w.level, w.oa, before[0], before[1]);
    } else {
      attrs[0] = w.attrLo;
      attrs[1] = w.attrHi;
      fmt.installLeaf(t, w.i, w.level, w.oa, w.lg2, attrs);
      if (w.dirty) fmt.makeWriteDirty(t, w.i, t[2 * w.i]!, t[2 * w.i + 1]!);
      items = POW2[w.lg2 - pt.itemLg2[w.level]!]!;
    }
    recordWrite(pt, report, w.level, w.tablePa, w.i, items, w.va, before, t);
  }
  report.tablesAllocated += plan.built.length;
  report.leavesSplit += plan.replaced;
  if (plan.spanStart < plan.spanEnd) gather.addRange(plan.spanStart, plan.spanEnd - plan.spanStart);
}

function recordWrite(
  pt: PtTable,
  report: ResizeReport,
  level: number,
  tablePa: number,
  index: number,
  items: number,
  va: number,
  before: [number, number],
  t: Uint32Array,
): void {
  const write: LiveEntryWrite = {
    level,
    tablePa,
    index,
    items,
    va,
    length: items * POW2[pt.itemLg2[level]!]!,
    before,
    after: [t[2 * index]!, t[2 * index + 1]!],
  };
  report.writes.push(write);
  pt.liveWriteObserver?.(write);
}

/**
 * cut(va): afterwards no leaf crosses `va`; the pieces on either side keep the
 * largest sizes their alignment allows. 0 when `va` already is a boundary;
 * -ENOENT when nothing is mapped at `va`.
 */
export function cutAt(pt: PtTable, va: number, gather: IotlbGather, report: ResizeReport): number {
  const fmt = pt.fmt;
  const top = pt.topLevel;
  let t = pt.topWords;
  let tablePa = pt.topPa;
  for (let level = top; level >= 0; level--) {
    const i = indexAt(pt, va, level);
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      tablePa = fmt.tablePa(t, i);
      t = pt.mem.words(tablePa);
      continue;
    }
    if (type === EntryType.EMPTY) return -Errno.ENOENT;
    const isz = pt.itemLg2[level]!;
    const c = fmt.numContigLg2(t, i, level);
    if (lg2Mod(va, isz + c) === 0) return 0;
    const runStart = i & ~((1 << c) - 1);
    const runVa = lg2AlignDown(va, isz + c);
    const plan = new Plan();
    const ret = planRebuild(
      pt,
      t,
      tablePa,
      level,
      runStart,
      runVa,
      { capStart: va, capEnd: va, capLg2: 63 },
      plan,
    );
    if (ret) {
      plan.abandon(pt);
      return ret;
    }
    applyPlan(pt, plan, gather, report);
    return 0;
  }
  return -Errno.ENOENT;
}

/**
 * splitRange: every leaf that meets [va, last] and is larger than 2^capLg2 is
 * rebuilt so that no leaf inside the range exceeds the cap and none crosses its
 * ends; outside the range pieces keep their largest sizes. Holes are skipped.
 */
export function splitRange(
  pt: PtTable,
  va: number,
  last: number,
  capLg2: number,
  gather: IotlbGather,
  report: ResizeReport,
): number {
  const plan = new Plan();
  const rule: SizeRule = { capStart: va, capEnd: last + 1, capLg2 };
  const ret = planSplitLevel(pt, pt.topWords, pt.topPa, pt.topLevel, va, last, rule, plan);
  if (ret) {
    plan.abandon(pt);
    return ret;
  }
  applyPlan(pt, plan, gather, report);
  return 0;
}

function planSplitLevel(
  pt: PtTable,
  t: Uint32Array,
  tablePa: number,
  level: number,
  va: number,
  last: number,
  rule: SizeRule,
  plan: Plan,
): number {
  const fmt = pt.fmt;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  const first = indexAt(pt, va, level);
  const end = indexAt(pt, last, level) + 1;
  const base = itemStart(pt, va, level) - first * itemSize;
  let i = first;
  while (i < end) {
    const itemVa = base + i * itemSize;
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      const itemLast = itemVa + itemSize - 1;
      const pa = fmt.tablePa(t, i);
      const ret = planSplitLevel(
        pt,
        pt.mem.words(pa),
        pa,
        level - 1,
        Math.max(va, itemVa),
        Math.min(last, itemLast),
        rule,
        plan,
      );
      if (ret) return ret;
      i++;
    } else if (type === EntryType.OA) {
      const c = fmt.numContigLg2(t, i, level);
      const runStart = i & ~((1 << c) - 1);
      const runVa = base + runStart * itemSize;
      const runEnd = runVa + itemSize * (1 << c);
      // Too large for the cap, or reaching across an end of the range (a leaf
      // within the cap that starts before the range or ends after it).
      const crosses =
        (runVa < rule.capStart && runEnd > rule.capStart) ||
        (runVa < rule.capEnd && runEnd > rule.capEnd);
      if (isz + c > rule.capLg2 || crosses) {
        const ret = planRebuild(pt, t, tablePa, level, runStart, runVa, rule, plan);
        if (ret) return ret;
      }
      i = runStart + (1 << c);
    } else {
      i++;
    }
  }
  return 0;
}

/**
 * collapseRange: inside [va, last], a table whose items all map one contiguous,
 * aligned OA span with the same attributes becomes one leaf (OA_TABLE_XCHG; the
 * table is queued on the gather), bottom-up; with OA_SIZE_CHANGE, aligned runs of
 * equal neighbouring leaves then merge into larger contiguous entries. No leaf
 * grows beyond 2^capLg2 or the domain's page sizes. Allocates nothing.
 */
export function collapseRange(
  pt: PtTable,
  va: number,
  last: number,
  capLg2: number,
  gather: IotlbGather,
  report: ResizeReport,
): number {
  if (!hasFeature(pt.features, PtFeature.OA_TABLE_XCHG)) return -Errno.EOPNOTSUPP;
  collapseLevel(pt, pt.topWords, pt.topPa, pt.topLevel, va, last, capLg2, gather, report);
  return 0;
}

function collapseLevel(
  pt: PtTable,
  t: Uint32Array,
  tablePa: number,
  level: number,
  va: number,
  last: number,
  capLg2: number,
  gather: IotlbGather,
  report: ResizeReport,
): void {
  const fmt = pt.fmt;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  const first = indexAt(pt, va, level);
  const end = indexAt(pt, last, level) + 1;
  const base = itemStart(pt, va, level) - first * itemSize;
  for (let i = first; i < end; i++) {
    if (fmt.load(t, i, level) !== EntryType.TABLE) continue;
    const itemVa = base + i * itemSize;
    const itemLast = itemVa + itemSize - 1;
    const childPa = fmt.tablePa(t, i);
    const child = pt.mem.words(childPa);
    const collapsible =
      itemVa >= va && itemLast <= last && isz <= capLg2 && pt.levelSizes[level]![isz] === 1;
    // Bottom-up: deeper tables first. A child of leaves only is tried as one leaf
    // here before its runs are merged, so a uniform table is replaced once, not
    // rewritten into runs and then replaced.
    const deeper = level > 1 && hasTables(pt, child, level - 1);
    if (deeper)
      collapseChild(pt, child, childPa, level, va, last, itemVa, itemLast, capLg2, gather, report);
    const merged =
      collapsible && tableToLeaf(pt, t, tablePa, level, i, itemVa, childPa, gather, report);
    if (!merged && !deeper)
      collapseChild(pt, child, childPa, level, va, last, itemVa, itemLast, capLg2, gather, report);
  }
  if (hasFeature(pt.features, PtFeature.OA_SIZE_CHANGE)) {
    mergeRuns(pt, t, tablePa, level, first, end, base, va, last, capLg2, gather, report);
  }
}

function collapseChild(
  pt: PtTable,
  child: Uint32Array,
  childPa: number,
  level: number,
  va: number,
  last: number,
  itemVa: number,
  itemLast: number,
  capLg2: number,
  gather: IotlbGather,
  report: ResizeReport,
): void {
  collapseLevel(
    pt,
    child,
    childPa,
    level - 1,
    Math.max(va, itemVa),
    Math.min(last, itemLast),
    capLg2,
    gather,
    report,
  );
}

/** True when the table at `level` holds a table pointer. */
function hasTables(pt: PtTable, t: Uint32Array, level: number): boolean {
  const n = 1 << pt.fmt.numItemsLg2(level);
  for (let i = 0; i < n; i++) if (pt.fmt.load(t, i, level) === EntryType.TABLE) return true;
  return false;
}

/** Replaces a table item by one leaf when its whole subtree is a uniform leaf span; true when it did. */
function tableToLeaf(
  pt: PtTable,
  t: Uint32Array,
  tablePa: number,
  level: number,
  i: number,
  itemVa: number,
  childPa: number,
  gather: IotlbGather,
  report: ResizeReport,
): boolean {
  const fmt = pt.fmt;
  const child = pt.mem.words(childPa);
  const cl = level - 1;
  const childSize = POW2[pt.itemLg2[cl]!]!;
  const n = 1 << fmt.numItemsLg2(cl);
  if (fmt.load(child, 0, cl) !== EntryType.OA) return false;
  const baseOa = fmt.entryOa(child, 0, cl);
  if (lg2Mod(baseOa, pt.itemLg2[level]!) !== 0) return false;
  const a = pt.scratch.attrs;
  const b = pt.scratch.attrs2;
  fmt.attrFromEntry(child, 0, a);
  let dirty = false;
  for (let j = 0; j < n; ) {
    if (fmt.load(child, j, cl) !== EntryType.OA) return false;
    const c = fmt.numContigLg2(child, j, cl);
    if (fmt.entryOa(child, j, cl) !== baseOa + j * childSize) return false;
    fmt.attrFromEntry(child, j, b);
    if (a[0] !== b[0] || a[1] !== b[1]) return false;
    if (fmt.isWriteDirty(child, j, cl)) dirty = true;
    j += 1 << c;
  }
  const before: [number, number] = [t[2 * i]!, t[2 * i + 1]!];
  fmt.installLeaf(t, i, level, baseOa, pt.itemLg2[level]!, a);
  if (dirty) fmt.makeWriteDirty(t, i, t[2 * i]!, t[2 * i + 1]!);
  recordWrite(pt, report, level, tablePa, i, 1, itemVa, before, t);
  gather.addRange(itemVa, POW2[pt.itemLg2[level]!]!);
  gather.freelist.push(childPa);
  report.tablesFreed++;
  report.leavesMerged++;
  return true;
}

/** Merges aligned groups of equal, contiguous leaves into larger contiguous entries. */
function mergeRuns(
  pt: PtTable,
  t: Uint32Array,
  tablePa: number,
  level: number,
  first: number,
  end: number,
  base: number,
  va: number,
  last: number,
  capLg2: number,
  gather: IotlbGather,
  report: ResizeReport,
): void {
  const fmt = pt.fmt;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  const sizes = pt.levelSizes[level]!;
  const a = pt.scratch.attrs;
  const b = pt.scratch.attrs2;
  let i = first;
  while (i < end) {
    if (fmt.load(t, i, level) !== EntryType.OA) {
      i++;
      continue;
    }
    const c = fmt.numContigLg2(t, i, level);
    let merged = false;
    for (let lg2 = Math.min(capLg2, 63); lg2 > isz + c; lg2--) {
      if (sizes[lg2] !== 1) continue;
      const n = POW2[lg2 - isz]!;
      if (i % n !== 0 || i + n > end) continue;
      const gVa = base + i * itemSize;
      if (gVa < va || gVa + n * itemSize - 1 > last) continue;
      const oa = fmt.entryOa(t, i, level);
      if (lg2Mod(oa, lg2) !== 0) continue;
      fmt.attrFromEntry(t, i, a);
      let ok = true;
      let dirty = false;
      for (let j = i; j < i + n && ok; ) {
        if (fmt.load(t, j, level) !== EntryType.OA) {
          ok = false;
          break;
        }
        const cj = fmt.numContigLg2(t, j, level);
        const runStart = j & ~((1 << cj) - 1);
        if (runStart < i || runStart + (1 << cj) > i + n) ok = false;
        else if (fmt.entryOa(t, j, level) + (j - runStart) * itemSize !== oa + (j - i) * itemSize)
          ok = false;
        else {
          fmt.attrFromEntry(t, j, b);
          if (a[0] !== b[0] || a[1] !== b[1]) ok = false;
          if (fmt.isWriteDirty(t, j, level)) dirty = true;
        }
        j = runStart + (1 << cj);
      }
      if (!ok) continue;
      const before: [number, number] = [t[2 * i]!, t[2 * i + 1]!];
      fmt.installLeaf(t, i, level, oa, lg2, a);
      if (dirty) fmt.makeWriteDirty(t, i, t[2 * i]!, t[2 * i + 1]!);
      recordWrite(pt, report, level, tablePa, i, n, gVa, before, t);
      gather.addRange(gVa, n * itemSize);
      report.leavesMerged++;
      i += n;
      merged = true;
      break;
    }
    if (!merged) i += 1 << c;
  }
}
