import type { EngineResult } from "@smashlab/hw-engine";
import type { Machine } from "../machine/machine.js";
import type { DmaTally } from "../machine/trusted-device.js";

/**
 * Runs one TMPM command (`run` calls the driver) while the device keeps doing
 * DMA: the device issues its burst when the engine starts the command and
 * stalls DMA to the region, so every access to the region waits; when the
 * command has completed the held accesses go on through the new tables.
 */
export function engineCallUnderDma(
  m: Machine,
  iovas: readonly number[],
  tally: DmaTally,
  run: () => EngineResult,
): EngineResult {
  const off = m.engine.on((e) => {
    if (e.kind === "stall") m.device.burst(iovas, tally, e.from);
  });
  let result: EngineResult;
  try {
    result = run();
  } finally {
    off();
  }
  m.device.releaseHeld(tally);
  if (result.stall !== null) tally.heldNs = result.stall.until - result.stall.from;
  return result;
}
