import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { Rmp, RmpPageSize } from "../index.js";
import { RefRmp } from "../test-support/reference.js";

const K4 = 4096;
const REGIONS = 6; // a 12 MiB host keeps full comparisons cheap
const HOST = REGIONS * 2 ** 21;
const ASIDS = [1, 2];

type Op =
  | {
      k: "update";
      page: number;
      size: 0 | 1;
      assigned: boolean;
      asid: number;
      gpaShift: number;
      immutable: boolean;
    }
  | { k: "psmash"; region: number; misalign: boolean }
  | { k: "unsmash"; region: number }
  | { k: "pvalidate"; page: number; size: 0 | 1; asid: number; gpaShift: number; validate: boolean }
  | { k: "dma"; page: number; leafLg2: number; asid: number; gpaShift: number };

const page = fc.integer({ min: 0, max: REGIONS * 512 + 8 }); // a few pages beyond the host
const region = fc.integer({ min: 0, max: REGIONS });
const asid = fc.constantFrom(...ASIDS, 0);
// GPA = SPA + shift: shift 0 is the identity the tests favour; others break GPA checks.
// 2^32 and 2^44 move a page to another 4 GiB window of GPAs (GFN bit 20, bit 32): a
// smashed region then holds entries whose high GFN bits differ.
const gpaShift = fc.constantFrom(0, 0, 0, 2 ** 21, 4096, 2 ** 32, 2 ** 44);

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("update" as const),
      page,
      size: fc.constantFrom(0 as const, 1 as const),
      assigned: fc.boolean(),
      asid,
      gpaShift,
      immutable: fc.constantFrom(false, false, false, false, true),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant("psmash" as const), region, misalign: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("unsmash" as const), region }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("pvalidate" as const),
      page,
      size: fc.constantFrom(0 as const, 1 as const),
      asid,
      gpaShift,
      validate: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("dma" as const),
      page,
      leafLg2: fc.constantFrom(12, 16, 21, 22, 30),
      asid,
      gpaShift,
    }),
  },
);

function spaOf(p: number, size: 0 | 1): number {
  return size === 1 ? Math.floor(p / 512) * 2 ** 21 : p * K4;
}

function apply(rmp: Rmp, ref: RefRmp, o: Op): [number, number] {
  switch (o.k) {
    case "update": {
      const spa = spaOf(o.page, o.size);
      const st = {
        assigned: o.assigned,
        pageSize: o.size,
        immutable: o.immutable,
        asid: o.assigned ? o.asid : 0,
        gpa: o.assigned ? spa + o.gpaShift : 0,
      };
      return [rmp.rmpupdate(spa, st), ref.rmpupdate(spa, st)];
    }
    case "psmash": {
      const spa = o.region * 2 ** 21 + (o.misalign ? K4 : 0);
      return [rmp.psmash(spa), ref.psmash(spa)];
    }
    case "unsmash":
      return [rmp.unsmash(o.region * 2 ** 21), ref.unsmash(o.region * 2 ** 21)];
    case "pvalidate": {
      const spa = spaOf(o.page, o.size);
      const a = { asid: o.asid, gpa: spa + o.gpaShift, pageSize: o.size, validate: o.validate };
      if (a.asid === 0) return [0, 0];
      return [rmp.pvalidate(spa, a), ref.pvalidate(spa, a)];
    }
    case "dma": {
      const spa = o.page * K4 + 0x10;
      return [
        rmp.checkDmaTrusted(spa, o.leafLg2, o.asid, spa + o.gpaShift),
        ref.dmaTrusted(spa, o.leafLg2, o.asid, spa + o.gpaShift),
      ];
    }
  }
}

function sameEntries(rmp: Rmp, ref: RefRmp, pages: Iterable<number>): void {
  // Collect differences and assert once: expect() per page is what would be slow.
  const diffs: string[] = [];
  for (const p of pages) {
    if (p * K4 >= HOST) continue;
    const { entry, level } = rmp.lookup(p * K4);
    const r = ref.get(p);
    const refLevel = ref.get(p - (p % 512)).size2M ? RmpPageSize.SIZE_2M : RmpPageSize.SIZE_4K;
    const got = `${level}${+entry.assigned}${+entry.immutable}${+entry.validated}/${entry.asid}/${entry.gpa}`;
    const want = `${refLevel}${+r.assigned}${+r.immutable}${+r.validated}/${r.asid}/${r.gfn * K4}`;
    if (got !== want) diffs.push(`page ${p}: model ${got}, reference ${want}`);
  }
  expect(diffs).toEqual([]);
}

/**
 * The trusted DMA verdict of every page of the host (and a few beyond it), model
 * against reference, for 4K and 2M leaves, both guests, the right GPA and wrong
 * ones (another page, another 4 GiB or 16 TiB window of GPAs): a sequence's single
 * DMA ops rarely land on the 4K entries it made. Then the untrusted verdict of a
 * few pages of each region, through 4K and 2M leaves.
 */
function sameDmaVerdicts(rmp: Rmp, ref: RefRmp): void {
  const diffs: string[] = [];
  for (let p = 0; p < REGIONS * 512 + 8; p++) {
    const spa = p * K4 + 0x10;
    for (const leafLg2 of [12, 21]) {
      for (const a of ASIDS) {
        for (const shift of [0, K4, 2 ** 32, 2 ** 44]) {
          const got = rmp.checkDmaTrusted(spa, leafLg2, a, spa + shift);
          const want = ref.dmaTrusted(spa, leafLg2, a, spa + shift);
          if (got !== want)
            diffs.push(`page ${p} leaf ${leafLg2} asid ${a} +${shift}: ${got} vs ${want}`);
        }
      }
    }
  }
  for (let r = 0; r <= REGIONS; r++) {
    for (const page of [0, 1, 7, 255, 511]) {
      const spa = (r * 512 + page) * K4 + 0x10;
      for (const leafLg2 of [12, 21, 30]) {
        const got = rmp.checkDmaUntrusted(spa, leafLg2);
        const want = ref.dmaUntrusted(spa, leafLg2);
        if (got !== want)
          diffs.push(`untrusted page ${r * 512 + page} leaf ${leafLg2}: ${got} vs ${want}`);
      }
    }
  }
  expect(diffs.slice(0, 5)).toEqual([]);
}

function touched(o: Op): number[] {
  const r = "region" in o ? o.region : Math.floor(o.page / 512);
  return Array.from({ length: 512 }, (_, i) => r * 512 + i);
}

describe("the RMP model against a one-record-per-page reference", () => {
  test("random instruction sequences: same status codes, same effective entries, same DMA verdicts", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const rmp = new Rmp({ hostBytes: HOST });
        const ref = new RefRmp(HOST);
        for (const o of ops) {
          const [got, want] = apply(rmp, ref, o);
          expect(got, JSON.stringify(o)).toBe(want);
          sameEntries(rmp, ref, touched(o));
        }
        sameEntries(
          rmp,
          ref,
          Array.from({ length: REGIONS * 512 }, (_, i) => i),
        );
        sameDmaVerdicts(rmp, ref);
      }),
      { seed: 0x5e5, numRuns: 120 },
    );
  });

  test("invariant: a 2M entry never coexists with a differently-sized assigned entry in its region", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const rmp = new Rmp({ hostBytes: HOST });
        const ref = new RefRmp(HOST);
        for (const o of ops) apply(rmp, ref, o);
        for (let r = 0; r < REGIONS; r++) {
          const level = rmp.lookup(r * 2 ** 21).level;
          for (let i = 0; i < 512; i++) {
            const { entry, level: l } = rmp.lookup(r * 2 ** 21 + i * K4);
            expect(l).toBe(level);
            if (entry.assigned) expect(entry.pageSize).toBe(level);
          }
        }
      }),
      { seed: 0x2b, numRuns: 60 },
    );
  });

  test("PSMASH then lookup gives 512 4K entries with the old fields; unsmash restores the fingerprint", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: REGIONS - 1 }),
        fc.constantFrom(...ASIDS),
        fc.boolean(),
        (r, a, validated) => {
          const rmp = new Rmp({ hostBytes: HOST });
          const spa = r * 2 ** 21;
          expect(
            rmp.rmpupdate(spa, {
              assigned: true,
              pageSize: 1,
              immutable: false,
              asid: a,
              gpa: spa + 2 ** 30,
            }),
          ).toBe(0);
          if (validated)
            expect(
              rmp.pvalidate(spa, { asid: a, gpa: spa + 2 ** 30, pageSize: 1, validate: true }),
            ).toBe(0);
          const before = rmp.fingerprint();
          expect(rmp.psmash(spa)).toBe(0);
          for (let i = 0; i < 512; i++) {
            const e = rmp.lookup(spa + i * K4).entry;
            expect([e.assigned, e.pageSize, e.asid, e.gpa, e.validated]).toEqual([
              true,
              0,
              a,
              spa + 2 ** 30 + i * K4,
              validated,
            ]);
          }
          expect(rmp.unsmash(spa)).toBe(0);
          expect(rmp.fingerprint()).toBe(before);
          expect(rmp.stats().regionsSmall).toBe(0);
        },
      ),
      { seed: 7, numRuns: 40 },
    );
  });
});
