import { fail } from "../errors.js";

/** Bytes of one table page: 512 entries of 64 bits. */
export const TABLE_PAGE_BYTES = 4096;
const INV_PAGE_BYTES = 1 / 4096;

/** 32-bit words in one table page. */
export const TABLE_PAGE_WORDS = 1024;

/** Options of {@link TableMemory}. */
export interface TableMemoryOptions {
  /**
   * Physical address of the first table page. Table pages get physical addresses
   * because entries store them and hardware models resolve them; keep this region
   * apart from the memory the tables map. Default 2^44 (16 TiB).
   */
  basePa?: number;
  /** Most pages that may be in use at once; allocation beyond fails with ENOMEM. Default unlimited. */
  limitPages?: number;
}

/**
 * The page allocator behind IO page tables: the model of iommu_alloc_pages_node_sz()
 * and of the NR_IOMMU_PAGES / NR_SECONDARY_PAGETABLE counters.
 *
 * Every table page is a zeroed `Uint32Array` of 1024 words (512 entries stored as
 * lo/hi word pairs) with a physical address. Several tables (domains) may share one
 * allocator, as they share a machine's memory. The counters make leaks visible, and
 * {@link TableMemory.failNth} makes the n-th allocation fail, like the kernel's
 * fail-nth fault injection.
 */
export class TableMemory {
  /** Physical address of slot 0. */
  readonly basePa: number;
  private readonly baseFrame: number;
  /** baseFrame split as PtFormat.tableFrameLo/Hi split a frame: bits 19:0 and 39:20. */
  private readonly baseFrameLo: number;
  private readonly baseFrameHi: number;
  private readonly limit: number;
  private readonly pages: (Uint32Array | undefined)[] = [];
  private readonly live: Uint8Array[] = [];
  private readonly freeSlots: number[] = [];
  private failAt = 0;
  private allocCalls = 0;
  private _inUse = 0;
  private _peak = 0;
  private _allocs = 0;
  private _frees = 0;

  constructor(options: TableMemoryOptions = {}) {
    const base = options.basePa ?? 2 ** 44;
    if (!Number.isSafeInteger(base) || base < 0 || base % TABLE_PAGE_BYTES !== 0) {
      fail("EINVAL", "basePa", base, "must be a 4 KiB aligned non-negative integer");
    }
    const limit = options.limitPages ?? Number.POSITIVE_INFINITY;
    if (!(limit >= 0)) fail("EINVAL", "limitPages", limit, "must be >= 0");
    this.basePa = base;
    this.baseFrame = base / TABLE_PAGE_BYTES;
    // Small integers (`| 0`), so that the lookup is integer arithmetic.
    this.baseFrameLo = (this.baseFrame % 1048576) | 0;
    this.baseFrameHi = Math.floor(this.baseFrame / 1048576) | 0;
    this.limit = limit;
  }

  /** Table pages currently allocated. */
  get inUse(): number {
    return this._inUse;
  }
  /** Most pages ever allocated at once. */
  get peak(): number {
    return this._peak;
  }
  /** Successful allocations since creation. */
  get allocations(): number {
    return this._allocs;
  }
  /** Frees since creation. */
  get frees(): number {
    return this._frees;
  }
  /** Allocation attempts since the last {@link TableMemory.failNth} (successful or not). */
  get attempts(): number {
    return this.allocCalls;
  }

  /**
   * Make the n-th allocation attempt from now fail (1-based), once; 0 disarms.
   * Returns the previous setting. {@link TableMemory.failPending} tells afterwards
   * whether the n-th attempt was reached, like reading back /proc/.../fail-nth.
   */
  failNth(n: number): number {
    if (!Number.isInteger(n) || n < 0) fail("EINVAL", "n", n, "must be a non-negative integer");
    const prev = this.failAt;
    this.failAt = n;
    this.allocCalls = 0;
    return prev;
  }

  /** True while an armed failure has not been reached yet. */
  get failPending(): boolean {
    return this.failAt !== 0;
  }

  /**
   * Allocates a zeroed table page and returns its physical address, or -1 when
   * allocation fails (injected failure or the page limit): callers turn -1 into ENOMEM.
   */
  alloc(): number {
    this.allocCalls++;
    if (this.failAt !== 0 && this.allocCalls === this.failAt) {
      this.failAt = 0;
      return -1;
    }
    if (this._inUse >= this.limit) return -1;
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.pages.length;
      this.pages.push(new Uint32Array(TABLE_PAGE_WORDS));
    } else {
      (this.pages[slot] as Uint32Array).fill(0);
    }
    this.setLive(slot, 1);
    this._inUse++;
    this._allocs++;
    if (this._inUse > this._peak) this._peak = this._inUse;
    return (this.baseFrame + slot) * TABLE_PAGE_BYTES;
  }

  /** Returns a page to the allocator. Freeing a page that is not allocated throws EINVAL. */
  free(pa: number): void {
    const slot = this.slotOf(pa);
    if (slot < 0 || !this.isLiveSlot(slot)) {
      fail("EINVAL", "pa", pa, "is not an allocated table page (double free?)");
    }
    this.setLive(slot, 0);
    this.freeSlots.push(slot);
    this._inUse--;
    this._frees++;
  }

  /** The words of the table page at a physical address (allocated or not yet reused). */
  words(pa: number): Uint32Array {
    return this.pages[(pa * INV_PAGE_BYTES - this.baseFrame) | 0] as Uint32Array;
  }

  /** The words of the page holding frame number `frame` (pa / 4096). */
  wordsOfFrame(frame: number): Uint32Array {
    return this.pages[(frame - this.baseFrame) | 0] as Uint32Array;
  }

  /**
   * The words of the page at frame number `hi` * 2^20 + `lo`, the two 20-bit
   * halves `PtFormat.tableFrameLo/Hi` decode from a table entry. Same page as
   * `words(pa)` for that frame, found with small-integer arithmetic only, so a walk
   * that resolves tables this way allocates nothing.
   */
  wordsOfFrameParts(lo: number, hi: number): Uint32Array {
    // (frame - baseFrame) mod 2^32, as words() computes it from a physical address.
    return this.pages[
      (((hi - this.baseFrameHi) << 20) + (lo - this.baseFrameLo)) | 0
    ] as Uint32Array;
  }

  /** True when `pa` is the address of a page this allocator handed out and has not freed. */
  isLive(pa: number): boolean {
    const slot = this.slotOf(pa);
    return slot >= 0 && this.isLiveSlot(slot);
  }

  /** True when `pa` falls in a page this allocator manages (live or freed). */
  owns(pa: number): boolean {
    return this.slotOf(pa) >= 0;
  }

  private slotOf(pa: number): number {
    if (!Number.isInteger(pa) || pa % TABLE_PAGE_BYTES !== 0) return -1;
    const slot = pa / TABLE_PAGE_BYTES - this.baseFrame;
    return slot >= 0 && slot < this.pages.length ? slot : -1;
  }

  private isLiveSlot(slot: number): boolean {
    const chunk = this.live[slot >>> 12];
    return chunk !== undefined && chunk[slot & 4095] === 1;
  }

  private setLive(slot: number, v: 0 | 1): void {
    let chunk = this.live[slot >>> 12];
    if (chunk === undefined) {
      chunk = new Uint8Array(4096);
      this.live[slot >>> 12] = chunk;
    }
    chunk[slot & 4095] = v;
  }
}
