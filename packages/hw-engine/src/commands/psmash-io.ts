import { amdv1, EntryType } from "@smashlab/pagetable";
import { PsmashRet, RmpPageSize } from "@smashlab/rmp";
import { PsmashIoPage } from "../spec/commands.js";
import { TmpmStatus } from "../spec/status.js";
import { type CommandContext, low12 } from "./context.js";
import { entryLevelOnWalk } from "./entry-level.js";

const M2 = 2 ** 21;
const K4 = 4096;

/** A validated PSMASH_IO, ready to apply atomically. */
export interface PsmashIoPlan {
  readonly src: number;
  readonly hptePa: number;
  /** The PDE: its table page, index and the value it must still hold. */
  readonly pdeTablePa: number;
  readonly pdeIndex: number;
  readonly pdeLo: number;
  readonly pdeHi: number;
  /** The guest's GPA of the region (the RMP GPA; the IOVA to flush). */
  readonly gpa: number;
}

/**
 * Validates a PSMASH_IO command page. Every refusal is a status code from a real
 * cause, checked in this order: reserved bits (RSVD_FIELD_NOT_ZERO), the source
 * alignment (INVALID_SRC_PG_PADDR) and coverage (INVALID_RMP_PADDR), the guest
 * context (INVALID_GCTX_PG_PADDR), poisoned pages (MEM_POISONED), the RMP entry's
 * state (INVALID_PAGE_STATE), size (INVALID_PAGE_SIZE), guest (INVALID_GUEST) and
 * exclusivity (RMP_NOTEXCLUSIVE), the 2M leaf (INVALID_HPTE_PADDR when its table
 * page is not reachable; ADDRESSES_MISMATCH when the guest's IO page-table walk at
 * the region's GPA does not pass the entry named; INVALID_PAGE_SIZE when the walk
 * meets it at another level than 1, e.g. a 1G leaf at level 2, or it is a table
 * pointer or a contiguous run; ADDRESSES_MISMATCH when it maps another address),
 * the PTE page (INVALID_OVERLAP,
 * INVALID_HPTE_PADDR, and its 512 pre-initialised PTEs: ADDRESSES_MISMATCH for a
 * wrong address, INVALID_HPTE_PADDR for a missing or differently permissioned one).
 */
export function validatePsmashIo(ctx: CommandContext, listPa: number): PsmashIoPlan | number {
  const h = ctx.host;
  const src = h.read64(listPa + PsmashIoPage.SRC_PG_PADDR);
  const hptePa = h.read64(listPa + PsmashIoPage.SMASH_HPTE_PADDR);
  const hpmdPa = h.read64(listPa + PsmashIoPage.SRC_HPMD_PADDR);
  const gctx = h.read64(listPa + PsmashIoPage.GCTX_PADDR);
  for (const off of [0, 8, 16, 24]) {
    if (h.read64Hi(listPa + off) !== 0) return TmpmStatus.RSVD_FIELD_NOT_ZERO;
  }
  if (low12(h, listPa + PsmashIoPage.SMASH_HPTE_PADDR) !== 0) return TmpmStatus.RSVD_FIELD_NOT_ZERO;
  if (hpmdPa % 8 !== 0 || low12(h, listPa + PsmashIoPage.GCTX_PADDR) !== 0)
    return TmpmStatus.RSVD_FIELD_NOT_ZERO;
  if (src % M2 !== 0) return TmpmStatus.INVALID_SRC_PG_PADDR;
  if (src >= ctx.rmp.hostBytes) return TmpmStatus.INVALID_RMP_PADDR;
  const asid = ctx.firmware.asidOf(gctx);
  if (asid < 0) return TmpmStatus.INVALID_GCTX_PG_PADDR;
  const pdeTablePa = hpmdPa - (hpmdPa % K4);
  for (const pa of [src, hptePa, pdeTablePa, gctx])
    if (ctx.isPoisoned(pa)) return TmpmStatus.MEM_POISONED;

  const { entry, level } = ctx.rmp.lookup(src);
  if (!entry.assigned || entry.asid === 0 || entry.immutable) return TmpmStatus.INVALID_PAGE_STATE;
  if (level !== RmpPageSize.SIZE_2M) return TmpmStatus.INVALID_PAGE_SIZE;
  if (entry.asid !== asid) return TmpmStatus.INVALID_GUEST;
  if (ctx.rmp.isBusy(src, RmpPageSize.SIZE_2M, "psmash")) return TmpmStatus.RMP_NOTEXCLUSIVE;

  if (!ctx.tables.isLive(pdeTablePa) || !ctx.isMapped(pdeTablePa))
    return TmpmStatus.INVALID_HPTE_PADDR;
  const gpa = entry.gpa - (entry.gpa % M2);
  // The entry's bits alone cannot tell a 2M leaf from a 1G one: its level can.
  const pdeLevel = entryLevelOnWalk(ctx, asid, gpa, hpmdPa);
  if (pdeLevel < 0) return TmpmStatus.ADDRESSES_MISMATCH;
  const pt = ctx.tables.words(pdeTablePa);
  const pdeIndex = (hpmdPa % K4) / 8;
  // A 2M leaf: a level-1 item with NL=0 (not a table pointer, not an NL=7 run).
  if (
    pdeLevel !== 1 ||
    amdv1.load(pt, pdeIndex, 1) !== EntryType.OA ||
    amdv1.numContigLg2(pt, pdeIndex, 1) !== 0
  ) {
    return TmpmStatus.INVALID_PAGE_SIZE;
  }
  if (amdv1.entryOa(pt, pdeIndex, 1) !== src) return TmpmStatus.ADDRESSES_MISMATCH;

  if (hptePa === pdeTablePa || (hptePa >= src && hptePa < src + M2))
    return TmpmStatus.INVALID_OVERLAP;
  if (!ctx.tables.isLive(hptePa) || !ctx.isMapped(hptePa)) return TmpmStatus.INVALID_HPTE_PADDR;
  const pte = ctx.tables.words(hptePa);
  // "The spec requires pre-init": each PTE maps page i with the 2M leaf's bits 63:52.
  const attrHi = pt[2 * pdeIndex + 1]! & 0xfff00000;
  for (let i = 0; i < 512; i++) {
    if (amdv1.load(pte, i, 0) !== EntryType.OA || amdv1.numContigLg2(pte, i, 0) !== 0) {
      return TmpmStatus.INVALID_HPTE_PADDR;
    }
    if ((pte[2 * i + 1]! & 0xfff00000) !== attrHi) return TmpmStatus.INVALID_HPTE_PADDR;
    if (amdv1.entryOa(pte, i, 0) !== src + i * K4) return TmpmStatus.ADDRESSES_MISMATCH;
  }
  return {
    src,
    hptePa,
    pdeTablePa,
    pdeIndex,
    pdeLo: pt[2 * pdeIndex]!,
    pdeHi: pt[2 * pdeIndex + 1]!,
    gpa,
  };
}

/**
 * The atomic step: the 2M leaf becomes a pointer to the PTE page and the RMP
 * entry is smashed, together. Re-checks what could have changed since the
 * command started (another writer on the PDE: hazard H8; another CPU on the RMP):
 * if either did, nothing changes.
 */
export function applyPsmashIo(ctx: CommandContext, plan: PsmashIoPlan): number {
  const pt = ctx.tables.words(plan.pdeTablePa);
  if (pt[2 * plan.pdeIndex] !== plan.pdeLo || pt[2 * plan.pdeIndex + 1] !== plan.pdeHi) {
    return TmpmStatus.ADDRESSES_MISMATCH;
  }
  const ret = ctx.rmp.psmash(plan.src);
  if (ret === PsmashRet.FAIL_INUSE) return TmpmStatus.RMP_NOTEXCLUSIVE;
  if (ret !== PsmashRet.SUCCESS) return TmpmStatus.INVALID_PAGE_STATE;
  amdv1.installTable(pt, plan.pdeIndex, 1, plan.hptePa, plan.pdeLo, plan.pdeHi);
  return TmpmStatus.SUCCESS;
}
