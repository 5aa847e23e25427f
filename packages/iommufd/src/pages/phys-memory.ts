import { fail } from "../errors.js";

const PAGE = 4096;

/**
 * Host physical memory behind processes and files: frames handed out in order
 * from a base (so physical addresses are deterministic), contiguous and aligned
 * on request (huge pages, 2M folios), with byte contents created on first touch.
 */
export class PhysMemory {
  readonly basePa: number;
  private next: number;
  private readonly contents = new Map<number, Uint8Array>();

  /** `basePa`: where frames start (default 1 TiB). */
  constructor(basePa = 2 ** 40) {
    if (!Number.isSafeInteger(basePa) || basePa % 2 ** 30 !== 0)
      fail("EINVAL", "basePa", basePa, "must be 1 GiB aligned");
    this.basePa = basePa;
    this.next = basePa;
  }

  /** Allocates `bytes` of contiguous memory aligned to `align`; returns its physical address. */
  alloc(bytes: number, align = PAGE): number {
    const pa = Math.ceil(this.next / align) * align;
    this.next = pa + Math.ceil(bytes / PAGE) * PAGE;
    return pa;
  }

  /** The bytes of the frame holding `pa`, created zeroed on first touch. */
  frame(pa: number): Uint8Array {
    const f = pa - (pa % PAGE);
    let c = this.contents.get(f);
    if (c === undefined) {
      c = new Uint8Array(PAGE);
      this.contents.set(f, c);
    }
    return c;
  }

  /** Copies `length` bytes at physical `pa` into `out` at `offset` (may cross frames). */
  read(pa: number, out: Uint8Array, offset: number, length: number): void {
    for (let done = 0; done < length; ) {
      const f = this.frame(pa + done);
      const off = (pa + done) % PAGE;
      const n = Math.min(PAGE - off, length - done);
      out.set(f.subarray(off, off + n), offset + done);
      done += n;
    }
  }

  /** Copies `length` bytes from `data` at `offset` to physical `pa`. */
  write(pa: number, data: Uint8Array, offset: number, length: number): void {
    for (let done = 0; done < length; ) {
      const f = this.frame(pa + done);
      const off = (pa + done) % PAGE;
      const n = Math.min(PAGE - off, length - done);
      f.set(data.subarray(offset + done, offset + done + n), off);
      done += n;
    }
  }
}
