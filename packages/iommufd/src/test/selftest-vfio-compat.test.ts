/**
 * The VFIO type1 compat cases of tools/testing/selftests/iommu/iommufd.c: the
 * container ioctls on a bare fd (FIXTURE iommufd) and FIXTURE
 * vfio_compat_mock_domain with its Ver1v2 and Ver1v0 variants. get_info checks
 * the model's capability sizes rather than a byte buffer.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  BUFFER_SIZE,
  expectErrno,
  HUGEPAGE_SIZE,
  openSelftest,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  PAGE_SIZE,
} from "../uapi.js";
import {
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  type VfioIommuInfo,
} from "../vfio/compat.js";

const RWF = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

describe("iommufd (VFIO compat ioctls without a compat IOAS)", () => {
  let ctx: SelftestContext;
  beforeEach(() => {
    ctx = openSelftest();
  });
  afterEach(() => teardownSelftest(ctx));

  test("simple_ioctls", () => {
    expect(ctx.fd.vfioGetApiVersion()).toBe(VFIO_API_VERSION);
    expect(ctx.fd.vfioCheckExtension(VFIO_TYPE1v2_IOMMU)).toBe(1);
  });

  test("unmap_cmd", () => {
    const cmd = { argsz: 1, flags: 0, iova: MOCK_APERTURE_START, size: PAGE_SIZE };
    expectErrno("EINVAL", () => ctx.fd.vfioUnmapDma(cmd));
    cmd.argsz = 24;
    cmd.flags = 2 ** 31;
    expectErrno("EINVAL", () => ctx.fd.vfioUnmapDma(cmd));
    cmd.flags = 0;
    expectErrno("ENODEV", () => ctx.fd.vfioUnmapDma(cmd));
  });

  test("map_cmd", () => {
    const cmd = {
      argsz: 1,
      flags: 0,
      vaddr: ctx.buffer,
      iova: MOCK_APERTURE_START,
      size: PAGE_SIZE,
    };
    expectErrno("EINVAL", () => ctx.fd.vfioMapDma(cmd));
    cmd.argsz = 32;
    cmd.flags = 2 ** 31;
    expectErrno("EINVAL", () => ctx.fd.vfioMapDma(cmd));
    // Requires a domain to be attached
    cmd.flags = RWF;
    expectErrno("ENODEV", () => ctx.fd.vfioMapDma(cmd));
  });

  test("info_cmd", () => {
    expectErrno("EINVAL", () => ctx.fd.vfioGetInfo({ argsz: 1 }));
    expectErrno("ENODEV", () => ctx.fd.vfioGetInfo({ argsz: 24 }));
  });

  test("set_iommu_cmd", () => {
    expectErrno("ENODEV", () => ctx.fd.vfioSetIommu(VFIO_TYPE1v2_IOMMU));
    expectErrno("ENODEV", () => ctx.fd.vfioSetIommu(VFIO_TYPE1_IOMMU));
  });
});

describe.each([
  { name: "Ver1v2", version: VFIO_TYPE1v2_IOMMU },
  { name: "Ver1v0", version: VFIO_TYPE1_IOMMU },
])("vfio_compat_mock_domain.$name", (variant) => {
  let ctx: SelftestContext;
  let ioasId = 0;

  beforeEach(() => {
    ctx = openSelftest();
    // What VFIO would consider a group, attached to the compat IOAS
    ioasId = ctx.fd.ioasAlloc();
    ctx.t.mockDomain(ioasId);
    ctx.fd.vfioIoas({ op: 1, ioasId });
    ctx.fd.vfioSetIommu(variant.version);
  });
  afterEach(() => teardownSelftest(ctx));

  test("simple_close", () => {});

  test("option_huge_pages", () => {
    const cmd = {
      optionId: IOMMU_OPTION_HUGE_PAGES,
      op: IOMMU_OPTION_OP_GET,
      objectId: ioasId,
      val64: 3,
    };
    ctx.fd.option(cmd);
    expect(cmd.val64).toBe(variant.version === VFIO_TYPE1_IOMMU ? 0 : 1);
  });

  test("get_info", () => {
    // Pre-cap ABI
    const pre: VfioIommuInfo = { argsz: 16 };
    ctx.fd.vfioGetInfo(pre);
    expect(pre.iovaPgsizes).not.toBe(0);
    expect(pre.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    expect(pre.caps).toBeUndefined();
    // Read the cap chain size
    const size: VfioIommuInfo = { argsz: 24 };
    ctx.fd.vfioGetInfo(size);
    expect(size.capOffset).toBe(0);
    expect(size.argsz).toBeGreaterThan(24);
    // Every buffer size below the chain's gets no chain; the full size gets it all
    for (let argsz = 24; argsz < size.argsz; argsz++) {
      const info: VfioIommuInfo = { argsz };
      ctx.fd.vfioGetInfo(info);
      expect(info.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
      expect(info.capOffset).toBe(0);
    }
    const full: VfioIommuInfo = { argsz: size.argsz };
    ctx.fd.vfioGetInfo(full);
    expect(full.capOffset).toBe(24);
    expect(full.caps?.iovaRanges).toEqual([
      { start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST },
    ]);
  });

  test("map", () => {
    const map = {
      argsz: 32,
      flags: RWF,
      vaddr: ctx.buffer,
      size: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
    };
    const unmap = { argsz: 24, flags: 0, size: BUFFER_SIZE, iova: MOCK_APERTURE_START };
    // Simple map/unmap
    ctx.fd.vfioMapDma(map);
    ctx.fd.vfioUnmapDma(unmap);
    expect(unmap.size).toBe(BUFFER_SIZE);
    // Unmap of empty is success
    ctx.fd.vfioUnmapDma(unmap);
    expect(unmap.size).toBe(0);

    // UNMAP_FLAG_ALL requires 0 iova/size
    ctx.fd.vfioMapDma(map);
    const all = {
      argsz: 24,
      flags: VFIO_DMA_UNMAP_FLAG_ALL,
      size: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
    };
    expectErrno("EINVAL", () => ctx.fd.vfioUnmapDma(all));
    all.iova = 0;
    all.size = 0;
    ctx.fd.vfioUnmapDma(all);
    expect(all.size).toBe(BUFFER_SIZE);

    // Small pages, unmapped in a shuffled order
    const iovas: number[] = [];
    for (let i = 0; i < BUFFER_SIZE / PAGE_SIZE; i++) {
      iovas.push(MOCK_APERTURE_START + i * PAGE_SIZE);
      ctx.fd.vfioMapDma({
        ...map,
        iova: iovas[i]!,
        vaddr: ctx.buffer + i * PAGE_SIZE,
        size: PAGE_SIZE,
      });
    }
    shuffle(iovas, 3);
    for (const iova of iovas) ctx.fd.vfioUnmapDma({ argsz: 24, flags: 0, iova, size: PAGE_SIZE });
  });

  test("huge_map", () => {
    const bufSize = HUGEPAGE_SIZE * 2;
    const buf = ctx.fd.process.mmap(bufSize, { huge: true });
    ctx.fd.vfioMapDma({
      argsz: 32,
      flags: RWF,
      vaddr: buf,
      size: bufSize,
      iova: MOCK_APERTURE_START,
    });
    const chunk = bufSize / 16;
    const iovas = Array.from({ length: 16 }, (_, i) => MOCK_APERTURE_START + i * chunk);
    shuffle(iovas, 11);
    // type1 can cut up larger mappings; type1v2 always fails
    for (const iova of iovas) {
      const unmap = { argsz: 24, flags: 0, iova, size: chunk };
      if (variant.version === VFIO_TYPE1_IOMMU) {
        ctx.fd.vfioUnmapDma(unmap);
        expect(unmap.size).toBe(chunk);
      } else {
        expectErrno("ENOENT", () => ctx.fd.vfioUnmapDma(unmap));
      }
    }
    if (variant.version === VFIO_TYPE1_IOMMU) expect(ctx.fd.stats().pinnedPages).toBe(0);
  });
});

/** shuffle_array() with a seeded LCG in place of rand(). */
function shuffle(a: number[], seed: number): void {
  let x = seed;
  for (let i = 0; i < a.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const other = (x >>> 8) % (a.length - i);
    const t = a[i]!;
    a[i] = a[other]!;
    a[other] = t;
  }
}
