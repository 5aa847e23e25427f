import { describe, expect, test } from "vitest";
import { hasFeature, PageTableError, PtFeature } from "../index.js";
import {
  alignDown,
  alignUp,
  countValids,
  countValidsSingle,
  countValidsTotal,
  type KunitCfg,
  KunitPriv,
  RW,
  topNarrowerThanLeaves,
  VA_CAP,
  type VaRange,
  withPriv,
} from "./kunit.js";
import { Rng } from "./rng.js";

/**
 * The kernel's `<fmt>_iommu_test` suite (drivers/iommu/generic_pt/kunit_iommu_pt.h)
 * through mapRange / unmapRange / iovaToPhys (iommu_map, iommu_unmap,
 * iommu_iova_to_phys), for every format and KUnit configuration. Every case ends
 * with the suite's exit: deinit and no table page left.
 */

const SZ_1G = 2 ** 30;
const SZ_2G = 2 ** 31;
const SZ_16G = 2 ** 34;
/** MAPLE_RESERVED_RANGE: the maple tree keeps IOVAs at or below it for itself. */
const MAPLE_RESERVED_RANGE = 4096;

/**
 * A range's bounds as numbers: a last beyond 2^53 - 1 is clamped there, a start
 * below -(2^53 - 1) (the upper half of a 57-bit sign-extended table) moves up to
 * -2^52.
 */
function clampToNumbers(r: VaRange): { va: number; last: number } {
  const cap = BigInt(VA_CAP);
  const va = r.va < -cap ? -(2n ** 52n) : r.va;
  const last = r.last > cap ? cap : r.last;
  return { va: Number(va), last: Number(last) };
}

/** clamp_range(): at most 1G, above the maple tree's reserved range. */
function clampRange(
  priv: KunitPriv,
  r: { va: number; last: number },
): { va: number; last: number } {
  let { va, last } = r;
  if (last - va > SZ_1G) last = va + SZ_1G;
  if (va <= MAPLE_RESERVED_RANGE && va >= 0) va = alignUp(MAPLE_RESERVED_RANGE, priv.smallestLg2);
  return { va, last };
}

/** oalog2_mod(x, max_oasz) of a sign-extended IOVA. */
function oaMod(x: number, lg2: number): number {
  return Number(BigInt.asUintN(lg2, BigInt(x)));
}

/** Defines the suite for each of `cfgs` (one test file per format keeps the formats' call sites apart). */
export function defineIommuSuite(cfgs: KunitCfg[]): void {
  describe.each(cfgs)("$id iommu_test", (cfg) => {
    const narrowTop = topNarrowerThanLeaves(cfg);

    // A growing top reaches 2^57 and 2^64 in the kernel; here growth stops at the
    // level whose item covers 2^53 (the next map would need an IOVA at 2^57).
    test(`${cfg.id} test_increase_level`, (ctx) => {
      withPriv(cfg, (priv) => {
        const pt = priv.pt;
        if (!hasFeature(pt.features, PtFeature.DYNAMIC_TOP)) {
          ctx.skip("PT_FEAT_DYNAMIC_TOP not set for this format");
        }
        if (pt.maxVaLg2 <= priv.topRange().maxVaLg2) {
          ctx.skip("max_vasz_lg2 fits in starting level, no growth possible");
        }
        let grown = 0;
        while (pt.maxVaLg2 !== priv.topRange().maxVaLg2) {
          const r = priv.topRange();
          const level = pt.topLevel;
          const at = r.va === 0n ? r.last + 1n : r.va - BigInt(priv.smallest);
          if (at > BigInt(VA_CAP) - BigInt(priv.smallest)) break;
          priv.doMap(Number(at), 0, priv.smallest);
          expect(pt.topLevel).toBe(level + 1);
          expect(pt.hwInfo()).toMatchObject({ mode: pt.topLevel + 1 });
          expect(pt.maxVaLg2).toBeGreaterThanOrEqual(priv.topRange().maxVaLg2);
          grown++;
        }
        expect(grown).toBeGreaterThan(0);
      });
    });

    test(`${cfg.id} test_map_simple`, () => {
      withPriv(cfg, (priv) => {
        const pt = priv.pt;
        const base = Number(priv.topRange().va) + priv.smallest * 256;
        let cur = base;
        for (const lg2 of priv.safeSizes) {
          const paddr = alignDown(priv.testOa, lg2);
          const len = 2 ** lg2;
          cur = alignUp(cur, lg2);
          priv.doMap(cur, paddr, len);
          if (len <= SZ_2G) priv.checkIova(cur, paddr, len);
          cur += len;
        }
        // The read interface reports that every page size was created.
        const valids = countValids(pt);
        for (let lg2 = 0; lg2 < 64; lg2++) {
          expect(valids.get(lg2) ?? 0, `leaves of 2^${lg2}`).toBe(
            priv.safeSizes.includes(lg2) ? 1 : 0,
          );
        }
        cur = base;
        for (const lg2 of priv.safeSizes) {
          cur = alignUp(cur, lg2);
          priv.doUnmap(cur, 2 ** lg2);
          cur += 2 ** lg2;
        }
        expect(countValidsTotal(pt)).toBe(0);
      });
    });

    // The iommufd mock is not in the kernel's KUnit, and its 2K granule would make
    // the 8G block 4M maps per page size: it runs the case's 32-bit variant, whose
    // sizes stop below 2G (IS_32BIT ? SZ_2G : SZ_16G in the kernel).
    const blockLimit = cfg.fmt.name === "amdv1-mock" ? SZ_2G : SZ_16G;
    // With a top narrower than its leaves (amdv1_cfg_1: 32-bit VA, level 2 offering
    // runs up to 256G), the largest size below 16G is 8G, and the block the kernel
    // case maps lies at 8G, beyond the 4G of VA: iommu_map fails with -ERANGE. By
    // our reading the kernel's case fails there too; expected failure.
    const blockBeyondVa = narrowTop && blockEnd(cfg, blockLimit) > apertureLast(cfg);
    (blockBeyondVa ? test.fails : test)(`${cfg.id} test_map_table_to_oa`, () => {
      withPriv(cfg, (priv) => {
        const pt = priv.pt;
        const limited = priv.sizes.filter((s) => s < Math.log2(blockLimit));
        const maxLg2 = limited[limited.length - 1]!;
        const max = 2 ** maxLg2;
        for (const lg2 of priv.sizes) {
          if (lg2 > maxLg2) break;
          const len = 2 ** lg2;
          const paddr = alignDown(priv.testOa, lg2);
          const cur = alignUp(Number(priv.topRange().va) + priv.smallest * 256, maxLg2);
          for (let off = 0; off !== max; off += len) priv.doMap(cur + off, paddr + off, len);
          priv.checkIova(cur, paddr, max);
          expect(countValidsSingle(pt, lg2)).toBe(max / len);
          if (len === max) {
            priv.doUnmap(cur, max);
          } else {
            priv.doUnmap(cur, max / 2);
            for (let off = max / 2; off !== max; off += len) priv.doUnmap(cur + off, len);
          }
          expect(countValidsTotal(pt)).toBe(0);
        }
      });
    });

    test(`${cfg.id} test_unmap_split`, (ctx) => {
      withPriv(cfg, (priv) => {
        const pt = priv.pt;
        const vaddr = Number(priv.topRange().va);
        let count = 0;
        for (const base of priv.safeSizes) {
          for (const next of priv.safeSizes) {
            if (next <= base) continue;
            const nextLen = 2 ** next;
            priv.doMap(vaddr, 0, nextLen);
            expect(pt.unmapRange(vaddr, 2 ** base)).toBe(nextLen);
            // Unmap must not keep going into the next leaf.
            priv.doMap(vaddr, 0, nextLen);
            priv.doMap(vaddr + nextLen, 0, nextLen);
            expect(pt.unmapRange(vaddr, 2 ** base)).toBe(nextLen);
            expect(pt.unmapRange(vaddr + nextLen, nextLen)).toBe(nextLen);
            count++;
          }
        }
        if (count === 0) ctx.skip("Test needs two page sizes");
      });
    });

    // The upper half of a 57-bit sign-extended table starts at -2^56, beyond what a
    // number holds exactly: there the random window starts at -2^52 instead.
    test(`${cfg.id} test_random_map`, () => {
      withPriv(cfg, (priv) => {
        const pt = priv.pt;
        const rng = new Rng(0x5eed0000 + cfg.id.charCodeAt(cfg.id.length - 1));
        const top = clampRange(priv, clampToNumbers(priv.topRange()));
        const upper = clampRange(priv, clampToNumbers(priv.upperRange()));
        /** The maple tree: mapped [start, end) ranges. */
        let mt: [number, number][] = [];
        const unmapCollisions = (start: number, last: number) => {
          const hit = mt.filter(([s, e]) => s <= last && e - 1 >= start);
          mt = mt.filter(([s, e]) => !(s <= last && e - 1 >= start));
          for (const [s, e] of hit) {
            priv.checkIova(s, oaMod(s, pt.maxOaLg2), e - s);
            priv.doUnmap(s, e - s);
          }
        };
        let maps = 0;
        let collisions = 0;
        for (let iter = 0; iter !== 1000; iter++) {
          const range = priv.signExtend && rng.bool() ? upper : top;
          const span = BigInt(range.last) - BigInt(range.va);
          let start = rng.below(Number(span < 0xffffffffn ? span : 0xffffffffn));
          const room = BigInt.asUintN(64, BigInt(range.last) - BigInt(start));
          let end = rng.below(Number(room < 0xffffffffn ? room : 0xffffffffn));
          start = alignDown(start, priv.smallestLg2);
          end = alignUp(end, priv.smallestLg2);
          start += range.va;
          end += start;
          if (start < range.va || end > range.last + 1 || start >= end) continue;
          const paddr = oaMod(start, pt.maxOaLg2);
          try {
            pt.mapRange(start, paddr, end - start, RW);
          } catch (e) {
            // Overmapping must fail with exactly -EADDRINUSE, and change nothing.
            expect(e).toBeInstanceOf(PageTableError);
            expect((e as PageTableError).code).toBe("EADDRINUSE");
            collisions++;
            unmapCollisions(start, end - 1);
            priv.doMap(start, paddr, end - start);
          }
          mt.push([start, end]);
          maps++;
          priv.checkIova(start, paddr, end - start);
        }
        expect(maps).toBeGreaterThan(100);
        expect(collisions).toBeGreaterThan(0);
        unmapCollisions(-(2 ** 53), 2 ** 53);
        expect(countValidsTotal(pt)).toBe(0);
      });
    });

    test(`${cfg.id} test_pgsize_boundary`, (ctx) => {
      withPriv(cfg, (priv) => {
        const r = priv.topRange();
        if (r.va !== 0n || r.last < 0xfef9ffffn || priv.smallest !== 4096) {
          ctx.skip("Format does not have the required range");
        }
        priv.doMap(0xfef80000, 0x208b95d000, 0xfef9ffff - 0xfef80000 + 1);
        priv.checkIova(0xfef80000, 0x208b95d000, 0x20000);
      });
    });

    test(`${cfg.id} test_mixed`, (ctx) => {
      withPriv(cfg, (priv) => {
        const start = 0x3fe400 * 4096;
        const end = 0x4c0600 * 4096;
        const len = end - start;
        if (priv.topRange().last <= BigInt(start)) ctx.skip("range is too small");
        const mid = priv.safeSizes.filter((s) => s >= 21 && s <= 30);
        if (mid.join() !== "21,30") ctx.skip("incompatible psize");
        priv.doMap(start, start, len);
        // 14 x 2M up to 16G, 3 x 1G, 3 x 2M.
        expect(countValidsTotal(priv.pt)).toBe(20);
        const leaves: string[] = [];
        priv.pt.forEachLeaf((l) => leaves.push(`${l.va.toString(16)}:${l.sizeLg2}`));
        const want: string[] = [];
        let va = start;
        for (let i = 0; i < 14; i++, va += 2 ** 21) want.push(`${va.toString(16)}:21`);
        for (let i = 0; i < 3; i++, va += 2 ** 30) want.push(`${va.toString(16)}:30`);
        for (let i = 0; i < 3; i++, va += 2 ** 21) want.push(`${va.toString(16)}:21`);
        expect(leaves).toEqual(want);
        priv.checkIova(start, start, len);
      });
    });
  });
}

/** The aperture's last IOVA of a fresh table of `cfg`. */
function apertureLast(cfg: KunitCfg): number {
  const priv = new KunitPriv(cfg);
  const last = priv.pt.aperture.last;
  priv.pt.destroy();
  return last;
}

/** The last byte of test_map_table_to_oa's block for sizes below `limit`. */
function blockEnd(cfg: KunitCfg, limit: number): number {
  const priv = new KunitPriv(cfg);
  const limited = priv.sizes.filter((s) => s < Math.log2(limit));
  const maxLg2 = limited[limited.length - 1]!;
  const end = alignUp(Number(priv.topRange().va) + priv.smallest * 256, maxLg2) + 2 ** maxLg2 - 1;
  priv.pt.destroy();
  return end;
}
