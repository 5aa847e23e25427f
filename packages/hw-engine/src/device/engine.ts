import type { TableMemory } from "@smashlab/pagetable";
import { type Rmp, RmpPageSize } from "@smashlab/rmp";
import { commandListPages } from "../commands/command-list.js";
import type { CommandContext } from "../commands/context.js";
import {
  applyRegionPages,
  type RegionPage,
  type RegionPlan,
  validateRegionPages,
  writePageStatus,
} from "../commands/region-pages.js";
import { fail } from "../errors.js";
import type { HostMemory } from "../memory/host-memory.js";
import {
  CapabilitiesPage,
  CapabilityBit,
  CMD_RESERVED_MASK,
  cmdId,
  cmdNumPages,
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
  STATUS_WPTR_ERR,
  TmpmReg,
} from "../spec/registers.js";
import { TmpmStatus } from "../spec/status.js";
import {
  DEFAULT_TMPM_COSTS,
  type EngineClock,
  ManualClock,
  type TmpmCosts,
} from "../time/clock.js";
import type { SnpFirmware } from "./firmware.js";

/** How an engine is built. */
export interface TmpmEngineOptions {
  /** The SNP firmware view (guest contexts; its RMP and host memory are the engine's). */
  firmware: SnpFirmware;
  /** The IOMMU page-table memory the engine edits: the domains' allocator. */
  tables: TableMemory;
  /** Time. Default: a {@link ManualClock} at 0. */
  clock?: EngineClock;
  /**
   * "immediate" (default, library use): a command runs to its end when the head
   * is written, and time moves with it: the engine advances its clock (when it is
   * a {@link ManualClock}) to the command's start before its "stall" events and
   * to its end before it completes, so a listener sees DMA held during the
   * command, and after the submit the clock reads the command's end.
   * "timed" (a simulator): time is the caller's; commands complete when
   * {@link TmpmEngine.process} runs at or after their end time, DMA to the region
   * stalled in between.
   */
  completion?: "immediate" | "timed";
  /** Durations; any field overrides {@link DEFAULT_TMPM_COSTS}. */
  costs?: Partial<TmpmCosts>;
  /**
   * MODEL.md `engineFlushesIotlb` (coco.md §8 q1: the sources do not say whether
   * PSMASH_IO invalidates IOTLB and PDE caches itself). Default true: the engine
   * emits an "iotlb-flush" event for the region's IOVA range.
   */
  engineFlushesIotlb?: boolean;
  /** Which commands GET_CAPABILITIES advertises (and the engine accepts). Default: all. */
  capabilities?: { psmashIo?: boolean; punsmashIo?: boolean; reload?: boolean };
  /** SNP is enabled: the ring page must be 2M aligned and HV-Fixed (the driver arranges it). Default true. */
  snp?: boolean;
  /**
   * How many 2M regions the engine can hold at once (RMP entries in use, DMA to
   * them stalled): the pages one PSMASH_IO / PUNSMASH_IO list may have. A longer
   * list is RESOURCE_NOT_AVAILABLE. Default 16, an assumption: no source gives
   * the engine's limit.
   */
  holdSlots?: number;
}

/** Something the engine did, for a simulated IOMMU or a trace. */
export type TmpmEvent =
  | { kind: "complete"; slot: number; command: number; status: number; at: number }
  | { kind: "stall"; spa: number; gpa: number; length: number; from: number; until: number }
  | { kind: "iotlb-flush"; iova: number; length: number; at: number }
  | { kind: "error"; status: number; at: number }
  | { kind: "toggle"; at: number };

/** A DMA stall window: accesses to [spa, spa+length) wait from `from` until `until`. */
export interface StallWindow {
  spa: number;
  gpa: number;
  length: number;
  from: number;
  until: number;
}

interface InFlight {
  slot: number;
  /** When the doorbell announced it. */
  arrivedAt: number;
  command: number;
  startAt: number;
  doneAt: number;
  /** The status decided when it started; 0 while some page still has a plan to apply. */
  status: number;
  listPa: number;
  /** PSMASH_IO / PUNSMASH_IO whose list was read: its pages. */
  pages: RegionPage[] | null;
  /** The DMA stall windows of its held regions. */
  windows: StallWindow[];
}

const NO_WINDOWS: StallWindow[] = [];

/**
 * AMD's TMPM engine ("Tiered Memory Page Migration", spec 58151 rev 0.51): a
 * firmware-driven engine behind the IOMMU with a mailbox of eight registers and
 * a one-page ring of 256 entries (at most 255 in flight: head == tail is the
 * empty ring). Modelled: the registers and their bits, the
 * init/pause/drain/shutdown protocol, the ring, GET_CAPABILITIES, NOOP,
 * PSMASH_IO (replace a 2M IO leaf by a table of 512 PTEs and PSMASH its RMP
 * entry at the same instant, DMA to the region stalled) and PUNSMASH_IO (our
 * inference: the reverse), each over a list of one page or, our inference, of
 * several linked pages (one region each, each page with its own status).
 *
 * While a PSMASH_IO or PUNSMASH_IO runs the engine holds the region's RMP
 * entries: a concurrent RMPUPDATE or PSMASH there fails with FAIL_INUSE.
 */
export class TmpmEngine {
  readonly rmp: Rmp;
  readonly host: HostMemory;
  readonly firmware: SnpFirmware;
  readonly tables: TableMemory;
  readonly clock: EngineClock;
  readonly costs: TmpmCosts;
  readonly timed: boolean;
  readonly engineFlushesIotlb: boolean;
  readonly snp: boolean;
  /** Regions the engine can hold at once ({@link TmpmEngineOptions.holdSlots}). */
  readonly holdSlots: number;
  private readonly support: number;
  /** The clock when the engine may move it (a ManualClock), else null. */
  private readonly movable: ManualClock | null;
  /** Immediate mode: how far the engine's own work has taken time. */
  private reached = 0;
  private processing = false;
  private readonly regs = new Uint32Array(8);
  private readonly mapped = new Set<number>();
  private readonly poisoned = new Set<number>();
  private readonly queue: InFlight[] = [];
  private readonly listeners: ((e: TmpmEvent) => void)[] = [];
  private stalls: StallWindow[] = [];
  private head = 0;
  private busyUntil = 0;
  private resumedAt = 0;
  private commandsSeen = 0;
  private readonly injections = new Map<number, number>();
  private readonly ctx: CommandContext;

  constructor(options: TmpmEngineOptions) {
    this.firmware = options.firmware;
    this.rmp = options.firmware.rmp;
    this.host = options.firmware.memory;
    this.tables = options.tables;
    this.clock = options.clock ?? new ManualClock();
    this.costs = { ...DEFAULT_TMPM_COSTS, ...options.costs };
    this.timed = options.completion === "timed";
    this.engineFlushesIotlb = options.engineFlushesIotlb ?? true;
    this.snp = options.snp ?? true;
    this.holdSlots = options.holdSlots ?? 16;
    if (!Number.isInteger(this.holdSlots) || this.holdSlots < 1)
      fail("EINVAL", "holdSlots", options.holdSlots, "must be an integer >= 1");
    this.movable =
      typeof (this.clock as ManualClock).advance === "function"
        ? (this.clock as ManualClock)
        : null;
    const caps = options.capabilities ?? {};
    this.support =
      (caps.psmashIo === false ? 0 : CapabilityBit.PSMASH_IO) |
      (caps.punsmashIo === false ? 0 : CapabilityBit.PUNSMASH_IO) |
      (caps.reload === false ? 0 : CapabilityBit.RELOAD);
    this.regs[TmpmReg.STATUS] = STATUS_ENGINE_READY;
    this.ctx = {
      rmp: this.rmp,
      firmware: this.firmware,
      host: this.host,
      tables: this.tables,
      isMapped: (pa) => this.mapped.has(Math.floor(pa / 4096)),
      isPoisoned: (pa) => this.poisoned.has(Math.floor(pa / 4096)),
    };
  }

  // ---- the mailbox ----------------------------------------------------------

  /** Reads a register (completing whatever is due first). */
  readReg(reg: number): number {
    this.process();
    return this.regs[reg]!;
  }

  /** Writes a register: RBCTL drives init/pause/shutdown, RBHEAD rings the doorbell. */
  writeReg(reg: number, value: number): void {
    value >>>= 0;
    if (reg === TmpmReg.RBCTL) this.writeRbctl(value);
    else if (reg === TmpmReg.RBHEAD) this.doorbell(value & 0xffff, value);
    else if (reg !== TmpmReg.RBTAIL && reg !== TmpmReg.STATUS) this.regs[reg] = value; // those two are read-only for the driver
  }

  private writeRbctl(value: number): void {
    const was = this.regs[TmpmReg.RBCTL]!;
    this.regs[TmpmReg.RBCTL] = value & (RBCTL_INIT | RBCTL_PAUSE);
    if (value & RBCTL_INIT && !(was & RBCTL_INIT)) this.init();
    if (!(value & RBCTL_INIT) && was & RBCTL_INIT) this.shutdown();
    // The toggle inverts whenever an RBCTL write takes effect.
    this.regs[TmpmReg.STATUS] = (this.regs[TmpmReg.STATUS]! ^ STATUS_TOGGLE) >>> 0;
    this.emit({ kind: "toggle", at: this.now() });
    if (was & RBCTL_PAUSE && !(value & RBCTL_PAUSE)) this.resumedAt = this.now();
    if (!(value & RBCTL_PAUSE)) this.process();
  }

  private init(): void {
    const ring = this.ringPa;
    const ok =
      this.regs[TmpmReg.CDATA] === 1 &&
      ring % 4096 === 0 &&
      this.host.owns(ring) &&
      (!this.snp || (ring % 2 ** 21 === 0 && this.rmp.pageState(ring) === "HV-Fixed"));
    if (!ok) return;
    this.head = this.regs[TmpmReg.RBHEAD]! & 0xffff;
    this.regs[TmpmReg.RBTAIL] = this.head;
    this.regs[TmpmReg.STATUS] =
      (this.regs[TmpmReg.STATUS]! | STATUS_DRIVER_INIT) & ~(STATUS_RB_ERR | STATUS_WPTR_ERR);
  }

  private shutdown(): void {
    // Commands not started are aborted; one in progress would have completed by now
    // in the driver's model (it drains before clearing INIT unless RB_ERR).
    for (const f of this.queue) this.finish(f, TmpmStatus.MEM_ABORTED, false);
    this.queue.length = 0;
    this.releaseStalls();
    this.regs[TmpmReg.STATUS] = this.regs[TmpmReg.STATUS]! & ~STATUS_DRIVER_INIT;
  }

  /** Physical address of the ring (RBHIGH:RBLOW). */
  get ringPa(): number {
    return this.regs[TmpmReg.RBHIGH]! * 0x100000000 + this.regs[TmpmReg.RBLOW]!;
  }

  /** True once INIT succeeded and until shutdown or an error. */
  get running(): boolean {
    const s = this.regs[TmpmReg.STATUS]!;
    return (s & STATUS_DRIVER_INIT) !== 0 && (s & STATUS_RB_ERR) === 0;
  }

  private doorbell(newHead: number, raw: number): void {
    this.regs[TmpmReg.RBHEAD] = raw;
    if (!this.running) return;
    if (raw >>> 16 !== 0 || newHead >= RING_ENTRIES) {
      this.error(STATUS_WPTR_ERR | STATUS_RB_ERR);
      return;
    }
    // A head that catches up with the tail would make a full ring read as empty
    // (head == tail is empty: the driver's is_rb_empty), so at most 255 entries
    // can be in flight; a head written past that is a bad head (our inference).
    const added = (newHead - this.head + RING_ENTRIES) % RING_ENTRIES;
    if (added > 0 && this.queue.length + added >= RING_ENTRIES) {
      this.error(STATUS_WPTR_ERR | STATUS_RB_ERR);
      return;
    }
    const now = this.now();
    for (let slot = this.head; slot !== newHead; slot = (slot + 1) % RING_ENTRIES) {
      // A new entry must be pending (status 0): anything else is a corrupt ring.
      if (this.host.read32(this.entryPa(slot) + 12) !== 0) {
        this.error(STATUS_RB_ERR);
        return;
      }
      const cmd = this.host.read32(this.entryPa(slot) + 8);
      this.queue.push({
        slot,
        arrivedAt: now,
        command: cmdId(cmd),
        startAt: -1,
        doneAt: -1,
        status: 0,
        listPa: this.host.read64(this.entryPa(slot)),
        pages: null,
        windows: NO_WINDOWS,
      });
    }
    this.head = newHead;
    this.process(now);
  }

  private error(bits: number): void {
    this.regs[TmpmReg.STATUS] = (this.regs[TmpmReg.STATUS]! | bits) >>> 0;
    for (const f of this.queue) this.finish(f, TmpmStatus.MEM_ABORTED, false);
    this.queue.length = 0;
    this.releaseStalls();
    // RB_ERR always interrupts; the driver's handler shuts the engine down.
    this.emit({ kind: "error", status: this.regs[TmpmReg.STATUS]!, at: this.now() });
  }

  private entryPa(slot: number): number {
    return this.ringPa + slot * RING_ENTRY_BYTES;
  }

  // ---- time -------------------------------------------------------------------

  /**
   * The engine's time (ns): its clock's; in "immediate" mode never behind the
   * point the engine's own work has reached (the same thing when the clock is a
   * {@link ManualClock}, which the engine then moves itself).
   */
  now(): number {
    return Math.max(this.reached, this.clock.now());
  }

  /** Immediate mode: the engine's work has reached time `t`; move the clock there. */
  private reach(t: number): void {
    if (this.timed || t <= this.reached) return;
    this.reached = t;
    const now = this.clock.now();
    if (this.movable !== null && t > now) this.movable.advance(t - now);
  }

  // ---- running commands -------------------------------------------------------

  /**
   * Starts and completes what is due at `now` (default: the engine's time), in
   * ring order. In "immediate" mode everything pending runs to its end.
   */
  process(now = this.now()): void {
    // A listener that rings the doorbell from inside a command: the loop below
    // picks the new entries up once the current one has completed.
    if (this.processing) return;
    this.processing = true;
    try {
      while (this.queue.length > 0 && this.running) {
        const f = this.queue[0]!;
        if (f.startAt < 0) {
          if (this.regs[TmpmReg.RBCTL]! & RBCTL_PAUSE) return;
          // The engine runs its ring in order: a command starts when it arrived, the
          // previous one finished, and the engine was last resumed, whichever is last.
          this.start(f, Math.max(f.arrivedAt, this.busyUntil, this.resumedAt));
        }
        if (this.timed && f.doneAt > now) return;
        this.queue.shift();
        this.complete(f);
      }
    } finally {
      this.processing = false;
    }
  }

  private start(f: InFlight, at: number): void {
    // In immediate mode `at` is the engine's now: the previous command's completion
    // took time to its end, so its "stall" listeners see the clock at `from`.
    f.startAt = at;
    const entry = this.entryPa(f.slot);
    const cmd = this.host.read32(entry + 8);
    const held: RegionPlan[] = [];
    f.status = this.check(f, cmd, held);
    f.doneAt = at + this.duration(f.command, f.status, held.length);
    this.busyUntil = f.doneAt;
    if (held.length === 0) return;
    // DMA to each held region stalls until the command completes.
    f.windows = held.map((p) => ({
      spa: p.src,
      gpa: p.gpa,
      length: 2 ** 21,
      from: at,
      until: f.doneAt,
    }));
    for (const w of f.windows) this.stalls.push(w);
    for (const w of f.windows) this.emit({ kind: "stall", ...w });
  }

  /**
   * Validates a command when it starts; returns its status, or 0 when some page
   * of a PSMASH_IO / PUNSMASH_IO list has a plan (each one is pushed on `held`
   * and its region held from now on).
   */
  private check(f: InFlight, cmd: number, held: RegionPlan[]): number {
    const n = ++this.commandsSeen;
    const injected = this.injections.get(n);
    if (injected !== undefined) {
      this.injections.delete(n);
      return injected;
    }
    if ((cmd & CMD_RESERVED_MASK) !== 0) return TmpmStatus.RSVD_FIELD_NOT_ZERO;
    if (f.command === TmpmCommand.NOOP) return TmpmStatus.SUCCESS;
    if (
      f.command !== TmpmCommand.GET_CAPABILITIES &&
      !(f.command === TmpmCommand.PSMASH_IO && this.support & CapabilityBit.PSMASH_IO) &&
      !(f.command === TmpmCommand.PUNSMASH_IO && this.support & CapabilityBit.PUNSMASH_IO)
    ) {
      return TmpmStatus.INVALID_COMMAND;
    }
    // The Linux driver sends GET_CAPABILITIES and PSMASH_IO with a page count of
    // 0: 0 and 1 both mean the one page at list_paddr.
    const count = Math.max(1, cmdNumPages(cmd));
    if (f.command === TmpmCommand.GET_CAPABILITIES && count > 1)
      return TmpmStatus.INVALID_NUM_PAGES;
    if (f.listPa % 4096 !== 0 || !this.host.owns(f.listPa))
      return TmpmStatus.INVALID_TMPM_LIST_ADDR;
    // The engine reads command lists only from hypervisor-owned pages.
    if (this.rmp.lookup(f.listPa).entry.assigned) return TmpmStatus.INVALID_PAGE_PADDR;
    if (this.ctx.isPoisoned(f.listPa)) return TmpmStatus.MEM_POISONED;
    if (f.command === TmpmCommand.GET_CAPABILITIES) return TmpmStatus.SUCCESS;
    // PSMASH_IO and PUNSMASH_IO act on the RMP: meaningless unless SNP is enabled.
    if (!this.snp) return TmpmStatus.INVALID_PLATFORM_STATE;
    // Each page holds a region until the command completes: the engine has room for so many.
    if (count > this.holdSlots) return TmpmStatus.RESOURCE_NOT_AVAILABLE;
    const pagePas = commandListPages(this.ctx, f.listPa, count);
    if (typeof pagePas === "number") return pagePas;
    f.pages = validateRegionPages(
      this.ctx,
      f.command === TmpmCommand.PSMASH_IO,
      pagePas,
      (plan) => {
        // The engine holds the region's RMP entries from now on (FAIL_INUSE for others).
        this.rmp.markInUse(plan.src, RmpPageSize.SIZE_2M, true);
        held.push(plan);
      },
    );
    if (held.length > 0) return 0;
    return f.pages[0]!.status;
  }

  private duration(command: number, status: number, regions: number): number {
    if (status !== 0 && status !== TmpmStatus.SUCCESS) return this.costs.noopNs;
    switch (command) {
      case TmpmCommand.GET_CAPABILITIES:
        return this.costs.getCapabilitiesNs;
      // The engine works region by region.
      case TmpmCommand.PSMASH_IO:
        return this.costs.psmashIoNs * regions;
      case TmpmCommand.PUNSMASH_IO:
        return this.costs.punsmashIoNs * regions;
      default:
        return this.costs.noopNs;
    }
  }

  private complete(f: InFlight): void {
    this.reach(f.doneAt);
    let status = f.status;
    if (f.pages !== null && status === 0) {
      this.release(f);
      status = applyRegionPages(this.ctx, f.command === TmpmCommand.PSMASH_IO, f.pages);
      if (this.engineFlushesIotlb) {
        for (const p of f.pages) {
          if (p.plan === null || p.status !== TmpmStatus.SUCCESS) continue;
          this.emit({ kind: "iotlb-flush", iova: p.plan.gpa, length: 2 ** 21, at: f.doneAt });
        }
      }
    } else if (f.command === TmpmCommand.GET_CAPABILITIES && status === TmpmStatus.SUCCESS) {
      this.host.write32(f.listPa + CapabilitiesPage.CAP_REG, 1);
      this.host.write32(f.listPa + CapabilitiesPage.FW_REG, (0 << 24) | (51 << 16));
      this.host.write32(f.listPa + CapabilitiesPage.SPEC_REG, 58151);
      this.host.write32(f.listPa + CapabilitiesPage.SUPPORT_REG, this.support);
    }
    this.finish(f, status, true);
  }

  /** Lets go of a command's held regions and their stall windows. */
  private release(f: InFlight): void {
    if (f.pages === null) return;
    for (const p of f.pages) {
      if (p.plan !== null) this.rmp.markInUse(p.plan.src, RmpPageSize.SIZE_2M, false);
    }
    if (f.windows.length > 0) this.stalls = this.stalls.filter((w) => !f.windows.includes(w));
  }

  private finish(f: InFlight, status: number, advanceTail: boolean): void {
    if (status === TmpmStatus.MEM_ABORTED && f.pages !== null) {
      // Aborted before it could run: its planned pages did nothing.
      this.release(f);
      for (const p of f.pages) if (p.plan !== null) p.status = status;
    }
    // Each PSMASH_IO / PUNSMASH_IO page's gctx qword returns that page's status.
    if (f.pages !== null) for (const p of f.pages) writePageStatus(this.ctx, p);
    this.host.write32(this.entryPa(f.slot) + 12, status & 0xff);
    if (advanceTail) this.regs[TmpmReg.RBTAIL] = (f.slot + 1) % RING_ENTRIES;
    this.emit({
      kind: "complete",
      slot: f.slot,
      command: f.command,
      status,
      at: Math.max(f.doneAt, this.now()),
    });
  }

  private releaseStalls(): void {
    this.stalls = [];
  }

  // ---- what a simulated IOMMU asks ------------------------------------------------

  /**
   * Until when DMA to host page `spa` must wait at time `now` (a running PSMASH_IO
   * or PUNSMASH_IO on its region), or -1 when it may proceed.
   */
  dmaStallUntil(spa: number, now = this.now()): number {
    let until = -1;
    for (const w of this.stalls) {
      if (
        spa >= w.spa &&
        spa < w.spa + w.length &&
        now >= w.from &&
        now < w.until &&
        w.until > until
      ) {
        until = w.until;
      }
    }
    return until;
  }

  /** The stall windows of commands in flight. */
  stallWindows(): readonly StallWindow[] {
    return this.stalls;
  }

  /** Subscribes to engine events; returns the unsubscribe function. */
  on(listener: (e: TmpmEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private emit(e: TmpmEvent): void {
    for (const l of this.listeners) l(e);
  }

  // ---- the engine's own IOMMU domain, and faults ----------------------------------

  /** The driver identity-maps a page into the engine's IOMMU domain so the engine can reach it. */
  mapForEngine(pa: number): void {
    this.mapped.add(Math.floor(pa / 4096));
  }

  /** The driver removes a page from the engine's domain. */
  unmapForEngine(pa: number): void {
    this.mapped.delete(Math.floor(pa / 4096));
  }

  /**
   * Marks a page poisoned (an uncorrectable memory error). A command that finds
   * it poisoned when it starts returns MEM_POISONED; one that was already running
   * (it validated the page, then the error hit) returns HW_MEM_ERR when it
   * touches the page again to complete, and changes nothing there.
   */
  poison(pa: number, poisoned = true): void {
    if (poisoned) this.poisoned.add(Math.floor(pa / 4096));
    else this.poisoned.delete(Math.floor(pa / 4096));
  }

  /**
   * Firmware fault injection: the `n`-th command from now (1-based) finishes with
   * `status` and changes nothing. Every status but one has a modelled cause (see
   * the README); this is for VERSION_ERROR, whose cause the sources do not give,
   * and for testing how a caller handles any status at any command.
   */
  injectStatus(n: number, status: number): void {
    if (!Number.isInteger(n) || n < 1) fail("EINVAL", "n", n, "must be an integer >= 1");
    this.injections.set(this.commandsSeen + n, status & 0xff);
  }

  /** Commands in the ring that have not completed. */
  get inFlight(): number {
    return this.queue.length;
  }
}
