/**
 * AMD's TMPM engine with PSMASH_IO and PUNSMASH_IO over real page tables
 * (`@smashlab/pagetable`) and the real RMP (`@smashlab/rmp`): the device (its
 * mailbox, ring and commands), and the Linux driver on top, done right (the PTE
 * page belongs to the domain's allocator; IOVA must equal GPA).
 *
 * @packageDocumentation
 */
export { LIST_NEXT_OFFSET } from "./commands/command-list.js";
export type { PsmashIoPlan } from "./commands/psmash-io.js";
export type { PunsmashIoPlan } from "./commands/punsmash-io.js";
export {
  type StallWindow,
  TmpmEngine,
  type TmpmEngineOptions,
  type TmpmEvent,
} from "./device/engine.js";
export { type GuestContext, type IoPageTableRoot, SnpFirmware } from "./device/firmware.js";
export { type EngineResult, TmpmDriver, type TmpmDriverOptions } from "./driver/driver.js";
export { type EngineErrno, EngineError } from "./errors.js";
export { HostMemory, type HostMemoryOptions } from "./memory/host-memory.js";
export {
  CapabilitiesPage,
  CapabilityBit,
  cmdId,
  cmdNumPages,
  cmdWord,
  PsmashIoPage,
  PunsmashIoPage,
  TmpmCommand,
} from "./spec/commands.js";
export {
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
} from "./spec/registers.js";
export { statusName, TmpmStatus } from "./spec/status.js";
export { DEFAULT_TMPM_COSTS, type EngineClock, ManualClock, type TmpmCosts } from "./time/clock.js";
