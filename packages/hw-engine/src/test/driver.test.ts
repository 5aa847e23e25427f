import { amdv1, IommuProt, IoPageTable, TableMemory, WalkResult } from "@smashlab/pagetable";
import { PgLevel, RmpPageSize, RmpUpdateRet, rmpMakePrivate } from "@smashlab/rmp";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import {
  cmdWord,
  EngineError,
  RING_ENTRIES,
  RING_ENTRY_BYTES,
  STATUS_RB_ERR,
  STATUS_WPTR_ERR,
  TmpmCommand,
  TmpmReg,
  TmpmStatus,
} from "../index.js";
import {
  ASID,
  G1,
  GPA,
  HPA,
  K4,
  M2,
  type Machine,
  machine,
  translations,
} from "../test-support/machine.js";

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof EngineError) return e.code;
    throw e;
  }
  return "none";
}

describe("the driver's errnos, each from a real cause", () => {
  test("ENODEV: the engine lacks the PSMASH_IO capability", () => {
    const m = machine(4, { capabilities: { psmashIo: false } });
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA))).toBe("ENODEV");
  });

  test("ENODEV: the engine was shut down (rmp_io_ops unregistered: callers fall back, H10)", () => {
    const m = machine(4);
    m.driver.shutdown();
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA))).toBe("ENODEV");
  });

  test("EINVAL: an address that is not 2M aligned, or not a guest page", () => {
    const m = machine(4);
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA + K4))).toBe("EINVAL");
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA + 64 * M2))).toBe("EINVAL");
  });

  test("EINVAL: a domain whose IOVA is not the GPA is refused (H9)", () => {
    const m = machine(4);
    const shifted = new IoPageTable({ format: "amdv1", memory: m.tables });
    shifted.mapRange(GPA + G1, HPA, 4 * M2, IommuProt.READ | IommuProt.WRITE);
    const fp = m.rmp.fingerprint();
    expect(errno(() => m.driver.psmashIo(m.gctx, shifted, HPA))).toBe("EINVAL");
    expect(m.rmp.fingerprint()).toBe(fp);
  });

  test("EINVAL: a domain that is not AMD v1 (x86_64, the 2K mock) gets no AMD PTEs; nothing changes", () => {
    const m = machine(4);
    const rw = IommuProt.READ | IommuProt.WRITE;
    const x86 = new IoPageTable({ format: "x86_64", hwMaxVaLg2: 48, memory: m.tables });
    const mock = new IoPageTable({ format: "amdv1-mock", memory: m.tables });
    for (const other of [x86, mock]) {
      other.mapRange(GPA, HPA, 4 * M2, rw);
      const fp = other.fingerprint();
      const rmp = m.rmp.fingerprint();
      const pages = m.tables.inUse;
      for (const call of [m.driver.psmashIo, m.driver.punsmashIo]) {
        let err: EngineError | undefined;
        try {
          call.call(m.driver, m.gctx, other, HPA);
        } catch (e) {
          err = e as EngineError;
        }
        expect([err?.code, err?.argument, err?.value]).toEqual(["EINVAL", "domain", other.format]);
      }
      expect(other.fingerprint()).toBe(fp);
      expect(m.rmp.fingerprint()).toBe(rmp);
      expect(m.tables.inUse).toBe(pages);
    }
  });

  test("EEXIST: the leaf is already smaller than 2M (a second PSMASH_IO: H27, callers treat it as done)", () => {
    const m = machine(4);
    m.driver.psmashIo(m.gctx, m.domain, HPA);
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA))).toBe("EEXIST");
    expect(errno(() => m.driver.punsmashIo(m.gctx, m.domain, HPA + M2))).toBe("EEXIST");
  });

  test("ENOMEM: no table page for the 512 PTEs; nothing changes", () => {
    const m = machine(4);
    const fp = m.domain.fingerprint();
    m.tables.failNth(1);
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA))).toBe("ENOMEM");
    expect(m.domain.fingerprint()).toBe(fp);
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_2M);
  });

  test("EIO: the engine refuses (the error carries its status); the PTE page is freed", () => {
    const m = machine(4);
    const tables = m.domain.tablesInUse;
    m.rmp.markInUse(HPA, RmpPageSize.SIZE_2M, true);
    let err: EngineError | undefined;
    try {
      m.driver.psmashIo(m.gctx, m.domain, HPA);
    } catch (e) {
      err = e as EngineError;
    }
    expect(err?.code).toBe("EIO");
    expect(err?.status).toBe(TmpmStatus.RMP_NOTEXCLUSIVE);
    expect(m.domain.tablesInUse).toBe(tables);
  });

  test("EIO: the PTE page takes an uncorrectable error while PSMASH_IO runs (HW_MEM_ERR); nothing changes, the PTE page is freed", () => {
    const m = machine(4);
    const fp = m.domain.fingerprint();
    const rmp = m.rmp.fingerprint();
    const tables = m.domain.tablesInUse;
    let ptePa = -1;
    const off = m.engine.on((e) => {
      if (e.kind !== "stall") return;
      ptePa = runningPtePage(m);
      m.engine.poison(ptePa);
    });
    let err: EngineError | undefined;
    try {
      m.driver.psmashIo(m.gctx, m.domain, HPA);
    } catch (e) {
      err = e as EngineError;
    }
    off();
    expect([err?.code, err?.status]).toEqual(["EIO", TmpmStatus.HW_MEM_ERR]);
    expect(m.domain.fingerprint()).toBe(fp);
    expect(m.rmp.fingerprint()).toBe(rmp);
    expect(m.domain.tablesInUse).toBe(tables);
    // A page still poisoned is refused before the command runs: MEM_POISONED.
    expect(m.domain.allocTable()).toBe(ptePa); // the freed page comes back first
    m.domain.freeTable(ptePa);
    try {
      m.driver.psmashIo(m.gctx, m.domain, HPA);
    } catch (e) {
      err = e as EngineError;
    }
    expect(err?.status).toBe(TmpmStatus.MEM_POISONED);
    m.engine.poison(ptePa, false);
    m.driver.psmashIo(m.gctx, m.domain, HPA);
  });

  test("EIO on a 25 ms timeout; the late completion still links the PTE page and unmaps it from the engine", () => {
    const m = machine(4, { completion: "timed", costs: { psmashIoNs: 40_000_000 } });
    const before = translations(m);
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA))).toBe("EIO");
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_2M);
    m.clock.advance(20_000_000);
    m.engine.process();
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_4K);
    expect(translations(m)).toEqual(before);
    expect(m.domain.tablesInUse).toBe(m.domain.stats().tables);
  });
});

/** [code, argument, value] of the EngineError `fn` throws. */
function typedError(fn: () => unknown): unknown[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof EngineError) return [e.code, e.argument, e.value];
    throw e;
  }
  return [];
}

describe("bad input: typed errors naming the argument", () => {
  test("holdSlots below 1 or not an integer, and a binding with a bad ASID or no table root: EINVAL naming each", () => {
    const m = machine(1);
    for (const holdSlots of [0, -1, 1.5, Number.NaN]) {
      expect(typedError(() => machine(1, { holdSlots }))).toEqual([
        "EINVAL",
        "holdSlots",
        holdSlots,
      ]);
    }
    for (const asid of [0, 1024, 2.5]) {
      expect(typedError(() => m.firmware.bindIoPageTable(asid, m.domain))).toEqual([
        "EINVAL",
        "asid",
        asid,
      ]);
    }
    const notATable = {} as IoPageTable;
    expect(typedError(() => m.firmware.bindIoPageTable(ASID, notATable))).toEqual([
      "EINVAL",
      "table",
      notATable,
    ]);
    expect(m.firmware.ioPageTablesOf(ASID)).toEqual([m.domain]);
  });

  test("the driver states the guest's binding on every call; the firmware keeps each table once", () => {
    const m = machine(2);
    for (let i = 0; i < 3; i++) {
      m.driver.psmashIo(m.gctx, m.domain, HPA);
      m.driver.punsmashIo(m.gctx, m.domain, HPA);
    }
    expect(m.firmware.ioPageTablesOf(ASID)).toHaveLength(1);
    expect(m.firmware.ioPageTablesOf(ASID + 1)).toHaveLength(0);
  });

  test("fault injection at command 0 and time running backwards are EINVAL, nothing armed or moved", () => {
    const m = machine(1);
    for (const n of [0, -1, 1.5, Number.NaN]) {
      expect(errno(() => m.engine.injectStatus(n, TmpmStatus.HW_MEM_ERR))).toBe("EINVAL");
    }
    const t = m.clock.now();
    for (const ns of [-1, Number.NaN]) expect(errno(() => m.clock.advance(ns))).toBe("EINVAL");
    expect(m.clock.now()).toBe(t);
    let err: EngineError | undefined;
    try {
      m.clock.advance(-5);
    } catch (e) {
      err = e as EngineError;
    }
    expect([err?.code, err?.argument, err?.value]).toEqual(["EINVAL", "ns", -5]);
    // Nothing was armed: the next command succeeds.
    m.driver.psmashIo(m.gctx, m.domain, HPA);
  });
});

describe("the ring: 255 in flight, the 256th submit gets EAGAIN", () => {
  // Not 256 then EAGAIN on the 257th (issue 5): the TMPM driver's submit_rb_entry()
  // refuses when !CIRC_SPACE(head, tail, RB_SIZE) with RB_SIZE = BIT(8), and
  // CIRC_SPACE keeps one slot empty; its is_rb_empty() reads head == tail as empty.
  test("255 commands in flight; the next submit gets EAGAIN (tmpm.c: CIRC_SPACE of 256 keeps one slot empty)", () => {
    const m = machine(4, { completion: "timed" });
    const list = m.host.alloc();
    for (let i = 0; i < 255; i++) m.driver.submit(TmpmCommand.NOOP, list, 0);
    expect(m.engine.inFlight).toBe(255);
    expect(errno(() => m.driver.submit(TmpmCommand.NOOP, list, 0))).toBe("EAGAIN");
    expect(errno(() => m.driver.psmashIo(m.gctx, m.domain, HPA))).toBe("EAGAIN");
    expect(m.domain.tablesInUse).toBe(m.domain.stats().tables); // the PTE page was given back
    m.clock.advance(1_000_000);
    m.engine.process();
    expect(m.engine.inFlight).toBe(0);
    m.driver.psmashIo(m.gctx, m.domain, HPA);
  });

  test("the engine agrees: a head written past the 255th entry makes head == tail, the empty ring, so it is a bad head (WPTR_ERR, RB_ERR)", () => {
    const m = machine(4, { completion: "timed" });
    const list = m.host.alloc();
    for (let i = 0; i < 255; i++) m.driver.submit(TmpmCommand.NOOP, list, 0);
    const tail = m.engine.readReg(TmpmReg.RBTAIL) & 0xffff;
    const head = (tail + 255) % RING_ENTRIES;
    // The 256th entry, written by hand past the driver's check.
    const entry = m.engine.ringPa + head * RING_ENTRY_BYTES;
    m.host.write64(entry, list);
    m.host.write32(entry + 8, cmdWord(TmpmCommand.NOOP, 0));
    m.host.write32(entry + 12, 0);
    m.engine.writeReg(TmpmReg.RBHEAD, (head + 1) % RING_ENTRIES);
    expect((head + 1) % RING_ENTRIES).toBe(tail);
    const st = m.engine.readReg(TmpmReg.STATUS);
    expect(st & STATUS_WPTR_ERR).not.toBe(0);
    expect(st & STATUS_RB_ERR).not.toBe(0);
    expect(m.engine.inFlight).toBe(0); // the queued 255 were aborted
    expect(m.driver.isUp).toBe(false);
    expect(errno(() => m.driver.submit(TmpmCommand.NOOP, list, 0))).toBe("ENODEV");
  });
});

describe("timed engine: DMA stalls and RMP exclusivity while the command runs", () => {
  test("the stall window covers the command; the RMP region is held; afterwards all is done at once", () => {
    const m = machine(4, { completion: "timed", costs: { psmashIoNs: 2_000_000 } });
    const events: string[] = [];
    m.engine.on((e) => events.push(e.kind));
    const slot = m.driver.submit(TmpmCommand.NOOP, m.host.alloc(), 0);
    m.driver.wait(slot);
    // Start a PSMASH_IO by hand so the test can look inside its window.
    const w = new WalkResult();
    m.domain.lookup(GPA, w);
    const p = m.domain.allocTable();
    const attrs = new Uint32Array([
      0,
      m.tables.words(w.leafTablePa)[2 * w.leafIndex + 1]! & 0x70000000,
    ]);
    amdv1.installLeafRun(m.tables.words(p), 0, 512, 0, HPA, 12, attrs);
    m.engine.mapForEngine(w.leafTablePa);
    m.engine.mapForEngine(p);
    const list = m.host.alloc();
    m.host.write64(list, HPA);
    m.host.write64(list + 8, p);
    m.host.write64(list + 16, w.leafTablePa + 8 * w.leafIndex);
    m.host.write64(list + 24, m.gctx.pa);
    const t0 = m.clock.now();
    const s2 = m.driver.submit(TmpmCommand.PSMASH_IO, list, 1);
    expect(m.engine.dmaStallUntil(HPA + 5 * K4)).toBe(t0 + 2_000_000);
    expect(m.engine.dmaStallUntil(HPA + M2)).toBe(-1);
    // Another CPU's RMPUPDATE on the region meanwhile: FAIL_INUSE (the engine holds it).
    expect(
      m.rmp.rmpupdate(HPA + K4, {
        assigned: false,
        pageSize: 0,
        immutable: false,
        asid: 0,
        gpa: 0,
      }),
    ).toBe(RmpUpdateRet.FAIL_INUSE);
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_2M);
    m.clock.advance(1_999_000);
    m.engine.process();
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_2M);
    m.clock.advance(1_000);
    expect(m.driver.slotStatus(s2)).toBe(TmpmStatus.SUCCESS);
    expect(m.rmp.levelOf(HPA)).toBe(RmpPageSize.SIZE_4K);
    expect(m.engine.dmaStallUntil(HPA)).toBe(-1);
    expect(events).toContain("stall");
    expect(events).toContain("iotlb-flush");
  });

  test("engineFlushesIotlb=false: the engine emits no flush, the driver invalidates the range itself", () => {
    let flushes: [number, number][] = [];
    const tables = new TableMemory();
    const m = machine(4, { engineFlushesIotlb: false, tables });
    const domain = new IoPageTable({
      format: "amdv1",
      memory: tables,
      pgsizeBitmap: 0x201000,
      driver: { flushIotlb: (s, l) => flushes.push([s, l]) },
    });
    domain.mapRange(GPA, HPA, 4 * M2, IommuProt.READ | IommuProt.WRITE);
    const engineFlushes: number[] = [];
    m.engine.on((e) => e.kind === "iotlb-flush" && engineFlushes.push(e.iova));
    flushes = [];
    m.driver.psmashIo(m.gctx, domain, HPA + M2);
    expect(engineFlushes).toEqual([]);
    expect(flushes).toEqual([[GPA + M2, GPA + 2 * M2 - 1]]);
  });
});

describe("larger leaves (H4) and the domain's ownership of the PTE page (H8)", () => {
  test("a 1G leaf over the region is cut to 2M first (hitlessly), then smashed", () => {
    const m = machine(1);
    const tables = m.tables;
    const big = new IoPageTable({ format: "amdv1", memory: tables });
    const hpa = 2 * G1 * 64;
    const gpa = 8 * G1;
    big.mapRange(gpa, hpa, G1, IommuProt.READ | IommuProt.WRITE);
    expect(
      rmpMakePrivate(m.rmp, (hpa + 3 * M2) / K4, gpa + 3 * M2, PgLevel.PG_LEVEL_2M, ASID, false),
    ).toBe(0);
    const before = Array.from({ length: 1024 }, (_, i) => big.translate(gpa + (i * G1) / 1024));
    const r = m.driver.psmashIo(m.gctx, big, hpa + 3 * M2);
    expect(r.cutFirst).toBe(true);
    expect(Array.from({ length: 1024 }, (_, i) => big.translate(gpa + (i * G1) / 1024))).toEqual(
      before,
    );
    const refuse = machine(1, {}, { largeLeaf: "refuse" });
    const other = new IoPageTable({ format: "amdv1", memory: refuse.tables });
    other.mapRange(gpa, hpa, G1, IommuProt.READ | IommuProt.WRITE);
    expect(
      rmpMakePrivate(
        refuse.rmp,
        (hpa + 3 * M2) / K4,
        gpa + 3 * M2,
        PgLevel.PG_LEVEL_2M,
        ASID,
        false,
      ),
    ).toBe(0);
    expect(errno(() => refuse.driver.psmashIo(refuse.gctx, other, hpa + 3 * M2))).toBe("EINVAL");
  });

  test("after PSMASH_IO the pagetable owns the PTE page: unmap frees it, nothing leaks", () => {
    const m = machine(4);
    m.driver.psmashIo(m.gctx, m.domain, HPA + 2 * M2);
    expect(m.domain.unmapRange(GPA, 4 * M2)).toBe(4 * M2);
    m.domain.destroy();
    expect(m.tables.inUse).toBe(0);
  });
});

describe("properties", () => {
  test("PSMASH_IO on random regions: translations unchanged, IO leaf size class = RMP size class, accounting exact; PUNSMASH_IO restores", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 6 }),
        (regions) => {
          const m = machine(16);
          const before = translations(m);
          const fp = m.domain.fingerprint();
          const rfp = m.rmp.fingerprint();
          for (const r of regions) m.driver.psmashIo(m.gctx, m.domain, HPA + r * M2);
          expect(translations(m)).toEqual(before);
          sizeClassesMatch(m);
          expect(m.domain.tablesInUse).toBe(m.domain.stats().tables);
          for (const r of regions) m.driver.punsmashIo(m.gctx, m.domain, HPA + r * M2);
          expect(m.domain.fingerprint()).toBe(fp);
          expect(m.rmp.fingerprint()).toBe(rfp);
          expect(m.domain.tablesInUse).toBe(m.domain.stats().tables);
        },
      ),
      { seed: 0x7e, numRuns: 25 },
    );
  });

  test("fault injection: a firmware error at any command leaves tables, RMP and accounting untouched", () => {
    for (const status of [
      TmpmStatus.HW_MEM_ERR,
      TmpmStatus.MEM_ABORTED,
      TmpmStatus.PARTIAL_SUCCESS,
    ]) {
      for (const which of ["psmash", "punsmash"] as const) {
        const m = machine(4);
        if (which === "punsmash") m.driver.psmashIo(m.gctx, m.domain, HPA);
        const fp = m.domain.fingerprint();
        const rfp = m.rmp.fingerprint();
        const tables = m.domain.tablesInUse;
        m.engine.injectStatus(1, status);
        const call = () =>
          which === "psmash"
            ? m.driver.psmashIo(m.gctx, m.domain, HPA)
            : m.driver.punsmashIo(m.gctx, m.domain, HPA);
        expect(errno(call)).toBe("EIO");
        expect(m.domain.fingerprint()).toBe(fp);
        expect(m.rmp.fingerprint()).toBe(rfp);
        expect(m.domain.tablesInUse).toBe(tables);
        // And the next attempt works.
        call();
      }
    }
  });
});

function sizeClassesMatch(m: Machine): void {
  const w = new WalkResult();
  const bad: number[] = [];
  for (let i = 0; i < m.regions * 512; i += 7) {
    m.domain.lookup(GPA + i * K4, w);
    const ioClass = w.leafLg2 >= 21 ? RmpPageSize.SIZE_2M : RmpPageSize.SIZE_4K;
    if (ioClass !== m.rmp.levelOf(HPA + i * K4)) bad.push(i);
  }
  expect(bad).toEqual([]);
}

/** The PTE page of the PSMASH_IO the engine is running (its command page names it). */
function runningPtePage(m: Machine): number {
  const ring = m.engine.ringPa;
  const tail = m.engine.readReg(TmpmReg.RBTAIL) & 0xffff;
  const cmdPa = m.host.read64(ring + tail * RING_ENTRY_BYTES);
  return m.host.read64(cmdPa + 8);
}
