import { PageTableError } from "@smashlab/pagetable";
import type { CtxInternals } from "../core/ctx-internals.js";
import { attachHwpt, detachHwpt } from "../device/attach.js";
import type { IommufdDevice } from "../device/device.js";
import { fromPageTable } from "../errors.js";
import type { Ioas } from "../ioas/ioas.js";
import { IOMMU_HWPT_ALLOC_NEST_PARENT } from "../uapi.js";
import { HwptPaging } from "./hwpt-paging.js";

/** How {@link allocHwptPaging} makes a HWPT. */
export interface HwptPagingAlloc {
  /** IOMMU_HWPT_ALLOC_* flags, already checked by the caller. */
  flags: number;
  /** smashlab page-size cap (0: none). */
  maxPageSize: number;
  /** An automatic domain (made for a device attaching to an IOAS). */
  autoDomain: boolean;
  /** Attach `idev` before filling the domain, as the kernel does for auto domains. */
  immediateAttach: boolean;
}

/**
 * iommufd_hwpt_paging_alloc(): a domain from the device's IOMMU driver, filled
 * from every area of the IOAS (iopt_table_add_domain) and linked on the IOAS's
 * hwpt_list. All or nothing: on failure the ID, the domain and any attach are
 * undone.
 */
export function allocHwptPaging(
  ctx: CtxInternals,
  ioas: Ioas,
  idev: IommufdDevice,
  how: HwptPagingAlloc,
): HwptPaging {
  const id = ctx.objects.reserve();
  let hwpt: HwptPaging | null = null;
  let attached = false;
  try {
    let domain: ReturnType<typeof idev.dev.iommu.domainAllocPaging>;
    try {
      domain = idev.dev.iommu.domainAllocPaging(idev.dev, {
        flags: how.flags,
        memory: ctx.memory,
        maxPageSize: how.maxPageSize,
      });
    } catch (e) {
      if (e instanceof PageTableError) fromPageTable(e, "dev_id", idev.id);
      throw e;
    }
    hwpt = new HwptPaging(
      ioas,
      domain,
      how.autoDomain,
      (how.flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0,
      how.maxPageSize,
    );
    hwpt.id = id;
    ioas.users++;
    if (how.immediateAttach) {
      attachHwpt(ctx, idev, hwpt);
      attached = true;
    }
    ioas.iopt.addDomain(domain);
    hwpt.added = true;
    ioas.hwpts.push(hwpt);
  } catch (e) {
    if (hwpt !== null) {
      if (attached) detachHwpt(ctx, idev, { autoDestroy: false });
      hwpt.domain.free();
      ioas.users--;
    }
    ctx.objects.abort(id);
    throw e;
  }
  ctx.objects.finalize(id, hwpt);
  return hwpt;
}
