import type { FaultInjector } from "../core/inject.js";
import { fail } from "../errors.js";
import type { IoptArea } from "../iopt/area.js";
import { PAGE_SIZE } from "../uapi.js";
import type { ProcessAddressSpace } from "./address-space.js";
import type { FileSource } from "./file-source.js";
import { Memfd } from "./memfd.js";
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

/** A run's PA (and, from {@link IoptPages.sourceRun}, its piece size) without allocating. */
const scratch = new Float64Array(2);
/** The last index of the uncovered sub-range pin() is reading. */
const gap = new Float64Array(1);

/**
 * What pin() read from the source before it records anything (pin is all or
 * nothing): (first, last, pa, piece size) per stretch; reused, grown on demand.
 */
let pending = new Float64Array(64);

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
    const coverage = this.coverage;
    let a = coverage.firstUncovered(first, last, gap);
    if (a >= 0 && this.injector.shouldFail()) {
      fail("ENOMEM", "pages", first, "pfn batch allocation failed (injected)");
    }
    let k = 0;
    let count = 0;
    // Each sub-range nobody covers yet, read run by run from the source.
    for (; a >= 0; a = gap[0]! < last ? coverage.firstUncovered(gap[0]! + 1, last, gap) : -1) {
      const b = gap[0]!;
      for (let i = a; i <= b; ) {
        const n = this.sourceRun(i, b - i + 1);
        if (k + 4 > pending.length) {
          const bigger = new Float64Array(pending.length * 2);
          bigger.set(pending);
          pending = bigger;
        }
        pending[k] = i;
        pending[k + 1] = i + n - 1;
        pending[k + 2] = scratch[0]!;
        pending[k + 3] = scratch[1]!;
        k += 4;
        count += n;
        i += n;
      }
    }
    this.charge(count);
    const pfns = this.pfns;
    for (let j = 0; j < k; j += 4) {
      const piece = pending[j + 3]!;
      if (piece === 0) pfns.add(pending[j]!, pending[j + 1]!, pending[j + 2]!);
      else pfns.addPieces(pending[j]!, pending[j + 1]!, pending[j + 2]!, piece);
    }
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
   * Like {@link IoptPages.pinnedRun} for many runs at once: `out[0]` counts the
   * pinned pages from `index` on (up to `last`) that are physically contiguous,
   * `out[1]` the piece size their runs are cut at (0: one run). See {@link PfnRuns}.
   */
  pinnedExtent(index: number, last: number, out: Float64Array): number {
    const pa = this.pfns.lookupExtent(index, last, out);
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

  /**
   * The first pages at the source from `index` on, at most `max`: returns how
   * many, with their PA in scratch[0] and in scratch[1] the piece size their
   * runs are cut at, or 0 for a single run. A memfd gives every present page
   * from `index` at once, cut at its folio size (what asking it folio by folio
   * would give); other sources give one run.
   */
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
      scratch[1] = 0;
      return n;
    }
    const fi = s.start / PAGE_SIZE + index;
    const file = s.file;
    const memfd = file instanceof Memfd;
    const n = memfd ? file.presentPages(fi, max) : file.contiguousPages(fi, max);
    if (n === 0) {
      fail(
        "EINVAL",
        "start",
        fi * PAGE_SIZE,
        fi * PAGE_SIZE >= s.file.size ? "is beyond the end of the file" : "is a hole in the file",
      );
    }
    scratch[0] = file.physOf(fi);
    scratch[1] = memfd ? file.folioSize : 0;
    return n;
  }

  /** IOAS_CHANGE_PROCESS, step 1: charge `mm` for what is pinned now (ENOMEM over its limit). */
  chargeTo(mm: ProcessAddressSpace): void {
    this.charge(this.npinned, mm);
  }

  /** IOAS_CHANGE_PROCESS, step 2: release the old owner's charge; `mm` owns the pages from now on. */
  moveAccount(mm: ProcessAddressSpace): void {
    this.uncharge(this.npinned);
    this.accountMm = mm;
  }

  private charge(n: number, mm = this.accountMm): void {
    if (n === 0) return;
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

  /** Releases a charge of `n` pages from `mm` (default: the owner). */
  uncharge(n: number, mm = this.accountMm): void {
    if (n === 0) return;
    if (this.accountMode === "user") mm.user.lockedVm -= n;
    else if (this.accountMode === "mm") mm.lockedVm -= n;
    mm.pinnedVm -= n;
  }
}
