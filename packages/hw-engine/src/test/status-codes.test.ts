import {
  amdv1,
  EntryType,
  IommuProt,
  IoPageTable,
  pageSizeBitmap,
  WalkResult,
} from "@smashlab/pagetable";
import { PgLevel, RmpPageSize, rmpMakePrivate, rmpMakeShared } from "@smashlab/rmp";
import { describe, expect, test } from "vitest";
import {
  cmdWord,
  LIST_NEXT_OFFSET,
  PsmashIoPage,
  PunsmashIoPage,
  RING_ENTRY_BYTES,
  STATUS_RB_ERR,
  STATUS_WPTR_ERR,
  statusName,
  TmpmCommand,
  type TmpmEngineOptions,
  TmpmReg,
  TmpmStatus,
} from "../index.js";
import { ASID, G1, GPA, HPA, K4, M2, type Machine, machine } from "../test-support/machine.js";

/** A valid PSMASH_IO command page for region `r`, its PTE page built and mapped for the engine. */
function psmashPage(m: Machine, r = 2) {
  return psmashPageAt(m, m.domain, GPA + r * M2, HPA + r * M2);
}

/**
 * A PSMASH_IO command page naming the IO leaf that maps `gpa` in `domain` (whatever
 * its size) and the 2M source `src`, with 512 PTEs from `src` pre-initialised.
 */
function psmashPageAt(m: Machine, domain: IoPageTable, gpa: number, src: number) {
  const w = new WalkResult();
  expect(domain.lookup(gpa, w)).toBe(true);
  const pdePa = w.leafTablePa + 8 * w.leafIndex;
  const ptePa = domain.allocTable();
  const attrs = new Uint32Array(2);
  amdv1.attrFromEntry(m.tables.words(w.leafTablePa), w.leafIndex, attrs);
  amdv1.installLeafRun(m.tables.words(ptePa), 0, 512, 0, src, 12, attrs);
  m.engine.mapForEngine(w.leafTablePa);
  m.engine.mapForEngine(ptePa);
  const list = m.host.alloc();
  m.host.write64(list + PsmashIoPage.SRC_PG_PADDR, src);
  m.host.write64(list + PsmashIoPage.SMASH_HPTE_PADDR, ptePa);
  m.host.write64(list + PsmashIoPage.SRC_HPMD_PADDR, pdePa);
  m.host.write64(list + PsmashIoPage.GCTX_PADDR, m.gctx.pa);
  return { list, src, ptePa, pdePa, pdeTablePa: w.leafTablePa };
}

/** Links command pages into one list: each page's next pointer names the following page. */
function link(m: Machine, ...pages: number[]): number {
  for (let k = 0; k + 1 < pages.length; k++)
    m.host.write64(pages[k]! + LIST_NEXT_OFFSET, pages[k + 1]!);
  return pages[0]!;
}

/** The status a command page's gctx qword returned (bits 7:0). */
function pageStatus(m: Machine, list: number): number {
  return m.host.read32(list + PsmashIoPage.GCTX_PADDR) & 0xff;
}

/**
 * A guest region mapped by a 1G IO leaf (level 2) in a domain of its own, bound
 * to the guest like the machine's; the RMP entry of the 2M region at `src` is the
 * guest's private 2M entry.
 */
function oneGigLeaf(m: Machine, regionInside = 0) {
  const hpa = 128 * G1;
  const gpa = 8 * G1;
  const big = new IoPageTable({ format: "amdv1", memory: m.tables });
  big.mapRange(gpa, hpa, G1, IommuProt.READ | IommuProt.WRITE);
  m.firmware.bindIoPageTable(ASID, big);
  const src = hpa + regionInside * M2;
  const g = gpa + regionInside * M2;
  expect(rmpMakePrivate(m.rmp, src / K4, g, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
  const w = new WalkResult();
  expect(big.lookup(g, w) && w.leafLg2).toBe(30);
  return { big, page: psmashPageAt(m, big, g, src) };
}

/** A valid PUNSMASH_IO command page for a region first smashed through the driver. */
function punsmashPage(m: Machine, r = 2) {
  const src = HPA + r * M2;
  m.driver.psmashIo(m.gctx, m.domain, src);
  const pde = m.domain.locateEntry(GPA + r * M2, 1)!;
  const ptePa = amdv1.tablePa(m.tables.words(pde.tablePa), pde.index);
  m.engine.mapForEngine(pde.tablePa);
  m.engine.mapForEngine(ptePa);
  const list = m.host.alloc();
  m.host.write64(list + PunsmashIoPage.SRC_PG_PADDR, src);
  m.host.write64(list + PunsmashIoPage.HPTE_PADDR, ptePa);
  m.host.write64(list + PunsmashIoPage.DST_HPMD_PADDR, pde.tablePa + 8 * pde.index);
  m.host.write64(list + PunsmashIoPage.GCTX_PADDR, m.gctx.pa);
  return { list, src, ptePa };
}

/** Runs one command; a refused command must leave the tables and the RMP exactly as they were. */
function run(m: Machine, command: number, list: number, pages = 1): number {
  const tables = m.domain.fingerprint();
  const rmp = m.rmp.fingerprint();
  const status = m.driver.wait(m.driver.submit(command, list, pages));
  if (status !== TmpmStatus.SUCCESS) {
    expect(m.domain.fingerprint()).toBe(tables);
    expect(m.rmp.fingerprint()).toBe(rmp);
  }
  return status;
}

interface Row {
  status: number;
  cause: string;
  act: (m: Machine) => number;
  /** How the engine is built, when not the default. */
  engine?: Partial<TmpmEngineOptions>;
}

const rows: Row[] = [
  {
    status: TmpmStatus.SUCCESS,
    cause: "a valid PSMASH_IO",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, psmashPage(m).list),
  },
  {
    status: TmpmStatus.SUCCESS,
    cause: "a valid PSMASH_IO with page count 0, as the Linux driver's format_rb_entry() sends it",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, psmashPage(m).list, 0),
  },
  {
    status: TmpmStatus.INVALID_PLATFORM_STATE,
    cause: "PSMASH_IO on a platform without SNP",
    engine: { snp: false },
    act: (m) => run(m, TmpmCommand.PSMASH_IO, psmashPage(m).list),
  },
  {
    status: TmpmStatus.INVALID_PAGE_PADDR,
    cause: "the command list page is assigned to a guest in the RMP",
    act: (m) => {
      const { list } = psmashPage(m);
      expect(rmpMakePrivate(m.rmp, list / K4, 0x1000, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(0);
      return run(m, TmpmCommand.PSMASH_IO, list);
    },
  },
  {
    status: TmpmStatus.INVALID_NUM_PAGES,
    cause: "a PSMASH_IO list of 2 pages whose first page links to none (next = 0)",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, psmashPage(m).list, 2),
  },
  {
    status: TmpmStatus.INVALID_NUM_PAGES,
    cause: "GET_CAPABILITIES over 2 pages (its result is one page)",
    act: (m) => run(m, TmpmCommand.GET_CAPABILITIES, m.host.alloc(), 2),
  },
  {
    status: TmpmStatus.MEM_POISONED,
    cause: "the PTE page has an uncorrectable memory error",
    act: (m) => {
      const p = psmashPage(m);
      m.engine.poison(p.ptePa);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_PAGE_STATE,
    cause: "the source region is not private (a shared 2M region)",
    act: (m) => {
      const p = psmashPage(m);
      expect(rmpMakeShared(m.rmp, p.src / K4, PgLevel.PG_LEVEL_2M)).toBe(0);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_PAGE_SIZE,
    cause: "the RMP entry is already 4K (PSMASH ran first: the order of H1)",
    act: (m) => {
      const p = psmashPage(m);
      expect(m.rmp.psmash(p.src)).toBe(0);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_PAGE_SIZE,
    cause: "the IO leaf named is a 1G leaf at level 2 (its bits alone read as a 2M leaf: H4)",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, oneGigLeaf(m).page.list),
  },
  {
    status: TmpmStatus.INVALID_PAGE_SIZE,
    cause:
      "PUNSMASH_IO naming the level-2 entry above the region (and its level-1 table as the PTE page)",
    act: (m) => {
      const p = punsmashPage(m);
      const pde = m.domain.locateEntry(GPA + 2 * M2, 1)!;
      const above = m.domain.locateEntry(GPA + 2 * M2, 2)!;
      m.engine.mapForEngine(above.tablePa);
      m.engine.mapForEngine(pde.tablePa);
      m.host.write64(p.list + PunsmashIoPage.HPTE_PADDR, pde.tablePa);
      m.host.write64(p.list + PunsmashIoPage.DST_HPMD_PADDR, above.tablePa + 8 * above.index);
      return run(m, TmpmCommand.PUNSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.RMP_NOTEXCLUSIVE,
    cause: "another CPU holds the region's RMP entries",
    act: (m) => {
      const p = psmashPage(m);
      m.rmp.markInUse(p.src, RmpPageSize.SIZE_2M, true);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_GUEST,
    cause: "the guest context names another guest",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + PsmashIoPage.GCTX_PADDR, m.firmware.createGuestContext(ASID + 1).pa);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_GPA_PADDR,
    cause: "PUNSMASH_IO: one 4K entry is the guest's at another GPA",
    act: (m) => {
      const p = punsmashPage(m);
      const page5 = p.src + 5 * K4;
      const gpaOf6 = GPA + 2 * M2 + 6 * K4;
      expect(rmpMakeShared(m.rmp, page5 / K4, PgLevel.PG_LEVEL_4K)).toBe(0);
      expect(rmpMakePrivate(m.rmp, page5 / K4, gpaOf6, PgLevel.PG_LEVEL_4K, ASID, false)).toBe(0);
      expect(m.rmp.pvalidate(page5, { asid: ASID, gpa: gpaOf6, pageSize: 0, validate: true })).toBe(
        0,
      );
      return run(m, TmpmCommand.PUNSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_HPTE_PADDR,
    cause: "the PTE page was not mapped into the engine's IOMMU domain",
    act: (m) => {
      const p = psmashPage(m);
      m.engine.unmapForEngine(p.ptePa);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_HPTE_PADDR,
    cause: "one of the 512 PTEs was not pre-initialised",
    act: (m) => {
      const p = psmashPage(m);
      amdv1.clearEntries(m.tables.words(p.ptePa), 300, 0);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_HPTE_PADDR,
    cause: "the PTEs do not carry the 2M leaf's permission bits (63:52)",
    act: (m) => {
      const p = psmashPage(m);
      const w = m.tables.words(p.ptePa);
      w[2 * 7 + 1] = w[2 * 7 + 1]! & ~(1 << 30); // IW off on one PTE
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_COMMAND,
    cause: "an unknown command id",
    act: (m) => run(m, 0x42, m.host.alloc()),
  },
  {
    status: TmpmStatus.INVALID_COMMAND,
    cause: "PUNSMASH_IO on an engine without the capability",
    engine: { capabilities: { punsmashIo: false } },
    act: (m) => run(m, TmpmCommand.PUNSMASH_IO, m.host.alloc()),
  },
  {
    status: TmpmStatus.INVALID_SRC_PG_PADDR,
    cause: "a source that is not 2M aligned",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + PsmashIoPage.SRC_PG_PADDR, p.src + K4);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_DST_PG_PADDR,
    cause: "PUNSMASH_IO: the PDE does not point at the PTE page",
    act: (m) => {
      const p = punsmashPage(m, 2);
      const other = punsmashPage(m, 3);
      m.host.write64(p.list + PunsmashIoPage.HPTE_PADDR, other.ptePa);
      return run(m, TmpmCommand.PUNSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_GCTX_PG_PADDR,
    cause: "the guest-context address is an ordinary page",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + PsmashIoPage.GCTX_PADDR, m.host.alloc());
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_RMP_PADDR,
    cause: "a source beyond the memory the RMP covers",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + PsmashIoPage.SRC_PG_PADDR, m.rmp.hostBytes);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.RSVD_FIELD_NOT_ZERO,
    cause: "low bits set in the PTE page address",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + PsmashIoPage.SMASH_HPTE_PADDR, p.ptePa + 8);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.RSVD_FIELD_NOT_ZERO,
    cause: "reserved bits set in the ring entry's command word",
    act: (m) => {
      const p = psmashPage(m);
      const slot = m.driver.submit(TmpmCommand.NOOP, p.list, 0);
      expect(m.driver.wait(slot)).toBe(TmpmStatus.SUCCESS);
      // Hand-write the next entry: command word with bit 8 set.
      const ring = m.engine.ringPa;
      const next = (slot + 1) % 256;
      m.host.write64(ring + next * RING_ENTRY_BYTES, p.list);
      m.host.write32(
        ring + next * RING_ENTRY_BYTES + 8,
        cmdWord(TmpmCommand.PSMASH_IO, 1) | (1 << 8),
      );
      m.host.write32(ring + next * RING_ENTRY_BYTES + 12, 0);
      m.engine.writeReg(TmpmReg.RBHEAD, (next + 1) % 256);
      return m.host.read32(ring + next * RING_ENTRY_BYTES + 12) & 0xff;
    },
  },
  {
    status: TmpmStatus.INVALID_TMPM_LIST_ADDR,
    cause: "a list address that is not host memory",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, 0x1000),
  },
  {
    status: TmpmStatus.ADDRESSES_MISMATCH,
    cause: "the PDE named maps another 2M region",
    act: (m) => {
      const p = psmashPage(m, 2);
      const q = psmashPage(m, 3);
      m.host.write64(p.list + PsmashIoPage.SRC_HPMD_PADDR, q.pdePa);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.ADDRESSES_MISMATCH,
    cause: "a PTE maps the wrong page",
    act: (m) => {
      const p = psmashPage(m);
      const pte = m.tables.words(p.ptePa);
      const attrs = new Uint32Array(2);
      amdv1.attrFromEntry(pte, 9, attrs);
      amdv1.installLeaf(pte, 9, 0, p.src + 10 * K4, 12, attrs);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_OVERLAP,
    cause: "the PTE page named is the PDE's own table",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + PsmashIoPage.SMASH_HPTE_PADDR, p.pdeTablePa);
      return run(m, TmpmCommand.PSMASH_IO, p.list);
    },
  },
  {
    status: TmpmStatus.INVALID_NEXT,
    cause: "a two-page list whose first page links to an address outside host memory",
    act: (m) => {
      const p = psmashPage(m);
      m.host.write64(p.list + LIST_NEXT_OFFSET, 0x1000);
      return run(m, TmpmCommand.PSMASH_IO, p.list, 2);
    },
  },
  {
    status: TmpmStatus.INVALID_NEXT,
    cause: "a three-page list whose second page links back to the first (a loop)",
    act: (m) => {
      const a = psmashPage(m, 2);
      const b = psmashPage(m, 3);
      link(m, a.list, b.list, a.list);
      return run(m, TmpmCommand.PSMASH_IO, a.list, 3);
    },
  },
  {
    status: TmpmStatus.RESOURCE_NOT_AVAILABLE,
    cause: "a valid list of 3 regions on an engine that can hold 2 at once",
    engine: { holdSlots: 2 },
    act: (m) => {
      const list = link(m, psmashPage(m, 2).list, psmashPage(m, 3).list, psmashPage(m, 4).list);
      const status = run(m, TmpmCommand.PSMASH_IO, list, 3);
      for (const r of [2, 3, 4]) expect(m.rmp.isBusy(HPA + r * M2, 1, "psmash")).toBe(false);
      return status;
    },
  },
  {
    status: TmpmStatus.PARTIAL_SUCCESS,
    cause: "a two-page list whose second region's RMP entry is already 4K: the first splits",
    act: (m) => {
      const a = psmashPage(m, 2);
      const b = psmashPage(m, 3);
      expect(m.rmp.psmash(b.src)).toBe(0);
      const status = m.driver.wait(
        m.driver.submit(TmpmCommand.PSMASH_IO, link(m, a.list, b.list), 2),
      );
      // Each page's gctx qword says which part succeeded.
      expect([pageStatus(m, a.list), pageStatus(m, b.list)]).toEqual([
        TmpmStatus.SUCCESS,
        TmpmStatus.INVALID_PAGE_SIZE,
      ]);
      expect(m.domain.locateEntry(GPA + 2 * M2, 1)?.type).toBe(EntryType.TABLE);
      expect(m.rmp.levelOf(a.src)).toBe(RmpPageSize.SIZE_4K);
      expect(m.domain.locateEntry(GPA + 3 * M2, 1)?.type).toBe(EntryType.OA);
      return status;
    },
  },
  {
    status: TmpmStatus.HW_MEM_ERR,
    cause: "the PTE page takes an uncorrectable error while the command runs (after validation)",
    act: (m) => {
      const p = psmashPage(m);
      const off = m.engine.on((e) => {
        if (e.kind === "stall") m.engine.poison(p.ptePa);
      });
      const status = run(m, TmpmCommand.PSMASH_IO, p.list);
      off();
      expect(m.rmp.isBusy(p.src, RmpPageSize.SIZE_2M, "psmash")).toBe(false);
      return status;
    },
  },
  {
    status: TmpmStatus.MEM_ABORTED,
    cause: "the driver clears INIT while a command waits (timed engine)",
    engine: { completion: "timed" },
    act: (m) => {
      const p = psmashPage(m);
      const slot = m.driver.submit(TmpmCommand.PSMASH_IO, p.list, 1);
      m.engine.writeReg(TmpmReg.RBCTL, 0); // shutdown without draining
      expect(m.rmp.isBusy(p.src, RmpPageSize.SIZE_2M, "psmash")).toBe(false);
      expect(m.engine.dmaStallUntil(p.src)).toBe(-1);
      return m.host.read32(m.engine.ringPa + slot * RING_ENTRY_BYTES + 12) & 0xff;
    },
  },
  {
    status: TmpmStatus.SUCCESS,
    cause: "a valid PUNSMASH_IO",
    act: (m) => run(m, TmpmCommand.PUNSMASH_IO, punsmashPage(m).list),
  },
];

/**
 * Status codes for which the sources give no cause the model could have: only
 * injection reaches them (see the README). VERSION_ERROR: nothing the host
 * hands the engine carries a version (the ring entry's command word, the four
 * qwords of PSMASH_IO); versions are only reported, by GET_CAPABILITIES.
 */
const noCauseInSources: readonly number[] = [TmpmStatus.VERSION_ERROR];

describe("every status code from a real cause", () => {
  for (const row of rows) {
    test(`${statusName(row.status)}: ${row.cause}`, () => {
      const m = machine(8, row.engine ?? {});
      expect(statusName(row.act(m))).toBe(statusName(row.status));
    });
  }

  for (const status of noCauseInSources) {
    test(`${statusName(status)}: no cause in the sources, so injected; nothing changes`, () => {
      const m = machine(8);
      const p = psmashPage(m);
      const fp = m.domain.fingerprint();
      const rmp = m.rmp.fingerprint();
      m.engine.injectStatus(1, status);
      expect(statusName(run(m, TmpmCommand.PSMASH_IO, p.list))).toBe(statusName(status));
      expect(m.domain.fingerprint()).toBe(fp);
      expect(m.rmp.fingerprint()).toBe(rmp);
    });
  }

  test("the table of causes covers every status code; only VERSION_ERROR lacks a real one", () => {
    const real = new Set(rows.map((r) => r.status));
    for (const s of Object.values(TmpmStatus)) {
      if (s === TmpmStatus.PENDING) continue;
      expect(real.has(s) !== noCauseInSources.includes(s), statusName(s)).toBe(true);
    }
    expect(noCauseInSources.map(statusName)).toEqual(["VERSION_ERROR"]);
  });
});

describe("multi-page lists (our inference: linked pages, one region each)", () => {
  test("a list as long as the engine's hold slots: every region held and stalled for the whole command, then all split", () => {
    const m = machine(8, { holdSlots: 2, completion: "timed" });
    const a = psmashPage(m, 2);
    const b = psmashPage(m, 3);
    const slot = m.driver.submit(TmpmCommand.PSMASH_IO, link(m, a.list, b.list), 2);
    const until = m.engine.dmaStallUntil(a.src);
    expect(until).toBe(m.clock.now() + 2 * m.engine.costs.psmashIoNs);
    expect(m.engine.dmaStallUntil(b.src + 7 * K4)).toBe(until);
    expect(m.engine.dmaStallUntil(HPA + 4 * M2)).toBe(-1);
    expect(m.rmp.isBusy(b.src, RmpPageSize.SIZE_2M, "psmash")).toBe(true);
    expect(m.driver.wait(slot)).toBe(TmpmStatus.SUCCESS);
    expect([pageStatus(m, a.list), pageStatus(m, b.list)]).toEqual([
      TmpmStatus.SUCCESS,
      TmpmStatus.SUCCESS,
    ]);
    for (const r of [2, 3]) expect(m.rmp.levelOf(HPA + r * M2)).toBe(RmpPageSize.SIZE_4K);
    expect(m.engine.stallWindows()).toEqual([]);
  });

  test("two pages naming one region: the second finds it held by the first (RMP_NOTEXCLUSIVE), the list is PARTIAL_SUCCESS", () => {
    const m = machine(8);
    const a = psmashPage(m, 2);
    const again = m.host.alloc();
    for (let off = 0; off < 32; off += 4) m.host.write32(again + off, m.host.read32(a.list + off));
    const status = m.driver.wait(m.driver.submit(TmpmCommand.PSMASH_IO, link(m, a.list, again), 2));
    expect(statusName(status)).toBe("PARTIAL_SUCCESS");
    expect(statusName(pageStatus(m, again))).toBe("RMP_NOTEXCLUSIVE");
    expect(m.rmp.levelOf(a.src)).toBe(RmpPageSize.SIZE_4K);
  });

  test("every page refused: the list takes the first page's status and changes nothing", () => {
    const m = machine(8);
    const a = psmashPage(m, 2);
    const b = psmashPage(m, 3);
    for (const p of [a, b]) expect(m.rmp.psmash(p.src)).toBe(0);
    expect(statusName(run(m, TmpmCommand.PSMASH_IO, link(m, a.list, b.list), 2))).toBe(
      "INVALID_PAGE_SIZE",
    );
  });
});

describe("the leaf PSMASH_IO replaces must be a 2M leaf (AMD v1: its level, not its bits, says so)", () => {
  test("a 1G leaf at level 2, named for the 2M region at its start or inside it: INVALID_PAGE_SIZE, nothing changes", () => {
    for (const inside of [0, 3]) {
      const m = machine(1);
      const { big, page } = oneGigLeaf(m, inside);
      const fp = big.fingerprint();
      const rmp = m.rmp.fingerprint();
      expect(statusName(run(m, TmpmCommand.PSMASH_IO, page.list))).toBe("INVALID_PAGE_SIZE");
      expect(big.fingerprint()).toBe(fp);
      expect(m.rmp.fingerprint()).toBe(rmp);
      // The driver gets the same refusal from the engine when it does not cut first...
      big.freeTable(page.ptePa);
      // ...and with its default it cuts the 1G leaf to 2M first, then the engine takes it.
      expect(m.driver.psmashIo(m.gctx, big, page.src).cutFirst).toBe(true);
      expect(m.rmp.levelOf(page.src)).toBe(RmpPageSize.SIZE_4K);
    }
  });

  test("a contiguous run (a 4M leaf: two level-1 items with NL=7): INVALID_PAGE_SIZE", () => {
    const m = machine(1);
    const hpa = 128 * G1;
    const gpa = 8 * G1;
    const run4m = new IoPageTable({
      format: "amdv1",
      memory: m.tables,
      pgsizeBitmap: pageSizeBitmap(K4, M2, 2 * M2),
    });
    run4m.mapRange(gpa, hpa, 2 * M2, IommuProt.READ | IommuProt.WRITE);
    m.firmware.bindIoPageTable(ASID, run4m);
    expect(rmpMakePrivate(m.rmp, hpa / K4, gpa, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
    const w = new WalkResult();
    expect(run4m.lookup(gpa, w) && w.leafLg2).toBe(22);
    const page = psmashPageAt(m, run4m, gpa, hpa);
    const fp = run4m.fingerprint();
    expect(statusName(run(m, TmpmCommand.PSMASH_IO, page.list))).toBe("INVALID_PAGE_SIZE");
    expect(run4m.fingerprint()).toBe(fp);
  });

  test("a 2M leaf of a table the guest is not bound to (no walk of the guest's tables meets it): ADDRESSES_MISMATCH", () => {
    const m = machine(1);
    const hpa = 128 * G1;
    const gpa = 8 * G1;
    const stray = new IoPageTable({
      format: "amdv1",
      memory: m.tables,
      pgsizeBitmap: pageSizeBitmap(K4, M2),
    });
    stray.mapRange(gpa, hpa, M2, IommuProt.READ | IommuProt.WRITE);
    expect(rmpMakePrivate(m.rmp, hpa / K4, gpa, PgLevel.PG_LEVEL_2M, ASID, false)).toBe(0);
    const page = psmashPageAt(m, stray, gpa, hpa);
    expect(statusName(run(m, TmpmCommand.PSMASH_IO, page.list))).toBe("ADDRESSES_MISMATCH");
    m.firmware.bindIoPageTable(ASID, stray);
    // The refusal came back in the gctx qword's status bits: clear them to resubmit.
    m.host.write64(page.list + PsmashIoPage.GCTX_PADDR, m.gctx.pa);
    expect(statusName(run(m, TmpmCommand.PSMASH_IO, page.list))).toBe("SUCCESS");
  });
});

describe("the ring's error interrupts", () => {
  test("a head beyond the ring: WPTR_ERR and RB_ERR; the driver shuts the engine down; later calls fail cleanly", () => {
    const m = machine(8);
    m.engine.writeReg(TmpmReg.RBHEAD, 300);
    const st = m.engine.readReg(TmpmReg.STATUS);
    expect(st & STATUS_WPTR_ERR).not.toBe(0);
    expect(st & STATUS_RB_ERR).not.toBe(0);
    expect(m.driver.isUp).toBe(false);
    expect(() => m.driver.psmashIo(m.gctx, m.domain, HPA)).toThrow(/ENODEV/);
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_2M);
  });

  test("a corrupt ring (a new entry whose status is not pending): RB_ERR", () => {
    const m = machine(8);
    const ring = m.engine.ringPa;
    const slot = 1; // init's GET_CAPABILITIES used slot 0
    m.host.write64(ring + slot * RING_ENTRY_BYTES, m.host.alloc());
    m.host.write32(ring + slot * RING_ENTRY_BYTES + 8, cmdWord(TmpmCommand.NOOP, 0));
    m.host.write32(ring + slot * RING_ENTRY_BYTES + 12, 0xf0);
    m.engine.writeReg(TmpmReg.RBHEAD, slot + 1);
    expect(m.engine.readReg(TmpmReg.STATUS) & STATUS_RB_ERR).not.toBe(0);
    expect(m.driver.isUp).toBe(false);
    expect(() => m.driver.punsmashIo(m.gctx, m.domain, HPA)).toThrow(/ENODEV/);
  });

  test("the PSMASH_IO page's gctx qword returns the status", () => {
    const m = machine(8);
    const p = psmashPage(m);
    expect(run(m, TmpmCommand.PSMASH_IO, p.list)).toBe(TmpmStatus.SUCCESS);
    expect(m.host.read32(p.list + PsmashIoPage.GCTX_PADDR) & 0xff).toBe(TmpmStatus.SUCCESS);
    expect(m.domain.locateEntry(GPA + 2 * M2, 1)?.type).toBe(EntryType.TABLE);
  });
});
