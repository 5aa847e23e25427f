import type { FaultInjector } from "../core/inject.js";
import { IommufdObject } from "../core/object.js";
import type { HwptPaging } from "../hwpt/hwpt-paging.js";
import { IoPagetable } from "../iopt/io-pagetable.js";
import { ObjectType } from "../uapi.js";

/**
 * IOMMUFD_OBJ_IOAS: one io_pagetable and the HWPT_PAGING objects that mirror
 * it (hwpt_list, in creation order, which is the order auto-domain attach tries
 * them). Destroying it unmaps every area; every HWPT and access holds it.
 */
export class Ioas extends IommufdObject {
  readonly type = ObjectType.IOAS;
  readonly iopt: IoPagetable;
  readonly hwpts: HwptPaging[] = [];

  constructor(injector: FaultInjector) {
    super();
    this.iopt = new IoPagetable(injector, this);
  }

  destroy(): void {
    this.iopt.unmapAll();
    // The selftest's ADD_RESERVED ranges belong to the IOAS itself.
    this.iopt.removeReserved(null);
  }
}
