/**
 * Property-based: random sequences of MAP, MAP_FILE, COPY, UNMAP, device
 * attach and detach, manual HWPTs, access pins and page-size adjusts over two
 * IOASes, against a reference that is nothing but a list of areas per IOAS
 * (IOVA range, which iopt_pages, which byte of it). After every step: every
 * domain translates exactly what its IOAS's areas say and nothing else; the
 * pages pinned are exactly the union, per iopt_pages, of the areas of IOASes
 * that have a domain plus the access pins; the errno of every call is the one
 * the reference predicts. After close, nothing is pinned, charged or allocated.
 * Seeds are fixed.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { AmdIommu } from "../device/amd-iommu.js";
import { IommufdError } from "../errors.js";
import { Memfd } from "../pages/memfd.js";
import { openSelftest, RW_FIXED, type SelftestContext } from "../test-support/selftest.js";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_PAGE_SIZE,
  PAGE_SIZE,
} from "../uapi.js";

const M2 = 2 ** 21;
/** Areas live in 16 slots of 64 KiB above the mock aperture start. */
const SLOT = 64 * 1024;
const SLOTS = 16;
/** Sources: 2M each; a map takes [offset, offset + length) of one. */
const SOURCE_BYTES = M2;

interface RefArea {
  iova: number;
  length: number;
  /** Identity of the iopt_pages (COPY shares it). */
  pagesId: number;
  /** Source index and the byte offset in it of the area's first byte. */
  source: number;
  offset: number;
}

interface RefIoas {
  id: number;
  areas: RefArea[];
  /** Mock devices attached (stdev IDs), AMD devices bound and attached (device IDs), and manual HWPTs. */
  stdevs: number[];
  amdDevs: number[];
  hwpts: number[];
}

type Op =
  | {
      op: "map";
      ioas: number;
      source: number;
      page: number;
      pages: number;
      slot: number;
      sub: number;
    }
  | { op: "copy"; from: number; to: number; pick: number; slot: number; part: number }
  | { op: "unmap"; ioas: number; slot: number; sub: number; pages: number }
  | { op: "attach"; ioas: number; huge: boolean }
  | { op: "attachAmd"; ioas: number }
  | { op: "detach"; ioas: number; pick: number }
  | { op: "hwpt"; ioas: number }
  | { op: "hwptDestroy"; ioas: number; pick: number }
  | { op: "pin"; ioas: number; pick: number }
  | { op: "unpinAll" }
  | { op: "adjust"; ioas: number; pick: number; big: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("map" as const),
      ioas: fc.nat(1),
      source: fc.nat(2),
      page: fc.nat(15),
      pages: fc.integer({ min: 1, max: 12 }),
      slot: fc.nat(SLOTS - 1),
      sub: fc.nat(3),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("copy" as const),
      from: fc.nat(1),
      to: fc.nat(1),
      pick: fc.nat(20),
      slot: fc.nat(SLOTS - 1),
      part: fc.nat(3),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("unmap" as const),
      ioas: fc.nat(1),
      slot: fc.nat(SLOTS - 1),
      sub: fc.nat(3),
      pages: fc.integer({ min: 1, max: 64 }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("attach" as const),
      ioas: fc.nat(1),
      huge: fc.boolean(),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant("attachAmd" as const), ioas: fc.nat(1) }), weight: 2 },
  {
    arbitrary: fc.record({ op: fc.constant("detach" as const), ioas: fc.nat(1), pick: fc.nat(5) }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant("hwpt" as const), ioas: fc.nat(1) }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant("hwptDestroy" as const),
      ioas: fc.nat(1),
      pick: fc.nat(5),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ op: fc.constant("pin" as const), ioas: fc.nat(1), pick: fc.nat(20) }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant("unpinAll" as const) }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant("adjust" as const),
      ioas: fc.nat(1),
      pick: fc.nat(20),
      big: fc.boolean(),
    }),
    weight: 2,
  },
);

/** The errno of a call, or null on success. */
function errnoOf(call: () => unknown): string | null {
  try {
    call();
    return null;
  } catch (e) {
    if (e instanceof IommufdError) return e.code;
    throw e;
  }
}

class Harness {
  readonly ctx: SelftestContext = openSelftest();
  readonly ioases: RefIoas[];
  /** Physical address of byte 0 of each source: two anonymous huge buffers and a 2M-folio memfd. */
  readonly sourceVa: number[] = [];
  readonly file: Memfd;
  private nextPagesId = 1;
  private readonly amd = new AmdIommu();
  private amdNames = 0;
  /** The access on IOAS 0 and its pins: pagesId and page index range. */
  readonly access: number;
  readonly pins: {
    id: number;
    iova: number;
    length: number;
    pagesId: number;
    first: number;
    last: number;
  }[] = [];

  constructor() {
    const fd = this.ctx.fd;
    this.ioases = [0, 1].map(() => ({
      id: fd.ioasAlloc(),
      areas: [],
      stdevs: [],
      amdDevs: [],
      hwpts: [],
    }));
    this.sourceVa.push(fd.process.mmap(SOURCE_BYTES, { huge: true }));
    this.sourceVa.push(fd.process.mmap(SOURCE_BYTES, { align: M2 }));
    this.file = new Memfd({ phys: fd.phys, size: SOURCE_BYTES, folioSize: M2 });
    this.sourceVa.push(fd.process.mmapFile(this.file, 0, SOURCE_BYTES));
    this.access = this.ctx.t.createAccess(
      this.ioases[0]!.id,
      MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
    );
  }

  /** Physical address of byte `offset` of source `s`. */
  pa(s: number, offset: number): number {
    return this.ctx.fd.process.translate(this.sourceVa[s]! + offset);
  }

  step(o: Op): void {
    const fd = this.ctx.fd;
    const t = this.ctx.t;
    switch (o.op) {
      case "map": {
        const io = this.ioases[o.ioas]!;
        const offset = o.page * PAGE_SIZE;
        const length = o.pages * PAGE_SIZE;
        // A page or two into the slot, so unmaps can cut an area by a single page.
        const iova = MOCK_APERTURE_START + o.slot * SLOT + o.sub * PAGE_SIZE;
        const overlap = io.areas.some((a) => a.iova < iova + length && iova < a.iova + a.length);
        const flags = RW_FIXED;
        const got = errnoOf(() =>
          o.source === 2
            ? fd.ioasMapFile({ ioasId: io.id, flags, file: this.file, start: offset, length, iova })
            : fd.ioasMap({
                ioasId: io.id,
                flags,
                userVa: this.sourceVa[o.source]! + offset,
                length,
                iova,
              }),
        );
        expect(got).toBe(overlap ? "EEXIST" : null);
        if (!overlap)
          io.areas.push({ iova, length, pagesId: this.nextPagesId++, source: o.source, offset });
        return;
      }
      case "copy": {
        const src = this.ioases[o.from]!;
        const dst = this.ioases[o.to]!;
        if (src.areas.length === 0) return;
        const a = src.areas[o.pick % src.areas.length]!;
        // A page-aligned piece of the area: the whole of it, or a half, or a quarter.
        const parts = [1, 2, 4, 4][o.part]!;
        const len = Math.max(PAGE_SIZE, Math.floor(a.length / parts / PAGE_SIZE) * PAGE_SIZE);
        const iova = MOCK_APERTURE_START + o.slot * SLOT;
        const overlap = dst.areas.some((b) => b.iova < iova + len && iova < b.iova + b.length);
        const got = errnoOf(() =>
          fd.ioasCopy({
            flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
            dstIoasId: dst.id,
            srcIoasId: src.id,
            length: len,
            srcIova: a.iova,
            dstIova: iova,
          }),
        );
        expect(got).toBe(overlap ? "EEXIST" : null);
        if (!overlap)
          dst.areas.push({
            iova,
            length: len,
            pagesId: a.pagesId,
            source: a.source,
            offset: a.offset,
          });
        return;
      }
      case "unmap": {
        const io = this.ioases[o.ioas]!;
        const start = MOCK_APERTURE_START + o.slot * SLOT + o.sub * PAGE_SIZE;
        const length = o.pages * PAGE_SIZE * 4;
        // The kernel walks the areas in order and stops at one the range cuts.
        const hit = io.areas
          .filter((a) => a.iova < start + length && start < a.iova + a.length)
          .sort((x, y) => x.iova - y.iova);
        let expected: string | null = hit.length === 0 ? "ENOENT" : null;
        let removed = 0;
        for (const a of hit) {
          if (a.iova < start || a.iova + a.length > start + length) {
            expected = "ENOENT";
            break;
          }
          // Pins in the area go first (the access's unmap op); the access lives on IOAS 0.
          if (o.ioas === 0) this.dropPinsIn(a);
          io.areas.splice(io.areas.indexOf(a), 1);
          removed += a.length;
        }
        const args = { ioasId: io.id, iova: start, length };
        expect(errnoOf(() => fd.ioasUnmap(args))).toBe(expected);
        if (expected === null) expect(args.length).toBe(removed);
        return;
      }
      case "attach": {
        const io = this.ioases[o.ioas]!;
        const r = t.mockDomain(io.id, o.huge ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0);
        io.stdevs.push(r.stdevId);
        return;
      }
      case "attachAmd": {
        const io = this.ioases[o.ioas]!;
        const devId = fd.bind({
          name: `amd${this.amdNames++}`,
          iommu: this.amd,
          group: {},
          flags: 0,
        });
        fd.deviceAttach(devId, io.id);
        io.amdDevs.push(devId);
        return;
      }
      case "detach": {
        const io = this.ioases[o.ioas]!;
        const all = [
          ...io.stdevs.map((id) => ({ mock: true, id })),
          ...io.amdDevs.map((id) => ({ mock: false, id })),
        ];
        if (all.length === 0) return;
        const d = all[o.pick % all.length]!;
        if (d.mock) {
          io.stdevs.splice(io.stdevs.indexOf(d.id), 1);
          fd.destroy(d.id);
        } else {
          io.amdDevs.splice(io.amdDevs.indexOf(d.id), 1);
          fd.unbind(d.id);
        }
        return;
      }
      case "hwpt": {
        const io = this.ioases[o.ioas]!;
        if (io.stdevs.length === 0) return;
        io.hwpts.push(fd.hwptAlloc({ flags: 0, devId: t.idevOf(io.stdevs[0]!), ptId: io.id }));
        return;
      }
      case "hwptDestroy": {
        const io = this.ioases[o.ioas]!;
        if (io.hwpts.length === 0) return;
        const [id] = io.hwpts.splice(o.pick % io.hwpts.length, 1);
        fd.destroy(id!);
        return;
      }
      case "pin": {
        const io = this.ioases[0]!;
        if (io.areas.length === 0) return;
        const a = io.areas[o.pick % io.areas.length]!;
        // Whole pages inside the area (its page offset is 0 here).
        const id = t.accessPages(this.access, a.iova, a.length);
        const first = Math.floor(a.offset / PAGE_SIZE);
        this.pins.push({
          id,
          iova: a.iova,
          length: a.length,
          pagesId: a.pagesId,
          first,
          last: first + a.length / PAGE_SIZE - 1,
        });
        return;
      }
      case "unpinAll": {
        for (const p of this.pins) t.destroyAccessPages(this.access, p.id);
        this.pins.length = 0;
        return;
      }
      case "adjust": {
        const io = this.ioases[o.ioas]!;
        const hwpts = this.hwptsOf(io);
        if (hwpts.length === 0 || io.areas.length === 0) return;
        const hwpt = hwpts[o.pick % hwpts.length]!;
        const a = io.areas[o.pick % io.areas.length]!;
        const domain = fd.hwptDomain(hwpt);
        const adjust = (pageSize: number) => () =>
          fd.hwptAdjustPageSize({ hwptId: hwpt, iova: a.iova, length: a.length, pageSize });
        // The selftest mock's format has no hitless resize; AMD v1 does.
        if (domain.driver !== this.amd) {
          expect(errnoOf(adjust(MOCK_PAGE_SIZE))).toBe("EOPNOTSUPP");
          return;
        }
        expect(errnoOf(adjust(o.big ? M2 : PAGE_SIZE))).toBe(null);
        if (!o.big) {
          let larger = 0;
          domain.table.forEachLeaf(
            (l) => {
              if (l.sizeLg2 > 12) larger++;
            },
            a.iova,
            a.length,
          );
          expect(larger).toBe(0);
        }
        return;
      }
    }
  }

  private dropPinsIn(a: RefArea): void {
    for (let i = this.pins.length - 1; i >= 0; i--) {
      const p = this.pins[i]!;
      if (p.iova < a.iova + a.length && a.iova < p.iova + p.length) this.pins.splice(i, 1);
    }
  }

  /** The distinct HWPTs mirroring an IOAS: devices' auto domains and manual ones. */
  hwptsOf(io: RefIoas): number[] {
    const ids = new Set<number>(io.hwpts);
    for (const s of io.stdevs) ids.add(this.ctx.fd.deviceHwpt(this.ctx.t.idevOf(s)));
    for (const d of io.amdDevs) ids.add(this.ctx.fd.deviceHwpt(d));
    return [...ids];
  }

  /** Every domain translates exactly the IOAS's areas; pins are the reference's. */
  check(): void {
    const fd = this.ctx.fd;
    const pinned = new Map<number, Set<number>>();
    const cover = (pagesId: number, first: number, last: number) => {
      const s = pinned.get(pagesId) ?? new Set<number>();
      pinned.set(pagesId, s);
      for (let i = first; i <= last; i++) s.add(i);
    };
    for (const io of this.ioases) {
      const hwpts = this.hwptsOf(io);
      for (const h of hwpts) {
        const table = fd.hwptDomain(h).table;
        let mapped = 0;
        for (const a of io.areas) {
          for (let off = 0; off < a.length; off += MOCK_PAGE_SIZE) {
            const want = this.pa(a.source, a.offset + off);
            const got = table.translate(a.iova + off);
            if (got !== want)
              expect({ hwpt: h, iova: a.iova + off, got }).toEqual({
                hwpt: h,
                iova: a.iova + off,
                got: want,
              });
          }
          mapped += a.length;
        }
        expect(table.stats().mappedBytes).toBe(mapped);
      }
      if (hwpts.length !== 0) {
        for (const a of io.areas) {
          const first = Math.floor(a.offset / PAGE_SIZE);
          cover(a.pagesId, first, first + Math.ceil(a.length / PAGE_SIZE) - 1);
        }
      }
    }
    for (const p of this.pins) cover(p.pagesId, p.first, p.last);
    let total = 0;
    for (const s of pinned.values()) total += s.size;
    expect(fd.stats().pinnedPages).toBe(total);
    expect(fd.process.pinnedVm).toBe(total);
  }
}

describe("iommufd property", () => {
  test("random MAP/COPY/UNMAP/attach/detach/pin/adjust: domains mirror the IOAS, pins follow the areas, nothing leaks", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 4, maxLength: 40 }), (ops) => {
        const h = new Harness();
        for (const o of ops) {
          h.step(o);
          h.check();
        }
        h.ctx.fd.close();
        expect(h.ctx.fd.stats()).toEqual({ objects: 0, pinnedPages: 0, pages: 0, tablePages: 0 });
        expect(h.ctx.fd.process.pinnedVm).toBe(0);
        expect(h.ctx.fd.process.user.lockedVm).toBe(0);
      }),
      { seed: 0x10f0d, numRuns: 200 },
    );
  });
});
