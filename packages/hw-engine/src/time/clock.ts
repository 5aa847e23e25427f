import { fail } from "../errors.js";

/**
 * The engine's notion of time, in nanoseconds. Standalone (library) use keeps a
 * {@link ManualClock} that only the caller (or the driver's polling) advances; a
 * simulator passes its own clock and calls `TmpmEngine.process()` as time passes.
 */
export interface EngineClock {
  now(): number;
}

/** A clock advanced by hand. */
export class ManualClock implements EngineClock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  /** Moves time forward by `ns`. */
  advance(ns: number): void {
    if (!(ns >= 0)) fail("EINVAL", "ns", ns, "time only moves forward");
    this.t += ns;
  }
}

/**
 * How long things take (ns). Defaults and where they come from:
 * - PSMASH_IO / PUNSMASH_IO: 1 ms, DMA to the region stalled meanwhile ("suspends
 *   DMA for a few ms", AK 21 Jan 2026; the low end, since "a few" is a worst case);
 * - NOOP 1 µs and GET_CAPABILITIES 2 µs: a firmware round trip (assumed);
 * - the driver polls every 25 µs and gives up after 25 ms (TMPM driver).
 */
export interface TmpmCosts {
  noopNs: number;
  getCapabilitiesNs: number;
  psmashIoNs: number;
  punsmashIoNs: number;
  pollIntervalNs: number;
  pollTimeoutNs: number;
}

/** The default cost table. */
export const DEFAULT_TMPM_COSTS: Readonly<TmpmCosts> = {
  noopNs: 1_000,
  getCapabilitiesNs: 2_000,
  psmashIoNs: 1_000_000,
  punsmashIoNs: 1_000_000,
  pollIntervalNs: 25_000,
  pollTimeoutNs: 25_000_000,
};
