import {
  EntryType,
  IOMMU_PROT_ALL,
  type IoPageTable,
  PageTableError,
  sizesFromBitmap,
} from "@smashlab/pagetable";
import { fromPageTable } from "../errors.js";
import type { IommuDomain } from "../hwpt/domain.js";
import { PAGE_SIZE } from "../uapi.js";
import type { IoptArea } from "./area.js";

const run = new Float64Array(2);
/** IOVA up to which the current fill has mapped (the start of the piece being mapped). */
const progress = new Float64Array(1);
/** iommu_pgsize()'s page count. */
const pgcount = new Float64Array(1);

/**
 * Maps an area's pinned pages into one domain, batch by batch of physically
 * contiguous pages (one pinned run each: never across a folio), each batch
 * with the largest page sizes iommu_map() finds; with large pages disabled,
 * page by page (batch_iommu_map_small). All or nothing: on failure what this
 * call mapped is unmapped again.
 *
 * Faster, same result: one iommu_map() per run costs a walk from the top per
 * folio (32768 of them for 64 GiB of 2M folios). Runs that are physically
 * contiguous and meet at a multiple of the domain's largest page size get the
 * very same leaves when mapped together, so they are (see {@link mapBatch}),
 * wherever that cannot change anything else either.
 */
export function fillAreaDomain(area: IoptArea, domain: IommuDomain, smallPagesOnly: boolean): void {
  const geo = smallPagesOnly ? null : batchGeometry(domain);
  if (geo === null) {
    fillByRun(area, domain, smallPagesOnly);
    return;
  }
  const pages = area.source;
  const pfns = pages.pfns;
  const end = area.startByte + area.length;
  const lastIndex = area.lastIndex;
  const maxPg = geo.maxPage;
  let b = area.startByte;
  progress[0] = area.iova;
  // The batch waiting to be mapped: IOVA, PA, bytes, and how many runs it joins.
  let batchIova = area.iova;
  let batchPa = 0;
  let batchLen = 0;
  let batchRuns = 0;
  try {
    while (b < end) {
      const index = Math.floor(b / PAGE_SIZE);
      const first = pfns.lookupExtent(index, lastIndex, run);
      if (first < 0) {
        // Map what comes before, as a run-by-run fill would have, then fail as it does.
        if (batchLen !== 0) mapBatch(area, domain, geo, batchIova, batchPa, batchLen, batchRuns);
        pages.pinnedRun(index, lastIndex, run);
      }
      const pa = first + (b - index * PAGE_SIZE);
      const extentEnd = Math.min((index + run[0]!) * PAGE_SIZE, end);
      const piece = run[1]!;
      // A unit: a whole extent when its runs meet at multiples of maxPg, else one run.
      let unitEnd: number;
      let unitRuns = 1;
      if (piece === 0) unitEnd = extentEnd;
      else if (piece % maxPg === 0) {
        unitEnd = extentEnd;
        unitRuns = Math.floor((pa + (extentEnd - b) - 1) / piece) - Math.floor(pa / piece) + 1;
      } else unitEnd = Math.min(extentEnd, b + (piece - (pa % piece)));
      const len = unitEnd - b;
      if (batchLen !== 0 && pa === batchPa + batchLen && pa % maxPg === 0) {
        batchLen += len;
        batchRuns += unitRuns;
      } else {
        if (batchLen !== 0) mapBatch(area, domain, geo, batchIova, batchPa, batchLen, batchRuns);
        batchIova = area.iova + (b - area.startByte);
        batchPa = pa;
        batchLen = len;
        batchRuns = unitRuns;
      }
      b = unitEnd;
    }
    if (batchLen !== 0) mapBatch(area, domain, geo, batchIova, batchPa, batchLen, batchRuns);
  } catch (e) {
    const mapped = progress[0]!;
    if (mapped > area.iova) domain.unmap(area.iova, mapped - area.iova);
    throw e;
  }
}

/** The run-by-run fill: one iommu_map() per pinned run, or per page. */
function fillByRun(area: IoptArea, domain: IommuDomain, smallPagesOnly: boolean): void {
  const pages = area.source;
  const end = area.startByte + area.length;
  const lastIndex = area.lastIndex;
  let b = area.startByte;
  // IOVA up to which this call has mapped.
  let mapped = area.iova;
  try {
    while (b < end) {
      const index = Math.floor(b / PAGE_SIZE);
      const pa = pages.pinnedRun(index, lastIndex, run) + (b - index * PAGE_SIZE);
      const runEnd = Math.min((index + run[0]!) * PAGE_SIZE, end);
      if (smallPagesOnly) {
        for (let p = b; p < runEnd; ) {
          const next = Math.min((Math.floor(p / PAGE_SIZE) + 1) * PAGE_SIZE, runEnd);
          domain.map(mapped, pa + (p - b), next - p, area.prot);
          mapped += next - p;
          p = next;
        }
      } else {
        domain.map(mapped, pa, runEnd - b, area.prot);
        mapped += runEnd - b;
      }
      b = runEnd;
    }
  } catch (e) {
    if (mapped > area.iova) domain.unmap(area.iova, mapped - area.iova);
    throw e;
  }
}

/** Removes an area from one domain (every leaf lies inside it, so one iommu_unmap does). */
export function unfillAreaDomain(area: IoptArea, domain: IommuDomain): void {
  const n = domain.unmap(area.iova, area.length);
  if (n !== area.length) {
    throw new Error(
      `iommufd: unmapping area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}] removed 0x${n.toString(16)} bytes`,
    );
  }
}

// ---- batches ------------------------------------------------------------------------

/** What batching needs of a domain. */
interface BatchGeometry {
  /** The largest page size: runs meeting at a multiple of it get the same leaves together. */
  maxPage: number;
  minPage: number;
  /** Per log2 size, the largest allowed page size at most that (0: none), log2. */
  atMost: Uint8Array;
  /** Per allowed log2 size, the next larger allowed one (64: none). */
  above: Uint8Array;
  /** The level of the entries whose span is a region (one above the largest leaf). */
  regionLevel: number;
  /** Bytes a region spans. */
  regionBytes: number;
}

/**
 * Formats whose levels are 512-entry tables over a 4 KiB granule, so that the
 * entries of level L span 2^(12 + 9L) bytes (locateEntry's levels).
 */
const GRID_FORMATS = new Set(["amdv1", "x86_64", "vtdss"]);
const geometries = new WeakMap<IommuDomain, BatchGeometry | null>();

function batchGeometry(domain: IommuDomain): BatchGeometry | null {
  let g = geometries.get(domain);
  if (g !== undefined) return g;
  g = null;
  const table = domain.table;
  if (GRID_FORMATS.has(table.format)) {
    const sizes = sizesFromBitmap(domain.pgsizeBitmap);
    const atMost = new Uint8Array(64);
    const above = new Uint8Array(64).fill(64);
    let best = 0;
    for (let lg2 = 1; lg2 < 64; lg2++) {
      if (sizes[lg2] === 1) {
        if (best !== 0) above[best] = lg2;
        best = lg2;
      }
      atMost[lg2] = best;
    }
    const maxLg2 = best;
    if (maxLg2 >= 12) {
      const regionLevel = Math.floor((maxLg2 - 12) / 9) + 1;
      g = {
        maxPage: 2 ** maxLg2,
        minPage: domain.minPageSize,
        atMost,
        above,
        regionLevel,
        regionBytes: 2 ** (12 + 9 * regionLevel),
      };
    }
  }
  geometries.set(domain, g);
  return g;
}

/**
 * Maps `batchRuns` consecutive runs, physically contiguous from `pa` and meeting
 * at multiples of the largest page size, at `iova`: exactly what one iommu_map()
 * per run does, table pages allocated in the same order, errors and clean-up
 * the same, but with one walk per region rather than per run where that is
 * sure to be the same:
 *
 * - leaves: iommu_map() picks at each address the largest page that the IOVA,
 *   the PA and the rest of the length allow; a page never reaches past a PA
 *   that is a multiple of the largest page size, so cutting there or not picks
 *   the same pages;
 * - a region (the span of one entry above the largest leaf) that holds no table
 *   yet gets only new tables: no leftover empty table to replace (which would
 *   flush per call), nothing in use; other regions go run by run;
 * - a region beyond the top's reach (DYNAMIC_TOP) counts as not empty: mapped
 *   run by run, the top grows at the same leaf as it would;
 * - on failure the runs before the failing one stay mapped for the caller to
 *   remove, and the failing run's own part is removed first, as iommu_map()
 *   does; the error names that run's IOVA.
 */
function mapBatch(
  area: IoptArea,
  domain: IommuDomain,
  geo: BatchGeometry,
  iova: number,
  pa: number,
  len: number,
  runs: number,
): void {
  const table = domain.table;
  const prot = area.prot;
  const end = iova + len;
  if (
    runs === 1 ||
    iova % geo.minPage !== 0 ||
    pa % geo.minPage !== 0 ||
    len % geo.minPage !== 0 ||
    (prot & ~IOMMU_PROT_ALL) !== 0 ||
    pa + len > 2 ** table.maxOaLg2 ||
    table.isDestroyed
  ) {
    mapRuns(area, domain, iova, end);
    return;
  }
  let x = iova;
  while (x < end) {
    // Up to the first run boundary at or after the end of x's region.
    const regionEnd = (Math.floor(x / geo.regionBytes) + 1) * geo.regionBytes;
    const y = regionEnd >= end ? end : runEndAt(area, regionEnd - 1);
    if (regionsAreEmpty(table, geo, x, y)) {
      mapClean(area, table, geo, x, pa + (x - iova), y - x, prot);
      x = y;
      progress[0] = x;
    } else {
      x = mapRuns(area, domain, x, y);
    }
  }
}

/** The IOVA where the pinned run holding the area's IOVA `at` ends (at most the area's end). */
function runEndAt(area: IoptArea, at: number): number {
  const b = area.startByte + (at - area.iova);
  const index = Math.floor(b / PAGE_SIZE);
  area.source.pinnedRun(index, area.lastIndex, run);
  const runEnd = Math.min((index + run[0]!) * PAGE_SIZE, area.startByte + area.length);
  return area.iova + (runEnd - area.startByte);
}

/**
 * The run-by-run fill of [from, to) (IOVAs of the area, at run boundaries):
 * one iommu_map() per pinned run, keeping {@link progress} at the run being
 * mapped. Returns `to`.
 */
function mapRuns(area: IoptArea, domain: IommuDomain, from: number, to: number): number {
  const pages = area.source;
  const lastIndex = area.lastIndex;
  let b = area.startByte + (from - area.iova);
  const end = area.startByte + (to - area.iova);
  let at = from;
  while (b < end) {
    const index = Math.floor(b / PAGE_SIZE);
    const pa = pages.pinnedRun(index, lastIndex, run) + (b - index * PAGE_SIZE);
    const runEnd = Math.min((index + run[0]!) * PAGE_SIZE, end);
    progress[0] = at;
    domain.map(at, pa, runEnd - b, area.prot);
    at += runEnd - b;
    progress[0] = at;
    b = runEnd;
  }
  return at;
}

/**
 * iommu_map() of [iova, iova + len) in an empty region, segmented with
 * iommu_pgsize() into map_pages() calls. On failure, undoes and reports it as
 * the run-by-run fill would have: see {@link mapBatch}.
 */
function mapClean(
  area: IoptArea,
  table: IoPageTable,
  geo: BatchGeometry,
  iova: number,
  pa: number,
  len: number,
  prot: number,
): void {
  let done = 0;
  try {
    while (done < len) {
      const lg2 = iommuPgsize(geo, iova + done, pa + done, len - done);
      const bytes = 2 ** lg2 * pgcount[0]!;
      table.map(iova + done, pa + done, bytes, prot);
      done += bytes;
    }
  } catch (e) {
    if (e instanceof PageTableError) done += e.mapped;
    const failedAt = iova + done;
    // The run that failed: where it starts, and how much of it was mapped.
    const index = Math.floor((area.startByte + (failedAt - area.iova)) / PAGE_SIZE);
    const runStart = Math.max(
      area.iova,
      area.iova + (area.source.pfns.runFirst(index) * PAGE_SIZE - area.startByte),
    );
    if (failedAt > runStart) table.unmapRange(runStart, failedAt - runStart);
    progress[0] = runStart;
    fromPageTable(e, "iova", runStart);
  }
}

/** True when every region [from, to) touches is empty (see {@link regionIsEmpty}). */
function regionsAreEmpty(
  table: IoPageTable,
  geo: BatchGeometry,
  from: number,
  to: number,
): boolean {
  for (let r = from; r < to; r = (Math.floor(r / geo.regionBytes) + 1) * geo.regionBytes) {
    if (!regionIsEmpty(table, geo, r)) return false;
  }
  return true;
}

/** True when the region of `iova` holds no table and no leaf: what is mapped there is all new. */
function regionIsEmpty(table: IoPageTable, geo: BatchGeometry, iova: number): boolean {
  const top = table.topLevel;
  if (geo.regionLevel > top) return false;
  for (let level = geo.regionLevel; level <= top; level++) {
    const e = table.locateEntry(iova, level);
    // The first entry the walk reaches on the way down, at or above the region's.
    if (e !== null) return e.type === EntryType.EMPTY;
  }
  // Beyond the top's reach: the top must grow first, which a run-by-run map does where it would.
  return false;
}

/**
 * iommu_pgsize() (drivers/iommu/iommu.c), as the pagetable's iommu_map() runs
 * it: the largest allowed page size that fits the remaining size and the
 * alignment of iova | paddr, and the count up to the next larger allowed size's
 * boundary when iova and paddr are mutually aligned for it and one such page
 * fits after it, else over all that remains. Returns the log2 size; the count
 * is in `pgcount[0]`.
 */
function iommuPgsize(geo: BatchGeometry, iova: number, paddr: number, size: number): number {
  const idx = geo.atMost[Math.min(floorLog2(size), ctz(iova), ctz(paddr), 63)]!;
  if (idx === 0) {
    pgcount[0] = 0;
    return 0;
  }
  const next = geo.above[idx]!;
  let span = size;
  if (next < 64) {
    const pgsizeNext = 2 ** next;
    const iovaOff = iova % pgsizeNext;
    if (iovaOff === paddr % pgsizeNext) {
      const offset = pgsizeNext - iovaOff;
      if (offset + pgsizeNext <= size) span = offset;
    }
  }
  pgcount[0] = Math.floor(span / 2 ** idx);
  return idx;
}

/** Trailing zero bits of a non-negative integer (64 for 0). */
function ctz(x: number): number {
  if (x === 0) return 64;
  const lo = x % 0x100000000;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(x / 0x100000000);
  return 32 + (31 - Math.clz32(hi & -hi));
}

/** floor(log2(x)) for x >= 1. */
function floorLog2(x: number): number {
  if (x < 0x100000000) return 31 - Math.clz32(x);
  return 32 + (31 - Math.clz32(Math.floor(x / 0x100000000)));
}
