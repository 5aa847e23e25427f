import { describe, expect, test } from "vitest";
import {
  computeBestPgsize,
  EntryType,
  ffs32,
  ffs64,
  ffz32,
  ffz64,
  fls32,
  fls64,
  IommuProt,
  type PtFormat,
} from "../index.js";
import { rangeMaxVaLg2 } from "../iter/geometry.js";
import {
  alignDown,
  checkAllLevels,
  KUNIT_CFGS,
  type KunitCfg,
  type LevelCtx,
  topNarrowerThanLeaves,
  withPriv,
} from "../test-support/kunit.js";
import { Rng } from "../test-support/rng.js";

/**
 * The kernel's `<fmt>_fmt_test` suite (drivers/iommu/generic_pt/kunit_generic_pt.h),
 * case by case and configuration by configuration, against the format objects
 * and the table geometry of this model.
 */

const R = IommuProt.READ;
const W = IommuProt.WRITE;
/** IOMMU_READ | WRITE | CACHE | NOEXEC | MMIO: the prot range test_attr_from_entry sweeps. */
const PROT_SWEEP_MAX = 0x1f;

/** The word pair of item `i`. */
function item(t: Uint32Array, i: number): [number, number] {
  return [t[2 * i]!, t[2 * i + 1]!];
}

/** x mod 2^lg2 on a BigInt (log2_mod). */
function mod2(x: bigint, lg2: number): bigint {
  return x & ((1n << BigInt(lg2)) - 1n);
}

/**
 * The kunit's ref_best_pgsize(): brute force over every size, on BigInts, the
 * constraints pt_compute_best_pgsize() promises.
 */
function refBestPgsize(bitmap: bigint, va: bigint, last: bigint, oa: bigint): number {
  for (let lg2 = 63; lg2 !== 0; lg2--) {
    const sz = 1n << BigInt(lg2);
    if (
      (bitmap & sz) !== 0n &&
      mod2(va, lg2) === 0n &&
      mod2(oa, lg2) === 0n &&
      va + sz - 1n <= last
    )
      return lg2;
  }
  return 0;
}

/** A membership table (the model's bitmap form) of a 64-bit bitmap. */
function sizesOf(bitmap: bigint): Uint8Array {
  const m = new Uint8Array(64);
  for (let i = 0; i < 64; i++) if ((bitmap >> BigInt(i)) & 1n) m[i] = 1;
  return m;
}

/** A random value below 2^53 with its low `lg2` bits clear ("get_random_u64() << lg2", cut to 53 bits). */
function randShifted(rng: Rng, lg2: number): bigint {
  return mod2(rng.u64() << BigInt(lg2), 53);
}

function checkBest(bitmap: bigint, va: bigint, last: bigint, oa: bigint): void {
  const got = computeBestPgsize(sizesOf(bitmap), Number(va), Number(last), Number(oa));
  const want = refBestPgsize(bitmap, va, last, oa);
  if (got !== want) {
    expect.fail(
      `best_pgsize(bitmap=0x${bitmap.toString(16)}, va=0x${va.toString(16)}, last=0x${last.toString(16)}, oa=0x${oa.toString(16)}) = ${got}, reference ${want}`,
    );
  }
}

function lvlTablePtr(fmt: PtFormat, paddr: number, c: LevelCtx): void {
  if (c.level === 0) return; // pt_can_have_table()
  const attrs = new Uint32Array(2);
  expect(fmt.setProt(R, 0, attrs)).toBeNull();
  const t = c.t;
  const i = c.index;
  expect(fmt.load(t, i, c.level)).toBe(EntryType.EMPTY);
  expect(fmt.installTable(t, i, c.level, paddr, 0, 0)).toBe(true);
  // The second install passes because it compares against the updated entry.
  const [lo, hi] = item(t, i);
  expect(fmt.installTable(t, i, c.level, paddr, lo, hi)).toBe(true);
  // And a stale expectation is a lost cmpxchg.
  expect(fmt.installTable(t, i, c.level, paddr, 0, 0)).toBe(false);
  expect(fmt.load(t, i, c.level)).toBe(EntryType.TABLE);
  expect(fmt.tablePa(t, i)).toBe(paddr);
  // The walks' decode: the 4 KiB frame number as two 20-bit halves.
  expect(fmt.tableFrameHi(t, i) * 2 ** 32 + fmt.tableFrameLo(t, i) * 4096).toBe(
    paddr - (paddr % 4096),
  );
  fmt.clearEntries(t, i, 0);
  expect(fmt.load(t, i, c.level)).toBe(EntryType.EMPTY);
}

/** sweep_all_pgsizes(): every possible size installed at index 0 and read back item by item. */
function sweepAllPgsizes(fmt: PtFormat, c: LevelCtx, attrs: Uint32Array, testOa: number): void {
  if (c.index !== 0) return;
  const t = c.t;
  for (const lenLg2 of fmt.possibleSizes(c.level)) {
    const oaddr = alignDown(testOa, lenLg2);
    fmt.installLeaf(t, 0, c.level, oaddr, lenLg2, attrs);
    const items = 2 ** (lenLg2 - c.isz);
    for (let sub = 0; sub !== items; sub++) {
      expect(fmt.load(t, sub, c.level)).toBe(EntryType.OA);
      // pt_item_oa(): the entry OA plus the item's place in the run.
      const runStart = sub - (sub % 2 ** fmt.numContigLg2(t, sub, c.level));
      expect(fmt.entryOa(t, sub, c.level) + (sub - runStart) * 2 ** c.isz).toBe(
        oaddr + sub * 2 ** c.isz,
      );
      expect(fmt.entryOa(t, sub, c.level)).toBe(oaddr);
      expect(fmt.numContigLg2(t, sub, c.level)).toBe(lenLg2 - c.isz);
    }
    fmt.clearEntries(t, 0, lenLg2 - c.isz);
    expect(fmt.load(t, 0, c.level)).toBe(EntryType.EMPTY);
    if (items < 512) expect(fmt.load(t, items, c.level)).toBe(EntryType.EMPTY);
  }
}

function lvlPossibleSizes(cfg: KunitCfg, pt: LevelCtxTable, c: LevelCtx): void {
  const fmt = cfg.fmt;
  // safe_pt_num_items_lg2(): the top table's size comes from the top range.
  const numItemsLg2 = c.level === c.topLevel ? pt.topItemsLg2 - c.isz : fmt.numItemsLg2(c.level);
  const sizes = fmt.possibleSizes(c.level);
  if (!fmt.canHaveLeaf(c.level)) {
    expect(sizes).toEqual([]);
    return;
  }
  // No sizes outside this table.
  for (const s of sizes) {
    expect(s, `2^${s} at level ${c.level}`).toBeGreaterThanOrEqual(c.isz);
    expect(s, `2^${s} at level ${c.level}`).toBeLessThan(numItemsLg2 + c.isz);
  }
  // The single-item size is always there, except at the AMD v1 level whose
  // item is 512G (bitmap 0xff0000000000: "not supported due to a hardware bug").
  const amdException =
    fmt.name === "amdv1" && sizes.join() === [40, 41, 42, 43, 44, 45, 46, 47].join();
  if (!amdException) expect(sizes).toContain(c.isz);
  else expect(sizes.length).not.toBe(0);
  // A contiguous entry never spans the whole table.
  if (numItemsLg2 + c.isz !== 64) expect(sizes).not.toContain(numItemsLg2 + c.isz);
}

interface LevelCtxTable {
  /** log2 of the top range's span in the top table's units (the lower half with SIGN_EXTEND). */
  topItemsLg2: number;
}

describe.each(KUNIT_CFGS)("$id fmt_test", (cfg) => {
  const fmt = cfg.fmt;

  test(`${cfg.id} test_init`, () => {
    withPriv(cfg, (priv) => {
      expect(priv.pt.pgsizeBitmap).not.toBe(0);
    });
  });

  test(`${cfg.id} test_bitops`, () => {
    expect(fls32(0)).toBe(0);
    expect(fls32(1)).toBe(1);
    expect(fls32(1 << 2)).toBe(3);
    expect(fls32(0xffffffff)).toBe(32);
    expect(fls64(0, 0)).toBe(0);
    expect(fls64(1, 0)).toBe(1);
    expect(fls64(1 << 2, 0)).toBe(3);
    expect(fls64(0xffffffff, 0xffffffff)).toBe(64);
    expect(ffs32(1)).toBe(0);
    expect(ffs32(1 << 2)).toBe(2);
    expect(ffs32(1 << 31)).toBe(31);
    expect(ffs64(1, 0)).toBe(0);
    expect(ffs64(1 << 2, 0)).toBe(2);
    expect(ffs64(0, 1 << 31)).toBe(63);
    for (let i = 0; i !== 31; i++) expect(ffz32(2 ** i - 1)).toBe(i);
    for (let i = 0; i !== 63; i++) {
      const v = (1n << BigInt(i)) - 1n;
      expect(ffz64(Number(v & 0xffffffffn), Number(v >> 32n))).toBe(i);
    }
    const rng = new Rng(0xb17095);
    for (let i = 0; i !== 32; i++) {
      const v = rng.u64();
      const lo = Number(v & 0xffffffffn);
      const hi = Number(v >> 32n);
      // log2_mod(v, ffs(v)) == 0; log2_mod(v, ffz(v)) == all ones below ffz.
      expect(mod2(v & 0xffffffffn, ffs32(lo))).toBe(0n);
      expect(mod2(v, ffs64(lo, hi))).toBe(0n);
      expect(mod2(v & 0xffffffffn, ffz32(lo))).toBe((1n << BigInt(ffz32(lo))) - 1n);
      expect(mod2(v, ffz64(lo, hi))).toBe((1n << BigInt(ffz64(lo, hi))) - 1n);
    }
  });

  // VAs and OAs stop at 2^53 here: the kernel's random u64 values are cut to 53 bits
  // and its all-ones prefix is 2^53 - 1; bitmaps keep all 64 bits.
  test(`${cfg.id} test_best_pgsize`, () => {
    const rng = new Rng(0xbe57 + cfg.id.length);
    for (let a = 1; a !== 10; a++) {
      for (let b = 1; b !== 10; b++) {
        for (let c = 1; c !== 10; c++) {
          const bitmap = rng.u64();
          let va = randShifted(rng, a);
          const oa = randShifted(rng, b);
          let last = mod2(rng.u64(), 53) | ((1n << BigInt(c)) - 1n);
          if (va > last) [va, last] = [last, va];
          checkBest(bitmap, va, last, oa);
        }
      }
    }
    // 0 prefix, every suffix.
    for (let c = 1; c !== 53; c++) checkBest(rng.u64(), 0n, (1n << BigInt(c)) - 1n, 0n);
    // All-ones prefix, every suffix.
    const MAX = (1n << 53n) - 1n;
    for (let a = 1; a !== 10; a++) {
      for (let b = 1; b !== 10; b++) {
        for (let c = 1; c !== 10; c++) {
          checkBest(rng.u64(), mod2(MAX << BigInt(a), 53), MAX, mod2(MAX << BigInt(b), 53));
        }
      }
    }
    // An empty bitmap never yields a size.
    for (let a = 1; a !== 10; a++) {
      for (let b = 1; b !== 10; b++) {
        for (let c = 1; c !== 10; c++) {
          let va = randShifted(rng, a);
          const oa = randShifted(rng, b);
          let last = mod2(rng.u64(), 53) | ((1n << BigInt(c)) - 1n);
          if (va > last) [va, last] = [last, va];
          expect(computeBestPgsize(sizesOf(0n), Number(va), Number(last), Number(oa))).toBe(0);
        }
      }
    }
    // Page sizes over 32 bits.
    for (let a = 32; a !== 42; a++) {
      for (let b = 32; b !== 42; b++) {
        for (let c = 32; c !== 42; c++) {
          const bitmap = rng.u64();
          let va = randShifted(rng, a);
          const oa = randShifted(rng, b);
          let last = mod2(rng.u64(), 53) | ((1n << BigInt(c)) - 1n);
          if (va > last) [va, last] = [last, va];
          checkBest(bitmap, va, last, oa);
        }
      }
    }
  });

  test(`${cfg.id} test_table_ptr`, () => {
    withPriv(cfg, (priv) => {
      const paddr = alignDown(priv.testOa, priv.smallestLg2);
      let levels = 0;
      checkAllLevels(priv, (c) => {
        levels++;
        lvlTablePtr(fmt, paddr, c);
      });
      expect(levels).toBe(priv.pt.topLevel + 1);
    });
  });

  test(`${cfg.id} test_max_va`, () => {
    withPriv(cfg, (priv) => {
      expect(priv.pt.maxVaLg2).toBeGreaterThanOrEqual(priv.topRange().maxVaLg2);
    });
  });

  test(`${cfg.id} test_table_radix`, () => {
    withPriv(cfg, (priv) => {
      const pt = priv.pt;
      let vbits = BigInt(priv.smallest) - 1n;
      checkAllLevels(priv, (c) => {
        // The model's geometry, checked against the format's.
        expect(pt.itemLg2[c.level]).toBe(c.isz);
        // Every bit below us is decoded, and nothing we decode is decoded below.
        expect((1n << BigInt(c.isz)) - 1n).toBe(vbits);
        expect(vbits >> BigInt(c.isz)).toBe(0n);
        // Nothing past the VA type or the format's VA width.
        expect(c.tableOaLg2).toBeLessThanOrEqual(64);
        expect(c.tableOaLg2).toBeLessThanOrEqual(fmt.maxVaLg2);
        vbits = (1n << BigInt(c.tableOaLg2)) - 1n;
      });
      const range = priv.topRange();
      if (range.maxVaLg2 === 64) {
        expect(vbits).toBe((1n << 64n) - 1n);
      } else {
        expect(vbits).toBe((1n << BigInt(range.maxVaLg2)) - 1n);
        expect(vbits >> BigInt(range.maxVaLg2)).toBe(0n);
      }
    });
  });

  // amdv1_cfg_1 (and the mock with the same cfg): hw_max_vasz 32 makes level 2
  // the top, only 4 (mock: 8) items wide, yet amdv1pt_possible_sizes() offers runs
  // of up to 256 items there (1G..256G; mock 512M..128G). By our reading of
  // kunit_generic_pt.h the kernel's own "no sizes outside this table" assertion
  // fails on this configuration too. The model keeps the kernel's format, so the
  // case is an expected failure; and test_entry_oa / test_attr_from_entry /
  // test_dirty, which install those runs at the top's index 0, overwrite the top
  // item leading to the page check_all_levels mapped, losing the tables below it
  // (the kernel's fmt suite has no leak check): no leak check there.
  const narrowTop = topNarrowerThanLeaves(cfg);
  (narrowTop ? test.fails : test)(`${cfg.id} test_entry_possible_sizes`, () => {
    withPriv(cfg, (priv) => {
      checkAllLevels(priv, (c) => {
        const m = rangeMaxVaLg2(priv.pt, c.topLevel);
        lvlPossibleSizes(cfg, { topItemsLg2: priv.signExtend ? m - 1 : m }, c);
      });
    });
  });

  test(`${cfg.id} test_entry_oa`, () => {
    withPriv(
      cfg,
      (priv) => {
        let swept = 0;
        checkAllLevels(priv, (c) => {
          if (!fmt.canHaveLeaf(c.level)) return;
          const attrs = new Uint32Array(2);
          expect(fmt.setProt(R, priv.pt.features, attrs)).toBeNull();
          if (c.index === 0) swept++;
          sweepAllPgsizes(fmt, c, attrs, priv.testOa);
          // The table can store the boundary OAs.
          sweepAllPgsizes(fmt, c, attrs, 0);
          sweepAllPgsizes(fmt, c, attrs, 2 ** priv.pt.maxOaLg2 - 1);
        });
        expect(swept).toBeGreaterThan(0);
      },
      !narrowTop,
    );
  });

  test(`${cfg.id} test_attr_from_entry`, () => {
    withPriv(
      cfg,
      (priv) => {
        checkAllLevels(priv, (c) => {
          if (!fmt.canHaveLeaf(c.level)) return;
          const t = c.t;
          const i = c.index;
          for (const lenLg2 of fmt.possibleSizes(c.level)) {
            for (let prot = 0; prot <= PROT_SWEEP_MAX; prot++) {
              const attrs = new Uint32Array(2);
              if (fmt.setProt(prot, priv.pt.features, attrs) !== null) {
                // A format may refuse a combination, but never READ|WRITE.
                expect(prot).not.toBe(R | W);
                continue;
              }
              // The run must start aligned: at index 1 only single items fit.
              if (i % 2 ** (lenLg2 - c.isz) !== 0) continue;
              const oaddr = alignDown(priv.testOa, lenLg2);
              fmt.installLeaf(t, i, c.level, oaddr, lenLg2, attrs);
              expect(fmt.load(t, i, c.level)).toBe(EntryType.OA);
              const good = item(t, i);
              attrs.fill(0);
              fmt.attrFromEntry(t, i, attrs);
              fmt.clearEntries(t, i, lenLg2 - c.isz);
              expect(fmt.load(t, i, c.level)).toBe(EntryType.EMPTY);
              fmt.installLeaf(t, i, c.level, oaddr, lenLg2, attrs);
              expect(fmt.load(t, i, c.level)).toBe(EntryType.OA);
              expect(item(t, i)).toEqual(good);
              fmt.clearEntries(t, i, lenLg2 - c.isz);
            }
          }
        });
      },
      !narrowTop,
    );
  });

  if (fmt.hasDirty) {
    test(`${cfg.id} test_dirty`, () => {
      withPriv(
        cfg,
        (priv) => {
          checkAllLevels(priv, (c) => {
            if (!fmt.canHaveLeaf(c.level)) return;
            const t = c.t;
            const start = c.index;
            const attrs = new Uint32Array(2);
            expect(fmt.setProt(R | W, priv.pt.features, attrs)).toBeNull();
            for (const lenLg2 of fmt.possibleSizes(c.level)) {
              const items = 2 ** (lenLg2 - c.isz);
              if (start % items !== 0) continue;
              fmt.installLeaf(t, start, c.level, alignDown(priv.testOa, lenLg2), lenLg2, attrs);
              expect(fmt.load(t, start, c.level)).toBe(EntryType.OA);
              fmt.makeWriteClean(t, start, c.level);
              expect(fmt.isWriteDirty(t, start, c.level)).toBe(false);
              for (let k = 0; k !== items; k++) {
                // Dirty each item of the run in turn; the entry reads dirty from its start.
                const [lo, hi] = item(t, start + k);
                expect(fmt.makeWriteDirty(t, start + k, lo, hi)).toBe(true);
                expect(fmt.isWriteDirty(t, start, c.level)).toBe(true);
                fmt.makeWriteClean(t, start, c.level);
                expect(fmt.isWriteDirty(t, start, c.level)).toBe(false);
              }
              fmt.clearEntries(t, start, lenLg2 - c.isz);
            }
          });
        },
        !narrowTop,
      );
    });
  } else {
    test(`${cfg.id} test_dirty is not built (no dirty bit)`, () => {
      withPriv(cfg, (priv) => {
        priv.doMap(0, 0, priv.smallest);
        expect(() => priv.pt.readAndClearDirty(0, priv.smallest, 0, null)).toThrow(
          expect.objectContaining({ code: "EOPNOTSUPP" }),
        );
      });
    });
  }
});
