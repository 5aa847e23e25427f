import { describe, expect, test } from "vitest";
import {
  IommuProt,
  IoPageTable,
  type IoPageTableConfig,
  PageTableError,
  TableMemory,
} from "../index.js";

/**
 * Fault injection: for each scenario, fail the n-th table allocation for every n
 * until the scenario runs clean. The call must fail with ENOMEM; the calls that
 * are all or nothing (mapRange, splitRange, cut, collapseRange) must change no
 * translation; map_pages keeps exactly the prefix it reports in `mapped`; and
 * after destroy no table page is left.
 */

const RW = IommuProt.READ | IommuProt.WRITE;
const SZ_4K = 2 ** 12;
const SZ_2M = 2 ** 21;
const SZ_1G = 2 ** 30;

/** Every leaf as text: what the table translates, ignoring empty tables. */
function translations(pt: IoPageTable): string {
  const out: string[] = [];
  pt.forEachLeaf((l) => out.push(`${l.va}:${l.sizeLg2}:${l.oa}:${l.readable}${l.writable}`));
  return out.join(" ");
}

interface Scenario {
  name: string;
  config: IoPageTableConfig;
  /** Builds the starting state (allocations here are not injected). */
  setup(pt: IoPageTable): void;
  /** The call under test. */
  run(pt: IoPageTable): void;
  /** All or nothing: a failure changes no translation. Else map_pages' prefix rule. */
  atomic: boolean;
  /** For map_pages: the range mapped and where it maps to. */
  map?: { va: number; pa: number; len: number };
  /** Raw fingerprint unchanged too (nothing was linked before the failure). */
  samePrint?: boolean;
  /** Fewest allocations the scenario needs (so the loop really injected). */
  minAllocs: number;
}

const FORMATS: [string, IoPageTableConfig][] = [
  ["amdv1", { format: "amdv1" }],
  ["x86_64", { format: "x86_64", hwMaxVaLg2: 48 }],
  ["vtdss", { format: "vtdss", hwMaxVaLg2: 48 }],
];

function scenarios(): Scenario[] {
  const out: Scenario[] = [];
  for (const [name, config] of FORMATS) {
    const base = { config, setup: () => {} };
    out.push({
      ...base,
      name: `${name} map one 4K page into an empty table`,
      run: (pt) => pt.map(0x7f_1234_5000, 0x9000, SZ_4K, RW),
      atomic: false,
      map: { va: 0x7f_1234_5000, pa: 0x9000, len: SZ_4K },
      minAllocs: 2,
    });
    out.push({
      ...base,
      name: `${name} map one 2M leaf`,
      run: (pt) => pt.map(0x7f_0020_0000, SZ_1G, SZ_2M, RW),
      atomic: false,
      map: { va: 0x7f_0020_0000, pa: SZ_1G, len: SZ_2M },
      minAllocs: 1,
    });
    // 4K-misaligned PA against a 2M-aligned IOVA: 4K leaves through 33 level-0 tables.
    out.push({
      name: `${name} map 64M + 4K of 4K leaves across 33 tables`,
      config,
      setup: (pt) => pt.map(0x4000_0000 - SZ_4K, 0x5000_0000, SZ_4K, RW),
      run: (pt) => pt.map(0x4000_0000, 0x1000_1000, 64 * 2 ** 20 + SZ_4K, RW),
      atomic: false,
      map: { va: 0x4000_0000, pa: 0x1000_1000, len: 64 * 2 ** 20 + SZ_4K },
      minAllocs: 33,
    });
    out.push({
      name: `${name} mapRange of 6M + 12K needing level-1 and level-0 tables`,
      config,
      setup: (pt) => pt.map(0x10_0000_0000, 0x7000_0000, SZ_4K, RW),
      run: (pt) => pt.mapRange(0x20_001f_d000, 0x3_001f_d000, 6 * 2 ** 20 + 3 * SZ_4K, RW),
      atomic: true,
      minAllocs: 2,
    });
    out.push({
      name: `${name} mapRange over many tables (128M, PA 4K-misaligned for 2M)`,
      config,
      setup: () => {},
      run: (pt) => pt.mapRange(0x8000_0000, 0x1_0000_1000, 128 * 2 ** 20, RW),
      atomic: true,
      minAllocs: 64,
    });
    out.push({
      name: `${name} splitRange of a 1G leaf to 4K`,
      config,
      setup: (pt) => pt.map(SZ_1G, 2 * SZ_1G, SZ_1G, RW),
      run: (pt) => {
        pt.splitRange(SZ_1G, SZ_1G, SZ_4K);
      },
      atomic: true,
      samePrint: true,
      minAllocs: 513,
    });
    out.push({
      name: `${name} cut a 1G leaf at 1G + 2M + 4K`,
      config,
      setup: (pt) => pt.map(SZ_1G, 2 * SZ_1G, SZ_1G, RW),
      run: (pt) => {
        pt.cut(SZ_1G + SZ_2M + SZ_4K);
      },
      atomic: true,
      samePrint: true,
      minAllocs: 2,
    });
  }
  out.push({
    name: "amdv1 cut a 4M contiguous run at 1M (a run rewritten and a table built)",
    config: { format: "amdv1" },
    setup: (pt) => pt.map(0x40_0000, 0x80_0000, 4 * 2 ** 20, RW),
    run: (pt) => {
      pt.cut(0x40_0000 + 2 ** 20);
    },
    atomic: true,
    samePrint: true,
    minAllocs: 1,
  });
  out.push({
    name: "amdv1 map 16K contiguous leaf into an empty table",
    config: { format: "amdv1" },
    setup: () => {},
    run: (pt) => pt.map(0x1_0001_0000, 0x4000, 4 * SZ_4K, RW),
    atomic: false,
    map: { va: 0x1_0001_0000, pa: 0x4000, len: 4 * SZ_4K },
    minAllocs: 2,
  });
  out.push({
    name: "amdv1 DYNAMIC_TOP growth from level 2 to level 4 with a 4K map at 2^50",
    config: { format: "amdv1" },
    setup: (pt) => pt.map(0x1000, 0x1000, SZ_4K, RW),
    run: (pt) => pt.map(2 ** 50, 0x2000, SZ_4K, RW),
    atomic: false,
    map: { va: 2 ** 50, pa: 0x2000, len: SZ_4K },
    minAllocs: 6,
  });
  out.push({
    name: "amdv1-mock map 2K pages across tables",
    config: { format: "amdv1-mock" },
    setup: () => {},
    run: (pt) => pt.map(0x10_0000_0000 - 2 ** 11, 0x800, 4 * 2 ** 11, RW),
    atomic: false,
    map: { va: 0x10_0000_0000 - 2 ** 11, pa: 0x800, len: 4 * 2 ** 11 },
    minAllocs: 3,
  });
  return out;
}

describe.each(scenarios())("$name", (sc) => {
  test(`fails with ENOMEM at every allocation, ${sc.atomic ? "changing nothing" : "keeping the reported prefix"}`, () => {
    // One allocator for every attempt: each table is destroyed before the next.
    const mem = new TableMemory();
    let n = 1;
    for (; ; n++) {
      const pt = new IoPageTable({ ...sc.config, memory: mem });
      sc.setup(pt);
      const before = translations(pt);
      const print = pt.fingerprint();
      const top = pt.topLevel;
      mem.failNth(n);
      let err: unknown = null;
      try {
        sc.run(pt);
      } catch (e) {
        err = e;
      }
      if (err === null) {
        // The scenario ran clean: the n-th allocation was never asked for.
        expect(mem.failPending).toBe(true);
        mem.failNth(0);
        pt.destroy();
        expect(mem.inUse).toBe(0);
        break;
      }
      expect(mem.failPending).toBe(false);
      expect(err).toBeInstanceOf(PageTableError);
      expect((err as PageTableError).code).toBe("ENOMEM");
      if (sc.atomic) {
        expect(translations(pt), `n=${n}`).toBe(before);
        if (sc.samePrint) expect(pt.fingerprint(), `n=${n}`).toBe(print);
      } else {
        // map_pages: the reported prefix is mapped, the rest of the range is not,
        // and nothing outside it changed.
        const m = sc.map!;
        const mapped = (err as PageTableError).mapped;
        expect(mapped % SZ_4K === 0 || mapped % 2 ** 11 === 0).toBe(true);
        expect(mapped).toBeLessThan(m.len);
        const leaves: string[] = [];
        pt.forEachLeaf((l) => {
          if (l.va >= m.va && l.va < m.va + m.len) {
            if (l.va + 2 ** l.sizeLg2 > m.va + mapped || l.oa !== m.pa + (l.va - m.va)) {
              expect.fail(
                `n=${n}: a leaf at 0x${l.va.toString(16)} beyond the prefix or misplaced`,
              );
            }
          } else {
            leaves.push(`${l.va}:${l.sizeLg2}:${l.oa}:${l.readable}${l.writable}`);
          }
        });
        expect(leaves.join(" ")).toBe(before);
        for (let off = 0; off < m.len; off += m.len / 4) {
          expect(pt.translate(m.va + off)).toBe(off < mapped ? m.pa + off : -1);
        }
        // A failed growth publishes no new top.
        if (pt.topLevel !== top) expect(pt.translate(m.va)).toBe(-1);
      }
      pt.destroy();
      expect(mem.inUse, `a table page leaked at n=${n}`).toBe(0);
    }
    expect(n - 1).toBeGreaterThanOrEqual(sc.minAllocs);
  });
});
