import { describe, expect, test } from "vitest";
import { FlowError } from "../flow/status.js";
import { type CliOptions, EXIT, runCli } from "./main.js";

function capture(argv: string[], options: CliOptions = {}) {
  let stdout = "";
  let stderr = "";
  const status = runCli(
    argv,
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
    options,
  );
  return { status, stdout, stderr };
}

const failing = () => {
  throw new FlowError("PSMASH(0x10019e00000) returned FAIL_INUSE, the flow expects SUCCESS");
};

describe("runCli", () => {
  test("a failure inside the models is one line on stderr and exit 1", () => {
    expect(capture(["flow", "--size", "2M"], { flow: failing })).toEqual({
      status: EXIT.FAILED,
      stdout: "",
      stderr:
        "smashlab: the flow failed: FlowError: PSMASH(0x10019e00000) returned FAIL_INUSE, the flow expects SUCCESS\n",
    });
  });

  test("with debug, the stack follows that line", () => {
    const r = capture(["flow"], { flow: failing, debug: true });
    expect(r.status).toBe(EXIT.FAILED);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^smashlab: the flow failed: FlowError: /);
    expect(lines.slice(1).some((l) => /^\s+at /.test(l))).toBe(true);
  });

  test("a usage mistake never reaches the flow", () => {
    let ran = false;
    const r = capture(["flow", "--size", "5M"], {
      flow: () => {
        ran = true;
        throw new Error("must not run");
      },
    });
    expect(ran).toBe(false);
    expect(r.status).toBe(EXIT.USAGE);
  });
});
