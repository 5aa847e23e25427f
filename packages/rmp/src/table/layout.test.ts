import { describe, expect, test } from "vitest";
import { DmaVerdict, PgLevel, Rmp, RmpPageSize, rmpMakePrivate, rmpMakeShared } from "../index.js";
import {
  C_GFN_HI,
  E_ASID_SHIFT,
  E_ASSIGNED,
  E_GFN_SHIFT,
  E_VALIDATED,
  RegionMode,
  W_ASID_SHIFT,
  W_ASSIGNED,
  W_FULL,
  W_GFN_HI_SHIFT,
  W_MODE,
  W_UNIFORM,
  W_VALIDATED,
} from "./store.js";

const K4 = 4096;
const M2 = 2 ** 21;
const ASID = 3;

describe("the store's word layout", () => {
  // check/dma.ts writes these as literals (so that every compile folds them): a
  // change here must be made there too.
  test("the names check/dma.ts writes as literals have the values it writes", () => {
    expect([W_MODE, RegionMode.LARGE, RegionMode.SMALL, RegionMode.UNTOUCHED]).toEqual([
      3, 1, 2, 0,
    ]);
    expect([W_ASSIGNED, W_VALIDATED, W_ASID_SHIFT, W_UNIFORM, W_GFN_HI_SHIFT, W_FULL]).toEqual([
      4, 16, 10, 4, 3, 0x400000,
    ]);
    expect([E_ASSIGNED, E_VALIDATED, E_ASID_SHIFT, E_GFN_SHIFT, C_GFN_HI]).toEqual([
      1, 2, 2, 12, 0x7ffff,
    ]);
    expect(DmaVerdict).toEqual({
      ALLOWED: 0,
      LEAF_LARGER_THAN_RMP: 1,
      LEAF_SMALLER_THAN_RMP: 2,
      NOT_ASSIGNED: 3,
      WRONG_ASID: 4,
      WRONG_GPA: 5,
      NOT_VALIDATED: 6,
      ASSIGNED_TO_GUEST: 7,
      ASSIGNED_IN_REGION: 8,
      NOT_COVERED: 9,
    });
  });

  /** Whether the SMALL region at `spa` lets a 4K check take the GFN's high bits from its record. */
  function uniform(rmp: Rmp, spa: number): boolean {
    const s = rmp.store;
    const rec = s.recordOf(spa / M2);
    expect(s.modeAt(rec)).toBe(RegionMode.SMALL);
    return (s.tab[s.dirWords + 2 * rec]! & W_UNIFORM) !== 0;
  }

  // GFN bits 38:20 of a smashed region's entries live in its record while they are
  // the same for all its assigned entries; a page mapped at another 4 GiB window of
  // GPAs makes the check read them per entry, and the fast path comes back when the
  // odd page goes.
  test("GFN bits 38:20: from the record while shared by the region's entries, per entry otherwise", () => {
    const rmp = new Rmp({ hostBytes: 64 * 2 ** 30 });
    const spa = 8 * 2 ** 30;
    const gpa = 2 ** 44 + 6 * 2 ** 30; // GFN bit 32 and bits 21:20 set
    expect(rmpMakePrivate(rmp, spa / K4, gpa, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
    expect(rmp.psmash(spa)).toBe(0);
    expect(uniform(rmp, spa)).toBe(true);
    const check = (page: number, iova: number) =>
      rmp.checkDmaTrusted(spa + page * K4 + 0x10, 12, ASID, iova + 0x10);
    expect(check(9, gpa + 9 * K4)).toBe(DmaVerdict.ALLOWED);
    // A wrong GPA differing only above bit 31 of the GFN, or only in bits 38:32.
    expect(check(9, gpa - 2 ** 44 + 9 * K4)).toBe(DmaVerdict.WRONG_GPA);
    expect(check(9, gpa + 2 ** 32 + 9 * K4)).toBe(DmaVerdict.WRONG_GPA);

    // Page 9 moves to a GPA 4 GiB higher: the region's entries no longer agree.
    const moved = gpa + 2 ** 32 + 9 * K4;
    expect(rmpMakeShared(rmp, spa / K4 + 9, PgLevel.PG_LEVEL_4K)).toBe(0);
    expect(rmpMakePrivate(rmp, spa / K4 + 9, moved, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(0);
    expect(uniform(rmp, spa)).toBe(false);
    expect(check(9, moved)).toBe(DmaVerdict.ALLOWED);
    expect(check(9, gpa + 9 * K4)).toBe(DmaVerdict.WRONG_GPA);
    expect(check(10, gpa + 10 * K4)).toBe(DmaVerdict.ALLOWED);
    expect(check(10, moved + K4)).toBe(DmaVerdict.WRONG_GPA);
    expect(rmp.lookup(spa + 9 * K4).entry.gpa).toBe(moved);
    expect(rmp.lookup(spa + 10 * K4).entry.gpa).toBe(gpa + 10 * K4);

    // Shared again: the remaining entries agree, and the record serves them again.
    expect(rmpMakeShared(rmp, spa / K4 + 9, PgLevel.PG_LEVEL_4K)).toBe(0);
    expect(uniform(rmp, spa)).toBe(true);
    expect(check(10, gpa + 10 * K4)).toBe(DmaVerdict.ALLOWED);
    expect(check(9, moved)).toBe(DmaVerdict.NOT_ASSIGNED);
  });

  test("a region assigned page by page takes the GFN bits of its first assigned page", () => {
    const rmp = new Rmp({ hostBytes: 64 * 2 ** 30 });
    const spa = 10 * 2 ** 30;
    const gpa = 2 ** 40 + 5 * 2 ** 32; // GFN 2^28 + 5 * 2^20: bits 38:20 = 0x105
    for (const p of [3, 4, 500]) {
      expect(
        rmp.rmpupdate(spa + p * K4, {
          assigned: true,
          pageSize: RmpPageSize.SIZE_4K,
          immutable: false,
          asid: ASID,
          gpa: gpa + p * K4,
        }),
      ).toBe(0);
    }
    expect(uniform(rmp, spa)).toBe(true);
    const s = rmp.store;
    expect((s.tab[s.dirWords + 2 * s.recordOf(spa / M2)]! >>> W_GFN_HI_SHIFT) & C_GFN_HI).toBe(
      0x105,
    );
    for (const p of [3, 4, 500]) {
      expect(rmp.checkDmaTrusted(spa + p * K4, 12, ASID, gpa + p * K4)).toBe(DmaVerdict.ALLOWED);
      expect(rmp.checkDmaTrusted(spa + p * K4, 12, ASID, gpa + p * K4 - 2 ** 40)).toBe(
        DmaVerdict.WRONG_GPA,
      );
    }
    expect(rmp.checkDmaTrusted(spa + 5 * K4, 12, ASID, gpa + 5 * K4)).toBe(DmaVerdict.NOT_ASSIGNED);
  });

  // A 2M leaf over a smashed region is refused without reading the 4K entry while
  // all 512 are assigned: the record's W_FULL must follow every page that leaves.
  test("W_FULL: set by PSMASH, cleared when a page leaves, set again when it returns", () => {
    const rmp = new Rmp({ hostBytes: 64 * 2 ** 30 });
    const spa = 4 * 2 ** 30;
    const gpa = 2 ** 31;
    const full = () => {
      const s = rmp.store;
      return (s.tab[s.dirWords + 2 * s.recordOf(spa / M2)]! & W_FULL) !== 0;
    };
    expect(rmpMakePrivate(rmp, spa / K4, gpa, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
    expect(rmp.psmash(spa)).toBe(0);
    expect(full()).toBe(true);
    const trusted = (p: number) => rmp.checkDmaTrusted(spa + p * K4, 21, ASID, gpa + p * K4);
    expect(trusted(3)).toBe(DmaVerdict.LEAF_LARGER_THAN_RMP);
    expect(rmp.checkDmaUntrusted(spa + 3 * K4, 12)).toBe(DmaVerdict.ASSIGNED_TO_GUEST);
    expect(rmpMakeShared(rmp, spa / K4 + 3, PgLevel.PG_LEVEL_4K)).toBe(0);
    expect(full()).toBe(false);
    expect(trusted(3)).toBe(DmaVerdict.NOT_ASSIGNED);
    expect(trusted(4)).toBe(DmaVerdict.LEAF_LARGER_THAN_RMP);
    expect(rmp.checkDmaUntrusted(spa + 3 * K4, 12)).toBe(DmaVerdict.ALLOWED);
    expect(rmp.checkDmaUntrusted(spa + 3 * K4, 21)).toBe(DmaVerdict.ASSIGNED_IN_REGION);
    const spas = Float64Array.of(spa + 3 * K4, spa + 4 * K4);
    const iovas = Float64Array.of(gpa + 3 * K4, gpa + 4 * K4);
    const verdicts = new Uint8Array(2);
    expect(rmp.checkDmaTrustedBurst(spas, iovas, 2, 21, ASID, verdicts)).toBe(2);
    expect([...verdicts]).toEqual([DmaVerdict.NOT_ASSIGNED, DmaVerdict.LEAF_LARGER_THAN_RMP]);
    expect(rmpMakePrivate(rmp, spa / K4 + 3, gpa + 3 * K4, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(
      0,
    );
    expect(full()).toBe(true);
    expect(trusted(3)).toBe(DmaVerdict.LEAF_LARGER_THAN_RMP);
    expect(rmp.checkDmaTrustedBurst(spas, iovas, 2, 21, ASID, verdicts)).toBe(2);
    expect([...verdicts]).toEqual([
      DmaVerdict.LEAF_LARGER_THAN_RMP,
      DmaVerdict.LEAF_LARGER_THAN_RMP,
    ]);
  });
});
