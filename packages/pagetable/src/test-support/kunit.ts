import { expect } from "vitest";
import {
  debugSupportedFeatures,
  EntryType,
  FORMATS,
  type FormatName,
  featureMask,
  hasFeature,
  IommuProt,
  IoPageTable,
  type IoPageTableConfig,
  PtFeature,
  type PtFormat,
  sizesOfBitmap,
  TableMemory,
  WalkResult,
} from "../index.js";
import { rangeMaxVaLg2 } from "../iter/geometry.js";

/**
 * The fixture of the kernel's KUnit suites (kunit_iommu.h, pt_kunit_priv_init),
 * re-expressed over IoPageTable: the per-format configuration list, the derived
 * values (smallest page, test_oa, safe_pgsize_bitmap) and the helpers both
 * suites share (count_valids, check_iova, do_map, do_unmap, check_all_levels).
 */

export const RW = IommuProt.READ | IommuProt.WRITE;
/** The last IOVA a number holds exactly; "the top of the VA space" is clamped here. */
export const VA_CAP = Number.MAX_SAFE_INTEGER;

/** One `<fmt>_cfg_<n>` KUnit parameter. */
export interface KunitCfg {
  /** The kernel's parameter name, e.g. `x86_64_cfg_1`. */
  id: string;
  fmt: PtFormat;
  config: IoPageTableConfig;
}

interface RawCfg {
  features?: number;
  hwMaxVaLg2?: number;
  startingLevel?: number;
}

const SE = featureMask(PtFeature.SIGN_EXTEND);

/**
 * kunit_fmt_cfgs and KUNIT_FMT_FEATURES of fmt/amdv1.h, fmt/x86_64.h and
 * fmt/vtdss.h. The kernel builds its KUnit with CONFIG_DEBUG_GENERIC_PT=y, so the
 * features are the cfg's plus every feature of that build not in
 * KUNIT_FMT_FEATURES. The iommufd mock (iommu_mock.c) has no KUnit of its own; it
 * shares fmt/amdv1.h's cfgs and runs here in a production build with the
 * features it is compiled with (none).
 */
const RAW: [FormatName, string, number, boolean, RawCfg[]][] = [
  ["amdv1", "amdv1", 0, true, [{ startingLevel: 2 }, { startingLevel: 2, hwMaxVaLg2: 32 }]],
  [
    "x86_64",
    "x86_64",
    SE,
    true,
    [
      { features: SE, hwMaxVaLg2: 48 },
      { features: SE, hwMaxVaLg2: 57 },
      { hwMaxVaLg2: 47 },
      { hwMaxVaLg2: 56 },
    ],
  ],
  [
    "vtdss",
    "vtdss",
    featureMask(PtFeature.VTDSS_FORCE_WRITEABLE),
    true,
    [{ hwMaxVaLg2: 39 }, { hwMaxVaLg2: 48 }, { hwMaxVaLg2: 57 }],
  ],
  [
    "amdv1-mock",
    "amdv1-mock",
    0,
    false,
    [{ startingLevel: 2 }, { startingLevel: 2, hwMaxVaLg2: 32 }],
  ],
];

/** Every format and KUnit configuration, in the kernel's order. */
export const KUNIT_CFGS: KunitCfg[] = RAW.flatMap(([name, prefix, kunitFmtFeatures, debug, cfgs]) =>
  cfgs.map((c, n) => {
    const fmt = FORMATS[name];
    const compiled = debug ? debugSupportedFeatures(fmt.supportedFeatures) : fmt.supportedFeatures;
    const features = ((c.features ?? 0) | (compiled & ~kunitFmtFeatures)) >>> 0;
    const config: IoPageTableConfig = {
      format: name,
      features,
      ...(debug ? { debugGenericPt: true } : {}),
      ...(c.hwMaxVaLg2 !== undefined ? { hwMaxVaLg2: c.hwMaxVaLg2 } : {}),
      ...(c.startingLevel !== undefined ? { startingLevel: c.startingLevel } : {}),
    };
    return { id: `${prefix}_cfg_${n}`, fmt, config };
  }),
);

/** A range of IOVA as BigInts (the kernel's pt_range va/last_va), and its width. */
export interface VaRange {
  va: bigint;
  last: bigint;
  /** range.max_vasz_lg2. */
  maxVaLg2: number;
}

/** The kernel's struct kunit_iommu_priv for one configuration. */
export class KunitPriv {
  readonly mem = new TableMemory();
  readonly pt: IoPageTable;
  /** log2 of every size in info.pgsize_bitmap, ascending. */
  readonly sizes: number[];
  readonly smallestLg2: number;
  readonly smallest: number;
  /** 0x74a71445deadbeef mod 2^max_oasz. */
  readonly testOa: number;
  /** safe_pgsize_bitmap: the sizes below 2^(max_vasz - 1). */
  readonly safeSizes: number[];
  readonly signExtend: boolean;

  constructor(readonly cfg: KunitCfg) {
    this.pt = new IoPageTable({ ...cfg.config, memory: this.mem });
    this.sizes = sizesOfBitmap(this.pt.pgsizeBitmap);
    this.smallestLg2 = this.sizes[0]!;
    this.smallest = 2 ** this.smallestLg2;
    this.testOa = Number(0x74a71445deadbeefn % (1n << BigInt(this.pt.maxOaLg2)));
    this.safeSizes = this.sizes.filter((s) => s < this.pt.maxVaLg2 - 1);
    this.signExtend = hasFeature(this.pt.features, PtFeature.SIGN_EXTEND);
  }

  /** pt_top_range(): the lower half with SIGN_EXTEND, else the whole current top. */
  topRange(): VaRange {
    const m = rangeMaxVaLg2(this.pt, this.pt.topLevel);
    const bits = this.signExtend ? m - 1 : m;
    return { va: 0n, last: (1n << BigInt(bits)) - 1n, maxVaLg2: m };
  }

  /** pt_upper_range(): the upper half with SIGN_EXTEND (negative IOVAs), else the top range. */
  upperRange(): VaRange {
    const r = this.topRange();
    if (!this.signExtend) return r;
    return { va: -(1n << BigInt(r.maxVaLg2 - 1)), last: -1n, maxVaLg2: r.maxVaLg2 };
  }

  /** The kernel's do_map(): iommu_map() with READ|WRITE, which must succeed. */
  doMap(va: number, pa: number, len: number): void {
    this.pt.mapRange(va, pa, len, RW);
  }

  /** The kernel's do_unmap(): iommu_unmap() must remove exactly `len`. */
  doUnmap(va: number, len: number): void {
    const got = this.pt.unmapRange(va, len);
    if (got !== len)
      expect.fail(
        `iommu_unmap(0x${va.toString(16)}, 0x${len.toString(16)}) = 0x${got.toString(16)}`,
      );
  }

  /** check_iova(): every smallest page of [va, va+len) translates to pa + offset. */
  checkIova(va: number, pa: number, len: number): void {
    checkIova(this.pt, va, pa, len, this.smallest);
  }

  /** The suite exit: deinit, then no table page may remain (NR_SECONDARY_PAGETABLE). */
  destroyAndCheckLeaks(): void {
    this.pt.destroy();
    expect(this.mem.inUse).toBe(0);
  }
}

/**
 * check_iova() over any table: [va, va+len) translates to pa + offset. The
 * kernel asks iova_to_phys() about every smallest page; here the leaves meeting
 * the range must tile it without a hole, iova_to_phys() must be right at the
 * first page of each (and the last page of a contiguous run), and every item of
 * a contiguous run must decode to the same entry (the OA a page in that item
 * translates through). An item translates affinely (entry OA plus offset), so
 * this finds the same failures at a fraction of the cost of 2M walks per 8G
 * block.
 */
export function checkIova(pt: IoPageTable, va: number, pa: number, len: number, step: number) {
  const fmt = pt.fmt;
  const check = (iova: number) => {
    const got = pt.iovaToPhys(iova);
    if (got !== pa + (iova - va)) {
      expect.fail(
        `iova_to_phys(0x${iova.toString(16)}) = 0x${got.toString(16)}, want 0x${(pa + (iova - va)).toString(16)}`,
      );
    }
  };
  let next = va;
  pt.forEachLeaf(
    (l) => {
      const size = 2 ** l.sizeLg2;
      const s = Math.max(l.va, va);
      const e = Math.min(l.va + size, va + len);
      if (s !== next) expect.fail(`0x${next.toString(16)} is not mapped`);
      const isz = fmt.granuleLg2 + 9 * l.level;
      check(s);
      if (l.sizeLg2 > isz && e - step > s) check(e - step);
      next = e;
      // The two pages above read the run's first and last items; decode the rest.
      if (l.sizeLg2 > isz + 1) {
        if (!pt.lookup(l.va, walk)) expect.fail(`0x${l.va.toString(16)} does not walk`);
        const t = pt.mem.words(walk.leafTablePa);
        const first = walk.leafIndex - (walk.leafIndex % 2 ** (l.sizeLg2 - isz));
        for (let j = first; j < first + 2 ** (l.sizeLg2 - isz); j++) {
          if (
            fmt.load(t, j, l.level) !== EntryType.OA ||
            fmt.numContigLg2(t, j, l.level) !== l.sizeLg2 - isz ||
            fmt.entryOa(t, j, l.level) !== l.oa
          ) {
            expect.fail(`item ${j} of the 2^${l.sizeLg2} run at 0x${l.va.toString(16)} differs`);
          }
        }
      }
    },
    va,
    len,
  );
  if (next !== va + len) expect.fail(`0x${next.toString(16)} is not mapped`);
}

const walk = new WalkResult();

/** A leaf found by {@link walkLeaves} (one object, reused for every leaf). */
export interface RawLeaf {
  /** IOVA of the entry's first byte (negative in the upper half of a SIGN_EXTEND table). */
  va(): bigint;
  level: number;
  sizeLg2: number;
  oa: number;
}

/**
 * Every leaf entry in the table, found by reading every item of every table
 * from the top (not through the model's range walkers), a contiguous run once.
 */
export function walkLeaves(pt: IoPageTable, fn: (leaf: RawLeaf) => void): void {
  const fmt = pt.fmt;
  const top = pt.topLevel;
  const m = rangeMaxVaLg2(pt, top);
  const se = hasFeature(pt.features, PtFeature.SIGN_EXTEND);
  let base = 0n;
  let index = 0;
  let isz = 0;
  let atTop = false;
  const vaOf = (b: bigint, i: number, lg2: number, isTop: boolean) => {
    const va = b + (BigInt(i) << BigInt(lg2));
    return isTop && se && va >= 1n << BigInt(m - 1) ? va - (1n << BigInt(m)) : va;
  };
  const leaf: RawLeaf = {
    va: () => vaOf(base, index, isz, atTop),
    level: 0,
    sizeLg2: 0,
    oa: 0,
  };
  const visit = (t: Uint32Array, level: number, tableVa: bigint) => {
    const lg2 = fmt.granuleLg2 + 9 * level;
    const n = level === top ? 2 ** (m - lg2) : 2 ** fmt.numItemsLg2(level);
    for (let i = 0; i < n; ) {
      const type = fmt.load(t, i, level);
      if (type === EntryType.TABLE) {
        visit(pt.mem.words(fmt.tablePa(t, i)), level - 1, vaOf(tableVa, i, lg2, level === top));
        i++;
      } else if (type === EntryType.OA) {
        const c = fmt.numContigLg2(t, i, level);
        if (i % 2 ** c !== 0) expect.fail(`a contiguous run at index ${i} is not aligned`);
        base = tableVa;
        index = i;
        isz = lg2;
        atTop = level === top;
        leaf.level = level;
        leaf.sizeLg2 = lg2 + c;
        leaf.oa = fmt.entryOa(t, i, level);
        fn(leaf);
        i += 2 ** c;
      } else {
        i++;
      }
    }
  };
  visit(pt.topWords, top, 0n);
}

/** count_valids(): leaf entries per log2 size (a contiguous run counts once). */
export function countValids(pt: IoPageTable): Map<number, number> {
  const per = new Float64Array(64);
  walkLeaves(pt, (l) => {
    per[l.sizeLg2]!++;
  });
  const out = new Map<number, number>();
  for (let i = 0; i < 64; i++) if (per[i]! !== 0) out.set(i, per[i]!);
  return out;
}

/** Total of {@link countValids}. */
export function countValidsTotal(pt: IoPageTable): number {
  let n = 0;
  for (const v of countValids(pt).values()) n += v;
  return n;
}

/** count_valids_single(): only `lg2` may be present; returns its count. */
export function countValidsSingle(pt: IoPageTable, lg2: number): number {
  const per = countValids(pt);
  for (const [s, n] of per) if (s !== lg2) expect(n, `leaves of 2^${s}`).toBe(0);
  return per.get(lg2) ?? 0;
}

/** One level of {@link checkAllLevels}: the table and the index the test may use. */
export interface LevelCtx {
  level: number;
  topLevel: number;
  t: Uint32Array;
  /** 0, or 1 when index 0 holds a table and the table has more than two items. */
  index: number;
  /** end_index of the walk at this level. */
  endIndex: number;
  /** pt_table_item_lg2sz(). */
  isz: number;
  /** pt_table_oa_lg2sz(). */
  tableOaLg2: number;
}

/**
 * check_all_levels(): map one smallest page at the very top of the VA space so
 * that every level is populated, check at each level that the walk sits at the
 * last index of its table and that every non-leaf level holds a table there, and
 * call `fn` bottom-up with each table, at index 0 (or 1).
 *
 * The top of the VA space is clamped to 2^53 - 1: where the kernel's top is
 * higher (a 57- or 64-bit table) the page goes at 2^53 - smallest instead, which
 * still populates every level below the top. A growing table then tops out at the
 * level that covers 2^53, and the top-level index is that of 2^53 - 1.
 */
export function checkAllLevels(priv: KunitPriv, fn: (ctx: LevelCtx) => void): void {
  const pt = priv.pt;
  const fmt = pt.fmt;
  let range = priv.topRange();
  let last = range.last;
  if (hasFeature(pt.features, PtFeature.DYNAMIC_TOP) && pt.maxVaLg2 > range.maxVaLg2) {
    last = (1n << BigInt(pt.maxVaLg2)) - 1n;
  }
  const clamped = last > BigInt(VA_CAP);
  const lastNum = clamped ? VA_CAP : Number(last);
  const va = lastNum - (priv.smallest - 1);
  priv.doMap(va, 0, priv.smallest);

  range = priv.topRange();
  const top = pt.topLevel;
  const bva = BigInt(va);
  const visit = (level: number, t: Uint32Array) => {
    const isz = fmt.granuleLg2 + 9 * level;
    const tableOaLg2 =
      level === top ? range.maxVaLg2 : Math.min(pt.maxVaLg2, fmt.numItemsLg2(level) + isz);
    const index = Number((bva % (1n << BigInt(tableOaLg2))) >> BigInt(isz));
    let wantLast: number;
    if (clamped && level === top) {
      wantLast = Number((BigInt(VA_CAP) % (1n << BigInt(tableOaLg2))) >> BigInt(isz));
    } else if (priv.signExtend && level === top) {
      wantLast = 2 ** (pt.maxVaLg2 - 1 - isz) - 1;
    } else {
      wantLast = 2 ** (tableOaLg2 - isz) - 1;
    }
    expect(index, `index at level ${level}`).toBe(wantLast);
    const endIndex = index + 1;
    if (level > 0) {
      expect(fmt.load(t, index, level), `a table at level ${level}`).toBe(EntryType.TABLE);
      visit(level - 1, pt.mem.words(fmt.tablePa(t, index)));
      expect(index).not.toBe(0);
    }
    expect(endIndex).toBeGreaterThan(1);
    let i = 0;
    if (fmt.load(t, 0, level) === EntryType.TABLE && endIndex > 2) i = 1;
    fn({ level, topLevel: top, t, index: i, endIndex, isz, tableOaLg2 });
  };
  visit(top, pt.topWords);
}

/**
 * Runs `fn` on a fresh fixture, then the suite's exit: deinit and, unless
 * `leakCheck` is false, the check that no table page remains.
 */
export function withPriv(cfg: KunitCfg, fn: (priv: KunitPriv) => void, leakCheck = true): void {
  const priv = new KunitPriv(cfg);
  fn(priv);
  if (leakCheck) priv.destroyAndCheckLeaks();
  else priv.pt.destroy();
}

/**
 * True when the top table is narrower than the largest leaf its level offers
 * (amdv1 and the mock with hw_max_vasz 32: a 3-level table whose top has 4 or 8
 * items, while level 2 offers runs of up to 256 items). Leaves of those sizes
 * cannot fit under the top, and runs written at the top's index 0 spill over the
 * rest of the top table.
 */
export function topNarrowerThanLeaves(cfg: KunitCfg): boolean {
  const priv = new KunitPriv(cfg);
  const top = priv.pt.topLevel;
  const r = priv.topRange();
  const bits = priv.signExtend ? r.maxVaLg2 - 1 : r.maxVaLg2;
  const narrow = cfg.fmt.possibleSizes(top).some((s) => s >= bits);
  priv.pt.destroy();
  return narrow;
}

/** x rounded up to a multiple of 2^lg2 (ALIGN). */
export function alignUp(x: number, lg2: number): number {
  const s = 2 ** lg2;
  return Math.ceil(x / s) * s;
}

/** x rounded down to a multiple of 2^lg2 (log2_set_mod(x, 0, lg2)). */
export function alignDown(x: number, lg2: number): number {
  const s = 2 ** lg2;
  return Math.floor(x / s) * s;
}
