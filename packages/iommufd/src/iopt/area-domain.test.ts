import { IommuProt } from "@smashlab/pagetable";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FaultInjector, InjectableTableMemory } from "../core/inject.js";
import { AmdIommu } from "../device/amd-iommu.js";
import type { FlushRecord, IommuDomain } from "../hwpt/domain.js";
import { ProcessAddressSpace } from "../pages/address-space.js";
import { IoptPages } from "../pages/iopt-pages.js";
import { Memfd } from "../pages/memfd.js";
import { PhysMemory } from "../pages/phys-memory.js";
import { PAGE_SIZE } from "../uapi.js";
import { IoptArea } from "./area.js";
import { fillAreaDomain } from "./area-domain.js";
import { IoPagetable } from "./io-pagetable.js";

const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;
const PROT = IommuProt.READ | IommuProt.WRITE | IommuProt.CACHE;

/**
 * The reference: the fill as it was before runs were batched, one iommu_map()
 * per pinned run (or per page with large pages disabled).
 */
function fillByRunReference(area: IoptArea, domain: IommuDomain, smallPagesOnly: boolean): void {
  const run = new Float64Array(1);
  const pages = area.source;
  const end = area.startByte + area.length;
  const lastIndex = area.lastIndex;
  let b = area.startByte;
  let mapped = area.iova;
  try {
    while (b < end) {
      const index = Math.floor(b / PAGE_SIZE);
      const pa = pages.pinnedRun(index, lastIndex, run) + (b - index * PAGE_SIZE);
      const runEnd = Math.min((index + run[0]!) * PAGE_SIZE, end);
      if (smallPagesOnly) {
        for (let p = b; p < runEnd; ) {
          const next = Math.min((Math.floor(p / PAGE_SIZE) + 1) * PAGE_SIZE, runEnd);
          domain.map(mapped, pa + (p - b), next - p, area.prot);
          mapped += next - p;
          p = next;
        }
      } else {
        domain.map(mapped, pa, runEnd - b, area.prot);
        mapped += runEnd - b;
      }
      b = runEnd;
    }
  } catch (e) {
    if (mapped > area.iova) domain.unmap(area.iova, mapped - area.iova);
    throw e;
  }
}

/** One fill to compare: the domain, the source and what happens in the domain beforehand. */
interface Scenario {
  /** The HWPT cap (0: none). */
  cap: number;
  source: { kind: "memfd"; folio: number } | { kind: "user"; huge: boolean };
  /** Pages of the source before the area, and in the area. */
  skipPages: number;
  areaPages: number;
  iova: number;
  /** Pins by others (accesses) before the area's, as [first, last] page offsets from the area. */
  prePins: [number, number][];
  /** Domain operations before the fill, at offsets from the area's IOVA. */
  pre: { map: boolean; offset: number; length: number }[];
  smallPagesOnly: boolean;
}

interface Outcome {
  error: string | null;
  fingerprint: string;
  tablesInUse: number;
  memoryInUse: number;
  flushes: FlushRecord[];
  flushCount: number;
  reached: number;
}

/** Builds the scenario's world and fills with `fill`, failing the n-th allocation (0: none). */
function run(sc: Scenario, fill: typeof fillAreaDomain, failNth: number): Outcome {
  const injector = new FaultInjector();
  const memory = new InjectableTableMemory(injector);
  const phys = new PhysMemory();
  const dev = { name: "dev", iommu: new AmdIommu(), group: {}, flags: 0 };
  const domain = dev.iommu.domainAllocPaging(dev, { flags: 0, memory, maxPageSize: sc.cap });
  const flushes: FlushRecord[] = [];
  domain.onFlush = (f) => flushes.push(f);
  // Room after the area for the others' pins.
  const bytes = (sc.skipPages + sc.areaPages + 2200) * K4;
  const mm = new ProcessAddressSpace(phys);
  let pages: IoptPages;
  let physBase: number;
  if (sc.source.kind === "memfd") {
    const folio = sc.source.folio;
    const file = new Memfd({ phys, size: Math.ceil(bytes / folio) * folio, folioSize: folio });
    physBase = file.physBase;
    pages = new IoptPages({ kind: "file", file, start: 0 }, bytes, true, mm, injector);
  } else {
    const va = mm.mmap(bytes, { huge: sc.source.huge });
    physBase = mm.translate(va);
    pages = new IoptPages({ kind: "user", mm, uptr: va }, bytes, true, mm, injector);
  }
  const table = domain.table;
  for (const op of sc.pre) {
    try {
      if (op.map) table.mapRange(sc.iova + op.offset, physBase + op.offset, op.length, PROT);
      else table.unmapRange(sc.iova + op.offset, op.length);
    } catch {
      // A clash between two random operations: skipped in both worlds alike.
    }
  }
  for (const [a, b] of sc.prePins) pages.pin(sc.skipPages + a, sc.skipPages + b);
  const area = new IoptArea(
    new IoPagetable(injector),
    sc.iova,
    sc.iova + sc.areaPages * K4 - 1,
    pages,
    sc.skipPages * K4,
    PROT,
  );
  pages.pin(area.firstIndex, area.lastIndex);
  flushes.length = 0;
  const before = domain.flushes;
  injector.failNth(failNth === 0 ? 2 ** 40 : failNth);
  let error: string | null = null;
  try {
    fill(area, domain, sc.smallPagesOnly);
  } catch (e) {
    const x = e as Error & { code?: string; argument?: string; value?: unknown };
    error = `${x.constructor.name} ${x.code} ${x.argument} ${String(x.value)} ${x.message}`;
  }
  return {
    error,
    fingerprint: table.fingerprint(),
    tablesInUse: table.tablesInUse,
    memoryInUse: memory.inUse,
    flushes,
    flushCount: domain.flushes - before,
    reached: injector.reached,
  };
}

const sourceArb = fc.oneof(
  fc.record({ kind: fc.constant("memfd" as const), folio: fc.constantFrom(K4, M2, M2, G1) }),
  fc.record({ kind: fc.constant("user" as const), huge: fc.boolean() }),
);

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({
    cap: fc.constantFrom(K4, M2, M2, M2, G1, 0),
    source: sourceArb,
    // In 2M units plus pages, so areas start and end on and off folio boundaries.
    skip2M: fc.integer({ min: 0, max: 3 }),
    skipPages: fc.constantFrom(0, 0, 1, 3, 511),
    len2M: fc.integer({ min: 0, max: 700 }),
    lenPages: fc.constantFrom(0, 0, 1, 5, 300),
    // Around the ends of AMD v1's first top (2^39) and of 1G and 2M regions.
    iovaBase: fc.constantFrom(4 * G1, 7 * G1, 2 ** 39 - G1, 2 ** 39 - 3 * M2, 2 ** 40 + 5 * G1),
    iovaShift: fc.constantFrom(0, 0, 0, M2, 3 * M2, 5 * K4),
    prePins: fc.array(fc.tuple(fc.nat(1500), fc.integer({ min: 1, max: 700 })), { maxLength: 3 }),
    pre: fc.array(
      fc.record({
        map: fc.boolean(),
        offset2M: fc.integer({ min: -2, max: 600 }),
        offsetPages: fc.constantFrom(0, 1, 7),
        pages: fc.constantFrom(1, 2, 512, 1024),
      }),
      { maxLength: 5 },
    ),
    smallPagesOnly: fc.constantFrom(false, false, false, false, true),
  })
  .map((r) => {
    const skipPages = r.skip2M * 512 + r.skipPages;
    let areaPages = r.len2M * 512 + r.lenPages;
    if (areaPages === 0) areaPages = 1;
    // Page-by-page domains, fills and sources stay small enough to run often.
    const pageRuns =
      (r.source.kind === "memfd" && r.source.folio === K4) ||
      (r.source.kind === "user" && !r.source.huge);
    if (r.cap === K4 || r.smallPagesOnly || pageRuns) areaPages = Math.min(areaPages, 3000);
    // The IOVA keeps the source's offset in a 2M folio unless shifted off it.
    const iova = r.iovaBase + ((skipPages * K4) % M2) + r.iovaShift;
    return {
      cap: r.cap,
      source: r.source,
      skipPages,
      areaPages,
      iova,
      prePins: r.prePins.map(([a, n]) => [a, a + n - 1] as [number, number]),
      pre: r.pre.map((p) => ({
        map: p.map,
        offset: p.offset2M * M2 + p.offsetPages * K4,
        length: p.pages * K4,
      })),
      smallPagesOnly: r.smallPagesOnly,
    };
  });

/** The allocation numbers to fail: all of them when few, else both ends and a spread. */
function nths(reached: number): number[] {
  if (reached <= 24) return Array.from({ length: reached }, (_, i) => i + 1);
  const out = new Set<number>();
  for (let i = 1; i <= 8; i++) out.add(i);
  for (let i = reached - 7; i <= reached; i++) out.add(i);
  for (let k = 1; k < 8; k++) out.add(Math.round((k * reached) / 8));
  return [...out].sort((a, b) => a - b);
}

describe("fillAreaDomain", () => {
  it("maps, fails and cleans up exactly as one iommu_map() per run, for every failing allocation", () => {
    fc.assert(
      fc.property(scenarioArb, (sc) => {
        const want = run(sc, fillByRunReference, 0);
        const got = run(sc, fillAreaDomain, 0);
        expect(got).toEqual(want);
        for (const n of nths(want.reached)) {
          expect(run(sc, fillAreaDomain, n), `failing allocation ${n}`).toEqual(
            run(sc, fillByRunReference, n),
          );
        }
      }),
      { seed: 0xa4ea, numRuns: 60 },
    );
  });

  const base: Scenario = {
    cap: M2,
    source: { kind: "memfd", folio: M2 },
    skipPages: 0,
    areaPages: 1024 * 512,
    iova: 4 * G1,
    prePins: [],
    pre: [],
    smallPagesOnly: false,
  };
  const cases: [string, Scenario][] = [
    // A run straddles the end of the first top (2^39) after whole runs below it:
    // merged, the top would grow before those runs' tables are allocated.
    [
      "a run across the top's end",
      { ...base, iova: 2 ** 39 - 3 * M2 + 5 * K4, areaPages: 8 * 512 },
    ],
    ["an area across the top's end", { ...base, iova: 2 ** 39 - G1, areaPages: 1536 * 512 }],
    // Empty tables left by an earlier 4K map: the 2M leaves replace them, flushing per call.
    [
      "leftover empty tables in the area",
      {
        ...base,
        areaPages: 8 * 512,
        pre: [
          { map: true, offset: 2 * M2, length: K4 },
          { map: true, offset: 3 * M2, length: K4 },
          { map: false, offset: 2 * M2, length: K4 },
          { map: false, offset: 3 * M2, length: K4 },
        ],
      },
    ],
    [
      "a mapping in the way",
      { ...base, areaPages: 8 * 512, pre: [{ map: true, offset: 5 * M2, length: M2 }] },
    ],
    // 1G folios under a 2M cap at an IOVA off 1G: runs cross the 1G regions.
    [
      "1G folios across regions",
      {
        ...base,
        source: { kind: "memfd", folio: G1 },
        iova: 4 * G1 + 6 * M2,
        areaPages: 2560 * 512,
      },
    ],
    [
      "accesses' pins cutting the runs",
      {
        ...base,
        areaPages: 16 * 512,
        prePins: [
          [3, 700],
          [2048, 2048],
          [4000, 5000],
        ],
      },
    ],
  ];
  for (const [name, sc] of cases) {
    it(`${name}: as one iommu_map() per run, for every failing allocation`, () => {
      const want = run(sc, fillByRunReference, 0);
      expect(run(sc, fillAreaDomain, 0)).toEqual(want);
      for (let n = 1; n <= want.reached + 1; n++) {
        expect(run(sc, fillAreaDomain, n), `failing allocation ${n}`).toEqual(
          run(sc, fillByRunReference, n),
        );
      }
    });
  }

  it("maps 64 GiB of 2M folios in a handful of walks, with the same leaves", () => {
    const sc: Scenario = {
      cap: M2,
      source: { kind: "memfd", folio: M2 },
      skipPages: 0,
      areaPages: (64 * G1) / K4,
      iova: 64 * G1,
      prePins: [],
      pre: [],
      smallPagesOnly: false,
    };
    expect(run(sc, fillAreaDomain, 0)).toEqual(run(sc, fillByRunReference, 0));
  });
});
