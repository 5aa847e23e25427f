/**
 * FIXTURE iommufd_mock_domain of tools/testing/selftests/iommu/iommufd.c, every
 * variant. Not here: ro_unshare (the model has no copy-on-write, so a CPU write
 * can never move a pinned PFN and the test could not fail).
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { Memfd } from "../pages/memfd.js";
import {
  BUFFER_SIZE,
  expectErrno,
  HUGEPAGE_SIZE,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
  openSelftest,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_PAGE_SIZE,
  PAGE_SIZE,
} from "../uapi.js";

interface Variant {
  name: string;
  mockDomains: number;
  hugepages: boolean;
  file: boolean;
}

const variants: Variant[] = [
  { name: "one_domain", mockDomains: 1, hugepages: false, file: false },
  { name: "two_domains", mockDomains: 2, hugepages: false, file: false },
  { name: "one_domain_hugepage", mockDomains: 1, hugepages: true, file: false },
  { name: "two_domains_hugepage", mockDomains: 2, hugepages: true, file: false },
  { name: "one_domain_file", mockDomains: 1, hugepages: false, file: true },
  { name: "one_domain_file_hugepage", mockDomains: 1, hugepages: true, file: true },
];

describe.each(variants)("iommufd_mock_domain.$name", (variant) => {
  let ctx: SelftestContext;
  let ioasId = 0;
  let hwptIds: number[] = [];
  let stdevIds: number[] = [];
  let idevIds: number[] = [];
  let bufSize = 0;

  beforeEach(() => {
    ctx = openSelftest();
    ioasId = ctx.fd.ioasAlloc();
    hwptIds = [];
    stdevIds = [];
    idevIds = [];
    for (let i = 0; i < variant.mockDomains; i++) {
      const r = ctx.t.mockDomain(ioasId);
      hwptIds.push(r.hwptId);
      stdevIds.push(r.stdevId);
      idevIds.push(r.idevId);
    }
    bufSize = variant.hugepages ? HUGEPAGE_SIZE * 2 : PAGE_SIZE * 8;
  });

  afterEach(() => teardownSelftest(ctx));

  /** check_mock_iova(): the kernel checks the user pages made it to every domain. */
  function checkMockIova(userVa: number, iova: number, length: number): void {
    for (const h of new Set(hwptIds)) ctx.t.mdCheckMap(h, iova, length, userVa);
  }

  /** A buffer of bufSize: anonymous (MAP_HUGETLB for the huge variants) or a mapped memfd. */
  function newBuffer(): { va: number; file: Memfd | null } {
    if (variant.file) {
      const file = new Memfd({
        phys: ctx.fd.phys,
        size: bufSize,
        folioSize: variant.hugepages ? HUGEPAGE_SIZE : PAGE_SIZE,
      });
      return { va: ctx.fd.process.mmapFile(file, 0, bufSize), file };
    }
    return { va: ctx.fd.process.mmap(bufSize, { huge: variant.hugepages }), file: null };
  }

  test("basic", () => {
    if (variant.file) {
      const iova = ioasMapFile(ctx, ioasId, ctx.mfd, 0, PAGE_SIZE);
      checkMockIova(ctx.mfdBuffer, iova, PAGE_SIZE);
      const tmp = new Memfd({
        phys: ctx.fd.phys,
        size: bufSize,
        folioSize: variant.hugepages ? HUGEPAGE_SIZE : PAGE_SIZE,
      });
      expectErrno("EINVAL", () => ioasMapFile(ctx, ioasId, tmp, 0, bufSize + 1));
      tmp.truncate(0);
      expectErrno("EINVAL", () => ioasMapFile(ctx, ioasId, tmp, 0, bufSize));
      return;
    }
    const iova = ioasMap(ctx, ioasId, ctx.buffer, PAGE_SIZE);
    checkMockIova(ctx.buffer, iova, PAGE_SIZE);
    const buf = ctx.fd.process.mmap(bufSize, { huge: variant.hugepages });
    // EFAULT half way through mapping
    ctx.fd.process.munmap(buf + bufSize / 2, bufSize / 2);
    expectErrno("EFAULT", () => ioasMap(ctx, ioasId, buf, bufSize));
    // EFAULT on the first page
    ctx.fd.process.munmap(buf, bufSize / 2);
    expectErrno("EFAULT", () => ioasMap(ctx, ioasId, buf, bufSize));
  });

  function allAligns(withExtraDomain: boolean): void {
    const step = variant.hugepages ? bufSize / 16 : MOCK_PAGE_SIZE;
    const { va: buf, file } = newBuffer();
    ctx.t.mdCheckRefs(buf, bufSize, 0);
    let mapped = 0;
    // Every combination of page size and alignment; fewer for the huge case.
    for (let start = 0; start < bufSize; start += step) {
      for (
        let end = variant.hugepages ? bufSize : start + MOCK_PAGE_SIZE;
        end < bufSize;
        end += MOCK_PAGE_SIZE
      ) {
        const length = end - start;
        const iova = file
          ? ioasMapFile(ctx, ioasId, file, start, length)
          : ioasMap(ctx, ioasId, buf + start, length);
        let extra = 0;
        if (withExtraDomain) {
          const m = ctx.t.mockDomain(ioasId);
          extra = m.stdevId;
        }
        checkMockIova(buf + start, iova, length);
        const first = Math.floor(start / PAGE_SIZE) * PAGE_SIZE;
        ctx.t.mdCheckRefs(buf + first, Math.floor(end / PAGE_SIZE) * PAGE_SIZE - first, 1);
        if (extra) ctx.fd.destroy(extra);
        ioasUnmap(ctx, ioasId, iova, length);
        mapped++;
      }
    }
    ctx.t.mdCheckRefs(buf, bufSize, 0);
    // The huge variants' loop bounds leave the inner loop empty, as in the kernel.
    expect(mapped).toBe(
      variant.hugepages ? 0 : ((bufSize / MOCK_PAGE_SIZE) * (bufSize / MOCK_PAGE_SIZE - 1)) / 2,
    );
    ctx.fd.process.munmap(buf, bufSize);
  }

  test("all_aligns", () => allAligns(false));

  test("all_aligns_copy", () => allAligns(true));

  test("user_copy", () => {
    const buf = variant.file ? ctx.mfdBuffer : ctx.buffer;
    const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE;
    const mapSource = (id: number) =>
      variant.file
        ? ioasMapFile(ctx, id, ctx.mfd, 0, BUFFER_SIZE)
        : ioasMap(ctx, id, buf, BUFFER_SIZE);

    // Pin the pages in an IOAS with no domains, then copy to an IOAS with domains
    const src = ctx.fd.ioasAlloc();
    let srcIova = mapSource(src);
    const access = ctx.t.createAccess(src, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    ctx.t.accessPages(access, srcIova, BUFFER_SIZE);
    ctx.fd.ioasCopy({
      flags,
      dstIoasId: ioasId,
      srcIoasId: src,
      length: BUFFER_SIZE,
      srcIova,
      dstIova: MOCK_APERTURE_START,
    });
    checkMockIova(buf, MOCK_APERTURE_START, BUFFER_SIZE);

    // Now replace the IOAS with a new one
    const next = ctx.fd.ioasAlloc();
    srcIova = mapSource(next);
    ctx.t.accessReplaceIoas(access, next);

    // Destroy the old IOAS and clean up the copied mapping
    ioasUnmap(ctx, ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
    ctx.fd.destroy(src);

    // The same again with the new IOAS
    const pin = ctx.t.accessPages(access, srcIova, BUFFER_SIZE);
    ctx.fd.ioasCopy({
      flags,
      dstIoasId: ioasId,
      srcIoasId: next,
      length: BUFFER_SIZE,
      srcIova,
      dstIova: MOCK_APERTURE_START,
    });
    checkMockIova(buf, MOCK_APERTURE_START, BUFFER_SIZE);
    ctx.t.destroyAccessPages(access, pin);
    ctx.t.destroyAccess(access);
    ctx.fd.destroy(next);
  });

  test("replace", () => {
    const other = ctx.fd.ioasAlloc();
    ctx.t.mockDomainReplace(stdevIds[0]!, other);
    // Replacing the IOAS freed the prior auto HWPT when no other device used it
    if (variant.mockDomains === 1)
      expectErrno("ENOENT", () => ctx.t.mockDomainReplace(stdevIds[0]!, hwptIds[0]!));
    ctx.t.mockDomainReplace(stdevIds[0]!, other);
    if (variant.mockDomains >= 2) {
      ctx.t.mockDomainReplace(stdevIds[0]!, hwptIds[1]!);
      ctx.t.mockDomainReplace(stdevIds[0]!, hwptIds[1]!);
      ctx.t.mockDomainReplace(stdevIds[0]!, hwptIds[0]!);
    }
    ctx.t.mockDomainReplace(stdevIds[0]!, ioasId);
    ctx.fd.destroy(other);
  });

  test("alloc_hwpt", () => {
    for (let i = 0; i < variant.mockDomains; i++) {
      expectErrno("EOPNOTSUPP", () =>
        ctx.fd.hwptAlloc({
          flags: ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0,
          devId: idevIds[i]!,
          ptId: ioasId,
        }),
      );
      const plain = ctx.fd.hwptAlloc({ flags: 0, devId: idevIds[i]!, ptId: ioasId });
      const parent = ctx.fd.hwptAlloc({
        flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
        devId: idevIds[i]!,
        ptId: ioasId,
      });
      // A hw_pagetable rotation
      ctx.t.mockDomainReplace(stdevIds[i]!, plain);
      expectErrno("EBUSY", () => ctx.fd.destroy(plain));
      ctx.t.mockDomainReplace(stdevIds[i]!, parent);
      expectErrno("EBUSY", () => ctx.fd.destroy(parent));
      ctx.t.mockDomainReplace(stdevIds[i]!, ioasId);
      ctx.fd.destroy(parent);
      const direct = ctx.t.mockDomain(plain);
      ctx.fd.destroy(direct.stdevId);
      ctx.fd.destroy(plain);
    }
  });
});
