/**
 * TMPM command identifiers and the ring entry's command word (coco.md §4): bits
 * 7:0 the command id, bits 27:16 the number of pages in the command list; the
 * other bits are reserved and must be zero.
 */
export const TmpmCommand = {
  GET_CAPABILITIES: 0,
  NOOP: 1,
  PSMASH_IO: 5,
  /**
   * Our inference: the driver lists a PUNSMASH_IO capability bit (7) and AK says the
   * engine has "unsmash_io"; its id is not published. The model uses 6.
   */
  PUNSMASH_IO: 6,
} as const;
/** A value of {@link TmpmCommand}. */
export type TmpmCommand = (typeof TmpmCommand)[keyof typeof TmpmCommand];

const CMD_ID_MASK = 0xff;
const NUM_PAGES_SHIFT = 16;
const NUM_PAGES_MASK = 0xfff;
/** Bits of the command word that must be zero. */
export const CMD_RESERVED_MASK = ~(CMD_ID_MASK | (NUM_PAGES_MASK << NUM_PAGES_SHIFT)) >>> 0;

/** Encodes a command word. */
export function cmdWord(command: number, numPages: number): number {
  return ((command & CMD_ID_MASK) | ((numPages & NUM_PAGES_MASK) << NUM_PAGES_SHIFT)) >>> 0;
}

/** The command id of a command word. */
export function cmdId(word: number): number {
  return word & CMD_ID_MASK;
}

/** The list page count of a command word. */
export function cmdNumPages(word: number): number {
  return (word >>> NUM_PAGES_SHIFT) & NUM_PAGES_MASK;
}

/** GET_CAPABILITIES support_reg bits. */
export const CapabilityBit = {
  RELOAD: 1 << 4,
  PSMASH_IO: 1 << 6,
  PUNSMASH_IO: 1 << 7,
} as const;

/**
 * Layout of the PSMASH_IO command page (struct psmash_io, four u64): offsets in
 * bytes. `gctx_paddr`'s qword also returns status (7:0), sub_status (11:8),
 * pte_suberr (59:56) and pte_err (63:60).
 */
export const PsmashIoPage = {
  SRC_PG_PADDR: 0,
  SMASH_HPTE_PADDR: 8,
  SRC_HPMD_PADDR: 16,
  GCTX_PADDR: 24,
} as const;

/**
 * Layout of the PUNSMASH_IO command page: our inference, the mirror of
 * PSMASH_IO: the 2M region, the PTE page to fold, the PDE that points at it (to
 * become the 2M leaf), the guest context.
 */
export const PunsmashIoPage = {
  SRC_PG_PADDR: 0,
  HPTE_PADDR: 8,
  DST_HPMD_PADDR: 16,
  GCTX_PADDR: 24,
} as const;

/** Layout of the GET_CAPABILITIES result page: four u32 words. */
export const CapabilitiesPage = {
  CAP_REG: 0,
  FW_REG: 4,
  SPEC_REG: 8,
  SUPPORT_REG: 12,
} as const;
