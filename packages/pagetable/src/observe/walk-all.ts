import type { PtTable } from "../algo/table-like.js";
import { EntryType } from "../format/format.js";
import { indexAt, itemStart } from "../iter/geometry.js";
import { POW2 } from "../log2.js";

/** Visitor of {@link visitRange}: a table item (entered before its children) or a leaf entry. */
export interface RangeVisitor {
  table?(level: number, index: number, tablePa: number): void;
  leaf(va: number, level: number, t: Uint32Array, index: number, sizeLg2: number): void;
}

/** Visits, in IOVA order, every table and every leaf entry meeting [va, last]. */
export function visitRange(pt: PtTable, va: number, last: number, v: RangeVisitor): void {
  visitLevel(pt, pt.topWords, pt.topLevel, va, last, v);
}

function visitLevel(
  pt: PtTable,
  t: Uint32Array,
  level: number,
  va: number,
  last: number,
  v: RangeVisitor,
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
    const type = fmt.load(t, i, level);
    if (type === EntryType.TABLE) {
      const pa = fmt.tablePa(t, i);
      v.table?.(level, i, pa);
      const itemLast = itemVa + itemSize - 1;
      visitLevel(
        pt,
        pt.mem.words(pa),
        level - 1,
        Math.max(va, itemVa),
        Math.min(last, itemLast),
        v,
      );
      i++;
    } else if (type === EntryType.OA) {
      const c = fmt.numContigLg2(t, i, level);
      const start = i & ~((1 << c) - 1);
      v.leaf(base + start * itemSize, level, t, start, isz + c);
      i = start + (1 << c);
    } else {
      i++;
    }
  }
}
