/**
 * tools/testing/selftests/iommu/iommufd_fail_nth.c re-expressed: each scenario
 * runs once clean, then once per injection site with that site failing. The
 * kernel's test only looks for WARNs and leaks; the model also checks that the
 * failing call changed nothing visible (see sweepFailNth). Sites: object and
 * area allocations, iopt_pages, pins, reserved and allowed ranges, COPY lists,
 * object lookups, and every page-table page. Not here: the `device` scenario's
 * vIOMMU, vDEVICE and fault-queue steps (not modelled).
 */
import { describe, expect, test } from "vitest";
import { AmdIommu } from "../device/amd-iommu.js";
import { Memfd } from "../pages/memfd.js";
import { sweepFailNth } from "../test-support/fail-nth.js";
import { BUFFER_SIZE, openSelftest, RW, RW_FIXED } from "../test-support/selftest.js";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  PAGE_SIZE,
  U64_MAX,
} from "../uapi.js";

const K256 = 256 * 1024;
const M2 = 2 ** 21;

describe("iommufd_fail_nth", () => {
  test("basic: ioas.c end to end", () => {
    const r = sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        step(() => ctx.fd.ioasIovaRanges({ ioasId, numIovas: 4 }));
        step(() =>
          ctx.fd.ioasAllowIovas({
            ioasId,
            allowedIovas: [{ start: 16 * PAGE_SIZE, last: 2 ** 32 }],
          }),
        );
        const iova = step(() =>
          ctx.fd.ioasMap({ ioasId, flags: RW, userVa: ctx.buffer, length: BUFFER_SIZE }),
        );
        step(() =>
          ctx.fd.ioasCopy({
            flags: IOMMU_IOAS_MAP_WRITEABLE,
            dstIoasId: ioasId,
            srcIoasId: ioasId,
            length: BUFFER_SIZE,
            srcIova: iova,
          }),
        );
        step(() => ctx.fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE }));
        // The kernel's body ends with a second UNMAP that must fail; an injected
        // lookup failure there is ENOENT too, so the sweep cannot tell them apart
        // and the case stands alone below.
      },
    );
    const { fd, buffer } = openSelftest();
    const ioasId = fd.ioasAlloc();
    const iova = fd.ioasMap({ ioasId, flags: RW, userVa: buffer, length: BUFFER_SIZE });
    fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE });
    expect(() => fd.ioasUnmap({ ioasId, iova, length: BUFFER_SIZE })).toThrow(/ENOENT/);
    fd.close();
    expect(r.sites).toBeGreaterThan(8);
  });

  function mapDomain(file: boolean) {
    return sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const buf = ctx.fd.process.mmap(K256, { align: M2 });
        const mfd = new Memfd({ phys: ctx.fd.phys, size: K256 });
        step(() => ctx.fd.option({ optionId: 1, op: 0, objectId: ioasId, val64: 0 }));
        const dev = step(() => ctx.t.mockDomain(ioasId));
        const iova = file
          ? step(() =>
              ctx.fd.ioasMapFile({
                ioasId,
                flags: RW_FIXED,
                file: mfd,
                start: 0,
                length: K256,
                iova: MOCK_APERTURE_START,
              }),
            )
          : step(() =>
              ctx.fd.ioasMap({
                ioasId,
                flags: RW_FIXED,
                userVa: buf,
                length: K256,
                iova: MOCK_APERTURE_START,
              }),
            );
        step(() => ctx.fd.destroy(dev.stdevId));
        // Fill and unfill a new domain with the area present.
        const again = step(() => ctx.t.mockDomain(ioasId));
        step(() => ctx.t.mdCheckMap(again.hwptId, iova, PAGE_SIZE, buf));
        step(() => ctx.fd.ioasUnmap({ ioasId, iova, length: K256 }));
      },
    );
  }

  test("map_domain", () => {
    expect(mapDomain(false).sites).toBeGreaterThan(10);
  });

  test("map_file_domain", () => {
    // mdCheckMap reads the anonymous buffer, not the file: the file run stops before it.
    const r = sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const mfd = new Memfd({ phys: ctx.fd.phys, size: K256 });
        const dev = step(() => ctx.t.mockDomain(ioasId));
        const iova = step(() =>
          ctx.fd.ioasMapFile({
            ioasId,
            flags: RW_FIXED,
            file: mfd,
            start: 0,
            length: K256,
            iova: MOCK_APERTURE_START,
          }),
        );
        step(() => ctx.fd.destroy(dev.stdevId));
        const again = step(() => ctx.t.mockDomain(ioasId));
        step(() => ctx.t.mdCheckMapFile(again.hwptId, iova, K256, mfd, 0));
        step(() => ctx.fd.ioasUnmap({ ioasId, iova, length: K256 }));
      },
    );
    expect(r.sites).toBeGreaterThan(10);
  });

  test("map_two_domains", () => {
    const r = sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const buf = ctx.fd.process.mmap(K256, { align: M2 });
        const a = step(() => ctx.t.mockDomain(ioasId));
        // A second domain of its own: a manual HWPT the second device attaches to.
        const hwpt = step(() => ctx.fd.hwptAlloc({ flags: 0, devId: a.idevId, ptId: ioasId }));
        const b = step(() => ctx.t.mockDomain(hwpt));
        const iova = step(() =>
          ctx.fd.ioasMap({
            ioasId,
            flags: RW_FIXED,
            userVa: buf,
            length: K256,
            iova: MOCK_APERTURE_START,
          }),
        );
        step(() => ctx.fd.destroy(a.stdevId));
        step(() => ctx.fd.destroy(b.stdevId));
        step(() => ctx.fd.destroy(hwpt));
        const c = step(() => ctx.t.mockDomain(ioasId));
        const hwpt2 = step(() => ctx.fd.hwptAlloc({ flags: 0, devId: c.idevId, ptId: ioasId }));
        step(() => ctx.t.mdCheckMap(hwpt2, iova, K256, buf));
      },
    );
    expect(r.sites).toBeGreaterThan(15);
  });

  test("access_rw", () => {
    const r = sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const buf = ctx.fd.process.mmap(K256, { align: M2 });
        const iova = step(() => ctx.fd.ioasMap({ ioasId, flags: RW, userVa: buf, length: K256 }));
        const access = step(() => ctx.t.createAccess(ioasId));
        const tmp = new Uint8Array(4096);
        step(() => ctx.t.accessRw(access, iova, tmp.subarray(0, 64), 0));
        step(() => ctx.t.accessRw(access, iova, tmp.subarray(0, 64), 1));
        step(() => ctx.t.accessRw(access, iova, tmp.subarray(0, 64), 4));
        step(() => ctx.t.accessRw(access, iova, tmp.subarray(0, 64), 5));
        const big = new Uint8Array(32 * 1024);
        step(() => ctx.t.accessRw(access, iova, big, 4));
        step(() => ctx.t.destroyAccess(access));
      },
    );
    expect(r.sites).toBeGreaterThan(5);
  });

  function accessPin(withDomain: boolean) {
    return sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const buf = ctx.fd.process.mmap(M2, { huge: true });
        if (withDomain) step(() => ctx.t.mockDomain(ioasId));
        const iova = step(() => ctx.fd.ioasMap({ ioasId, flags: RW, userVa: buf, length: M2 }));
        const access = step(() =>
          ctx.t.createAccess(ioasId, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES),
        );
        const pin = step(() => ctx.t.accessPages(access, iova, M2, 1));
        step(() => ctx.t.destroyAccessPages(access, pin));
        step(() => ctx.t.destroyAccess(access));
      },
    );
  }

  test("access_pin", () => {
    expect(accessPin(false).sites).toBeGreaterThan(5);
  });

  test("access_pin_domain", () => {
    expect(accessPin(true).sites).toBeGreaterThan(5);
  });

  test("device: bind, hw_info, hwpt alloc, replace", () => {
    const r = sweepFailNth(
      () => {},
      (ctx, step) => {
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const ioas2 = step(() => ctx.fd.ioasAlloc());
        const buf = ctx.fd.process.mmap(K256, { align: M2 });
        step(() =>
          ctx.fd.ioasMap({
            ioasId,
            flags: RW_FIXED,
            userVa: buf,
            length: K256,
            iova: MOCK_APERTURE_START,
          }),
        );
        step(() =>
          ctx.fd.ioasMap({
            ioasId: ioas2,
            flags: RW_FIXED,
            userVa: buf,
            length: K256,
            iova: MOCK_APERTURE_START,
          }),
        );
        const dev = step(() => ctx.t.mockDomain(ioasId));
        step(() => ctx.fd.getHwInfo({ devId: dev.idevId, data: new Uint8Array(8) }));
        const hwpt = step(() => ctx.fd.hwptAlloc({ flags: 0, devId: dev.idevId, ptId: ioasId }));
        step(() => ctx.t.mockDomainReplace(dev.stdevId, ioas2));
        step(() => ctx.t.mockDomainReplace(dev.stdevId, hwpt));
        const parent = step(() =>
          ctx.fd.hwptAlloc({
            flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
            devId: dev.idevId,
            ptId: ioasId,
          }),
        );
        step(() => ctx.t.mockDomainReplace(dev.stdevId, parent));
        step(() => ctx.fd.destroy(hwpt));
      },
    );
    expect(r.sites).toBeGreaterThan(15);
  });

  test("smashlab seed flow: a capped AMD HWPT, MAP_FILE of 2M folios, adjust to 4K and back", () => {
    const r = sweepFailNth(
      () => {},
      (ctx, step) => {
        const amd = new AmdIommu();
        const devId = step(() => ctx.fd.bind({ name: "tdi", iommu: amd, group: {}, flags: 0 }));
        const ioasId = step(() => ctx.fd.ioasAlloc());
        const hwptId = step(() =>
          ctx.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, maxPageSize: M2 }),
        );
        step(() => ctx.fd.deviceAttach(devId, hwptId));
        const file = new Memfd({ phys: ctx.fd.phys, size: 8 * M2, folioSize: M2 });
        const gpa = 2 ** 32;
        step(() =>
          ctx.fd.ioasMapFile({
            ioasId,
            flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA,
            file,
            start: 0,
            length: 8 * M2,
            iova: gpa,
          }),
        );
        step(() =>
          ctx.fd.hwptAdjustPageSize({
            hwptId,
            iova: gpa + 3 * M2,
            length: 2 * M2,
            pageSize: PAGE_SIZE,
          }),
        );
        step(() =>
          ctx.fd.hwptAdjustPageSize({ hwptId, iova: gpa + 3 * M2, length: 2 * M2, pageSize: M2 }),
        );
        step(() => ctx.fd.ioasUnmap({ ioasId, iova: 0, length: U64_MAX }));
      },
    );
    expect(r.sites).toBeGreaterThan(8);
  });
});
