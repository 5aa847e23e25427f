import { RmpUpdateRet } from "@smashlab/rmp";
import { describe, expect, test } from "vitest";
import { ManualClock, type StallWindow, TmpmCommand, type TmpmEvent } from "../index.js";
import { HPA, K4, M2, type Machine, machine } from "../test-support/machine.js";

/** What a "stall" listener can see of the running command. */
interface Seen {
  window: StallWindow;
  now: number;
  engineNow: number;
  stalledHere: number;
  stalledInside: number;
  stalledElsewhere: number;
  rmpupdate: number;
}

/** Records, inside each "stall" event, what a simulated IOMMU would ask the engine. */
function watchStalls(m: Machine): Seen[] {
  const seen: Seen[] = [];
  m.engine.on((e: TmpmEvent) => {
    if (e.kind !== "stall") return;
    seen.push({
      window: { spa: e.spa, gpa: e.gpa, length: e.length, from: e.from, until: e.until },
      now: m.clock.now(),
      engineNow: m.engine.now(),
      stalledHere: m.engine.dmaStallUntil(e.spa),
      stalledInside: m.engine.dmaStallUntil(e.spa + 511 * K4),
      stalledElsewhere: m.engine.dmaStallUntil(e.spa + M2),
      rmpupdate: m.rmp.rmpupdate(e.spa + K4, {
        assigned: false,
        pageSize: 0,
        immutable: false,
        asid: 0,
        gpa: 0,
      }),
    });
  });
  return seen;
}

describe("immediate completion: time moves with the engine's work", () => {
  test("a stall listener sees DMA to the region held for the command's whole window, and the clock inside it", () => {
    const m = machine(2, { completion: "immediate" });
    // GET_CAPABILITIES at init took 2 µs: the engine's clock has moved past it.
    expect(m.clock.now()).toBe(m.engine.costs.getCapabilitiesNs);
    const seen = watchStalls(m);
    const r = m.driver.psmashIo(m.gctx, m.domain, HPA);
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect(s.window).toEqual(r.stall);
    expect(s.window.from).toBe(2_000);
    expect(s.window.until).toBe(2_000 + m.engine.costs.psmashIoNs);
    expect(s.now).toBe(s.window.from);
    expect(s.engineNow).toBe(s.window.from);
    expect(s.stalledHere).toBe(s.window.until);
    expect(s.stalledInside).toBe(s.window.until);
    expect(s.stalledElsewhere).toBe(-1);
    // The engine holds the region's RMP entries meanwhile.
    expect(s.rmpupdate).toBe(RmpUpdateRet.FAIL_INUSE);
    // The submit returned at the command's end: the stall is over.
    expect(m.clock.now()).toBe(s.window.until);
    expect(m.engine.dmaStallUntil(HPA)).toBe(-1);
    expect(m.engine.stallWindows()).toEqual([]);
  });

  test("commands follow one another in time: each starts where the last ended; completions are in time order", () => {
    const m = machine(2);
    const seen = watchStalls(m);
    const done: number[] = [];
    m.engine.on((e) => e.kind === "complete" && done.push(e.at));
    m.driver.psmashIo(m.gctx, m.domain, HPA);
    m.driver.punsmashIo(m.gctx, m.domain, HPA);
    m.driver.psmashIo(m.gctx, m.domain, HPA + M2);
    expect(seen.map((s) => s.window.from)).toEqual([
      2_000,
      2_000 + m.engine.costs.psmashIoNs,
      2_000 + m.engine.costs.psmashIoNs + m.engine.costs.punsmashIoNs,
    ]);
    for (const s of seen) expect([s.now, s.stalledHere]).toEqual([s.window.from, s.window.until]);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(m.clock.now()).toBe(seen[2]!.window.until);
  });

  test("a listener that rings the doorbell inside a command: the new entry runs after it, each completing once, in ring order", () => {
    const m = machine(2);
    const completions: [number, number, number][] = [];
    m.engine.on((e) => {
      if (e.kind === "complete") completions.push([e.slot, e.command, e.at]);
    });
    let inner = -1;
    const off = m.engine.on((e) => {
      if (e.kind === "stall") inner = m.driver.submit(TmpmCommand.NOOP, m.host.alloc(), 0);
    });
    const r = m.driver.psmashIo(m.gctx, m.domain, HPA);
    off();
    expect(m.driver.slotStatus(inner)).toBe(0xf0);
    const until = r.stall!.until;
    expect(completions).toEqual([
      [inner - 1, TmpmCommand.PSMASH_IO, until],
      [inner, TmpmCommand.NOOP, until + m.engine.costs.noopNs],
    ]);
  });

  test("a clock the engine cannot move: the engine's own time runs ahead of it, and stall queries use it", () => {
    let outside = 0;
    const m = machine(2, { clock: { now: () => outside } }, { clock: new ManualClock() });
    const seen = watchStalls(m);
    m.driver.psmashIo(m.gctx, m.domain, HPA);
    const s = seen[0]!;
    expect(s.engineNow).toBe(s.window.from);
    expect(s.stalledHere).toBe(s.window.until);
    expect(m.engine.now()).toBe(s.window.until);
    // Once the outside clock passes the engine's, it is the engine's time again.
    outside = s.window.until + 5;
    expect(m.engine.now()).toBe(outside);
  });
});

describe("timed completion: time is the caller's", () => {
  test("a submit does not move the clock; the command waits in the ring until the caller's time reaches its end", () => {
    const m = machine(2, { completion: "timed" });
    const seen = watchStalls(m);
    const t0 = m.clock.now();
    const slot = m.driver.submit(TmpmCommand.NOOP, m.host.alloc(), 0);
    expect(m.clock.now()).toBe(t0);
    expect(m.engine.inFlight).toBe(1);
    m.clock.advance(m.engine.costs.noopNs);
    expect(m.driver.slotStatus(slot)).not.toBe(0);
    m.driver.psmashIo(m.gctx, m.domain, HPA);
    // The driver's polling moved time, in its 25 µs steps, past the command's end.
    const s = seen[0]!;
    expect(s.now).toBe(s.window.from);
    expect(m.clock.now()).toBeGreaterThanOrEqual(s.window.until);
    expect(m.clock.now() - s.window.until).toBeLessThan(m.engine.costs.pollIntervalNs);
  });
});
