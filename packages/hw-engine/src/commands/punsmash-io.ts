import { amdv1, EntryType } from "@smashlab/pagetable";
import { PsmashRet, RmpPageSize } from "@smashlab/rmp";
import { PunsmashIoPage } from "../spec/commands.js";
import { TmpmStatus } from "../spec/status.js";
import { type CommandContext, low12 } from "./context.js";
import { entryLevelOnWalk } from "./entry-level.js";

const M2 = 2 ** 21;
const K4 = 4096;

/** A validated PUNSMASH_IO. */
export interface PunsmashIoPlan {
  readonly src: number;
  readonly hptePa: number;
  readonly pdeTablePa: number;
  readonly pdeIndex: number;
  readonly pdeLo: number;
  readonly pdeHi: number;
  /** The leaf's descriptor bits (from the PTEs) and whether any PTE was dirty. */
  readonly attrLo: number;
  readonly attrHi: number;
  readonly dirty: boolean;
  readonly gpa: number;
}

/**
 * Validates a PUNSMASH_IO command page — our inference of the command the TMPM
 * driver lists (capability bit 7) and AK calls "unsmash_io": the reverse of
 * PSMASH_IO when the 512 RMP entries and the 512 PTEs are uniform and contiguous.
 * Refusals: reserved bits, source alignment and coverage, context, poison as
 * PSMASH_IO; the RMP region is not 4K (INVALID_PAGE_SIZE), not uniformly a guest's
 * (INVALID_PAGE_STATE), with GPAs not contiguous from a 2M boundary
 * (INVALID_GPA_PADDR), another guest's (INVALID_GUEST), busy (RMP_NOTEXCLUSIVE);
 * the guest's IO page-table walk does not pass the PDE named (ADDRESSES_MISMATCH)
 * or meets it at another level than 1 (INVALID_PAGE_SIZE); the PDE does not point
 * at the PTE page (INVALID_DST_PG_PADDR); the PTE page is
 * unreachable or not uniform (INVALID_HPTE_PADDR) or maps other pages
 * (ADDRESSES_MISMATCH).
 */
export function validatePunsmashIo(ctx: CommandContext, listPa: number): PunsmashIoPlan | number {
  const h = ctx.host;
  const src = h.read64(listPa + PunsmashIoPage.SRC_PG_PADDR);
  const hptePa = h.read64(listPa + PunsmashIoPage.HPTE_PADDR);
  const hpmdPa = h.read64(listPa + PunsmashIoPage.DST_HPMD_PADDR);
  const gctx = h.read64(listPa + PunsmashIoPage.GCTX_PADDR);
  for (const off of [0, 8, 16, 24]) {
    if (h.read64Hi(listPa + off) !== 0) return TmpmStatus.RSVD_FIELD_NOT_ZERO;
  }
  if (low12(h, listPa + PunsmashIoPage.HPTE_PADDR) !== 0) return TmpmStatus.RSVD_FIELD_NOT_ZERO;
  if (hpmdPa % 8 !== 0 || low12(h, listPa + PunsmashIoPage.GCTX_PADDR) !== 0)
    return TmpmStatus.RSVD_FIELD_NOT_ZERO;
  if (src % M2 !== 0) return TmpmStatus.INVALID_SRC_PG_PADDR;
  if (src >= ctx.rmp.hostBytes) return TmpmStatus.INVALID_RMP_PADDR;
  const asid = ctx.firmware.asidOf(gctx);
  if (asid < 0) return TmpmStatus.INVALID_GCTX_PG_PADDR;
  const pdeTablePa = hpmdPa - (hpmdPa % K4);
  for (const pa of [src, hptePa, pdeTablePa, gctx])
    if (ctx.isPoisoned(pa)) return TmpmStatus.MEM_POISONED;

  if (ctx.rmp.lookup(src).level !== RmpPageSize.SIZE_4K) return TmpmStatus.INVALID_PAGE_SIZE;
  const u = ctx.rmp.regionUniformity(src);
  if (!u.uniform) {
    return u.reason === "gpa-not-contiguous" || u.reason === "gpa-not-aligned"
      ? TmpmStatus.INVALID_GPA_PADDR
      : TmpmStatus.INVALID_PAGE_STATE;
  }
  const entry = ctx.rmp.lookup(src).entry;
  if (entry.asid !== asid) return TmpmStatus.INVALID_GUEST;
  if (ctx.rmp.isBusy(src, RmpPageSize.SIZE_2M, "unsmash")) return TmpmStatus.RMP_NOTEXCLUSIVE;

  if (!ctx.tables.isLive(pdeTablePa) || !ctx.isMapped(pdeTablePa))
    return TmpmStatus.INVALID_HPTE_PADDR;
  // As PSMASH_IO: the guest's walk must meet the entry named, at level 1.
  const level = entryLevelOnWalk(ctx, asid, entry.gpa, hpmdPa);
  if (level < 0) return TmpmStatus.ADDRESSES_MISMATCH;
  if (level !== 1) return TmpmStatus.INVALID_PAGE_SIZE;
  const pt = ctx.tables.words(pdeTablePa);
  const pdeIndex = (hpmdPa % K4) / 8;
  if (amdv1.load(pt, pdeIndex, 1) !== EntryType.TABLE || amdv1.tablePa(pt, pdeIndex) !== hptePa) {
    return TmpmStatus.INVALID_DST_PG_PADDR;
  }
  if (!ctx.tables.isLive(hptePa) || !ctx.isMapped(hptePa)) return TmpmStatus.INVALID_HPTE_PADDR;
  const pte = ctx.tables.words(hptePa);
  const attrs = new Uint32Array(2);
  const other = new Uint32Array(2);
  amdv1.attrFromEntry(pte, 0, attrs);
  let dirty = false;
  for (let i = 0; i < 512; i++) {
    if (amdv1.load(pte, i, 0) !== EntryType.OA || amdv1.numContigLg2(pte, i, 0) !== 0) {
      return TmpmStatus.INVALID_HPTE_PADDR;
    }
    amdv1.attrFromEntry(pte, i, other);
    if (other[0] !== attrs[0] || other[1] !== attrs[1]) return TmpmStatus.INVALID_HPTE_PADDR;
    if (amdv1.entryOa(pte, i, 0) !== src + i * K4) return TmpmStatus.ADDRESSES_MISMATCH;
    if (amdv1.isWriteDirty(pte, i, 0)) dirty = true;
  }
  return {
    src,
    hptePa,
    pdeTablePa,
    pdeIndex,
    pdeLo: pt[2 * pdeIndex]!,
    pdeHi: pt[2 * pdeIndex + 1]!,
    attrLo: attrs[0]!,
    attrHi: attrs[1]!,
    dirty,
    gpa: entry.gpa,
  };
}

/** The atomic step: one 2M leaf over the table pointer and one 2M RMP entry, together. */
export function applyPunsmashIo(ctx: CommandContext, plan: PunsmashIoPlan): number {
  const pt = ctx.tables.words(plan.pdeTablePa);
  if (pt[2 * plan.pdeIndex] !== plan.pdeLo || pt[2 * plan.pdeIndex + 1] !== plan.pdeHi) {
    return TmpmStatus.ADDRESSES_MISMATCH;
  }
  const ret = ctx.rmp.unsmash(plan.src);
  if (ret === PsmashRet.FAIL_INUSE) return TmpmStatus.RMP_NOTEXCLUSIVE;
  if (ret !== PsmashRet.SUCCESS) return TmpmStatus.INVALID_PAGE_STATE;
  const attrs = new Uint32Array([plan.attrLo, plan.attrHi]);
  amdv1.installLeaf(pt, plan.pdeIndex, 1, plan.src, 21, attrs);
  if (plan.dirty)
    amdv1.makeWriteDirty(pt, plan.pdeIndex, pt[2 * plan.pdeIndex]!, pt[2 * plan.pdeIndex + 1]!);
  return TmpmStatus.SUCCESS;
}
