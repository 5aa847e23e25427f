import { expect } from "vitest";
import { IommuProt, type IoPageTable, type LiveEntryWrite, WalkResult } from "../index.js";

/**
 * The obviously-correct reference the property tests compare the table with:
 * a map from granule page to physical address and permissions. It knows nothing
 * of leaves, levels or contiguous entries.
 */
export class RefModel {
  /** page index (iova / granule) → pa / granule * 4 + (readable ? 1 : 0) + (writable ? 2 : 0). */
  readonly pages = new Map<number, number>();
  /** Pages marked dirty by set_dirty since their entry was last cleaned (page indices). */
  readonly dirty = new Set<number>();

  /**
   * `alwaysReadable`: the format has no read permission bit (x86_64: a present
   * entry can always be read), so a write-only map is readable too.
   */
  constructor(
    readonly granuleLg2: number,
    readonly alwaysReadable = false,
  ) {}

  get granule(): number {
    return 2 ** this.granuleLg2;
  }

  /** Records [iova, iova+len) → [pa, pa+len) with the permissions of `prot`. */
  map(iova: number, pa: number, len: number, prot: number): void {
    const g = this.granule;
    const perm =
      (prot & IommuProt.READ || this.alwaysReadable ? 1 : 0) | (prot & IommuProt.WRITE ? 2 : 0);
    for (let off = 0; off < len; off += g)
      this.pages.set((iova + off) / g, ((pa + off) / g) * 4 + perm);
  }

  /** Forgets [iova, iova+len). */
  unmap(iova: number, len: number): void {
    const g = this.granule;
    for (let off = 0; off < len; off += g) {
      this.pages.delete((iova + off) / g);
      this.dirty.delete((iova + off) / g);
    }
  }

  /** True when any page of [iova, iova+len) is mapped. */
  anyMapped(iova: number, len: number): boolean {
    const g = this.granule;
    for (let off = 0; off < len; off += g) if (this.pages.has((iova + off) / g)) return true;
    return false;
  }

  /** True when every page of [iova, iova+len) is mapped. */
  allMapped(iova: number, len: number): boolean {
    const g = this.granule;
    for (let off = 0; off < len; off += g) if (!this.pages.has((iova + off) / g)) return false;
    return true;
  }

  /** The physical address of the page at `iova`, or -1. */
  pa(iova: number): number {
    const v = this.pages.get(Math.floor(iova / this.granule));
    return v === undefined ? -1 : Math.floor(v / 4) * this.granule;
  }

  /** The permission bits (1 read, 2 write) of the page at `iova`, or 0. */
  perm(iova: number): number {
    const v = this.pages.get(Math.floor(iova / this.granule));
    return v === undefined ? 0 : v % 4;
  }
}

const walk = new WalkResult();

/** One granule: the table translates `iova` exactly as the reference does, permissions included. */
export function checkPage(pt: IoPageTable, ref: RefModel, iova: number, what: string): void {
  const want = ref.pa(iova);
  const ok = pt.lookup(iova, walk);
  const got = ok ? walk.oa : -1;
  if (got !== want) {
    expect.fail(
      `${what}: 0x${iova.toString(16)} → 0x${got.toString(16)}, reference 0x${want.toString(16)}`,
    );
  }
  if (ok) {
    const perm = (walk.readable ? 1 : 0) | (walk.writable ? 2 : 0);
    if (perm !== ref.perm(iova)) {
      expect.fail(
        `${what}: 0x${iova.toString(16)} permissions ${perm}, reference ${ref.perm(iova)}`,
      );
    }
  }
  if (pt.iovaToPhys(iova) !== Math.max(want, 0)) {
    expect.fail(`${what}: iova_to_phys(0x${iova.toString(16)}) disagrees with the walk`);
  }
}

/**
 * [iova, iova+len) agrees with the reference: every granule through the walk when
 * the span is at most `everyPageLimit` bytes, else every leaf (it tiles the mapped
 * pages, its OA and permissions match every reference page in it, no reference
 * page lies outside a leaf) plus the walk at each leaf's first and last granule.
 */
export function checkRange(
  pt: IoPageTable,
  ref: RefModel,
  iova: number,
  len: number,
  what: string,
  everyPageLimit = 2 ** 26,
): void {
  const g = ref.granule;
  if (len <= everyPageLimit) {
    for (let off = 0; off < len; off += g) checkPage(pt, ref, iova + off, what);
    return;
  }
  let cursor = iova;
  const holeUntil = (end: number) => {
    for (; cursor < end; cursor += g) {
      if (ref.pages.has(cursor / g))
        expect.fail(`${what}: 0x${cursor.toString(16)} lost its mapping`);
    }
  };
  pt.forEachLeaf(
    (l) => {
      const s = Math.max(l.va, iova);
      const e = Math.min(l.va + 2 ** l.sizeLg2, iova + len);
      holeUntil(s);
      const perm = (l.readable ? 1 : 0) | (l.writable ? 2 : 0);
      for (let p = s; p < e; p += g) {
        const want = ref.pages.get(p / g);
        const got = ((l.oa + (p - l.va)) / g) * 4 + perm;
        if (want !== got)
          expect.fail(`${what}: leaf at 0x${l.va.toString(16)} disagrees at 0x${p.toString(16)}`);
      }
      checkPage(pt, ref, s, what);
      checkPage(pt, ref, e - g, what);
      cursor = e;
    },
    iova,
    len,
  );
  holeUntil(iova + len);
}

/**
 * Hitless: after every live write of a resize, every granule of the written
 * span still translates as the reference says (the reference is what the table
 * held before the operation, which must not change it).
 */
export function hitlessObserver(pt: IoPageTable, ref: RefModel): (w: LiveEntryWrite) => void {
  return (w) => checkRange(pt, ref, w.va, w.length, `after the live write at level ${w.level}`);
}
