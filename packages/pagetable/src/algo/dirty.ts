import { Errno } from "../errors.js";
import { EntryType } from "../format/format.js";
import { indexAt, itemStart } from "../iter/geometry.js";
import { POW2 } from "../log2.js";
import { IOMMU_DIRTY_NO_CLEAR } from "../prot.js";
import { childTable } from "./child-table.js";
import type { IotlbGather } from "./gather.js";
import type { PtTable } from "./table-like.js";

/** Receives dirty IOVA ranges: the model of iova_bitmap_set(). */
export interface DirtyRecorder {
  /** Marks [iova, iova+length) dirty. */
  set(iova: number, length: number): void;
}

/**
 * read_and_clear_dirty() over [va, last]: report every dirty leaf, and unless
 * IOMMU_DIRTY_NO_CLEAR, make it clean and add its range to `gather`.
 *
 * The recorded length follows the kernel's record_dirty() arithmetic exactly
 * (iommu_pt.h@c17ee635): for a contiguous run it is (last index of the run,
 * clamped to the walk's end index, minus the current index) items, which is one
 * item short of the run when the run lies inside the range. See the README.
 */
export function readAndClearDirty(
  pt: PtTable,
  va: number,
  last: number,
  flags: number,
  recorder: DirtyRecorder | null,
  gather: IotlbGather,
): void {
  dirtyLevel(pt, pt.topWords, pt.topLevel, va, last, flags, recorder, gather);
}

function dirtyLevel(
  pt: PtTable,
  t: Uint32Array,
  level: number,
  va: number,
  last: number,
  flags: number,
  recorder: DirtyRecorder | null,
  gather: IotlbGather,
): void {
  const fmt = pt.fmt;
  const isz = pt.itemLg2[level]!;
  const itemSize = POW2[isz]!;
  const first = indexAt(pt, va, level);
  const end = indexAt(pt, last, level) + 1;
  const base = itemStart(pt, va, level) - first * itemSize;
  let i = first;
  while (i < end) {
    const itemVa = base + i * itemSize;
    // The kernel's range.va: the walk's start for the first item, then item starts.
    const cur = i === first ? va : itemVa;
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      const itemLast = itemVa + itemSize - 1;
      dirtyLevel(
        pt,
        childTable(pt, t, i),
        level - 1,
        cur,
        Math.min(last, itemLast),
        flags,
        recorder,
        gather,
      );
      i++;
    } else if (type === EntryType.OA) {
      const c = fmt.numContigLg2(t, i, level);
      if (fmt.isWriteDirty(t, i, level)) {
        let len = itemSize;
        if (c !== 0) {
          const runLast = i | ((1 << c) - 1);
          len = (Math.min(runLast, end) - i) * itemSize;
        }
        recorder?.set(cur, len);
        if (!(flags & IOMMU_DIRTY_NO_CLEAR)) {
          fmt.makeWriteClean(t, i, level);
          gather.addRange(cur, len);
        }
      }
      // pt_next_entry(): on to the next run boundary.
      i = (i + (1 << c)) & ~((1 << c) - 1);
    } else {
      i++;
    }
  }
}

/**
 * The iommufd selftest's set_dirty(): set the dirty bit of the leaf item mapping
 * `va` (a cmpxchg against the value just read). ENOENT when nothing maps it.
 */
export function setDirty(pt: PtTable, va: number): number {
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
    if (type === EntryType.EMPTY) return -Errno.ENOENT;
    return fmt.makeWriteDirty(t, i, t[2 * i]!, t[2 * i + 1]!) ? 0 : -Errno.EAGAIN;
  }
  return -Errno.ENOENT;
}
