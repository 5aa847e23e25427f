/**
 * TMPM mailbox registers (32-bit, index = offset / 4) and their bits
 * (coco.md §4, the TMPM driver's header).
 */
export const TmpmReg = {
  /** Bit 0 PAUSE, bit 1 INIT. */
  RBCTL: 0,
  /** Bits 15:0 the tail: the next entry the engine will consume. */
  RBTAIL: 1,
  /** Bits 15:0 the head, written by the driver; writing it wakes the engine. */
  RBHEAD: 2,
  /** Bits 7:0 the ring size in pages (the driver writes 1). */
  CDATA: 3,
  /** Ring base physical address, bits 31:0. */
  RBLOW: 4,
  /** Ring base physical address, bits 63:32. */
  RBHIGH: 5,
  /** Interrupt threshold. */
  THRESH: 6,
  /** Bit 31 TOGGLE, bit 26 WPTR_ERR, bit 25 RB_ERR, bit 1 DRIVER_INIT, bit 0 ENGINE_READY. */
  STATUS: 7,
} as const;

export const RBCTL_PAUSE = 1 << 0;
export const RBCTL_INIT = 1 << 1;
export const STATUS_ENGINE_READY = 1 << 0;
export const STATUS_DRIVER_INIT = 1 << 1;
export const STATUS_RB_ERR = 1 << 25;
export const STATUS_WPTR_ERR = 1 << 26;
export const STATUS_TOGGLE = 1 << 31;

/** Entries in the one-page ring: 4096 bytes of 16-byte entries. */
export const RING_ENTRIES = 256;
/** Bytes per ring entry: {u64 list_paddr; u32 cmd_reg; u32 status_reg}. */
export const RING_ENTRY_BYTES = 16;
