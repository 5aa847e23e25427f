import { childTable } from "../algo/child-table.js";
import type { PtTable } from "../algo/table-like.js";
import { EntryType } from "../format/format.js";

/**
 * A 64-bit fingerprint (16 hex digits) of the table's shape and leaves. Table
 * pointers are hashed as "a table is here", not by address, so two tables built
 * in a different order with the same contents hash the same; leaves are hashed
 * with their raw bits (OA, size encoding, permissions, dirty). Cheap enough for an
 * explorer to hash states with.
 */
export function fingerprint(pt: PtTable): string {
  const h = new Uint32Array([0x811c9dc5, 0x01000193 ^ 0x9e3779b9]);
  mix(h, pt.topLevel);
  hashTable(pt, pt.topWords, pt.topLevel, h);
  return (h[0]! >>> 0).toString(16).padStart(8, "0") + (h[1]! >>> 0).toString(16).padStart(8, "0");
}

function hashTable(pt: PtTable, t: Uint32Array, level: number, h: Uint32Array): void {
  const n = 1 << pt.fmt.numItemsLg2(level);
  for (let i = 0; i < n; i++) {
    const type = pt.fmt.load(t, i, level);
    if (type === EntryType.EMPTY) continue;
    mix(h, (level << 16) | i);
    if (type === EntryType.TABLE) {
      mix(h, 0x7ab1e);
      hashTable(pt, childTable(pt, t, i), level - 1, h);
    } else {
      mix(h, t[2 * i]!);
      mix(h, t[2 * i + 1]!);
    }
  }
}

function mix(h: Uint32Array, v: number): void {
  // Two independent FNV-1a style lanes over the 32-bit word.
  h[0] = Math.imul(h[0]! ^ v, 0x01000193);
  h[1] = Math.imul(h[1]! ^ (v + 0x9e3779b9), 0x5bd1e995) ^ (h[1]! >>> 15);
}
