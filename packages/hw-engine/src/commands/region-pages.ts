import { PsmashIoPage } from "../spec/commands.js";
import { TmpmStatus } from "../spec/status.js";
import type { CommandContext } from "./context.js";
import { applyPsmashIo, type PsmashIoPlan, validatePsmashIo } from "./psmash-io.js";
import { applyPunsmashIo, type PunsmashIoPlan, validatePunsmashIo } from "./punsmash-io.js";

/** A validated PSMASH_IO or PUNSMASH_IO page. */
export type RegionPlan = PsmashIoPlan | PunsmashIoPlan;

/** One page of a PSMASH_IO / PUNSMASH_IO list: its plan (null when refused) and status. */
export interface RegionPage {
  /** Physical address of the command page. */
  readonly pa: number;
  plan: RegionPlan | null;
  /** The page's own status: its refusal, or (once applied) SUCCESS or why not. */
  status: number;
}

/**
 * Validates each page of a list in order. `hold` runs for each plan as soon as
 * it is made: the engine holds that region from then on, so a later page naming
 * the same region finds it busy (RMP_NOTEXCLUSIVE).
 */
export function validateRegionPages(
  ctx: CommandContext,
  psmash: boolean,
  pagePas: readonly number[],
  hold: (plan: RegionPlan) => void,
): RegionPage[] {
  const pages: RegionPage[] = [];
  for (const pa of pagePas) {
    const plan = psmash ? validatePsmashIo(ctx, pa) : validatePunsmashIo(ctx, pa);
    if (typeof plan === "number") {
      pages.push({ pa, plan: null, status: plan });
    } else {
      hold(plan);
      pages.push({ pa, plan, status: 0 });
    }
  }
  return pages;
}

/**
 * Applies each planned page in order, each in its own atomic step, and returns
 * the ring entry's status: SUCCESS when every page succeeded, PARTIAL_SUCCESS
 * when some did and some did not (each page's status says which), otherwise the
 * first page's failure.
 *
 * A page whose memory took an uncorrectable error while the command ran
 * (poisoned after validation) is HW_MEM_ERR and changes nothing: the engine
 * found the error on its own access, where MEM_POISONED is a page already known
 * poisoned when the command started.
 */
export function applyRegionPages(
  ctx: CommandContext,
  psmash: boolean,
  pages: readonly RegionPage[],
): number {
  for (const page of pages) {
    const plan = page.plan;
    if (plan === null) continue;
    if (
      ctx.isPoisoned(page.pa) ||
      ctx.isPoisoned(plan.src) ||
      ctx.isPoisoned(plan.hptePa) ||
      ctx.isPoisoned(plan.pdeTablePa)
    ) {
      page.status = TmpmStatus.HW_MEM_ERR;
    } else {
      page.status = psmash
        ? applyPsmashIo(ctx, plan as PsmashIoPlan)
        : applyPunsmashIo(ctx, plan as PunsmashIoPlan);
    }
  }
  return ringStatus(pages);
}

/** The ring entry's status from its pages' statuses. */
export function ringStatus(pages: readonly RegionPage[]): number {
  let succeeded = 0;
  let firstFailure = 0;
  for (const p of pages) {
    if (p.status === TmpmStatus.SUCCESS) succeeded++;
    else if (firstFailure === 0) firstFailure = p.status;
  }
  if (firstFailure === 0) return TmpmStatus.SUCCESS;
  return succeeded > 0 ? TmpmStatus.PARTIAL_SUCCESS : firstFailure;
}

/**
 * Writes a page's status into bits 7:0 of its gctx qword (the PSMASH_IO page's
 * status field; sub_status, bits 11:8, cleared: the model reports none).
 */
export function writePageStatus(ctx: CommandContext, page: RegionPage): void {
  const qword = page.pa + PsmashIoPage.GCTX_PADDR;
  ctx.host.write32(qword, (ctx.host.read32(qword) & ~0xfff) | (page.status & 0xff));
}
