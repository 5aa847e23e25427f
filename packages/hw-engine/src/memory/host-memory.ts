import { fail } from "../errors.js";

/** Options of {@link HostMemory}. */
export interface HostMemoryOptions {
  /** Physical address of the first page. Default 3 TiB (inside the RMP's default 4 TiB). */
  basePa?: number;
  /** Pages available. Default 4096 (16 MiB). */
  pages?: number;
}

/**
 * Plain host memory the TMPM driver and engine share: the ring page, command
 * lists, the capabilities page and guest-context pages. Pages are zeroed 4 KiB
 * `Uint32Array`s at physical addresses; u64 fields are two little-endian words.
 * (IO page-table pages are not here: they live in the domain's TableMemory.)
 */
export class HostMemory {
  readonly basePa: number;
  private readonly limit: number;
  private readonly pages = new Map<number, Uint32Array>();
  private next = 0;
  private readonly free: number[] = [];

  constructor(options: HostMemoryOptions = {}) {
    this.basePa = options.basePa ?? 3 * 2 ** 40;
    this.limit = options.pages ?? 4096;
    if (!Number.isSafeInteger(this.basePa) || this.basePa % 2 ** 21 !== 0) {
      fail("EINVAL", "basePa", this.basePa, "must be 2 MiB aligned");
    }
  }

  /** Allocates a zeroed page aligned to 2^alignLg2 bytes (≥ 4 KiB); returns its PA, or -1. */
  alloc(alignLg2 = 12): number {
    if (alignLg2 <= 12 && this.free.length > 0) {
      const pa = this.free.pop()!;
      this.pages.set(pa, new Uint32Array(1024));
      return pa;
    }
    const align = 2 ** Math.max(12, alignLg2);
    const first = Math.ceil((this.basePa + this.next * 4096) / align) * align;
    const index = (first - this.basePa) / 4096;
    if (index >= this.limit) return -1;
    // Pages skipped to reach the alignment stay available.
    for (let p = this.next; p < index; p++) this.free.push(this.basePa + p * 4096);
    this.next = index + 1;
    this.pages.set(first, new Uint32Array(1024));
    return first;
  }

  /** Frees a page. */
  release(pa: number): void {
    if (!this.pages.delete(pa)) fail("EINVAL", "pa", pa, "is not an allocated host page");
    this.free.push(pa);
  }

  /** True when `pa` is inside an allocated page. */
  owns(pa: number): boolean {
    return this.pages.has(pa - (pa % 4096));
  }

  /** The words of the page containing `pa`, or undefined. */
  page(pa: number): Uint32Array | undefined {
    return this.pages.get(pa - (pa % 4096));
  }

  /** Reads the u32 at byte address `pa` (4-aligned). */
  read32(pa: number): number {
    const p = this.mustPage(pa);
    return p[(pa % 4096) / 4]!;
  }

  /** Writes the u32 at byte address `pa`. */
  write32(pa: number, v: number): void {
    const p = this.mustPage(pa);
    p[(pa % 4096) / 4] = v >>> 0;
  }

  /** Reads the u64 at `pa` as a number (exact below 2^53; higher bits are reported as a flag by {@link HostMemory.read64Hi}). */
  read64(pa: number): number {
    const p = this.mustPage(pa);
    const w = (pa % 4096) / 4;
    return (p[w + 1]! & 0x1fffff) * 0x100000000 + p[w]!;
  }

  /** Bits 63:53 of the u64 at `pa` (non-zero means the value does not fit a number). */
  read64Hi(pa: number): number {
    const p = this.mustPage(pa);
    return p[(pa % 4096) / 4 + 1]! >>> 21;
  }

  /** Writes a u64 (a non-negative integer below 2^53) at `pa`. */
  write64(pa: number, v: number): void {
    const p = this.mustPage(pa);
    const w = (pa % 4096) / 4;
    p[w] = v >>> 0;
    p[w + 1] = Math.floor(v / 0x100000000) >>> 0;
  }

  /** Pages allocated. */
  get inUse(): number {
    return this.pages.size;
  }

  private mustPage(pa: number): Uint32Array {
    const p = this.page(pa);
    if (p === undefined) fail("EINVAL", "pa", pa, "is not in allocated host memory");
    if (pa % 4 !== 0) fail("EINVAL", "pa", pa, "is not 4-byte aligned");
    return p;
  }
}
