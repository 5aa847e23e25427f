import { Errno } from "../errors.js";
import { checkRange, rangeMaxVaLg2 } from "../iter/geometry.js";
import type { PtTable } from "./table-like.js";

/**
 * increase_top() (DYNAMIC_TOP): add levels above the top until [va, last] fits and
 * the leaf level is below the top. Each new top holds the old one at index 0, so
 * the old VA space becomes the bottom slice. No flush is needed: everything the
 * new levels add is non-present.
 */
export function increaseTop(pt: PtTable, va: number, last: number): number {
  const fmt = pt.fmt;
  const built: number[] = [];
  let level = pt.topLevel;
  let topPa = pt.topPa;
  for (;;) {
    if (checkRange(pt, va, last, rangeMaxVaLg2(pt, level)) && pt.scratch.leafLevel <= level) break;
    level++;
    if (level > fmt.maxTopLevel || pt.itemLg2[level]! >= pt.maxVaLg2) {
      for (const pa of built) pt.freeTable(pa);
      return -Errno.ERANGE;
    }
    const pa = pt.allocTable();
    if (pa < 0) {
      for (const p of built) pt.freeTable(p);
      return -Errno.ENOMEM;
    }
    built.push(pa);
    fmt.installTable(pt.mem.words(pa), 0, level, topPa, 0, 0);
    topPa = pa;
  }
  // Nothing grew: another thread got there first in the kernel; retry the check.
  if (level === pt.topLevel) return -Errno.EAGAIN;
  pt.setTop(topPa, level);
  return 0;
}
