import type { TmpmEngine } from "@smashlab/hw-engine";
import { type IoPageTable, WalkResult } from "@smashlab/pagetable";
import { DmaVerdict, dmaVerdictName, type Rmp, VERDICT_HAZARDS } from "@smashlab/rmp";

/** The reason a DMA failed when the IOMMU found no translation, or no write permission. */
export const IO_PAGE_FAULT = "IO_PAGE_FAULT";

/** What a burst of DMA found. Every DMA issued ends up passed or failed; `held` counts a subset. */
export interface DmaTally {
  /** DMAs the device issued. */
  issued: number;
  /** DMAs the IOMMU let through (including those that waited for the engine first). */
  passed: number;
  /** DMAs that the TMPM engine held while it changed their region, then let go. */
  held: number;
  /** How long the engine held them, in nanoseconds of the engine's clock. */
  heldNs: number;
  /** Failed DMAs by reason: an RMP verdict name, or IO_PAGE_FAULT. */
  failed: Record<string, number>;
  /** The hazards of coco.md §7 the failures come from, sorted. */
  hazards: string[];
}

/** A tally with nothing in it. */
export function emptyTally(): DmaTally {
  return { issued: 0, passed: 0, held: 0, heldNs: 0, failed: {}, hazards: [] };
}

/** How many DMAs of a tally failed. */
export function failedCount(t: DmaTally): number {
  let n = 0;
  for (const reason in t.failed) n += t.failed[reason]!;
  return n;
}

/** Which hazards a failed trusted DMA points to, given its verdict and the IO leaf it went through. */
export type HazardAttribution = (verdict: DmaVerdict, leafLg2: number) => readonly string[];

/**
 * A TDISP device bound to the guest (T=1, after TDISP RUN), doing DMA writes
 * through the host IOMMU: the IOMMU walks the attached domain (IOVA = GPA),
 * holds the access while the TMPM engine is changing its region, then checks the
 * RMP with the leaf's size class. There is no IOTLB here: every access walks the
 * table and the RMP is checked on every access (the hardware profile's default,
 * `iotlbCachesRmpVerdict` false), so what a DMA sees is the state the tables
 * are in after their last invalidation.
 */
export class TrustedDevice {
  private domain: IoPageTable | null = null;
  private readonly walk = new WalkResult();
  private readonly heldIovas: number[] = [];

  constructor(
    /** A name for reports ("tdi0"). */
    readonly name: string,
    private readonly rmp: Rmp,
    /** The ASID of the guest the TDI is bound to (the sDTE's). */
    readonly asid: number,
    private readonly engine: TmpmEngine,
    private readonly attribute: HazardAttribution = (v) => VERDICT_HAZARDS[v],
  ) {}

  /** The device's DTE now points at `domain` (VFIO_DEVICE_ATTACH_IOMMUFD_PT). */
  attach(domain: IoPageTable): void {
    this.domain = domain;
  }

  /**
   * One DMA write to `iova` at engine time `at`; its outcome goes into `tally`.
   * A DMA the engine holds waits in the device until {@link TrustedDevice.releaseHeld}.
   */
  dma(iova: number, tally: DmaTally, at: number = this.engine.clock.now()): void {
    tally.issued++;
    this.complete(iova, tally, at);
  }

  /** DMA writes to every IOVA of a list, at engine time `at`. */
  burst(iovas: readonly number[], tally: DmaTally, at: number = this.engine.clock.now()): void {
    for (const iova of iovas) this.dma(iova, tally, at);
  }

  /** The engine finished: the DMAs it held go on, through whatever the tables say now. */
  releaseHeld(tally: DmaTally): void {
    const now = this.engine.clock.now();
    const iovas = this.heldIovas.splice(0);
    for (const iova of iovas) this.complete(iova, tally, now);
  }

  /** DMAs waiting for the engine. */
  get waiting(): number {
    return this.heldIovas.length;
  }

  private complete(iova: number, tally: DmaTally, at: number): void {
    const domain = this.domain;
    if (domain === null || !domain.lookup(iova, this.walk) || !this.walk.writable) {
      countFailure(tally, IO_PAGE_FAULT, []);
      return;
    }
    const spa = this.walk.oa;
    if (this.engine.dmaStallUntil(spa, at) >= 0) {
      tally.held++;
      this.heldIovas.push(iova);
      return;
    }
    const v = this.rmp.checkDmaTrusted(spa, this.walk.leafLg2, this.asid, iova);
    if (v === DmaVerdict.ALLOWED) tally.passed++;
    else countFailure(tally, dmaVerdictName(v), this.attribute(v, this.walk.leafLg2));
  }
}

function countFailure(t: DmaTally, reason: string, hazards: readonly string[]): void {
  t.failed[reason] = (t.failed[reason] ?? 0) + 1;
  for (const h of hazards) {
    if (!t.hazards.includes(h)) {
      t.hazards.push(h);
      t.hazards.sort(byHazardNumber);
    }
  }
}

function byHazardNumber(a: string, b: string): number {
  return Number(a.slice(1)) - Number(b.slice(1));
}
