/**
 * TMPM command status codes (AMD spec 58151 rev 0.51 as the TMPM driver's
 * header lists them; ../shared/reference/coco.md §4). The engine writes one into
 * bits 7:0 of a ring entry's status word; 0 means still pending.
 */
export const TmpmStatus = {
  PENDING: 0x00,
  INVALID_PLATFORM_STATE: 0x01,
  INVALID_PAGE_PADDR: 0x02,
  INVALID_NUM_PAGES: 0x03,
  MEM_POISONED: 0x04,
  INVALID_PAGE_STATE: 0x05,
  INVALID_PAGE_SIZE: 0x06,
  RMP_NOTEXCLUSIVE: 0x07,
  INVALID_GUEST: 0x08,
  INVALID_GPA_PADDR: 0x09,
  INVALID_HPTE_PADDR: 0x0a,
  INVALID_COMMAND: 0x0b,
  INVALID_SRC_PG_PADDR: 0x0c,
  INVALID_DST_PG_PADDR: 0x0d,
  INVALID_GCTX_PG_PADDR: 0x0e,
  INVALID_RMP_PADDR: 0x0f,
  INVALID_NEXT: 0x10,
  MEM_ABORTED: 0x11,
  RSVD_FIELD_NOT_ZERO: 0x12,
  VERSION_ERROR: 0x13,
  INVALID_TMPM_LIST_ADDR: 0x14,
  ADDRESSES_MISMATCH: 0x15,
  PARTIAL_SUCCESS: 0x16,
  RESOURCE_NOT_AVAILABLE: 0x17,
  INVALID_OVERLAP: 0x18,
  HW_MEM_ERR: 0x19,
  SUCCESS: 0xf0,
} as const;
/** A value of {@link TmpmStatus}. */
export type TmpmStatus = (typeof TmpmStatus)[keyof typeof TmpmStatus];

const NAMES = Object.fromEntries(Object.entries(TmpmStatus).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

/** The name of a status code ("INVALID_PAGE_SIZE", ...). */
export function statusName(status: number): string {
  return NAMES[status] ?? `UNKNOWN(0x${status.toString(16)})`;
}
