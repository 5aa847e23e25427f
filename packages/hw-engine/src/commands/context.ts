import type { TableMemory } from "@smashlab/pagetable";
import type { Rmp } from "@smashlab/rmp";
import type { SnpFirmware } from "../device/firmware.js";
import type { HostMemory } from "../memory/host-memory.js";

/** What a command can see and touch: the engine's view of the machine. */
export interface CommandContext {
  readonly rmp: Rmp;
  readonly firmware: SnpFirmware;
  readonly host: HostMemory;
  /** The IOMMU page-table memory the engine edits (the domain's allocator). */
  readonly tables: TableMemory;
  /** True when the page holding `pa` is mapped in the engine's own IOMMU domain. */
  isMapped(pa: number): boolean;
  /** True when the page holding `pa` is poisoned (an uncorrectable memory error). */
  isPoisoned(pa: number): boolean;
}

/** Low 12 bits of a u64 read from a command page (as two words: no precision loss). */
export function low12(host: HostMemory, pa: number): number {
  return host.read32(pa) & 0xfff;
}
