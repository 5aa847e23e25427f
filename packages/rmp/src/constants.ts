/**
 * Encodings shared by the instructions, with their sources: the kernel's
 * arch/x86/include/asm/sev.h (RMPUPDATE/PSMASH/PVALIDATE return codes, page
 * levels) and AMD's firmware sev_rmp.h (entry fields, VMPL permission bits).
 */

/** RMP page size, as the RMPUPDATE page-size field encodes it. */
export const RmpPageSize = {
  /** A 4 KiB entry. */
  SIZE_4K: 0,
  /** A 2 MiB entry, kept at the 2M-aligned page and ruling all 512 pages of its region. */
  SIZE_2M: 1,
} as const;
/** A value of {@link RmpPageSize}. */
export type RmpPageSize = (typeof RmpPageSize)[keyof typeof RmpPageSize];

/** RMPUPDATE status codes (asm/sev.h RMPUPDATE_FAIL_*). */
export const RmpUpdateRet = {
  SUCCESS: 0,
  /** Bad input: misaligned 2M, an address the RMP does not cover, an invalid state. */
  FAIL_INPUT: 1,
  /** The entry is Immutable: only firmware may change it. */
  FAIL_PERMISSION: 2,
  /** Another processor is updating the entry or its 2M region. */
  FAIL_INUSE: 3,
  /** A 4K/2M overlap inside one 2M region. */
  FAIL_OVERLAP: 4,
} as const;

/** PSMASH status codes (asm/sev.h; the early SNP patches list 1, 2, 3 and 4). */
export const PsmashRet = {
  SUCCESS: 0,
  /** The region is not an assigned 2M entry, or the address is not 2M aligned. */
  FAIL_INPUT: 1,
  /** The 2M entry is Immutable. */
  FAIL_PERMISSION: 2,
  /** Another processor is using the entry (the kernel treats it as a spurious race). */
  FAIL_INUSE: 3,
  /** The address is outside the memory the RMP covers. */
  FAIL_BADADDR: 4,
} as const;

/** PVALIDATE / RMPADJUST outcomes: status codes and the #NPF the instruction can raise instead. */
export const PvalidateRet = {
  SUCCESS: 0,
  /** Bad input: a 2M request not 2M aligned, a page size that does not exist. */
  FAIL_INPUT: 1,
  /** RMPADJUST: the requested permissions exceed the caller's, or the target VMPL is not lower. */
  FAIL_PERMISSION: 2,
  /** A 2M request over 4K RMP entries. */
  FAIL_SIZEMISMATCH: 6,
  /** Validated already had the requested value (rFLAGS.CF=1; Linux's PVALIDATE_FAIL_NOUPDATE = 255). */
  NO_UPDATE: 255,
  /** #NPF with PFERR_GUEST_RMP: the page is not this guest's at this GPA. */
  NPF_RMP: 0x100,
  /** #NPF with PFERR_GUEST_RMP and SIZEM: a 4K request on a 2M entry; KVM answers with PSMASH. */
  NPF_RMP_SIZEM: 0x101,
} as const;

/** #NPF error-code bits of an RMP violation (PFERR_GUEST_RMP_MASK = bit 31, PFERR_GUEST_SIZEM_MASK = bit 35). */
export const NpfFlag = {
  /** The fault is an RMP violation (bit 31). */
  RMP: 1 << 0,
  /** The RMP entry's size does not match the access (bit 35). */
  SIZEM: 1 << 1,
} as const;

/** VMPL permission bits of RMPADJUST (sev_rmp.h vmpl_perm_mask). */
export const VmplPerm = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  EXEC_USER: 1 << 2,
  EXEC_SUPERVISOR: 1 << 3,
  SUPERVISOR_SHADOW_STACK: 1 << 4,
} as const;

/** Every VMPL permission bit. */
export const VMPL_PERM_ALL = 0x1f;

/** ASIDs are 10 bits wide in the RMP entry. */
export const ASID_MAX = 0x3ff;

/** GPAs are a 39-bit GFN in the RMP entry: below 2^51. */
export const GPA_LIMIT = 2 ** 51;

/** log2 of a 2M region. */
export const REGION_SHIFT = 21;
/** 4K pages per 2M region. */
export const PAGES_PER_REGION = 512;
