/**
 * Beyond upstream, what the seed thread's flow needs: a HWPT capped at the RMP's
 * page size, IOMMU_HWPT_ADJUST_PAGE_SIZE, and the guest_memfd -> iommufd
 * notification contract (conversions to the policy, truncate and punch-hole
 * revoke the whole area).
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { AmdIommu } from "../device/amd-iommu.js";
import type { ConversionEvent, RevokeEvent } from "../notify/file-events.js";
import { Memfd } from "../pages/memfd.js";
import {
  expectErrno,
  openSelftest,
  RW,
  RW_FIXED,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import { PAGE_SIZE, U64_MAX } from "../uapi.js";

const M2 = 2 ** 21;
const G1 = 2 ** 30;
/** The guest's GPA base; IOVA = GPA in the trusted domain. */
const GPA = 4 * G1;

interface Vm {
  devId: number;
  ioasId: number;
  hwptId: number;
  file: Memfd;
}

/** Steps 1-3 of the seed flow: an IOAS, a HWPT capped at `cap`, the guest's memory mapped from a file. */
function seedVm(ctx: SelftestContext, size: number, folio: number, cap: number): Vm {
  const amd = new AmdIommu();
  const devId = ctx.fd.bind({ name: "tdi0", iommu: amd, group: {}, flags: 0 });
  const ioasId = ctx.fd.ioasAlloc();
  const hwptId = ctx.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, maxPageSize: cap });
  ctx.fd.deviceAttach(devId, hwptId);
  const file = new Memfd({ phys: ctx.fd.phys, size, folioSize: folio });
  ctx.fd.ioasMapFile({ ioasId, flags: RW_FIXED, file, start: 0, length: size, iova: GPA });
  return { devId, ioasId, hwptId, file };
}

function leafSizes(
  ctx: SelftestContext,
  hwptId: number,
  iova: number,
  length: number,
): Record<number, number> {
  const out: Record<number, number> = {};
  ctx.fd.hwptDomain(hwptId).table.forEachLeaf(
    (l) => {
      out[l.sizeLg2] = (out[l.sizeLg2] ?? 0) + 1;
    },
    iova,
    length,
  );
  return out;
}

/** Every 4K page of [iova, iova + length) translates to the file's page. */
function expectTranslations(ctx: SelftestContext, vm: Vm, iova: number, length: number): void {
  const table = ctx.fd.hwptDomain(vm.hwptId).table;
  let wrong = 0;
  for (let off = 0; off < length; off += PAGE_SIZE) {
    if (table.translate(iova + off) !== vm.file.physOf((iova - GPA + off) / PAGE_SIZE)) wrong++;
  }
  expect(wrong).toBe(0);
}

describe("the seed flow through iommufd", () => {
  let ctx: SelftestContext;
  beforeEach(() => {
    ctx = openSelftest();
  });
  afterEach(() => teardownSelftest(ctx));

  test("1 GiB of 2M folios under a 2M cap: 512 x 2M leaves; adjust one region to 4K and back, translations unchanged throughout", () => {
    const vm = seedVm(ctx, G1, M2, M2);
    expect(leafSizes(ctx, vm.hwptId, GPA, G1)).toEqual({ 21: 512 });
    expectTranslations(ctx, vm, GPA, G1);

    const region = GPA + 77 * M2;
    const table = ctx.fd.hwptDomain(vm.hwptId).table;
    // Hitless: every entry write a walker can see keeps the region's translations.
    let writes = 0;
    table.observeLiveWrites(() => {
      writes++;
      for (let off = 0; off < M2; off += PAGE_SIZE) {
        expect(table.translate(region + off)).toBe(
          vm.file.physOf((region - GPA + off) / PAGE_SIZE),
        );
      }
    });
    const flushesBefore = ctx.fd.hwptDomain(vm.hwptId).flushes;
    const split = ctx.fd.hwptAdjustPageSize({
      hwptId: vm.hwptId,
      iova: region,
      length: M2,
      pageSize: PAGE_SIZE,
    });
    expect(split).toEqual({
      leavesSplit: 1,
      leavesMerged: 0,
      tablesAllocated: 1,
      tablesFreed: 0,
      invalidations: 1,
    });
    expect(leafSizes(ctx, vm.hwptId, region, M2)).toEqual({ 12: 512 });
    expect(leafSizes(ctx, vm.hwptId, GPA, G1)).toEqual({ 12: 512, 21: 511 });
    expectTranslations(ctx, vm, GPA, G1);

    const merge = ctx.fd.hwptAdjustPageSize({
      hwptId: vm.hwptId,
      iova: region,
      length: M2,
      pageSize: M2,
    });
    expect(merge).toEqual({
      leavesSplit: 0,
      leavesMerged: 1,
      tablesAllocated: 0,
      tablesFreed: 1,
      invalidations: 1,
    });
    table.observeLiveWrites(null);
    expect(writes).toBe(2);
    expect(ctx.fd.hwptDomain(vm.hwptId).flushes - flushesBefore).toBe(2);
    expect(leafSizes(ctx, vm.hwptId, GPA, G1)).toEqual({ 21: 512 });
    expectTranslations(ctx, vm, GPA, G1);

    // Adjusting to what is there already changes nothing and flushes nothing.
    const none = ctx.fd.hwptAdjustPageSize({
      hwptId: vm.hwptId,
      iova: region,
      length: M2,
      pageSize: M2,
    });
    expect(none).toEqual({
      leavesSplit: 0,
      leavesMerged: 0,
      tablesAllocated: 0,
      tablesFreed: 0,
      invalidations: 0,
    });
  });

  test("the cap: 1G folios map with 1G leaves uncapped, never above 2M capped", () => {
    const uncapped = seedVm(ctx, 2 * G1, G1, 0);
    expect(leafSizes(ctx, uncapped.hwptId, GPA, 2 * G1)).toEqual({ 30: 2 });
    const capped = ctx.fd.hwptAlloc({
      flags: 0,
      devId: uncapped.devId,
      ptId: uncapped.ioasId,
      maxPageSize: M2,
    });
    expect(leafSizes(ctx, capped, GPA, 2 * G1)).toEqual({ 21: 1024 });
    // Merging up to a size above the cap is refused; splitting below works.
    expectErrno("EINVAL", () =>
      ctx.fd.hwptAdjustPageSize({ hwptId: capped, iova: GPA, length: G1, pageSize: G1 }),
    );
    ctx.fd.hwptAdjustPageSize({ hwptId: capped, iova: GPA, length: M2, pageSize: PAGE_SIZE });
    expect(leafSizes(ctx, capped, GPA, M2)).toEqual({ 12: 512 });
    // A new map keeps the cap too.
    ctx.fd.ioasUnmap({ ioasId: uncapped.ioasId, iova: 0, length: U64_MAX });
    ctx.fd.ioasMapFile({
      ioasId: uncapped.ioasId,
      flags: RW_FIXED,
      file: uncapped.file,
      start: 0,
      length: G1,
      iova: GPA,
    });
    expect(leafSizes(ctx, capped, GPA, G1)).toEqual({ 21: 512 });
    expect(leafSizes(ctx, uncapped.hwptId, GPA, G1)).toEqual({ 30: 1 });
    ctx.fd.destroy(capped);
  });

  test("bad caps and bad adjusts", () => {
    const amd = new AmdIommu();
    const devId = ctx.fd.bind({ name: "tdi0", iommu: amd, group: {}, flags: 0 });
    const ioasId = ctx.fd.ioasAlloc();
    expectErrno("EINVAL", () =>
      ctx.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, maxPageSize: 3 * PAGE_SIZE }),
    );
    expectErrno("EINVAL", () =>
      ctx.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, maxPageSize: 2048 }),
    );
    const hwptId = ctx.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, maxPageSize: M2 });
    const file = new Memfd({ phys: ctx.fd.phys, size: 8 * M2, folioSize: M2 });
    ctx.fd.ioasMapFile({ ioasId, flags: RW_FIXED, file, start: 0, length: 4 * M2, iova: GPA });
    ctx.fd.ioasMapFile({
      ioasId,
      flags: RW_FIXED,
      file,
      start: 4 * M2,
      length: 4 * M2,
      iova: GPA + 6 * M2,
    });
    const adjust = (iova: number, length: number, pageSize: number) => () =>
      ctx.fd.hwptAdjustPageSize({ hwptId, iova, length, pageSize });
    expectErrno("ENOENT", adjust(GPA, 8 * M2, PAGE_SIZE)); // a gap between the areas
    expectErrno("ENOENT", adjust(GPA - M2, 2 * M2, PAGE_SIZE));
    expectErrno("EINVAL", adjust(GPA, 0, PAGE_SIZE));
    expectErrno("EINVAL", adjust(GPA, M2, 3 * PAGE_SIZE));
    expectErrno("EINVAL", adjust(GPA + 512, M2, PAGE_SIZE));
    expectErrno("ENOENT", () =>
      ctx.fd.hwptAdjustPageSize({ hwptId: ioasId, iova: GPA, length: M2, pageSize: PAGE_SIZE }),
    );
    expectErrno("EOVERFLOW", adjust(2 ** 60, M2, PAGE_SIZE));
    expectErrno("EINVAL", adjust(-1, M2, PAGE_SIZE));
  });

  test("adjacent, physically contiguous areas never merge into one leaf across their boundary", () => {
    const amd = new AmdIommu();
    const devId = ctx.fd.bind({ name: "tdi0", iommu: amd, group: {}, flags: 0 });
    const ioasId = ctx.fd.ioasAlloc();
    const hwptId = ctx.fd.hwptAlloc({ flags: 0, devId, ptId: ioasId });
    // 4K shmem pages are separate frames; a huge anonymous buffer is contiguous.
    const buf = ctx.fd.process.mmap(4 * M2, { huge: true });
    ctx.fd.ioasMap({ ioasId, flags: RW_FIXED, userVa: buf, length: M2 + M2 / 2, iova: GPA });
    ctx.fd.ioasMap({
      ioasId,
      flags: RW_FIXED,
      userVa: buf + M2 + M2 / 2,
      length: M2 / 2,
      iova: GPA + M2 + M2 / 2,
    });
    ctx.fd.hwptAdjustPageSize({ hwptId, iova: GPA, length: 2 * M2, pageSize: M2 });
    expect(leafSizes(ctx, hwptId, GPA + M2, M2)[21]).toBeUndefined();
    // Unmapping the first area leaves the second intact.
    ctx.fd.ioasUnmap({ ioasId, iova: GPA, length: M2 + M2 / 2 });
    expect(ctx.fd.hwptDomain(hwptId).table.translate(GPA + M2 + M2 / 2)).toBe(
      ctx.fd.process.translate(buf + M2 + M2 / 2),
    );
    expect(ctx.fd.hwptDomain(hwptId).table.translate(GPA + M2)).toBe(-1);
  });
});

describe("guest_memfd -> iommufd notifications", () => {
  let ctx: SelftestContext;
  beforeEach(() => {
    ctx = openSelftest();
  });
  afterEach(() => teardownSelftest(ctx));

  test("a conversion reaches the policy with the IOVA range of every area that maps it; the policy adjusts", () => {
    const vm = seedVm(ctx, 16 * M2, M2, M2);
    // The same file range is also mapped in a second IOAS through COPY.
    const other = ctx.fd.ioasAlloc();
    ctx.fd.ioasCopy({
      flags: RW_FIXED,
      dstIoasId: other,
      srcIoasId: vm.ioasId,
      length: 4 * M2,
      srcIova: GPA + 4 * M2,
      dstIova: 2 ** 40,
    });
    const events: ConversionEvent[] = [];
    const unsubscribe = ctx.fd.subscribe({
      convert: (e) => {
        events.push(e);
        // The iommu-driver owner's policy: give the converted range 4K IOPTEs.
        for (const hwptId of e.hwptIds) {
          const s = e.iova - (e.iova % M2);
          ctx.fd.hwptAdjustPageSize({ hwptId, iova: s, length: M2, pageSize: PAGE_SIZE });
        }
      },
    });
    vm.file.convert(5 * M2 + 3 * PAGE_SIZE, PAGE_SIZE, "shared");
    expect(events).toEqual([
      {
        ioasId: vm.ioasId,
        area: { iova: GPA, length: 16 * M2 },
        iova: GPA + 5 * M2 + 3 * PAGE_SIZE,
        length: PAGE_SIZE,
        to: "shared",
        hwptIds: [vm.hwptId],
      },
      {
        ioasId: other,
        area: { iova: 2 ** 40, length: 4 * M2 },
        iova: 2 ** 40 + M2 + 3 * PAGE_SIZE,
        length: PAGE_SIZE,
        to: "shared",
        hwptIds: [],
      },
    ]);
    expect(leafSizes(ctx, vm.hwptId, GPA + 5 * M2, M2)).toEqual({ 12: 512 });
    // A conversion outside every area reaches nobody.
    unsubscribe();
    events.length = 0;
    vm.file.convert(0, PAGE_SIZE, "private");
    expect(events).toEqual([]);
  });

  test("truncate revokes every area past the new size: DMA sees nothing, pins go, userspace still unmaps it", () => {
    const vm = seedVm(ctx, 8 * M2, M2, M2);
    // A second area over the first half only.
    ctx.fd.ioasMapFile({ ioasId: vm.ioasId, flags: RW, file: vm.file, start: 0, length: 2 * M2 });
    const revoked: RevokeEvent[] = [];
    ctx.fd.subscribe({ revoked: (e) => revoked.push(e) });
    const pinnedBefore = ctx.fd.stats().pinnedPages;
    vm.file.truncate(4 * M2);
    expect(revoked).toEqual([
      { ioasId: vm.ioasId, area: { iova: GPA, length: 8 * M2 }, reason: "truncate" },
    ]);
    const table = ctx.fd.hwptDomain(vm.hwptId).table;
    expect(table.translate(GPA)).toBe(-1);
    expect(table.translate(GPA + 7 * M2)).toBe(-1);
    expect(ctx.fd.stats().pinnedPages).toBe(pinnedBefore - 8 * 512);
    // A revoked area cannot be copied or pinned, but it still holds its IOVA until unmapped.
    expectErrno("ENODEV", () =>
      ctx.fd.ioasCopy({
        flags: RW,
        dstIoasId: vm.ioasId,
        srcIoasId: vm.ioasId,
        length: M2,
        srcIova: GPA,
      }),
    );
    expectErrno("EEXIST", () =>
      ctx.fd.ioasMapFile({
        ioasId: vm.ioasId,
        flags: RW_FIXED,
        file: vm.file,
        start: 0,
        length: M2,
        iova: GPA,
      }),
    );
    expect(ctx.fd.ioasUnmap({ ioasId: vm.ioasId, iova: GPA, length: 8 * M2 })).toBe(8 * M2);
  });

  test("punching a hole inside an area revokes the whole area, and only the areas it meets", () => {
    const vm = seedVm(ctx, 8 * M2, M2, M2);
    ctx.fd.ioasMapFile({
      ioasId: vm.ioasId,
      flags: RW_FIXED,
      file: vm.file,
      start: 6 * M2,
      length: 2 * M2,
      iova: 2 ** 36,
    });
    const revoked: RevokeEvent[] = [];
    ctx.fd.subscribe({ revoked: (e) => revoked.push(e) });
    vm.file.punchHole(2 * M2, M2);
    expect(revoked.map((r) => r.area.iova)).toEqual([GPA]);
    const table = ctx.fd.hwptDomain(vm.hwptId).table;
    expect(table.translate(GPA + 7 * M2)).toBe(-1);
    expect(table.translate(2 ** 36)).toBe(vm.file.physOf((6 * M2) / PAGE_SIZE));
    // A new domain is filled from the live areas only.
    const second = ctx.fd.hwptAlloc({ flags: 0, devId: vm.devId, ptId: vm.ioasId });
    expect(ctx.fd.hwptDomain(second).table.stats().mappedBytes).toBe(2 * M2);
    ctx.fd.destroy(second);
  });
});
