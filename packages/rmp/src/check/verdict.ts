/**
 * The verdicts the IOMMU and the CPU act on: small numbers, so a check on the DMA
 * path allocates nothing. {@link VERDICT_HAZARDS} ties each to the hazards of
 * ../shared/reference/coco.md §7 that produce it.
 */
export const DmaVerdict = {
  ALLOWED: 0,
  /** T=1: an IO leaf of 2M or more over a 4K RMP entry (checked as 2M; no retry at 4K). */
  LEAF_LARGER_THAN_RMP: 1,
  /** T=1: an IO leaf of 4K..1M over a 2M RMP entry (checked as 4K). */
  LEAF_SMALLER_THAN_RMP: 2,
  /** T=1: the page is not assigned (a hypervisor or shared page). */
  NOT_ASSIGNED: 3,
  /** T=1: assigned to another guest (or to firmware). */
  WRONG_ASID: 4,
  /** T=1: the RMP GPA is not the IOVA. */
  WRONG_GPA: 5,
  /** T=1 with `trustedDmaRequiresValidated`: the guest has not validated the page. */
  NOT_VALIDATED: 6,
  /** T=0: the page itself is assigned (private to a guest, or firmware). */
  ASSIGNED_TO_GUEST: 7,
  /** T=0 through a leaf of 2M or more: another page of the 2M region is assigned. */
  ASSIGNED_IN_REGION: 8,
  /** The address is beyond the memory the RMP covers. */
  NOT_COVERED: 9,
} as const;
/** A value of {@link DmaVerdict}. */
export type DmaVerdict = (typeof DmaVerdict)[keyof typeof DmaVerdict];

/** CPU access verdicts (a guest private access through NPT, or a host access). */
export const CpuVerdict = {
  ALLOWED: 0,
  /** #NPF with PFERR_GUEST_RMP: not this guest's page at this GPA. */
  NPF_RMP: 1,
  /** #NPF with RMP and SIZEM: an NPT leaf larger than the 4K RMP entry under it. */
  NPF_RMP_SIZEM: 2,
  /** #VC in the guest: a private access to a page it has not validated. */
  VC_NOT_VALIDATED: 3,
  /** Host RMP #PF: the host wrote an assigned page, or through a 2M mapping covering one. */
  HOST_RMP_PF: 4,
} as const;
/** A value of {@link CpuVerdict}. */
export type CpuVerdict = (typeof CpuVerdict)[keyof typeof CpuVerdict];

const DMA_NAMES = Object.fromEntries(Object.entries(DmaVerdict).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;
const CPU_NAMES = Object.fromEntries(Object.entries(CpuVerdict).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

/** The name of a DMA verdict ("LEAF_LARGER_THAN_RMP", ...). */
export function dmaVerdictName(v: number): string {
  return DMA_NAMES[v] ?? `UNKNOWN(${v})`;
}

/** The name of a CPU verdict. */
export function cpuVerdictName(v: number): string {
  return CPU_NAMES[v] ?? `UNKNOWN(${v})`;
}

/** Which hazards of coco.md §7 show up as each DMA verdict, for an oracle's attribution. */
export const VERDICT_HAZARDS: Readonly<Record<DmaVerdict, readonly string[]>> = {
  [DmaVerdict.ALLOWED]: [],
  // RMP smashed under a 2M IOPTE; untrusted maps kept large after accept; a >2M leaf over a smashed 2M.
  [DmaVerdict.LEAF_LARGER_THAN_RMP]: ["H1", "H4", "H22"],
  // IOPTE cut before the RMP smash; 4K-forced IOMMU over 2M RMP; mismatched IO S2 at accept.
  [DmaVerdict.LEAF_SMALLER_THAN_RMP]: ["H2", "H3", "H22"],
  // A trusted DMA to a page that left the guest (shared, or freed and reused).
  [DmaVerdict.NOT_ASSIGNED]: ["H16", "H26"],
  [DmaVerdict.WRONG_ASID]: ["H20"],
  // The IOPTE points elsewhere than the RMP says, or the domain's IOVA is not the GPA.
  [DmaVerdict.WRONG_GPA]: ["H19", "H9"],
  // The host re-assigned a page behind the guest's back.
  [DmaVerdict.NOT_VALIDATED]: ["H21"],
  [DmaVerdict.ASSIGNED_TO_GUEST]: ["H14", "H18"],
  [DmaVerdict.ASSIGNED_IN_REGION]: ["H15"],
  [DmaVerdict.NOT_COVERED]: [],
};
