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
 * What the engine needs to walk an IO page table: its format and its root, as
 * the IOMMU's device-table entry gives them (root pointer and mode). An
 * `IoPageTable` of `@smashlab/pagetable` is one.
 */
export interface IoPageTableRoot {
  readonly format: string;
  readonly topPa: number;
  readonly topLevel: number;
}

/**
 * What the engine learns from the SNP firmware: which pages are guest contexts,
 * for which ASID, and which IO page tables translate a guest's trusted DMA. The
 * firmware's SNP_GCTX_CREATE makes the page Context in the RMP;
 * {@link SnpFirmware.createGuestContext} does both.
 */
export class SnpFirmware {
  private readonly contexts = new Map<number, number>();
  private readonly ioTables = new Map<number, IoPageTableRoot[]>();

  constructor(
    readonly rmp: Rmp,
    readonly memory: HostMemory,
  ) {}

  /** SNP_GCTX_CREATE: a new context page for `asid`. */
  createGuestContext(asid: number): GuestContext {
    checkAsid(asid);
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

  /**
   * The guest `asid`'s trusted DMA is translated by `table` (idempotent). Under
   * SEV-TIO the firmware owns the secure DTE of each TDI it binds to a guest, so
   * it knows the IO page table behind it; this is that knowledge. The engine
   * walks these tables to learn the level of the entry a command names (an AMD
   * v1 leaf's bits do not say whether it is 2M or 1G; its table's level does).
   */
  bindIoPageTable(asid: number, table: IoPageTableRoot): void {
    checkAsid(asid);
    if (typeof table?.topPa !== "number" || typeof table.topLevel !== "number")
      fail("EINVAL", "table", table, "must give topPa and topLevel (an IoPageTable)");
    let list = this.ioTables.get(asid);
    if (list === undefined) {
      list = [];
      this.ioTables.set(asid, list);
    }
    if (!list.includes(table)) list.push(table);
  }

  /** The IO page tables bound to guest `asid` ({@link SnpFirmware.bindIoPageTable}). */
  ioPageTablesOf(asid: number): readonly IoPageTableRoot[] {
    return this.ioTables.get(asid) ?? NONE;
  }
}

const NONE: readonly IoPageTableRoot[] = [];

function checkAsid(asid: number): void {
  if (!Number.isInteger(asid) || asid < 1 || asid > 0x3ff)
    fail("EINVAL", "asid", asid, "must be a guest ASID in 1..1023");
}
