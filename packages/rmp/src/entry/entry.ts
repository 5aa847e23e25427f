import type { RmpPageSize } from "../constants.js";

/**
 * One RMP entry as software sees it (the RMPREAD view plus the fields the
 * hardware keeps: validated, VMSA, VMPL permissions). For a page inside a 2M
 * entry this is the effective entry: the 2M entry's fields, with the GPA of this
 * page.
 */
export interface RmpEntry {
  /** Owned by a guest or firmware (1) or by the hypervisor (0). */
  assigned: boolean;
  /** The size of the entry ruling this page. */
  pageSize: RmpPageSize;
  /** Only firmware may change it. */
  immutable: boolean;
  /** Set by the guest's PVALIDATE. */
  validated: boolean;
  /** The page is a vCPU save area (RMPADJUST). */
  vmsa: boolean;
  /** Owning guest's ASID (0 for hypervisor and firmware pages). */
  asid: number;
  /** Guest physical address this host page is mapped at (page aligned). */
  gpa: number;
  /** VMPL1..3 permission masks ({@link VmplPerm} bits), index 0 = VMPL1. */
  vmplPerms: [number, number, number];
}

/** What RMPUPDATE writes (the kernel's struct rmp_state). */
export interface RmpState {
  assigned: boolean;
  pageSize: RmpPageSize;
  immutable: boolean;
  asid: number;
  /** Page-aligned GPA; 0 for a hypervisor page. */
  gpa: number;
}

/** The RMPREAD result (the kernel's struct rmpentry). */
export interface RmpReadView {
  gpa: number;
  assigned: boolean;
  pageSize: RmpPageSize;
  /** Inferred: 1 when some 4K entry of the 2M region is assigned (the sources do not define it). */
  hpageRegionStatus: number;
  immutable: boolean;
  asid: number;
}
