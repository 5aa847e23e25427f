import { expect, test } from "vitest";
import { iommuPgsize } from "./iommu-pgsize.js";

/** iommu_pgsize() over a bitmap given as log2 sizes: [pgsize lg2, count]. */
function pgsize(sizes: number[], iova: number, paddr: number, size: number): [number, number] {
  const m = new Uint8Array(64);
  for (const s of sizes) m[s] = 1;
  const out = new Float64Array(1);
  const lg2 = iommuPgsize(m, iova, paddr, size, out);
  return [lg2, out[0]!];
}

/** The whole iommu_map() loop: the (pgsize, count) calls it makes. */
function segments(sizes: number[], iova: number, paddr: number, size: number): string[] {
  const out: string[] = [];
  while (size > 0) {
    const [lg2, count] = pgsize(sizes, iova, paddr, size);
    out.push(`${count}x2^${lg2}`);
    iova += count * 2 ** lg2;
    paddr += count * 2 ** lg2;
    size -= count * 2 ** lg2;
  }
  return out;
}

const X86 = [12, 21, 30];

test("test_mixed's map: 14 x 2M up to 16G, 3 x 1G, 3 x 2M", () => {
  expect(segments(X86, 0x3fe400000, 0x3fe400000, 0xc2200000)).toEqual([
    "14x2^21",
    "3x2^30",
    "3x2^21",
  ]);
});

test("no larger page when iova and paddr sit at different offsets in it", () => {
  // 2M-aligned iova, paddr 4K off: 4K pages all the way.
  expect(pgsize(X86, 0x20_0000, 0x1000, 0x40_0000)).toEqual([12, 1024]);
  // Same offsets: 4K pages up to the 2M boundary, then 2M.
  expect(segments(X86, 0x1ff000, 0x3ff000, 0x20_1000)).toEqual(["1x2^12", "1x2^21"]);
});

test("the count stops at the next size only when a whole larger page follows", () => {
  expect(pgsize(X86, 0x1ff000, 0x1ff000, 0x1000 + 0x1f_f000)).toEqual([12, 512]);
  expect(pgsize(X86, 0x1ff000, 0x1ff000, 0x1000 + 0x20_0000)).toEqual([12, 1]);
});

test("the pgsize_boundary regression (AMD): 32 x 4K", () => {
  const amd = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  expect(segments(amd, 0xfef80000, 0x208b95d000, 0x20000)).toEqual(["32x2^12"]);
});

test("sign-extended (negative) IOVAs align like their two's complement", () => {
  expect(pgsize(X86, -(2 ** 30), 2 ** 31, 2 ** 30)).toEqual([30, 1]);
  expect(pgsize(X86, -0x20_0000 - 0x1000, 0x1f_f000, 0x20_1000)).toEqual([12, 1]);
  expect(pgsize(X86, -0x20_0000 - 0x1000, 0x1000, 0x20_1000)).toEqual([12, 513]);
});
