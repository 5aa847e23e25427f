import { IOMMU_DIRTY_NO_CLEAR } from "@smashlab/pagetable";
import { lastOf } from "../core/check.js";
import { fail, fromPageTable } from "../errors.js";
import type { HwptPaging } from "./hwpt-paging.js";

/**
 * iopt_set_dirty_tracking(): enabling first clears every area's dirty bits, so
 * tracking starts from a clean snapshot; then the domain tracks.
 */
export function setDirtyTracking(hwpt: HwptPaging, enable: boolean): void {
  const domain = hwpt.domain;
  if (!domain.hasDirtyOps)
    fail("EOPNOTSUPP", "hwpt_id", hwpt.id, "the domain has no dirty tracking");
  if (enable && !domain.dirtyTracking) {
    for (const a of hwpt.ioas.iopt.areas) {
      if (a.filled) domain.table.readAndClearDirty(a.iova, a.length, 0, null);
    }
  }
  domain.dirtyTracking = enable;
}

/**
 * iopt_read_and_clear_dirty_data(): bit i of `bitmap` (u64 words, little
 * endian, so byte i/8 bit i%8) stands for [iova + i * pageSize, + pageSize).
 * Checks in the kernel's order: EOVERFLOW for a wrapping range; EINVAL for a
 * range not aligned to the IOAS, a page size of 0, a range not aligned to it,
 * tracking not enabled, or a range that contiguous areas do not cover; EFAULT
 * for a bitmap too short for the range. Unless NO_CLEAR, reported bits are
 * cleared in the IOPTEs.
 */
export function readDirtyBitmap(
  hwpt: HwptPaging,
  iova: number,
  length: number,
  pageSize: number,
  flags: number,
  bitmap: Uint8Array,
): void {
  const last = lastOf("iova", iova, length);
  const iopt = hwpt.ioas.iopt;
  const align = iopt.iovaAlignment;
  if (iova % align !== 0 || (last + 1) % align !== 0) {
    fail("EINVAL", "iova", iova, `the range must be aligned to the IOAS's 0x${align.toString(16)}`);
  }
  if (pageSize === 0) fail("EINVAL", "page_size", pageSize, "must not be 0");
  if (iova % pageSize !== 0 || (last + 1) % pageSize !== 0) {
    fail("EINVAL", "page_size", pageSize, "the range must be aligned to the page size");
  }
  const domain = hwpt.domain;
  if (!domain.hasDirtyOps)
    fail("EOPNOTSUPP", "hwpt_id", hwpt.id, "the domain has no dirty tracking");
  if (!domain.dirtyTracking) fail("EINVAL", "hwpt_id", hwpt.id, "dirty tracking is not enabled");
  const areas = iopt.contigAreas(iova, last);
  if (areas === null) fail("EINVAL", "iova", iova, "the range is not fully mapped");
  const bits = length / pageSize;
  if (bitmap.length < Math.ceil(bits / 64) * 8) {
    fail(
      "EFAULT",
      "data",
      bitmap.length,
      `a bitmap for ${bits} pages needs ${Math.ceil(bits / 64) * 8} bytes`,
    );
  }
  const recorder = {
    set(at: number, len: number): void {
      const from = Math.max(at, iova);
      const to = Math.min(at + len - 1, last);
      for (
        let b = Math.floor((from - iova) / pageSize);
        b <= Math.floor((to - iova) / pageSize);
        b++
      ) {
        bitmap[b >>> 3]! |= 1 << (b & 7);
      }
    },
  };
  const clear = (flags & 1) === 0 ? 0 : IOMMU_DIRTY_NO_CLEAR;
  try {
    for (const a of areas) {
      if (!a.filled) continue;
      const from = Math.max(iova, a.iova);
      const to = Math.min(last, a.last);
      domain.table.readAndClearDirty(from, to - from + 1, clear, recorder);
    }
  } catch (e) {
    fromPageTable(e, "iova", iova);
  }
}
