import { type Rmp, rmpMakeGuestContextPage } from "@smashlab/rmp";
import { fail } from "../errors.js";
import type { HostMemory } from "../memory/host-memory.js";

/** An SNP guest context: the firmware page that names a guest (its ASID) in commands. */
export interface GuestContext {
  /** Physical address of the context page (RMP state Context). */
  readonly pa: number;
  /** The guest's ASID. */
  readonly asid: number;
}

/**
 * What the engine learns from the SNP firmware: which pages are guest contexts,
 * for which ASID. The firmware's SNP_GCTX_CREATE makes the page Context in the
 * RMP; {@link SnpFirmware.createGuestContext} does both.
 */
export class SnpFirmware {
  private readonly contexts = new Map<number, number>();

  constructor(
    readonly rmp: Rmp,
    readonly memory: HostMemory,
  ) {}

  /** SNP_GCTX_CREATE: a new context page for `asid`. */
  createGuestContext(asid: number): GuestContext {
    if (!Number.isInteger(asid) || asid < 1 || asid > 0x3ff)
      fail("EINVAL", "asid", asid, "must be a guest ASID in 1..1023");
    const pa = this.memory.alloc();
    if (pa < 0) fail("ENOMEM", "memory", this.memory.inUse, "no host page for the guest context");
    if (rmpMakeGuestContextPage(this.rmp, pa / 4096) !== 0) {
      this.memory.release(pa);
      fail("EINVAL", "pa", pa, "the page could not become a Context page in the RMP");
    }
    this.contexts.set(pa, asid);
    return { pa, asid };
  }

  /** The ASID a context page names, or -1 when `pa` is not a live context page. */
  asidOf(pa: number): number {
    const asid = this.contexts.get(pa);
    if (asid === undefined) return -1;
    return this.rmp.pageState(pa) === "Context" ? asid : -1;
  }
}
