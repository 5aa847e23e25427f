/**
 * smashlab's playground: the seed flow end to end through the real packages
 * (`@smashlab/pagetable`, `@smashlab/rmp`, `@smashlab/iommufd`,
 * `@smashlab/hw-engine`), as a library and as the `smashlab` command line.
 *
 * @packageDocumentation
 */
export {
  type Command,
  DEFAULT_FLOW_OPTIONS,
  MAX_DMAS,
  parseCommand,
  parseFlowArgs,
  parseInteger,
  parseSize,
  UsageError,
} from "./cli/args.js";
export { type CliOptions, type CliOutput, EXIT, runCli } from "./cli/main.js";
export { HAZARD_TITLES, seedFlowHazards } from "./flow/hazards.js";
export type { RestoreCheck } from "./flow/return-to-private.js";
export { type FlowOptions, type FlowResult, runFlow } from "./flow/run.js";
export type { VariantId, VariantResult } from "./flow/share-variants.js";
export { FlowError } from "./flow/status.js";
export {
  GUEST_ASID,
  GUEST_GPA,
  type Leftovers,
  MAX_GUEST_BYTES,
  Machine,
  type MachineOptions,
} from "./machine/machine.js";
export {
  type DmaTally,
  emptyTally,
  failedCount,
  type HazardAttribution,
  IO_PAGE_FAULT,
  TrustedDevice,
} from "./machine/trusted-device.js";
export { renderJson } from "./report/json.js";
export type { RmpCounts, StateSnapshot, StepReport } from "./report/state.js";
export { renderText } from "./report/text.js";
export { SeededRng } from "./rng.js";
