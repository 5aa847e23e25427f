import { defineIommuSuite } from "../test-support/iommu-suite.js";
import { KUNIT_CFGS } from "../test-support/kunit.js";

// The kernel's vtdss_iommu_test KUnit suite: see test-support/iommu-suite.ts.
defineIommuSuite(KUNIT_CFGS.filter((c) => c.fmt.name === "vtdss"));
