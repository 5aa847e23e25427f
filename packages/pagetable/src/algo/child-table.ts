import type { PtTable } from "./table-like.js";

/**
 * The words of the table the TABLE item `i` of `t` points at: the format decodes
 * the pointer's frame number as two small integers and the allocator resolves
 * them. A table address exceeds 2^31, so decoding it to a physical address on a
 * walk would make a heap number at every call that is not inlined; walks that need
 * the address itself (to free the table, or to report it) still use `tablePa`.
 */
export function childTable(pt: PtTable, t: Uint32Array, i: number): Uint32Array {
  const fmt = pt.fmt;
  return pt.mem.wordsOfFrameParts(fmt.tableFrameLo(t, i), fmt.tableFrameHi(t, i));
}
