/**
 * What a page-table format supplies: the bit layout of one entry and nothing else,
 * as in the kernel's generic_pt/fmt/*.h. Index and size arithmetic live in
 * ../iter, the algorithms in ../algo, written once over every format.
 *
 * A table is a `Uint32Array` of 1024 words; item `i` is the 64-bit value
 * `t[2i]` (bits 31:0) | `t[2i+1]` (bits 63:32). Attributes (the kernel's
 * pt_write_attrs.descriptor_bits) travel as a two-word `Uint32Array` so that no
 * operation allocates.
 */

/** What a load finds in an item (the kernel's enum pt_entry_type). */
export const EntryType = {
  /** Not present. */
  EMPTY: 0,
  /** Points at a lower table. */
  TABLE: 1,
  /** A leaf: translates to an output address. */
  OA: 2,
} as const;
/** A value of {@link EntryType}. */
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** Result of a format's init: what the table geometry becomes. */
export interface FormatGeometry {
  topLevel: number;
  maxVaLg2: number;
  maxOaLg2: number;
}

/** Format-specific configuration given at table creation. */
export interface FormatConfig {
  /** Requested hardware VA width (the kernel's hw_max_vasz_lg2). */
  hwMaxVaLg2: number;
  /** Requested hardware OA width (hw_max_oasz_lg2). */
  hwMaxOaLg2: number;
  /** Enabled feature mask. */
  features: number;
  /** AMD v1 only: the level the table starts at (1..5; the kernel's starting_level). */
  startingLevel?: number;
}

/** One page-table format. Implementations hold no per-table state. */
export interface PtFormat {
  /** Format name: `amdv1`, `amdv1-mock`, `x86_64` or `vtdss`. */
  readonly name: string;
  /** Size of a level-0 item (PT_GRANULE_LG2SZ). */
  readonly granuleLg2: number;
  /** Highest level the top may be at (PT_MAX_TOP_LEVEL). */
  readonly maxTopLevel: number;
  /** Widest VA the format can translate (PT_MAX_VA_ADDRESS_LG2). */
  readonly maxVaLg2: number;
  /** Widest OA an entry can hold (PT_MAX_OUTPUT_ADDRESS_LG2). */
  readonly maxOaLg2: number;
  /** Features this format is built with (PT_SUPPORTED_FEATURES). */
  readonly supportedFeatures: number;
  /** Features that must be requested (PT_FORCE_ENABLED_FEATURES). */
  readonly forcedFeatures: number;
  /** Features a driver of this format enables by default in this model. */
  readonly defaultFeatures: number;
  /** True when the format has a hardware dirty bit (read_and_clear_dirty works). */
  readonly hasDirty: boolean;

  /** log2 of the number of items in a table at `level`. */
  numItemsLg2(level: number): number;
  /** True when an item at `level` may be a leaf. */
  canHaveLeaf(level: number): boolean;
  /** The lg2 sizes a leaf at `level` may have, ascending (empty when no leaf). */
  possibleSizes(level: number): readonly number[];

  /** Classifies item `i` of a table at `level`. */
  load(t: Uint32Array, i: number, level: number): EntryType;
  /** The first item in [i, end) that is not empty, or `end` (a fast scan for bulk maps). */
  firstNonEmpty(t: Uint32Array, i: number, end: number): number;
  /**
   * Clears the leaf items of a table at `level` from `i` up to the first item that
   * is not a leaf (empty, or a table pointer) or `end`, returning where it stopped:
   * what an unmap of many leaves writes, in one call (the counterpart of
   * installLeafRun). The items of a contiguous entry are leaves like any other.
   */
  clearLeaves(t: Uint32Array, i: number, end: number, level: number): number;
  /** Physical address of the table a TABLE item points at. */
  tablePa(t: Uint32Array, i: number): number;
  /**
   * Bits 19:0 of the 4 KiB frame number (tablePa / 4096) of the table a TABLE item
   * points at; {@link PtFormat.tableFrameHi} gives bits 39:20. Table addresses
   * reach past 2^31, so `tablePa` returns a double, a heap number wherever a call
   * is not inlined; the two halves are small integers, and
   * `TableMemory.wordsOfFrameParts()` resolves them, so a walk allocates nothing.
   */
  tableFrameLo(t: Uint32Array, i: number): number;
  /** Bits 39:20 of the frame number of the table a TABLE item points at (see tableFrameLo). */
  tableFrameHi(t: Uint32Array, i: number): number;
  /** Output address of the start of the entry (of the whole run, for a contiguous entry). */
  entryOa(t: Uint32Array, i: number, level: number): number;
  /** log2 of the number of items the OA entry at `i` spans (0 for a single item). */
  numContigLg2(t: Uint32Array, i: number, level: number): number;
  /** Writes a leaf of 2^oaszLg2 bytes at `i` (every item of a contiguous run). */
  installLeaf(
    t: Uint32Array,
    i: number,
    level: number,
    oa: number,
    oaszLg2: number,
    attrs: Uint32Array,
  ): void;
  /**
   * Writes `count` consecutive leaves of 2^oaszLg2 bytes from item `i`, the first
   * at `oa`, each following one at the next address (what a map of many pages
   * writes into one table). Same result as `count` calls of installLeaf.
   */
  installLeafRun(
    t: Uint32Array,
    i: number,
    count: number,
    level: number,
    oa: number,
    oaszLg2: number,
    attrs: Uint32Array,
  ): void;
  /**
   * Installs a table pointer at `i` if the item still holds `expectLo/expectHi`
   * (the kernel's cmpxchg install); returns false when it changed meanwhile.
   */
  installTable(
    t: Uint32Array,
    i: number,
    level: number,
    tablePa: number,
    expectLo: number,
    expectHi: number,
  ): boolean;
  /** Clears 2^numContigLg2 items from `i`. */
  clearEntries(t: Uint32Array, i: number, numContigLg2: number): void;
  /** Writes into `out` the attribute bits that reproduce the entry at `i`. */
  attrFromEntry(t: Uint32Array, i: number, out: Uint32Array): void;
  /** Turns IOMMU_* prot flags into descriptor bits in `out`; returns an errno name on refusal. */
  setProt(prot: number, features: number, out: Uint32Array): "EINVAL" | null;
  /** True when the leaf at `i` may be read by DMA. */
  readable(t: Uint32Array, i: number): boolean;
  /** True when the leaf at `i` may be written by DMA. */
  writable(t: Uint32Array, i: number): boolean;
  /** True when any item of the OA entry at `i` has its dirty bit set. */
  isWriteDirty(t: Uint32Array, i: number, level: number): boolean;
  /** Clears the dirty bit on every item of the OA entry at `i`. */
  makeWriteClean(t: Uint32Array, i: number, level: number): void;
  /** Sets the dirty bit of item `i` if it still holds `expectLo/expectHi` (cmpxchg). */
  makeWriteDirty(t: Uint32Array, i: number, expectLo: number, expectHi: number): boolean;
  /** Validates the format-specific configuration and returns the geometry, or an errno name. */
  init(cfg: FormatConfig): FormatGeometry | "EINVAL" | "EOPNOTSUPP";
  /** What the driver programs into hardware for this top (DTE root and mode, GCR3, SSPTPTR and aw). */
  hwInfo(topPa: number, topLevel: number): Record<string, number>;
}

/** Entries per table (all modelled formats use 4 KiB tables of 64-bit items). */
export const ITEMS_PER_TABLE_LG2 = 9;
