/**
 * Bad input: every argument of the ioctls gets a typed error naming it, with
 * the kernel's errno where the kernel has a rule (EOPNOTSUPP for unknown flags
 * and reserved fields, EOVERFLOW at ULONG_MAX, EINVAL otherwise), and the
 * context is unchanged afterwards.
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { IommufdError } from "../errors.js";
import { visibleState } from "../test-support/fail-nth.js";
import {
  openSelftest,
  RW,
  RW_FIXED,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import { MOCK_APERTURE_START, PAGE_SIZE, ULONG_MAX } from "../uapi.js";

describe("bad input", () => {
  let ctx: SelftestContext;
  let ioasId = 0;
  let hwptId = 0;
  let idevId = 0;

  beforeEach(() => {
    ctx = openSelftest();
    ioasId = ctx.fd.ioasAlloc();
    const r = ctx.t.mockDomain(ioasId);
    hwptId = r.hwptId;
    idevId = r.idevId;
    ctx.fd.ioasMap({
      ioasId,
      flags: RW_FIXED,
      userVa: ctx.buffer,
      length: PAGE_SIZE,
      iova: MOCK_APERTURE_START,
    });
  });
  afterEach(() => teardownSelftest(ctx));

  const cases: [string, string, string, () => unknown][] = [
    ["IOAS_ALLOC flags", "EOPNOTSUPP", "flags", () => ctx.fd.ioasAlloc({ flags: 1 })],
    [
      "MAP flags",
      "EOPNOTSUPP",
      "flags",
      () => ctx.fd.ioasMap({ ioasId, flags: 8 | RW, userVa: ctx.buffer, length: PAGE_SIZE }),
    ],
    [
      "MAP reserved",
      "EOPNOTSUPP",
      "__reserved",
      () =>
        ctx.fd.ioasMap({ ioasId, flags: RW, userVa: ctx.buffer, length: PAGE_SIZE, __reserved: 1 }),
    ],
    [
      "MAP without R/W",
      "EINVAL",
      "flags",
      () => ctx.fd.ioasMap({ ioasId, flags: 0, userVa: ctx.buffer, length: PAGE_SIZE }),
    ],
    [
      "MAP ioas_id",
      "ENOENT",
      "ioas_id",
      () => ctx.fd.ioasMap({ ioasId: 99, flags: RW, userVa: ctx.buffer, length: PAGE_SIZE }),
    ],
    [
      "MAP ioas_id of a HWPT",
      "ENOENT",
      "ioas_id",
      () => ctx.fd.ioasMap({ ioasId: hwptId, flags: RW, userVa: ctx.buffer, length: PAGE_SIZE }),
    ],
    [
      "MAP ioas_id not an integer",
      "EINVAL",
      "ioas_id",
      () => ctx.fd.ioasMap({ ioasId: 1.5, flags: RW, userVa: ctx.buffer, length: PAGE_SIZE }),
    ],
    [
      "MAP length 0",
      "EINVAL",
      "length",
      () => ctx.fd.ioasMap({ ioasId, flags: RW, userVa: ctx.buffer, length: 0 }),
    ],
    [
      "MAP length at ULONG_MAX",
      "EOVERFLOW",
      "length",
      () => ctx.fd.ioasMap({ ioasId, flags: RW, userVa: ctx.buffer, length: ULONG_MAX }),
    ],
    [
      "MAP length beyond 2^53",
      "EOVERFLOW",
      "length",
      () => ctx.fd.ioasMap({ ioasId, flags: RW, userVa: ctx.buffer, length: 2 ** 60 }),
    ],
    [
      "MAP negative user_va",
      "EINVAL",
      "user_va",
      () => ctx.fd.ioasMap({ ioasId, flags: RW, userVa: -4096, length: PAGE_SIZE }),
    ],
    [
      "MAP fixed, misaligned iova",
      "EINVAL",
      "iova",
      () =>
        ctx.fd.ioasMap({
          ioasId,
          flags: RW_FIXED,
          userVa: ctx.buffer,
          length: PAGE_SIZE,
          iova: MOCK_APERTURE_START + 1,
        }),
    ],
    [
      "MAP fixed, iova in the reserved aperture outside",
      "EINVAL",
      "iova",
      () =>
        ctx.fd.ioasMap({ ioasId, flags: RW_FIXED, userVa: ctx.buffer, length: PAGE_SIZE, iova: 0 }),
    ],
    [
      "MAP_FILE not a file",
      "EBADF",
      "fd",
      () =>
        ctx.fd.ioasMapFile({ ioasId, flags: RW, file: null as never, start: 0, length: PAGE_SIZE }),
    ],
    [
      "MAP_FILE start not an integer",
      "EINVAL",
      "start",
      () => ctx.fd.ioasMapFile({ ioasId, flags: RW, file: ctx.mfd, start: 0.5, length: PAGE_SIZE }),
    ],
    [
      "COPY flags",
      "EOPNOTSUPP",
      "flags",
      () =>
        ctx.fd.ioasCopy({
          flags: 16,
          dstIoasId: ioasId,
          srcIoasId: ioasId,
          length: PAGE_SIZE,
          srcIova: MOCK_APERTURE_START,
        }),
    ],
    [
      "COPY src_iova beyond",
      "EOVERFLOW",
      "src_iova",
      () =>
        ctx.fd.ioasCopy({
          flags: RW,
          dstIoasId: ioasId,
          srcIoasId: ioasId,
          length: PAGE_SIZE,
          srcIova: ULONG_MAX,
        }),
    ],
    [
      "UNMAP length 0",
      "EINVAL",
      "length",
      () => ctx.fd.ioasUnmap({ ioasId, iova: MOCK_APERTURE_START, length: 0 }),
    ],
    [
      "UNMAP iova not a number",
      "EINVAL",
      "iova",
      () => ctx.fd.ioasUnmap({ ioasId, iova: "0" as never, length: PAGE_SIZE }),
    ],
    [
      "UNMAP wraps",
      "EOVERFLOW",
      "iova",
      () => ctx.fd.ioasUnmap({ ioasId, iova: ULONG_MAX - 1, length: 4 }),
    ],
    [
      "IOVA_RANGES reserved",
      "EOPNOTSUPP",
      "__reserved",
      () => ctx.fd.ioasIovaRanges({ ioasId, __reserved: 3 }),
    ],
    [
      "ALLOW_IOVAS start >= last",
      "EINVAL",
      "allowed_iovas.start",
      () => ctx.fd.ioasAllowIovas({ ioasId, allowedIovas: [{ start: 8, last: 8 }] }),
    ],
    [
      "ALLOW_IOVAS overlapping",
      "EINVAL",
      "allowed_iovas.start",
      () =>
        ctx.fd.ioasAllowIovas({
          ioasId,
          allowedIovas: [
            { start: 0, last: 9 },
            { start: 5, last: 20 },
          ],
        }),
    ],
    [
      "ALLOW_IOVAS unreadable",
      "EFAULT",
      "allowed_iovas",
      () => ctx.fd.ioasAllowIovas({ ioasId, numIovas: 2, allowedIovas: [{ start: 0, last: 9 }] }),
    ],
    [
      "OPTION unknown",
      "EOPNOTSUPP",
      "option_id",
      () => ctx.fd.option({ optionId: 7, op: 0, objectId: 0 }),
    ],
    [
      "OPTION unknown op",
      "EOPNOTSUPP",
      "op",
      () => ctx.fd.option({ optionId: 1, op: 9, objectId: ioasId }),
    ],
    [
      "HWPT_ALLOC reserved",
      "EOPNOTSUPP",
      "__reserved",
      () => ctx.fd.hwptAlloc({ flags: 0, devId: idevId, ptId: ioasId, __reserved: 1 }),
    ],
    [
      "HWPT_ALLOC data without a type",
      "EINVAL",
      "data_len",
      () => ctx.fd.hwptAlloc({ flags: 0, devId: idevId, ptId: ioasId, dataLen: 8 }),
    ],
    [
      "HWPT_ALLOC pt_id",
      "EINVAL",
      "pt_id",
      () => ctx.fd.hwptAlloc({ flags: 0, devId: idevId, ptId: 77 }),
    ],
    [
      "HWPT_ALLOC dev_id",
      "ENOENT",
      "dev_id",
      () => ctx.fd.hwptAlloc({ flags: 0, devId: ioasId, ptId: ioasId }),
    ],
    [
      "HWPT_ALLOC fault queue",
      "ENOENT",
      "fault_id",
      () => ctx.fd.hwptAlloc({ flags: 4, devId: idevId, ptId: ioasId, faultId: 3 }),
    ],
    [
      "HWPT_ALLOC maxPageSize not a power of two",
      "EINVAL",
      "maxPageSize",
      () => ctx.fd.hwptAlloc({ flags: 0, devId: idevId, ptId: ioasId, maxPageSize: 3000 }),
    ],
    [
      "SET_DIRTY_TRACKING flags",
      "EOPNOTSUPP",
      "flags",
      () => ctx.fd.hwptSetDirtyTracking({ flags: 2, hwptId }),
    ],
    [
      "SET_DIRTY_TRACKING without dirty ops",
      "EOPNOTSUPP",
      "hwpt_id",
      () => ctx.fd.hwptSetDirtyTracking({ flags: 1, hwptId }),
    ],
    [
      "GET_DIRTY_BITMAP flags",
      "EOPNOTSUPP",
      "flags",
      () =>
        ctx.fd.hwptGetDirtyBitmap({
          hwptId,
          flags: 2,
          iova: MOCK_APERTURE_START,
          length: PAGE_SIZE,
          pageSize: PAGE_SIZE,
          data: new Uint8Array(8),
        }),
    ],
    [
      "GET_DIRTY_BITMAP page_size 0",
      "EINVAL",
      "page_size",
      () =>
        ctx.fd.hwptGetDirtyBitmap({
          hwptId,
          flags: 0,
          iova: MOCK_APERTURE_START,
          length: PAGE_SIZE,
          pageSize: 0,
          data: new Uint8Array(8),
        }),
    ],
    [
      "GET_DIRTY_BITMAP data",
      "EFAULT",
      "data",
      () =>
        ctx.fd.hwptGetDirtyBitmap({
          hwptId,
          flags: 0,
          iova: MOCK_APERTURE_START,
          length: PAGE_SIZE,
          pageSize: PAGE_SIZE,
          data: [] as never,
        }),
    ],
    [
      "GET_HW_INFO flags",
      "EOPNOTSUPP",
      "flags",
      () => ctx.fd.getHwInfo({ devId: idevId, flags: 2 }),
    ],
    ["DESTROY id not a u32", "EINVAL", "id", () => ctx.fd.destroy(-1)],
    ["DESTROY a bound device", "EBUSY", "id", () => ctx.fd.destroy(idevId)],
    [
      "ADJUST hwpt_id",
      "ENOENT",
      "hwpt_id",
      () =>
        ctx.fd.hwptAdjustPageSize({
          hwptId: ioasId,
          iova: MOCK_APERTURE_START,
          length: PAGE_SIZE,
          pageSize: PAGE_SIZE,
        }),
    ],
    ["attach pt_id of a device", "EINVAL", "pt_id", () => ctx.fd.deviceAttach(idevId, idevId)],
    ["attach twice", "EBUSY", "dev_id", () => ctx.fd.deviceAttach(idevId, ioasId)],
  ];

  test.each(cases)("%s: %s naming %s", (_what, code, argument, call) => {
    const before = visibleState(ctx.fd);
    let thrown: unknown = null;
    try {
      call();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(IommufdError);
    const err = thrown as IommufdError;
    expect([err.code, err.argument]).toEqual([code, argument]);
    expect(err.message).toContain(argument);
    expect(visibleState(ctx.fd)).toBe(before);
  });

  test("a closed context refuses every call with EBADF", () => {
    const fd = openSelftest().fd;
    fd.close();
    expect(() => fd.ioasAlloc()).toThrow(/EBADF/);
  });
});
