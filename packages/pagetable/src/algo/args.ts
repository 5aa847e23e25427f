import { IotlbGather } from "./gather.js";

/**
 * Per-table scratch for the walkers, allocated once with the table so that map,
 * unmap and translate allocate nothing (the kernel keeps the same on its stack).
 */
export class WalkScratch {
  /** Descriptor bits of the leaves being written. */
  readonly attrs = new Uint32Array(2);
  /** A second attribute buffer (comparisons, collapse). */
  readonly attrs2 = new Uint32Array(2);
  /** map: next output address to install. */
  oa = 0;
  /** map: log2 size of every leaf this call writes. */
  leafLg2 = 0;
  /** map: level the leaves go at. */
  leafLevel = 0;
  /** unmap: bytes cleared so far. */
  unmapped = 0;
  /**
   * map and unmap walks: per level, the first and last IOVA of the range the
   * walk covers at that level (the kernel's struct pt_range, one per level).
   * IOVAs exceed 2^31, and a double passed to a call that is not inlined becomes
   * a heap number; written here, it stays an unboxed float.
   */
  readonly walkVa = new Float64Array(8);
  readonly walkLast = new Float64Array(8);
  /** map's private gather: tables replaced by large leaves are freed after a flush. */
  readonly mapGather = new IotlbGather();
  /** unmap's free list, spliced into the caller's gather. */
  readonly freeList: number[] = [];
  /** clear_contig: set when a table with a leaf under it was found. */
  sawLeaf = false;
}
