import { WalkScratch } from "./algo/args.js";
import { collectTables } from "./algo/collect.js";
import { type DirtyRecorder, readAndClearDirty, setDirty } from "./algo/dirty.js";
import { IotlbGather } from "./algo/gather.js";
import { mapOnePage, mapPages } from "./algo/map.js";
import { collapseRange, cutAt, newReport, type ResizeReport, splitRange } from "./algo/resize.js";
import type { LiveWriteObserver, PtTable } from "./algo/table-like.js";
import { translateIova, WalkResult, walkIova } from "./algo/translate.js";
import { unmapPages, unmapSinglePage } from "./algo/unmap.js";
import { errnoName, fail, PageTableError, type PtErrno } from "./errors.js";
import { debugSupportedFeatures, featureMask, hasFeature, PtFeature } from "./features.js";
import { EntryType, type PtFormat } from "./format/format.js";
import { type FormatName, formatByName } from "./format/registry.js";
import { bestPgsizeOfLength, bitmapFromSizes, sizesFromBitmap } from "./iter/best-pgsize.js";
import { indexAt, inRange, rangeMaxVaLg2, tableItemLg2 } from "./iter/geometry.js";
import { iommuPgsize } from "./iter/iommu-pgsize.js";
import { lg2Mod, POW2 } from "./log2.js";
import { TableMemory } from "./memory/table-memory.js";
import { fingerprint } from "./observe/fingerprint.js";
import { visitRange } from "./observe/walk-all.js";
import { IOMMU_PROT_ALL, IommuProt } from "./prot.js";
import { checkIova, checkLength, checkPhys, checkPow2Size, checkUint } from "./validate.js";

/** Driver callbacks: what the IOMMU driver does for the table. */
export interface PtDriverOps {
  /**
   * Invalidate [start, last] in the IOTLB and walk caches (INVALIDATE_IOMMU_PAGES
   * then COMPLETION_WAIT). Called by a gather sync before the gather's pages are
   * freed; `freed` lists them.
   */
  flushIotlb?(start: number, last: number, freed: readonly number[]): void;
  /** Program a new top (DTE root and mode) before the table publishes it (DYNAMIC_TOP). */
  changeTop?(topPa: number, topLevel: number): void;
}

/** How to create an {@link IoPageTable}. */
export interface IoPageTableConfig {
  /** The format: `amdv1` (default), `amdv1-mock`, `x86_64` or `vtdss`, or a format object. */
  format?: FormatName | PtFormat;
  /** Hardware VA width (hw_max_vasz_lg2). Default: the format's maximum. */
  hwMaxVaLg2?: number;
  /** Hardware OA width (hw_max_oasz_lg2). Default: the format's maximum. */
  hwMaxOaLg2?: number;
  /**
   * Features, as a mask of {@link PtFeature} bits (see {@link featureMask}). Default:
   * the format's usual driver set, with the RFC cut features where it supports them.
   * Asking for one the format is not built with is EOPNOTSUPP, as in the kernel.
   */
  features?: number;
  /**
   * Model a CONFIG_DEBUG_GENERIC_PT build, the one the kernel's KUnit runs in
   * (drivers/iommu/generic_pt/.kunitconfig): every format is compiled with every
   * feature (see {@link debugSupportedFeatures}) and init does not insist on the
   * features a format forces on. Default false: a production build.
   */
  debugGenericPt?: boolean;
  /** AMD v1: starting level 1..5 (default 2, a 3-level table that grows on demand). */
  startingLevel?: number;
  /**
   * Restrict the domain's page sizes (the core's domain->pgsize_bitmap), e.g. a
   * HWPT capped at 2M: a bitmap of byte sizes ({@link pageSizeBitmap}). Default: every
   * size the format offers.
   */
  pgsizeBitmap?: number;
  /** The table-page allocator; share one between tables of one machine. Default: a new one. */
  memory?: TableMemory;
  /** Driver callbacks. */
  driver?: PtDriverOps;
}

/** The domain geometry an IOMMU driver reports (struct iommu_domain_geometry). */
export interface Aperture {
  /** First IOVA of the aperture. */
  start: number;
  /** Last IOVA (inclusive), saturated to 2^53 - 1 where the table reaches further. */
  last: number;
}

/** Counts of a table's contents. */
export interface TableStats {
  /** Leaf entries by log2 size (a contiguous run counts once). */
  leavesBySize: Map<number, number>;
  /** Table pages reachable from the top, the top included. */
  tables: number;
  /** Table pages charged to this table (reachable plus those waiting on a gather). */
  tablesInUse: number;
  /** Bytes of IOVA mapped. */
  mappedBytes: number;
}

/** A leaf visited by {@link IoPageTable.forEachLeaf}. */
export interface LeafInfo {
  /** IOVA where the leaf starts. */
  va: number;
  /** Output address where it starts. */
  oa: number;
  /** log2 of its size. */
  sizeLg2: number;
  /** Level it sits at. */
  level: number;
  readable: boolean;
  writable: boolean;
  dirty: boolean;
}

/** Mask of a list of {@link PtFeature} bits; re-exported for configs. */
export { featureMask };

/**
 * A page-size bitmap from sizes in bytes (the kernel's pgsize_bitmap: bit n set
 * for a 2^n page). Computed with arithmetic because sizes exceed 32 bits.
 */
export function pageSizeBitmap(...sizes: number[]): number {
  let bitmap = 0;
  const seen = new Set<number>();
  for (const s of sizes) {
    const lg2 = checkPow2Size("size", s);
    if (!seen.has(lg2)) bitmap += 2 ** lg2;
    seen.add(lg2);
  }
  return bitmap;
}

/**
 * An IO page table: the model of one iommupt domain (`struct pt_iommu`).
 *
 * Operations follow iommu_pt.h: map() installs leaves of one size, unmap() never
 * splits, iovaToPhys() walks. mapRange()/unmapRange() are the IOMMU core's
 * iommu_map()/iommu_unmap() on top. cut(), splitRange() and collapseRange() are the
 * hitless page-size changes the RFC cut_mapping series and the 2026 SEV-TIO
 * discussion ask for.
 *
 * IOVAs are JavaScript integers; a SIGN_EXTEND table takes upper-half IOVAs as
 * negative numbers (two's complement). Every error is a {@link PageTableError}
 * with the kernel's errno name.
 */
export class IoPageTable implements PtTable {
  /** @internal */ readonly fmt: PtFormat;
  /** Enabled feature mask (after the kernel's fix-ups). */
  readonly features: number;
  /** VA width of the table (sign bit included with SIGN_EXTEND). */
  readonly maxVaLg2: number;
  /** OA width of the table. */
  readonly maxOaLg2: number;
  /** @internal */ readonly itemLg2: Int32Array;
  /** @internal */ readonly itemSize: Float64Array;
  /** @internal */ readonly invItemSize: Float64Array;
  /** @internal */ readonly indexMask: Int32Array;
  /** @internal */ vaFirst = 0;
  /** First physical address beyond the OA width. */
  private readonly oaLimit: number;
  /** True when upper-half (negative) IOVAs are valid. */
  private readonly signExtend: boolean;
  /** The kernel's PAGE_SIZE single-page fast path applies (4K granule, 4K allowed). */
  private readonly has4kFastPath: boolean;
  /** Bytes of a level-0 item. */
  private readonly granuleSize: number;
  /** granuleSize - 1: the low bits a granule-aligned address has clear. */
  private readonly granuleMask: number;
  /** log2 of the domain's smallest page size. */
  private readonly minPageLg2: number;
  /** @internal */ vaLast = 0;
  /** The allocator table pages come from. */
  readonly mem: TableMemory;
  /** @internal */ readonly pageSizes: Uint8Array;
  /** @internal */ readonly levelSizes: Uint8Array[];
  /** @internal */ readonly scratch = new WalkScratch();
  /** The domain's page sizes (pgsize_bitmap) as a number: bit n for a 2^n page. */
  readonly pgsizeBitmap: number;
  /** The domain geometry. */
  readonly aperture: Aperture;
  /** @internal */ liveWriteObserver: LiveWriteObserver | null = null;
  private _topLevel: number;
  private _topPa: number;
  private _topWords: Uint32Array;
  private _tablesInUse = 0;
  private destroyed = false;
  private readonly driver: PtDriverOps;
  private readonly unmapGather = new IotlbGather();
  private readonly walkScratch = new WalkResult();
  private readonly pgsizeCount = new Float64Array(1);
  /** Per IOMMU_* prot value: 1 once setProt() accepted it, with its bits in protAttrs. */
  private readonly protKnown = new Uint8Array(IOMMU_PROT_ALL + 1);
  private readonly protAttrs = new Uint32Array(2 * (IOMMU_PROT_ALL + 1));

  constructor(config: IoPageTableConfig = {}) {
    const fmt =
      typeof config.format === "object" ? config.format : formatByName(config.format ?? "amdv1");
    this.fmt = fmt;
    const hwVa = config.hwMaxVaLg2 ?? fmt.maxVaLg2;
    const hwOa = config.hwMaxOaLg2 ?? fmt.maxOaLg2;
    if (!Number.isInteger(hwVa) || hwVa <= 0 || hwVa > fmt.maxVaLg2) {
      fail("EINVAL", "hwMaxVaLg2", hwVa, `must be in 1..${fmt.maxVaLg2} for ${fmt.name}`);
    }
    if (!Number.isInteger(hwOa) || hwOa <= 0) {
      fail("EINVAL", "hwMaxOaLg2", hwOa, "must be a positive integer");
    }
    let features = config.features ?? fmt.defaultFeatures;
    if (!Number.isInteger(features) || features < 0 || features > 0xffffffff) {
      fail("EINVAL", "features", features, "must be a 32-bit feature bit mask");
    }
    const debug = config.debugGenericPt ?? false;
    if (typeof debug !== "boolean") {
      fail("EINVAL", "debugGenericPt", debug, "must be a boolean");
    }
    const supported = debug ? debugSupportedFeatures(fmt.supportedFeatures) : fmt.supportedFeatures;
    // pt_feature(): a feature the format forces on reads as on, whatever the mask
    // says; the format's init and the top range already see it that way.
    const forced = fmt.forcedFeatures;
    const geo = fmt.init({
      hwMaxVaLg2: hwVa,
      hwMaxOaLg2: hwOa,
      features: (features | forced) >>> 0,
      ...(config.startingLevel !== undefined ? { startingLevel: config.startingLevel } : {}),
    });
    if (typeof geo === "string") {
      const arg =
        config.startingLevel !== undefined && fmt.name.startsWith("amdv1")
          ? "startingLevel"
          : "hwMaxVaLg2";
      fail(
        geo,
        arg,
        arg === "startingLevel" ? config.startingLevel : hwVa,
        `rejected by the ${fmt.name} format`,
      );
    }
    if (hwOa > fmt.maxOaLg2) {
      fail("EINVAL", "hwMaxOaLg2", hwOa, `exceeds the ${fmt.name} maximum of ${fmt.maxOaLg2}`);
    }
    this.itemLg2 = new Int32Array(fmt.maxTopLevel + 1);
    this.itemSize = new Float64Array(fmt.maxTopLevel + 1);
    this.invItemSize = new Float64Array(fmt.maxTopLevel + 1);
    this.indexMask = new Int32Array(fmt.maxTopLevel + 1);
    for (let l = 0; l <= fmt.maxTopLevel; l++) {
      const lg2 = tableItemLg2(fmt, l);
      this.itemLg2[l] = lg2;
      this.itemSize[l] = 2 ** lg2;
      this.invItemSize[l] = 2 ** -lg2;
    }

    // pt_init_common(): feature fix-ups, then the feature checks.
    let maxVa = geo.maxVaLg2;
    this.maxVaLg2 = maxVa;
    this.features = (features | forced) >>> 0;
    const topRangeVa = rangeMaxVaLg2(this, geo.topLevel);
    if (geo.topLevel === fmt.maxTopLevel || maxVa === topRangeVa) {
      features &= ~(1 << PtFeature.DYNAMIC_TOP);
    }
    if (topRangeVa === 64) features |= 1 << PtFeature.FULL_VA;
    if ((features & ~supported) !== 0) {
      fail("EOPNOTSUPP", "features", features, `asks for features ${fmt.name} is not built with`);
    }
    // A debug build skips this check; the forced features then stay on through
    // pt_feature() even where the fix-ups above cleared them (DYNAMIC_TOP).
    if (!debug && (features & forced) !== forced) {
      fail("EOPNOTSUPP", "features", features, `lacks features ${fmt.name} always enables`);
    }
    features = (features | forced) >>> 0;
    if (!hasFeature(features, PtFeature.DYNAMIC_TOP) && geo.topLevel !== fmt.maxTopLevel) {
      if (maxVa > fmt.numItemsLg2(geo.topLevel) + this.itemLg2[geo.topLevel]!) {
        fail("EOPNOTSUPP", "hwMaxVaLg2", hwVa, "is wider than the top level can decode");
      }
    }
    if (
      hasFeature(features, PtFeature.SIGN_EXTEND) &&
      (hasFeature(features, PtFeature.FULL_VA) || hasFeature(features, PtFeature.DYNAMIC_TOP))
    ) {
      fail(
        "EINVAL",
        "features",
        features,
        "SIGN_EXTEND cannot combine with FULL_VA or DYNAMIC_TOP",
      );
    }
    this.features = features;
    this.maxOaLg2 = Math.min(geo.maxOaLg2, fmt.maxOaLg2);
    maxVa = geo.maxVaLg2;

    // get_info(): the page sizes every reachable level offers, below 2^max_oasz.
    const sizes = new Uint8Array(64);
    const dynamic = hasFeature(features, PtFeature.DYNAMIC_TOP);
    for (let l = 0; l <= (dynamic ? fmt.maxTopLevel : geo.topLevel); l++) {
      if (dynamic && this.itemLg2[l]! >= maxVa) break;
      for (const s of fmt.possibleSizes(l)) if (s < this.maxOaLg2) sizes[s] = 1;
    }
    if (config.pgsizeBitmap !== undefined) {
      const want = checkUint("pgsizeBitmap", config.pgsizeBitmap);
      const allowed = sizesFromBitmap(want);
      for (let lg2 = 0; lg2 < 64; lg2++) if (allowed[lg2] === 0) sizes[lg2] = 0;
      if (bitmapFromSizes(sizes) === 0) {
        fail("EINVAL", "pgsizeBitmap", want, "leaves no page size the format supports");
      }
    }
    this.pageSizes = sizes;
    this.oaLimit = 2 ** this.maxOaLg2;
    this.signExtend = hasFeature(features, PtFeature.SIGN_EXTEND);
    this.has4kFastPath = fmt.granuleLg2 === 12 && sizes[12] === 1;
    // Small integers, not the doubles `2 **` makes: they are used on every call.
    this.granuleSize = 1 << fmt.granuleLg2;
    this.granuleMask = this.granuleSize - 1;
    let minLg2 = 0;
    while (minLg2 < 64 && sizes[minLg2] !== 1) minLg2++;
    this.minPageLg2 = minLg2;
    this.pgsizeBitmap = bitmapFromSizes(sizes);
    this.levelSizes = [];
    for (let l = 0; l <= fmt.maxTopLevel; l++) {
      const m = new Uint8Array(64);
      for (const s of fmt.possibleSizes(l)) if (sizes[s] === 1) m[s] = 1;
      this.levelSizes.push(m);
    }

    // Domain geometry: as if at the highest level when the top can grow.
    const apertureVa = dynamic ? this.maxVaLg2 : rangeMaxVaLg2(this, geo.topLevel);
    const se = hasFeature(features, PtFeature.SIGN_EXTEND);
    const lastVa = 2 ** (se ? apertureVa - 1 : apertureVa) - 1;
    this.aperture = { start: 0, last: Math.min(lastVa, Number.MAX_SAFE_INTEGER) };

    if (config.memory !== undefined && !(config.memory instanceof TableMemory)) {
      fail("EINVAL", "memory", config.memory, "must be a TableMemory");
    }
    this.mem = config.memory ?? new TableMemory();
    this.driver = config.driver ?? {};
    this._topLevel = geo.topLevel;
    this.refreshTopGeometry();
    const top = this.allocTable();
    if (top < 0) fail("ENOMEM", "memory", this.mem.inUse, "could not allocate the top table");
    this._topPa = top;
    this._topWords = this.mem.words(top);
  }

  /** The format's name. */
  get format(): string {
    return this.fmt.name;
  }
  /** Current top level (it grows on demand with DYNAMIC_TOP). */
  get topLevel(): number {
    return this._topLevel;
  }
  /** Physical address of the top table. */
  get topPa(): number {
    return this._topPa;
  }
  /** @internal */
  get topWords(): Uint32Array {
    return this._topWords;
  }
  /** Table pages charged to this table: reachable ones and those waiting on a gather. */
  get tablesInUse(): number {
    return this._tablesInUse;
  }
  /** Smallest page size of the domain, in bytes. */
  get minPageSize(): number {
    return 2 ** this.minPageLg2;
  }
  /** What a driver programs into hardware: DTE root and mode, GCR3 and levels, or SSPTPTR and aw. */
  hwInfo(): Record<string, number> {
    return this.fmt.hwInfo(this._topPa, this._topLevel);
  }

  /**
   * Allocates a zeroed table page charged to this table and returns its physical
   * address, or -1 when the allocator fails (ENOMEM). For hardware models that
   * build table pages the domain will own (TMPM's PSMASH_IO PTE page): charged
   * here, the page is counted, walked, unmapped and freed like any other.
   */
  allocTable(): number {
    const pa = this.mem.alloc();
    if (pa >= 0) this._tablesInUse++;
    return pa;
  }
  /** Frees a table page charged to this table (one that is no longer linked). */
  freeTable(pa: number): void {
    this.mem.free(pa);
    this._tablesInUse--;
  }
  /** @internal */
  setTop(pa: number, level: number): void {
    this.driver.changeTop?.(pa, level);
    this._topPa = pa;
    this._topLevel = level;
    this._topWords = this.mem.words(pa);
    this.refreshTopGeometry();
  }

  /** Index masks and VA bounds for the current top (they change when it grows). */
  private refreshTopGeometry(): void {
    const top = this._topLevel;
    const maxVa = rangeMaxVaLg2(this, top);
    for (let l = 0; l <= this.fmt.maxTopLevel; l++) {
      const bits = l === top ? maxVa - this.itemLg2[l]! : this.fmt.numItemsLg2(l);
      this.indexMask[l] = bits >= 31 ? 0x7fffffff : (1 << bits) - 1;
    }
    if (hasFeature(this.features, PtFeature.SIGN_EXTEND)) {
      this.vaFirst = -(2 ** (maxVa - 1));
      this.vaLast = 2 ** (maxVa - 1) - 1;
    } else {
      this.vaFirst = 0;
      this.vaLast = 2 ** maxVa - 1;
    }
  }

  /**
   * iotlb_sync(): invalidate the gather's range through the driver, then free the
   * pages it holds. An empty gather calls no driver (as the kernel since 2026).
   */
  iotlbSync(gather: IotlbGather): void {
    if (!(gather instanceof IotlbGather))
      fail("EINVAL", "gather", gather, "must be an IotlbGather");
    if (!gather.isEmpty || gather.freelist.length !== 0) {
      if (!gather.isEmpty) this.driver.flushIotlb?.(gather.start, gather.last, gather.freelist);
      const pages = gather.freelist;
      for (let k = 0; k < pages.length; k++) this.freeTable(pages[k]!);
    }
    gather.reset();
  }

  /** A new, empty gather for {@link IoPageTable.unmap} and the resize operations. */
  newGather(): IotlbGather {
    return new IotlbGather();
  }

  /**
   * map_pages(): install a translation for [iova, iova+length) to paddr, with
   * leaves of one size: the largest the domain allows given the alignment of
   * iova and paddr and the length (4K directly for a single 4K page).
   *
   * Errors (kernel order): EINVAL prot without READ or WRITE, or refused by the
   * format; ERANGE paddr beyond the OA width, or the range outside the table;
   * EINVAL/EOVERFLOW length; ENXIO no page size fits the alignment; EADDRINUSE
   * something is mapped in the range; ENOMEM. Like the kernel, a failure leaves
   * the installed prefix mapped; the error's `mapped` says how many bytes.
   * One deliberate difference: a length that is not a multiple of the chosen leaf
   * size (which the kernel over-maps, with a WARN on debug builds) is EINVAL.
   */
  map(iova: number, paddr: number, length: number, prot: number): void {
    // One 4K page, the IOMMU core's commonest call: when every argument is in
    // order and the leaf bits for `prot` are known, straight to the single-page
    // walk. Anything else, every refusal included, goes through mapSlow(), which
    // checks in the kernel's order.
    if (
      length === 4096 &&
      this.has4kFastPath &&
      !this.destroyed &&
      Number.isSafeInteger(iova) &&
      (iova >= 0 || this.signExtend) &&
      Number.isSafeInteger(iova + 4095) &&
      Number.isSafeInteger(paddr) &&
      paddr >= 0 &&
      paddr < this.oaLimit &&
      (iova & 0xfff) === 0 &&
      (paddr & 0xfff) === 0 &&
      (prot & ~IOMMU_PROT_ALL) === 0 &&
      prot === (prot | 0) &&
      this.protKnown[prot] === 1
    ) {
      const attrs = this.scratch.attrs;
      attrs[0] = this.protAttrs[2 * prot]!;
      attrs[1] = this.protAttrs[2 * prot + 1]!;
      const ret = mapOnePage(this, iova, paddr);
      if (ret) throw this.mapError(ret, iova, paddr);
      return;
    }
    this.mapSlow(iova, paddr, length, prot);
  }

  /** map() of anything but a plain 4K page with known leaf bits: every check, in order. */
  private mapSlow(iova: number, paddr: number, length: number, prot: number): void {
    // One combined test for the common case; the slow path finds the culprit.
    if (
      this.destroyed ||
      !Number.isSafeInteger(iova) ||
      (iova < 0 && !this.signExtend) ||
      !Number.isSafeInteger(paddr) ||
      paddr < 0 ||
      !Number.isSafeInteger(length) ||
      length <= 0 ||
      !Number.isSafeInteger(iova + length - 1) ||
      (prot & ~IOMMU_PROT_ALL) !== 0 ||
      prot !== (prot | 0)
    ) {
      this.checkLive();
      checkIova("iova", iova, this.features);
      checkPhys("paddr", paddr);
      checkUint("prot", prot);
      if (prot & ~IOMMU_PROT_ALL) fail("EINVAL", "prot", prot, "has unknown IOMMU_* bits");
      checkLength("length", length, iova);
    }
    this.mapChecked(iova, paddr, length, prot, length === 4096);
  }

  /**
   * map_pages() with the kernel's signature: `pgcount` pages of `pgsize` bytes.
   * Returns the bytes mapped. The single-page fast path applies to one 4K page.
   */
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number): number {
    this.checkLive();
    checkIova("iova", iova, this.features);
    checkPhys("paddr", paddr);
    checkPow2Size("pgsize", pgsize);
    checkUint("pgcount", pgcount);
    checkUint("prot", prot);
    if (prot & ~IOMMU_PROT_ALL) fail("EINVAL", "prot", prot, "has unknown IOMMU_* bits");
    const length = pgsize * pgcount;
    checkLength("pgcount", length, iova);
    this.mapChecked(iova, paddr, length, prot, pgsize === 4096 && pgcount === 1);
    return length;
  }

  private mapChecked(
    iova: number,
    paddr: number,
    len: number,
    prot: number,
    onePage: boolean,
  ): void {
    if (!(prot & (IommuProt.READ | IommuProt.WRITE))) {
      fail("EINVAL", "prot", prot, "has neither IOMMU_READ nor IOMMU_WRITE");
    }
    if (paddr >= this.oaLimit) {
      fail("ERANGE", "paddr", paddr, `is beyond the ${this.maxOaLg2}-bit output address space`);
    }
    const attrs = this.scratch.attrs;
    if (this.fmt.setProt(prot, this.features, attrs) !== null) {
      fail("EINVAL", "prot", prot, `is refused by the ${this.fmt.name} format`);
    }
    // A format's setProt() is a pure function of (prot, features): remember it
    // for map()'s single-page path.
    this.protAttrs[2 * prot] = attrs[0]!;
    this.protAttrs[2 * prot + 1] = attrs[1]!;
    this.protKnown[prot] = 1;
    const single = onePage && this.has4kFastPath;
    let leafLg2 = 12;
    if (single) {
      if (lg2Mod(iova, 12) !== 0 || lg2Mod(paddr, 12) !== 0) {
        fail(
          "ENXIO",
          lg2Mod(iova, 12) ? "iova" : "paddr",
          lg2Mod(iova, 12) ? iova : paddr,
          "is not 4 KiB aligned",
        );
      }
    } else {
      const lg2 = bestPgsizeOfLength(this.pageSizes, iova, len, paddr);
      if (lg2 === 0) {
        // Name the culprit: an address off the smallest page, else the length.
        const g = this.minPageLg2;
        if (lg2Mod(iova, g) !== 0) fail("ENXIO", "iova", iova, "admits no page size");
        if (lg2Mod(paddr, g) !== 0) fail("ENXIO", "paddr", paddr, "admits no page size");
        fail("ENXIO", "length", len, "is shorter than every page size the alignment allows");
      }
      leafLg2 = lg2;
      if (lg2Mod(len, lg2) !== 0) {
        fail(
          "EINVAL",
          "length",
          len,
          `is not a multiple of the ${2 ** lg2} byte leaves this call writes`,
        );
      }
    }
    const ret = single ? mapOnePage(this, iova, paddr) : mapPages(this, iova, len, paddr, leafLg2);
    if (ret) throw this.mapError(ret, iova, paddr);
  }

  /** The error of a failed map_pages(), with the bytes it left mapped. */
  private mapError(ret: number, iova: number, paddr: number): PageTableError {
    const err =
      ret === -12
        ? this.error(ret, "memory", this.mem.inUse, "no table page for the map")
        : this.error(ret, "iova", iova, "map failed");
    err.mapped = this.scratch.oa - paddr;
    return err;
  }

  /**
   * iommu_map(): the IOMMU core's map, segmented with iommu_pgsize() into
   * map_pages() calls, largest sizes first. All or nothing: on failure everything
   * this call mapped is unmapped again before the error is thrown (empty tables it
   * allocated may remain, as in the kernel, and are freed with the table).
   * iova, paddr and length must be multiples of the smallest page size (EINVAL).
   */
  mapRange(iova: number, paddr: number, length: number, prot: number): void {
    const minLg2 = this.minPageLg2;
    // One combined test for the common case; the slow path finds the culprit.
    if (
      this.destroyed ||
      !Number.isSafeInteger(iova) ||
      (iova < 0 && !this.signExtend) ||
      !Number.isSafeInteger(paddr) ||
      paddr < 0 ||
      !Number.isSafeInteger(length) ||
      length <= 0 ||
      !Number.isSafeInteger(iova + length - 1) ||
      (prot & ~IOMMU_PROT_ALL) !== 0 ||
      prot !== (prot | 0) ||
      lg2Mod(iova, minLg2) !== 0 ||
      lg2Mod(paddr, minLg2) !== 0 ||
      lg2Mod(length, minLg2) !== 0
    ) {
      this.checkLive();
      checkIova("iova", iova, this.features);
      checkPhys("paddr", paddr);
      checkUint("prot", prot);
      if (prot & ~IOMMU_PROT_ALL) fail("EINVAL", "prot", prot, "has unknown IOMMU_* bits");
      checkLength("length", length, iova);
      const min = 2 ** minLg2;
      if (lg2Mod(iova, minLg2) !== 0) {
        fail("EINVAL", "iova", iova, `is not a multiple of the smallest page size ${min}`);
      }
      if (lg2Mod(paddr, minLg2) !== 0) {
        fail("EINVAL", "paddr", paddr, `is not a multiple of the smallest page size ${min}`);
      }
      fail("EINVAL", "length", length, `is not a multiple of the smallest page size ${min}`);
    }
    let done = 0;
    try {
      while (done < length) {
        const lg2 = iommuPgsize(
          this.pageSizes,
          iova + done,
          paddr + done,
          length - done,
          this.pgsizeCount,
        );
        const count = this.pgsizeCount[0]!;
        const pgsize = POW2[lg2]!;
        this.mapChecked(
          iova + done,
          paddr + done,
          pgsize * count,
          prot,
          pgsize === 4096 && count === 1,
        );
        done += pgsize * count;
      }
    } catch (e) {
      if (e instanceof PageTableError) done += e.mapped;
      if (done > 0) this.unmapRange(iova, done);
      throw e;
    }
  }

  /**
   * unmap_pages(): remove whole entries in [iova, iova+length) and return the bytes
   * removed; `iova + result` is where it stopped. Never splits a leaf: one reaching
   * past the end goes whole (and is counted whole); a start inside a leaf removes
   * nothing; a hole stops the walk. With a gather the unlinked tables wait there
   * until {@link IoPageTable.iotlbSync}; without one the table syncs before returning.
   *
   * iova and length must be multiples of the smallest page size (the IOMMU core's
   * check; it WARNs where we throw EINVAL). A range outside the table returns 0.
   */
  unmap(iova: number, length: number, gather?: IotlbGather): number {
    if (
      this.destroyed ||
      !Number.isSafeInteger(iova) ||
      (iova < 0 && !this.signExtend) ||
      !Number.isSafeInteger(length) ||
      length <= 0 ||
      !Number.isSafeInteger(iova + length - 1) ||
      // Exact low bits: both are safe integers by now.
      (iova & this.granuleMask) !== 0 ||
      (length & this.granuleMask) !== 0 ||
      (gather !== undefined && !(gather instanceof IotlbGather))
    ) {
      this.checkLive();
      checkIova("iova", iova, this.features);
      checkLength("length", length, iova);
      this.checkGranule("iova", iova);
      this.checkGranule("length", length);
      checkGather(gather);
    }
    if (!inRange(this, iova, iova + length - 1)) return 0;
    const s = this.scratch;
    let unmapped = length === this.granuleSize ? unmapSinglePage(this, iova) : 0;
    if (unmapped === 0) {
      s.unmapped = 0;
      unmapPages(this, iova, length);
      unmapped = s.unmapped;
    }
    const g = gather ?? this.unmapGather;
    if (unmapped !== 0) {
      if (
        hasFeature(this.features, PtFeature.FLUSH_RANGE_NO_GAPS) &&
        g.isDisjoint(iova, unmapped)
      ) {
        this.iotlbSync(g);
      }
      // The range that went away, including a large leaf's tail past the request
      // (CVE-2026-31735, "Fix short gather if the unmap goes into a large mapping").
      g.addRange(iova, unmapped);
    }
    const freed = s.freeList;
    if (freed.length !== 0) {
      for (let k = 0; k < freed.length; k++) g.freelist.push(freed[k]!);
      freed.length = 0;
    }
    if (gather === undefined) this.iotlbSync(g);
    return unmapped;
  }

  /**
   * iommu_unmap(): unmap_pages() until `length` bytes are gone or a call removes
   * nothing (a hole or the inside of a leaf), then sync. Returns the bytes removed.
   */
  unmapRange(iova: number, length: number): number {
    this.checkLive();
    checkIova("iova", iova, this.features);
    checkLength("length", length, iova);
    this.checkGranule("iova", iova);
    this.checkGranule("length", length);
    const g = this.unmapGather;
    let done = 0;
    while (done < length) {
      const n = this.unmap(iova + done, length - done, g);
      if (n === 0) break;
      done += n;
    }
    this.iotlbSync(g);
    return done;
  }

  /**
   * iova_to_phys(): the output address for `iova` (any alignment), or 0 when
   * nothing translates it or it is outside the table (as the kernel since 2026).
   */
  iovaToPhys(iova: number): number {
    const oa = this.translate(iova);
    return Math.max(oa, 0);
  }

  /** Like {@link IoPageTable.iovaToPhys} but -1 for "not mapped", so physical 0 is unambiguous. */
  translate(iova: number): number {
    if (this.destroyed || !Number.isSafeInteger(iova) || (iova < 0 && !this.signExtend)) {
      this.checkLive();
      checkIova("iova", iova, this.features);
    }
    if (!inRange(this, iova, iova)) return -1;
    return translateIova(this, iova);
  }

  /**
   * The hardware walk of one IOVA: fills `out` with the leaf (OA, size, level,
   * permissions) and the entries read. Returns false when nothing translates it.
   * Allocates nothing; an IOMMU model calls it on every IOTLB miss.
   */
  lookup(iova: number, out: WalkResult = this.walkScratch): boolean {
    if (this.destroyed || !Number.isSafeInteger(iova) || (iova < 0 && !this.signExtend)) {
      this.checkLive();
      checkIova("iova", iova, this.features);
    }
    if (!inRange(this, iova, iova)) {
      out.oa = -1;
      out.reads = 0;
      return false;
    }
    return walkIova(this, iova, out);
  }

  /**
   * Where the walk for `iova` reads its entry at `level`: the table's physical
   * address, the index, and what the item holds; null when the walk ends above
   * that level (a hole or a larger leaf) or the IOVA is outside the table. For
   * hardware models that edit an entry in place (TMPM's PUNSMASH_IO rewrites the
   * PDE above a table of 512 PTEs).
   */
  locateEntry(
    iova: number,
    level: number,
  ): { tablePa: number; index: number; type: EntryType } | null {
    this.checkLive();
    checkIova("iova", iova, this.features);
    if (!Number.isInteger(level) || level < 0 || level > this._topLevel) {
      fail("EINVAL", "level", level, `must be a level in 0..${this._topLevel}`);
    }
    if (!inRange(this, iova, iova)) return null;
    let tablePa = this._topPa;
    for (let l = this._topLevel; ; l--) {
      const t = this.mem.words(tablePa);
      const i = indexAt(this, iova, l);
      const type = this.fmt.load(t, i, l);
      if (l === level) return { tablePa, index: i, type };
      if (type !== EntryType.TABLE) return null;
      tablePa = this.fmt.tablePa(t, i);
    }
  }

  /**
   * read_and_clear_dirty(): report the dirty leaves in [iova, iova+size) to
   * `recorder` and, unless `flags` has IOMMU_DIRTY_NO_CLEAR, make them clean and add
   * their ranges to `gather` (the caller flushes; without a gather the table does).
   * EOPNOTSUPP on a format without a dirty bit.
   */
  readAndClearDirty(
    iova: number,
    size: number,
    flags: number,
    recorder: DirtyRecorder | null,
    gather?: IotlbGather,
  ): void {
    this.checkLive();
    checkGather(gather);
    if (!this.fmt.hasDirty) fail("EOPNOTSUPP", "format", this.fmt.name, "has no dirty bit");
    checkIova("iova", iova, this.features);
    checkLength("size", size, iova);
    checkUint("flags", flags);
    const last = iova + size - 1;
    if (!inRange(this, iova, last)) {
      fail("ERANGE", "iova", iova, "is outside the table");
    }
    const g = gather ?? this.unmapGather;
    readAndClearDirty(this, iova, last, flags, recorder, g);
    if (gather === undefined) this.iotlbSync(g);
  }

  /** The iommufd selftest's set_dirty(): mark the leaf item mapping `iova` dirty (ENOENT if none). */
  setDirty(iova: number): void {
    this.checkLive();
    if (!this.fmt.hasDirty) fail("EOPNOTSUPP", "format", this.fmt.name, "has no dirty bit");
    checkIova("iova", iova, this.features);
    if (!inRange(this, iova, iova)) {
      fail("ERANGE", "iova", iova, "is outside the table");
    }
    const ret = setDirty(this, iova);
    if (ret) throw this.error(ret, "iova", iova, "set_dirty failed");
  }

  /**
   * cut (RFC cut_mapping): make `iova` a leaf boundary. The leaf containing it is
   * replaced hitlessly by pieces of the largest sizes their alignment allows, so a
   * later unmap of either side succeeds. Nothing happens when `iova` already is a
   * boundary. ENOENT when nothing is mapped there; EOPNOTSUPP when the change
   * needs OA_SIZE_CHANGE (a contiguous run) or OA_TABLE_XCHG (a leaf to a table)
   * and the table lacks it; ENOMEM. A failure changes nothing.
   */
  cut(iova: number, gather?: IotlbGather): ResizeReport {
    this.checkLive();
    checkGather(gather);
    checkIova("iova", iova, this.features);
    this.checkGranule("iova", iova);
    if (!inRange(this, iova, iova)) {
      fail("ERANGE", "iova", iova, "is outside the table");
    }
    const report = newReport();
    const g = gather ?? this.unmapGather;
    const ret = cutAt(this, iova, g, report);
    if (ret) throw this.error(ret, "iova", iova, "cut failed");
    if (gather === undefined) this.iotlbSync(g);
    return report;
  }

  /**
   * Decrease the page size: afterwards no leaf inside [iova, iova+length) is larger
   * than `maxLeafSize` and none crosses either end; pieces outside keep their
   * largest sizes. Each replaced leaf becomes a privately built, fully populated
   * table installed with one entry write (or, for an AMD contiguous run, is
   * rewritten item by item), so no walker ever sees a missing or different
   * translation. The range's IOTLB entries are invalidated through the gather.
   * Holes are skipped. All or nothing: ENOMEM or EOPNOTSUPP change nothing.
   */
  splitRange(
    iova: number,
    length: number,
    maxLeafSize: number,
    gather?: IotlbGather,
  ): ResizeReport {
    this.checkLive();
    checkGather(gather);
    checkIova("iova", iova, this.features);
    checkLength("length", length, iova);
    this.checkGranule("iova", iova);
    this.checkGranule("length", length);
    const capLg2 = checkPow2Size("maxLeafSize", maxLeafSize);
    if (this.pageSizes[capLg2] !== 1) {
      fail("EINVAL", "maxLeafSize", maxLeafSize, "is not one of the domain's page sizes");
    }
    const last = iova + length - 1;
    if (!inRange(this, iova, last)) {
      fail("ERANGE", "iova", iova, "with length is outside the table");
    }
    const report = newReport();
    const g = gather ?? this.unmapGather;
    const ret = splitRange(this, iova, last, capLg2, g, report);
    if (ret) throw this.error(ret, "iova", iova, "split failed");
    if (gather === undefined) this.iotlbSync(g);
    return report;
  }

  /**
   * Increase the page size: inside [iova, iova+length), every table whose items
   * map one aligned, contiguous span with identical attributes becomes one leaf
   * (bottom-up), and with OA_SIZE_CHANGE equal neighbouring leaves merge into
   * contiguous entries; nothing grows beyond `maxLeafSize` (default: the domain's
   * largest) or the domain's page sizes. Replaced tables wait on the gather and are
   * freed after the flush. EOPNOTSUPP without OA_TABLE_XCHG.
   */
  collapseRange(
    iova: number,
    length: number,
    maxLeafSize?: number,
    gather?: IotlbGather,
  ): ResizeReport {
    this.checkLive();
    checkGather(gather);
    checkIova("iova", iova, this.features);
    checkLength("length", length, iova);
    this.checkGranule("iova", iova);
    this.checkGranule("length", length);
    const capLg2 = maxLeafSize === undefined ? 63 : checkPow2Size("maxLeafSize", maxLeafSize);
    const last = iova + length - 1;
    if (!inRange(this, iova, last)) {
      fail("ERANGE", "iova", iova, "with length is outside the table");
    }
    const report = newReport();
    const g = gather ?? this.unmapGather;
    const ret = collapseRange(this, iova, last, capLg2, g, report);
    if (ret) throw this.error(ret, "features", this.features, "collapse needs OA_TABLE_XCHG");
    if (gather === undefined) this.iotlbSync(g);
    return report;
  }

  /**
   * Observe every write cut, splitRange and collapseRange make to an entry a
   * hardware walker can see, right after it lands (a hardware model checks here
   * that no translation ever changed). Pass null to stop.
   */
  observeLiveWrites(observer: LiveWriteObserver | null): void {
    this.liveWriteObserver = observer;
  }

  /** Counts of leaves by size, tables and mapped bytes. */
  stats(): TableStats {
    this.checkLive();
    const leavesBySize = new Map<number, number>();
    let tables = 1;
    let mappedBytes = 0;
    const span = this.fullSpan();
    visitRange(this, span[0], span[1], {
      table: () => {
        tables++;
      },
      leaf: (_va, _level, _t, _i, lg2) => {
        leavesBySize.set(lg2, (leavesBySize.get(lg2) ?? 0) + 1);
        mappedBytes += 2 ** lg2;
      },
    });
    if (span[2] !== undefined) {
      visitRange(this, span[2], span[3]!, {
        table: () => {
          tables++;
        },
        leaf: (_va, _level, _t, _i, lg2) => {
          leavesBySize.set(lg2, (leavesBySize.get(lg2) ?? 0) + 1);
          mappedBytes += 2 ** lg2;
        },
      });
    }
    return { leavesBySize, tables, tablesInUse: this._tablesInUse, mappedBytes };
  }

  /**
   * Calls `fn` for every leaf meeting [iova, iova+length), in IOVA order (a leaf
   * starting before `iova` is reported whole). Without arguments: every leaf.
   */
  forEachLeaf(fn: (leaf: LeafInfo) => void, iova?: number, length?: number): void {
    this.checkLive();
    const fmt = this.fmt;
    const visit = (va: number, level: number, t: Uint32Array, i: number, sizeLg2: number) => {
      fn({
        va,
        oa: fmt.entryOa(t, i, level),
        sizeLg2,
        level,
        readable: fmt.readable(t, i),
        writable: fmt.writable(t, i),
        dirty: fmt.hasDirty && fmt.isWriteDirty(t, i, level),
      });
    };
    if (iova !== undefined) {
      checkIova("iova", iova, this.features);
      checkLength("length", length, iova);
      const last = iova + (length as number) - 1;
      if (!inRange(this, iova, last)) {
        fail("ERANGE", "iova", iova, "with length is outside the table");
      }
      visitRange(this, iova, last, { leaf: visit });
      return;
    }
    const span = this.fullSpan();
    if (span[2] !== undefined) visitRange(this, span[2], span[3]!, { leaf: visit });
    visitRange(this, span[0], span[1], { leaf: visit });
  }

  /** A fingerprint of the table's shape and leaves, independent of table page addresses. */
  fingerprint(): string {
    this.checkLive();
    return fingerprint(this);
  }

  /** [start, last] of the lower half, then of the upper half with SIGN_EXTEND, clamped to 2^53. */
  private fullSpan(): [number, number, number?, number?] {
    const maxVa = rangeMaxVaLg2(this, this._topLevel);
    if (hasFeature(this.features, PtFeature.SIGN_EXTEND)) {
      const half = Math.min(2 ** (maxVa - 1), 2 ** 53);
      return [0, half - 1, -half, -1];
    }
    return [0, Math.min(2 ** maxVa, 2 ** 53) - 1];
  }

  /**
   * deinit(): free every table page now. The driver must already have detached
   * the hardware and flushed; the table is unusable afterwards.
   */
  destroy(): void {
    if (this.destroyed) return;
    const pages: number[] = [this._topPa];
    collectTables(this, this._topWords, this._topLevel, pages, false);
    for (const pa of pages) this.freeTable(pa);
    this.destroyed = true;
  }

  /** True once {@link IoPageTable.destroy} ran. */
  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** @internal */
  checkLive(): void {
    if (this.destroyed) fail("EINVAL", "table", this.fmt.name, "was destroyed");
  }

  private checkGranule(name: string, v: number): void {
    const g = this.fmt.granuleLg2;
    if (lg2Mod(v, g) !== 0)
      fail("EINVAL", name, v, `is not a multiple of the ${2 ** g} byte granule`);
  }

  private error(ret: number, argument: string, value: unknown, what: string): PageTableError {
    const code: PtErrno = errnoName(ret);
    return new PageTableError(code, argument, value, `${what} (${code})`);
  }
}

/** An optional gather argument must be an {@link IotlbGather}. */
function checkGather(gather: unknown): void {
  if (gather !== undefined && !(gather instanceof IotlbGather)) {
    fail("EINVAL", "gather", gather, "must be an IotlbGather");
  }
}
