import { describe, expect, test } from "vitest";
import {
  EntryType,
  featureMask,
  IOMMU_DIRTY_NO_CLEAR,
  IommuProt,
  IoPageTable,
  type IoPageTableConfig,
  PtFeature,
  pageSizeBitmap,
  sizesOfBitmap,
  TableMemory,
} from "./index.js";

/**
 * The table's kernel semantics one by one (reference §1.6, §1.7, §3): init
 * geometry and fix-ups, DYNAMIC_TOP growth, the gather's flush-before-free,
 * unmap's gather range, and read_and_clear_dirty's arithmetic.
 */

const RW = IommuProt.READ | IommuProt.WRITE;
const F = PtFeature;

describe("init (pt_iommu_init, pt_init_common, get_info)", () => {
  test("AMD v1: 3-level start, 64-bit VA through DYNAMIC_TOP, every size but 512G below 2^52", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    expect(pt.topLevel).toBe(2);
    expect(pt.maxVaLg2).toBe(64);
    expect(pt.maxOaLg2).toBe(52);
    expect(pt.pgsizeBitmap).toBe(0x000f_ff7f_ffff_f000);
    expect(pt.aperture).toEqual({ start: 0, last: 2 ** 53 - 1 });
    expect(pt.hwInfo()).toEqual({ hostPtRoot: pt.topPa, mode: 3 });
    expect(pt.features & featureMask(F.DYNAMIC_TOP, F.AMDV1_FORCE_COHERENCE)).toBe(
      featureMask(F.DYNAMIC_TOP, F.AMDV1_FORCE_COHERENCE),
    );
  });

  test("AMD v1 hw_max_oasz narrows the sizes to those below 2^max_oasz", () => {
    const pt = new IoPageTable({ format: "amdv1", hwMaxOaLg2: 40 });
    expect(Math.max(...sizesOfBitmap(pt.pgsizeBitmap))).toBe(38);
  });

  test("AMD v1 starting at level 5: DYNAMIC_TOP cleared, FULL_VA set; production refuses the cleared forced feature", () => {
    // pt_init_common() clears DYNAMIC_TOP (the top is the highest level) and sets
    // FULL_VA (the top range is 64 bits); FULL_VA is built into AMD v1, but the
    // forced DYNAMIC_TOP is now missing: EOPNOTSUPP outside a debug build.
    expect(() => new IoPageTable({ format: "amdv1", startingLevel: 5 })).toThrow(/EOPNOTSUPP/);
    const pt = new IoPageTable({ format: "amdv1", startingLevel: 5, debugGenericPt: true });
    expect(pt.topLevel).toBe(5);
    expect(pt.features & featureMask(F.FULL_VA)).toBe(featureMask(F.FULL_VA));
    expect(pt.hwInfo()).toMatchObject({ mode: 6 });
  });

  test.each([
    [31, 2],
    [39, 2],
    [40, 3],
    [48, 3],
    [49, 4],
    [57, 4],
  ])("x86_64 hw_max_vasz %i: top level %i", (va, top) => {
    const pt = new IoPageTable({ format: "x86_64", hwMaxVaLg2: va });
    expect(pt.topLevel).toBe(top);
    expect(pt.hwInfo()).toMatchObject({ levels: top + 1 });
    expect(pt.pgsizeBitmap).toBe(pageSizeBitmap(4096, 2 ** 21, 2 ** 30));
    expect(pt.aperture.last).toBe(Math.min(2 ** va, 2 ** 53) - 1);
  });

  test("x86_64 SIGN_EXTEND: the aperture is the lower half", () => {
    const pt = new IoPageTable({
      format: "x86_64",
      hwMaxVaLg2: 48,
      features: featureMask(F.SIGN_EXTEND),
    });
    expect(pt.aperture).toEqual({ start: 0, last: 2 ** 47 - 1 });
  });

  test.each([
    [31, 2, 0],
    [39, 2, 1],
    [40, 3, 1],
    [48, 3, 1],
    [49, 4, 2],
    [57, 4, 2],
  ])("vtdss hw_max_vasz %i: top level %i", (va, top) => {
    const pt = new IoPageTable({ format: "vtdss", hwMaxVaLg2: va });
    expect(pt.topLevel).toBe(top);
    expect(pt.hwInfo()).toMatchObject({ aw: top - 1 });
  });

  test("the iommufd mock: 2K granule, 38-bit 3-level table, sizes 2K..128G", () => {
    const pt = new IoPageTable({ format: "amdv1-mock" });
    expect(pt.maxVaLg2).toBe(38);
    expect(pt.minPageSize).toBe(2048);
    expect(sizesOfBitmap(pt.pgsizeBitmap)).toEqual(Array.from({ length: 27 }, (_, i) => 11 + i));
  });

  test("pgsizeBitmap restricts the domain (a HWPT capped at 2M)", () => {
    const pt = new IoPageTable({ format: "amdv1", pgsizeBitmap: pageSizeBitmap(4096, 2 ** 21) });
    pt.mapRange(0, 0, 2 ** 30, RW);
    const sizes = new Set<number>();
    pt.forEachLeaf((l) => sizes.add(l.sizeLg2));
    expect([...sizes]).toEqual([21]);
    expect(() => pt.splitRange(0, 2 ** 21, 2 ** 13)).toThrow(/maxLeafSize/);
  });
});

describe("DYNAMIC_TOP growth (increase_top)", () => {
  test("the old top becomes index 0 of the new one; change_top sees the new top before it is published", () => {
    const calls: string[] = [];
    let pt!: IoPageTable;
    pt = new IoPageTable({
      format: "amdv1",
      driver: {
        changeTop: (pa, level) => calls.push(`${pa === pt.topPa ? "published" : "new"}:${level}`),
      },
    });
    pt.map(0x1000, 0x1000, 0x1000, RW);
    const oldTop = pt.topPa;
    pt.map(2 ** 48, 0x2000, 0x1000, RW);
    expect(pt.topLevel).toBe(4);
    // One change_top per publish, with the final level (both new levels at once).
    expect(calls).toEqual(["new:4"]);
    const top = pt.mem.words(pt.topPa);
    expect(pt.fmt.load(top, 0, 4)).toBe(EntryType.TABLE);
    const l3 = pt.mem.words(pt.fmt.tablePa(top, 0));
    expect(pt.fmt.load(l3, 0, 3)).toBe(EntryType.TABLE);
    expect(pt.fmt.tablePa(l3, 0)).toBe(oldTop);
    expect(pt.translate(0x1234)).toBe(0x1234);
    expect(pt.translate(2 ** 48 + 0x10)).toBe(0x2010);
    expect(pt.hwInfo()).toMatchObject({ mode: 5 });
  });

  test("a leaf the top cannot hold grows it (leaf_level > top); the empty old tree goes", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    expect(pt.mem.inUse).toBe(1);
    pt.map(0, 0, 2 ** 48, RW);
    // A 256T leaf sits at level 4: the top grows to 4, and the new top's item 0,
    // which leads to the (empty) old top, is replaced by the leaf; the old tree is
    // freed after a flush, as clear_contig does.
    expect(pt.topLevel).toBe(4);
    expect(pt.mem.inUse).toBe(1);
    const leaves: string[] = [];
    pt.forEachLeaf((l) => leaves.push(`${l.va}:${l.level}:${l.sizeLg2}`));
    expect(leaves).toEqual(["0:4:48"]);
  });
});

describe("the IOTLB gather: flush before free", () => {
  test("tables an unmap unlinks stay allocated until the gather is synced, after the flush", () => {
    const flushes: string[] = [];
    let pt!: IoPageTable;
    pt = new IoPageTable({
      format: "x86_64",
      hwMaxVaLg2: 48,
      driver: {
        flushIotlb: (start, last, freed) =>
          flushes.push(
            `${start.toString(16)}-${last.toString(16)}:${freed.length}:${pt.mem.inUse}`,
          ),
      },
    });
    pt.mapRange(0x4000_0000, 0, 0x20_0000, RW); // a 2M leaf
    pt.mapRange(0x8000_0000, 0x1000, 0x20_0000, RW); // 512 x 4K: a full level-0 table
    const inUse = pt.mem.inUse;
    const g = pt.newGather();
    // The range covers the level-0 table whole: it is unlinked, not freed.
    expect(pt.unmap(0x8000_0000, 0x20_0000, g)).toBe(0x20_0000);
    expect(pt.mem.inUse).toBe(inUse);
    expect(g.freelist.length).toBe(1);
    expect(flushes).toEqual([]);
    pt.iotlbSync(g);
    expect(flushes).toEqual([`80000000-801fffff:1:${inUse}`]);
    expect(pt.mem.inUse).toBe(inUse - 1);
    // A range reaching past the mapping stops at the hole and frees nothing.
    pt.map(0xc000_0000, 0, 0x1000, RW);
    const g2 = pt.newGather();
    expect(pt.unmap(0xc000_0000, 0x4000_0000, g2)).toBe(0x1000);
    expect(g2.freelist.length).toBe(0);
  });

  test("the gather covers a large leaf's tail past the request (CVE-2026-31735 fix)", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    pt.map(0x20_0000, 0, 0x20_0000, RW);
    const g = pt.newGather();
    expect(pt.unmap(0x20_0000, 0x1000, g)).toBe(0x20_0000);
    expect([g.start, g.last]).toEqual([0x20_0000, 0x3f_ffff]);
  });

  test("FLUSH_RANGE_NO_GAPS syncs instead of widening the range over a gap", () => {
    const flushes: number[][] = [];
    const pt = new IoPageTable({
      format: "amdv1",
      features: featureMask(
        F.DYNAMIC_TOP,
        F.AMDV1_ENCRYPT_TABLES,
        F.AMDV1_FORCE_COHERENCE,
        F.FLUSH_RANGE_NO_GAPS,
      ),
      driver: { flushIotlb: (s, l) => flushes.push([s, l]) },
    });
    pt.map(0x1000, 0, 0x1000, RW);
    pt.map(0x2000, 0, 0x1000, RW);
    pt.map(0x9000, 0, 0x1000, RW);
    const g = pt.newGather();
    pt.unmap(0x1000, 0x1000, g);
    pt.unmap(0x2000, 0x1000, g); // touches: joins the range
    expect(flushes).toEqual([]);
    pt.unmap(0x9000, 0x1000, g); // disjoint: the first range is flushed now
    expect(flushes).toEqual([[0x1000, 0x2fff]]);
    pt.iotlbSync(g);
    expect(flushes).toEqual([
      [0x1000, 0x2fff],
      [0x9000, 0x9fff],
    ]);
  });

  test("a map over an empty leftover table frees it through a flush", () => {
    const flushes: number[] = [];
    const pt = new IoPageTable({
      format: "x86_64",
      hwMaxVaLg2: 48,
      driver: { flushIotlb: (_s, _l, freed) => flushes.push(freed.length) },
    });
    pt.map(0x20_0000, 0, 0x1000, RW);
    expect(pt.unmap(0x20_0000, 0x1000)).toBe(0x1000);
    const inUse = pt.mem.inUse;
    expect(flushes).toEqual([0]); // the unmap's own flush, nothing to free
    pt.map(0x20_0000, 0x40_0000, 0x20_0000, RW); // the empty level-0 table goes
    expect(flushes).toEqual([0, 1]);
    expect(pt.mem.inUse).toBe(inUse - 1);
    expect(pt.translate(0x20_0000 + 0x1234)).toBe(0x40_1234);
  });
});

describe("the upper half of a sign-extended table (negative IOVAs)", () => {
  test("map, split, collapse, cut and unmap work there as in the lower half", () => {
    const pt = new IoPageTable({
      format: "x86_64",
      hwMaxVaLg2: 48,
      features: featureMask(F.SIGN_EXTEND, F.OA_TABLE_XCHG),
    });
    const G = 2 ** 30;
    pt.mapRange(-2 * G, 2 * G, G, RW);
    pt.mapRange(-G, 8 * G, 4 * 2 ** 20, RW);
    const leaves = () => {
      const out: string[] = [];
      pt.forEachLeaf((l) => out.push(`${l.va / 2 ** 20}M:${l.sizeLg2}`));
      return out;
    };
    expect(leaves()).toEqual(["-2048M:30", "-1024M:21", "-1022M:21"]);
    const before = pt.fingerprint();
    const split = pt.splitRange(-2 * G + 2 ** 21, 2 ** 21, 4096);
    expect(split.leavesSplit).toBe(1);
    expect(leaves().length).toBe(1 + 512 + 510 + 2);
    expect(pt.translate(-2 * G + 2 ** 21 + 0x1234)).toBe(2 * G + 2 ** 21 + 0x1234);
    expect(pt.collapseRange(-2 * G, G).leavesMerged).toBe(2);
    expect(pt.fingerprint()).toBe(before);
    pt.cut(-G + 2 ** 21 + 0x1000);
    expect(pt.translate(-G + 2 ** 21 + 0x1000)).toBe(8 * G + 2 ** 21 + 0x1000);
    expect(pt.unmap(-G, 4096)).toBe(2 ** 21);
    expect(leaves().slice(0, 2)).toEqual(["-2048M:30", "-1022M:12"]);
  });
});

describe("unmap never splits", () => {
  test("a start inside a large leaf removes nothing; a hole stops the walk", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    pt.map(0x20_0000, 0, 0x20_0000, RW);
    expect(pt.unmap(0x20_1000, 0x1000)).toBe(0);
    expect(pt.translate(0x20_1000)).toBe(0x1000);
    pt.map(0x40_0000, 0x40_0000, 0x1000, RW);
    pt.map(0x40_2000, 0x40_2000, 0x1000, RW);
    expect(pt.unmapRange(0x20_0000, 0x30_0000)).toBe(0x20_1000);
    expect(pt.translate(0x40_2000)).toBe(0x40_2000);
  });

  // The refusal is an error that aborts every level above (kernel: -EINVAL from
  // __unmap_range ends the parent's loop), not a "nothing here" that lets the
  // parent carry on into its next table.
  test("a start inside a large leaf stops the whole walk, even where the range reaches the next table", () => {
    for (const config of [
      { format: "amdv1" },
      { format: "x86_64", hwMaxVaLg2: 48 },
      { format: "vtdss", hwMaxVaLg2: 48 },
    ] as IoPageTableConfig[]) {
      const pt = new IoPageTable(config);
      const G1 = 0x4000_0000;
      const M2 = 0x20_0000;
      // The last 2M of one 1G table, then a 2M leaf and a 4K page in the next table.
      pt.map(G1 - M2, 8 * G1, M2, RW);
      pt.map(G1, 9 * G1, M2, RW);
      pt.map(G1 + M2, 10 * G1, 0x1000, RW);
      const before = pt.fingerprint();
      expect(pt.unmap(G1 - M2 + 0x1000, M2 + 0x2000)).toBe(0);
      expect(pt.unmap(G1 - M2 + 0x1000, 2 * M2 + 0x1000)).toBe(0);
      expect(pt.fingerprint()).toBe(before);
      expect(pt.translate(G1)).toBe(9 * G1);
      expect(pt.translate(G1 + M2)).toBe(10 * G1);
    }
  });
});

describe("read_and_clear_dirty (record_dirty's arithmetic)", () => {
  function dirtyReports(pt: IoPageTable, iova: number, size: number, flags = 0): number[][] {
    const out: number[][] = [];
    pt.readAndClearDirty(iova, size, flags, { set: (i, l) => out.push([i, l]) });
    return out;
  }

  test("a contiguous run inside the range is recorded one item short, as the kernel does", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    pt.map(0x1_0000, 0x4_0000, 0x4000, RW); // a 16K run: items 16..19
    pt.setDirty(0x1_3000);
    // (last item 19 - index 16) x 4K = 12K, not the run's 16K.
    expect(dirtyReports(pt, 0x1_0000, 0x4000, IOMMU_DIRTY_NO_CLEAR)).toEqual([[0x1_0000, 0x3000]]);
    expect(dirtyReports(pt, 0x0, 0x10_0000, IOMMU_DIRTY_NO_CLEAR)).toEqual([[0x1_0000, 0x3000]]);
    // Starting inside the run: from the walk's position.
    expect(dirtyReports(pt, 0x1_2000, 0x1000, IOMMU_DIRTY_NO_CLEAR)).toEqual([[0x1_2000, 0x1000]]);
    expect(dirtyReports(pt, 0x1_1000, 0x2000, IOMMU_DIRTY_NO_CLEAR)).toEqual([[0x1_1000, 0x2000]]);
    // Cleaning cleans the whole run, reaching outside the range.
    expect(dirtyReports(pt, 0x1_2000, 0x1000)).toEqual([[0x1_2000, 0x1000]]);
    expect(dirtyReports(pt, 0x0, 0x10_0000)).toEqual([]);
  });

  test("a single-item leaf is recorded for its item size from the walk's position", () => {
    const pt = new IoPageTable({ format: "vtdss", hwMaxVaLg2: 39 });
    pt.map(0x20_0000, 0x20_0000, 0x20_0000, RW);
    pt.setDirty(0x30_0000);
    expect(dirtyReports(pt, 0x28_0000, 0x1000, IOMMU_DIRTY_NO_CLEAR)).toEqual([
      [0x28_0000, 0x20_0000],
    ]);
    expect(dirtyReports(pt, 0x20_0000, 0x20_0000)).toEqual([[0x20_0000, 0x20_0000]]);
    expect(dirtyReports(pt, 0x20_0000, 0x20_0000)).toEqual([]);
  });

  test("set_dirty of an unmapped IOVA is ENOENT; x86_64 has no dirty bit", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    expect(() => pt.setDirty(0x1000)).toThrow(/ENOENT/);
    const x86 = new IoPageTable({ format: "x86_64", hwMaxVaLg2: 48 } as IoPageTableConfig);
    expect(() => x86.readAndClearDirty(0, 0x1000, 0, null)).toThrow(/EOPNOTSUPP/);
  });
});

describe("TableMemory", () => {
  test("fail-nth fails the n-th attempt once; double frees are refused", () => {
    const mem = new TableMemory();
    mem.failNth(2);
    expect(mem.alloc()).toBeGreaterThanOrEqual(0);
    expect(mem.alloc()).toBe(-1);
    expect(mem.failPending).toBe(false);
    const pa = mem.alloc();
    expect(mem.inUse).toBe(2);
    mem.free(pa);
    expect(() => mem.free(pa)).toThrow(/double free/);
    expect(mem.attempts).toBe(3);
  });

  test("wordsOfFrameParts finds the page words(pa) finds, from a frame split in 20-bit halves", () => {
    // A base whose frame number straddles a 2^20 boundary, so the halves carry.
    const base = (2 ** 20 - 2) * 4096 + 2 ** 40;
    const mem = new TableMemory({ basePa: base });
    const pas = [mem.alloc(), mem.alloc(), mem.alloc(), mem.alloc()];
    for (const pa of pas) {
      const frame = pa / 4096;
      const words = mem.wordsOfFrameParts(frame % 2 ** 20, Math.floor(frame / 2 ** 20));
      expect(words).toBe(mem.words(pa));
    }
    expect(new Set(pas.map((pa) => mem.words(pa))).size).toBe(4);
  });

  test("a limit makes allocation fail, and a table's init fails with ENOMEM", () => {
    const mem = new TableMemory({ limitPages: 1 });
    const pt = new IoPageTable({ format: "amdv1", memory: mem });
    expect(() => pt.map(0x1000, 0, 0x1000, RW)).toThrow(/ENOMEM/);
    expect(mem.inUse).toBe(1);
    pt.destroy();
    expect(mem.inUse).toBe(0);
  });
});

describe("locateEntry (for hardware models that edit an entry in place)", () => {
  test("finds the PDE above a 4K table and the leaf item, null past a large leaf", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    pt.map(0x40000000, 0x80000000, 0x200000, IommuProt.READ | IommuProt.WRITE);
    pt.map(0x40200000, 0x90000000, 0x1000, IommuProt.READ);
    const pde = pt.locateEntry(0x40200000, 1);
    expect(pde?.type).toBe(EntryType.TABLE);
    const leaf = pt.locateEntry(0x40200000, 0);
    expect(leaf?.type).toBe(EntryType.OA);
    expect(leaf?.index).toBe(0);
    expect(pt.locateEntry(0x40001000, 1)?.type).toBe(EntryType.OA);
    expect(pt.locateEntry(0x40001000, 0)).toBeNull();
    expect(() => pt.locateEntry(0x40001000, 9)).toThrow(/level/);
  });
});
