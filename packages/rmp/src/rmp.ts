import { checkCpuAccess, checkHostAccess } from "./check/cpu.js";
import { checkDmaTrusted, checkDmaTrustedBurst, checkDmaUntrusted } from "./check/dma.js";
import type { CpuVerdict, DmaVerdict } from "./check/verdict.js";
import {
  ASID_MAX,
  GPA_LIMIT,
  PAGES_PER_REGION,
  type PsmashRet,
  type PvalidateRet,
  RmpPageSize,
  type RmpUpdateRet,
} from "./constants.js";
import type { RmpEntry, RmpReadView, RmpState } from "./entry/entry.js";
import { type PageState, pageStateOf } from "./entry/page-state.js";
import { fail } from "./errors.js";
import { psmash } from "./instructions/psmash.js";
import { type PvalidateArgs, pvalidate } from "./instructions/pvalidate.js";
import { type RmpadjustArgs, rmpadjust } from "./instructions/rmpadjust.js";
import { rmpread } from "./instructions/rmpread.js";
import { rmpupdate } from "./instructions/rmpupdate.js";
import { type RegionUniformity, regionUniformity, unsmash } from "./instructions/unsmash.js";
import { DEFAULT_RMP_OPTIONS, type ResolvedRmpOptions, type RmpOptions } from "./options.js";
import {
  F_ASSIGNED,
  F_IMMUTABLE,
  F_VALIDATED,
  F_VMSA,
  RegionMode,
  RmpStore,
} from "./table/store.js";

/** What changed in the RMP, for IOTLB and visualisation models. */
export interface RmpChange {
  kind: "rmpupdate" | "psmash" | "unsmash" | "pvalidate" | "rmpadjust" | "hv-fixed" | "firmware";
  /** First host physical address affected. */
  spa: number;
  /** Bytes affected (4K or 2M). */
  length: number;
}

/** Called after every successful change. */
export type RmpListener = (change: RmpChange) => void;

/**
 * Decides whether an instruction finds its entry busy ("in use" by another
 * processor): return true to make RMPUPDATE or PSMASH fail with FAIL_INUSE, as a
 * concurrent update on the same 2M region does on a real machine.
 */
export type InUseHook = (
  spa: number,
  pageSize: RmpPageSize,
  instruction: "rmpupdate" | "psmash" | "unsmash",
) => boolean;

/** Counters of the model's own state and memory. */
export interface RmpStats {
  /** 2M regions held as one 2M entry (assigned or not). */
  regions2M: number;
  /** 2M regions held as 512 4K entries (smashed or mixed). */
  regionsSmall: number;
  /** Bytes the model's typed arrays occupy. */
  bytesUsed: number;
  /** 2M regions whose host direct map was split to 4K (adjust_direct_map). */
  directMapSplits: number;
  /** Linux helpers that gave up retrying a persistent FAIL_OVERLAP (the kernel would spin forever). */
  overlapLivelocks: number;
  /** Instructions executed, by name. */
  instructions: Record<string, number>;
}

/** The result of {@link Rmp.lookup}: the effective entry and the level of the entry ruling it. */
export interface RmpLookup {
  entry: RmpEntry;
  /** The size of the entry that rules this page (the 2M-aligned entry's page size). */
  level: RmpPageSize;
}

const INV_4K = 1 / 4096;
const INV_2M = 1 / 2 ** 21;
const PHYS_LIMIT = 2 ** 52;

/**
 * AMD SEV-SNP's reverse map table: one entry per 4 KiB host page, a 2M entry at
 * the 2M-aligned page ruling its 512 pages; the instructions that change it
 * (RMPUPDATE, PSMASH, PVALIDATE, RMPADJUST, RMPREAD) with their exact status
 * codes; and the verdicts the CPU and the IOMMU act on.
 *
 * Instructions take host physical byte addresses (SPA) and return the
 * hardware's status code. A typed {@link RmpError} is only for what the hardware
 * could not be asked at all.
 */
export class Rmp {
  /** The resolved options. */
  declare readonly options: ResolvedRmpOptions;
  // Not defined before the constructor assigns it, so the DMA check knows its class.
  /** @internal */ declare readonly store: RmpStore;
  /** @internal */ inUseHook: InUseHook | null = null;
  /** @internal */ readonly busyRegions = new Set<number>();
  /** @internal */ readonly busyPages = new Set<number>();
  /** @internal */ readonly directMapSplit = new Set<number>();
  /** @internal */ overlapLivelocks = 0;
  /** @internal */ readonly counts: Record<string, number> = {};
  private readonly listeners: RmpListener[] = [];

  constructor(options: RmpOptions = {}) {
    const o = { ...DEFAULT_RMP_OPTIONS, ...stripUndefined(options) };
    if (!Number.isSafeInteger(o.hostBytes) || o.hostBytes <= 0 || o.hostBytes % 2 ** 21 !== 0) {
      fail("EINVAL", "hostBytes", o.hostBytes, "must be a positive multiple of 2 MiB");
    }
    if (o.hostBytes > 4 * 2 ** 40) fail("ERANGE", "hostBytes", o.hostBytes, "is beyond 4 TiB");
    if (!Number.isInteger(o.overlapRetryLimit) || o.overlapRetryLimit < 0) {
      fail("EINVAL", "overlapRetryLimit", o.overlapRetryLimit, "must be a non-negative integer");
    }
    this.options = o;
    this.store = new RmpStore(o.hostBytes / 2 ** 21);
    this.store.validatedMask = o.trustedDmaRequiresValidated ? -1 : 0;
  }

  /** Bytes of host memory the RMP covers. */
  get hostBytes(): number {
    return this.options.hostBytes;
  }

  // ---- instructions -------------------------------------------------------

  /** RMPUPDATE: write the entry of the page (or 2M region) at `spa`. Returns an {@link RmpUpdateRet} code. */
  rmpupdate(spa: number, state: RmpState): number {
    return rmpupdate(this, spa, state);
  }

  /** PSMASH: split the 2M entry at the 2M-aligned `spa` into 512 4K entries. Returns a {@link PsmashRet} code. */
  psmash(spa: number): number {
    return psmash(this, spa);
  }

  /** PVALIDATE (guest): set or clear Validated. Returns a {@link PvalidateRet} code (or an #NPF value). */
  pvalidate(spa: number, args: PvalidateArgs): number {
    return pvalidate(this, spa, args);
  }

  /** RMPADJUST (guest, VMPL0): set a lower VMPL's permissions and the VMSA bit. Returns a {@link PvalidateRet} code. */
  rmpadjust(spa: number, args: RmpadjustArgs): number {
    return rmpadjust(this, spa, args);
  }

  /** RMPREAD: the architectural view of the entry at `spa` (status 0), or FAIL_INPUT with no view. */
  rmpread(spa: number): { ret: number; entry: RmpReadView | null } {
    return rmpread(this, spa);
  }

  /**
   * The model's inference for TMPM's PUNSMASH_IO (not an architectural
   * instruction): rebuild one 2M entry from 512 uniform, contiguous 4K entries.
   * Returns a {@link PsmashRet}-style code: FAIL_INPUT when the region is not
   * uniform (see {@link Rmp.regionUniformity}).
   */
  unsmash(spa: number): number {
    return unsmash(this, spa);
  }

  /** Whether the 2M region at `spa` could become one 2M entry, and if not why. */
  regionUniformity(spa: number): RegionUniformity {
    return regionUniformity(this, spa);
  }

  // ---- checks (hot paths: no allocation) -------------------------------------

  /**
   * The IOMMU's check of a trusted (T=1, TDISP) DMA to host page `spa` through an
   * IO leaf of 2^leafLg2 bytes, for the device's guest `asid`, at IOVA `iova`
   * (which must equal the GPA). Returns a {@link DmaVerdict}.
   */
  checkDmaTrusted(spa: number, leafLg2: number, asid: number, iova: number): DmaVerdict {
    return checkDmaTrusted(this, spa, leafLg2, asid, iova);
  }

  /**
   * {@link Rmp.checkDmaTrusted} for a burst of `count` accesses by one device
   * (a scatter-gather transfer through leaves of one size): one verdict per access
   * into `verdicts`; returns how many were denied.
   */
  checkDmaTrustedBurst(
    spas: Float64Array,
    iovas: Float64Array,
    count: number,
    leafLg2: number,
    asid: number,
    verdicts: Uint8Array,
  ): number {
    return checkDmaTrustedBurst(this, spas, iovas, count, leafLg2, asid, verdicts);
  }

  /** The IOMMU's check of an untrusted (T=0) DMA to `spa` through a leaf of 2^leafLg2 bytes. */
  checkDmaUntrusted(spa: number, leafLg2: number): DmaVerdict {
    return checkDmaUntrusted(this, spa, leafLg2);
  }

  /** A guest's private access to `spa` at `gpa` through an NPT leaf of 2^nptLeafLg2 bytes. */
  checkCpuAccess(spa: number, gpa: number, asid: number, nptLeafLg2: number): CpuVerdict {
    return checkCpuAccess(this, spa, gpa, asid, nptLeafLg2);
  }

  /** A host write to `spa` through the host direct map (2M unless split by adjust_direct_map). */
  checkHostWrite(spa: number): CpuVerdict {
    return checkHostAccess(this, spa);
  }

  // ---- reading -------------------------------------------------------------

  /**
   * snp_lookup_rmpentry(): the effective entry of the page at `spa` and the level
   * of the entry ruling it (the 2M-aligned entry's page size).
   */
  lookup(spa: number): RmpLookup {
    const pfn = this.checkSpa("spa", spa) * INV_4K;
    const region = Math.floor(pfn / PAGES_PER_REGION);
    const s = this.store;
    const rec = region < s.regionCount ? s.recordOf(region) : -1;
    const mode = rec < 0 ? RegionMode.UNTOUCHED : s.modeAt(rec);
    if (mode === RegionMode.LARGE) {
      const f = s.flagsAt(rec);
      const offset = pfn - region * PAGES_PER_REGION;
      return {
        level: RmpPageSize.SIZE_2M,
        entry: makeEntry(
          f,
          RmpPageSize.SIZE_2M,
          s.asidAt(rec),
          f & F_ASSIGNED ? s.gfnAt(rec) + offset : 0,
          s.permsAt(rec),
        ),
      };
    }
    if (mode === RegionMode.SMALL) {
      const i = s.slabIndex(rec, pfn);
      return {
        level: RmpPageSize.SIZE_4K,
        entry: makeEntry(
          s.sFlagsAt(i),
          RmpPageSize.SIZE_4K,
          s.sAsidAt(i),
          s.sGfnAt(i),
          s.sPermsAt(i),
        ),
      };
    }
    return { level: RmpPageSize.SIZE_4K, entry: makeEntry(0, RmpPageSize.SIZE_4K, 0, 0, 0) };
  }

  /** The level of the entry ruling `spa` (cheap; no entry object). */
  levelOf(spa: number): RmpPageSize {
    const region = Math.floor(spa * INV_2M);
    const rec = region < this.store.regionCount ? this.store.recordOf(region) : -1;
    return rec >= 0 && this.store.modeAt(rec) === RegionMode.LARGE
      ? RmpPageSize.SIZE_2M
      : RmpPageSize.SIZE_4K;
  }

  /** The firmware page state of the page at `spa` (Hypervisor, Guest-Valid, HV-Fixed, ...). */
  pageState(spa: number): PageState {
    return pageStateOf(this.lookup(spa).entry);
  }

  // ---- simulator hooks -------------------------------------------------------

  /**
   * Marks the 4K page or the 2M region at `spa` busy (another processor is
   * updating it) or free again: RMPUPDATE and PSMASH touching it return FAIL_INUSE.
   */
  markInUse(spa: number, pageSize: RmpPageSize, busy: boolean): void {
    this.checkSpa("spa", spa);
    checkPageSize(pageSize);
    const set = pageSize === RmpPageSize.SIZE_2M ? this.busyRegions : this.busyPages;
    const key =
      pageSize === RmpPageSize.SIZE_2M ? Math.floor(spa * INV_2M) : Math.floor(spa * INV_4K);
    if (busy) set.add(key);
    else set.delete(key);
  }

  /** Installs (or removes, with null) a hook consulted before every RMPUPDATE, PSMASH and unsmash. */
  setInUseHook(hook: InUseHook | null): void {
    this.inUseHook = hook;
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  subscribe(listener: RmpListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** @internal */
  notify(kind: RmpChange["kind"], spa: number, length: number): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    if (this.listeners.length === 0) return;
    const change: RmpChange = { kind, spa, length };
    for (const l of this.listeners) l(change);
  }

  /** @internal */
  isBusy(
    spa: number,
    pageSize: RmpPageSize,
    instruction: "rmpupdate" | "psmash" | "unsmash",
  ): boolean {
    const region = Math.floor(spa * INV_2M);
    if (this.busyRegions.has(region)) return true;
    if (pageSize === RmpPageSize.SIZE_4K && this.busyPages.has(Math.floor(spa * INV_4K)))
      return true;
    if (pageSize === RmpPageSize.SIZE_2M && this.busyPages.size > 0) {
      const first = region * PAGES_PER_REGION;
      for (const p of this.busyPages) if (p >= first && p < first + PAGES_PER_REGION) return true;
    }
    return this.inUseHook?.(spa, pageSize, instruction) === true;
  }

  // ---- observability ---------------------------------------------------------

  /** Counters of the model's state and memory. */
  stats(): RmpStats {
    const c = this.store.counts();
    return {
      regions2M: c.large,
      regionsSmall: c.small,
      bytesUsed: this.store.bytesUsed(),
      directMapSplits: this.directMapSplit.size,
      overlapLivelocks: this.overlapLivelocks,
      instructions: { ...this.counts },
    };
  }

  /**
   * A 64-bit fingerprint (16 hex digits) of every entry that is not the
   * all-zero hypervisor entry, independent of how the model stores them.
   */
  fingerprint(): string {
    const h = new Uint32Array([0x811c9dc5, 0x9e3779b9]);
    const s = this.store;
    for (let region = 0; region < s.regionCount; region++) {
      const rec = s.recordOf(region);
      if (rec < 0) {
        region |= 511; // skip the untouched GiB
        continue;
      }
      const mode = s.modeAt(rec);
      if (mode === RegionMode.UNTOUCHED) continue;
      if (mode === RegionMode.LARGE) {
        mix(h, region);
        mix(h, 0x20000 | s.flagsAt(rec));
        mix(h, s.asidAt(rec));
        const g = s.gfnAt(rec);
        mix(h, g % 0x100000000);
        mix(h, Math.floor(g / 0x100000000));
        mix(h, s.permsAt(rec));
        continue;
      }
      for (let p = 0; p < PAGES_PER_REGION; p++) {
        const i = s.slabIndex(rec, p);
        if (s.isDefault(i)) continue;
        const g = s.sGfnAt(i);
        mix(h, region * PAGES_PER_REGION + p);
        mix(h, s.sFlagsAt(i));
        mix(h, s.sAsidAt(i));
        mix(h, g % 0x100000000);
        mix(h, Math.floor(g / 0x100000000));
        mix(h, s.sPermsAt(i));
      }
    }
    return h[0]!.toString(16).padStart(8, "0") + h[1]!.toString(16).padStart(8, "0");
  }

  /** A deep copy with the same options (hooks and listeners are not copied). */
  clone(): Rmp {
    const c = new Rmp(this.options);
    (c as { store: RmpStore }).store = this.store.clone();
    for (const r of this.directMapSplit) c.directMapSplit.add(r);
    c.overlapLivelocks = this.overlapLivelocks;
    Object.assign(c.counts, this.counts);
    return c;
  }

  // ---- argument checks -------------------------------------------------------

  /** @internal A host physical address the machine could be asked about: an integer in [0, 2^52). */
  checkSpa(name: string, spa: unknown): number {
    if (typeof spa !== "number" || !Number.isInteger(spa))
      fail("EINVAL", name, spa, "must be an integer host physical address");
    if (spa < 0) fail("EINVAL", name, spa, "must not be negative");
    if (spa >= PHYS_LIMIT) fail("ERANGE", name, spa, "is beyond the 52-bit physical address space");
    return spa;
  }
}

/** @internal Checks an ASID argument (10-bit field). */
export function checkAsid(name: string, asid: unknown): number {
  if (typeof asid !== "number" || !Number.isInteger(asid) || asid < 0 || asid > ASID_MAX) {
    fail(
      "EINVAL",
      name,
      asid,
      `must be an integer in 0..${ASID_MAX} (the entry's 10-bit ASID field)`,
    );
  }
  return asid;
}

/** @internal Checks a GPA argument (39-bit GFN field, page aligned). */
export function checkGpa(name: string, gpa: unknown): number {
  if (typeof gpa !== "number" || !Number.isInteger(gpa) || gpa < 0) {
    fail("EINVAL", name, gpa, "must be a non-negative integer guest physical address");
  }
  if (gpa >= GPA_LIMIT) fail("ERANGE", name, gpa, "is beyond the entry's 39-bit GFN");
  if (gpa % 4096 !== 0) fail("EINVAL", name, gpa, "must be 4 KiB aligned");
  return gpa;
}

/** @internal Checks an {@link RmpPageSize}. */
export function checkPageSize(pageSize: unknown, name = "pageSize"): RmpPageSize {
  if (pageSize !== RmpPageSize.SIZE_4K && pageSize !== RmpPageSize.SIZE_2M) {
    fail("EINVAL", name, pageSize, "must be RmpPageSize.SIZE_4K (0) or RmpPageSize.SIZE_2M (1)");
  }
  return pageSize;
}

function makeEntry(
  flags: number,
  pageSize: RmpPageSize,
  asid: number,
  gfn: number,
  perms: number,
): RmpEntry {
  return {
    assigned: (flags & F_ASSIGNED) !== 0,
    pageSize,
    immutable: (flags & F_IMMUTABLE) !== 0,
    validated: (flags & F_VALIDATED) !== 0,
    vmsa: (flags & F_VMSA) !== 0,
    asid,
    gpa: gfn * 4096,
    vmplPerms: [perms & 0xff, (perms >>> 8) & 0xff, (perms >>> 16) & 0xff],
  };
}

function mix(h: Uint32Array, v: number): void {
  h[0] = Math.imul(h[0]! ^ v, 0x01000193);
  h[1] = Math.imul(h[1]! ^ (v + 0x9e3779b9), 0x5bd1e995) ^ (h[1]! >>> 15);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type { PsmashRet, PvalidateRet, RmpUpdateRet };
