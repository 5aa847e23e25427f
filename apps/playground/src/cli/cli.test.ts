import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";
import { runFlow } from "../flow/run.js";
import { renderJson } from "../report/json.js";
import { renderText } from "../report/text.js";
import { DEFAULT_FLOW_OPTIONS } from "./args.js";
import { FLOW_USAGE, SMASHLAB_USAGE } from "./usage.js";

// The CLI as a user runs it: `node apps/playground/dist/cli.js ...`, a separate process.
const app = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const root = join(app, "..", "..");
const cli = join(app, "dist", "cli.js");
const projects = [
  { dir: app, entry: "dist/cli.js" },
  ...["pagetable", "rmp", "iommufd", "hw-engine"].map((p) => ({
    dir: join(root, "packages", p),
    entry: "dist/index.js",
  })),
];

/** Newest mtime of the non-test sources under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
      newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The root test script builds before it runs vitest; a lone `vitest run` may
 * find dist missing or older than the sources. Then compile the playground and
 * what it imports, lowest layer first, with each project's own build (tsc):
 * turbo would need the package manager on PATH, which `vitest run` may not have.
 */
function ensureBuilt(): void {
  const stale = projects.some(({ dir, entry }) => {
    const out = join(dir, entry);
    return !existsSync(out) || statSync(out).mtimeMs < newestSource(join(dir, "src"));
  });
  if (!stale) return;
  const tsc = join(root, "node_modules", ".bin", "tsc");
  for (const { dir } of [...projects.slice(1), projects[0]!]) {
    const r = spawnSync(tsc, ["-p", join(dir, "tsconfig.json")], { cwd: root, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`building ${dir} failed:\n${r.stdout}${r.stderr}`);
  }
}

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(ensureBuilt, 180_000);

describe("smashlab flow, run as a user runs it", () => {
  test("the default run prints the flow: every step, the faults of 6a and 6b, none in 6c, step 7 restored", () => {
    const r = run("flow");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(renderText(runFlow({ ...DEFAULT_FLOW_OPTIONS })));
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(
      "smashlab flow (seed 1): a 1G confidential VM, ASID 5, backed by 2M folios, and one trusted device (tdi0)",
    );
    for (const id of [
      "1",
      "2",
      "3",
      "4",
      "5",
      "6a.1",
      "6a.2",
      "6a.3",
      "6b.1",
      "6c.1",
      "7.1",
      "7.2",
    ])
      expect(lines.some((l) => l.startsWith(`${id.padEnd(5)}`))).toBe(true);
    const summary = lines.slice(lines.indexOf("Summary"));
    expect(summary.find((l) => l.startsWith("  6a "))).toMatch(/FAULTS .* failed \(H1\)$/);
    expect(summary.find((l) => l.startsWith("  6b "))).toMatch(/FAULTS .* failed \(H2\)$/);
    expect(summary.find((l) => l.startsWith("  6c "))).toMatch(/no faults/);
    expect(summary.find((l) => l.startsWith("  7 "))).toMatch(
      /restored +region \d+: one 2M IO leaf/,
    );
    expect(summary.find((l) => l.includes("teardown"))).toMatch(/no leaks +0 table pages/);
  });

  test("the same options print the same bytes; another seed prints something else", () => {
    const a = run("flow", "--size", "64M", "--seed", "3");
    const b = run("flow", "--seed=3", "--size=64M");
    const c = run("flow", "--size", "64M", "--seed", "4");
    expect(a.status).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);
  });

  test("--json prints the result for scripts: parseable, and the same data as the library", () => {
    const r = run("flow", "--json", "--size", "16M", "--seed", "9", "--dmas", "50");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(renderJson(runFlow({ size: 16 * 2 ** 20, seed: 9, dmas: 50 })));
    const j = JSON.parse(r.stdout);
    expect(j.variants.map((v: { id: string; faulted: number }) => [v.id, v.faulted])).toEqual([
      ["a", 100],
      ["b", 50],
      ["c", 0],
    ]);
    expect(j.leftovers.tablePages).toBe(0);
  });

  test("--help prints the usage and exits 0", () => {
    expect(run("--help")).toEqual({ status: 0, stdout: SMASHLAB_USAGE, stderr: "" });
    expect(run("flow", "--help")).toEqual({ status: 0, stdout: FLOW_USAGE, stderr: "" });
  });

  test.each([
    [[], "smashlab: no job given: the job is flow (see smashlab --help)"],
    [["flw"], 'smashlab: unknown job "flw": the only job is flow (see smashlab --help)'],
    [
      ["flow", "--size", "3M"],
      "smashlab: --size 3M: must be a non-zero multiple of 2M (the guest is backed by 2M folios)",
    ],
    [["flow", "--size", "1T"], "smashlab: --size 1T: at most 256G"],
    [["flow", "--size"], "smashlab: --size needs a value, e.g. --size 1G"],
    [["flow", "--seed", "abc"], 'smashlab: --seed "abc": expected a whole number'],
    [["flow", "--dmas", "0"], "smashlab: --dmas 0: must be in 1..1000000"],
    [["flow", "--jsn"], 'smashlab: unknown option "--jsn" (see smashlab flow --help)'],
    [["flow", "--json=1"], "smashlab: --json takes no value"],
  ])("%j: one line on stderr, exit 2, nothing on stdout, no stack trace", (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`${message}\n`);
  });

  test("a reader that goes away before the output (| head) is no error: exit 0, no stack trace", async () => {
    const child = spawn(process.execPath, [cli, "flow"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const status = await new Promise((resolve) => child.on("close", resolve));
    expect(stderr).toBe("");
    expect(status).toBe(0);
  });
});
