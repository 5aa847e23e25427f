import { PAGES_PER_REGION } from "../constants.js";

/** Entry flag bits as the store keeps them (the raw entry's single-bit fields). */
export const F_ASSIGNED = 1 << 0;
export const F_IMMUTABLE = 1 << 1;
export const F_VALIDATED = 1 << 2;
export const F_VMSA = 1 << 3;

/**
 * How a 2M region is held. Most of a host is untouched hypervisor memory, most of
 * a confidential VM is 2M private regions: both cost one small record. Only a
 * region that is smashed or mixed holds its 512 4K entries, in a pooled slab slot
 * that goes back to the pool when the region becomes uniform again.
 */
export const RegionMode = {
  /** All 512 entries are the all-zero hypervisor entry (4K, not assigned). */
  UNTOUCHED: 0,
  /** One 2M entry at the region's first page rules all 512 pages. */
  LARGE: 1,
  /** 512 individual 4K entries, in slab slot `slot[rec]`. */
  SMALL: 2,
} as const;

const CHUNK_REGIONS_LG2 = 9; // one directory slot per 1 GiB: 512 regions
const CHUNK_REGIONS = 1 << CHUNK_REGIONS_LG2;

/**
 * The RMP's storage: a directory with one slot per GiB of host memory, chunks of
 * 512 region records allocated the first time something in that GiB changes, and
 * a slab of 4K entries for SMALL regions. Every field lives in a typed array, so
 * a DMA check reads a directory slot, a region record and at most one slab entry.
 */
export class RmpStore {
  /** 2M regions the host has. */
  readonly regionCount: number;
  /** The `trustedDmaRequiresValidated` switch, kept here for the DMA check's sake. */
  requireValidated = false;
  /** Per GiB: the chunk holding its region records, or -1. */
  readonly dir: Int32Array;

  // Region records: index = chunk * 512 + region % 512.
  /**
   * Mode (bits 1:0), flags (bits 9:2) and ASID (bits 19:10) of a region in one
   * word, so that a DMA check on a 2M entry reads the directory, this word and
   * the GFN: three loads.
   */
  meta = new Uint32Array(0);
  /** GFN of the region's first page (LARGE). */
  gfn = new Float64Array(0);
  /** VMPL1..3 permission masks, a byte each (LARGE). */
  perms = new Uint32Array(0);
  /** Slab slot of a SMALL region. */
  slot = new Int32Array(0);
  /** Assigned 4K entries of a SMALL region (the raw entry's subpage_count). */
  assigned4k = new Uint16Array(0);
  /** Entries of a SMALL region that are not the all-zero entry. */
  nonDefault = new Uint16Array(0);
  private chunks = 0;

  // Slab of 4K entries: index = slot * 512 + page % 512.
  /** Flags (bits 9:2) and ASID (bits 19:10) of a 4K entry in one word. */
  sMeta = new Uint32Array(0);
  sGfn = new Float64Array(0);
  sPerms = new Uint32Array(0);
  private slots = 0;
  private readonly freeSlots: number[] = [];

  constructor(regionCount: number) {
    this.regionCount = regionCount;
    this.dir = new Int32Array(Math.ceil(regionCount / CHUNK_REGIONS)).fill(-1);
  }

  /** The record index of a region, or -1 when its GiB was never touched. */
  recordOf(region: number): number {
    const c = this.dir[region >>> CHUNK_REGIONS_LG2]!;
    return c < 0 ? -1 : (c << CHUNK_REGIONS_LG2) | (region & (CHUNK_REGIONS - 1));
  }

  /** The record index of a region, allocating its chunk if needed. */
  ensureRecord(region: number): number {
    const d = region >>> CHUNK_REGIONS_LG2;
    let c = this.dir[d]!;
    if (c < 0) {
      c = this.chunks++;
      this.growRecords(this.chunks * CHUNK_REGIONS);
      this.dir[d] = c;
    }
    return (c << CHUNK_REGIONS_LG2) | (region & (CHUNK_REGIONS - 1));
  }

  /** Slab index of page `page` of a SMALL region record. */
  slabIndex(rec: number, page: number): number {
    return this.slot[rec]! * PAGES_PER_REGION + (page & (PAGES_PER_REGION - 1));
  }

  /** The {@link RegionMode} of a region record. */
  modeAt(rec: number): number {
    return this.meta[rec]! & 3;
  }
  /** The flags of a region's 2M entry. */
  flagsAt(rec: number): number {
    return (this.meta[rec]! >>> 2) & 0xff;
  }
  /** The ASID of a region's 2M entry. */
  asidAt(rec: number): number {
    return this.meta[rec]! >>> 10;
  }
  /** Replaces the flags of a region's 2M entry. */
  setFlagsAt(rec: number, flags: number): void {
    this.meta[rec] = (this.meta[rec]! & ~(0xff << 2)) | (flags << 2);
  }
  /** The flags of a slab entry. */
  sFlagsAt(i: number): number {
    return (this.sMeta[i]! >>> 2) & 0xff;
  }
  /** The ASID of a slab entry. */
  sAsidAt(i: number): number {
    return this.sMeta[i]! >>> 10;
  }
  /** Replaces the flags of a slab entry. */
  setSFlagsAt(i: number, flags: number): void {
    this.sMeta[i] = (this.sMeta[i]! & ~(0xff << 2)) | (flags << 2);
  }

  private setMeta(rec: number, mode: number, flags: number, asid: number): void {
    this.meta[rec] = mode | (flags << 2) | (asid << 10);
  }

  /**
   * Turns a region into SMALL: 512 entries, each copying the LARGE entry (GFN
   * advancing page by page: what PSMASH writes) or all-zero for an UNTOUCHED one.
   */
  expand(rec: number): void {
    const mode = this.modeAt(rec);
    if (mode === RegionMode.SMALL) return;
    let s = this.freeSlots.pop();
    if (s === undefined) {
      s = this.slots++;
      this.growSlab(this.slots * PAGES_PER_REGION);
    }
    const base = s * PAGES_PER_REGION;
    if (mode === RegionMode.LARGE) {
      const f = this.flagsAt(rec);
      const a = this.asidAt(rec);
      const g = this.gfn[rec]!;
      const p = this.perms[rec]!;
      const m = (f << 2) | (a << 10);
      for (let i = 0; i < PAGES_PER_REGION; i++) {
        this.sMeta[base + i] = m;
        this.sGfn[base + i] = f & F_ASSIGNED ? g + i : 0;
        this.sPerms[base + i] = p;
      }
      this.assigned4k[rec] = f & F_ASSIGNED ? PAGES_PER_REGION : 0;
      this.nonDefault[rec] = f !== 0 || a !== 0 || g !== 0 || p !== 0 ? PAGES_PER_REGION : 0;
    } else {
      this.sMeta.fill(0, base, base + PAGES_PER_REGION);
      this.sGfn.fill(0, base, base + PAGES_PER_REGION);
      this.sPerms.fill(0, base, base + PAGES_PER_REGION);
      this.assigned4k[rec] = 0;
      this.nonDefault[rec] = 0;
    }
    this.slot[rec] = s;
    this.clearLarge(rec);
    this.setMeta(rec, RegionMode.SMALL, 0, 0);
  }

  /** Makes a region LARGE with the given 2M entry, releasing its slab slot. */
  setLarge(rec: number, flags: number, asid: number, gfn: number, perms: number): void {
    this.releaseSlot(rec);
    this.setMeta(rec, RegionMode.LARGE, flags, asid);
    this.gfn[rec] = gfn;
    this.perms[rec] = perms;
  }

  /** Writes one 4K entry of a SMALL region, keeping its counters. */
  setSmall(
    rec: number,
    page: number,
    flags: number,
    asid: number,
    gfn: number,
    perms: number,
  ): void {
    const i = this.slabIndex(rec, page);
    const wasAssigned = (this.sFlagsAt(i) & F_ASSIGNED) !== 0;
    const wasDefault = this.isDefault(i);
    this.sMeta[i] = (flags << 2) | (asid << 10);
    this.sGfn[i] = gfn;
    this.sPerms[i] = perms;
    const isAssigned = (flags & F_ASSIGNED) !== 0;
    if (wasAssigned !== isAssigned)
      this.assigned4k[rec] = this.assigned4k[rec]! + (isAssigned ? 1 : -1);
    const isDefault = this.isDefault(i);
    if (wasDefault !== isDefault)
      this.nonDefault[rec] = this.nonDefault[rec]! + (isDefault ? -1 : 1);
  }

  /**
   * A SMALL region whose 512 entries are all the zero entry goes back to
   * UNTOUCHED, so memory follows what is assigned or smashed, not what was.
   */
  compact(rec: number): void {
    if (this.modeAt(rec) === RegionMode.SMALL && this.nonDefault[rec] === 0) {
      this.releaseSlot(rec);
      this.setMeta(rec, RegionMode.UNTOUCHED, 0, 0);
    }
  }

  /** Makes a region UNTOUCHED. */
  setUntouched(rec: number): void {
    this.releaseSlot(rec);
    this.clearLarge(rec);
    this.setMeta(rec, RegionMode.UNTOUCHED, 0, 0);
  }

  private isDefault(i: number): boolean {
    return this.sMeta[i] === 0 && this.sGfn[i] === 0 && this.sPerms[i] === 0;
  }

  private clearLarge(rec: number): void {
    this.gfn[rec] = 0;
    this.perms[rec] = 0;
  }

  private releaseSlot(rec: number): void {
    if (this.modeAt(rec) !== RegionMode.SMALL) return;
    this.freeSlots.push(this.slot[rec]!);
    this.slot[rec] = -1;
    this.assigned4k[rec] = 0;
    this.nonDefault[rec] = 0;
  }

  /** Regions held LARGE, SMALL, and slab slots in use. */
  counts(): { large: number; small: number; slotsInUse: number; chunks: number } {
    let large = 0;
    let small = 0;
    const n = this.chunks * CHUNK_REGIONS;
    for (let r = 0; r < n; r++) {
      const m = this.meta[r]! & 3;
      if (m === RegionMode.LARGE) large++;
      else if (m === RegionMode.SMALL) small++;
    }
    return { large, small, slotsInUse: this.slots - this.freeSlots.length, chunks: this.chunks };
  }

  /** Bytes the model's typed arrays occupy. */
  bytesUsed(): number {
    return (
      this.dir.byteLength +
      this.meta.byteLength +
      this.gfn.byteLength +
      this.perms.byteLength +
      this.slot.byteLength +
      this.assigned4k.byteLength +
      this.nonDefault.byteLength +
      this.sMeta.byteLength +
      this.sGfn.byteLength +
      this.sPerms.byteLength
    );
  }

  /** A deep copy (simulations and explorers copy state). */
  clone(): RmpStore {
    const c = new RmpStore(this.regionCount);
    c.requireValidated = this.requireValidated;
    c.dir.set(this.dir);
    c.meta = this.meta.slice();
    c.gfn = this.gfn.slice();
    c.perms = this.perms.slice();
    c.slot = this.slot.slice();
    c.assigned4k = this.assigned4k.slice();
    c.nonDefault = this.nonDefault.slice();
    c.chunks = this.chunks;
    c.sMeta = this.sMeta.slice();
    c.sGfn = this.sGfn.slice();
    c.sPerms = this.sPerms.slice();
    c.slots = this.slots;
    c.freeSlots.push(...this.freeSlots);
    return c;
  }

  /** Chunks allocated so far (each holds 512 region records). */
  get chunkCount(): number {
    return this.chunks;
  }

  private growRecords(n: number): void {
    if (n <= this.meta.length) return;
    const cap = Math.max(n, this.meta.length * 2);
    this.meta = grow(this.meta, cap);
    this.gfn = grow(this.gfn, cap);
    this.perms = grow(this.perms, cap);
    const slot = new Int32Array(cap).fill(-1);
    slot.set(this.slot);
    this.slot = slot;
    this.assigned4k = grow(this.assigned4k, cap);
    this.nonDefault = grow(this.nonDefault, cap);
  }

  private growSlab(n: number): void {
    if (n <= this.sMeta.length) return;
    const cap = Math.max(n, this.sMeta.length * 2);
    this.sMeta = grow(this.sMeta, cap);
    this.sGfn = grow(this.sGfn, cap);
    this.sPerms = grow(this.sPerms, cap);
  }
}

function grow<T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}
