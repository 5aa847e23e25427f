import { statusName } from "@smashlab/hw-engine";
import type { Machine } from "../machine/machine.js";
import { type DmaTally, emptyTally, failedCount } from "../machine/trusted-device.js";
import type { StepLog } from "../report/state.js";
import { formatNs, hex, K4, M2 } from "../units.js";
import { engineCallUnderDma } from "./engine-call.js";
import {
  type ConvertedPage,
  psmashRegion,
  rescindHitsLargeEntry,
  rescindSucceeds,
  shareRescindedPage,
} from "./guest-conversion.js";
import { adjustCall } from "./setup.js";

/** The three ways of step 6. */
export type VariantId = "a" | "b" | "c";

/** What one way of sharing the page did to the device's DMA. */
export interface VariantResult {
  id: VariantId;
  title: string;
  short: string;
  /** DMAs the device issued over the variant's steps. */
  dmas: number;
  /** DMAs that failed. */
  faulted: number;
  /** Failed DMAs by reason. */
  failed: Record<string, number>;
  /** Hazards of coco.md §7 behind the failures. */
  hazards: string[];
  /** DMAs the engine held while it worked (they passed afterwards unless counted in `failed`). */
  held: number;
  /** How long the engine held them, in ns. */
  heldNs: number;
  /** The steps in which DMA failed: the window. */
  faultSteps: string[];
  /** DMAs issued in those steps. */
  windowDmas: number;
}

/** One run of a variant: a fresh machine after step 5, the page, and the DMA the device keeps doing. */
export interface VariantContext {
  m: Machine;
  page: ConvertedPage;
  /** IOVAs of the device's DMA: pages of the region other than the converted one. */
  iovas: readonly number[];
  log: StepLog;
}

/** A way of sharing the page; `run` leaves the region at 4K IO leaves over 4K RMP entries. */
export interface ShareVariant {
  id: VariantId;
  title: string;
  /** A few words for the summary. */
  short: string;
  run(c: VariantContext, result: VariantResult): void;
}

const DMA_TARGET = "the other 511 pages of the region";

/** Records a sub-step and adds its DMA to the variant's result. */
function record(
  c: VariantContext,
  r: VariantResult,
  n: number,
  title: string,
  actions: string[],
  tally: DmaTally,
): void {
  const id = `6${r.id}.${n}`;
  r.dmas += tally.issued;
  const f = failedCount(tally);
  r.faulted += f;
  if (f > 0) {
    r.faultSteps.push(id);
    r.windowDmas += tally.issued;
  }
  for (const k in tally.failed) r.failed[k] = (r.failed[k] ?? 0) + tally.failed[k]!;
  for (const h of tally.hazards) if (!r.hazards.includes(h)) r.hazards.push(h);
  r.held += tally.held;
  r.heldNs += tally.heldNs;
  c.log.record(c.m, { id, title, actions }, { tally, target: DMA_TARGET });
}

/** The device's DMA after a sub-step, through whatever the tables say now. */
function dmaNow(c: VariantContext): DmaTally {
  const t = emptyTally();
  c.m.device.burst(c.iovas, t);
  return t;
}

/** Splits the region's IO leaf to 4K through iommufd (hitless, then one invalidation). */
function splitIoLeaf(c: VariantContext, actor: string): string[] {
  const iova = c.m.gpaOf(c.page.region);
  const report = c.m.fd.hwptAdjustPageSize({ hwptId: c.m.hwptId, iova, length: M2, pageSize: K4 });
  return adjustCall(c.m, actor, { iova, length: M2, pageSize: K4, report });
}

/** 6a: upstream KVM's order; the VMM fixes the IO leaf afterwards (JG, 19 Jan). */
const rmpFirst: ShareVariant = {
  id: "a",
  title:
    "RMP first: PSMASH, then RMPUPDATE to shared; the IO leaf stays 2M until the VMM splits it",
  short: "RMP first, IO leaf still 2M",
  run(c, r) {
    record(
      c,
      r,
      1,
      "The guest rescinds the page; KVM smashes the RMP entry; the IO leaf is still 2M",
      [
        rescindHitsLargeEntry(c.m, c.page),
        psmashRegion(c.m, c.page, "KVM: sev_handle_rmp_fault"),
        rescindSucceeds(c.m, c.page),
      ],
      dmaNow(c),
    );
    record(
      c,
      r,
      2,
      "The guest shares the page; KVM makes it shared; the IO leaf is still 2M",
      shareRescindedPage(c.m, c.page),
      dmaNow(c),
    );
    record(
      c,
      r,
      3,
      "The VMM splits the IO leaf to 4K (hitless), before the guest's PSC returns",
      splitIoLeaf(c, "VMM"),
      dmaNow(c),
    );
  },
};

/** 6b: the software order JG asks for (21 Jan): IOMMU 2M→4K, flush, then RMP 2M→4K. */
const ioLeafFirst: ShareVariant = {
  id: "b",
  title: "IO leaf first: a hitless split and a flush, then PSMASH",
  short: "IO leaf first (hitless split), then PSMASH",
  run(c, r) {
    record(
      c,
      r,
      1,
      "The guest rescinds the page; the host splits the IO leaf to 4K first; the RMP entry is still 2M",
      [rescindHitsLargeEntry(c.m, c.page), ...splitIoLeaf(c, "host")],
      dmaNow(c),
    );
    record(
      c,
      r,
      2,
      "The host smashes the RMP entry; the guest's rescind goes through",
      [psmashRegion(c.m, c.page, "host"), rescindSucceeds(c.m, c.page)],
      dmaNow(c),
    );
    record(
      c,
      r,
      3,
      "The guest shares the page; KVM makes it shared",
      shareRescindedPage(c.m, c.page),
      dmaNow(c),
    );
  },
};

/** 6c: the prototype's path: kvm_amd calls rmp_psmash_io in place of psmash. */
const engine: ShareVariant = {
  id: "c",
  title: "PSMASH_IO through the TMPM engine, then RMPUPDATE to shared",
  short: "PSMASH_IO (TMPM engine), then RMPUPDATE",
  run(c, r) {
    const first = rescindHitsLargeEntry(c.m, c.page);
    const tally = emptyTally();
    const hpa = c.m.hpaOf(c.page.region);
    const res = engineCallUnderDma(c.m, c.iovas, tally, () =>
      c.m.driver.psmashIo(c.m.gctx, c.m.requireDomain(), hpa),
    );
    record(
      c,
      r,
      1,
      "The guest rescinds the page; KVM calls PSMASH_IO: IO leaf and RMP entry split at one instant",
      [
        first,
        `KVM: rmp_psmash_io(gctx ${hex(c.m.gctx.pa)}, domain, ${hex(hpa)}), in place of PSMASH`,
        `TMPM driver: 512 PTEs in a page from the domain's own allocator (${hex(res.ptePa)}); PSMASH_IO on the ring`,
        `TMPM: PSMASH_IO → ${statusName(res.status)} after ${formatNs(tally.heldNs)}, DMA to the region held meanwhile; at its end, in one`,
        `       step, the 2M leaf points at the 512 PTEs and the RMP entry is 512 x 4K; ${c.m.engine.engineFlushesIotlb ? "the engine" : "the driver"} flushes the IOTLB`,
        rescindSucceeds(c.m, c.page),
      ],
      tally,
    );
    record(
      c,
      r,
      2,
      "The guest shares the page; KVM makes it shared",
      shareRescindedPage(c.m, c.page),
      dmaNow(c),
    );
  },
};

/** The variants of step 6, in the order the issue lists them. */
export const SHARE_VARIANTS: readonly ShareVariant[] = [rmpFirst, ioLeafFirst, engine];

/** A result with nothing in it yet. */
export function emptyVariantResult(v: ShareVariant): VariantResult {
  return {
    id: v.id,
    title: v.title,
    short: v.short,
    dmas: 0,
    faulted: 0,
    failed: {},
    hazards: [],
    held: 0,
    heldNs: 0,
    faultSteps: [],
    windowDmas: 0,
  };
}
