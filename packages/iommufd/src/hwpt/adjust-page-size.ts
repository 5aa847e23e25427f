import { hasFeature, PtFeature } from "@smashlab/pagetable";
import { lastOf } from "../core/check.js";
import { fail, fromPageTable } from "../errors.js";
import { PAGE_SIZE } from "../uapi.js";
import type { HwptPaging } from "./hwpt-paging.js";

/** What IOMMU_HWPT_ADJUST_PAGE_SIZE changed ({@link Iommufd.hwptAdjustPageSize}). */
export interface AdjustReport {
  /** Leaf entries replaced by smaller ones. */
  leavesSplit: number;
  /** Leaf entries made by merging smaller ones. */
  leavesMerged: number;
  /** Table pages allocated and linked. */
  tablesAllocated: number;
  /** Table pages unlinked and freed after the invalidation. */
  tablesFreed: number;
  /** IOTLB invalidations issued (0 when nothing changed). */
  invalidations: number;
}

/**
 * IOMMU_HWPT_ADJUST_PAGE_SIZE (smashlab; the "adjust the page size within
 * ranges" step of the 2026 thread, built on iommupt's planned increase/decrease
 * page size): afterwards every leaf of the HWPT in [iova, iova + length) is at
 * most `pageSize`, and runs that are uniform merge back up to it, never across
 * an area boundary. Translations never change and no walker ever sees a
 * missing entry (the pagetable's hitless split and collapse); the range is
 * invalidated once, after the change.
 *
 * EOPNOTSUPP: the domain's format lacks OA_TABLE_XCHG (the selftest mock
 * does). EINVAL: length 0, `pageSize` not one of the domain's page sizes, above the
 * HWPT's cap, above PAGE_SIZE on an IOAS with HUGE_PAGES=0, or the range not
 * aligned to the domain's smallest page. EOVERFLOW: the range wraps. ENOENT:
 * contiguous areas do not cover the range. ENOMEM: a table allocation failed,
 * and nothing changed.
 */
export function adjustPageSize(
  hwpt: HwptPaging,
  iova: number,
  length: number,
  pageSize: number,
): AdjustReport {
  const domain = hwpt.domain;
  const table = domain.table;
  if (!hasFeature(table.features, PtFeature.OA_TABLE_XCHG)) {
    fail(
      "EOPNOTSUPP",
      "hwpt_id",
      hwpt.id,
      `the ${table.format} table cannot swap a leaf and a table hitlessly`,
    );
  }
  if (length === 0) fail("EINVAL", "length", length, "must not be 0");
  const last = lastOf("iova", iova, length);
  if (
    !Number.isSafeInteger(pageSize) ||
    pageSize <= 0 ||
    Math.floor(domain.pgsizeBitmap / pageSize) % 2 !== 1
  ) {
    fail("EINVAL", "page_size", pageSize, "is not one of the domain's page sizes");
  }
  if (hwpt.maxPageSize !== 0 && pageSize > hwpt.maxPageSize) {
    fail(
      "EINVAL",
      "page_size",
      pageSize,
      `is above the HWPT's cap 0x${hwpt.maxPageSize.toString(16)}`,
    );
  }
  const iopt = hwpt.ioas.iopt;
  if (iopt.disableLargePages && pageSize > PAGE_SIZE) {
    fail("EINVAL", "page_size", pageSize, "the IOAS maps with PAGE_SIZE only (HUGE_PAGES=0)");
  }
  const min = domain.minPageSize;
  if (iova % min !== 0 || length % min !== 0) {
    fail(
      "EINVAL",
      "iova",
      iova,
      `the range must be aligned to the domain's smallest page 0x${min.toString(16)}`,
    );
  }
  const areas = iopt.contigAreas(iova, last);
  if (areas === null) fail("ENOENT", "iova", iova, "the range is not fully mapped");

  const before = domain.flushes;
  const gather = table.newGather();
  const report: AdjustReport = {
    leavesSplit: 0,
    leavesMerged: 0,
    tablesAllocated: 0,
    tablesFreed: 0,
    invalidations: 0,
  };
  try {
    // One split over the whole range is all or nothing; no leaf crosses an area.
    const s = table.splitRange(iova, length, pageSize, gather);
    report.leavesSplit += s.leavesSplit;
    report.tablesAllocated += s.tablesAllocated;
    report.tablesFreed += s.tablesFreed;
  } catch (e) {
    fromPageTable(e, "iova", iova);
  }
  // Merging frees only; per area so no leaf ever spans two areas. Nothing can
  // merge into the smallest page size, so that adjust skips the scan.
  for (const a of pageSize === min ? [] : areas) {
    if (a.revoked || !a.filled) continue;
    const from = Math.max(iova, a.iova);
    const to = Math.min(last, a.last);
    const c = table.collapseRange(from, to - from + 1, pageSize, gather);
    report.leavesMerged += c.leavesMerged;
    report.tablesFreed += c.tablesFreed;
  }
  table.iotlbSync(gather);
  report.invalidations = domain.flushes - before;
  return report;
}
