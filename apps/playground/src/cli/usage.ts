import { MAX_GUEST_BYTES } from "../machine/machine.js";
import { formatBytes } from "../units.js";
import { DEFAULT_FLOW_OPTIONS, MAX_DMAS } from "./args.js";

/** `smashlab --help`. */
export const SMASHLAB_USAGE = `usage: smashlab <job> [options]

jobs:
  flow    the seed flow end to end: IOAS, a HWPT capped at 2M, the guest's memory
          mapped from a file, the RMP at 2M, trusted DMA, then one 4K page shared
          inside a 2M region three ways (RMP first, IO leaf first, PSMASH_IO) and
          back to private with PUNSMASH_IO

smashlab flow --help lists the job's options.
`;

/** `smashlab flow --help`. */
export const FLOW_USAGE = `usage: smashlab flow [--size SIZE] [--seed N] [--dmas N] [--json]

Runs the seed flow on a small confidential VM and prints the state after every step:
IO leaves by size, RMP entries by size, table pages in use, and the trusted device's
DMA checks, passed and failed with their reasons and hazards (coco.md section 7).

options:
  --size SIZE  guest memory, a multiple of 2M up to ${formatBytes(MAX_GUEST_BYTES)} (default ${formatBytes(DEFAULT_FLOW_OPTIONS.size)}); 512M, 1G, 4G, ...
  --seed N     picks the page to share and the DMA targets, 0..4294967295 (default ${DEFAULT_FLOW_OPTIONS.seed});
               the same options always print the same output, byte for byte
  --dmas N     DMA writes the device does after each step, 1..${MAX_DMAS} (default ${DEFAULT_FLOW_OPTIONS.dmas})
  --json       print the result as JSON instead of text
  --help       print this help

exit status: 0 when the flow ran, 2 for a mistake in the options, 1 if a model failed.
`;
