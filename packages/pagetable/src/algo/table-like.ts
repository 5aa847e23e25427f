import type { PtGeometry } from "../iter/geometry.js";
import type { TableMemory } from "../memory/table-memory.js";
import type { WalkScratch } from "./args.js";
import type { IotlbGather } from "./gather.js";

/** One write to an entry a hardware walker can see, reported by cut/split/collapse. */
export interface LiveEntryWrite {
  /** Level of the table holding the item. */
  level: number;
  /** Physical address of the table holding the item. */
  tablePa: number;
  /** First item written. */
  index: number;
  /** Items written (a contiguous run writes several). */
  items: number;
  /** IOVA of the first item written. */
  va: number;
  /** Bytes of IOVA the written items cover. */
  length: number;
  /** What the first item held before: [lo, hi]. */
  before: [number, number];
  /** What it holds after: [lo, hi]. */
  after: [number, number];
}

/** Called after every live entry write of cut/split/collapse, before the next one. */
export type LiveWriteObserver = (write: LiveEntryWrite) => void;

/**
 * What the algorithms need from a table: its geometry, its memory, its scratch
 * and the driver callbacks. `IoPageTable` implements it; the algorithms never see
 * anything else. Hardware models (an engine that builds PTE pages for the domain,
 * like AMD's TMPM) use the same contract: `allocTable()` charges a page to the
 * table so its accounting, later unmaps and frees see it as its own.
 */
export interface PtTable extends PtGeometry {
  readonly mem: TableMemory;
  /** Membership table (by log2) of the page sizes the domain allows. */
  readonly pageSizes: Uint8Array;
  /** Per level: the domain's page sizes a leaf at that level may have. */
  readonly levelSizes: readonly Uint8Array[];
  readonly scratch: WalkScratch;
  /** Physical address of the top table. */
  readonly topPa: number;
  /** Words of the top table. */
  readonly topWords: Uint32Array;
  /** Observer of live writes (cut/split/collapse), or null. */
  readonly liveWriteObserver: LiveWriteObserver | null;
  /** Allocates a zeroed table page charged to this table; -1 on failure (ENOMEM). */
  allocTable(): number;
  /** Frees a table page charged to this table. */
  freeTable(pa: number): void;
  /** Invalidates the gather's range, then frees its pages (the driver's iotlb_sync). */
  iotlbSync(gather: IotlbGather): void;
  /** Publishes a new top (driver change_top, then the pointer and level at once). */
  setTop(pa: number, level: number): void;
}
