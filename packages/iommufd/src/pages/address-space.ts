import { fail } from "../errors.js";
import { PAGE_SIZE } from "../uapi.js";
import { UserAccount } from "./account.js";
import type { PhysMemory } from "./phys-memory.js";

const HUGE = 2 ** 21;

interface Vma {
  start: number;
  end: number;
  /** Physical address of `start`. */
  pa: number;
  huge: boolean;
  writable: boolean;
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

  /** mmap(): a new anonymous mapping of `length` bytes; huge: 2M aligned and 2M backed. */
  mmap(length: number, options: { huge?: boolean; writable?: boolean } = {}): number {
    if (!Number.isSafeInteger(length) || length <= 0)
      fail("EINVAL", "length", length, "must be positive");
    const huge = options.huge ?? false;
    const align = huge ? HUGE : PAGE_SIZE;
    const size = Math.ceil(length / align) * align;
    const start = Math.ceil(this.nextVa / align) * align;
    this.nextVa = start + size + PAGE_SIZE; // a guard page between mappings
    this.vmas.push({
      start,
      end: start + size,
      pa: this.phys.alloc(size, align),
      huge,
      writable: options.writable ?? true,
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
      if (v.end > end) out.push({ ...v, start: end, pa: v.pa + (end - v.start) });
    }
    this.vmas = out;
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
    return v === null ? -1 : v.pa + (va - v.start);
  }

  /**
   * pin_user_pages(): how many pages from the page at `va` (page aligned) are
   * present and physically contiguous, at most `maxPages`: up to the end of a 2M
   * huge page, else 1. 0 when the page is not mapped or the process is gone.
   */
  contiguousPages(va: number, maxPages: number): number {
    const v = this.vmaOf(va);
    if (v === null) return 0;
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
