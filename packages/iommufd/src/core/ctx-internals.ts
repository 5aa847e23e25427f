import type { TableMemory } from "@smashlab/pagetable";
import type { FaultInjector } from "./inject.js";
import type { ObjectTable } from "./object-table.js";

/** What the parts of iommufd share of their context (struct iommufd_ctx). */
export interface CtxInternals {
  readonly objects: ObjectTable;
  readonly injector: FaultInjector;
  /** Where every domain's table pages come from. */
  readonly memory: TableMemory;
}
