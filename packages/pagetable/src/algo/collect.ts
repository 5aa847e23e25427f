import { EntryType } from "../format/format.js";
import type { PtTable } from "./table-like.js";

/**
 * __collect_tables(): append every table page below the table at `level` to
 * `out`. With `checkMapped`, stop and return false as soon as a leaf is found
 * (used before a large leaf replaces an empty leftover table).
 */
export function collectTables(
  pt: PtTable,
  t: Uint32Array,
  level: number,
  out: number[],
  checkMapped: boolean,
): boolean {
  if (level === 0) {
    if (!checkMapped) return true;
    for (let i = 0; i < 512; i++) {
      if (pt.fmt.load(t, i, 0) !== EntryType.EMPTY) return false;
    }
    return true;
  }
  const n = 1 << pt.fmt.numItemsLg2(level);
  for (let i = 0; i < n; i++) {
    const type = pt.fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      const pa = pt.fmt.tablePa(t, i);
      out.push(pa);
      if (!collectTables(pt, pt.mem.words(pa), level - 1, out, checkMapped)) return false;
    } else if (type === EntryType.OA && checkMapped) {
      return false;
    }
  }
  return true;
}
