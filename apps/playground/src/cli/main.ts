import { type FlowOptions, type FlowResult, runFlow } from "../flow/run.js";
import { renderJson } from "../report/json.js";
import { renderText } from "../report/text.js";
import { parseCommand, UsageError } from "./args.js";
import { FLOW_USAGE, SMASHLAB_USAGE } from "./usage.js";

/** Where the CLI writes (process.stdout/stderr, or a test's buffers). */
export interface CliOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Exit statuses of the CLI. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

/** How {@link runCli} runs. */
export interface CliOptions {
  /** Print the stack of a failure inside the models too (SMASHLAB_DEBUG=1). */
  debug?: boolean;
  /** The flow to run (tests stand a failing one in). */
  flow?: (options: FlowOptions) => FlowResult;
}

/**
 * Runs the command line `argv` (without `node` and the script) and returns the
 * exit status. A usage mistake is one line on stderr and status 2; a failure
 * inside the models is one line and status 1 (with `debug`, its stack too).
 * Nothing here throws.
 */
export function runCli(argv: readonly string[], out: CliOutput, options: CliOptions = {}): number {
  try {
    const cmd = parseCommand(argv);
    if (cmd.job === "help") {
      out.stdout(cmd.topic === "flow" ? FLOW_USAGE : SMASHLAB_USAGE);
      return EXIT.OK;
    }
    const result = (options.flow ?? runFlow)(cmd.options);
    out.stdout(cmd.json ? renderJson(result) : renderText(result));
    return EXIT.OK;
  } catch (e) {
    if (e instanceof UsageError) {
      out.stderr(`smashlab: ${e.message}\n`);
      return EXIT.USAGE;
    }
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    out.stderr(`smashlab: the flow failed: ${what}\n`);
    if (options.debug === true && e instanceof Error && e.stack !== undefined)
      out.stderr(`${e.stack}\n`);
    return EXIT.FAILED;
  }
}
