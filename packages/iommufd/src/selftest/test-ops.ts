import { checkU32, checkU64 } from "../core/check.js";
import { IommufdObject } from "../core/object.js";
import type { IommufdDevice } from "../device/device.js";
import type { PhysDevice } from "../device/iommu-driver.js";
import { MockIommu } from "../device/mock-iommu.js";
import { fail } from "../errors.js";
import { getHwptPaging } from "../hwpt/ioctls.js";
import type { Ioas } from "../ioas/ioas.js";
import type { Iommufd } from "../iommufd.js";
import type { ProcessAddressSpace } from "../pages/address-space.js";
import {
  MOCK_ACCESS_RW_WRITE,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_PAGE_SIZE,
  ObjectType,
  PAGE_SIZE,
} from "../uapi.js";

/** The "stdev" object of IOMMU_TEST_OP_MOCK_DOMAIN: destroying it unbinds the mock device. */
class SelftestDevice extends IommufdObject {
  readonly type = ObjectType.SELFTEST;

  constructor(
    readonly fd: Iommufd,
    readonly idev: IommufdDevice,
  ) {
    super();
  }

  /** The bound device's ID. */
  get idevId(): number {
    return this.idev.id;
  }

  destroy(): void {
    // Closing the context may have unbound the device already (device files close first).
    if (this.fd.objects.peek(this.idev.id) === this.idev) this.fd.unbindDevice(this.idev);
  }
}

/** What IOMMU_TEST_OP_MOCK_DOMAIN returns. */
export interface MockDomainResult {
  stdevId: number;
  hwptId: number;
  idevId: number;
}

/**
 * The selftest's IOMMU_TEST_CMD ops (drivers/iommu/iommufd/selftest.c) over an
 * {@link Iommufd}: mock devices and domains, reserved ranges, map and refcount
 * checks, accesses, dirty marking. The conformance suite drives iommufd
 * through these exactly as tools/testing/selftests/iommu does.
 */
export class IommufdTest {
  /** The mock IOMMU every mock device sits behind. */
  readonly mock = new MockIommu();
  private devices = 0;

  constructor(readonly fd: Iommufd) {}

  /**
   * IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS): a new mock device (its own group), bound
   * and attached to `ptId` (an IOAS or a HWPT). `flags`: MOCK_FLAGS_DEVICE_*.
   */
  mockDomain(ptId: number, flags = 0): MockDomainResult {
    checkU32("flags", flags);
    if (flags & ~(MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA)) {
      fail("EOPNOTSUPP", "flags", flags, "unknown mock device flags");
    }
    const dev: PhysDevice = { name: `mock${this.devices++}`, iommu: this.mock, group: {}, flags };
    const idevId = this.fd.bind(dev);
    let hwptId: number;
    try {
      hwptId = this.fd.deviceAttach(idevId, ptId);
    } catch (e) {
      this.fd.unbind(idevId);
      throw e;
    }
    let stdevId: number;
    try {
      stdevId = this.fd.objects.reserve();
    } catch (e) {
      this.fd.unbind(idevId);
      throw e;
    }
    const idev = this.fd.objects.peek(idevId) as IommufdDevice;
    this.fd.objects.finalize(stdevId, new SelftestDevice(this.fd, idev));
    return { stdevId, hwptId, idevId };
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: returns the new HWPT's ID. */
  mockDomainReplace(stdevId: number, ptId: number): number {
    return this.fd.deviceReplace(this.stdev(stdevId).idevId, ptId);
  }

  /** The device ID behind a stdev. */
  idevOf(stdevId: number): number {
    return this.stdev(stdevId).idevId;
  }

  /** IOMMU_TEST_OP_ADD_RESERVED: reserve [start, start + length) in an IOAS (EADDRINUSE over areas or allowed ranges). */
  addReserved(ioasId: number, start: number, length: number): void {
    const ioas = this.fd.objects.get<Ioas>("id", checkU32("id", ioasId), ObjectType.IOAS);
    const s = checkU64("start", start);
    const l = checkU64("length", length);
    if (l === 0) fail("EINVAL", "length", l, "must not be 0");
    ioas.iopt.reserveIova(s, s + l - 1, null);
  }

  /**
   * IOMMU_TEST_OP_MD_CHECK_MAP: every MOCK_PAGE_SIZE of [iova, iova + length) in
   * the HWPT's domain translates to the page behind `userVa + offset` (EINVAL
   * otherwise; ENOENT for the HWPT).
   */
  mdCheckMap(
    hwptId: number,
    iova: number,
    length: number,
    userVa: number,
    process?: ProcessAddressSpace,
  ): void {
    const mm = process ?? this.fd.process;
    this.checkMap(hwptId, iova, length, (off) => mm.translate(userVa + off));
  }

  /** The same check against a file: [iova, +length) maps file bytes from `start`. */
  mdCheckMapFile(
    hwptId: number,
    iova: number,
    length: number,
    file: { physOf(index: number): number },
    start: number,
  ): void {
    this.checkMap(hwptId, iova, length, (off) => {
      const b = start + off;
      const page = file.physOf(Math.floor(b / PAGE_SIZE));
      return page < 0 ? -1 : page + (b % PAGE_SIZE);
    });
  }

  /** Every MOCK_PAGE_SIZE of [iova, iova + length) translates to `want(offset)` (EINVAL otherwise). */
  private checkMap(
    hwptId: number,
    iova: number,
    length: number,
    want: (offset: number) => number,
  ): void {
    const table = getHwptPaging(this.fd, "id", hwptId).domain.table;
    for (let off = 0; off < length; off += MOCK_PAGE_SIZE) {
      const pa = want(off);
      const got = table.translate(iova + off);
      if (pa < 0 || got !== pa) {
        fail(
          "EINVAL",
          "iova",
          iova + off,
          `translates to 0x${got.toString(16)}, not 0x${pa.toString(16)}`,
        );
      }
    }
  }

  /** IOMMU_TEST_OP_MD_CHECK_REFS: each page of the user range has exactly `refs` extra references (EINVAL otherwise). */
  mdCheckRefs(userVa: number, length: number, refs: number, process?: ProcessAddressSpace): void {
    const mm = process ?? this.fd.process;
    for (let off = 0; off < length; off += PAGE_SIZE) {
      const pa = mm.translate(userVa + off);
      if (pa < 0) fail("EFAULT", "uptr", userVa + off, "is not mapped");
      const got = this.fd.pageRefs(pa);
      if (got !== refs)
        fail("EINVAL", "refs", refs, `page at 0x${(userVa + off).toString(16)} has ${got}`);
    }
  }

  /** IOMMU_TEST_OP_CREATE_ACCESS: `flags` MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES. Returns the access ID. */
  createAccess(ioasId: number, flags = 0): number {
    if (checkU32("flags", flags) & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) {
      fail("EOPNOTSUPP", "flags", flags, "unknown access flags");
    }
    return this.fd.accessCreate(ioasId, {
      needsPinPages: (flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0,
    });
  }

  /** Closing the access fd. */
  destroyAccess(accessId: number): void {
    this.fd.destroy(this.fd.access(accessId).id);
  }

  /** IOMMU_TEST_OP_ACCESS_REPLACE_IOAS. */
  accessReplaceIoas(accessId: number, ioasId: number): void {
    const ioas = this.fd.objects.get<Ioas>("ioas_id", checkU32("ioas_id", ioasId), ObjectType.IOAS);
    this.fd.access(accessId).replace(ioas);
  }

  /** IOMMU_TEST_OP_ACCESS_PAGES: pin; returns the access_pages_id. `flags` bit 0: for write. */
  accessPages(accessId: number, iova: number, length: number, flags = 0): number {
    return this.fd.access(accessId).pin(iova, length, (flags & MOCK_ACCESS_RW_WRITE) !== 0).id;
  }

  /** The PFNs of a pin (what the kernel hands back in out_pages). */
  accessPagesPfns(accessId: number, pagesId: number): readonly number[] {
    const pin = this.fd.access(accessId).pins.get(pagesId);
    if (pin === undefined) fail("ENOENT", "access_pages_id", pagesId, "no such pin");
    return pin.pfns;
  }

  /** IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: ENOENT for an unknown (or already force-unpinned) id. */
  destroyAccessPages(accessId: number, pagesId: number): void {
    this.fd.access(accessId).unpin(pagesId);
  }

  /** IOMMU_TEST_OP_ACCESS_RW: `flags` MOCK_ACCESS_RW_WRITE (and SLOW_PATH, which the model treats alike). */
  accessRw(accessId: number, iova: number, data: Uint8Array, flags = 0): void {
    this.fd.access(accessId).rw(iova, data, (flags & MOCK_ACCESS_RW_WRITE) !== 0);
  }

  /**
   * IOMMU_TEST_OP_DIRTY: marks dirty the IOPTE under each set bit of `bitmap`
   * (bit i: iova + i * pageSize); EINVAL unless tracking is on. Returns how many
   * it marked.
   */
  dirty(
    hwptId: number,
    iova: number,
    length: number,
    pageSize: number,
    bitmap: Uint8Array,
  ): number {
    const domain = getHwptPaging(this.fd, "id", hwptId).domain;
    if (!domain.dirtyTracking) fail("EINVAL", "id", hwptId, "dirty tracking is not enabled");
    let n = 0;
    for (let i = 0; i < length / pageSize; i++) {
      if ((bitmap[i >>> 3]! >>> (i & 7)) & 1) {
        domain.table.setDirty(iova + i * pageSize);
        n++;
      }
    }
    return n;
  }

  /** IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: below 12 bytes EINVAL (it only sizes batches, which the model does not limit). */
  setTempMemoryLimit(limit: number): void {
    if (checkU32("limit", limit) < 12) fail("EINVAL", "limit", limit, "must be at least 12");
  }

  private stdev(stdevId: number): SelftestDevice {
    return this.fd.objects.get<SelftestDevice>("id", checkU32("id", stdevId), ObjectType.SELFTEST);
  }
}
