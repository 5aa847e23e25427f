import type { FaultInjector } from "../core/inject.js";
import { fail } from "../errors.js";
import type { IoptArea } from "../iopt/area.js";
import { PAGE_SIZE } from "../uapi.js";
import type { ProcessAddressSpace } from "./address-space.js";
import type { FileSource } from "./file-source.js";
import { PfnRuns } from "./pfn-runs.js";
import { PinCoverage } from "./pin-coverage.js";

/** enum iopt_pages_account_mode: who is charged for pinned pages. */
export type AccountMode = "none" | "user" | "mm";

/** Where an iopt_pages' pages come from. */
export type PagesSource =
  /** A user VA range: `uptr` is the page-aligned start. */
  | { kind: "user"; mm: ProcessAddressSpace; uptr: number }
  /** A file: `start` is the page-aligned file offset of page 0. */
  | { kind: "file"; file: FileSource; start: number };

const scratch = new Float64Array(1);

/**
 * struct iopt_pages: a PAGE_SIZE-indexed view of a user VA range or a file,
 * shared by every area that maps it (COPY shares it across IOASes), so memory is
 * pinned and charged once. Pinning is lazy: a page is pinned only while a
 * domain-filled area or an access covers its index ({@link PinCoverage}), and its
 * PFN is then remembered ({@link PfnRuns}) whatever happens to the source.
 */
export class IoptPages {
  /** Pages in the view. */
  readonly npages: number;
  /** True when the source may be written (a writable map needs it, else EPERM). */
  readonly writable: boolean;
  /** kref: one per area (and per in-flight COPY list entry). */
  refs = 1;
  /** Users of each page index. */
  readonly coverage = new PinCoverage();
  /** PFNs of the pinned pages. */
  readonly pfns = new PfnRuns();
  /** Pages pinned now (npinned); equals coverage.covered. */
  npinned = 0;
  /** Who is charged. */
  accountMode: AccountMode;
  /** The mm charged (source_mm). */
  accountMm: ProcessAddressSpace;
  /** The live areas that map these pages (for file events). */
  readonly areas = new Set<IoptArea>();
  /** Called once when the last reference goes (unsubscribes from the file, leaves the registry). */
  onRelease: (() => void) | null = null;

  constructor(
    readonly source: PagesSource,
    bytes: number,
    writable: boolean,
    accountMm: ProcessAddressSpace,
    private readonly injector: FaultInjector,
  ) {
    this.npages = Math.ceil(bytes / PAGE_SIZE);
    this.writable = writable;
    this.accountMm = accountMm;
    this.accountMode = accountMm.user.capIpcLock ? "none" : "user";
  }

  /** iopt_put_pages(): drops a reference; the last one releases the pages, which must hold no pins. */
  put(): void {
    if (--this.refs !== 0) return;
    if (this.npinned !== 0)
      throw new Error(`iopt_pages released with ${this.npinned} pages still pinned`);
    this.onRelease?.();
    this.onRelease = null;
  }

  /**
   * One more user of page indices [first, last]: the pages nobody covered yet are
   * read from the source, charged and recorded, all or nothing. EFAULT for a user
   * page that is not mapped (or whose process exited); EINVAL for a file page
   * beyond the end of the file or in a hole; ENOMEM over RLIMIT_MEMLOCK or when
   * injected.
   */
  pin(first: number, last: number): void {
    const todo = this.coverage.uncovered(first, last);
    if (todo.length !== 0 && this.injector.shouldFail()) {
      fail("ENOMEM", "pages", first, "pfn batch allocation failed (injected)");
    }
    const runs: number[] = [];
    let count = 0;
    for (const [a, b] of todo) {
      for (let i = a; i <= b; ) {
        const n = this.sourceRun(i, b - i + 1);
        runs.push(i, i + n - 1, scratch[0]!);
        count += n;
        i += n;
      }
    }
    this.charge(count);
    for (let k = 0; k < runs.length; k += 3) this.pfns.add(runs[k]!, runs[k + 1]!, runs[k + 2]!);
    this.coverage.add(first, last);
    this.npinned += count;
  }

  /** One user fewer of [first, last]: pages nobody covers any more are unpinned and uncharged. */
  unpin(first: number, last: number): void {
    let count = 0;
    for (const [a, b] of this.coverage.remove(first, last)) {
      this.pfns.remove(a, b);
      count += b - a + 1;
    }
    this.npinned -= count;
    this.uncharge(count);
  }

  /**
   * Physical address of pinned page `index` and, in `out[0]`, the pinned,
   * contiguous pages from it up to `last`.
   */
  pinnedRun(index: number, last: number, out: Float64Array): number {
    const pa = this.pfns.lookup(index, last, out);
    if (pa < 0) throw new Error(`iopt_pages: page ${index} is used but not pinned`);
    return pa;
  }

  /**
   * Physical address of page `index` for a read or write that does not pin (the
   * access slow path): the pinned PFN if there is one, else the source's.
   * -1 when neither has it.
   */
  physOf(index: number): number {
    const pa = this.pfns.lookup(index, index, scratch);
    if (pa >= 0) return pa;
    if (this.source.kind === "user")
      return this.source.mm.translate(this.source.uptr + index * PAGE_SIZE);
    return this.source.file.physOf(this.source.start / PAGE_SIZE + index);
  }

  /** The first page of a run at the source; its PA in scratch[0]; returns the run's length. */
  private sourceRun(index: number, max: number): number {
    const s = this.source;
    if (s.kind === "user") {
      const va = s.uptr + index * PAGE_SIZE;
      const n = s.mm.contiguousPages(va, max);
      if (n === 0)
        fail(
          "EFAULT",
          "user_va",
          va,
          s.mm.isAlive ? "is not mapped" : "belongs to a process that exited",
        );
      // pin_user_pages(FOLL_WRITE) refuses a read-only mapping.
      if (this.writable && !s.mm.writable(va)) fail("EFAULT", "user_va", va, "is mapped read-only");
      scratch[0] = s.mm.translate(va);
      return n;
    }
    const fi = s.start / PAGE_SIZE + index;
    const n = s.file.contiguousPages(fi, max);
    if (n === 0) {
      fail(
        "EINVAL",
        "start",
        fi * PAGE_SIZE,
        fi * PAGE_SIZE >= s.file.size ? "is beyond the end of the file" : "is a hole in the file",
      );
    }
    scratch[0] = s.file.physOf(fi);
    return n;
  }

  private charge(n: number): void {
    if (n === 0) return;
    const mm = this.accountMm;
    if (this.accountMode === "user") {
      if (mm.user.lockedVm + n > mm.user.rlimitPages)
        fail("ENOMEM", "pages", n, "would exceed RLIMIT_MEMLOCK (user)");
      mm.user.lockedVm += n;
    } else if (this.accountMode === "mm") {
      if (mm.lockedVm + n > mm.user.rlimitPages)
        fail("ENOMEM", "pages", n, "would exceed RLIMIT_MEMLOCK (mm)");
      mm.lockedVm += n;
    }
    mm.pinnedVm += n;
  }

  private uncharge(n: number): void {
    if (n === 0) return;
    const mm = this.accountMm;
    if (this.accountMode === "user") mm.user.lockedVm -= n;
    else if (this.accountMode === "mm") mm.lockedVm -= n;
    mm.pinnedVm -= n;
  }
}
