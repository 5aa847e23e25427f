/**
 * A faithful, fast model of the Linux kernel's generic IO page table library
 * (iommupt, drivers/iommu/generic_pt/): the AMD IOMMU v1, x86_64 and VT-d
 * second-stage formats bit for bit, plus the iommufd selftest's 2 KiB mock; the
 * kernel's map, unmap, iova_to_phys, read_and_clear_dirty and IOTLB gather; the
 * IOMMU core's iommu_map segmentation; and the hitless cut, split and collapse the
 * RFC cut_mapping series and the 2026 SEV-TIO discussion call for.
 *
 * @packageDocumentation
 */

export type { WalkScratch } from "./algo/args.js";
export type { DirtyRecorder } from "./algo/dirty.js";
export { IotlbGather } from "./algo/gather.js";
export type { ResizeReport } from "./algo/resize.js";
export type { LiveEntryWrite, LiveWriteObserver, PtTable } from "./algo/table-like.js";
export { WalkResult } from "./algo/translate.js";
export { Errno, PageTableError, type PtErrno } from "./errors.js";
export {
  debugSupportedFeatures,
  featureMask,
  hasFeature,
  PtFeature,
  type PtFeatureName,
} from "./features.js";
export { AmdV1Format, amdv1, amdv1Mock } from "./format/amdv1.js";
export {
  EntryType,
  type FormatConfig,
  type FormatGeometry,
  type PtFormat,
} from "./format/format.js";
export { FORMATS, type FormatName, formatByName } from "./format/registry.js";
export { VtdSsFormat, vtdss } from "./format/vtdss.js";
export { X86_64Format, x86_64 } from "./format/x86-64.js";
export { computeBestPgsize, sizesFromBitmap, sizesOfBitmap } from "./iter/best-pgsize.js";
export type { PtGeometry } from "./iter/geometry.js";
export { ffs32, ffs64, ffz32, ffz64, fls32, fls64 } from "./log2.js";
export { TABLE_PAGE_BYTES, TableMemory, type TableMemoryOptions } from "./memory/table-memory.js";
export { IOMMU_DIRTY_NO_CLEAR, IOMMU_PROT_ALL, IommuProt } from "./prot.js";
export {
  type Aperture,
  IoPageTable,
  type IoPageTableConfig,
  type LeafInfo,
  type PtDriverOps,
  pageSizeBitmap,
  type TableStats,
} from "./table.js";
