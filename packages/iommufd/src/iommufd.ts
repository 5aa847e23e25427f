import type { TableMemory } from "@smashlab/pagetable";
import { type AccessOps, IommufdAccess } from "./access/access.js";
import { checkU32 } from "./core/check.js";
import { FaultInjector, InjectableTableMemory } from "./core/inject.js";
import { ObjectTable } from "./core/object-table.js";
import {
  attachHwpt,
  attachToIoas,
  detachHwpt,
  replaceHwpt,
  replaceToIoas,
} from "./device/attach.js";
import { IommufdDevice, IommufdGroup } from "./device/device.js";
import type { PhysDevice } from "./device/iommu-driver.js";
import { fail } from "./errors.js";
import type { AdjustReport } from "./hwpt/adjust-page-size.js";
import type { IommuDomain } from "./hwpt/domain.js";
import type { HwptPaging } from "./hwpt/hwpt-paging.js";
import {
  type AdjustPageSizeArgs,
  type GetDirtyBitmapArgs,
  getHwInfo,
  getHwptPaging,
  type HwInfoArgs,
  type HwptAllocArgs,
  hwptAdjustPageSize,
  hwptAlloc,
  hwptGetDirtyBitmap,
  hwptSetDirtyTracking,
  type SetDirtyTrackingArgs,
} from "./hwpt/ioctls.js";
import type { Ioas } from "./ioas/ioas.js";
import {
  type AllowIovasArgs,
  allowIovas,
  type ChangeProcessArgs,
  changeProcess,
  type IoasAllocArgs,
  type IoasCopyArgs,
  type IoasMapArgs,
  type IoasMapFileArgs,
  type IoasUnmapArgs,
  type IovaRangesArgs,
  ioasAlloc,
  ioasCopy,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
  iovaRanges,
  type OptionArgs,
  option,
} from "./ioas/ioctls.js";
import { type IoctlArg, iommufdIoctl } from "./ioctl/dispatch.js";
import type { Span } from "./iopt/iova-alloc.js";
import { type ConversionPolicy, dispatchFileEvent } from "./notify/file-events.js";
import { ProcessAddressSpace } from "./pages/address-space.js";
import type { IoptPages } from "./pages/iopt-pages.js";
import { PhysMemory } from "./pages/phys-memory.js";
import { ObjectType } from "./uapi.js";
import {
  VFIO_API_VERSION,
  type VfioCompatState,
  type VfioDmaMap,
  type VfioDmaUnmap,
  type VfioIommuInfo,
  vfioCheckExtension,
  vfioGetInfo,
  vfioMapDma,
  vfioSetIommu,
  vfioUnmapDma,
} from "./vfio/compat.js";

/** How to open an {@link Iommufd}. */
export interface IommufdOptions {
  /** Host memory behind processes and files (default: a new one). */
  phys?: PhysMemory;
  /** The process that opened /dev/iommu (default: a new one on `phys`). */
  process?: ProcessAddressSpace;
  /** Fault injector shared with the caller (default: a new one). */
  injector?: FaultInjector;
  /**
   * Where domains' table pages come from. Default: one whose allocations are
   * sites of the injector. A caller's own allocator is used as it is (its
   * allocations are then not injection sites).
   */
  memory?: TableMemory;
  /** The caller has CAP_SYS_RESOURCE (default true, as the selftests run as root). */
  capSysResource?: boolean;
  /** The iommufd module parameter allow_unsafe_interrupts (default false). */
  allowUnsafeInterrupts?: boolean;
}

/** What is still held: the leak check after close (the selftest's MD_CHECK_REFS, and more). */
export interface IommufdStats {
  /** Live objects. */
  objects: number;
  /** Pages pinned by every iopt_pages of this context. */
  pinnedPages: number;
  /** iopt_pages alive. */
  pages: number;
  /** Table pages the allocator has out (shared allocators count other users too). */
  tablePages: number;
}

/**
 * One open of /dev/iommu (struct iommufd_ctx) with the ioctls of
 * include/uapi/linux/iommufd.h as methods. Each method takes the ioctl's struct
 * (fields camelCased, `__reserved` fields kept), writes its outputs into it as
 * the kernel does, and returns the main output. Errors are {@link IommufdError}
 * with the kernel's errno, checked in the kernel's order; a failed call changes
 * nothing (IOAS_UNMAP, like the kernel, keeps the areas it removed before
 * meeting one it cannot).
 *
 * Device binding (the VFIO cdev side) is {@link Iommufd.bind} and friends; the
 * selftest's test ops live in {@link IommufdTest}.
 */
export class Iommufd {
  /** @internal */ readonly objects: ObjectTable;
  /** The fault injector (iommufd's fail-nth sites and, by default, table allocations). */
  readonly injector: FaultInjector;
  /** The allocator every domain's tables come from. */
  readonly memory: TableMemory;
  /** Host memory. */
  readonly phys: PhysMemory;
  /** The process that opened the context. */
  readonly process: ProcessAddressSpace;
  /** @internal */ accountMode: "user" | "mm" = "user";
  /** @internal */ readonly capSysResource: boolean;
  private readonly allowUnsafeInterrupts: boolean;
  private readonly groups = new Map<object, IommufdGroup>();
  private readonly livePages = new Set<IoptPages>();
  private readonly policies: ConversionPolicy[] = [];
  private closed = false;
  private readonly vfio: VfioCompatState = { ioasId: 0, type: 0 };

  constructor(options: IommufdOptions = {}) {
    this.injector = options.injector ?? new FaultInjector();
    this.objects = new ObjectTable(this.injector);
    this.memory = options.memory ?? new InjectableTableMemory(this.injector);
    this.phys = options.phys ?? options.process?.phys ?? new PhysMemory();
    this.process = options.process ?? new ProcessAddressSpace(this.phys);
    this.capSysResource = options.capSysResource ?? true;
    this.allowUnsafeInterrupts = options.allowUnsafeInterrupts ?? false;
  }

  // ---- generic ----------------------------------------------------------------------

  /** IOMMU_DESTROY: ENOENT for a missing ID, EBUSY while the object is in use. */
  destroy(args: { id: number } | number): void {
    this.live();
    const id = typeof args === "number" ? args : args.id;
    this.objects.destroy(checkU32("id", id));
    if (id === this.vfio.ioasId) this.vfio.ioasId = 0;
  }

  /**
   * The raw ioctl(2) entry: `cmd` is an IOMMU_* number ({@link IOMMU}), `arg`
   * the struct with its `size`. Applies the extensible-struct rules of the
   * uAPI (ENOTTY, EFAULT, EINVAL for a short struct, E2BIG for a non-zero
   * tail), then runs the command like the methods do.
   */
  ioctl(cmd: number, arg: IoctlArg | null): unknown {
    this.live();
    return iommufdIoctl(this, cmd, arg);
  }

  /**
   * IOMMU_VFIO_IOAS: the IOAS VFIO compat would use. GET: ENODEV when none is
   * set; SET: ENOENT for a bad ID; CLEAR always succeeds. Unknown ops or a
   * non-zero `__reserved`: EOPNOTSUPP.
   */
  vfioIoas(args: { ioasId?: number; op: number; __reserved?: number }): number {
    this.live();
    if (args.__reserved !== undefined && args.__reserved !== 0)
      fail("EOPNOTSUPP", "__reserved", args.__reserved, "must be 0");
    if (args.op === 0) {
      if (this.vfio.ioasId === 0 || this.objects.peek(this.vfio.ioasId) === undefined) {
        fail("ENODEV", "op", args.op, "no compat IOAS is set");
      }
      args.ioasId = this.vfio.ioasId;
      return this.vfio.ioasId;
    }
    if (args.op === 1) {
      const ioas = this.objects.get<Ioas>(
        "ioas_id",
        checkU32("ioas_id", args.ioasId),
        ObjectType.IOAS,
      );
      this.vfio.ioasId = ioas.id;
      return ioas.id;
    }
    if (args.op === 2) {
      this.vfio.ioasId = 0;
      return 0;
    }
    return fail("EOPNOTSUPP", "op", args.op, "unknown IOMMU_VFIO_IOAS op");
  }

  /**
   * IOMMU_HWPT_INVALIDATE: only nested HWPTs and vIOMMUs take cache
   * invalidations, and the model has neither. In the kernel's order:
   * EOPNOTSUPP (`__reserved`), EINVAL (entries without a buffer or an entry
   * length), ENOENT (no such object), EINVAL (any object the model has, a
   * paging HWPT included). `entryNum` is written back as 0 entries handled.
   */
  hwptInvalidate(args: {
    hwptId: number;
    entryNum?: number;
    entryLen?: number;
    data?: unknown;
    __reserved?: number;
  }): void {
    this.live();
    if (args.__reserved !== undefined && args.__reserved !== 0)
      fail("EOPNOTSUPP", "__reserved", args.__reserved, "must be 0");
    const num = checkU32("entry_num", args.entryNum ?? 0);
    if (num > 0 && (args.data === undefined || args.data === null || (args.entryLen ?? 0) === 0)) {
      args.entryNum = 0;
      fail("EINVAL", "entry_num", num, "entries need a buffer and an entry length");
    }
    const obj = this.objects.get("hwpt_id", checkU32("hwpt_id", args.hwptId));
    args.entryNum = 0;
    fail(
      "EINVAL",
      "hwpt_id",
      obj.id,
      `is a ${obj.type}: only nested HWPTs and vIOMMUs take invalidations`,
    );
  }

  // ---- VFIO type1 compat (the container ioctls on the iommufd) ---------------------

  /** VFIO_GET_API_VERSION. */
  vfioGetApiVersion(): number {
    return VFIO_API_VERSION;
  }

  /** VFIO_CHECK_EXTENSION: 1 for VFIO_TYPE1_IOMMU and VFIO_TYPE1v2_IOMMU. */
  vfioCheckExtension(ext: number): number {
    return vfioCheckExtension(ext);
  }

  /** VFIO_SET_IOMMU: see {@link vfioSetIommu}. */
  vfioSetIommu(type: number): void {
    this.live();
    vfioSetIommu(this, this.vfio, type);
  }

  /** VFIO_IOMMU_MAP_DMA. */
  vfioMapDma(args: VfioDmaMap): void {
    this.live();
    vfioMapDma(this, this.vfio, args);
  }

  /** VFIO_IOMMU_UNMAP_DMA: `size` comes back as the bytes unmapped. */
  vfioUnmapDma(args: VfioDmaUnmap): void {
    this.live();
    vfioUnmapDma(this, this.vfio, args);
  }

  /** VFIO_IOMMU_GET_INFO. */
  vfioGetInfo(args: VfioIommuInfo): void {
    this.live();
    const ranges =
      this.vfio.ioasId === 0
        ? []
        : this.ioasIovaRanges({ ioasId: this.vfio.ioasId, numIovas: 2 ** 31 });
    vfioGetInfo(this, this.vfio, args, ranges);
  }

  /** IOMMU_IOAS_CHANGE_PROCESS. */
  ioasChangeProcess(args: ChangeProcessArgs = {}): void {
    this.live();
    const ioases = this.objects.objects().filter((o): o is Ioas => o.type === ObjectType.IOAS);
    changeProcess(this, args, ioases);
  }

  /**
   * close(): destroys every object, leaves first (repeated passes over the
   * objects only the table holds). Throws if a pass destroys nothing while
   * objects remain: the kernel WARNs there, a reference leak.
   */
  close(): void {
    if (this.closed) return;
    // The VFIO device files go first: their bindings end before the context.
    for (const o of this.objects.objects())
      if (o instanceof IommufdDevice && o.users > 1) this.unbindDevice(o);
    for (;;) {
      const all = this.objects.objects();
      if (all.length === 0) break;
      let progress = false;
      for (const o of all) {
        if (o.users === 1 && this.objects.peek(o.id) === o) {
          this.objects.remove(o);
          progress = true;
        }
      }
      if (!progress)
        throw new Error(`iommufd close: ${all.length} objects still referenced (a refcount leak)`);
    }
    this.closed = true;
  }

  /** Leak check counters. */
  stats(): IommufdStats {
    let pinned = 0;
    for (const p of this.livePages) pinned += p.npinned;
    return {
      objects: this.objects.size,
      pinnedPages: pinned,
      pages: this.livePages.size,
      tablePages: this.memory.inUse,
    };
  }

  /** How many of this context's iopt_pages have the physical page `pa` pinned (its extra page refs). */
  pageRefs(pa: number): number {
    let refs = 0;
    for (const p of this.livePages) if (p.pfns.holds(pa - (pa % 4096))) refs++;
    return refs;
  }

  // ---- IOAS -------------------------------------------------------------------------

  /** IOMMU_IOAS_ALLOC. */
  ioasAlloc(args: IoasAllocArgs = {}): number {
    this.live();
    return ioasAlloc(this, args);
  }

  /** IOMMU_IOAS_IOVA_RANGES. */
  ioasIovaRanges(args: IovaRangesArgs): Span[] {
    this.live();
    return iovaRanges(this, args);
  }

  /** IOMMU_IOAS_ALLOW_IOVAS. */
  ioasAllowIovas(args: AllowIovasArgs): void {
    this.live();
    allowIovas(this, args);
  }

  /** IOMMU_IOAS_MAP. */
  ioasMap(args: IoasMapArgs): number {
    this.live();
    return ioasMap(this, args);
  }

  /** IOMMU_IOAS_MAP_FILE. */
  ioasMapFile(args: IoasMapFileArgs): number {
    this.live();
    return ioasMapFile(this, args);
  }

  /** IOMMU_IOAS_COPY. */
  ioasCopy(args: IoasCopyArgs): number {
    this.live();
    return ioasCopy(this, args);
  }

  /** IOMMU_IOAS_UNMAP. */
  ioasUnmap(args: IoasUnmapArgs): number {
    this.live();
    return ioasUnmap(this, args);
  }

  /** IOMMU_OPTION. */
  option(args: OptionArgs): number {
    this.live();
    return option(this, args);
  }

  // ---- HWPT -------------------------------------------------------------------------

  /** IOMMU_HWPT_ALLOC (with the smashlab page-size cap). */
  hwptAlloc(args: HwptAllocArgs): number {
    this.live();
    return hwptAlloc(this, args);
  }

  /** IOMMU_HWPT_SET_DIRTY_TRACKING. */
  hwptSetDirtyTracking(args: SetDirtyTrackingArgs): void {
    this.live();
    hwptSetDirtyTracking(this, args);
  }

  /** IOMMU_HWPT_GET_DIRTY_BITMAP. */
  hwptGetDirtyBitmap(args: GetDirtyBitmapArgs): void {
    this.live();
    hwptGetDirtyBitmap(this, args);
  }

  /** IOMMU_HWPT_ADJUST_PAGE_SIZE (smashlab): split or merge leaves in a range hitlessly. */
  hwptAdjustPageSize(args: AdjustPageSizeArgs): AdjustReport {
    this.live();
    return hwptAdjustPageSize(this, args);
  }

  /** IOMMU_GET_HW_INFO. */
  getHwInfo(args: HwInfoArgs): void {
    this.live();
    getHwInfo(this, args);
  }

  /**
   * The domain behind a HWPT_PAGING, for hardware models (the IOMMU walks its
   * table, the TMPM engine edits it). ENOENT for another ID.
   */
  hwptDomain(hwptId: number): IommuDomain {
    return getHwptPaging(this, "hwpt_id", hwptId).domain;
  }

  // ---- devices (the VFIO cdev side) -------------------------------------------------

  /**
   * iommufd_device_bind(): EINVAL if the IOMMU does not enforce cache coherency,
   * EPERM without isolated MSI (unless allow_unsafe_interrupts), EBUSY if the
   * device is bound already. Returns the device ID; the driver holds it until
   * {@link Iommufd.unbind}.
   */
  bind(dev: PhysDevice): number {
    this.live();
    if (!dev.iommu.capable(dev, "cache-coherency"))
      fail("EINVAL", "dev", dev.name, "the IOMMU does not enforce cache coherency");
    if (!dev.iommu.isolatedMsi && !this.allowUnsafeInterrupts)
      fail("EPERM", "dev", dev.name, "MSIs are not isolated");
    for (const o of this.objects.objects()) {
      if (o instanceof IommufdDevice && o.dev === dev)
        fail("EBUSY", "dev", dev.name, "is bound already");
    }
    let igroup = this.groups.get(dev.group);
    const newGroup = igroup === undefined;
    if (igroup === undefined) igroup = new IommufdGroup(dev.group);
    const id = this.objects.reserve();
    const idev = new IommufdDevice(dev, igroup, (d) => {
      if (d.hwpt !== null) detachHwpt(this, d, { autoDestroy: true });
      if (d.igroup.devices.size === 0 && d.igroup.hwpt === null) this.groups.delete(d.igroup.group);
    });
    if (newGroup) this.groups.set(dev.group, igroup);
    this.objects.finalize(id, idev);
    idev.users++; // the binding driver's reference
    return id;
  }

  /** iommufd_device_unbind(): detaches if needed and destroys the device object. */
  unbind(devId: number): void {
    this.unbindDevice(this.device(devId));
  }

  /** @internal The driver's own unbind: it holds the device, so no lookup can fail. */
  unbindDevice(idev: IommufdDevice): void {
    if (idev.hwpt !== null) detachHwpt(this, idev, { autoDestroy: true });
    idev.users--;
    this.objects.destroy(idev.id);
  }

  /**
   * iommufd_device_attach(): `ptId` is a HWPT_PAGING (attach to it) or an IOAS
   * (an auto domain, reused or new). Returns the HWPT's ID. EINVAL for any other
   * object; see the attach rules (EBUSY, EINVAL, EADDRINUSE).
   */
  deviceAttach(devId: number, ptId: number): number {
    this.live();
    const idev = this.device(devId);
    const pt = this.objects.get("pt_id", checkU32("pt_id", ptId));
    if (pt.type === ObjectType.HWPT_PAGING) {
      attachHwpt(this, idev, pt as HwptPaging);
      return pt.id;
    }
    if (pt.type === ObjectType.IOAS) return attachToIoas(this, idev, pt as Ioas).id;
    return fail("EINVAL", "pt_id", ptId, `is a ${pt.type}, not an IOAS or a HWPT`);
  }

  /** iommufd_device_replace(): move the device's group to another HWPT or IOAS. Returns the HWPT's ID. */
  deviceReplace(devId: number, ptId: number): number {
    this.live();
    const idev = this.device(devId);
    const pt = this.objects.get("pt_id", checkU32("pt_id", ptId));
    if (pt.type === ObjectType.HWPT_PAGING) {
      replaceHwpt(this, idev, pt as HwptPaging);
      return pt.id;
    }
    if (pt.type === ObjectType.IOAS) return replaceToIoas(this, idev, pt as Ioas).id;
    return fail("EINVAL", "pt_id", ptId, `is a ${pt.type}, not an IOAS or a HWPT`);
  }

  /** iommufd_device_detach(). */
  deviceDetach(devId: number): void {
    this.live();
    detachHwpt(this, this.device(devId), { autoDestroy: true });
  }

  /** The HWPT a device is attached to (0 when detached). */
  deviceHwpt(devId: number): number {
    return this.device(devId).hwpt?.id ?? 0;
  }

  // ---- accesses ---------------------------------------------------------------------

  /** iommufd_access_create() + attach: an in-kernel user of an IOAS. Returns its ID. */
  accessCreate(ioasId: number, ops: AccessOps): number {
    this.live();
    const ioas = this.objects.get<Ioas>("ioas_id", checkU32("ioas_id", ioasId), ObjectType.IOAS);
    const id = this.objects.reserve();
    const access = new IommufdAccess(ops, this.phys);
    try {
      access.attach(ioas);
    } catch (e) {
      this.objects.abort(id);
      throw e;
    }
    this.objects.finalize(id, access);
    return id;
  }

  /** The access object an ID names (ENOENT otherwise). */
  access(accessId: number): IommufdAccess {
    return this.objects.get<IommufdAccess>(
      "access_id",
      checkU32("access_id", accessId),
      ObjectType.ACCESS,
    );
  }

  // ---- conversion notifications ----------------------------------------------------

  /**
   * Subscribes a policy to conversions and revocations of the files areas map
   * (guest_memfd -> iommufd). Returns the unsubscribe function.
   */
  subscribe(policy: ConversionPolicy): () => void {
    this.policies.push(policy);
    return () => {
      const i = this.policies.indexOf(policy);
      if (i >= 0) this.policies.splice(i, 1);
    };
  }

  /** @internal Registers new pages: page-ref queries, and file events for file-backed ones. */
  trackPages(pages: IoptPages): void {
    this.livePages.add(pages);
    let unsubscribe: (() => void) | null = null;
    if (pages.source.kind === "file") {
      unsubscribe = pages.source.file.subscribe((event) =>
        dispatchFileEvent(pages, event, this.policies),
      );
    }
    pages.onRelease = () => {
      this.livePages.delete(pages);
      unsubscribe?.();
    };
  }

  private device(devId: number): IommufdDevice {
    return this.objects.get<IommufdDevice>("dev_id", checkU32("dev_id", devId), ObjectType.DEVICE);
  }

  private live(): void {
    if (this.closed) fail("EBADF", "fd", "iommufd", "the context is closed");
  }
}
