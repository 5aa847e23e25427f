/**
 * iommufd's overhead over the page table it drives: IOMMU_IOAS_MAP_FILE of a
 * 2M-backed memfd (1 GiB and 64 GiB) into an IOAS with one attached HWPT capped
 * at 2M, IOMMU_IOAS_UNMAP of the same, and IOMMU_HWPT_ADJUST_PAGE_SIZE of a 2M
 * range to 4K and back. Each row's `ratioToBaseline` divides its time by that of
 * the pagetable's own work on the same range with the same page sizes
 * (IoPageTable.mapRange / unmapRange / splitRange / collapseRange in an AMD v1
 * table capped at 2M), timed in the same run. Target: at most 2.
 *
 * Run: `pnpm bench` (`--json` writes bench-results.json, `--quick` for a smoke run).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchCase, benchArgs, runBench } from "@smashlab/bench-harness";
import { IommuProt, IoPageTable, pageSizeBitmap } from "@smashlab/pagetable";
import {
  AmdIommu,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  Iommufd,
  Memfd,
} from "../src/index.js";

const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;
const FLAGS = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA;
// What iommufd passes to the domain for a READABLE | WRITEABLE map (iommuProtOf).
const PROT = IommuProt.READ | IommuProt.WRITE | IommuProt.CACHE;

// One context, one device on an AMD IOMMU, one IOAS with one HWPT capped at 2M.
const fd = new Iommufd();
const devId = fd.bind({ name: "dev", iommu: new AmdIommu(), group: {}, flags: 0 });
const ioasId = fd.ioasAlloc();
const hwptId = fd.hwptAlloc({ flags: 0, devId, ptId: ioasId, maxPageSize: M2 });
fd.deviceAttach(devId, hwptId);

// The 2M-backed files: one big enough for the largest map, one for the adjust cases.
const file = new Memfd({ phys: fd.phys, size: 64 * G1, folioSize: M2 });
const adjustFile = new Memfd({ phys: fd.phys, size: G1, folioSize: M2 });

/** The baseline's table: what the HWPT's domain is (AMD v1, leaves up to 2M), on its own. */
function rawTable(): IoPageTable {
  return new IoPageTable({ format: "amdv1", pgsizeBitmap: pageSizeBitmap(K4, M2) });
}

/**
 * MAP_FILE and UNMAP of `count` separate ranges of `length` bytes per sample
 * (file offset k * length at IOVA `iova` + k * length), each against the
 * pagetable's mapRange / unmapRange of the same IOVA, PA and length.
 */
function mapUnmap(label: string, length: number, count: number, iova: number): BenchCase[] {
  const entries = length / M2;
  const pt = rawTable();
  const iommufdMap = () => {
    for (let k = 0; k < count; k++) {
      fd.ioasMapFile({
        ioasId,
        flags: FLAGS,
        file,
        start: k * length,
        length,
        iova: iova + k * length,
      });
    }
  };
  const iommufdUnmap = () => {
    for (let k = 0; k < count; k++) fd.ioasUnmap({ ioasId, iova: iova + k * length, length });
  };
  const ptMap = () => {
    for (let k = 0; k < count; k++)
      pt.mapRange(iova + k * length, file.physBase + k * length, length, PROT);
  };
  const ptUnmap = () => {
    for (let k = 0; k < count; k++) pt.unmapRange(iova + k * length, length);
  };
  return [
    {
      name: `iommufd/map_file/${label}@2M`,
      opsPerSample: count,
      entriesPerOp: entries,
      run: iommufdMap,
      after: iommufdUnmap,
      baseline: {
        name: `pagetable mapRange ${label}@2M`,
        opsPerSample: count,
        entriesPerOp: entries,
        run: ptMap,
        after: ptUnmap,
      },
    },
    {
      name: `iommufd/unmap/${label}@2M`,
      opsPerSample: count,
      entriesPerOp: entries,
      before: iommufdMap,
      run: iommufdUnmap,
      baseline: {
        name: `pagetable unmapRange ${label}@2M`,
        opsPerSample: count,
        entriesPerOp: entries,
        before: ptMap,
        run: ptUnmap,
      },
    },
  ];
}

/**
 * IOMMU_HWPT_ADJUST_PAGE_SIZE of `count` separate 2M ranges of a 1 GiB area per
 * sample, one call each: to 4K (a split) and back to 2M (a merge), against the
 * pagetable's splitRange / collapseRange of the same ranges in a table mapped
 * the same way.
 */
function adjust(count: number, iova: number): BenchCase[] {
  fd.ioasMapFile({ ioasId, flags: FLAGS, file: adjustFile, start: 0, length: G1, iova });
  const pt = rawTable();
  pt.mapRange(iova, adjustFile.physBase, G1, PROT);
  const stride = G1 / count;
  const to = (pageSize: number) => () => {
    for (let k = 0; k < count; k++)
      fd.hwptAdjustPageSize({ hwptId, iova: iova + k * stride, length: M2, pageSize });
  };
  const ptSplit = () => {
    for (let k = 0; k < count; k++) pt.splitRange(iova + k * stride, M2, K4);
  };
  const ptCollapse = () => {
    for (let k = 0; k < count; k++) pt.collapseRange(iova + k * stride, M2, M2);
  };
  return [
    {
      name: "iommufd/adjust/2M->4K",
      opsPerSample: count,
      entriesPerOp: 1 + 512,
      run: to(K4),
      after: to(M2),
      baseline: {
        name: "pagetable splitRange 2M->4K",
        opsPerSample: count,
        entriesPerOp: 1 + 512,
        run: ptSplit,
        after: ptCollapse,
      },
    },
    {
      name: "iommufd/adjust/4K->2M",
      opsPerSample: count,
      entriesPerOp: 1,
      before: to(K4),
      run: to(M2),
      baseline: {
        name: "pagetable collapseRange 4K->2M",
        opsPerSample: count,
        entriesPerOp: 1,
        before: ptSplit,
        run: ptCollapse,
      },
    },
  ];
}

// IOVAs clear of the AMD MSI window (just below 4 GiB) and HT window (from 1012 GiB):
// 48 x 1 GiB from 4 GiB (so that even the baseline's samples last ~0.1 ms), the
// adjusted 1 GiB at 56 GiB, 64 GiB from 64 GiB.
const cases: BenchCase[] = [
  ...mapUnmap("1GiB", G1, 48, 4 * G1),
  ...mapUnmap("64GiB", 64 * G1, 1, 64 * G1),
  ...adjust(64, 56 * G1),
];

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
// More and longer samples than the harness's default: a MAP_FILE allocates, so GC noise is real.
runBench(cases, { samples: 21, sampleMs: 900, ...benchArgs(dir) });
