import { lastOf } from "../core/check.js";
import type { FaultInjector } from "../core/inject.js";
import { fail } from "../errors.js";
import type { IommuDomain } from "../hwpt/domain.js";
import type { IoptPages } from "../pages/iopt-pages.js";
import { PAGE_SIZE, ULONG_MAX } from "../uapi.js";
import { IoptArea } from "./area.js";
import { fillAreaDomain, unfillAreaDomain } from "./area-domain.js";
import { allocIova, type Span } from "./iova-alloc.js";

/** A reserved IOVA range and who reserved it (a domain, a device, or null for the test op). */
export interface ReservedSpan extends Span {
  owner: unknown;
}

/** What the io_pagetable needs of an in-kernel access (struct iommufd_access). */
export interface IoptAccess {
  /** The IOVA alignment the access requires (PAGE_SIZE when it pins pages). */
  readonly iovaAlignment: number;
  /** ops->unmap(): the access must drop its pins in [iova, iova + length). */
  notifyUnmap(iova: number, length: number): void;
}

/** One slice of pages to map (struct iopt_pages_list). */
export interface PagesSlice {
  pages: IoptPages;
  startByte: number;
  length: number;
}

/** How many times an unmap waits for accesses to unpin before giving up (EDEADLOCK). */
const ACCESS_UNMAP_RETRIES = 100;

/**
 * struct io_pagetable: the IOAS's areas, allowed and reserved IOVA, the domains
 * that mirror it and the accesses that use it, with the kernel's rules for
 * alignment, automatic IOVA, map, unmap and domain fill.
 */
export class IoPagetable {
  /** Areas sorted by IOVA (area_itree). */
  readonly areas: IoptArea[] = [];
  /** Reserved IOVA (reserved_itree), sorted by start; ranges of different owners may overlap. */
  readonly reserved: ReservedSpan[] = [];
  /** The user's allow list (allowed_itree), sorted. */
  allowed: Span[] = [];
  /** Attached domains in xarray order (dense; removal swaps the last one in). */
  readonly domains: IommuDomain[] = [];
  /** Accesses attached to the IOAS. */
  readonly accesses: IoptAccess[] = [];
  /** iova_alignment: a power of two, at most PAGE_SIZE. */
  iovaAlignment = 1;
  /** HUGE_PAGES = 0: domains get PAGE_SIZE leaves only. */
  disableLargePages = false;

  /** `owner`: the object the table belongs to (its IOAS), for event routing. */
  constructor(
    private readonly injector: FaultInjector,
    readonly owner: unknown = null,
  ) {}

  /** The areas intersecting [start, last], in IOVA order. */
  areasIn(start: number, last: number): IoptArea[] {
    const out: IoptArea[] = [];
    for (let i = this.firstAreaEndingAtOrAfter(start); i < this.areas.length; i++) {
      const a = this.areas[i]!;
      if (a.iova > last) break;
      out.push(a);
    }
    return out;
  }

  /** The first area intersecting [start, last], if any (iopt_area_iter_first). */
  firstArea(start: number, last: number): IoptArea | undefined {
    const a = this.areas[this.firstAreaEndingAtOrAfter(start)];
    return a !== undefined && a.iova <= last ? a : undefined;
  }

  /** The first reserved range intersecting [start, last]. */
  reservedIn(start: number, last: number): ReservedSpan | undefined {
    return this.reserved.find((r) => r.last >= start && r.start <= last);
  }

  /**
   * The areas covering [iova, last] back to back (iopt_for_each_contig_area),
   * or null when a gap, an area being built, or the end comes first.
   */
  contigAreas(iova: number, last: number): IoptArea[] | null {
    const out: IoptArea[] = [];
    let cur = iova;
    for (const a of this.areasIn(iova, last)) {
      if (a.iova > cur || a.pages === null) return null;
      out.push(a);
      if (a.last >= last) return out;
      cur = a.last + 1;
    }
    return null;
  }

  // ---- IOVA allocation and checks -------------------------------------------------

  /** iopt_alloc_iova(): see {@link allocIova}. */
  allocIova(uptr: number, length: number): number {
    return allocIova(uptr, length, this.iovaAlignment, this.allowed, [
      this.reserved,
      this.areas.map(spanOf),
    ]);
  }

  /**
   * iopt_check_iova(): EINVAL misaligned, EOVERFLOW wrapping, EINVAL over a
   * reserved range, EEXIST over an area.
   */
  checkIova(iova: number, length: number): void {
    if (iova % this.iovaAlignment !== 0) {
      fail(
        "EINVAL",
        "iova",
        iova,
        `is not aligned to the IOAS's 0x${this.iovaAlignment.toString(16)}`,
      );
    }
    const last = lastOf("iova", iova, length);
    if (this.reservedIn(iova, last)) fail("EINVAL", "iova", iova, "overlaps a reserved IOVA range");
    if (this.firstArea(iova, last)) fail("EEXIST", "iova", iova, "overlaps an existing mapping");
  }

  // ---- map ------------------------------------------------------------------------

  /**
   * iopt_map_pages(): areas for each slice, placed back to back at `iova` (or at
   * an automatic IOVA from the first slice's `uptr`), then every domain filled.
   * All or nothing; on failure the caller still owns the slices' page references.
   * Returns the IOVA used.
   */
  mapPages(
    slices: PagesSlice[],
    length: number,
    iova: number,
    prot: number,
    autoUptr: number | null,
  ): number {
    for (const _ of slices) {
      if (this.injector.shouldFail())
        fail("ENOMEM", "area", iova, "area allocation failed (injected)");
    }
    if (length === 0 || length % this.iovaAlignment !== 0) {
      fail(
        "EINVAL",
        "length",
        length,
        `must be a non-zero multiple of the IOAS alignment 0x${this.iovaAlignment.toString(16)}`,
      );
    }
    let dst = iova;
    if (autoUptr !== null) dst = this.allocIova(autoUptr, length);
    else this.checkIova(dst, length);

    const areas: IoptArea[] = [];
    try {
      let at = dst;
      for (const s of slices) {
        areas.push(this.insertArea(s.pages, at, s.startByte, s.length, prot));
        at += s.length;
      }
      this.fillDomainsOfAreas(areas);
    } catch (e) {
      for (const a of areas) this.removeArea(a);
      throw e;
    }
    for (const a of areas) {
      a.pages = a.source;
      a.source.areas.add(a);
    }
    return dst;
  }

  /** iopt_insert_area(): EPERM for a writable map of read-only pages; EINVAL for a misaligned sub-page offset. */
  private insertArea(
    pages: IoptPages,
    iova: number,
    startByte: number,
    length: number,
    prot: number,
  ): IoptArea {
    if (prot & 2 && !pages.writable)
      fail("EPERM", "flags", prot, "a writable mapping of read-only memory");
    const pageOffset = startByte % PAGE_SIZE;
    if (pageOffset % this.iovaAlignment !== 0) {
      fail(
        "EINVAL",
        "user_va",
        pageOffset,
        `sub-page offset is not aligned to the IOAS's 0x${this.iovaAlignment.toString(16)}`,
      );
    }
    const last = lastOf("iova", iova, length);
    const area = new IoptArea(this, iova, last, pages, startByte, prot);
    this.areas.splice(this.firstAreaEndingAtOrAfter(iova), 0, area);
    return area;
  }

  private removeArea(area: IoptArea): void {
    const i = this.areas.indexOf(area);
    if (i >= 0) this.areas.splice(i, 1);
  }

  /** iopt_fill_domains_pages(): fill every area; on failure the earlier ones are unfilled. */
  private fillDomainsOfAreas(areas: IoptArea[]): void {
    const done: IoptArea[] = [];
    try {
      for (const a of areas) {
        this.fillAreaDomains(a);
        done.push(a);
      }
    } catch (e) {
      for (const a of done) this.unfillAreaDomains(a);
      throw e;
    }
  }

  /** iopt_area_fill_domains(): pin once, map into every domain; all or nothing. */
  private fillAreaDomains(area: IoptArea): void {
    if (this.domains.length === 0 || area.revoked) return;
    area.source.pin(area.firstIndex, area.lastIndex);
    const done: IommuDomain[] = [];
    try {
      for (const d of this.domains) {
        fillAreaDomain(area, d, this.disableLargePages);
        done.push(d);
      }
    } catch (e) {
      for (const d of done) unfillAreaDomain(area, d);
      area.source.unpin(area.firstIndex, area.lastIndex);
      throw e;
    }
    area.filled = true;
  }

  /** iopt_area_unfill_domains(): unmap from every domain, then unpin. */
  private unfillAreaDomains(area: IoptArea): void {
    if (!area.filled) return;
    for (const d of this.domains) unfillAreaDomain(area, d);
    area.source.unpin(area.firstIndex, area.lastIndex);
    area.filled = false;
  }

  // ---- unmap ----------------------------------------------------------------------

  /**
   * iopt_unmap_iova_range(): removes every area inside [start, last], in IOVA
   * order, and returns the bytes removed. As in the kernel this is not all or
   * nothing: an area only partly inside gives ENOENT (EBUSY for one being built)
   * after the areas before it are gone. Accesses holding pins are told to unpin
   * first (EDEADLOCK if they never do). Nothing to remove returns 0 (IOAS_UNMAP
   * makes that ENOENT; the VFIO compat path does not).
   */
  unmapIovaRange(start: number, last: number): number {
    let unmapped = 0;
    let retries = 0;
    for (;;) {
      const area = this.firstArea(start, last);
      if (area === undefined) break;
      if (area.pages === null)
        fail("EBUSY", "iova", area.iova, "the area is being created or destroyed");
      if (area.iova < start || area.last > last) {
        fail(
          "ENOENT",
          "iova",
          start,
          `the range cuts the area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}]`,
        );
      }
      if (area.numAccesses !== 0) {
        if (retries++ === ACCESS_UNMAP_RETRIES) {
          area.preventAccess = false;
          fail("EDEADLOCK", "iova", area.iova, "an access did not unpin the area");
        }
        area.preventAccess = true;
        for (const acc of [...this.accesses]) acc.notifyUnmap(area.iova, area.length);
        continue;
      }
      this.destroyArea(area);
      unmapped += area.length;
    }
    return unmapped;
  }

  /** iopt_unmap_all(): succeeds on an empty IOAS. */
  unmapAll(): number {
    return this.unmapIovaRange(0, ULONG_MAX);
  }

  /**
   * iopt_cut_iova(): make each IOVA the last byte of an area, splitting the area
   * that holds it into two that share its pages (VFIO type1's partial unmap).
   * EBUSY for an area being built or unmapped; EINVAL when the new start is not
   * aligned, when an access pins in the area, or when a domain may hold huge
   * pages for it (large pages enabled); ENOMEM when injected. Stops at the first
   * failure, as the kernel does.
   */
  cutIova(iovas: readonly number[]): void {
    for (const iova of iovas) {
      const area = this.firstArea(iova, iova);
      if (area === undefined || iova === area.iova || iova === area.last) continue;
      if (area.pages === null || area.preventAccess)
        fail("EBUSY", "iova", iova, "the area is in transition");
      const next = iova + 1;
      const align = this.iovaAlignment;
      if (next % align !== 0 || area.startByteOf(next) % align !== 0) {
        fail(
          "EINVAL",
          "iova",
          iova,
          `a cut must leave both halves aligned to 0x${align.toString(16)}`,
        );
      }
      if (this.injector.shouldFail() || this.injector.shouldFail()) {
        fail("ENOMEM", "area", iova, "area allocation failed (injected)");
      }
      if (area.numAccesses !== 0) fail("EINVAL", "iova", iova, "an access pins pages in the area");
      if (area.filled && !this.disableLargePages) {
        fail("EINVAL", "iova", iova, "a domain may map the area with huge pages");
      }
      const pages = area.pages;
      const lhs = new IoptArea(this, area.iova, iova, pages, area.startByte, area.prot);
      const rhs = new IoptArea(this, next, area.last, pages, area.startByteOf(next), area.prot);
      for (const half of [lhs, rhs]) {
        half.pages = pages;
        half.filled = area.filled;
        pages.areas.add(half);
      }
      // One domain user per filled area: the halves take theirs before the whole
      // gives its up, so nothing is unpinned (or read from the source) on the way.
      if (area.filled) {
        pages.pin(lhs.firstIndex, lhs.lastIndex);
        pages.pin(rhs.firstIndex, rhs.lastIndex);
        pages.unpin(area.firstIndex, area.lastIndex);
      }
      pages.refs++;
      pages.areas.delete(area);
      this.areas.splice(this.areas.indexOf(area), 1, lhs, rhs);
    }
  }

  /** Unfills and removes a live area and drops its page reference. */
  private destroyArea(area: IoptArea): void {
    const pages = area.pages as IoptPages;
    area.pages = null;
    this.unfillAreaDomains(area);
    this.removeArea(area);
    pages.areas.delete(area);
    pages.put();
  }

  /**
   * Revokes an area whose file shrank or was punched (Jason's 2026 proposal):
   * domains drop it, pins go, accesses are told to unpin. The area keeps its IOVA
   * until userspace unmaps it.
   */
  revokeArea(area: IoptArea): void {
    if (area.revoked) return;
    if (area.numAccesses !== 0)
      for (const acc of [...this.accesses]) acc.notifyUnmap(area.iova, area.length);
    this.unfillAreaDomains(area);
    area.revoked = true;
  }

  // ---- COPY source ----------------------------------------------------------------

  /**
   * iopt_get_pages(): the page slices behind [iova, iova + length - 1], which
   * contiguous areas must cover (ENOENT otherwise). Each slice holds a reference.
   */
  getPages(iova: number, length: number): PagesSlice[] {
    if (length === 0) fail("EINVAL", "length", length, "must not be 0");
    const last = lastOf("src_iova", iova, length);
    const areas = this.contigAreas(iova, last);
    if (areas === null) fail("ENOENT", "src_iova", iova, "the source range is not fully mapped");
    const slices: PagesSlice[] = [];
    for (const a of areas) {
      if (this.injector.shouldFail()) {
        for (const s of slices) s.pages.put();
        fail("ENOMEM", "src_iova", iova, "list allocation failed (injected)");
      }
      if (a.revoked) {
        for (const s of slices) s.pages.put();
        fail("ENODEV", "src_iova", a.iova, "the area was revoked");
      }
      const from = Math.max(iova, a.iova);
      const to = Math.min(last, a.last);
      a.source.refs++;
      slices.push({ pages: a.source, startByte: a.startByteOf(from), length: to - from + 1 });
    }
    return slices;
  }

  // ---- allowed and reserved ranges -----------------------------------------------

  /**
   * iopt_set_allow_iova(): replaces the allow list; if any allowed range overlaps
   * a reserved one the old list stays and the call is EADDRINUSE.
   */
  setAllowIova(spans: Span[]): void {
    for (const s of spans) {
      if (this.reservedIn(s.start, s.last)) {
        fail("EADDRINUSE", "allowed_iovas", s.start, "an allowed range overlaps a reserved range");
      }
    }
    this.allowed = [...spans].sort((a, b) => a.start - b.start);
  }

  /** iopt_reserve_iova(): EADDRINUSE over an area or an allowed range. */
  reserveIova(start: number, last: number, owner: unknown): void {
    if (
      this.firstArea(start, last) ||
      this.allowed.some((a) => a.last >= start && a.start <= last)
    ) {
      fail("EADDRINUSE", "start", start, "the range overlaps a mapping or an allowed range");
    }
    if (this.injector.shouldFail())
      fail("ENOMEM", "start", start, "reserved range allocation failed (injected)");
    const i = this.reserved.findIndex((r) => r.start > start);
    this.reserved.splice(i < 0 ? this.reserved.length : i, 0, { start, last, owner });
  }

  /** iopt_remove_reserved_iova(): drops every range `owner` reserved. */
  removeReserved(owner: unknown): void {
    for (let i = this.reserved.length - 1; i >= 0; i--)
      if (this.reserved[i]!.owner === owner) this.reserved.splice(i, 1);
  }

  // ---- domains --------------------------------------------------------------------

  /**
   * iopt_table_add_domain(): the new alignment (the domain's smallest page, EINVAL
   * above PAGE_SIZE; EADDRINUSE if an area does not conform), the aperture's
   * outside reserved, then every area mapped into it. On failure nothing changes.
   */
  addDomain(domain: IommuDomain): void {
    if (this.domains.includes(domain))
      fail("EEXIST", "domain", domain.driver.name, "is already attached");
    const align = Math.max(domain.minPageSize, this.iovaAlignment);
    if (align > PAGE_SIZE)
      fail("EINVAL", "domain", domain.minPageSize, "its smallest page size exceeds PAGE_SIZE");
    if (align !== this.iovaAlignment) this.checkIovaAlignment(align);
    try {
      if (domain.apertureStart !== 0) this.reserveIova(0, domain.apertureStart - 1, domain);
      if (domain.apertureLast < ULONG_MAX)
        this.reserveIova(domain.apertureLast + 1, ULONG_MAX, domain);
      this.fillDomain(domain);
    } catch (e) {
      this.removeReserved(domain);
      throw e;
    }
    this.iovaAlignment = align;
    this.domains.push(domain);
  }

  /** iopt_fill_domain(): every live area into one new domain; on failure the domain is left empty. */
  private fillDomain(domain: IommuDomain): void {
    const done: IoptArea[] = [];
    try {
      for (const a of this.areas) {
        if (a.pages === null || a.revoked) continue;
        // The first domain pins; later ones read the PFNs the pins recorded.
        if (!a.filled) a.source.pin(a.firstIndex, a.lastIndex);
        try {
          fillAreaDomain(a, domain, this.disableLargePages);
        } catch (e) {
          if (!a.filled) a.source.unpin(a.firstIndex, a.lastIndex);
          throw e;
        }
        done.push(a);
      }
    } catch (e) {
      for (const a of done) {
        unfillAreaDomain(a, domain);
        if (!a.filled) a.source.unpin(a.firstIndex, a.lastIndex);
      }
      throw e;
    }
    for (const a of done) a.filled = true;
  }

  /** iopt_table_remove_domain(): unmap every area from it, drop its reservations, recompute alignment. */
  removeDomain(domain: IommuDomain): void {
    const i = this.domains.indexOf(domain);
    if (i < 0) return;
    const lastDomain = this.domains.length === 1;
    // Compress like the xarray: the last domain takes the freed index.
    const tail = this.domains.pop() as IommuDomain;
    if (tail !== domain) this.domains[i] = tail;
    for (const a of this.areas) {
      if (!a.filled) continue;
      unfillAreaDomain(a, domain);
      if (lastDomain) {
        a.source.unpin(a.firstIndex, a.lastIndex);
        a.filled = false;
      }
    }
    this.removeReserved(domain);
    this.calculateAlignment();
  }

  /** iopt_check_iova_alignment(): every area's IOVA, length and page offset conform, else EADDRINUSE. */
  private checkIovaAlignment(align: number): void {
    for (const a of this.areas) {
      if (a.iova % align !== 0 || a.length % align !== 0 || a.pageOffset % align !== 0) {
        fail(
          "EADDRINUSE",
          "iova",
          a.iova,
          `an existing area is not aligned to 0x${align.toString(16)}`,
        );
      }
    }
  }

  /** iopt_calculate_iova_alignment(): the largest of every domain's and access's need. */
  calculateAlignment(): void {
    let align = this.disableLargePages ? PAGE_SIZE : 1;
    for (const d of this.domains) align = Math.max(align, d.minPageSize);
    for (const a of this.accesses) align = Math.max(align, a.iovaAlignment);
    if (align > this.iovaAlignment) this.checkIovaAlignment(align);
    this.iovaAlignment = align;
  }

  /** iopt_disable_large_pages(): EINVAL once a domain holds mappings; EADDRINUSE for misaligned areas. */
  disableLarge(): void {
    if (this.disableLargePages) return;
    if (this.domains.length !== 0 && this.areas.length !== 0) {
      fail("EINVAL", "val64", 0, "domains already hold mappings that may use large pages");
    }
    this.disableLargePages = true;
    try {
      this.calculateAlignment();
    } catch (e) {
      this.disableLargePages = false;
      throw e;
    }
  }

  /** iopt_enable_large_pages(). */
  enableLarge(): void {
    this.disableLargePages = false;
    this.calculateAlignment();
  }

  // ---- accesses -------------------------------------------------------------------

  /** iopt_add_access(): the access's alignment joins the IOAS's (EADDRINUSE if areas do not conform). */
  addAccess(access: IoptAccess): void {
    this.accesses.push(access);
    try {
      this.calculateAlignment();
    } catch (e) {
      this.accesses.pop();
      throw e;
    }
  }

  /** iopt_remove_access(). */
  removeAccess(access: IoptAccess): void {
    const i = this.accesses.indexOf(access);
    if (i >= 0) this.accesses.splice(i, 1);
    this.calculateAlignment();
  }

  private firstAreaEndingAtOrAfter(iova: number): number {
    let lo = 0;
    let hi = this.areas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.areas[mid]!.last < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function spanOf(a: IoptArea): Span {
  return { start: a.iova, last: a.last };
}
