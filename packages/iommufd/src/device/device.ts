import { IommufdObject } from "../core/object.js";
import type { HwptPaging } from "../hwpt/hwpt-paging.js";
import { ObjectType } from "../uapi.js";
import type { PhysDevice } from "./iommu-driver.js";

/**
 * struct iommufd_group: the devices of one iommu_group bound to this context.
 * The group attaches to one HWPT at a time; the first device attaches the
 * domain, the last one to leave detaches it.
 */
export class IommufdGroup {
  hwpt: HwptPaging | null = null;
  readonly devices = new Set<IommufdDevice>();

  constructor(readonly group: object) {}
}

/**
 * IOMMUFD_OBJ_DEVICE: a device bound to iommufd (VFIO cdev bind). The binding
 * driver holds a reference until unbind, so IOMMU_DESTROY of the ID is EBUSY.
 */
export class IommufdDevice extends IommufdObject {
  readonly type = ObjectType.DEVICE;
  /** The HWPT this device is attached to. */
  hwpt: HwptPaging | null = null;

  constructor(
    readonly dev: PhysDevice,
    readonly igroup: IommufdGroup,
    private readonly onDestroy: (idev: IommufdDevice) => void,
  ) {
    super();
  }

  destroy(): void {
    this.onDestroy(this);
  }
}
