import { IommufdObject } from "../core/object.js";
import type { Ioas } from "../ioas/ioas.js";
import { ObjectType } from "../uapi.js";
import type { IommuDomain } from "./domain.js";

/**
 * IOMMUFD_OBJ_HWPT_PAGING: a kernel-managed domain mirroring one IOAS. An auto
 * domain (made by attaching a device to an IOAS) goes away with its last
 * device; a manual one stays until IOMMU_DESTROY. `maxPageSize` is the
 * smashlab page-size cap it was allocated with (0 for none).
 */
export class HwptPaging extends IommufdObject {
  readonly type = ObjectType.HWPT_PAGING;
  /** True once the domain is filled from, and kept in step with, the IOAS. */
  added = false;

  constructor(
    readonly ioas: Ioas,
    readonly domain: IommuDomain,
    readonly autoDomain: boolean,
    readonly nestParent: boolean,
    readonly maxPageSize: number,
  ) {
    super();
  }

  destroy(): void {
    if (this.added) this.ioas.iopt.removeDomain(this.domain);
    const i = this.ioas.hwpts.indexOf(this);
    if (i >= 0) this.ioas.hwpts.splice(i, 1);
    this.domain.free();
    this.ioas.users--;
  }
}
