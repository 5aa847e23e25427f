import type { RmpEntry } from "./entry.js";

/**
 * The firmware's page-state taxonomy (AMD-ASPFW sev_rmp.h snp_page_state), as a
 * view derived from an entry's Assigned / Validated / ASID / Immutable / GPA /
 * VMSA fields.
 */
export const PageState = {
  HYPERVISOR: "Hypervisor",
  HV_FIXED: "HV-Fixed",
  FIRMWARE: "Firmware",
  FIRMWARE_IOMMU: "Firmware-IOMMU",
  RECLAIM: "Reclaim",
  CONTEXT: "Context",
  METADATA: "Metadata",
  PRE_GUEST: "Pre-Guest",
  PRE_SWAP: "Pre-Swap",
  GUEST_INVALID: "Guest-Invalid",
  GUEST_VALID: "Guest-Valid",
} as const;
/** A value of {@link PageState}. */
export type PageState = (typeof PageState)[keyof typeof PageState];

/**
 * Classifies an entry. Firmware, Firmware-IOMMU and Metadata differ only in GPA
 * conventions the firmware keeps in the GPA field's top bits (bits 38:36 of the
 * GFN: 0 firmware, 1 metadata, 2 firmware-IOMMU; CSF-983 in sev_rmp.h); the model
 * follows that encoding.
 */
export function pageStateOf(e: RmpEntry): PageState {
  if (!e.assigned) return e.immutable ? PageState.HV_FIXED : PageState.HYPERVISOR;
  if (e.asid === 0) {
    if (!e.immutable) return PageState.RECLAIM;
    if (e.vmsa) return PageState.CONTEXT;
    const tag = Math.floor(e.gpa / 2 ** (12 + 36)) & 7;
    if (tag === 1) return PageState.METADATA;
    if (tag === 2) return PageState.FIRMWARE_IOMMU;
    return PageState.FIRMWARE;
  }
  if (e.immutable) return e.validated ? PageState.PRE_SWAP : PageState.PRE_GUEST;
  return e.validated ? PageState.GUEST_VALID : PageState.GUEST_INVALID;
}
