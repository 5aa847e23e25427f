import {
  amdv1,
  EntryType,
  type IoPageTable,
  PageTableError,
  WalkResult,
} from "@smashlab/pagetable";
import { rmpMakeHvFixed } from "@smashlab/rmp";
import type { StallWindow, TmpmEngine } from "../device/engine.js";
import type { GuestContext } from "../device/firmware.js";
import { type EngineErrno, EngineError, fail } from "../errors.js";
import {
  CapabilitiesPage,
  CapabilityBit,
  cmdWord,
  PsmashIoPage,
  PunsmashIoPage,
  TmpmCommand,
} from "../spec/commands.js";
import {
  RBCTL_INIT,
  RBCTL_PAUSE,
  RING_ENTRIES,
  RING_ENTRY_BYTES,
  STATUS_DRIVER_INIT,
  STATUS_ENGINE_READY,
  STATUS_RB_ERR,
  STATUS_TOGGLE,
  TmpmReg,
} from "../spec/registers.js";
import { statusName, TmpmStatus } from "../spec/status.js";
import type { ManualClock } from "../time/clock.js";

const M2 = 2 ** 21;

/** How the driver behaves where the sources leave it open. */
export interface TmpmDriverOptions {
  /**
   * The clock the driver's polling advances (it busy-waits: time passes). Default:
   * the engine's clock, which must then be a {@link ManualClock}.
   */
  clock?: ManualClock;
  /**
   * An IO leaf larger than 2M over the region (hazard H4): PSMASH_IO handles only
   * a 2M leaf, and what the engine does with more is not documented (coco.md §8
   * q6). "cut" (default): cut the leaf hitlessly at the region's 2M boundaries
   * first; "refuse": EINVAL.
   */
  largeLeaf?: "cut" | "refuse";
}

/** What a successful PSMASH_IO or PUNSMASH_IO did. */
export interface EngineResult {
  /** The engine's status (SUCCESS). */
  status: number;
  /** The guest region's GPA (= its IOVA in the domain). */
  gpa: number;
  /** The PTE page now linked (PSMASH_IO) or freed (PUNSMASH_IO). */
  ptePa: number;
  /** When DMA to the region was stalled. */
  stall: StallWindow | null;
  /** True when a larger leaf had to be cut to 2M first. */
  cutFirst: boolean;
}

/**
 * The Linux TMPM driver, done right: the init protocol, submission with the
 * ring-full check, polling with the driver's interval and timeout, and
 * `psmashIo` / `punsmashIo` over a domain. Unlike the prototype, the PTE page
 * comes from the domain's own table allocator (`allocTable()`) and a freed one
 * goes back through the domain's gather, so the pagetable's accounting, walks,
 * unmaps and frees see it as their own (hazard H8); and a domain whose IOVA is
 * not the guest's GPA is refused (H9).
 */
export class TmpmDriver {
  readonly engine: TmpmEngine;
  private readonly clock: ManualClock;
  private readonly largeLeaf: "cut" | "refuse";
  private ringPa = -1;
  private cmdPa = -1;
  private capsPa = -1;
  private head = 0;
  private supportBits = 0;
  private up = false;
  private readonly walk = new WalkResult();

  constructor(engine: TmpmEngine, options: TmpmDriverOptions = {}) {
    this.engine = engine;
    const clock = options.clock ?? (engine.clock as ManualClock);
    if (typeof (clock as ManualClock).advance !== "function") {
      fail("EINVAL", "clock", clock, "the driver polls by advancing time: pass a ManualClock");
    }
    this.clock = clock;
    this.largeLeaf = options.largeLeaf ?? "cut";
    engine.on((e) => {
      // RB_ERR always interrupts; the handler shuts the engine down.
      if (e.kind === "error" && this.up) this.shutdown();
    });
  }

  /** The support bits GET_CAPABILITIES reported (RELOAD, PSMASH_IO, PUNSMASH_IO). */
  get capabilities(): number {
    return this.supportBits;
  }

  /** True between a successful init and shutdown. */
  get isUp(): boolean {
    return this.up;
  }

  /**
   * tmpm_init: check ENGINE_READY (ENODEV), shut down a stale DRIVER_INIT, place
   * the ring in a 2M-aligned page made HV-Fixed under SNP, program RBLOW/RBHIGH,
   * CDATA=1, head 0, set INIT and wait for the toggle, poll DRIVER_INIT (EIO),
   * then GET_CAPABILITIES.
   */
  init(): void {
    const e = this.engine;
    if (this.up) return;
    if (!(e.readReg(TmpmReg.STATUS) & STATUS_ENGINE_READY))
      fail("ENODEV", "engine", "TMPM", "not ready");
    if (e.readReg(TmpmReg.STATUS) & STATUS_DRIVER_INIT) this.disable();
    if (this.ringPa < 0) {
      this.ringPa = e.host.alloc(21);
      this.cmdPa = e.host.alloc();
      this.capsPa = e.host.alloc();
      if (this.ringPa < 0 || this.cmdPa < 0 || this.capsPa < 0)
        fail("ENOMEM", "host", e.host.inUse, "no memory for the ring");
      if (e.snp && rmpMakeHvFixed(e.rmp, this.ringPa / 4096) !== 0) {
        fail("EIO", "ring", this.ringPa, "could not make the ring page HV-Fixed");
      }
    }
    e.writeReg(TmpmReg.RBLOW, this.ringPa >>> 0);
    e.writeReg(TmpmReg.RBHIGH, Math.floor(this.ringPa / 0x100000000));
    e.writeReg(TmpmReg.CDATA, 1);
    e.writeReg(TmpmReg.RBHEAD, 0);
    this.head = 0;
    const toggle = e.readReg(TmpmReg.STATUS) & STATUS_TOGGLE;
    e.writeReg(TmpmReg.RBCTL, RBCTL_INIT);
    this.pollUntil(() => (e.readReg(TmpmReg.STATUS) & STATUS_TOGGLE) !== toggle, "init toggle");
    this.pollUntil(() => (e.readReg(TmpmReg.STATUS) & STATUS_DRIVER_INIT) !== 0, "DRIVER_INIT");
    this.up = true;
    const status = this.run(TmpmCommand.GET_CAPABILITIES, this.capsPa);
    if (status !== TmpmStatus.SUCCESS) {
      this.shutdown();
      this.commandError("EIO", status, "GET_CAPABILITIES");
    }
    this.supportBits = e.host.read32(this.capsPa + CapabilitiesPage.SUPPORT_REG);
  }

  /**
   * tmpm_shutdown: set PAUSE, drain the ring unless RB_ERR, clear INIT and wait for
   * DRIVER_INIT to clear. Later calls fail with ENODEV (the rmp_io_ops are gone: H10).
   */
  shutdown(): void {
    const e = this.engine;
    this.up = false;
    e.writeReg(TmpmReg.RBCTL, RBCTL_INIT | RBCTL_PAUSE);
    if (!(e.readReg(TmpmReg.STATUS) & STATUS_RB_ERR)) {
      // Drain what already started: resume just long enough for it to finish.
      e.writeReg(TmpmReg.RBCTL, RBCTL_INIT);
      this.pollUntil(() => this.engine.inFlight === 0, "drain", false);
    }
    this.disable();
  }

  private disable(): void {
    const e = this.engine;
    e.writeReg(TmpmReg.RBCTL, RBCTL_PAUSE);
    this.pollUntil(
      () => (e.readReg(TmpmReg.STATUS) & STATUS_DRIVER_INIT) === 0,
      "DRIVER_INIT clear",
      false,
    );
  }

  /**
   * submit_rb_entry: one ring entry. EAGAIN when the ring has no space, ENODEV
   * when the engine is down. Returns the slot.
   *
   * The space test is the TMPM driver's: CIRC_SPACE(cached head, RBTAIL,
   * RB_SIZE = 256), which keeps one slot empty, so at most 255 entries are in
   * flight and the 256th submit gets EAGAIN. (Issue 5 said 256 then EAGAIN on the
   * 257th; the driver, and the ring itself, where head == tail is the empty ring,
   * allow 255.)
   */
  submit(command: number, listPa: number, numPages: number): number {
    const e = this.engine;
    if (!this.up || !e.running) fail("ENODEV", "engine", "TMPM", "is not running");
    const tail = e.readReg(TmpmReg.RBTAIL) & 0xffff;
    const space = (tail - (this.head + 1)) & (RING_ENTRIES - 1);
    if (space === 0) fail("EAGAIN", "ring", this.head, "is full");
    const slot = this.head;
    const entry = this.ringPa + slot * RING_ENTRY_BYTES;
    e.host.write64(entry, listPa);
    e.host.write32(entry + 8, cmdWord(command, numPages));
    e.host.write32(entry + 12, 0);
    this.head = (slot + 1) % RING_ENTRIES;
    e.writeReg(TmpmReg.RBHEAD, this.head);
    return slot;
  }

  /** The status byte of a slot (0 while pending). */
  slotStatus(slot: number): number {
    this.engine.process();
    return this.engine.host.read32(this.ringPa + slot * RING_ENTRY_BYTES + 12) & 0xff;
  }

  /** Polls a slot every 25 µs until it completes; EIO after 25 ms. Returns the status. */
  wait(slot: number): number {
    let status = 0;
    this.pollUntil(() => {
      status = this.slotStatus(slot);
      return status !== 0;
    }, `slot ${slot}`);
    return status;
  }

  /** One single-page command; page count 0, as the TMPM driver's format_rb_entry() calls pass. */
  private run(command: number, listPa: number): number {
    return this.wait(this.submit(command, listPa, 0));
  }

  private pollUntil(done: () => boolean, what: string, throwOnTimeout = true): void {
    const { pollIntervalNs, pollTimeoutNs } = this.engine.costs;
    let waited = 0;
    while (!done()) {
      if (waited >= pollTimeoutNs) {
        if (throwOnTimeout) fail("EIO", "timeout", waited, `waiting for ${what}`);
        return;
      }
      this.clock.advance(pollIntervalNs);
      this.engine.process();
      waited += pollIntervalNs;
    }
  }

  /**
   * rmp_psmash_io(gctx, domain, hpa): split the guest's 2M region at host address
   * `hpa` in the RMP and in `domain` at the same instant.
   *
   * ENODEV without the PSMASH_IO capability or with the engine down; EINVAL for an
   * `hpa` that is not 2M aligned or not a guest page, a domain that is not an AMD
   * v1 table, or a domain whose IOVA is not the GPA (H9); EEXIST when the leaf is already smaller than 2M (callers treat it
   * as done: H27); ENOMEM for the PTE page; EAGAIN when the ring is full; EIO on a
   * timeout or when the engine refuses (the error carries its status).
   */
  psmashIo(gctx: GuestContext, domain: IoPageTable, hpa: number): EngineResult {
    this.requireCapability(CapabilityBit.PSMASH_IO, "PSMASH_IO");
    checkDomainFormat(domain);
    const gpa = this.guestGpa(domain, hpa);
    this.bindDomain(gctx, domain);
    let cutFirst = false;
    if (!domain.lookup(gpa, this.walk)) fail("EINVAL", "hpa", hpa, "is not mapped in the domain");
    if (this.walk.leafLg2 < 21)
      fail("EEXIST", "hpa", hpa, "the IO leaf is already smaller than 2M");
    if (this.walk.leafLg2 > 21) {
      if (this.largeLeaf === "refuse")
        fail(
          "EINVAL",
          "hpa",
          hpa,
          `the IO leaf is ${2 ** this.walk.leafLg2} bytes; PSMASH_IO takes a 2M leaf`,
        );
      this.cutTo2M(domain, gpa);
      cutFirst = true;
      domain.lookup(gpa, this.walk);
    }
    const pdePa = this.walk.leafTablePa + 8 * this.walk.leafIndex;
    const leafTable = domain.mem.words(this.walk.leafTablePa);
    const attrs = new Uint32Array(2);
    amdv1.attrFromEntry(leafTable, this.walk.leafIndex, attrs);
    const dirty = amdv1.isWriteDirty(leafTable, this.walk.leafIndex, 1);

    const ptePa = domain.allocTable();
    if (ptePa < 0) fail("ENOMEM", "domain", domain.tablesInUse, "no page for the 512 PTEs");
    const pte = domain.mem.words(ptePa);
    amdv1.installLeafRun(pte, 0, 512, 0, hpa, 12, attrs);
    if (dirty)
      for (let i = 0; i < 512; i++) amdv1.makeWriteDirty(pte, i, pte[2 * i]!, pte[2 * i + 1]!);

    const h = this.engine.host;
    h.write64(this.cmdPa + PsmashIoPage.SRC_PG_PADDR, hpa);
    h.write64(this.cmdPa + PsmashIoPage.SMASH_HPTE_PADDR, ptePa);
    h.write64(this.cmdPa + PsmashIoPage.SRC_HPMD_PADDR, pdePa);
    h.write64(this.cmdPa + PsmashIoPage.GCTX_PADDR, gctx.pa);
    let status: number;
    try {
      // A late failure frees the PTE page; a late success leaves it linked (the domain's own).
      status = this.runMapped(TmpmCommand.PSMASH_IO, [this.walk.leafTablePa, ptePa], (late) => {
        if (late !== TmpmStatus.SUCCESS) domain.freeTable(ptePa);
      });
    } catch (err) {
      if (!isTimeout(err)) domain.freeTable(ptePa);
      throw err;
    }
    if (status !== TmpmStatus.SUCCESS) {
      domain.freeTable(ptePa);
      this.commandError("EIO", status, "PSMASH_IO");
    }
    this.flushIfNeeded(domain, gpa);
    return { status, gpa, ptePa, stall: this.lastStall, cutFirst };
  }

  /**
   * The reverse (our inference of PUNSMASH_IO): when the region's 512 RMP entries
   * and PTEs are uniform and contiguous, one 2M leaf and one 2M RMP entry again.
   * The freed PTE page goes back through the domain's gather (flush, then free).
   * ENODEV, EINVAL, EAGAIN, EIO as {@link TmpmDriver.psmashIo}; EEXIST when the
   * region is already a 2M leaf.
   */
  punsmashIo(gctx: GuestContext, domain: IoPageTable, hpa: number): EngineResult {
    this.requireCapability(CapabilityBit.PUNSMASH_IO, "PUNSMASH_IO");
    checkDomainFormat(domain);
    const gpa = this.guestGpa(domain, hpa);
    this.bindDomain(gctx, domain);
    const pde = domain.locateEntry(gpa, 1);
    if (pde === null)
      fail("EINVAL", "hpa", hpa, "is not mapped at 2M granularity or below in the domain");
    if (pde.type === EntryType.OA) fail("EEXIST", "hpa", hpa, "the IO leaf is already 2M");
    const ptePa = amdv1.tablePa(domain.mem.words(pde.tablePa), pde.index);
    const h = this.engine.host;
    h.write64(this.cmdPa + PunsmashIoPage.SRC_PG_PADDR, hpa);
    h.write64(this.cmdPa + PunsmashIoPage.HPTE_PADDR, ptePa);
    h.write64(this.cmdPa + PunsmashIoPage.DST_HPMD_PADDR, pde.tablePa + 8 * pde.index);
    h.write64(this.cmdPa + PunsmashIoPage.GCTX_PADDR, gctx.pa);
    const release = () => {
      // The PTE page is unlinked, but walkers may still hold it until the flush.
      const g = domain.newGather();
      g.addRange(gpa, M2);
      g.freelist.push(ptePa);
      domain.iotlbSync(g);
    };
    const status = this.runMapped(TmpmCommand.PUNSMASH_IO, [pde.tablePa, ptePa], (late) => {
      if (late === TmpmStatus.SUCCESS) release();
    });
    if (status !== TmpmStatus.SUCCESS) this.commandError("EIO", status, "PUNSMASH_IO");
    release();
    return { status, gpa, ptePa, stall: this.lastStall, cutFirst: false };
  }

  private lastStall: StallWindow | null = null;

  /**
   * Maps the table pages into the engine's domain, runs the command and unmaps
   * them. On a timeout (EIO) the engine may still finish later: the pages stay
   * mapped until it does, and `onLate` gets the late status so nothing leaks.
   */
  private runMapped(command: number, pages: number[], onLate: (status: number) => void): number {
    const e = this.engine;
    for (const pa of pages) e.mapForEngine(pa);
    this.lastStall = null;
    const offStall = e.on((ev) => {
      if (ev.kind === "stall") {
        this.lastStall = {
          spa: ev.spa,
          gpa: ev.gpa,
          length: ev.length,
          from: ev.from,
          until: ev.until,
        };
      }
    });
    let slot = -1;
    try {
      slot = this.submit(command, this.cmdPa, 0);
      const status = this.wait(slot);
      for (const pa of pages) e.unmapForEngine(pa);
      return status;
    } catch (err) {
      if (slot >= 0 && isTimeout(err)) {
        const off = e.on((ev) => {
          if (ev.kind !== "complete" || ev.slot !== slot) return;
          off();
          for (const pa of pages) e.unmapForEngine(pa);
          onLate(ev.status);
        });
      } else {
        for (const pa of pages) e.unmapForEngine(pa);
      }
      throw err;
    } finally {
      offStall();
    }
  }

  private requireCapability(bit: number, what: string): void {
    if (!this.up || !this.engine.running)
      fail("ENODEV", "engine", "TMPM", "is not running (rmp_io_ops unregistered)");
    if (!(this.supportBits & bit))
      fail("ENODEV", "capability", what, "is not supported by this engine");
  }

  /** The region's GPA from the RMP, checked to be the domain's IOVA for `hpa` (H9). */
  private guestGpa(domain: IoPageTable, hpa: number): number {
    if (!Number.isSafeInteger(hpa) || hpa < 0)
      fail("EINVAL", "hpa", hpa, "must be a host physical address");
    if (hpa % M2 !== 0) fail("EINVAL", "hpa", hpa, "must be 2M aligned");
    const { entry } = this.engine.rmp.lookup(hpa);
    if (!entry.assigned || entry.asid === 0)
      fail("EINVAL", "hpa", hpa, "is not a guest page in the RMP");
    const gpa = entry.gpa - (entry.gpa % M2);
    if (domain.translate(gpa) !== hpa) {
      fail(
        "EINVAL",
        "domain",
        domain.format,
        `does not map IOVA ${gpa.toString(16)} (the RMP GPA) to ${hpa.toString(16)}: its IOVA is not the GPA`,
      );
    }
    return gpa;
  }

  /**
   * The engine validates the PDE it is given by walking the guest's IO page
   * tables, which SEV-TIO's TDI binding makes known to the firmware. This model
   * has no TDI, so the driver states the binding for the domain it was handed.
   */
  private bindDomain(gctx: GuestContext, domain: IoPageTable): void {
    this.engine.firmware.bindIoPageTable(gctx.asid, domain);
  }

  private cutTo2M(domain: IoPageTable, gpa: number): void {
    try {
      domain.cut(gpa);
      domain.cut(gpa + M2);
    } catch (e) {
      if (e instanceof PageTableError)
        fail(
          e.code as EngineErrno,
          "domain",
          domain.format,
          `cutting the large leaf to 2M: ${e.message}`,
        );
      throw e;
    }
  }

  private flushIfNeeded(domain: IoPageTable, gpa: number): void {
    if (this.engine.engineFlushesIotlb) return;
    // The engine leaves the IOTLB alone: the cached 2M entry would keep the 2M size class.
    const g = domain.newGather();
    g.addRange(gpa, M2);
    domain.iotlbSync(g);
  }

  private commandError(code: EngineErrno, status: number, what: string): never {
    const err = new EngineError(code, "status", status, `${what} failed: ${statusName(status)}`);
    err.status = status;
    throw err;
  }
}

/**
 * The engine writes AMD IOMMU v1 host page-table entries (the PTE page, the PDE it
 * replaces): a domain of another format (x86_64, VT-d, the iommufd selftest's 2 KiB
 * mock) would get entries its walker reads differently, so it is refused.
 */
function checkDomainFormat(domain: IoPageTable): void {
  if (domain?.format !== amdv1.name) {
    fail(
      "EINVAL",
      "domain",
      domain?.format,
      "is not an AMD IOMMU v1 host page table, the format TMPM edits",
    );
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof EngineError && err.code === "EIO" && err.argument === "timeout";
}
