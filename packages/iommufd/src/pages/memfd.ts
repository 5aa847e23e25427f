import { fail } from "../errors.js";
import { PAGE_SIZE } from "../uapi.js";
import type { FileEvent, FileSource } from "./file-source.js";
import type { PhysMemory } from "./phys-memory.js";

/** How to make a {@link Memfd}. */
export interface MemfdOptions {
  /** File size in bytes (a multiple of the folio size). */
  size: number;
  /** Folio size: 4096 (shmem, default), 2 MiB or 1 GiB (hugetlbfs). */
  folioSize?: number;
  /** Where the file's memory starts; default: allocated from `phys`. */
  physBase?: number;
  /** Host memory to allocate from. */
  phys: PhysMemory;
  /** False for a file opened O_RDONLY (default true). */
  writable?: boolean;
}

/**
 * A memfd (shmem or hugetlbfs) with ftruncate and PUNCH_HOLE. Its memory is one
 * allocation, so page `i` is at `physBase + i * 4096` and callers can compute
 * host addresses; but, as real folios are not adjacent to each other, a
 * contiguous run never crosses a folio: a 2M-backed file is mapped with leaves of
 * at most 2M. It also stands in for guest_memfd: {@link Memfd.convert} emits the
 * conversion event a guest_memfd would.
 */
export class Memfd implements FileSource {
  readonly kind = "memfd";
  readonly folioSize: number;
  readonly physBase: number;
  readonly phys: PhysMemory;
  readonly writable: boolean;
  private readonly capacity: number;
  private _size: number;
  private readonly holes = new Set<number>();
  private readonly listeners: ((e: FileEvent) => void)[] = [];

  constructor(options: MemfdOptions) {
    const folio = options.folioSize ?? PAGE_SIZE;
    if (folio !== PAGE_SIZE && folio !== 2 ** 21 && folio !== 2 ** 30) {
      fail("EINVAL", "folioSize", folio, "must be 4K, 2M or 1G");
    }
    if (!Number.isSafeInteger(options.size) || options.size <= 0 || options.size % folio !== 0) {
      fail("EINVAL", "size", options.size, "must be a positive multiple of the folio size");
    }
    this.folioSize = folio;
    this.phys = options.phys;
    this._size = options.size;
    this.capacity = options.size;
    this.writable = options.writable ?? true;
    this.physBase = options.physBase ?? options.phys.alloc(options.size, folio);
    if (!Number.isSafeInteger(this.physBase) || this.physBase % folio !== 0) {
      fail("EINVAL", "physBase", this.physBase, "must be aligned to the folio size");
    }
  }

  get size(): number {
    return this._size;
  }

  physOf(index: number): number {
    if (
      !Number.isInteger(index) ||
      index < 0 ||
      index * PAGE_SIZE >= this._size ||
      this.holes.has(index)
    ) {
      return -1;
    }
    return this.physBase + index * PAGE_SIZE;
  }

  contiguousPages(index: number, maxPages: number): number {
    if (this.physOf(index) < 0) return 0;
    const folioPages = this.folioSize / PAGE_SIZE;
    const end = Math.min(
      index + maxPages,
      index - (index % folioPages) + folioPages,
      this._size / PAGE_SIZE,
    );
    if (this.holes.size === 0) return end - index;
    let i = index + 1;
    while (i < end && !this.holes.has(i)) i++;
    return i - index;
  }

  /**
   * How many pages from page `index` on are present (inside the file, not
   * punched), at most `maxPages`; 0 when page `index` is absent. They are
   * physically contiguous (page i is at `physBase + i * 4096`) and
   * {@link Memfd.contiguousPages} would hand them out folio by folio: runs cut
   * at every multiple of the folio size. Lets a pin take many folios at once.
   */
  presentPages(index: number, maxPages: number): number {
    if (this.physOf(index) < 0) return 0;
    const end = Math.min(index + maxPages, this._size / PAGE_SIZE);
    if (this.holes.size === 0) return end - index;
    let i = index + 1;
    while (i < end && !this.holes.has(i)) i++;
    return i - index;
  }

  subscribe(listener: (e: FileEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Subscribers now (iommufd's areas over this file subscribe once per iopt_pages). */
  get subscribers(): number {
    return this.listeners.length;
  }

  /** ftruncate(): shrink, or grow back within the original allocation; a multiple of the folio size. */
  truncate(size: number): void {
    if (
      !Number.isSafeInteger(size) ||
      size < 0 ||
      size % this.folioSize !== 0 ||
      size > this.capacity
    ) {
      fail(
        "EINVAL",
        "size",
        size,
        `must be a multiple of the folio size within 0..0x${this.capacity.toString(16)}`,
      );
    }
    const shrinks = size < this._size;
    this._size = size;
    for (const h of [...this.holes]) if (h * PAGE_SIZE >= size) this.holes.delete(h);
    if (shrinks) this.emit({ kind: "truncate", size });
  }

  /** fallocate(PUNCH_HOLE): the folios in [offset, offset + length) go away. */
  punchHole(offset: number, length: number): void {
    const f = this.folioSize;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % f !== 0) {
      fail("EINVAL", "offset", offset, "must be a multiple of the folio size");
    }
    if (!Number.isSafeInteger(length) || length <= 0 || length % f !== 0) {
      fail("EINVAL", "length", length, "must be a positive multiple of the folio size");
    }
    const end = Math.min(offset + length, this._size);
    for (let i = offset / PAGE_SIZE; i < end / PAGE_SIZE; i++) this.holes.add(i);
    this.emit({ kind: "punch-hole", offset, length });
  }

  /** guest_memfd stand-in: [offset, offset + length) becomes private or shared. */
  convert(offset: number, length: number, to: "private" | "shared"): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) {
      fail("EINVAL", "offset", offset, "must be page aligned");
    }
    if (
      !Number.isSafeInteger(length) ||
      length <= 0 ||
      length % PAGE_SIZE !== 0 ||
      offset + length > this._size
    ) {
      fail("EINVAL", "length", length, "must be a positive page multiple inside the file");
    }
    if (to !== "private" && to !== "shared")
      fail("EINVAL", "to", to, 'must be "private" or "shared"');
    this.emit({ kind: "convert", offset, length, to });
  }

  private emit(e: FileEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
}
