/**
 * The IOMMU_* protection flags of include/linux/iommu.h, as map() takes them.
 */
export const IommuProt = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  CACHE: 1 << 2,
  NOEXEC: 1 << 3,
  MMIO: 1 << 4,
  PRIV: 1 << 5,
} as const;

/** Every flag {@link IommuProt} defines. */
export const IOMMU_PROT_ALL = 0x3f;

/** read_and_clear_dirty() flag: report dirty entries but leave them dirty. */
export const IOMMU_DIRTY_NO_CLEAR = 1 << 0;
