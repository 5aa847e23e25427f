import { describe, expect, test } from "vitest";
import {
  featureMask,
  IommuProt,
  IoPageTable,
  type IoPageTableConfig,
  PageTableError,
  PtFeature,
  pageSizeBitmap,
  TableMemory,
} from "../index.js";

/**
 * Bad input: every argument of every public call gets a PageTableError whose
 * `code` is the errno and whose `argument` names the culprit, and the table is
 * exactly as it was afterwards.
 */

const R = IommuProt.READ;
const RW = IommuProt.READ | IommuProt.WRITE;
const TWO53 = 2 ** 53;

/** Everything a failed call must leave alone. */
function snapshot(pt: IoPageTable): string {
  const leaves: string[] = [];
  pt.forEachLeaf((l) =>
    leaves.push(`${l.va}:${l.sizeLg2}:${l.oa}:${l.readable}${l.writable}:${l.dirty}`),
  );
  return JSON.stringify([pt.fingerprint(), leaves, pt.mem.inUse, pt.tablesInUse, pt.topLevel]);
}

function expectError(f: () => unknown, code: string, argument: string): PageTableError {
  let err: unknown = null;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code} naming ${argument}`).toBeInstanceOf(PageTableError);
  const e = err as PageTableError;
  expect([e.code, e.argument], e.message).toEqual([code, argument]);
  expect(e.message).toContain(argument);
  return e;
}

/** A table with a few mappings to disturb. */
function populated(config: IoPageTableConfig = { format: "amdv1" }): IoPageTable {
  const pt = new IoPageTable({ ...config, memory: new TableMemory() });
  pt.map(0x20_0000, 0x4000_0000, 0x20_0000, RW);
  pt.map(0x1_0000, 0x9000, 0x1000, R);
  pt.mapRange(0x4000_0000, 0x8000_0000, 0x4000_0000 + 0x3000, RW);
  return pt;
}

type Case = [string, (pt: IoPageTable) => unknown, string, string];

/** [what, call, errno, argument] on a populated amdv1 table. */
const CASES: Case[] = [
  // map(iova, paddr, length, prot): map_pages
  ["map iova 1.5", (pt) => pt.map(1.5, 0, 0x1000, RW), "EINVAL", "iova"],
  ["map iova NaN", (pt) => pt.map(Number.NaN, 0, 0x1000, RW), "EINVAL", "iova"],
  ["map iova Infinity", (pt) => pt.map(Infinity, 0, 0x1000, RW), "EINVAL", "iova"],
  ["map iova string", (pt) => pt.map("4096" as unknown as number, 0, 0x1000, RW), "EINVAL", "iova"],
  ["map iova negative", (pt) => pt.map(-0x1000, 0, 0x1000, RW), "EINVAL", "iova"],
  ["map iova 2^53", (pt) => pt.map(TWO53, 0, 0x1000, RW), "EOVERFLOW", "iova"],
  ["map iova misaligned", (pt) => pt.map(0x1_0800, 0, 0x1000, RW), "ENXIO", "iova"],
  ["map iova misaligned, 2 pages", (pt) => pt.map(0x1_0800, 0, 0x2000, RW), "ENXIO", "iova"],
  ["map paddr 1.5", (pt) => pt.map(0x3000, 1.5, 0x1000, RW), "EINVAL", "paddr"],
  ["map paddr NaN", (pt) => pt.map(0x3000, Number.NaN, 0x1000, RW), "EINVAL", "paddr"],
  ["map paddr negative", (pt) => pt.map(0x3000, -0x1000, 0x1000, RW), "EINVAL", "paddr"],
  ["map paddr 2^53", (pt) => pt.map(0x3000, TWO53, 0x1000, RW), "ERANGE", "paddr"],
  ["map paddr beyond the OA width", (pt) => pt.map(0x3000, 2 ** 52, 0x1000, RW), "ERANGE", "paddr"],
  ["map paddr misaligned", (pt) => pt.map(0x3000, 0x800, 0x1000, RW), "ENXIO", "paddr"],
  ["map paddr misaligned, 2 pages", (pt) => pt.map(0x4000, 0x800, 0x2000, RW), "ENXIO", "paddr"],
  ["map length 0", (pt) => pt.map(0x3000, 0, 0, RW), "EINVAL", "length"],
  ["map length negative", (pt) => pt.map(0x3000, 0, -0x1000, RW), "EINVAL", "length"],
  ["map length 1.5", (pt) => pt.map(0x3000, 0, 1.5, RW), "EINVAL", "length"],
  ["map length NaN", (pt) => pt.map(0x3000, 0, Number.NaN, RW), "EINVAL", "length"],
  ["map length to 2^53", (pt) => pt.map(0x3000, 0, TWO53 - 0x2000, RW), "EOVERFLOW", "length"],
  ["map length below a page", (pt) => pt.map(0x3000, 0x3000, 0x800, RW), "ENXIO", "length"],
  [
    "map length not a leaf multiple",
    (pt) => pt.map(0x3000, 0x3000, 0x1800, RW),
    "EINVAL",
    "length",
  ],
  ["map prot 0", (pt) => pt.map(0x3000, 0, 0x1000, 0), "EINVAL", "prot"],
  ["map prot CACHE only", (pt) => pt.map(0x3000, 0, 0x1000, IommuProt.CACHE), "EINVAL", "prot"],
  ["map prot unknown bit", (pt) => pt.map(0x3000, 0, 0x1000, RW | 0x40), "EINVAL", "prot"],
  ["map prot negative", (pt) => pt.map(0x3000, 0, 0x1000, -1), "EINVAL", "prot"],
  ["map prot 1.5", (pt) => pt.map(0x3000, 0, 0x1000, 1.5), "EINVAL", "prot"],
  ["map prot NaN", (pt) => pt.map(0x3000, 0, 0x1000, Number.NaN), "EINVAL", "prot"],
  ["map over a mapping", (pt) => pt.map(0x20_0000, 0, 0x1000, RW), "EADDRINUSE", "iova"],
  // mapPages(iova, paddr, pgsize, pgcount, prot)
  ["mapPages pgsize 3", (pt) => pt.mapPages(0x3000, 0, 3, 1, RW), "EINVAL", "pgsize"],
  ["mapPages pgsize 0", (pt) => pt.mapPages(0x3000, 0, 0, 1, RW), "EINVAL", "pgsize"],
  ["mapPages pgsize NaN", (pt) => pt.mapPages(0x3000, 0, Number.NaN, 1, RW), "EINVAL", "pgsize"],
  ["mapPages pgcount 0", (pt) => pt.mapPages(0x3000, 0, 0x1000, 0, RW), "EINVAL", "pgcount"],
  ["mapPages pgcount 1.5", (pt) => pt.mapPages(0x3000, 0, 0x1000, 1.5, RW), "EINVAL", "pgcount"],
  ["mapPages pgcount -1", (pt) => pt.mapPages(0x3000, 0, 0x1000, -1, RW), "EINVAL", "pgcount"],
  [
    "mapPages pgcount to 2^53",
    (pt) => pt.mapPages(0x3000, 0, 2 ** 40, 2 ** 13, RW),
    "EOVERFLOW",
    "pgcount",
  ],
  ["mapPages iova NaN", (pt) => pt.mapPages(Number.NaN, 0, 0x1000, 1, RW), "EINVAL", "iova"],
  ["mapPages paddr negative", (pt) => pt.mapPages(0x3000, -1, 0x1000, 1, RW), "EINVAL", "paddr"],
  [
    "mapPages prot WRITE|unknown",
    (pt) => pt.mapPages(0x3000, 0, 0x1000, 1, 0x82),
    "EINVAL",
    "prot",
  ],
  // mapRange(iova, paddr, length, prot): iommu_map
  ["mapRange iova misaligned", (pt) => pt.mapRange(0x800, 0, 0x1000, RW), "EINVAL", "iova"],
  ["mapRange iova negative", (pt) => pt.mapRange(-0x1000, 0, 0x1000, RW), "EINVAL", "iova"],
  ["mapRange iova 2^53", (pt) => pt.mapRange(TWO53, 0, 0x1000, RW), "EOVERFLOW", "iova"],
  ["mapRange paddr misaligned", (pt) => pt.mapRange(0x3000, 0x800, 0x1000, RW), "EINVAL", "paddr"],
  ["mapRange paddr NaN", (pt) => pt.mapRange(0x3000, Number.NaN, 0x1000, RW), "EINVAL", "paddr"],
  ["mapRange length misaligned", (pt) => pt.mapRange(0x3000, 0, 0x1800, RW), "EINVAL", "length"],
  ["mapRange length 0", (pt) => pt.mapRange(0x3000, 0, 0, RW), "EINVAL", "length"],
  ["mapRange prot 0", (pt) => pt.mapRange(0x3000, 0, 0x1000, 0), "EINVAL", "prot"],
  [
    "mapRange prot unknown bit",
    (pt) => pt.mapRange(0x3000, 0, 0x1000, RW | 0x100),
    "EINVAL",
    "prot",
  ],
  [
    "mapRange over a mapping",
    (pt) => pt.mapRange(0x1f_0000, 0, 0x2_0000, RW),
    "EADDRINUSE",
    "iova",
  ],
  // unmap(iova, length, gather): unmap_pages
  ["unmap iova misaligned", (pt) => pt.unmap(0x20_0800, 0x1000), "EINVAL", "iova"],
  ["unmap iova NaN", (pt) => pt.unmap(Number.NaN, 0x1000), "EINVAL", "iova"],
  ["unmap iova negative", (pt) => pt.unmap(-0x1000, 0x1000), "EINVAL", "iova"],
  ["unmap iova 2^53", (pt) => pt.unmap(TWO53, 0x1000), "EOVERFLOW", "iova"],
  ["unmap length 0", (pt) => pt.unmap(0x20_0000, 0), "EINVAL", "length"],
  ["unmap length misaligned", (pt) => pt.unmap(0x20_0000, 0x800), "EINVAL", "length"],
  ["unmap length 1.5", (pt) => pt.unmap(0x20_0000, 1.5), "EINVAL", "length"],
  ["unmap length to 2^53", (pt) => pt.unmap(0x20_0000, TWO53), "EOVERFLOW", "length"],
  [
    "unmap gather not a gather",
    (pt) => pt.unmap(0x20_0000, 0x1000, {} as never),
    "EINVAL",
    "gather",
  ],
  // unmapRange(iova, length): iommu_unmap
  ["unmapRange iova misaligned", (pt) => pt.unmapRange(0x20_0800, 0x1000), "EINVAL", "iova"],
  ["unmapRange length 0", (pt) => pt.unmapRange(0x20_0000, 0), "EINVAL", "length"],
  ["unmapRange length negative", (pt) => pt.unmapRange(0x20_0000, -0x1000), "EINVAL", "length"],
  ["unmapRange length misaligned", (pt) => pt.unmapRange(0x20_0000, 0x1001), "EINVAL", "length"],
  // iovaToPhys / translate / lookup
  ["iovaToPhys NaN", (pt) => pt.iovaToPhys(Number.NaN), "EINVAL", "iova"],
  ["iovaToPhys 1.5", (pt) => pt.iovaToPhys(1.5), "EINVAL", "iova"],
  ["iovaToPhys negative", (pt) => pt.iovaToPhys(-1), "EINVAL", "iova"],
  ["iovaToPhys 2^53", (pt) => pt.iovaToPhys(TWO53), "EOVERFLOW", "iova"],
  ["translate NaN", (pt) => pt.translate(Number.NaN), "EINVAL", "iova"],
  ["translate 2^60", (pt) => pt.translate(2 ** 60), "EOVERFLOW", "iova"],
  ["lookup negative", (pt) => pt.lookup(-4096), "EINVAL", "iova"],
  ["lookup string", (pt) => pt.lookup("0" as unknown as number), "EINVAL", "iova"],
  // readAndClearDirty(iova, size, flags, recorder, gather) / setDirty(iova)
  [
    "readAndClearDirty iova NaN",
    (pt) => pt.readAndClearDirty(Number.NaN, 0x1000, 0, null),
    "EINVAL",
    "iova",
  ],
  [
    "readAndClearDirty iova negative",
    (pt) => pt.readAndClearDirty(-0x1000, 0x1000, 0, null),
    "EINVAL",
    "iova",
  ],
  ["readAndClearDirty size 0", (pt) => pt.readAndClearDirty(0, 0, 0, null), "EINVAL", "size"],
  [
    "readAndClearDirty size to 2^53",
    (pt) => pt.readAndClearDirty(0x1000, TWO53, 0, null),
    "EOVERFLOW",
    "size",
  ],
  [
    "readAndClearDirty flags -1",
    (pt) => pt.readAndClearDirty(0, 0x1000, -1, null),
    "EINVAL",
    "flags",
  ],
  [
    "readAndClearDirty flags 1.5",
    (pt) => pt.readAndClearDirty(0, 0x1000, 1.5, null),
    "EINVAL",
    "flags",
  ],
  [
    "readAndClearDirty beyond the top",
    (pt) => pt.readAndClearDirty(2 ** 50, 0x1000, 0, null),
    "ERANGE",
    "iova",
  ],
  [
    "readAndClearDirty gather",
    (pt) => pt.readAndClearDirty(0, 0x1000, 0, null, [] as never),
    "EINVAL",
    "gather",
  ],
  ["setDirty NaN", (pt) => pt.setDirty(Number.NaN), "EINVAL", "iova"],
  ["setDirty unmapped", (pt) => pt.setDirty(0x3000), "ENOENT", "iova"],
  ["setDirty beyond the top", (pt) => pt.setDirty(2 ** 50), "ERANGE", "iova"],
  // cut(iova, gather)
  ["cut iova misaligned", (pt) => pt.cut(0x20_0800), "EINVAL", "iova"],
  ["cut iova NaN", (pt) => pt.cut(Number.NaN), "EINVAL", "iova"],
  ["cut iova negative", (pt) => pt.cut(-0x1000), "EINVAL", "iova"],
  ["cut unmapped", (pt) => pt.cut(0x3000), "ENOENT", "iova"],
  ["cut beyond the top", (pt) => pt.cut(2 ** 50), "ERANGE", "iova"],
  ["cut gather", (pt) => pt.cut(0x20_1000, 7 as never), "EINVAL", "gather"],
  // splitRange(iova, length, maxLeafSize, gather)
  [
    "splitRange maxLeafSize 3",
    (pt) => pt.splitRange(0x20_0000, 0x20_0000, 3),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "splitRange maxLeafSize 0",
    (pt) => pt.splitRange(0x20_0000, 0x20_0000, 0),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "splitRange maxLeafSize NaN",
    (pt) => pt.splitRange(0x20_0000, 0x20_0000, Number.NaN),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "splitRange maxLeafSize -4096",
    (pt) => pt.splitRange(0x20_0000, 0x20_0000, -4096),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "splitRange maxLeafSize 512G",
    (pt) => pt.splitRange(0x20_0000, 0x20_0000, 2 ** 39),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "splitRange maxLeafSize 2K",
    (pt) => pt.splitRange(0x20_0000, 0x20_0000, 2048),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "splitRange iova misaligned",
    (pt) => pt.splitRange(0x20_0800, 0x1000, 0x1000),
    "EINVAL",
    "iova",
  ],
  ["splitRange length 0", (pt) => pt.splitRange(0x20_0000, 0, 0x1000), "EINVAL", "length"],
  [
    "splitRange length misaligned",
    (pt) => pt.splitRange(0x20_0000, 0x1800, 0x1000),
    "EINVAL",
    "length",
  ],
  ["splitRange beyond the top", (pt) => pt.splitRange(2 ** 50, 0x1000, 0x1000), "ERANGE", "iova"],
  [
    "splitRange gather",
    (pt) => pt.splitRange(0x20_0000, 0x1000, 0x1000, {} as never),
    "EINVAL",
    "gather",
  ],
  // collapseRange(iova, length, maxLeafSize?, gather)
  [
    "collapseRange maxLeafSize 3",
    (pt) => pt.collapseRange(0x20_0000, 0x20_0000, 3),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "collapseRange maxLeafSize 0",
    (pt) => pt.collapseRange(0x20_0000, 0x20_0000, 0),
    "EINVAL",
    "maxLeafSize",
  ],
  [
    "collapseRange maxLeafSize 1.5",
    (pt) => pt.collapseRange(0x20_0000, 0x20_0000, 1.5),
    "EINVAL",
    "maxLeafSize",
  ],
  ["collapseRange iova NaN", (pt) => pt.collapseRange(Number.NaN, 0x1000), "EINVAL", "iova"],
  ["collapseRange length 0", (pt) => pt.collapseRange(0x20_0000, 0), "EINVAL", "length"],
  [
    "collapseRange length misaligned",
    (pt) => pt.collapseRange(0x20_0000, 0x10),
    "EINVAL",
    "length",
  ],
  [
    "collapseRange gather",
    (pt) => pt.collapseRange(0, 0x1000, undefined, "g" as never),
    "EINVAL",
    "gather",
  ],
  // forEachLeaf(fn, iova?, length?) / iotlbSync(gather)
  ["forEachLeaf iova without length", (pt) => pt.forEachLeaf(() => {}, 0), "EINVAL", "length"],
  ["forEachLeaf iova NaN", (pt) => pt.forEachLeaf(() => {}, Number.NaN, 0x1000), "EINVAL", "iova"],
  ["forEachLeaf length 0", (pt) => pt.forEachLeaf(() => {}, 0, 0), "EINVAL", "length"],
  ["iotlbSync not a gather", (pt) => pt.iotlbSync({} as never), "EINVAL", "gather"],
];

describe("bad input on a populated amdv1 table", () => {
  test.each(CASES)("%s", (_what, call, code, argument) => {
    const pt = populated();
    const before = snapshot(pt);
    expectError(() => call(pt), code, argument);
    expect(snapshot(pt)).toBe(before);
    pt.destroy();
    expect(pt.mem.inUse).toBe(0);
  });
});

describe("bad input, format specific", () => {
  test("x86_64: negative IOVAs only with SIGN_EXTEND; no dirty bit", () => {
    const pt = populated({ format: "x86_64", hwMaxVaLg2: 48 });
    const before = snapshot(pt);
    expectError(() => pt.map(-0x1000, 0, 0x1000, RW), "EINVAL", "iova");
    expectError(() => pt.readAndClearDirty(0, 0x1000, 0, null), "EOPNOTSUPP", "format");
    expectError(() => pt.setDirty(0x20_0000), "EOPNOTSUPP", "format");
    expectError(() => pt.splitRange(0x20_0000, 0x20_0000, 0x2000), "EINVAL", "maxLeafSize");
    // No DYNAMIC_TOP: the 48-bit top is the limit.
    expectError(() => pt.map(2 ** 48, 0, 0x1000, RW), "ERANGE", "iova");
    expectError(() => pt.mapRange(2 ** 48 - 0x1000, 0, 0x2000, RW), "ERANGE", "iova");
    expect(snapshot(pt)).toBe(before);
    const se = new IoPageTable({
      format: "x86_64",
      hwMaxVaLg2: 48,
      features: featureMask(PtFeature.SIGN_EXTEND, PtFeature.OA_TABLE_XCHG),
    });
    // The upper half is negative; a range may not cross from one half to the other.
    se.map(-0x1000, 0x5000, 0x1000, RW);
    expect(se.translate(-0x1000 + 0x10)).toBe(0x5010);
    const seBefore = snapshot(se);
    expectError(() => se.map(-0x1000, 0, 0x2000, RW), "ERANGE", "iova");
    expectError(() => se.map(-(2 ** 47) - 0x1000, 0, 0x1000, RW), "ERANGE", "iova");
    expectError(() => se.map(2 ** 47, 0, 0x1000, RW), "ERANGE", "iova");
    expect(snapshot(se)).toBe(seBefore);
  });

  test("vtdss: FORCE_WRITEABLE refuses read-only maps (erratum 772415_SPR17)", () => {
    const pt = new IoPageTable({
      format: "vtdss",
      hwMaxVaLg2: 39,
      features: featureMask(PtFeature.FLUSH_RANGE, PtFeature.VTDSS_FORCE_WRITEABLE),
    });
    const before = snapshot(pt);
    expectError(() => pt.map(0, 0, 0x1000, R), "EINVAL", "prot");
    expectError(() => pt.mapRange(0, 0, 0x1000, R), "EINVAL", "prot");
    expect(snapshot(pt)).toBe(before);
    pt.map(0, 0, 0x1000, RW);
  });

  test("amdv1-mock: 2K granule, no RFC features", () => {
    const pt = populated({ format: "amdv1-mock" });
    const before = snapshot(pt);
    expectError(() => pt.map(0x400, 0, 0x800, RW), "ENXIO", "iova");
    expectError(() => pt.unmap(0x400, 0x800), "EINVAL", "iova");
    expectError(() => pt.collapseRange(0, 0x20_0000), "EOPNOTSUPP", "features");
    expectError(() => pt.splitRange(0x20_0000, 0x800, 0x800), "EOPNOTSUPP", "iova");
    expectError(() => pt.cut(0x20_0800), "EOPNOTSUPP", "iova");
    expect(snapshot(pt)).toBe(before);
  });

  test("a destroyed table refuses every call, naming the table", () => {
    const pt = populated();
    pt.destroy();
    for (const call of [
      () => pt.map(0x3000, 0, 0x1000, RW),
      () => pt.mapPages(0x3000, 0, 0x1000, 1, RW),
      () => pt.mapRange(0x3000, 0, 0x1000, RW),
      () => pt.unmap(0x20_0000, 0x1000),
      () => pt.unmapRange(0x20_0000, 0x1000),
      () => pt.iovaToPhys(0x20_0000),
      () => pt.translate(0x20_0000),
      () => pt.lookup(0x20_0000),
      () => pt.readAndClearDirty(0, 0x1000, 0, null),
      () => pt.setDirty(0x20_0000),
      () => pt.cut(0x20_1000),
      () => pt.splitRange(0x20_0000, 0x1000, 0x1000),
      () => pt.collapseRange(0x20_0000, 0x1000),
      () => pt.stats(),
      () => pt.forEachLeaf(() => {}),
      () => pt.fingerprint(),
    ]) {
      expectError(call, "EINVAL", "table");
    }
    pt.destroy(); // a second destroy does nothing
    expect(pt.mem.inUse).toBe(0);
  });
});

describe("bad configuration", () => {
  const bad: [string, () => unknown, string, string][] = [
    ["unknown format", () => new IoPageTable({ format: "arm64" as never }), "EINVAL", "format"],
    ["hwMaxVaLg2 0", () => new IoPageTable({ hwMaxVaLg2: 0 }), "EINVAL", "hwMaxVaLg2"],
    ["hwMaxVaLg2 65", () => new IoPageTable({ hwMaxVaLg2: 65 }), "EINVAL", "hwMaxVaLg2"],
    ["hwMaxVaLg2 1.5", () => new IoPageTable({ hwMaxVaLg2: 1.5 }), "EINVAL", "hwMaxVaLg2"],
    ["hwMaxVaLg2 NaN", () => new IoPageTable({ hwMaxVaLg2: Number.NaN }), "EINVAL", "hwMaxVaLg2"],
    [
      "x86_64 hwMaxVaLg2 30",
      () => new IoPageTable({ format: "x86_64", hwMaxVaLg2: 30 }),
      "EINVAL",
      "hwMaxVaLg2",
    ],
    [
      "x86_64 hwMaxVaLg2 58",
      () => new IoPageTable({ format: "x86_64", hwMaxVaLg2: 58 }),
      "EINVAL",
      "hwMaxVaLg2",
    ],
    [
      "vtdss hwMaxVaLg2 30",
      () => new IoPageTable({ format: "vtdss", hwMaxVaLg2: 30 }),
      "EOPNOTSUPP",
      "hwMaxVaLg2",
    ],
    [
      "mock hwMaxVaLg2 57",
      () => new IoPageTable({ format: "amdv1-mock", hwMaxVaLg2: 57 }),
      "EINVAL",
      "hwMaxVaLg2",
    ],
    ["hwMaxOaLg2 0", () => new IoPageTable({ hwMaxOaLg2: 0 }), "EINVAL", "hwMaxOaLg2"],
    ["hwMaxOaLg2 53", () => new IoPageTable({ hwMaxOaLg2: 53 }), "EINVAL", "hwMaxOaLg2"],
    ["hwMaxOaLg2 NaN", () => new IoPageTable({ hwMaxOaLg2: Number.NaN }), "EINVAL", "hwMaxOaLg2"],
    ["features -1", () => new IoPageTable({ features: -1 }), "EINVAL", "features"],
    ["features 1.5", () => new IoPageTable({ features: 1.5 }), "EINVAL", "features"],
    ["features 2^40", () => new IoPageTable({ features: 2 ** 40 }), "EINVAL", "features"],
    [
      "features not built",
      () => new IoPageTable({ format: "vtdss", features: featureMask(PtFeature.SIGN_EXTEND) }),
      "EOPNOTSUPP",
      "features",
    ],
    [
      "features unknown bit",
      () => new IoPageTable({ format: "vtdss", features: featureMask(20) }),
      "EOPNOTSUPP",
      "features",
    ],
    [
      "amdv1 without its forced features",
      () => new IoPageTable({ format: "amdv1", features: 0 }),
      "EOPNOTSUPP",
      "features",
    ],
    [
      "mock asking for the RFC features",
      () =>
        new IoPageTable({ format: "amdv1-mock", features: featureMask(PtFeature.OA_TABLE_XCHG) }),
      "EOPNOTSUPP",
      "features",
    ],
    ["startingLevel 0", () => new IoPageTable({ startingLevel: 0 }), "EINVAL", "startingLevel"],
    ["startingLevel 6", () => new IoPageTable({ startingLevel: 6 }), "EINVAL", "startingLevel"],
    ["startingLevel 1.5", () => new IoPageTable({ startingLevel: 1.5 }), "EINVAL", "startingLevel"],
    [
      "mock startingLevel 5",
      () => new IoPageTable({ format: "amdv1-mock", startingLevel: 5 }),
      "EINVAL",
      "startingLevel",
    ],
    ["pgsizeBitmap 0", () => new IoPageTable({ pgsizeBitmap: 0 }), "EINVAL", "pgsizeBitmap"],
    ["pgsizeBitmap -1", () => new IoPageTable({ pgsizeBitmap: -1 }), "EINVAL", "pgsizeBitmap"],
    ["pgsizeBitmap 1.5", () => new IoPageTable({ pgsizeBitmap: 1.5 }), "EINVAL", "pgsizeBitmap"],
    [
      "pgsizeBitmap with no size of the format",
      () => new IoPageTable({ format: "x86_64", hwMaxVaLg2: 48, pgsizeBitmap: 0x2000 }),
      "EINVAL",
      "pgsizeBitmap",
    ],
    [
      "memory not a TableMemory",
      () => new IoPageTable({ memory: {} as never }),
      "EINVAL",
      "memory",
    ],
    [
      "debugGenericPt not a boolean",
      () => new IoPageTable({ debugGenericPt: 1 as never }),
      "EINVAL",
      "debugGenericPt",
    ],
    ["pageSizeBitmap(3)", () => pageSizeBitmap(3), "EINVAL", "size"],
    ["pageSizeBitmap(0)", () => pageSizeBitmap(0), "EINVAL", "size"],
    ["TableMemory basePa 5", () => new TableMemory({ basePa: 5 }), "EINVAL", "basePa"],
    ["TableMemory basePa -4096", () => new TableMemory({ basePa: -4096 }), "EINVAL", "basePa"],
    [
      "TableMemory limitPages -1",
      () => new TableMemory({ limitPages: -1 }),
      "EINVAL",
      "limitPages",
    ],
    ["failNth -1", () => new TableMemory().failNth(-1), "EINVAL", "n"],
    ["failNth 1.5", () => new TableMemory().failNth(1.5), "EINVAL", "n"],
  ];
  test.each(bad)("%s", (_what, call, code, argument) => {
    expectError(call, code, argument);
  });

  test("a refused init allocates nothing from a shared allocator", () => {
    const mem = new TableMemory();
    expectError(
      () => new IoPageTable({ memory: mem, startingLevel: 9 }),
      "EINVAL",
      "startingLevel",
    );
    expectError(() => new IoPageTable({ memory: mem, hwMaxOaLg2: 60 }), "EINVAL", "hwMaxOaLg2");
    expect(mem.inUse).toBe(0);
    expect(mem.allocations).toBe(0);
  });

  test("init ENOMEM for the top table names memory", () => {
    const mem = new TableMemory({ limitPages: 0 });
    expectError(() => new IoPageTable({ memory: mem }), "ENOMEM", "memory");
    expect(mem.inUse).toBe(0);
  });
});
