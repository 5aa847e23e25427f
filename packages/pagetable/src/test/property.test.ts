import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  featureMask,
  hasFeature,
  IOMMU_DIRTY_NO_CLEAR,
  IommuProt,
  IoPageTable,
  type IoPageTableConfig,
  PageTableError,
  PtFeature,
  sizesOfBitmap,
  TableMemory,
  WalkResult,
} from "../index.js";
import { checkPage, checkRange, hitlessObserver, RefModel } from "../test-support/reference.js";

/**
 * Property-based tests: random sequences of map / unmap / cut / splitRange /
 * collapseRange / setDirty + readAndClearDirty against {@link RefModel}, a plain
 * map from granule page to physical address and permissions. Seeds are fixed.
 */

const R = IommuProt.READ;
const W = IommuProt.WRITE;
/** IOVAs live in [0, 2G): small enough to collide often, big enough for 1G leaves. */
const WINDOW_LG2 = 31;
/**
 * Where the window starts: 0, or -2^31 to run in the upper half of a
 * sign-extended table (IOVAs given as negative numbers). Set per setup.
 */
let BASE = 0;

interface Setup {
  name: string;
  config: IoPageTableConfig;
  seed: number;
  runs: number;
  /** Built with the RFC features: cut, split and collapse do something. */
  resizes: boolean;
  /** Run in the upper half (negative IOVAs) of a SIGN_EXTEND table. */
  upper?: boolean;
}

const SETUPS: Setup[] = [
  { name: "amdv1", config: { format: "amdv1" }, seed: 0x1a, runs: 18, resizes: true },
  {
    name: "x86_64",
    config: { format: "x86_64", hwMaxVaLg2: 48 },
    seed: 0x2b,
    runs: 14,
    resizes: true,
  },
  {
    name: "x86_64 upper half",
    config: {
      format: "x86_64",
      hwMaxVaLg2: 48,
      features: featureMask(PtFeature.SIGN_EXTEND, PtFeature.OA_TABLE_XCHG),
    },
    seed: 0x5e,
    runs: 14,
    resizes: true,
    upper: true,
  },
  {
    name: "vtdss",
    config: { format: "vtdss", hwMaxVaLg2: 39 },
    seed: 0x3c,
    runs: 14,
    resizes: true,
  },
  // The iommufd mock is built without the RFC features: resizes are refused.
  { name: "amdv1-mock", config: { format: "amdv1-mock" }, seed: 0x4d, runs: 14, resizes: false },
];

type Op =
  | {
      t: "map";
      lg2: number;
      n: number;
      slot: number;
      near: number;
      paLg2: number;
      paSlot: number;
      prot: number;
    }
  | { t: "mapPages"; lg2: number; slot: number; paSlot: number; prot: number }
  | { t: "unmap"; lg2: number; n: number; slot: number; near: number; whole: boolean }
  | { t: "cut"; pick: number; slot: number }
  | { t: "split"; lg2: number; n: number; slot: number; near: number; cap: number }
  | { t: "collapse"; lg2: number; n: number; slot: number; near: number; cap: number | null }
  | { t: "dirty"; picks: number[]; lg2: number; slot: number; near: number; noClear: boolean };

/** Operations over the domain's page sizes, `g` being the granule. */
function opArb(sizes: number[], g: number, hasDirty: boolean): fc.Arbitrary<Op> {
  const lg2 = fc.oneof(
    { arbitrary: fc.integer({ min: g, max: g + 4 }), weight: 6 },
    { arbitrary: fc.integer({ min: g + 5, max: g + 10 }), weight: 3 },
    { arbitrary: fc.integer({ min: g + 11, max: 30 }), weight: 1 },
  );
  const slot = fc.nat({ max: 2 ** 20 });
  const prot = fc.constantFrom(R, W, R | W, R | W);
  const cap = fc.constantFrom(...sizes.filter((s) => s <= 30));
  const arbs: fc.WeightedArbitrary<Op>[] = [
    {
      weight: 6,
      arbitrary: fc.record({
        t: fc.constant("map" as const),
        lg2,
        n: fc.integer({ min: 1, max: 3 }),
        slot,
        near: fc.nat(),
        paLg2: fc.integer({ min: g, max: 30 }),
        paSlot: fc.nat({ max: 2 ** 20 }),
        prot,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("mapPages" as const),
        lg2: fc.constantFrom(...sizes.filter((s) => s <= 30)),
        slot,
        paSlot: fc.nat({ max: 2 ** 10 }),
        prot,
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant("unmap" as const),
        lg2,
        n: fc.integer({ min: 1, max: 3 }),
        slot,
        near: fc.nat(),
        whole: fc.boolean(),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ t: fc.constant("cut" as const), pick: fc.nat(), slot }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant("split" as const),
        lg2,
        n: fc.integer({ min: 1, max: 3 }),
        slot,
        near: fc.nat(),
        cap,
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant("collapse" as const),
        lg2: fc.integer({ min: g + 9, max: 30 }),
        n: fc.integer({ min: 1, max: 2 }),
        slot,
        near: fc.nat(),
        cap: fc.option(cap, { nil: null }),
      }),
    },
  ];
  if (hasDirty) {
    arbs.push({
      weight: 2,
      arbitrary: fc.record({
        t: fc.constant("dirty" as const),
        picks: fc.array(fc.nat(), { maxLength: 4 }),
        lg2,
        slot,
        near: fc.nat(),
        noClear: fc.boolean(),
      }),
    });
  }
  return fc.oneof(...arbs);
}

/** [va, va + n * 2^lg2) placed by `slot` inside the window. */
function place(lg2: number, n: number, slot: number): [number, number] {
  const len = n * 2 ** lg2;
  const slots = Math.max(1, Math.floor((2 ** WINDOW_LG2 - len) / 2 ** lg2));
  return [BASE + (slot % slots) * 2 ** lg2, len];
}

const nearWalk = new WalkResult();

/**
 * Like {@link place}, but, depending on `near`, at a mapped page (aligned down to
 * 2^lg2), at the start of the leaf holding it, or ending at the end of that leaf,
 * so that operations meet leaves, start inside them and cross their ends.
 */
function placeNear(
  pt: IoPageTable,
  ref: RefModel,
  lg2: number,
  n: number,
  slot: number,
  near: number,
) {
  const page = near % 4 !== 0 ? pickMapped(ref, near >>> 2) : null;
  if (page === null) return place(lg2, n, slot);
  const len = n * 2 ** lg2;
  let va = Math.floor(page / 2 ** lg2) * 2 ** lg2;
  if (near % 4 !== 1 && pt.lookup(page, nearWalk)) {
    va = near % 4 === 2 ? nearWalk.leafVa : nearWalk.leafVa + 2 ** nearWalk.leafLg2 - len;
  }
  va = Math.min(Math.max(BASE, va), BASE + 2 ** WINDOW_LG2 - len);
  return [Math.floor(va / ref.granule) * ref.granule, len] as [number, number];
}

/** A mapped page chosen by `pick`, or null when nothing is mapped. */
function pickMapped(ref: RefModel, pick: number): number | null {
  if (ref.pages.size === 0) return null;
  const keys = [...ref.pages.keys()];
  return keys[pick % keys.length]! * ref.granule;
}

/** The leaves meeting [va, va+len): their span, first start to last end. */
function leafSpan(pt: IoPageTable, va: number, len: number): [number, number] {
  let s = va;
  let e = va + len;
  pt.forEachLeaf(
    (l) => {
      s = Math.min(s, l.va);
      e = Math.max(e, l.va + 2 ** l.sizeLg2);
    },
    va,
    len,
  );
  return [s, e - s];
}

function expectCode(f: () => unknown, code: string): PageTableError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PageTableError);
    expect((e as PageTableError).code).toBe(code);
    return e as PageTableError;
  }
  return expect.fail(`expected ${code}`);
}

const walk = new WalkResult();

/**
 * Runs a resize under the hitless observer. A table built without the RFC
 * features (the iommufd mock) may refuse with EOPNOTSUPP, and then must not have
 * changed: returns false.
 */
function resize(pt: IoPageTable, ref: RefModel, f: () => void): boolean {
  pt.observeLiveWrites(hitlessObserver(pt, ref));
  try {
    f();
    return true;
  } catch (e) {
    const lacks =
      !hasFeature(pt.features, PtFeature.OA_TABLE_XCHG) ||
      !hasFeature(pt.features, PtFeature.OA_SIZE_CHANGE);
    if (!(e instanceof PageTableError) || e.code !== "EOPNOTSUPP" || !lacks) throw e;
    return false;
  } finally {
    pt.observeLiveWrites(null);
  }
}

/** What the random runs actually exercised; asserted so the generators cannot quietly go stale. */
type Coverage = Record<string, number>;

function bump(cov: Coverage, what: string): void {
  cov[what] = (cov[what] ?? 0) + 1;
}

/** Applies one op to the table and the reference, checking the table against it. */
function step(pt: IoPageTable, ref: RefModel, op: Op, sizes: number[], cov: Coverage): void {
  const g = ref.granule;
  switch (op.t) {
    case "map": {
      // A quarter of the maps go over a mapped page: those must collide.
      const [va, len] =
        op.near % 4 === 1
          ? placeNear(pt, ref, op.lg2, op.n, op.slot, op.near)
          : place(op.lg2, op.n, op.slot);
      // Large maps keep their PA 512-granule aligned so that the run stays in the
      // thousands of leaves, not hundreds of thousands (which would only be slow).
      const floor = sizes.find((x) => x >= op.lg2 - 9) ?? op.lg2 - 9;
      const paLg2 = op.lg2 >= ref.granuleLg2 + 11 ? Math.max(op.paLg2, floor) : op.paLg2;
      const pa = (op.paSlot % 2 ** (40 - paLg2)) * 2 ** paLg2;
      if (ref.anyMapped(va, len)) {
        // iommu_map is all or nothing.
        expectCode(() => pt.mapRange(va, pa, len, op.prot), "EADDRINUSE");
        bump(cov, "map EADDRINUSE");
      } else {
        bump(cov, "map");
        pt.mapRange(va, pa, len, op.prot);
        ref.map(va, pa, len, op.prot);
      }
      checkRange(pt, ref, va, len, "map");
      return;
    }
    case "mapPages": {
      // map_pages of one page of a domain size, aligned both sides: the best page
      // size is that size, so one leaf is written.
      const [va, len] = place(op.lg2, 1, op.slot);
      const pa = op.paSlot * len;
      if (ref.anyMapped(va, len)) {
        const e = expectCode(() => pt.mapPages(va, pa, len, 1, op.prot), "EADDRINUSE");
        expect(e.mapped).toBe(0);
      } else {
        expect(pt.mapPages(va, pa, len, 1, op.prot)).toBe(len);
        ref.map(va, pa, len, op.prot);
      }
      checkRange(pt, ref, va, len, "map_pages");
      return;
    }
    case "unmap": {
      const [va, len] = placeNear(pt, ref, op.lg2, op.n, op.slot, op.near);
      const inside = pt.lookup(va, walk) && walk.leafVa !== va;
      const mappedBefore = ref.anyMapped(va, g);
      const got = op.whole ? pt.unmapRange(va, len) : pt.unmap(va, len);
      // Exactly [va, va+got) goes, all of it mapped before: whole leaves, never split.
      expect(ref.allMapped(va, got), "unmap removed a hole").toBe(true);
      if (got > len) bump(cov, "unmap past the end");
      if (got === 0 && inside) bump(cov, "unmap inside a leaf");
      if (got === 0) {
        expect(!mappedBefore || inside, "unmap removed nothing at a leaf start").toBe(true);
      } else if (got < len) {
        bump(cov, "unmap stopped at a hole");
        expect(ref.anyMapped(va + got, g), "unmap stopped before a hole").toBe(false);
      }
      ref.unmap(va, got);
      const s = Math.max(BASE, va - 2 ** 21);
      checkRange(
        pt,
        ref,
        s,
        Math.min(va + Math.max(got, len) + 2 ** 21, BASE + 2 ** WINDOW_LG2) - s,
        "unmap",
      );
      return;
    }
    case "cut": {
      const mapped = pickMapped(ref, op.pick);
      const va = op.pick % 4 === 0 || mapped === null ? place(12, 1, op.slot)[0] : mapped;
      if (!ref.anyMapped(va, g)) {
        expectCode(() => pt.cut(va), "ENOENT");
        return;
      }
      const [s, l] = leafSpan(pt, va, g);
      spreadDirty(pt, ref, va, g);
      const cutWrites: number[] = [];
      if (
        resize(pt, ref, () => {
          cutWrites.push(pt.cut(va).writes.length);
        })
      ) {
        if (cutWrites[0]! > 0) bump(cov, "cut rebuilt a leaf");
        expect(pt.lookup(va, walk) && walk.leafVa, "cut leaves a boundary").toBe(va);
        if (va >= g && pt.lookup(va - g, walk)) {
          expect(walk.leafVa + 2 ** walk.leafLg2, "no leaf crosses the cut").toBeLessThanOrEqual(
            va,
          );
        }
      }
      checkRange(pt, ref, s, l, "cut");
      checkDirty(pt, ref, s, l);
      return;
    }
    case "split": {
      const [va, len] = placeNear(pt, ref, op.lg2, op.n, op.slot, op.near);
      const [s, l] = leafSpan(pt, va, len);
      spreadDirty(pt, ref, va, len);
      // Likewise at most about a thousand leaves in the range after the split.
      const minCap = op.lg2 + Math.ceil(Math.log2(op.n)) - 10;
      const capLg2 = op.cap >= minCap ? op.cap : (sizes.find((x) => x >= minCap) ?? op.cap);
      let splitLeaves = 0;
      const split = () => {
        splitLeaves = pt.splitRange(va, len, 2 ** capLg2).leavesSplit;
      };
      if (!resize(pt, ref, split)) {
        checkRange(pt, ref, s, l, "refused split");
        return;
      }
      if (splitLeaves > 0) bump(cov, "split rebuilt leaves");
      pt.forEachLeaf(
        (leaf) => {
          const end = leaf.va + 2 ** leaf.sizeLg2;
          expect(leaf.sizeLg2, "no leaf in the range exceeds the cap").toBeLessThanOrEqual(capLg2);
          expect(leaf.va >= va && end <= va + len, "no leaf crosses the range's ends").toBe(true);
        },
        va,
        len,
      );
      checkRange(pt, ref, s, l, "split");
      checkDirty(pt, ref, s, l);
      return;
    }
    case "collapse": {
      const [va, len] = placeNear(pt, ref, op.lg2, op.n, op.slot, op.near);
      const [s, l] = leafSpan(pt, va, len);
      const before = new Set<string>();
      pt.forEachLeaf((leaf) => before.add(`${leaf.va}:${leaf.sizeLg2}`), s, l);
      const cap = op.cap === null ? undefined : 2 ** op.cap;
      let merged = 0;
      const collapse = () => {
        merged = pt.collapseRange(va, len, cap).leavesMerged;
      };
      if (!resize(pt, ref, collapse)) {
        checkRange(pt, ref, s, l, "refused collapse");
        return;
      }
      if (merged > 0) bump(cov, "collapse merged");
      pt.forEachLeaf(
        (leaf) => {
          const key = `${leaf.va}:${leaf.sizeLg2}`;
          expect(sizes, "leaves keep to the domain's sizes").toContain(leaf.sizeLg2);
          if (before.has(key)) return;
          // A leaf the collapse made lies inside the range, within the cap.
          expect(leaf.va >= va && leaf.va + 2 ** leaf.sizeLg2 <= va + len, key).toBe(true);
          if (op.cap !== null) expect(leaf.sizeLg2, key).toBeLessThanOrEqual(op.cap);
        },
        s,
        l,
      );
      checkRange(pt, ref, s, l, "collapse");
      checkDirty(pt, ref, s, l);
      return;
    }
    case "dirty": {
      for (const p of op.picks) {
        const va = pickMapped(ref, p);
        if (va === null) continue;
        pt.setDirty(va);
        ref.dirty.add(va / g);
      }
      const [va, len] = placeNear(pt, ref, op.lg2, 1, op.slot, op.near);
      const want = expectedDirtyReports(pt, ref, va, len);
      const seen: [number, number][] = [];
      pt.readAndClearDirty(va, len, op.noClear ? IOMMU_DIRTY_NO_CLEAR : 0, {
        set: (iova, l) => {
          seen.push([iova, l]);
        },
      });
      expect(seen).toEqual(want);
      if (seen.length > 0) bump(cov, "dirty reported");
      if (!op.noClear) {
        // make_write_clean() cleans the whole entry, also where it reaches out of the range.
        pt.forEachLeaf(
          (leaf) => {
            for (let p = leaf.va; p < leaf.va + 2 ** leaf.sizeLg2; p += g) ref.dirty.delete(p / g);
          },
          va,
          len,
        );
      }
      const again: [number, number][] = [];
      pt.readAndClearDirty(va, len, IOMMU_DIRTY_NO_CLEAR, {
        set: (iova, l) => {
          again.push([iova, l]);
        },
      });
      expect(again).toEqual(op.noClear ? seen : []);
      checkRange(pt, ref, va, len, "dirty");
      checkDirty(pt, ref, va, len);
      return;
    }
  }
}

/** True when a page of [va, va+len) is dirty in the reference. */
function refDirty(ref: RefModel, va: number, len: number): boolean {
  if (ref.dirty.size === 0) return false;
  for (let p = va; p < va + len; p += ref.granule) if (ref.dirty.has(p / ref.granule)) return true;
  return false;
}

/** Every leaf meeting [va, va+len) is dirty exactly when the reference says a page of it is. */
function checkDirty(pt: IoPageTable, ref: RefModel, va: number, len: number): void {
  if (!pt.fmt.hasDirty) return;
  pt.forEachLeaf(
    (leaf) => {
      expect(leaf.dirty, `dirty state of the leaf at 0x${leaf.va.toString(16)}`).toBe(
        refDirty(ref, leaf.va, 2 ** leaf.sizeLg2),
      );
    },
    va,
    len,
  );
}

/**
 * A split or cut gives every piece of a dirty leaf the dirty bit (the RFC's cut
 * leaves this open; the model keeps the dirty state conservatively): in page
 * terms, every page of a leaf the operation may rebuild becomes dirty.
 */
function spreadDirty(pt: IoPageTable, ref: RefModel, va: number, len: number): void {
  if (!pt.fmt.hasDirty) return;
  pt.forEachLeaf(
    (leaf) => {
      const size = 2 ** leaf.sizeLg2;
      if (!refDirty(ref, leaf.va, size)) return;
      for (let p = leaf.va; p < leaf.va + size; p += ref.granule) ref.dirty.add(p / ref.granule);
    },
    va,
    len,
  );
}

/**
 * What read_and_clear_dirty() reports for [va, va+len), computed with the
 * kernel's record_dirty() arithmetic (iommu_pt.h): an entry is reported from the
 * walk's position in it (va for the first, then item starts); a single item for
 * its item size, a contiguous run for (index of the run's last item, or the
 * walk's end index in that table if smaller, minus the current index) items,
 * which is one item short for a run that ends inside the range.
 */
function expectedDirtyReports(pt: IoPageTable, ref: RefModel, va: number, len: number) {
  const out: [number, number][] = [];
  const last = va + len - 1;
  pt.forEachLeaf(
    (leaf) => {
      if (!refDirty(ref, leaf.va, 2 ** leaf.sizeLg2)) return;
      const isz = pt.fmt.granuleLg2 + 9 * leaf.level;
      const c = leaf.sizeLg2 - isz;
      const cur = Math.max(va, leaf.va);
      if (c === 0) {
        out.push([cur, 2 ** isz]);
        return;
      }
      const spanLg2 = isz + pt.fmt.numItemsLg2(leaf.level);
      const tableStart = Math.floor(cur / 2 ** spanLg2) * 2 ** spanLg2;
      const index = Math.floor((cur - tableStart) / 2 ** isz);
      const runLast = Math.floor((leaf.va - tableStart) / 2 ** isz) + 2 ** c - 1;
      const endIndex =
        Math.floor(last / 2 ** spanLg2) === Math.floor(cur / 2 ** spanLg2)
          ? Math.floor((last - tableStart) / 2 ** isz) + 1
          : 2 ** pt.fmt.numItemsLg2(leaf.level);
      out.push([cur, (Math.min(runLast, endIndex) - index) * 2 ** isz]);
    },
    va,
    len,
  );
  return out;
}

/** Unmaps every leaf, then checks that nothing is mapped and no table page is lost. */
function unmapAllAndDestroy(pt: IoPageTable, ref: RefModel, mem: TableMemory): void {
  const leaves: [number, number][] = [];
  pt.forEachLeaf((l) => leaves.push([l.va, 2 ** l.sizeLg2]));
  for (const [va, len] of leaves) {
    expect(pt.unmapRange(va, len)).toBe(len);
    ref.unmap(va, len);
  }
  expect(ref.pages.size).toBe(0);
  expect(pt.stats().mappedBytes).toBe(0);
  pt.destroy();
  expect(mem.inUse).toBe(0);
}

describe.each(SETUPS)("$name properties", (setup) => {
  const probe = new IoPageTable(setup.config);
  const sizes = sizesOfBitmap(probe.pgsizeBitmap);
  const g = probe.fmt.granuleLg2;
  const hasDirty = probe.fmt.hasDirty;
  probe.destroy();

  test(`${setup.name}: random operations agree with the reference, hitless, no leaks`, () => {
    const cov: Coverage = {};
    BASE = setup.upper ? -(2 ** WINDOW_LG2) : 0;
    fc.assert(
      fc.property(fc.array(opArb(sizes, g, hasDirty), { minLength: 10, maxLength: 40 }), (ops) => {
        const mem = new TableMemory();
        const pt = new IoPageTable({ ...setup.config, memory: mem });
        const ref = new RefModel(g, pt.fmt.name === "x86_64");
        for (const op of ops) step(pt, ref, op, sizes, cov);
        // Everything the reference holds, and nothing else.
        checkRange(pt, ref, BASE, 2 ** WINDOW_LG2, "final", 0);
        let k = 0;
        for (const [page] of ref.pages) {
          if (k++ % 97 === 0) checkPage(pt, ref, page * ref.granule, "final");
        }
        unmapAllAndDestroy(pt, ref, mem);
      }),
      { seed: setup.seed, numRuns: setup.runs },
    );
    const want = [
      "map",
      "map EADDRINUSE",
      "unmap past the end",
      "unmap inside a leaf",
      "unmap stopped at a hole",
    ];
    if (setup.resizes) want.push("cut rebuilt a leaf", "split rebuilt leaves");
    // (collapse merges in the upper half are rare with three page sizes; table.test.ts
    // collapses there deterministically)
    if (setup.resizes && !setup.upper) want.push("collapse merged");
    if (hasDirty) want.push("dirty reported");
    for (const w of want)
      expect(cov[w] ?? 0, `${w} (coverage ${JSON.stringify(cov)})`).toBeGreaterThan(0);
  });
});

/**
 * split then collapse of the same range is the identity on the fingerprint, when
 * nothing else changed. The range is one whole iommu_map() (whose layout is the
 * largest aligned pages, which collapse rebuilds), and no two maps can merge:
 * each lives in its own 1G slot with an empty slot between them.
 */
describe.each(SETUPS.filter((s) => s.resizes && !s.upper))("$name split then collapse", (setup) => {
  const probe = new IoPageTable(setup.config);
  const sizes = sizesOfBitmap(probe.pgsizeBitmap);
  const g = probe.fmt.granuleLg2;
  probe.destroy();
  const region = fc.record({
    lg2: fc.integer({ min: g, max: 30 }),
    pages: fc.nat(),
    offLg2: fc.constantFrom(g, g + 3, 21, 24, 30),
    offSlot: fc.nat({ max: 2 ** 18 }),
    paLg2: fc.constantFrom(g, g + 3, 21, 24, 30),
    paSlot: fc.nat({ max: 2 ** 18 }),
  });

  test(`${setup.name}: fingerprint(collapse(split(R))) = fingerprint(R)`, () => {
    let rebuilt = 0;
    fc.assert(
      fc.property(
        fc.array(region, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.nat(),
        (regions, pick, capPick) => {
          const mem = new TableMemory();
          const pt = new IoPageTable({ ...setup.config, memory: mem });
          const ref = new RefModel(g, pt.fmt.name === "x86_64");
          const maps: [number, number][] = [];
          regions.forEach((r, k) => {
            const slot = 2 * k * 2 ** 30;
            const off = (r.offSlot * 2 ** r.offLg2) % 2 ** 30;
            const room = 2 ** 30 - off;
            // Keep the run to about a thousand leaves (a 512-granule aligned PA for big
            // maps), and half the time align the PA like the IOVA so large leaves form.
            const paLg2 = Math.max(r.paLg2, Math.min(r.lg2 - (r.paSlot % 2 === 0 ? 0 : 9), 30));
            // About 2^lg2 (one to three of them, sometimes a granule short).
            const want = 2 ** r.lg2 * (1 + (r.pages % 3)) - (r.pages % 5 === 0 ? 2 ** g : 0);
            // At most about a thousand leaves (those follow the alignment of IOVA and PA).
            const len = Math.max(
              2 ** g,
              Math.min(want, room, 2 ** (Math.min(r.offLg2, paLg2) + 10)),
            );
            const pa = (r.paSlot % 2 ** (40 - paLg2)) * 2 ** paLg2;
            pt.mapRange(slot + off, pa, len, R | W);
            ref.map(slot + off, pa, len, R | W);
            maps.push([slot + off, len]);
          });
          const before = pt.fingerprint();
          const [va, len] = maps[pick % maps.length]!;
          // A cap below the region's largest leaf: at most 512 pieces a leaf, 4096 in all.
          let largest = 0;
          pt.forEachLeaf(
            (l) => {
              largest = Math.max(largest, l.sizeLg2);
            },
            va,
            len,
          );
          const floor = Math.max(largest - 9, Math.ceil(Math.log2(len)) - 12);
          const caps = sizes.filter((x) => x < largest && x >= floor);
          const cap = caps.length === 0 ? largest : caps[capPick % caps.length]!;
          const split = pt.splitRange(va, len, 2 ** cap);
          if (split.leavesSplit > 0) rebuilt++;
          checkRange(pt, ref, va, len, "after the split", 0);
          pt.collapseRange(va, len);
          checkRange(pt, ref, va, len, "after the collapse", 0);
          expect(pt.fingerprint()).toBe(before);
          pt.destroy();
          expect(mem.inUse).toBe(0);
        },
      ),
      { seed: setup.seed + 1, numRuns: 60 },
    );
    // x86_64 and VT-d have three sizes only: fewer regions leave room for a smaller cap.
    expect(rebuilt).toBeGreaterThanOrEqual(setup.name === "amdv1" ? 20 : 6);
  });
});
