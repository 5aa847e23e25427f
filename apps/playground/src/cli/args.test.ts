import { describe, expect, test } from "vitest";
import { MAX_GUEST_BYTES } from "../machine/machine.js";
import { DEFAULT_FLOW_OPTIONS, parseCommand, parseSize, UsageError } from "./args.js";

const G = 2 ** 30;
const M = 2 ** 20;

function usageError(argv: string[]): string {
  try {
    parseCommand(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`${argv.join(" ")} parsed`);
}

describe("parseCommand", () => {
  test("flow with no options runs the defaults: 1G, seed 1, 1000 DMAs, text", () => {
    expect(parseCommand(["flow"])).toEqual({
      job: "flow",
      options: { size: G, seed: 1, dmas: 1000 },
      json: false,
    });
    expect(DEFAULT_FLOW_OPTIONS).toEqual({ size: G, seed: 1, dmas: 1000 });
  });

  test("every option, as separate values and with =", () => {
    const want = { job: "flow", options: { size: 512 * M, seed: 42, dmas: 7 }, json: true };
    expect(
      parseCommand(["flow", "--size", "512M", "--seed", "42", "--dmas", "7", "--json"]),
    ).toEqual(want);
    expect(parseCommand(["flow", "--json", "--size=512M", "--seed=42", "--dmas=7"])).toEqual(want);
  });

  test("help, for the program and for the job", () => {
    for (const a of [["--help"], ["-h"], ["help"]])
      expect(parseCommand(a)).toEqual({ job: "help", topic: "smashlab" });
    for (const a of [
      ["flow", "--help"],
      ["flow", "--size", "1G", "-h"],
    ])
      expect(parseCommand(a)).toEqual({ job: "help", topic: "flow" });
  });

  test("each mistake has its own message naming the option and the value", () => {
    expect(usageError([])).toBe("no job given: the job is flow (see smashlab --help)");
    expect(usageError(["flwo"])).toBe(
      'unknown job "flwo": the only job is flow (see smashlab --help)',
    );
    expect(usageError(["flow", "--sise", "1G"])).toBe(
      'unknown option "--sise" (see smashlab flow --help)',
    );
    expect(usageError(["flow", "1G"])).toBe('unexpected argument "1G" (see smashlab flow --help)');
    expect(usageError(["flow", "--size"])).toBe("--size needs a value, e.g. --size 1G");
    expect(usageError(["flow", "--size", "--json"])).toBe("--size needs a value, e.g. --size 1G");
    expect(usageError(["flow", "--seed", "-1"])).toBe('--seed "-1": expected a whole number');
    expect(usageError(["flow", "--seed", "4294967296"])).toBe(
      "--seed 4294967296: must be in 0..4294967295",
    );
    expect(usageError(["flow", "--dmas", "0"])).toBe("--dmas 0: must be in 1..1000000");
    expect(usageError(["flow", "--dmas", "1e3"])).toBe('--dmas "1e3": expected a whole number');
    expect(usageError(["flow", "--json=yes"])).toBe("--json takes no value");
  });
});

describe("parseSize", () => {
  test("units K, M, G, T, optional iB or B, any case; plain bytes", () => {
    expect(parseSize("1G")).toBe(G);
    expect(parseSize("1GiB")).toBe(G);
    expect(parseSize("1gb")).toBe(G);
    expect(parseSize("2048M")).toBe(2 * G);
    expect(parseSize("2097152")).toBe(2 * M);
    expect(parseSize("4096K")).toBe(4 * M);
    expect(parseSize(`${MAX_GUEST_BYTES / G}G`)).toBe(MAX_GUEST_BYTES);
  });

  test("refuses what is not a whole multiple of 2M in 2M..the maximum", () => {
    const msg = (t: string) => {
      try {
        parseSize(t);
      } catch (e) {
        return (e as Error).message;
      }
      return "parsed";
    };
    expect(msg("3M")).toBe(
      "--size 3M: must be a non-zero multiple of 2M (the guest is backed by 2M folios)",
    );
    expect(msg("0")).toBe(
      "--size 0: must be a non-zero multiple of 2M (the guest is backed by 2M folios)",
    );
    expect(msg("1.5G")).toBe('--size "1.5G": expected a size such as 1G or 512M');
    expect(msg("-1G")).toBe('--size "-1G": expected a size such as 1G or 512M');
    expect(msg("1P")).toBe('--size "1P": expected a size such as 1G or 512M');
    expect(msg("")).toBe('--size "": expected a size such as 1G or 512M');
    expect(msg("1T")).toBe(`--size 1T: at most 256G`);
    expect(msg("99999999999999999999")).toBe("--size 99999999999999999999: at most 256G");
  });
});
