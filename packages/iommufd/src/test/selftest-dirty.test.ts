/**
 * FIXTURE iommufd_dirty_tracking of tools/testing/selftests/iommu/iommufd.c,
 * every buffer-size variant. The huge variants ask the kernel for the mock's
 * MOCK_IOMMUPT_HUGE page table through driver data; the model's equivalent is
 * a mock device with MOCK_FLAGS_DEVICE_HUGE_IOVA (MOCK_HUGE_PAGE_SIZE leaves).
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  expectErrno,
  HUGEPAGE_SIZE,
  ioasMapFixed,
  openSelftest,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_PAGE_SIZE,
  PAGE_SIZE,
} from "../uapi.js";

interface Variant {
  name: string;
  bufferSize: number;
  hugepages: boolean;
}

const K = 1024;
const M = 1024 * 1024;
const variants: Variant[] = [
  { name: "domain_dirty8k", bufferSize: 8 * K, hugepages: false },
  { name: "domain_dirty16k", bufferSize: 16 * K, hugepages: false },
  { name: "domain_dirty64k", bufferSize: 64 * K, hugepages: false },
  { name: "domain_dirty128k", bufferSize: 128 * K, hugepages: false },
  { name: "domain_dirty320k", bufferSize: 320 * K, hugepages: false },
  { name: "domain_dirty64M", bufferSize: 64 * M, hugepages: false },
  { name: "domain_dirty64M_huge", bufferSize: 64 * M, hugepages: true },
  { name: "domain_dirty128M", bufferSize: 128 * M, hugepages: false },
  { name: "domain_dirty128M_huge", bufferSize: 128 * M, hugepages: true },
];

describe.each(variants)("iommufd_dirty_tracking.$name", (variant) => {
  let ctx: SelftestContext;
  let ioasId = 0;
  let stdevId = 0;
  let idevId = 0;
  let buffer = 0;
  let bitmap = new Uint8Array(0);
  const pageSize = MOCK_PAGE_SIZE;
  const nbits = variant.bufferSize / MOCK_PAGE_SIZE;
  const deviceFlags = variant.hugepages ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0;

  beforeEach(() => {
    ctx = openSelftest();
    buffer = ctx.fd.process.mmap(
      Math.max(variant.bufferSize, variant.hugepages ? HUGEPAGE_SIZE : 0),
      {
        huge: variant.hugepages,
        align: HUGEPAGE_SIZE,
      },
    );
    // An extra PAGE_SIZE for the unaligned cases.
    bitmap = new Uint8Array(Math.ceil(nbits / 8) + PAGE_SIZE);
    ioasId = ctx.fd.ioasAlloc();
    // The page size fed into the domain must match what the dirty logic expects.
    if (!variant.hugepages) {
      ctx.fd.option({
        optionId: IOMMU_OPTION_HUGE_PAGES,
        op: IOMMU_OPTION_OP_SET,
        objectId: ioasId,
        val64: 0,
      });
    }
    const r = ctx.t.mockDomain(ioasId, deviceFlags);
    stdevId = r.stdevId;
    idevId = r.idevId;
  });

  afterEach(() => teardownSelftest(ctx));

  test("enforce_dirty", () => {
    const hwpt = ctx.fd.hwptAlloc({
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      devId: idevId,
      ptId: ioasId,
    });
    const dev = ctx.t.mockDomain(hwpt);
    expectErrno("EINVAL", () => ctx.t.mockDomain(hwpt, MOCK_FLAGS_DEVICE_NO_DIRTY));
    ctx.fd.destroy(dev.stdevId);
    ctx.fd.destroy(hwpt);

    // An IOMMU device that cannot track dirty pages
    const other = ctx.fd.ioasAlloc();
    const noDirty = ctx.t.mockDomain(other, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expectErrno("EOPNOTSUPP", () =>
      ctx.fd.hwptAlloc({
        flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
        devId: noDirty.idevId,
        ptId: other,
      }),
    );
    ctx.fd.destroy(noDirty.stdevId);
  });

  test("set_dirty_tracking", () => {
    const hwpt = ctx.fd.hwptAlloc({
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      devId: idevId,
      ptId: ioasId,
    });
    const dev = ctx.t.mockDomain(hwpt);
    ctx.fd.hwptSetDirtyTracking({ flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE, hwptId: hwpt });
    ctx.fd.hwptSetDirtyTracking({ flags: 0, hwptId: hwpt });
    ctx.fd.destroy(dev.stdevId);
    ctx.fd.destroy(hwpt);
    expect(stdevId).toBeGreaterThan(0);
  });

  test("device_dirty_capability", () => {
    const hwpt = ctx.fd.hwptAlloc({ flags: 0, devId: idevId, ptId: ioasId });
    const dev = ctx.t.mockDomain(hwpt);
    const info = { devId: idevId, outCapabilities: 0 };
    ctx.fd.getHwInfo(info);
    expect(info.outCapabilities & IOMMU_HW_CAP_DIRTY_TRACKING).toBe(IOMMU_HW_CAP_DIRTY_TRACKING);
    ctx.fd.destroy(dev.stdevId);
    ctx.fd.destroy(hwpt);
  });

  /** _test_mock_dirty_bitmaps(): mark every other PTE dirty, read it back, read again. */
  function mockDirtyBitmaps(hwpt: number, pteSize: number, bits: Uint8Array, flags: number): void {
    const npte = pteSize / pageSize;
    const pteset = 2 * npte;
    const nr = Math.floor(nbits / pteset) || 1;
    const bytes = Math.ceil(nbits / 8);
    const bit = (i: number) => (bits[i >>> 3]! >>> (i & 7)) & 1;
    bits.fill(0, 0, bytes);
    for (let i = 0; i < nbits; i += pteset) bits[i >>> 3]! |= 1 << (i & 7);
    expect(ctx.t.dirty(hwpt, MOCK_APERTURE_START, variant.bufferSize, pageSize, bits)).toBe(nr);

    bits.fill(0, 0, bytes);
    ctx.fd.hwptGetDirtyBitmap({
      hwptId: hwpt,
      flags,
      iova: MOCK_APERTURE_START,
      length: variant.bufferSize,
      pageSize,
      data: bits,
    });
    let wrong = 0;
    for (let i = 0; i < nbits; i += pteset)
      for (let j = 0; j < pteset; j++) wrong += bit(i + j) === (j < npte ? 1 : 0) ? 0 : 1;
    expect(wrong).toBe(0);

    bits.fill(0, 0, bytes);
    ctx.fd.hwptGetDirtyBitmap({
      hwptId: hwpt,
      flags,
      iova: MOCK_APERTURE_START,
      length: variant.bufferSize,
      pageSize,
      data: bits,
    });
    // It was read already: all zeroes, unless NO_CLEAR left them dirty.
    const keep = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
    for (let i = 0; i < nbits; i += pteset) {
      for (let j = 0; j < pteset; j++) wrong += bit(i + j) === (keep && j < npte ? 1 : 0) ? 0 : 1;
    }
    expect(wrong).toBe(0);
  }

  function getDirtyBitmap(flags: number): void {
    const pteSize = variant.hugepages ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE_SIZE;
    ioasMapFixed(ctx, ioasId, buffer, variant.bufferSize, MOCK_APERTURE_START);
    const hwpt = ctx.fd.hwptAlloc({
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      devId: idevId,
      ptId: ioasId,
    });
    ctx.fd.hwptSetDirtyTracking({ flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE, hwptId: hwpt });
    mockDirtyBitmaps(hwpt, pteSize, bitmap, flags);
    // PAGE_SIZE unaligned bitmap
    mockDirtyBitmaps(hwpt, pteSize, bitmap.subarray(MOCK_PAGE_SIZE), flags);
    // u64 unaligned bitmap
    mockDirtyBitmaps(hwpt, pteSize, bitmap.subarray(0xff1), flags);
    ctx.fd.destroy(hwpt);
  }

  test("get_dirty_bitmap", () => getDirtyBitmap(0));

  test("get_dirty_bitmap_no_clear", () => getDirtyBitmap(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR));
});
