import { expect } from "vitest";
import { IommufdError } from "../errors.js";
import { Iommufd } from "../iommufd.js";
import { Memfd } from "../pages/memfd.js";
import { IommufdTest } from "../selftest/test-ops.js";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  PAGE_SIZE,
  U64_MAX,
} from "../uapi.js";

/** The selftest's global buffers: 16 pages, THP-aligned (setup_sizes()). */
export const BUFFER_SIZE = 16 * PAGE_SIZE;
/** The hpage_pmd_size the selftest reads; 2M on x86. */
export const HUGEPAGE_SIZE = 2 ** 21;
/** READABLE | WRITEABLE: the flags the selftest helpers map with. */
export const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
/** RW plus FIXED_IOVA. */
export const RW_FIXED = RW | IOMMU_IOAS_MAP_FIXED_IOVA;

/** One open /dev/iommu with the selftest's buffers: what every FIXTURE_SETUP starts from. */
export interface SelftestContext {
  fd: Iommufd;
  t: IommufdTest;
  /** `buffer`: anonymous, MAP_SHARED, 16 pages at a THP-aligned VA. */
  buffer: number;
  /** `mfd`: a memfd of 16 pages, and `mfd_buffer`, its MAP_SHARED mapping. */
  mfd: Memfd;
  mfdBuffer: number;
}

/** open("/dev/iommu") plus the global buffers. */
export function openSelftest(): SelftestContext {
  const fd = new Iommufd();
  const t = new IommufdTest(fd);
  const buffer = fd.process.mmap(BUFFER_SIZE, { align: HUGEPAGE_SIZE });
  const mfd = new Memfd({ phys: fd.phys, size: BUFFER_SIZE });
  const mfdBuffer = fd.process.mmapFile(mfd, 0, BUFFER_SIZE);
  return { fd, t, buffer, mfd, mfdBuffer };
}

/**
 * teardown_iommufd(): close destroys every object; then nothing may still be
 * pinned, charged or allocated (the selftest's MD_CHECK_REFS on the buffer,
 * widened to every counter the model has).
 */
export function teardownSelftest(ctx: SelftestContext): void {
  ctx.fd.close();
  const s = ctx.fd.stats();
  expect(s).toEqual({ objects: 0, pinnedPages: 0, pages: 0, tablePages: 0 });
  expect(ctx.fd.process.pinnedVm).toBe(0);
  expect(ctx.fd.process.lockedVm).toBe(0);
  expect(ctx.fd.process.user.lockedVm).toBe(0);
  expect(ctx.mfd.subscribers).toBe(0);
}

/** EXPECT_ERRNO(code, call). */
export function expectErrno(code: string, call: () => unknown): void {
  let thrown: unknown = null;
  try {
    call();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(IommufdError);
  expect((thrown as IommufdError).code).toBe(code);
}

/** test_ioctl_ioas_map(): automatic IOVA, read/write. */
export function ioasMap(
  ctx: SelftestContext,
  ioasId: number,
  userVa: number,
  length: number,
): number {
  return ctx.fd.ioasMap({ ioasId, flags: RW, userVa, length });
}

/** test_ioctl_ioas_map_fixed(). */
export function ioasMapFixed(
  ctx: SelftestContext,
  ioasId: number,
  userVa: number,
  length: number,
  iova: number,
): number {
  return ctx.fd.ioasMap({ ioasId, flags: RW_FIXED, userVa, length, iova });
}

/** test_ioctl_ioas_map_file(): automatic IOVA. */
export function ioasMapFile(
  ctx: SelftestContext,
  ioasId: number,
  file: Memfd,
  start: number,
  length: number,
): number {
  return ctx.fd.ioasMapFile({ ioasId, flags: RW, file, start, length });
}

/** test_ioctl_ioas_unmap(); returns the bytes unmapped. */
export function ioasUnmap(
  ctx: SelftestContext,
  ioasId: number,
  iova: number,
  length: number,
): number {
  return ctx.fd.ioasUnmap({ ioasId, iova, length });
}

/** Unmap everything. */
export function ioasUnmapAll(ctx: SelftestContext, ioasId: number): number {
  return ctx.fd.ioasUnmap({ ioasId, iova: 0, length: U64_MAX });
}

/** 1 << (ffs(v) - 1): the lowest set bit. */
export function lowBit(v: number): number {
  let b = 1;
  while (v % (b * 2) === 0) b *= 2;
  return b;
}
