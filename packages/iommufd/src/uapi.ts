/**
 * The constants of include/uapi/linux/iommufd.h that the model uses, with the
 * kernel's values, plus the selftest's mock constants (iommufd_test.h).
 */

/** Host PAGE_SIZE: iopt_pages work in 4 KiB units. */
export const PAGE_SIZE = 4096;

/**
 * The model's ULONG_MAX: IOVAs and lengths are JavaScript integers, exact up to
 * 2^53 - 1, so that is where the IOVA space ends. Values beyond it are EOVERFLOW,
 * as the kernel's "iova >= ULONG_MAX" checks.
 */
export const ULONG_MAX = Number.MAX_SAFE_INTEGER;

/**
 * U64_MAX as the uAPI's unmap-all marker: IOAS_UNMAP with iova 0 and this length
 * unmaps everything. (2^64 is the double nearest to the kernel's U64_MAX.)
 */
export const U64_MAX = 2 ** 64;

/** enum iommufd_object_type (the types this model has). */
export const ObjectType = {
  IOAS: "IOAS",
  HWPT_PAGING: "HWPT_PAGING",
  DEVICE: "DEVICE",
  ACCESS: "ACCESS",
  SELFTEST: "SELFTEST",
} as const;
/** One of {@link ObjectType}. */
export type ObjectType = (typeof ObjectType)[keyof typeof ObjectType];

/** enum iommufd_ioas_map_flags. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** The mapping may be written by DMA. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** The mapping may be read by DMA. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
/** Every flag IOAS_MAP, MAP_FILE and COPY accept. */
export const IOMMU_IOAS_MAP_ALL =
  IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** enum iommufd_option. */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/** Per IOAS: 1 maps with large pages (default), 0 maps every page at PAGE_SIZE. */
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** enum iommufd_option_ops. */
export const IOMMU_OPTION_OP_SET = 0;
/** Read the option. */
export const IOMMU_OPTION_OP_GET = 1;

/** enum iommufd_hwpt_alloc_flags. */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** The domain tracks dirty IOPTEs. */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** fault_id names a FAULT object. */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** The domain may be attached to PASIDs. */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** enum iommufd_hwpt_set_dirty_tracking_flags. */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/** enum iommufd_hwpt_get_dirty_bitmap_flags. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

/** enum iommu_hw_capabilities. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;

/** enum iommu_hw_info_type. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** AMD IOMMU. */
export const IOMMU_HW_INFO_TYPE_AMD = 6;
/** The selftest's mock IOMMU (0xfeedbeef). */
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
/** The register value the mock reports in its hw_info (IOMMU_HW_INFO_SELFTEST_REGVAL). */
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;

/** Selftest mock: the IO page size is half a host page (MOCK_PAGE_SIZE). */
export const MOCK_PAGE_SIZE = PAGE_SIZE / 2;
/** Selftest mock with HUGE_IOVA: 512 mock pages (MOCK_HUGE_PAGE_SIZE). */
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_PAGE_SIZE;
/** Selftest mock aperture start (MOCK_APERTURE_START). */
export const MOCK_APERTURE_START = 1 << 24;
/** Selftest mock aperture end (MOCK_APERTURE_LAST). */
export const MOCK_APERTURE_LAST = 2 ** 31 - 1;

/** enum of MOCK_FLAGS_DEVICE_*: flags of the selftest's mock device. */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/** The mock domain offers MOCK_HUGE_PAGE_SIZE as well. */
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;

/** Access flag: the access pins pages, which forces PAGE_SIZE IOVA alignment. */
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;
/** Access read/write flag: write instead of read. */
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
/** Access read/write flag: go through pinned pages one by one (the slow path). */
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;
