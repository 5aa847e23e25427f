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
  /** 512 individual 4K entries, in the slab slot named by the record's second word. */
  SMALL: 2,
} as const;

/*
 * Layout. What the DMA check reads is in two Int32Arrays, and at each level it is
 * one or two adjacent words, so a check touches one cache line per level:
 *
 * `tab`, words [0, dirWords): the directory, one word per GiB (rounded up to 1024
 *   words): the word offset in `tab` of that GiB's 512 region records, or 0 when
 *   the GiB was never touched.
 * `tab`, after the directory, 1024 words per touched GiB: its region records, two
 *   words each (record r of a chunk at offset c: words c + 2r and c + 2r + 1):
 *     word 0: mode (bits 1:0), then
 *             LARGE, UNTOUCHED: flags (bits 9:2) | ASID (bits 19:10) of the 2M entry
 *             SMALL: uniform (bit 2) | GFN bits 38:20 of its assigned 4K entries
 *             (bits 21:3), valid when uniform | all 512 entries assigned (bit 22)
 *     word 1: LARGE: the 2M entry's GFN / 512 (GPA bits 50:21; a 2M entry's GPA is
 *             2M aligned); SMALL: its slab slot; UNTOUCHED: 0
 * `ent`, 512 words per slab slot: the 4K entries of a SMALL region, one word each
 *   (entry p of slot s: word 512s + p):
 *     assigned (bit 0) | validated (bit 1) | ASID (bits 11:2) | GFN bits 19:0 (31:12)
 *   Slots number at most the host's regions (2^21), so 512s + p stays an int32.
 *   Guests map a 2M host region at one 4 GiB-aligned window of GPAs (a PSMASHed 2M
 *   entry always does): the rest of the GFN then comes from the record, and a 4K
 *   check reads one word of the slab. Otherwise it reads `sCold` too.
 *
 * Cold fields: per 4K entry `sCold` (GFN bits 38:20 in bits 18:0, Immutable bit 19,
 * VMSA bit 20) and the VMPL1..3 permissions (5 bits each, packed into 16), the
 * same permissions per record, and per slot the assigned, non-default and
 * non-uniform entry counts.
 */
/** Mask of the mode in a record's word 0. */
export const W_MODE = 3;
/** Assigned, in a LARGE record's word 0. */
export const W_ASSIGNED = F_ASSIGNED << 2;
/** Validated, in a LARGE record's word 0. */
export const W_VALIDATED = F_VALIDATED << 2;
/** Shift of the ASID in a LARGE record's word 0. */
export const W_ASID_SHIFT = 10;
/** A SMALL record's assigned entries all have the GFN bits 38:20 in its word 0. */
export const W_UNIFORM = 1 << 2;
/** Shift of those GFN bits in a SMALL record's word 0. */
export const W_GFN_HI_SHIFT = 3;
/**
 * A SMALL record's 512 entries are all assigned (a PSMASHed region until a page
 * leaves): a 2M leaf over it is refused without reading the entry.
 */
export const W_FULL = 1 << 22;
/** Assigned, in a 4K entry's word. */
export const E_ASSIGNED = 1 << 0;
/** Validated, in a 4K entry's word. */
export const E_VALIDATED = 1 << 1;
/** Shift of the ASID in a 4K entry's word. */
export const E_ASID_SHIFT = 2;
/** Shift of GFN bits 19:0 in a 4K entry's word. */
export const E_GFN_SHIFT = 12;
/** GFN bits 38:20 in `sCold`. */
export const C_GFN_HI = 0x7ffff;
const C_IMMUTABLE = 1 << 19;
const C_VMSA = 1 << 20;

const CHUNK_REGIONS_LG2 = 9; // one directory slot per 1 GiB: 512 regions
const CHUNK_REGIONS = 1 << CHUNK_REGIONS_LG2;
/** Words of a chunk of records. */
const CHUNK_WORDS = 2 * CHUNK_REGIONS;
const TWO_20 = 2 ** 20;

/** VMPL1..3 masks (a byte each, 5 bits used) packed into 15 bits, and back. */
function packPerms(p: number): number {
  return (p & 0x1f) | ((p >>> 3) & 0x3e0) | ((p >>> 6) & 0x7c00);
}
function unpackPerms(q: number): number {
  return (q & 0x1f) | ((q & 0x3e0) << 3) | ((q & 0x7c00) << 6);
}

/**
 * The RMP's storage: a directory with one word per GiB of host memory, chunks of
 * 512 region records allocated the first time something in that GiB changes, and
 * a slab of 4K entries for SMALL regions. Every field lives in a typed array, so
 * a DMA check reads a directory word, a region record (two adjacent words) and at
 * most one 4K entry word.
 */
export class RmpStore {
  // `declare`d fields are not defined (as undefined) before the constructor runs:
  // their first value sets their representation (an int, an Int32Array), so the
  // DMA check reads them without a type check.
  /** 2M regions the host has. */
  declare readonly regionCount: number;
  /**
   * The `trustedDmaRequiresValidated` switch for the DMA check: -1 (every bit) when
   * on, 0 when off, so that `~word & validatedMask & VALIDATED` is the test.
   */
  validatedMask = 0;
  /** Words of the directory at the start of {@link RmpStore.tab}. */
  declare readonly dirWords: number;
  /** The directory, then the region records (see the layout above). */
  declare tab: Int32Array;
  /** VMPL permissions of a region's 2M entry, packed (index = record). */
  perms = new Uint16Array(0);
  private chunks = 0;

  /** 4K entries of SMALL regions, one word each (see the layout above). */
  ent = new Int32Array(0);
  /** GFN bits 38:20, Immutable and VMSA of a 4K entry (index = slab index). */
  sCold = new Int32Array(0);
  /** VMPL permissions of a 4K entry, packed (index = slab index). */
  sPerms = new Uint16Array(0);
  /** Per slot: assigned 4K entries (the raw entry's subpage_count). */
  slotAssigned = new Uint16Array(0);
  /** Per slot: entries that are not the all-zero entry. */
  slotNonDefault = new Uint16Array(0);
  /** Per slot: assigned entries whose GFN bits 38:20 are not the record's. */
  slotNonUniform = new Uint16Array(0);
  private slots = 0;
  private readonly freeSlots: number[] = [];

  constructor(regionCount: number) {
    this.regionCount = regionCount | 0;
    // Rounded up to a chunk, so every chunk starts 1024-word aligned: the DMA check
    // finds a record with `|`, which needs no overflow check.
    this.dirWords = Math.ceil(regionCount / CHUNK_REGIONS / CHUNK_WORDS) * CHUNK_WORDS;
    this.tab = new Int32Array(this.dirWords);
  }

  /** The record index of a region, or -1 when its GiB was never touched. */
  recordOf(region: number): number {
    const c = this.tab[region >>> CHUNK_REGIONS_LG2]!;
    return c === 0 ? -1 : ((c - this.dirWords) >>> 1) | (region & (CHUNK_REGIONS - 1));
  }

  /** The record index of a region, allocating its chunk if needed. */
  ensureRecord(region: number): number {
    const d = region >>> CHUNK_REGIONS_LG2;
    if (this.tab[d] === 0) {
      this.growRecords(this.chunks + 1);
      this.tab[d] = this.dirWords + this.chunks * CHUNK_WORDS;
      this.chunks++;
    }
    return this.recordOf(region);
  }

  /** Offset in {@link RmpStore.tab} of a record's word 0. */
  private w(rec: number): number {
    return this.dirWords + 2 * rec;
  }

  /** The slab slot of a SMALL region record. */
  slotOf(rec: number): number {
    return this.tab[this.w(rec) + 1]!;
  }

  /** Slab index of page `page` of a SMALL region record. */
  slabIndex(rec: number, page: number): number {
    return this.slotOf(rec) * PAGES_PER_REGION + (page & (PAGES_PER_REGION - 1));
  }

  /** The {@link RegionMode} of a region record. */
  modeAt(rec: number): number {
    return this.tab[this.w(rec)]! & W_MODE;
  }
  /** The flags of a region's 2M entry (0 unless LARGE). */
  flagsAt(rec: number): number {
    const w0 = this.tab[this.w(rec)]!;
    return (w0 & W_MODE) === RegionMode.LARGE ? (w0 >>> 2) & 0xff : 0;
  }
  /** The ASID of a region's 2M entry (0 unless LARGE). */
  asidAt(rec: number): number {
    const w0 = this.tab[this.w(rec)]!;
    return (w0 & W_MODE) === RegionMode.LARGE ? (w0 >>> W_ASID_SHIFT) & 0x3ff : 0;
  }
  /** The GFN of a region's 2M entry (0 unless LARGE). */
  gfnAt(rec: number): number {
    return this.modeAt(rec) === RegionMode.LARGE
      ? this.tab[this.w(rec) + 1]! * PAGES_PER_REGION
      : 0;
  }
  /** The VMPL permissions of a region's 2M entry. */
  permsAt(rec: number): number {
    return unpackPerms(this.perms[rec]!);
  }
  /** Replaces the flags of a LARGE region's 2M entry. */
  setFlagsAt(rec: number, flags: number): void {
    const o = this.w(rec);
    this.tab[o] = (this.tab[o]! & ~(0xff << 2)) | (flags << 2);
  }
  /** Replaces the VMPL permissions of a region's 2M entry. */
  setPermsAt(rec: number, perms: number): void {
    this.perms[rec] = packPerms(perms);
  }
  /** Assigned 4K entries of a region (0 unless SMALL). */
  assigned4kAt(rec: number): number {
    return this.modeAt(rec) === RegionMode.SMALL ? this.slotAssigned[this.slotOf(rec)]! : 0;
  }

  /** The flags of a slab entry. */
  sFlagsAt(i: number): number {
    // E_ASSIGNED (bit 0) and E_VALIDATED (bit 1) to bits 0 and 2; C_IMMUTABLE (19) and
    // C_VMSA (20) to bits 1 and 3. Literals: this inlines into other modules' code.
    const e = this.ent[i]!;
    const c = this.sCold[i]!;
    return (e & 1) | ((e & 2) << 1) | ((c >>> 18) & 2) | ((c >>> 17) & 8);
  }
  /** Whether a slab entry is Immutable. */
  sImmutableAt(i: number): boolean {
    return (this.sCold[i]! & C_IMMUTABLE) !== 0;
  }
  /** The ASID of a slab entry. */
  sAsidAt(i: number): number {
    return (this.ent[i]! >>> E_ASID_SHIFT) & 0x3ff;
  }
  /** The GFN of a slab entry. */
  sGfnAt(i: number): number {
    return (this.sCold[i]! & C_GFN_HI) * TWO_20 + (this.ent[i]! >>> E_GFN_SHIFT);
  }
  /** The VMPL permissions of a slab entry. */
  sPermsAt(i: number): number {
    return unpackPerms(this.sPerms[i]!);
  }
  /**
   * Replaces the Validated, Immutable and VMSA flags of a slab entry (what PVALIDATE
   * and RMPADJUST change). Assigned is kept: changing it is {@link RmpStore.setSmall}'s.
   */
  setSFlagsAt(i: number, flags: number): void {
    const e = this.ent[i]!;
    this.ent[i] = (e & ~E_VALIDATED) | (flags & F_VALIDATED ? E_VALIDATED : 0);
    const c = this.sCold[i]! & C_GFN_HI;
    this.sCold[i] = c | (flags & F_IMMUTABLE ? C_IMMUTABLE : 0) | (flags & F_VMSA ? C_VMSA : 0);
  }
  /** Replaces the VMPL permissions of a slab entry. */
  setSPermsAt(i: number, perms: number): void {
    this.sPerms[i] = packPerms(perms);
  }
  /** Whether a slab entry is the all-zero hypervisor entry. */
  isDefault(i: number): boolean {
    return this.ent[i] === 0 && this.sCold[i] === 0 && this.sPerms[i] === 0;
  }

  private setRecord(rec: number, mode: number, flags: number, asid: number, word1: number): void {
    const o = this.w(rec);
    this.tab[o] = mode | (flags << 2) | (asid << W_ASID_SHIFT);
    this.tab[o + 1] = word1;
  }

  /** A SMALL record: its slot, and whether its assigned entries share GFN bits 38:20 `hi`. */
  private setSmallRecord(rec: number, slot: number, uniform: boolean, hi: number): void {
    const o = this.w(rec);
    const full = this.slotAssigned[slot] === PAGES_PER_REGION ? W_FULL : 0;
    this.tab[o] = RegionMode.SMALL | (uniform ? W_UNIFORM : 0) | (hi << W_GFN_HI_SHIFT) | full;
    this.tab[o + 1] = slot;
  }

  private writeEntry(i: number, flags: number, asid: number, gfn: number, perms: number): void {
    // The inverse of sFlagsAt's bit moves; GFN bits 19:0 as (gfn mod 2^32) & 0xfffff
    // and bits 38:20 as floor(gfn / 2^20), both exact for a GFN below 2^39.
    this.ent[i] = (flags & 1) | ((flags >>> 1) & 2) | (asid << 2) | (((gfn >>> 0) & 0xfffff) << 12);
    this.sCold[i] = ((gfn * 9.5367431640625e-7) >>> 0) | ((flags & 2) << 18) | ((flags & 8) << 17);
    this.sPerms[i] = packPerms(perms);
  }

  /**
   * Turns a region into SMALL: 512 entries, each copying the LARGE entry (GFN
   * advancing page by page: what PSMASH writes) or all-zero for an UNTOUCHED one.
   */
  expand(rec: number): void {
    const mode = this.modeAt(rec);
    if (mode === RegionMode.SMALL) return;
    let s: number;
    if (this.freeSlots.length > 0) {
      s = this.freeSlots.pop()!;
    } else {
      this.growSlab(this.slots + 1); // may throw (out of memory): nothing changed yet
      s = this.slots++;
    }
    const base = s * PAGES_PER_REGION;
    let hi = 0;
    if (mode === RegionMode.LARGE) {
      const f = this.flagsAt(rec);
      const a = this.asidAt(rec);
      const assigned = (f & F_ASSIGNED) !== 0;
      const g = assigned ? this.gfnAt(rec) : 0; // an unassigned entry's GFN is 0
      const p = this.perms[rec]!;
      // A 2M-aligned GFN plus 0..511 never carries into bit 20: one `hi` for all.
      hi = Math.floor(g / TWO_20);
      this.writeEntry(base, f, a, g, unpackPerms(p));
      const e0 = this.ent[base]!;
      const step = assigned ? 1 << E_GFN_SHIFT : 0;
      const ent = this.ent;
      for (let k = 1; k < PAGES_PER_REGION; k++) ent[base + k] = e0 + k * step;
      this.sCold.fill(this.sCold[base]!, base, base + PAGES_PER_REGION);
      this.sPerms.fill(p, base, base + PAGES_PER_REGION);
      this.slotAssigned[s] = assigned ? PAGES_PER_REGION : 0;
      this.slotNonDefault[s] = f !== 0 || a !== 0 || g !== 0 || p !== 0 ? PAGES_PER_REGION : 0;
    } else {
      this.ent.fill(0, base, base + PAGES_PER_REGION);
      this.sCold.fill(0, base, base + PAGES_PER_REGION);
      this.sPerms.fill(0, base, base + PAGES_PER_REGION);
      this.slotAssigned[s] = 0;
      this.slotNonDefault[s] = 0;
    }
    this.slotNonUniform[s] = 0;
    this.perms[rec] = 0;
    this.setSmallRecord(rec, s, true, hi);
  }

  /**
   * Makes a region LARGE with the given 2M entry, releasing its slab slot. `gfn`
   * is 2M aligned (a multiple of 512) or 0, as RMPUPDATE and unsmash guarantee.
   */
  setLarge(rec: number, flags: number, asid: number, gfn: number, perms: number): void {
    this.releaseSlot(rec);
    this.setRecord(rec, RegionMode.LARGE, flags, asid, gfn / PAGES_PER_REGION);
    this.perms[rec] = packPerms(perms);
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
    // Kept small so RMPUPDATE inlines it; the record's bookkeeping is out of line and
    // runs only when an entry's GFN bits are not the record's, or when the region
    // goes to or from one assigned entry, or to or from all 512.
    const o = this.w(rec);
    const s = this.tab[o + 1]!;
    const i = s * PAGES_PER_REGION + (page & (PAGES_PER_REGION - 1));
    const e0 = this.ent[i]!;
    const c0 = this.sCold[i]!;
    const wasDefault = (e0 | c0 | this.sPerms[i]!) === 0;
    const was = e0 & E_ASSIGNED;
    const wasHi = c0 & C_GFN_HI;
    this.writeEntry(i, flags, asid, gfn, perms);
    if (wasDefault !== ((this.ent[i]! | this.sCold[i]! | this.sPerms[i]!) === 0))
      this.slotNonDefault[s] = this.slotNonDefault[s]! + (wasDefault ? 1 : -1);
    const is = flags & F_ASSIGNED;
    let assigned = this.slotAssigned[s]!;
    if (was !== is) {
      assigned += is ? 1 : -1;
      this.slotAssigned[s] = assigned;
    }
    const hi = this.sCold[i]! & C_GFN_HI;
    const hiBase = (this.tab[o]! >>> W_GFN_HI_SHIFT) & C_GFN_HI;
    const wasOdd = was !== 0 && wasHi !== hiBase;
    const isOdd = is !== 0 && hi !== hiBase;
    if (assigned <= 1 || wasOdd || isOdd || (was !== is && assigned >= PAGES_PER_REGION - 1))
      this.trackGfnHigh(rec, s, wasOdd, isOdd, assigned, is, hi);
  }

  /**
   * The record's GFN bits 38:20: those of the only assigned entry when there is one
   * (a region assigned page by page takes its first page's), else unchanged, with
   * a count of the assigned entries that differ from them. `wasOdd` and `isOdd`: the
   * entry just written differed before, differs now; `is`, `hi`: it is assigned now,
   * with GFN bits `hi`; `assigned`: the slot's assigned entries now.
   */
  private trackGfnHigh(
    rec: number,
    s: number,
    wasOdd: boolean,
    isOdd: boolean,
    assigned: number,
    is: number,
    hi: number,
  ): void {
    let odd = this.slotNonUniform[s]!;
    let base = (this.tab[this.w(rec)]! >>> W_GFN_HI_SHIFT) & C_GFN_HI;
    if (assigned === 0) {
      odd = 0;
    } else if (is && assigned === 1) {
      odd = 0;
      base = hi;
    } else {
      odd += (isOdd ? 1 : 0) - (wasOdd ? 1 : 0);
    }
    this.slotNonUniform[s] = odd;
    this.setSmallRecord(rec, s, odd === 0, base);
  }

  /**
   * A SMALL region whose 512 entries are all the zero entry goes back to
   * UNTOUCHED, so memory follows what is assigned or smashed, not what was.
   */
  compact(rec: number): void {
    if (this.modeAt(rec) === RegionMode.SMALL && this.slotNonDefault[this.slotOf(rec)] === 0) {
      this.setUntouched(rec);
    }
  }

  /** Makes a region UNTOUCHED. */
  setUntouched(rec: number): void {
    this.releaseSlot(rec);
    this.perms[rec] = 0;
    this.setRecord(rec, RegionMode.UNTOUCHED, 0, 0, 0);
  }

  private releaseSlot(rec: number): void {
    if (this.modeAt(rec) !== RegionMode.SMALL) return;
    const s = this.slotOf(rec);
    this.freeSlots.push(s);
    this.slotAssigned[s] = 0;
    this.slotNonDefault[s] = 0;
    this.slotNonUniform[s] = 0;
    this.tab[this.w(rec) + 1] = 0;
  }

  /** Regions held LARGE, SMALL, and slab slots in use. */
  counts(): { large: number; small: number; slotsInUse: number; chunks: number } {
    let large = 0;
    let small = 0;
    const end = this.dirWords + this.chunks * CHUNK_WORDS;
    for (let o = this.dirWords; o < end; o += 2) {
      const m = this.tab[o]! & W_MODE;
      if (m === RegionMode.LARGE) large++;
      else if (m === RegionMode.SMALL) small++;
    }
    return { large, small, slotsInUse: this.slots - this.freeSlots.length, chunks: this.chunks };
  }

  /** Bytes the model's typed arrays occupy. */
  bytesUsed(): number {
    return (
      this.tab.byteLength +
      this.perms.byteLength +
      this.ent.byteLength +
      this.sCold.byteLength +
      this.sPerms.byteLength +
      this.slotAssigned.byteLength +
      this.slotNonDefault.byteLength +
      this.slotNonUniform.byteLength
    );
  }

  /** A deep copy (simulations and explorers copy state). */
  clone(): RmpStore {
    const c = new RmpStore(this.regionCount);
    c.validatedMask = this.validatedMask;
    c.tab = this.tab.slice();
    c.perms = this.perms.slice();
    c.chunks = this.chunks;
    c.ent = this.ent.slice();
    c.sCold = this.sCold.slice();
    c.sPerms = this.sPerms.slice();
    c.slotAssigned = this.slotAssigned.slice();
    c.slotNonDefault = this.slotNonDefault.slice();
    c.slotNonUniform = this.slotNonUniform.slice();
    c.slots = this.slots;
    c.freeSlots.push(...this.freeSlots);
    return c;
  }

  /** Chunks allocated so far (each holds 512 region records). */
  get chunkCount(): number {
    return this.chunks;
  }

  /** Room for `n` chunks of records (doubling: the records are small). */
  private growRecords(n: number): void {
    const have = this.perms.length / CHUNK_REGIONS;
    if (n <= have) return;
    const cap = Math.max(n, 2 * have);
    const tab = grow(this.tab, this.dirWords + cap * CHUNK_WORDS);
    const perms = grow(this.perms, cap * CHUNK_REGIONS);
    this.tab = tab;
    this.perms = perms;
  }

  /**
   * Room for `n` slots. The slab is the model's largest array, so it grows by half
   * (not double) each time: at most a third of it is slack.
   */
  private growSlab(n: number): void {
    const have = this.slotAssigned.length;
    if (n <= have) return;
    const cap = Math.min(Math.max(n, Math.ceil(have * 1.5)), this.regionCount);
    const ent = grow(this.ent, cap * PAGES_PER_REGION);
    const sCold = grow(this.sCold, cap * PAGES_PER_REGION);
    const sPerms = grow(this.sPerms, cap * PAGES_PER_REGION);
    const slotAssigned = grow(this.slotAssigned, cap);
    const slotNonDefault = grow(this.slotNonDefault, cap);
    const slotNonUniform = grow(this.slotNonUniform, cap);
    this.ent = ent;
    this.sCold = sCold;
    this.sPerms = sPerms;
    this.slotAssigned = slotAssigned;
    this.slotNonDefault = slotNonDefault;
    this.slotNonUniform = slotNonUniform;
  }
}

function grow<T extends Uint16Array | Int32Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}
