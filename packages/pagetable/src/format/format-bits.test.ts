import { describe, expect, test } from "vitest";
import { featureMask, PtFeature } from "../features.js";
import { IommuProt } from "../prot.js";
import { amdv1, amdv1Mock } from "./amdv1.js";
import { EntryType, type PtFormat } from "./format.js";
import { vtdss } from "./vtdss.js";
import { x86_64 } from "./x86-64.js";

/**
 * Entries bit for bit, against the layouts of reference §2 (fmt/amdv1.h,
 * fmt/x86_64.h, fmt/vtdss.h): the values below are written out by hand from the
 * specifications, not computed with the format's own helpers.
 */

const R = IommuProt.READ;
const W = IommuProt.WRITE;

/** The 64-bit item `i` as a BigInt. */
function entry(t: Uint32Array, i: number): bigint {
  return (BigInt(t[2 * i + 1]!) << 32n) | BigInt(t[2 * i]!);
}

function leaf(fmt: PtFormat, level: number, oa: number, lg2: number, prot: number, features = 0) {
  const t = new Uint32Array(1024);
  const attrs = new Uint32Array(2);
  expect(fmt.setProt(prot, features, attrs)).toBeNull();
  fmt.installLeaf(t, 0, level, oa, lg2, attrs);
  return t;
}

describe("AMD v1 (PR 0, D 6, NL 11:9, OA 51:12, FC 60, IR 61, IW 62)", () => {
  const FC_IR_IW = (1n << 60n) | (1n << 61n) | (1n << 62n);
  const COH = featureMask(PtFeature.AMDV1_FORCE_COHERENCE);

  test("a 4K leaf: PR, NL=0, the address, FC|IR|IW", () => {
    const t = leaf(amdv1, 0, 0x1_2345_6000, 12, R | W, COH);
    expect(entry(t, 0)).toBe(0x1_2345_6001n | FC_IR_IW);
    expect(amdv1.load(t, 0, 0)).toBe(EntryType.OA);
    expect(amdv1.entryOa(t, 0, 0)).toBe(0x1_2345_6000);
    expect(amdv1.numContigLg2(t, 0, 0)).toBe(0);
  });

  test("read-only and write-only leaves, without FORCE_COHERENCE", () => {
    expect(entry(leaf(amdv1, 0, 0x5000, 12, R), 0)).toBe(0x5001n | (1n << 61n));
    expect(entry(leaf(amdv1, 0, 0x5000, 12, W), 0)).toBe(0x5001n | (1n << 62n));
  });

  test("a 2M leaf at level 1 and a 1G leaf at level 2 have NL=0", () => {
    expect(entry(leaf(amdv1, 1, 0x4020_0000, 21, R), 0)).toBe(0x4020_0001n | (1n << 61n));
    expect(entry(leaf(amdv1, 2, 0x8000_0000, 30, R), 0)).toBe(0x8000_0001n | (1n << 61n));
  });

  // NL=7 and the size in the OA field: address bits 12..s-2 set, bit s-1 clear.
  test.each([
    [0, 13, 0x2000, 0x2e01n, 2],
    [0, 14, 0x4000, 0x5e01n, 4],
    [0, 15, 0x8000, 0xbe01n, 8],
    [0, 20, 0x10_0000, 0x17_fe01n, 256],
    [1, 22, 0x40_0000, 0x5f_fe01n, 2],
    [2, 31, 0x8000_0000, 0xbfff_fe01n, 2],
  ])(
    "level %i: a 2^%i leaf at 0x%s is written in every item as it should",
    (level, lg2, oa, lo, items) => {
      const t = leaf(amdv1, level, oa, lg2, R);
      for (let i = 0; i < items; i++) {
        expect(entry(t, i)).toBe(lo | (1n << 61n));
        expect(amdv1.entryOa(t, i, level)).toBe(oa);
        expect(amdv1.numContigLg2(t, i, level)).toBe(lg2 - 12 - 9 * level);
      }
      expect(entry(t, items)).toBe(0n);
    },
  );

  test("a table entry: PR, NL = the level it sits at, the address, IR|IW", () => {
    for (const level of [1, 2, 3, 4, 5]) {
      const t = new Uint32Array(1024);
      expect(amdv1.installTable(t, 3, level, 0x7_0000_7000, 0, 0)).toBe(true);
      expect(entry(t, 3)).toBe(0x7_0000_7001n | (BigInt(level) << 9n) | (1n << 61n) | (1n << 62n));
      expect(amdv1.load(t, 3, level)).toBe(EntryType.TABLE);
      expect(amdv1.tablePa(t, 3)).toBe(0x7_0000_7000);
    }
  });

  test("the frame of a table pointer in 20-bit halves, the mock's field shifted by one", () => {
    const t = new Uint32Array(1024);
    // Frame 0xa_bcde_f123: halves 0xef123 and 0xabcd (bits 39:20), across the words.
    const pa = 0xabc_def1_23000;
    for (const fmt of [amdv1, amdv1Mock]) {
      expect(fmt.installTable(t, 5, 1, pa, 0, 0)).toBe(true);
      expect(fmt.tablePa(t, 5)).toBe(pa);
      expect(fmt.tableFrameLo(t, 5)).toBe(0xef123);
      expect(fmt.tableFrameHi(t, 5)).toBe(0xabcd);
      fmt.clearEntries(t, 5, 0);
    }
  });

  test("clearLeaves: leaves of any size, stopping at a table or a hole", () => {
    const t = new Uint32Array(1024);
    const attrs = new Uint32Array(2);
    amdv1.setProt(R, 0, attrs);
    amdv1.installLeafRun(t, 0, 3, 1, 0x4000_0000, 21, attrs); // 3 x 2M
    amdv1.installLeaf(t, 4, 1, 0x8000_0000, 23, attrs); // 8M: items 4..7, NL=7
    amdv1.installTable(t, 8, 1, 0x7000, 0, 0);
    expect(amdv1.clearLeaves(t, 0, 16, 1)).toBe(3); // the hole at 3
    for (let w = 0; w < 6; w++) expect(t[w]).toBe(0);
    expect(amdv1.clearLeaves(t, 4, 16, 1)).toBe(8); // the table at 8
    for (let w = 8; w < 16; w++) expect(t[w]).toBe(0);
    expect(amdv1.load(t, 8, 1)).toBe(EntryType.TABLE);
    // At level 0 every present item is a leaf, whatever its NL bits.
    t[0] = 0x7001 | (1 << 9);
    expect(amdv1.clearLeaves(t, 0, 1, 0)).toBe(1);
    expect(t[0]).toBe(0);
  });

  test("not present (PR=0) is empty whatever else is set; level 0 is always a leaf", () => {
    const t = new Uint32Array(1024);
    t[0] = 0xfffffffe;
    t[1] = 0xffffffff;
    expect(amdv1.load(t, 0, 1)).toBe(EntryType.EMPTY);
    t[2] = 0x7001 | (1 << 9);
    expect(amdv1.load(t, 1, 0)).toBe(EntryType.OA);
    expect(amdv1.load(t, 1, 1)).toBe(EntryType.TABLE);
  });

  test("dirty: D on any item of a run makes the entry dirty; clean clears every item", () => {
    const t = leaf(amdv1, 0, 0x4000, 14, R | W);
    expect(amdv1.isWriteDirty(t, 0, 0)).toBe(false);
    expect(amdv1.makeWriteDirty(t, 2, t[4]!, t[5]!)).toBe(true);
    expect(entry(t, 2) & 0x40n).toBe(0x40n);
    expect(entry(t, 0) & 0x40n).toBe(0n);
    expect(amdv1.isWriteDirty(t, 0, 0)).toBe(true);
    expect(amdv1.isWriteDirty(t, 3, 0)).toBe(true);
    // A stale expected value is a lost cmpxchg.
    expect(amdv1.makeWriteDirty(t, 1, 0, 0)).toBe(false);
    amdv1.makeWriteClean(t, 1, 0);
    for (let i = 0; i < 4; i++) expect(entry(t, i) & 0x40n).toBe(0n);
  });

  test("possible sizes: every power of two from the item size, 256 items at most, never 512G or 2^52", () => {
    expect(amdv1.possibleSizes(0)).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(amdv1.possibleSizes(1)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29]);
    expect(amdv1.possibleSizes(2)).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38]);
    expect(amdv1.possibleSizes(3)).toEqual([40, 41, 42, 43, 44, 45, 46, 47]);
    expect(amdv1.possibleSizes(4)).toEqual([48, 49, 50, 51]);
    expect(amdv1.possibleSizes(5)).toEqual([]);
    expect(amdv1.numItemsLg2(5)).toBe(7);
  });

  test("the iommufd mock: 2K granule, the address field holds addr >> 11", () => {
    const t = leaf(amdv1Mock, 0, 0x800, 11, R);
    expect(entry(t, 0)).toBe(0x1001n | (1n << 61n));
    expect(amdv1Mock.entryOa(t, 0, 0)).toBe(0x800);
    const run = leaf(amdv1Mock, 0, 0x1000, 12, R);
    // 4K = two 2K items; field 0x2 with no size bits (13 - 11 - 1 = 1 → none set).
    expect(entry(run, 0)).toBe(0x2e01n | (1n << 61n));
    expect(entry(run, 1)).toBe(0x2e01n | (1n << 61n));
    expect(amdv1Mock.possibleSizes(0)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(amdv1Mock.possibleSizes(3)).toEqual([38, 40, 41, 42, 43, 44, 45, 46]);
    expect(amdv1Mock.possibleSizes(4)).toEqual([]);
  });
});

describe("x86_64 (P 0, RW 1, U 2, A 5, D 6, PS 7, OA 51:12, XD 63)", () => {
  test("leaves are U|A, plus RW|D when writable; PS above level 0", () => {
    expect(entry(leaf(x86_64, 0, 0x5000, 12, R | W), 0)).toBe(0x5067n);
    expect(entry(leaf(x86_64, 0, 0x5000, 12, R), 0)).toBe(0x5025n);
    expect(entry(leaf(x86_64, 1, 0x20_0000, 21, R | W), 0)).toBe(0x20_00e7n);
    expect(entry(leaf(x86_64, 2, 0xf_c000_0000, 30, R), 0)).toBe(0xf_c000_00a5n);
  });

  test("a table entry is P|RW|U|A and the address; PS marks a leaf only at levels 1 and 2", () => {
    const t = new Uint32Array(1024);
    expect(x86_64.installTable(t, 0, 3, 0x3_0000_0000, 0, 0)).toBe(true);
    expect(entry(t, 0)).toBe(0x3_0000_0027n);
    t[2] = 0x1000 | 0x81;
    expect(x86_64.load(t, 1, 1)).toBe(EntryType.OA);
    expect(x86_64.load(t, 1, 3)).toBe(EntryType.TABLE);
    t[4] = 0x1000;
    expect(x86_64.load(t, 2, 0)).toBe(EntryType.EMPTY);
    expect(x86_64.possibleSizes(0)).toEqual([12]);
    expect(x86_64.possibleSizes(2)).toEqual([30]);
    expect(x86_64.possibleSizes(3)).toEqual([]);
  });

  test("clearLeaves: PS leaves at levels 1 and 2 only, never a table", () => {
    const t = new Uint32Array(1024);
    const attrs = new Uint32Array(2);
    x86_64.setProt(R | W, 0, attrs);
    x86_64.installLeafRun(t, 0, 2, 1, 0x4000_0000, 21, attrs);
    x86_64.installTable(t, 2, 1, 0x7000, 0, 0);
    expect(x86_64.clearLeaves(t, 0, 3, 1)).toBe(2);
    expect(x86_64.load(t, 2, 1)).toBe(EntryType.TABLE);
    expect(x86_64.clearLeaves(t, 2, 3, 3)).toBe(2);
    expect(x86_64.clearLeaves(t, 2, 3, 0)).toBe(3); // at level 0 a present item is a leaf
  });
});

describe("VT-d second stage (R 0, W 1, PS 7, D 9, SNP 11, OA 51:12; no present bit)", () => {
  test("leaves carry R/W as asked, SNP with FORCE_COHERENCE, PS above level 0", () => {
    expect(entry(leaf(vtdss, 0, 0x5000, 12, R | W), 0)).toBe(0x5003n);
    expect(entry(leaf(vtdss, 0, 0x5000, 12, W), 0)).toBe(0x5002n);
    const snp = featureMask(PtFeature.VTDSS_FORCE_COHERENCE);
    expect(entry(leaf(vtdss, 1, 0x20_0000, 21, R, snp), 0)).toBe(0x20_0881n);
  });

  test("neither READ nor WRITE is refused, as is read-only with FORCE_WRITEABLE", () => {
    const attrs = new Uint32Array(2);
    expect(vtdss.setProt(0, 0, attrs)).toBe("EINVAL");
    expect(vtdss.setProt(IommuProt.CACHE, 0, attrs)).toBe("EINVAL");
    expect(vtdss.setProt(R, featureMask(PtFeature.VTDSS_FORCE_WRITEABLE), attrs)).toBe("EINVAL");
    expect(vtdss.setProt(R | W, featureMask(PtFeature.VTDSS_FORCE_WRITEABLE), attrs)).toBeNull();
  });

  test("a table entry is R|W and the address; any non-zero item is present", () => {
    const t = new Uint32Array(1024);
    expect(vtdss.installTable(t, 0, 2, 0x8000, 0, 0)).toBe(true);
    expect(entry(t, 0)).toBe(0x8003n);
    t[3] = 1 << 31;
    expect(vtdss.load(t, 1, 1)).toBe(EntryType.TABLE);
    expect(vtdss.load(t, 1, 0)).toBe(EntryType.OA);
  });

  test("clearLeaves: non-zero items with PS above level 0, never a table", () => {
    const t = new Uint32Array(1024);
    const attrs = new Uint32Array(2);
    vtdss.setProt(W, 0, attrs);
    vtdss.installLeafRun(t, 0, 2, 2, 0x8000_0000, 30, attrs);
    vtdss.installTable(t, 2, 2, 0x7000, 0, 0);
    expect(vtdss.clearLeaves(t, 0, 4, 2)).toBe(2);
    expect(vtdss.clearLeaves(t, 2, 4, 2)).toBe(2);
    t[6] = 0;
    t[7] = 1 << 31; // any non-zero item is present: a level-0 leaf
    expect(vtdss.clearLeaves(t, 3, 4, 0)).toBe(4);
    expect(t[7]).toBe(0);
  });

  test("dirty is D (bit 9) of the single item", () => {
    const t = leaf(vtdss, 0, 0x5000, 12, R | W);
    expect(vtdss.makeWriteDirty(t, 0, t[0]!, t[1]!)).toBe(true);
    expect(entry(t, 0)).toBe(0x5203n);
    expect(vtdss.isWriteDirty(t, 0, 0)).toBe(true);
    vtdss.makeWriteClean(t, 0, 0);
    expect(entry(t, 0)).toBe(0x5003n);
  });
});

describe("installLeafRun writes what installLeaf writes, leaf by leaf", () => {
  // Runs that cross 4 GiB boundaries (the low word's carry), with leaves of every
  // size up to and past 2^32, in every format.
  test.each([amdv1, amdv1Mock, x86_64, vtdss])("$name", (fmt) => {
    const attrs = new Uint32Array(2);
    expect(fmt.setProt(R | W, 0, attrs)).toBeNull();
    for (let level = 0; level <= fmt.maxTopLevel; level++) {
      const isz = fmt.granuleLg2 + 9 * level;
      for (const lg2 of fmt.possibleSizes(level)) {
        const items = 2 ** (lg2 - isz);
        const count = Math.min(Math.floor(512 / items), 7);
        // Start a few leaves below a 2^(lg2+3) boundary above 4 GiB.
        const span = 2 ** Math.max(lg2 + 3, 33);
        const oa = span + span - 3 * 2 ** lg2;
        if (oa + count * 2 ** lg2 > 2 ** fmt.maxOaLg2) continue;
        const run = new Uint32Array(1024);
        const one = new Uint32Array(1024);
        fmt.installLeafRun(run, 0, count, level, oa, lg2, attrs);
        for (let k = 0; k < count; k++) {
          fmt.installLeaf(one, k * items, level, oa + k * 2 ** lg2, lg2, attrs);
        }
        expect(run).toEqual(one);
      }
    }
  });
});
