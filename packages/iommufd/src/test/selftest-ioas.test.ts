/**
 * FIXTURE iommufd_ioas of tools/testing/selftests/iommu/iommufd.c, re-expressed
 * against the model: same variants, same scenarios, same errno expectations.
 * Not here: the PASID-capable device of the mock_domain variant and the
 * nested/vIOMMU halves of alloc_hwpt_nested (not modelled), dmabuf_* (no
 * dma-buf source yet).
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { Span } from "../iopt/iova-alloc.js";
import {
  BUFFER_SIZE,
  expectErrno,
  HUGEPAGE_SIZE,
  ioasMap,
  ioasMapFixed,
  ioasUnmap,
  lowBit,
  openSelftest,
  RW_FIXED,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import {
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_PAGE_SIZE,
  PAGE_SIZE,
  ULONG_MAX,
} from "../uapi.js";

interface Variant {
  name: string;
  mockDomains: number;
  memoryLimit: number;
}

const variants: Variant[] = [
  { name: "no_domain", mockDomains: 0, memoryLimit: 0 },
  { name: "mock_domain", mockDomains: 1, memoryLimit: 0 },
  { name: "two_mock_domain", mockDomains: 2, memoryLimit: 0 },
  { name: "mock_domain_limit", mockDomains: 1, memoryLimit: 16 },
];

describe.each(variants)("iommufd_ioas.$name", (variant) => {
  let ctx: SelftestContext;
  let ioasId = 0;
  let stdevId = 0;
  let hwptId = 0;
  let deviceId = 0;
  let baseIova = 0;

  beforeEach(() => {
    ctx = openSelftest();
    ioasId = ctx.fd.ioasAlloc();
    if (variant.memoryLimit) ctx.t.setTempMemoryLimit(variant.memoryLimit);
    stdevId = hwptId = deviceId = baseIova = 0;
    for (let i = 0; i < variant.mockDomains; i++) {
      const r = ctx.t.mockDomain(ioasId);
      stdevId = r.stdevId;
      hwptId = r.hwptId;
      deviceId = r.idevId;
      baseIova = MOCK_APERTURE_START;
    }
  });

  afterEach(() => teardownSelftest(ctx));

  test("ioas_auto_destroy", () => {});

  test("ioas_destroy", () => {
    if (stdevId) expectErrno("EBUSY", () => ctx.fd.destroy(ioasId));
    else ctx.fd.destroy(ioasId);
  });

  test("alloc_hwpt_nested (the paging half)", () => {
    if (deviceId) {
      expectErrno("ENOENT", () => ctx.fd.hwptAlloc({ flags: 0, devId: ioasId, ptId: deviceId }));
      expectErrno("EINVAL", () => ctx.fd.hwptAlloc({ flags: 0, devId: deviceId, ptId: deviceId }));
      expectErrno("EOPNOTSUPP", () =>
        ctx.fd.hwptAlloc({
          flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID,
          devId: deviceId,
          ptId: ioasId,
        }),
      );
      const parent = ctx.fd.hwptAlloc({
        flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
        devId: deviceId,
        ptId: ioasId,
      });
      const notWork = ctx.fd.hwptAlloc({ flags: 0, devId: deviceId, ptId: ioasId });
      ctx.t.mockDomainReplace(stdevId, parent);
      expectErrno("EBUSY", () => ctx.fd.destroy(parent));
      ctx.t.mockDomainReplace(stdevId, ioasId);
      ctx.fd.destroy(parent);
      ctx.fd.destroy(notWork);
    } else {
      expectErrno("ENOENT", () => ctx.fd.hwptAlloc({ flags: 0, devId: deviceId, ptId: ioasId }));
      expectErrno("ENOENT", () => ctx.t.mockDomainReplace(stdevId, 0));
    }
  });

  test("hwpt_attach", () => {
    if (stdevId) ctx.t.mockDomain(hwptId);
    else expectErrno("ENOENT", () => ctx.t.mockDomain(hwptId));
  });

  test("ioas_area_destroy", () => {
    ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE, baseIova);
    if (stdevId) expectErrno("EBUSY", () => ctx.fd.destroy(ioasId));
    else ctx.fd.destroy(ioasId);
  });

  test("ioas_area_auto_destroy", () => {
    for (let i = 0; i < 10; i++)
      ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
  });

  test("get_hw_info", () => {
    const exact = new Uint8Array(8);
    const larger = new Uint8Array(16).fill(0xaa);
    if (deviceId) {
      const zero = { devId: deviceId, dataLen: 0 };
      ctx.fd.getHwInfo(zero);
      expect(zero.dataLen).toBe(8);
      ctx.fd.getHwInfo({ devId: deviceId, data: exact });
      expect(new DataView(exact.buffer).getUint32(4, true)).toBe(0xdeadbeef);
      expectErrno("EOPNOTSUPP", () =>
        ctx.fd.getHwInfo({
          devId: deviceId,
          data: exact,
          flags: 1,
          inDataType: IOMMU_HW_INFO_TYPE_SELFTEST + 1,
        }),
      );
      const typed = {
        devId: deviceId,
        data: exact,
        flags: 1,
        inDataType: IOMMU_HW_INFO_TYPE_SELFTEST,
        outDataType: 0,
      };
      ctx.fd.getHwInfo(typed);
      expect(typed.outDataType).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
      ctx.fd.getHwInfo({ devId: deviceId, data: larger });
      expect([...larger.subarray(8)]).toEqual(new Array(8).fill(0));
      const smaller = new Uint8Array(8).fill(0x55);
      ctx.fd.getHwInfo({ devId: deviceId, data: smaller, dataLen: 4 });
      expect([...smaller.subarray(4)]).toEqual([0x55, 0x55, 0x55, 0x55]);
      const pasid = { devId: deviceId, outMaxPasidLog2: -1 };
      ctx.fd.getHwInfo(pasid);
      expect(pasid.outMaxPasidLog2).toBe(0);
    } else {
      expectErrno("ENOENT", () => ctx.fd.getHwInfo({ devId: deviceId, data: exact }));
      expectErrno("ENOENT", () => ctx.fd.getHwInfo({ devId: deviceId, data: larger }));
    }
  });

  test("area", () => {
    for (let i = 0; i < 10; i++)
      expectErrno("ENOENT", () => ioasUnmap(ctx, ioasId, i * PAGE_SIZE, PAGE_SIZE));
    for (let i = 0; i < 10; i++)
      ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE, baseIova + i * PAGE_SIZE);
    for (let i = 0; i < 10; i++) ioasUnmap(ctx, ioasId, baseIova + i * PAGE_SIZE, PAGE_SIZE);

    // Split fails
    ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE * 2, baseIova + 16 * PAGE_SIZE);
    expectErrno("ENOENT", () => ioasUnmap(ctx, ioasId, baseIova + 16 * PAGE_SIZE, PAGE_SIZE));
    expectErrno("ENOENT", () => ioasUnmap(ctx, ioasId, baseIova + 17 * PAGE_SIZE, PAGE_SIZE));

    // Over map fails
    for (const [len, at] of [
      [2, 16],
      [1, 16],
      [1, 17],
      [2, 15],
      [3, 15],
    ] as const) {
      expectErrno("EEXIST", () =>
        ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE * len, baseIova + at * PAGE_SIZE),
      );
    }
    expect(ctx.fd.ioasUnmap({ ioasId, iova: 0, length: 2 ** 64 })).toBe(2 * PAGE_SIZE);
    expect(ctx.fd.ioasUnmap({ ioasId, iova: 0, length: 2 ** 64 })).toBe(0);
  });

  test("unmap_fully_contained_areas", () => {
    const base = baseIova + 4 * PAGE_SIZE;
    for (let i = 0; i < 4; i++)
      ioasMapFixed(ctx, ioasId, ctx.buffer, 8 * PAGE_SIZE, base + i * 16 * PAGE_SIZE);
    expectErrno("ENOENT", () => ioasUnmap(ctx, ioasId, base - 4 * PAGE_SIZE, 8 * PAGE_SIZE));
    expectErrno("ENOENT", () =>
      ioasUnmap(
        ctx,
        ioasId,
        base + 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE - 4 * PAGE_SIZE,
        8 * PAGE_SIZE,
      ),
    );
    const args = {
      ioasId,
      iova: base - 4 * PAGE_SIZE,
      length: 3 * 16 * PAGE_SIZE + 8 * PAGE_SIZE + 4 * PAGE_SIZE,
    };
    ctx.fd.ioasUnmap(args);
    expect(args.length).toBe(32 * PAGE_SIZE);
  });

  test("area_auto_iova", () => {
    const iovas: number[] = [];
    for (let i = 0; i < 10; i++) iovas.push(ioasMap(ctx, ioasId, ctx.buffer, PAGE_SIZE));
    for (const iova of iovas) ioasUnmap(ctx, ioasId, iova, PAGE_SIZE);

    // The kernel aligns automatic IOVAs
    iovas.length = 0;
    for (let i = 0; i < 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      const va = stdevId ? ctx.buffer : 2 ** 31;
      iovas.push(ioasMap(ctx, ioasId, va, length));
      expect(iovas[i]! % lowBit(length)).toBe(0);
    }
    for (let i = 0; i < 10; i++) ioasUnmap(ctx, ioasId, iovas[i]!, PAGE_SIZE * (i + 1));

    // Avoids a reserved region
    const reserved = { start: PAGE_SIZE * 4, length: PAGE_SIZE * 100 };
    ctx.t.addReserved(ioasId, reserved.start, reserved.length);
    iovas.length = 0;
    for (let i = 0; i < 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      iovas.push(ioasMap(ctx, ioasId, ctx.buffer, length));
      expect(iovas[i]! % lowBit(length)).toBe(0);
      expect(iovas[i]! > reserved.start && iovas[i]! < reserved.start + reserved.length).toBe(
        false,
      );
    }
    for (let i = 0; i < 10; i++) ioasUnmap(ctx, ioasId, iovas[i]!, PAGE_SIZE * (i + 1));

    // Allowed region intersects with a reserved region
    expectErrno("EADDRINUSE", () =>
      ctx.fd.ioasAllowIovas({
        ioasId,
        allowedIovas: [{ start: PAGE_SIZE, last: PAGE_SIZE * 600 }],
      }),
    );

    // Allocate from an allowed region
    const range: Span = stdevId
      ? { start: MOCK_APERTURE_START + PAGE_SIZE, last: MOCK_APERTURE_START + PAGE_SIZE * 600 - 1 }
      : { start: PAGE_SIZE * 200, last: PAGE_SIZE * 600 - 1 };
    ctx.fd.ioasAllowIovas({ ioasId, allowedIovas: [range] });
    iovas.length = 0;
    for (let i = 0; i < 10; i++) {
      const length = PAGE_SIZE * (i + 1);
      const iova = ioasMap(ctx, ioasId, ctx.buffer, length);
      iovas.push(iova);
      expect(iova % lowBit(length)).toBe(0);
      expect(iova >= range.start && iova <= range.last).toBe(true);
      expect(iova + length > range.start && iova + length <= range.last + 1).toBe(true);
    }
    for (let i = 0; i < 10; i++) ioasUnmap(ctx, ioasId, iovas[i]!, PAGE_SIZE * (i + 1));
  });

  test("reserved_overflow", () => {
    // The kernel reserves [6, U64_MAX - 0x7ff9]; the model's IOVA space ends at ULONG_MAX.
    ctx.t.addReserved(ioasId, 6, ULONG_MAX - 0x7ff9 - 6 + 1);
    expectErrno("ENOSPC", () => ioasMap(ctx, ioasId, ctx.buffer, 0x5000));
  });

  test("area_allowed", () => {
    const allowed = { start: baseIova, last: baseIova + PAGE_SIZE * 600 };
    ctx.fd.ioasAllowIovas({ ioasId, allowedIovas: [allowed] });
    expectErrno("EADDRINUSE", () =>
      ctx.t.addReserved(ioasId, allowed.start + PAGE_SIZE, PAGE_SIZE),
    );
    ctx.fd.ioasAllowIovas({ ioasId, allowedIovas: [] });

    ctx.t.addReserved(ioasId, allowed.start + PAGE_SIZE, PAGE_SIZE);
    expectErrno("EADDRINUSE", () => ctx.fd.ioasAllowIovas({ ioasId, allowedIovas: [allowed] }));
  });

  test("copy_area", () => {
    ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE, baseIova);
    const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE;
    ctx.fd.ioasCopy({
      flags,
      dstIoasId: ioasId,
      srcIoasId: ioasId,
      length: PAGE_SIZE,
      srcIova: baseIova,
      dstIova: baseIova + PAGE_SIZE,
    });
    const dst = ctx.fd.ioasAlloc();
    ctx.fd.ioasCopy({
      flags,
      dstIoasId: dst,
      srcIoasId: ioasId,
      length: PAGE_SIZE,
      srcIova: baseIova,
      dstIova: 0,
    });
  });

  test("iova_ranges", () => {
    const cmd = {
      ioasId,
      numIovas: BUFFER_SIZE / 16,
      allowedIovas: [] as Span[],
      outIovaAlignment: 0,
    };
    ctx.fd.ioasIovaRanges(cmd);
    expect(cmd.numIovas).toBe(1);
    if (!stdevId) {
      expect(cmd.allowedIovas[0]).toEqual({ start: 0, last: ULONG_MAX });
      expect(cmd.outIovaAlignment).toBe(1);
    } else {
      expect(cmd.allowedIovas[0]).toEqual({ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST });
      expect(cmd.outIovaAlignment).toBe(MOCK_PAGE_SIZE);
    }

    // Buffer too small
    cmd.numIovas = 0;
    expectErrno("EMSGSIZE", () => ctx.fd.ioasIovaRanges(cmd));
    expect(cmd.numIovas).toBe(1);
    expect(cmd.allowedIovas).toEqual([]);

    // 2 ranges
    ctx.t.addReserved(ioasId, PAGE_SIZE, PAGE_SIZE);
    cmd.numIovas = BUFFER_SIZE / 16;
    ctx.fd.ioasIovaRanges(cmd);
    if (!stdevId) {
      expect(cmd.numIovas).toBe(2);
      expect(cmd.allowedIovas).toEqual([
        { start: 0, last: PAGE_SIZE - 1 },
        { start: PAGE_SIZE * 2, last: ULONG_MAX },
      ]);
    } else {
      expect(cmd.numIovas).toBe(1);
      expect(cmd.allowedIovas).toEqual([{ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST }]);
    }

    // Buffer too small
    cmd.numIovas = 1;
    if (!stdevId) {
      expectErrno("EMSGSIZE", () => ctx.fd.ioasIovaRanges(cmd));
      expect(cmd.numIovas).toBe(2);
      expect(cmd.allowedIovas).toEqual([{ start: 0, last: PAGE_SIZE - 1 }]);
    } else {
      ctx.fd.ioasIovaRanges(cmd);
      expect(cmd.numIovas).toBe(1);
      expect(cmd.allowedIovas).toEqual([{ start: MOCK_APERTURE_START, last: MOCK_APERTURE_LAST }]);
    }
  });

  test("access_domain_destory", () => {
    const bufSize = 2 * HUGEPAGE_SIZE;
    const buf = ctx.fd.process.mmap(bufSize, { huge: true });
    ioasMapFixed(ctx, ioasId, buf, bufSize, baseIova);
    const access = ctx.t.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    const pages = ctx.t.accessPages(access, baseIova + PAGE_SIZE, PAGE_SIZE);
    expect(ctx.t.accessPagesPfns(access, pages)).toEqual([
      ctx.fd.process.translate(buf + PAGE_SIZE),
    ]);
    // A complicated unpin across a huge page boundary
    if (stdevId) ctx.fd.destroy(stdevId);
    ctx.t.destroyAccessPages(access, pages);
    ctx.t.destroyAccess(access);
    ctx.fd.process.munmap(buf, bufSize);
  });

  test("access_pin", () => {
    const access = ctx.t.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    for (let npages = 1; npages < BUFFER_SIZE / PAGE_SIZE; npages++) {
      const length = npages * PAGE_SIZE;
      // Single map/unmap
      ioasMapFixed(ctx, ioasId, ctx.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      let p = ctx.t.accessPages(access, MOCK_APERTURE_START, length);
      ctx.t.destroyAccessPages(access, p);

      // Double user
      const first = ctx.t.accessPages(access, MOCK_APERTURE_START, length);
      p = ctx.t.accessPages(access, MOCK_APERTURE_START, length);
      ctx.t.mdCheckRefs(ctx.buffer, length, 1);
      ctx.t.destroyAccessPages(access, p);
      ctx.t.destroyAccessPages(access, first);

      // Add/remove a domain with a user
      p = ctx.t.accessPages(access, MOCK_APERTURE_START, length);
      const mock = ctx.t.mockDomain(ioasId);
      ctx.t.mdCheckMap(mock.hwptId, MOCK_APERTURE_START, BUFFER_SIZE, ctx.buffer);
      ctx.fd.destroy(mock.stdevId);
      ctx.t.destroyAccessPages(access, p);

      ioasUnmap(ctx, ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
    }
    ctx.t.destroyAccess(access);
  });

  test("access_pin_unmap", () => {
    const access = ctx.t.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    ioasMapFixed(ctx, ioasId, ctx.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    const p = ctx.t.accessPages(access, MOCK_APERTURE_START, BUFFER_SIZE);
    // Triggers the access's unmap op
    ioasUnmap(ctx, ioasId, MOCK_APERTURE_START, BUFFER_SIZE);
    // The kernel removed the item for us
    expectErrno("ENOENT", () => ctx.t.destroyAccessPages(access, p));
  });

  /** memcmp() that fails with the offending IOVA (expect().toEqual is slow on thousands of arrays). */
  function sameBytes(a: Uint8Array, b: Uint8Array, at: number): void {
    if (Buffer.compare(a, b) !== 0) expect({ at, a: [...a] }).toEqual({ at, a: [...b] });
  }

  /** check_access_rw(): byte-granular reads and writes around a page boundary, then the whole buffer. */
  function checkAccessRw(access: number, iova: number, flags: number): void {
    const mm = ctx.fd.process;
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    const fill = new Uint8Array(BUFFER_SIZE);
    for (let i = 0; i < fill.length; i++) fill[i] = rand() & 0xff;
    mm.poke(ctx.buffer, fill);
    for (let at = iova + PAGE_SIZE - 50; at < iova + PAGE_SIZE + 50; at++) {
      for (let length = 1; length < 64; length++) {
        const tmp = new Uint8Array(length);
        ctx.t.accessRw(access, at, tmp, flags);
        sameBytes(tmp, mm.peek(ctx.buffer + (at - iova), length), at);
        for (let i = 0; i < length; i++) tmp[i] = rand() & 0xff;
        ctx.t.accessRw(access, at, tmp, flags | 1);
        sameBytes(mm.peek(ctx.buffer + (at - iova), length), tmp, at);
      }
    }
    const all = new Uint8Array(BUFFER_SIZE);
    ctx.t.accessRw(access, iova, all, flags);
    expect(all).toEqual(mm.peek(ctx.buffer, BUFFER_SIZE));
  }

  test("access_rw", () => {
    const access = ctx.t.createAccess(ioasId);
    const iova = ioasMap(ctx, ioasId, ctx.buffer, BUFFER_SIZE);
    checkAccessRw(access, iova, 0);
    checkAccessRw(access, iova, 4);
    ioasUnmap(ctx, ioasId, iova, BUFFER_SIZE);
    ctx.t.destroyAccess(access);
  });

  test("access_rw_unaligned", () => {
    const access = ctx.t.createAccess(ioasId);
    const iova = baseIova + MOCK_PAGE_SIZE;
    ioasMapFixed(ctx, ioasId, ctx.buffer, BUFFER_SIZE, iova);
    checkAccessRw(access, iova, 0);
    ioasUnmap(ctx, ioasId, iova, BUFFER_SIZE);
    ctx.t.destroyAccess(access);
  });

  test("fork_gone", () => {
    const access = ctx.t.createAccess(ioasId);
    // A mapping made by another process (the same buffer in a forked child), which then exits.
    const child = ctx.fd.process.fork();
    ctx.fd.ioasMap({
      ioasId,
      flags: RW_FIXED,
      userVa: ctx.buffer,
      length: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
      process: child,
    });
    child.exit();
    if (stdevId) {
      // Everything was pinned within the fork, so this copies from one domain to another.
      ctx.t.mockDomain(ioasId);
      const all = new Uint8Array(BUFFER_SIZE);
      ctx.t.accessRw(access, MOCK_APERTURE_START, all);
    } else {
      // Pinning now would need the child's mm, which is gone.
      expectErrno("EFAULT", () => ctx.t.mockDomain(ioasId));
    }
    ctx.t.destroyAccess(access);
  });

  test("fork_present", () => {
    const access = ctx.t.createAccess(ioasId);
    const child = ctx.fd.process.fork();
    ctx.fd.ioasMap({
      ioasId,
      flags: RW_FIXED,
      userVa: ctx.buffer,
      length: BUFFER_SIZE,
      iova: MOCK_APERTURE_START,
      process: child,
    });
    // Pages are read from the remote process
    ctx.t.mockDomain(ioasId);
    const all = new Uint8Array(BUFFER_SIZE);
    ctx.t.accessRw(access, MOCK_APERTURE_START, all);
    expect(all).toEqual(ctx.fd.process.peek(ctx.buffer, BUFFER_SIZE));
    child.exit();
    ctx.t.destroyAccess(access);
  });

  test("ioas_option_huge_pages", () => {
    const cmd = {
      optionId: IOMMU_OPTION_HUGE_PAGES,
      op: IOMMU_OPTION_OP_GET,
      objectId: ioasId,
      val64: 3,
    };
    ctx.fd.option(cmd);
    expect(cmd.val64).toBe(1);
    ctx.fd.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 0 });
    cmd.val64 = 3;
    ctx.fd.option(cmd);
    expect(cmd.val64).toBe(0);
    expectErrno("EINVAL", () => ctx.fd.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 2 }));
    ctx.fd.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 1 });
  });

  test("ioas_iova_alloc", () => {
    for (let length = 1; length !== PAGE_SIZE * 2; length++) {
      if (variant.mockDomains && length % MOCK_PAGE_SIZE) {
        expectErrno("EINVAL", () => ioasMap(ctx, ioasId, ctx.buffer, length));
      } else {
        const iova = ioasMap(ctx, ioasId, ctx.buffer, length);
        ioasUnmap(ctx, ioasId, iova, length);
      }
    }
  });

  test("ioas_align_change", () => {
    // Alignment cannot rise through HUGE_PAGES once a domain and a map exist.
    if (variant.mockDomains) return;
    const set = (val64: number) =>
      ctx.fd.option({
        optionId: IOMMU_OPTION_HUGE_PAGES,
        op: IOMMU_OPTION_OP_SET,
        objectId: ioasId,
        val64,
      });
    ioasMapFixed(ctx, ioasId, ctx.buffer, PAGE_SIZE, MOCK_APERTURE_START);
    set(0);
    // Misalignment is rejected at map time
    expectErrno("EINVAL", () =>
      ioasMapFixed(
        ctx,
        ioasId,
        ctx.buffer + MOCK_PAGE_SIZE,
        PAGE_SIZE,
        MOCK_APERTURE_START + PAGE_SIZE,
      ),
    );
    set(0);
    set(1);
    // Misalignment is rejected during the alignment upgrade
    ioasMapFixed(
      ctx,
      ioasId,
      ctx.buffer + MOCK_PAGE_SIZE,
      PAGE_SIZE,
      MOCK_APERTURE_START + PAGE_SIZE,
    );
    expectErrno("EADDRINUSE", () => set(0));
    ioasUnmap(ctx, ioasId, MOCK_APERTURE_START + PAGE_SIZE, PAGE_SIZE);
    ioasUnmap(ctx, ioasId, MOCK_APERTURE_START, PAGE_SIZE);
  });

  test("copy_sweep", () => {
    const dst = ctx.fd.ioasAlloc();
    const last = variant.mockDomains
      ? MOCK_APERTURE_START + BUFFER_SIZE - 1
      : MOCK_APERTURE_START + BUFFER_SIZE - 2;
    ioasMapFixed(ctx, ioasId, ctx.buffer, last - MOCK_APERTURE_START + 1, MOCK_APERTURE_START);
    const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE;
    for (let iova = MOCK_APERTURE_START - PAGE_SIZE; iova <= last; iova += 511) {
      const copy = () =>
        ctx.fd.ioasCopy({
          flags,
          dstIoasId: dst,
          srcIoasId: ioasId,
          length: MOCK_PAGE_SIZE,
          srcIova: iova,
          dstIova: MOCK_APERTURE_START,
        });
      if (iova < MOCK_APERTURE_START || iova + MOCK_PAGE_SIZE - 1 > last) {
        expectErrno("ENOENT", copy);
      } else {
        copy();
        ioasUnmap(ctx, dst, MOCK_APERTURE_START, MOCK_PAGE_SIZE);
      }
    }
    ctx.fd.destroy(dst);
  });
});
