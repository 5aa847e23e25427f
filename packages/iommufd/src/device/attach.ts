import type { CtxInternals } from "../core/ctx-internals.js";
import { fail, IommufdError } from "../errors.js";
import { allocHwptPaging } from "../hwpt/hwpt-alloc.js";
import type { HwptPaging } from "../hwpt/hwpt-paging.js";
import type { Ioas } from "../ioas/ioas.js";
import type { IoPagetable } from "../iopt/io-pagetable.js";
import type { IommufdDevice } from "./device.js";

/**
 * iommufd_device_attach_reserved_iova(): the device's reserved regions (all but
 * DIRECT_RELAXABLE) become reserved IOVA of the IOAS, owned by the device;
 * EADDRINUSE over a mapping or an allowed range, and then nothing stays.
 */
function reserveDeviceRegions(iopt: IoPagetable, idev: IommufdDevice): void {
  try {
    for (const r of idev.dev.iommu.reservedRegions(idev.dev)) {
      if (r.type === "direct-relaxable") continue;
      iopt.reserveIova(r.start, r.start + r.length - 1, idev);
    }
  } catch (e) {
    iopt.removeReserved(idev);
    throw e;
  }
}

/**
 * iommufd_hw_pagetable_attach(): EBUSY if the device is attached already (use
 * replace), EINVAL if its group is attached to another HWPT or the driver
 * refuses the domain; the device's reserved regions join the HWPT's IOAS. The
 * HWPT and the device each gain a reference.
 */
export function attachHwpt(_ctx: CtxInternals, idev: IommufdDevice, hwpt: HwptPaging): void {
  if (idev.hwpt !== null) fail("EBUSY", "dev_id", idev.id, "is already attached; use replace");
  const igroup = idev.igroup;
  if (igroup.hwpt !== null && igroup.hwpt !== hwpt) {
    fail("EINVAL", "pt_id", hwpt.id, "the device's group is attached to another HWPT");
  }
  const iopt = hwpt.ioas.iopt;
  reserveDeviceRegions(iopt, idev);
  if (igroup.devices.size === 0) {
    try {
      idev.dev.iommu.attachDev(hwpt.domain, idev.dev);
    } catch (e) {
      iopt.removeReserved(idev);
      throw e;
    }
  }
  igroup.hwpt = hwpt;
  igroup.devices.add(idev);
  idev.hwpt = hwpt;
  idev.users++;
  hwpt.users++;
}

/**
 * iommufd_device_detach(): the last device of a group detaches the domain;
 * the device's reserved IOVA goes; an auto domain with no device left is
 * destroyed.
 */
export function detachHwpt(
  ctx: CtxInternals,
  idev: IommufdDevice,
  opts: { autoDestroy: boolean },
): void {
  const hwpt = idev.hwpt;
  if (hwpt === null) fail("EINVAL", "dev_id", idev.id, "is not attached");
  const igroup = idev.igroup;
  igroup.devices.delete(idev);
  if (igroup.devices.size === 0) igroup.hwpt = null;
  hwpt.ioas.iopt.removeReserved(idev);
  idev.hwpt = null;
  idev.users--;
  hwpt.users--;
  if (opts.autoDestroy) putHwpt(ctx, hwpt);
}

/** iommufd_hw_pagetable_put(): an auto domain nobody uses any more is destroyed. */
function putHwpt(ctx: CtxInternals, hwpt: HwptPaging): void {
  if (hwpt.autoDomain && hwpt.users === 1) ctx.objects.remove(hwpt);
}

/**
 * iommufd_device_auto_get_domain(): try the IOAS's auto domains in order (EINVAL
 * means "incompatible, try the next"; any other error is returned), else make a
 * new one for this device.
 */
export function attachToIoas(ctx: CtxInternals, idev: IommufdDevice, ioas: Ioas): HwptPaging {
  for (const hwpt of [...ioas.hwpts]) {
    if (!hwpt.autoDomain) continue;
    try {
      attachHwpt(ctx, idev, hwpt);
      return hwpt;
    } catch (e) {
      if (e instanceof IommufdError && e.code === "EINVAL") continue;
      throw e;
    }
  }
  return allocHwptPaging(ctx, ioas, idev, {
    flags: 0,
    maxPageSize: 0,
    autoDomain: true,
    immediateAttach: true,
  });
}

/**
 * iommufd_device_replace(): move the device's whole group to `next` without a
 * window where it is detached. EINVAL if not attached; nothing happens when
 * `next` is the current HWPT; on failure nothing changes.
 */
export function replaceHwpt(ctx: CtxInternals, idev: IommufdDevice, next: HwptPaging): void {
  const old = idev.hwpt;
  if (old === null) fail("EINVAL", "dev_id", idev.id, "is not attached");
  if (old === next) return;
  const devices = [...idev.igroup.devices];
  const newIopt = next.ioas.iopt;
  const moved = next.ioas !== old.ioas;
  if (moved) {
    const done: IommufdDevice[] = [];
    try {
      for (const d of devices) {
        reserveDeviceRegions(newIopt, d);
        done.push(d);
      }
    } catch (e) {
      for (const d of done) newIopt.removeReserved(d);
      throw e;
    }
  }
  try {
    idev.dev.iommu.attachDev(next.domain, idev.dev);
  } catch (e) {
    if (moved) for (const d of devices) newIopt.removeReserved(d);
    throw e;
  }
  for (const d of devices) {
    if (moved) old.ioas.iopt.removeReserved(d);
    d.hwpt = next;
    next.users++;
    old.users--;
  }
  idev.igroup.hwpt = next;
  putHwpt(ctx, old);
}

/** Replace onto an IOAS: an existing compatible auto domain, or a new one (destroyed again on failure). */
export function replaceToIoas(ctx: CtxInternals, idev: IommufdDevice, ioas: Ioas): HwptPaging {
  if (idev.hwpt === null) fail("EINVAL", "dev_id", idev.id, "is not attached");
  if (idev.hwpt.ioas === ioas && idev.hwpt.autoDomain) return idev.hwpt;
  for (const hwpt of [...ioas.hwpts]) {
    if (!hwpt.autoDomain) continue;
    try {
      replaceHwpt(ctx, idev, hwpt);
      return hwpt;
    } catch (e) {
      if (e instanceof IommufdError && e.code === "EINVAL") continue;
      throw e;
    }
  }
  const hwpt = allocHwptPaging(ctx, ioas, idev, {
    flags: 0,
    maxPageSize: 0,
    autoDomain: true,
    immediateAttach: false,
  });
  try {
    replaceHwpt(ctx, idev, hwpt);
  } catch (e) {
    ctx.objects.remove(hwpt);
    throw e;
  }
  return hwpt;
}
