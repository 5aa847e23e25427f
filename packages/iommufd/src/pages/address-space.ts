import { fail } from "../errors.js";
import { PAGE_SIZE } from "../uapi.js";
import { UserAccount } from "./account.js";
import type { FileSource } from "./file-source.js";
import type { PhysMemory } from "./phys-memory.js";

const HUGE = 2 ** 21;

interface Vma {
  start: number;
  end: number;
  /** Physical address of `start` (anonymous memory). */
  pa: number;
  huge: boolean;
  writable: boolean;
  /** A shared file mapping: the file and the file offset of `start`. */
  file: FileSource | null;
  fileOffset: number;
}

/**
 * A process's address space (its mm): anonymous mappings, munmap, exit, and the
 * mm's locked_vm and pinned_vm counters that iommufd charges. Ordinary pages are
 * separate 4K frames; a huge mapping is backed by 2M-aligned, 2M-contiguous
 * frames (THP/hugetlb). Pinning a page that is not mapped, or pinning after the
 * process exited, is EFAULT (the selftests' mock_domain.basic and fork_gone).
 */
export class ProcessAddressSpace {
  private vmas: Vma[] = [];
  private nextVa = 2 ** 32;
  private alive = true;
  /** mm->locked_vm in pages (charged in IOPT_PAGES_ACCOUNT_MM mode). */
  lockedVm = 0;
  /** mm->pinned_vm in pages (always charged). */
  pinnedVm = 0;
  /** The process's user, whose locked_vm is charged in the default USER mode. */
  readonly user: UserAccount;

  constructor(
    readonly phys: PhysMemory,
    user?: UserAccount,
  ) {
    this.user = user ?? new UserAccount();
  }

  /**
   * mmap(): a new anonymous mapping of `length` bytes; huge: 2M aligned and 2M
   * backed (MAP_HUGETLB); `align`: the VA alignment (posix_memalign + MAP_FIXED).
   */
  mmap(
    length: number,
    options: { huge?: boolean; writable?: boolean; align?: number } = {},
  ): number {
    if (!Number.isSafeInteger(length) || length <= 0)
      fail("EINVAL", "length", length, "must be positive");
    const huge = options.huge ?? false;
    const align = Math.max(huge ? HUGE : PAGE_SIZE, options.align ?? PAGE_SIZE);
    if (align % PAGE_SIZE !== 0)
      fail("EINVAL", "align", align, "must be a multiple of the page size");
    const size = Math.ceil(length / align) * align;
    const start = Math.ceil(this.nextVa / align) * align;
    this.nextVa = start + size + PAGE_SIZE; // a guard page between mappings
    this.vmas.push({
      start,
      end: start + size,
      pa: this.phys.alloc(size, huge ? HUGE : PAGE_SIZE),
      huge,
      writable: options.writable ?? true,
      file: null,
      fileOffset: 0,
    });
    return start;
  }

  /**
   * mmap(MAP_SHARED) of a file: the pages are the file's own, so a user-VA map
   * of this range and a MAP_FILE of the file pin the same frames.
   */
  mmapFile(
    file: FileSource,
    offset: number,
    length: number,
    options: { writable?: boolean } = {},
  ): number {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE_SIZE !== 0) {
      fail("EINVAL", "offset", offset, "must be page aligned");
    }
    if (!Number.isSafeInteger(length) || length <= 0)
      fail("EINVAL", "length", length, "must be positive");
    const size = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    const align = file.folioSize >= HUGE ? HUGE : PAGE_SIZE;
    const start = Math.ceil(this.nextVa / align) * align;
    this.nextVa = start + size + PAGE_SIZE;
    this.vmas.push({
      start,
      end: start + size,
      pa: -1,
      huge: false,
      writable: options.writable ?? file.writable,
      file,
      fileOffset: offset,
    });
    return start;
  }

  /** munmap(): removes [va, va + length) from the address space. */
  munmap(va: number, length: number): void {
    if (!Number.isSafeInteger(va) || va % PAGE_SIZE !== 0)
      fail("EINVAL", "va", va, "must be page aligned");
    const end = va + Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    const out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= va || v.start >= end) {
        out.push(v);
        continue;
      }
      if (v.start < va) out.push({ ...v, end: va });
      if (v.end > end) {
        out.push({
          ...v,
          start: end,
          pa: v.pa + (end - v.start),
          fileOffset: v.fileOffset + (end - v.start),
        });
      }
    }
    this.vmas = out;
  }

  /**
   * fork(): a child of the same user whose mappings are the parent's shared
   * mappings (the selftest's buffers are MAP_SHARED, so parent and child see the
   * same frames); its own locked_vm and pinned_vm.
   */
  fork(): ProcessAddressSpace {
    const child = new ProcessAddressSpace(this.phys, this.user);
    child.vmas = this.vmas.map((v) => ({ ...v }));
    child.nextVa = this.nextVa;
    return child;
  }

  /** The process exits: its memory can no longer be pinned (already pinned pages stay). */
  exit(): void {
    this.alive = false;
  }

  /** True until {@link ProcessAddressSpace.exit}. */
  get isAlive(): boolean {
    return this.alive;
  }

  /** Physical address of `va`, or -1 when nothing is mapped there (or the process is gone). */
  translate(va: number): number {
    const v = this.vmaOf(va);
    if (v === null) return -1;
    if (v.file !== null) {
      const off = v.fileOffset + (va - v.start);
      const page = v.file.physOf(Math.floor(off / PAGE_SIZE));
      return page < 0 ? -1 : page + (off % PAGE_SIZE);
    }
    return v.pa + (va - v.start);
  }

  /**
   * pin_user_pages(): how many pages from the page at `va` (page aligned) are
   * present and physically contiguous, at most `maxPages`: up to the end of a 2M
   * huge page, else 1. 0 when the page is not mapped or the process is gone.
   */
  contiguousPages(va: number, maxPages: number): number {
    const v = this.vmaOf(va);
    if (v === null) return 0;
    if (v.file !== null) {
      const n = v.file.contiguousPages((v.fileOffset + (va - v.start)) / PAGE_SIZE, maxPages);
      return Math.min(n, (v.end - va) / PAGE_SIZE);
    }
    if (!v.huge) return 1;
    const inHuge = (HUGE - ((va - v.start) % HUGE)) / PAGE_SIZE;
    return Math.min(maxPages, inHuge, (v.end - va) / PAGE_SIZE);
  }

  /** True when the page at `va` is mapped writable. */
  writable(va: number): boolean {
    return this.vmaOf(va)?.writable ?? false;
  }

  /** Byte access for tests: writes through the mapping (EFAULT where nothing is mapped). */
  poke(va: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; ) {
      const pa = this.translate(va + i);
      if (pa < 0) fail("EFAULT", "va", va + i, "is not mapped");
      const n = Math.min(PAGE_SIZE - ((va + i) % PAGE_SIZE), data.length - i);
      this.phys.write(pa, data, i, n);
      i += n;
    }
  }

  /** Byte access for tests: reads through the mapping (EFAULT where nothing is mapped). */
  peek(va: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; ) {
      const pa = this.translate(va + i);
      if (pa < 0) fail("EFAULT", "va", va + i, "is not mapped");
      const n = Math.min(PAGE_SIZE - ((va + i) % PAGE_SIZE), length - i);
      this.phys.read(pa, out, i, n);
      i += n;
    }
    return out;
  }

  private vmaOf(va: number): Vma | null {
    if (!this.alive) return null;
    for (const v of this.vmas) if (va >= v.start && va < v.end) return v;
    return null;
  }
}
