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
  PsmashIoPage,
  PunsmashIoPage,
  RING_ENTRY_BYTES,
  STATUS_RB_ERR,
  STATUS_WPTR_ERR,
  statusName,
  TmpmCommand,
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
}

const rows: Row[] = [
  {
    status: TmpmStatus.SUCCESS,
    cause: "a valid PSMASH_IO",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, psmashPage(m).list),
  },
  {
    status: TmpmStatus.INVALID_PLATFORM_STATE,
    cause: "PSMASH_IO on a platform without SNP",
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
    cause: "a PSMASH_IO list of 2 pages",
    act: (m) => run(m, TmpmCommand.PSMASH_IO, psmashPage(m).list, 2),
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
    status: TmpmStatus.SUCCESS,
    cause: "a valid PUNSMASH_IO",
    act: (m) => run(m, TmpmCommand.PUNSMASH_IO, punsmashPage(m).list),
  },
];

/** Firmware-internal causes: injected, as the firmware would report them. */
const injected = [
  TmpmStatus.MEM_ABORTED,
  TmpmStatus.VERSION_ERROR,
  TmpmStatus.INVALID_NEXT,
  TmpmStatus.PARTIAL_SUCCESS,
  TmpmStatus.RESOURCE_NOT_AVAILABLE,
  TmpmStatus.HW_MEM_ERR,
];

function machineFor(row: Row): Machine {
  if (row.status === TmpmStatus.INVALID_PLATFORM_STATE) return machine(8, { snp: false });
  if (row.cause.includes("without the capability"))
    return machine(8, { capabilities: { punsmashIo: false } });
  return machine(8);
}

describe("every status code from a real cause", () => {
  for (const row of rows) {
    test(`${statusName(row.status)}: ${row.cause}`, () => {
      const m = machineFor(row);
      expect(statusName(row.act(m))).toBe(statusName(row.status));
    });
  }

  for (const status of injected) {
    test(`${statusName(status)}: a firmware-internal failure, injected; nothing changes`, () => {
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

  test("MEM_ABORTED from a real cause too: the driver clears INIT while a command waits (timed engine)", () => {
    const m = machine(8, { completion: "timed" });
    const p = psmashPage(m);
    const slot = m.driver.submit(TmpmCommand.PSMASH_IO, p.list, 1);
    m.engine.writeReg(TmpmReg.RBCTL, 0); // shutdown without draining
    expect(m.host.read32(m.engine.ringPa + slot * RING_ENTRY_BYTES + 12) & 0xff).toBe(
      TmpmStatus.MEM_ABORTED,
    );
    expect(m.rmp.isBusy(p.src, RmpPageSize.SIZE_2M, "psmash")).toBe(false);
  });

  test("the table of causes covers every status code", () => {
    const covered = new Set([...rows.map((r) => r.status), ...injected]);
    for (const s of Object.values(TmpmStatus))
      if (s !== TmpmStatus.PENDING) expect(covered.has(s), statusName(s)).toBe(true);
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
    expect(statusName(run(m, TmpmCommand.PSMASH_IO, page.list))).toBe("SUCCESS");
  });
});
