/**
 * AMD SEV-SNP's reverse map table: its entries, the instructions that change
 * them (RMPUPDATE, PSMASH, PVALIDATE, RMPADJUST, RMPREAD) with their exact status
 * codes, the kernel's helpers on top, and the access checks the CPU and the
 * IOMMU act on — including the trusted-DMA size rule that makes IO page sizes
 * track RMP page sizes.
 *
 * @packageDocumentation
 */
export { checkCpuAccess, checkHostAccess } from "./check/cpu.js";
export { checkDmaTrusted, checkDmaTrustedBurst, checkDmaUntrusted } from "./check/dma.js";
export {
  CpuVerdict,
  cpuVerdictName,
  DmaVerdict,
  dmaVerdictName,
  VERDICT_HAZARDS,
} from "./check/verdict.js";
export {
  ASID_MAX,
  GPA_LIMIT,
  NpfFlag,
  PAGES_PER_REGION,
  PsmashRet,
  PvalidateRet,
  RmpPageSize,
  RmpUpdateRet,
  VMPL_PERM_ALL,
  VmplPerm,
} from "./constants.js";
export type { RmpEntry, RmpReadView, RmpState } from "./entry/entry.js";
export { PageState, pageStateOf } from "./entry/page-state.js";
export { type RmpErrno, RmpError } from "./errors.js";
export type { PvalidateArgs } from "./instructions/pvalidate.js";
export type { RmpadjustArgs } from "./instructions/rmpadjust.js";
export type { RegionUniformity } from "./instructions/unsmash.js";
export {
  isHvFixed,
  PgLevel,
  rmpMakeGuestContextPage,
  rmpMakeHvFixed,
  rmpMakePrivate,
  rmpMakeShared,
} from "./linux/helpers.js";
export { DEFAULT_RMP_OPTIONS, type ResolvedRmpOptions, type RmpOptions } from "./options.js";
export {
  type InUseHook,
  Rmp,
  type RmpChange,
  type RmpListener,
  type RmpLookup,
  type RmpStats,
} from "./rmp.js";
