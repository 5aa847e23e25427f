import { RmpPageSize } from "@smashlab/rmp";
import type { Machine } from "../machine/machine.js";
import type { DmaTally } from "../machine/trusted-device.js";
import { K4, M2, PAGES_PER_REGION, sizeName } from "../units.js";

/** RMP entries over the guest's memory, by size and state. A 2M entry counts once. */
export interface RmpCounts {
  /** 2M entries assigned to the guest and validated. */
  private2M: number;
  /** 2M entries assigned to the guest, not validated. */
  invalid2M: number;
  /** 4K entries assigned to the guest and validated. */
  private4K: number;
  /** 4K entries assigned to the guest, not validated (rescinded, or not yet validated). */
  invalid4K: number;
  /** 4K entries owned by the hypervisor: shared pages (the all-zero entry). */
  shared4K: number;
}

/** The compact state printed after each step. */
export interface StateSnapshot {
  /** IO leaves over the guest's IOVA range, by size ("2M", "4K"); a contiguous run counts once. */
  ioLeaves: Record<string, number>;
  rmp: RmpCounts;
  /** Table pages charged to the HWPT's domain (0 before it exists). */
  tablesInUse: number;
}

/** One step of the flow: what was done, what the device saw, and the machine afterwards. */
export interface StepReport {
  /** "1" .. "5", "6a.1" .., "7.2". */
  id: string;
  title: string;
  /** What each actor did, in order, with the call and its result. */
  actions: string[];
  /** The device's DMA during this step, if it did any. */
  dma?: DmaTally;
  /** What the DMA targeted, when it did ("random pages of the guest", ...). */
  dmaTarget?: string;
  state: StateSnapshot;
}

/** Reads the machine's state over the guest's memory. */
export function snapshot(m: Machine): StateSnapshot {
  const ioLeaves: Record<string, number> = {};
  const domain = m.domain;
  if (domain !== null) {
    domain.forEachLeaf(
      (leaf) => {
        const k = sizeName(leaf.sizeLg2);
        ioLeaves[k] = (ioLeaves[k] ?? 0) + 1;
      },
      m.gpa,
      m.size,
    );
  }
  return { ioLeaves, rmp: countRmp(m), tablesInUse: domain?.tablesInUse ?? 0 };
}

function countRmp(m: Machine): RmpCounts {
  const c: RmpCounts = { private2M: 0, invalid2M: 0, private4K: 0, invalid4K: 0, shared4K: 0 };
  for (let r = 0; r < m.regions; r++) {
    const base = m.hpaOf(r);
    if (!m.rmpTouched(base)) {
      // Never touched: 512 all-zero (hypervisor, 4K) entries; no need to read them.
      c.shared4K += PAGES_PER_REGION;
      continue;
    }
    if (m.rmp.levelOf(base) === RmpPageSize.SIZE_2M) {
      const e = m.rmp.lookup(base).entry;
      if (!e.assigned) c.shared4K += PAGES_PER_REGION;
      else if (e.validated) c.private2M++;
      else c.invalid2M++;
      continue;
    }
    for (let off = 0; off < M2; off += K4) {
      const e = m.rmp.lookup(base + off).entry;
      if (!e.assigned) c.shared4K++;
      else if (e.validated) c.private4K++;
      else c.invalid4K++;
    }
  }
  return c;
}

/** The steps of a run, each with the machine's state right after it. */
export class StepLog {
  readonly steps: StepReport[] = [];

  /** Adds a step with the machine's state now. */
  record(
    m: Machine,
    step: Omit<StepReport, "state" | "dma" | "dmaTarget">,
    dma?: { tally: DmaTally; target: string },
  ): void {
    const report: StepReport = { ...step, state: snapshot(m) };
    if (dma !== undefined) {
      report.dma = dma.tally;
      report.dmaTarget = dma.target;
    }
    this.steps.push(report);
  }
}
