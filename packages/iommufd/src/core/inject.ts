import { TableMemory, type TableMemoryOptions } from "@smashlab/pagetable";

/**
 * Fault injection like the kernel's fail-nth: arm it with n and the n-th
 * injection site reached from then on fails, once. Sites are iommufd's own
 * allocations (objects, areas, pins, temporary memory), object lookups
 * (iommufd_should_fail()), and, through {@link InjectableTableMemory}, every
 * page-table allocation: one counter across all of them.
 */
export class FaultInjector {
  private armed = 0;
  private count = 0;

  /** Fail the n-th site from now (1-based); 0 disarms. */
  failNth(n: number): void {
    this.armed = n;
    this.count = 0;
  }

  /** True while an armed failure has not happened (the site was not reached). */
  get pending(): boolean {
    return this.armed !== 0;
  }

  /** Sites reached since arming. */
  get reached(): number {
    return this.count;
  }

  /** Called at every site: true means "fail here". */
  shouldFail(): boolean {
    if (this.armed === 0) return false;
    if (++this.count === this.armed) {
      this.armed = 0;
      return true;
    }
    return false;
  }
}

/** A page-table allocator whose allocations are sites of a {@link FaultInjector}. */
export class InjectableTableMemory extends TableMemory {
  constructor(
    readonly injector: FaultInjector,
    options: TableMemoryOptions = {},
  ) {
    super(options);
  }

  override alloc(): number {
    return this.injector.shouldFail() ? -1 : super.alloc();
  }
}
