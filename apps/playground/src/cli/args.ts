import type { FlowOptions } from "../flow/run.js";
import { MAX_GUEST_BYTES } from "../machine/machine.js";
import { formatBytes, M2 } from "../units.js";

/** A mistake in the command line: reported as one line on stderr and exit code 2, never a stack trace. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The `flow` job's defaults: a 1G guest, seed 1, 1000 DMAs after each step. */
export const DEFAULT_FLOW_OPTIONS: Readonly<FlowOptions> = { size: 2 ** 30, seed: 1, dmas: 1000 };

/** Most DMAs per step the playground accepts (more says nothing new and only takes longer). */
export const MAX_DMAS = 1_000_000;

/** What the command line asks for. */
export type Command =
  | { job: "help"; topic: "smashlab" | "flow" }
  | { job: "flow"; options: FlowOptions; json: boolean };

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

/**
 * Parses a guest size: "1G", "512M", "1GiB", "2048m" or plain bytes. It must be
 * a multiple of 2M (the guest is backed by 2M folios), from 2M to
 * {@link MAX_GUEST_BYTES}.
 */
export function parseSize(text: string): number {
  const m = /^(\d+)([KMGT]?)(?:i?B)?$/i.exec(text);
  if (m === null) throw new UsageError(`--size ${quote(text)}: expected a size such as 1G or 512M`);
  const n = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(n) || n > MAX_GUEST_BYTES) {
    throw new UsageError(`--size ${text}: at most ${formatBytes(MAX_GUEST_BYTES)}`);
  }
  if (n === 0 || n % M2 !== 0) {
    throw new UsageError(
      `--size ${text}: must be a non-zero multiple of 2M (the guest is backed by 2M folios)`,
    );
  }
  return n;
}

/** Parses a decimal integer option in [min, max]. */
export function parseInteger(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${name} ${quote(text)}: expected a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${name} ${text}: must be in ${min}..${max}`);
  return n;
}

/** Parses the whole command line (without `node` and the script). */
export function parseCommand(argv: readonly string[]): Command {
  const [job, ...rest] = argv;
  if (job === undefined) {
    throw new UsageError("no job given: the job is flow (see smashlab --help)");
  }
  if (job === "--help" || job === "-h" || job === "help") return { job: "help", topic: "smashlab" };
  if (job !== "flow") {
    throw new UsageError(`unknown job ${quote(job)}: the only job is flow (see smashlab --help)`);
  }
  return parseFlowArgs(rest);
}

/** Parses the `flow` job's options: --size, --seed, --dmas, --json, --help. */
export function parseFlowArgs(argv: readonly string[]): Command {
  const options: FlowOptions = { ...DEFAULT_FLOW_OPTIONS };
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const value = (example: string): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || (inline === undefined && v.startsWith("--"))) {
        throw new UsageError(`${flag} needs a value, e.g. ${flag} ${example}`);
      }
      return v;
    };
    switch (flag) {
      case "--size":
        options.size = parseSize(value("1G"));
        break;
      case "--seed":
        options.seed = parseInteger("--seed", value("7"), 0, 0xffffffff);
        break;
      case "--dmas":
        options.dmas = parseInteger("--dmas", value("1000"), 1, MAX_DMAS);
        break;
      case "--json":
        if (inline !== undefined) throw new UsageError("--json takes no value");
        json = true;
        break;
      case "--help":
      case "-h":
        return { job: "help", topic: "flow" };
      default:
        throw new UsageError(
          arg.startsWith("-")
            ? `unknown option ${quote(arg)} (see smashlab flow --help)`
            : `unexpected argument ${quote(arg)} (see smashlab flow --help)`,
        );
    }
  }
  return { job: "flow", options, json };
}

function quote(s: string): string {
  return JSON.stringify(s);
}
