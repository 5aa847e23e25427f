/**
 * The kernel's iommupt perf cases (kunit_iommu_perf.h: one leaf of 4K, 2M, 1G and
 * 256 of each, map then unmap) for AMD v1 and x86_64, plus 1 GiB mapped at 4K and at
 * 2M and a 1G leaf split to 4K. Each row's ratioToRaw divides the time by that of a
 * plain typed-array loop storing the same number of 64-bit entries, in the same run.
 *
 * Run: `pnpm bench` (`--json` writes bench-results.json, `--quick` for a smoke run).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchCase, benchArgs, runBench } from "@smashlab/bench-harness";
import { IommuProt, IoPageTable } from "../src/index.js";

const RW = IommuProt.READ | IommuProt.WRITE;
const K4 = 0x1000;
const M2 = 0x200000;
const G1 = 0x40000000;

type Fmt = "amdv1" | "x86_64";

function table(format: Fmt): IoPageTable {
  return new IoPageTable(format === "amdv1" ? { format } : { format, hwMaxVaLg2: 48 });
}

/**
 * Single-leaf cases: `count` separate map (or unmap) calls of one leaf each, at
 * consecutive IOVAs (enough of them that a sample is long enough to time). The
 * output address is offset by one leaf so that VA and PA never line up for a
 * larger page, as in the kernel's perf test.
 */
function singleLeaf(format: Fmt, size: number, label: string, count: number): BenchCase[] {
  const pt = table(format);
  const va = 512 * G1;
  const pa = 1024 * G1 + size;
  const g = pt.newGather();
  const mapAll = () => {
    for (let i = 0; i < count; i++) pt.map(va + i * size, pa + i * size, size, RW);
  };
  const unmapAll = () => {
    for (let i = 0; i < count; i++) pt.unmap(va + i * size, size, g);
    pt.iotlbSync(g);
  };
  return [
    {
      name: `${format}/map/${label}`,
      opsPerSample: count,
      entriesPerOp: 1,
      run: mapAll,
      after: unmapAll,
    },
    {
      name: `${format}/unmap/${label}`,
      opsPerSample: count,
      entriesPerOp: 1,
      before: mapAll,
      run: unmapAll,
    },
  ];
}

/**
 * 256 leaves of `size` in one map call and one unmap call, repeated over `reps`
 * separate ranges per sample so that the sample is long enough to time.
 */
function multiLeaf(format: Fmt, size: number, label: string, reps: number): BenchCase[] {
  const pt = table(format);
  const len = 256 * size;
  const va = 1024 * G1;
  const pa = 2048 * G1 + size; // aligned to `size` only, so every leaf is `size`
  const stride = Math.max(len, 2 * G1) * 2;
  const g = pt.newGather();
  const map = () => {
    for (let r = 0; r < reps; r++) pt.map(va + r * stride, pa + r * stride, len, RW);
  };
  const unmap = () => {
    for (let r = 0; r < reps; r++) pt.unmap(va + r * stride, len, g);
    pt.iotlbSync(g);
  };
  return [
    {
      name: `${format}/map/256x${label}`,
      opsPerSample: reps,
      entriesPerOp: 256,
      run: map,
      after: unmap,
    },
    {
      name: `${format}/unmap/256x${label}`,
      opsPerSample: reps,
      entriesPerOp: 256,
      before: map,
      run: unmap,
    },
  ];
}

/** 1 GiB mapped with leaves of `size`: 262144 or 512 entries. */
function oneGiB(format: Fmt, size: number, label: string): BenchCase {
  const pt = table(format);
  const va = 4 * G1;
  const pa = 8 * G1 + size;
  return {
    name: `${format}/map/1GiB@${label}`,
    opsPerSample: 1,
    entriesPerOp: G1 / size,
    run: () => pt.map(va, pa, G1, RW),
    after: () => pt.unmap(va, G1),
  };
}

/** A 1G leaf split to 4K: 512 + 512*512 entries written into private tables, one live write. */
function split1G(format: Fmt): BenchCase {
  const pt = table(format);
  const va = 4 * G1;
  return {
    name: `${format}/split/1G->4K`,
    opsPerSample: 1,
    entriesPerOp: 512 + 512 * 512,
    before: () => pt.map(va, 16 * G1, G1, RW),
    run: () => {
      pt.splitRange(va, G1, K4);
    },
    after: () => pt.unmap(va, G1),
  };
}

const cases: BenchCase[] = [];
for (const f of ["amdv1", "x86_64"] as const) {
  cases.push(...singleLeaf(f, K4, "4K", 4096));
  cases.push(...singleLeaf(f, M2, "2M", 4096));
  cases.push(...singleLeaf(f, G1, "1G", 2048));
  cases.push(...multiLeaf(f, K4, "4K", 128));
  cases.push(...multiLeaf(f, M2, "2M", 128));
  cases.push(...multiLeaf(f, G1, "1G", 32));
  cases.push(oneGiB(f, K4, "4K"));
  cases.push(oneGiB(f, M2, "2M"));
  cases.push(split1G(f));
}

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
runBench(cases, benchArgs(dir));
