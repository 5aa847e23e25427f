import { defineIommuSuite } from "../test-support/iommu-suite.js";
import { KUNIT_CFGS } from "../test-support/kunit.js";

// The kernel's amdv1 (iommufd mock)_iommu_test KUnit suite: see test-support/iommu-suite.ts.
defineIommuSuite(KUNIT_CFGS.filter((c) => c.fmt.name === "amdv1-mock"));
