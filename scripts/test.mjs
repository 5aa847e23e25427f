#!/usr/bin/env node
// The README's test command lands here: lint, type-check, build, then every vitest
// project in one run. CI reads the plain "N passed, N failed" line printed at the end.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const resultsFile = join(root, ".vitest-results.json");

function step(label, cmd, args) {
  console.log(`\n== ${label}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env });
  return r.status === 0;
}

const extraArgs = process.argv.slice(2);
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1" };
let setupFailures = 0;
if (!step("lint (biome ci)", bin("biome"), ["ci", "."])) setupFailures++;
if (!step("type-check (tsc, sources and tests)", bin("tsc"), ["-p", "tsconfig.check.json"]))
  setupFailures++;
if (!step("build (turbo)", bin("turbo"), ["run", "build", "--output-logs=errors-only"]))
  setupFailures++;

rmSync(resultsFile, { force: true });
const vitestOk = step("tests (vitest)", bin("vitest"), [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${resultsFile}`,
  ...extraArgs,
]);

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(resultsFile)) {
  const r = JSON.parse(readFileSync(resultsFile, "utf8"));
  passed = r.numPassedTests ?? 0;
  failed = r.numFailedTests ?? 0;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A suite that fails to load counts no test, yet must fail the run.
  failed += (r.testResults ?? []).filter(
    (f) => f.status === "failed" && (f.assertionResults ?? []).length === 0,
  ).length;
} else {
  failed += 1;
}
failed += setupFailures;
if (!vitestOk && failed === 0) failed = 1;

// The last line is exactly "N passed, N failed", whatever else was counted.
if (skipped) console.log(`\n${skipped} skipped (skip, todo)`);
console.log(`${skipped ? "" : "\n"}${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
