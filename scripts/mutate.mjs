#!/usr/bin/env node
// `pnpm mutate [package...] [--files glob]`: Stryker mutation testing, one package at a
// time (its own vitest project as the test runner), incremental: results are kept in
// packages/<pkg>/reports/stryker-incremental.json (gitignored), so a rerun only tests
// mutants in code or tests that changed. Outside the test command: it takes minutes.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
let files = null;
const names = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--files") files = args[++i];
  else names.push(args[i]);
}
const all = readdirSync(join(root, "packages")).filter((p) =>
  existsSync(join(root, "packages", p, "vitest.config.ts")),
);
const pkgs = names.length > 0 ? names : all;
const scores = [];
for (const pkg of pkgs) {
  const dir = join(root, "packages", pkg);
  if (!all.includes(pkg)) {
    console.error(`mutate: no package "${pkg}" (one of ${all.join(", ")})`);
    process.exit(2);
  }
  const config = {
    $schema: "../../node_modules/@stryker-mutator/core/schema/stryker-schema.json",
    packageManager: "pnpm",
    testRunner: "vitest",
    plugins: ["@stryker-mutator/vitest-runner"],
    vitest: { configFile: "vitest.config.ts", related: false },
    coverageAnalysis: "perTest",
    mutate: files
      ? files.split(",")
      : [
          "src/**/*.ts",
          "!src/**/*.test.ts",
          "!src/test/**",
          "!src/test-support/**",
          "!src/index.ts",
        ],
    inPlace: true,
    incremental: true,
    incrementalFile: "reports/stryker-incremental.json",
    reporters: ["clear-text", "progress", "json"],
    jsonReporter: { fileName: "reports/mutation.json" },
    clearTextReporter: {
      allowColor: false,
      logTests: false,
      reportMutants: false,
      reportScoreTable: true,
    },
    concurrency: 2,
    timeoutMS: 20000,
    tempDirName: ".stryker-tmp",
    cleanTempDir: "always",
    thresholds: { high: 85, low: 70, break: null },
  };
  const configFile = join(dir, ".stryker.conf.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  console.log(`\n== mutate ${pkg}`);
  const r = spawnSync(
    join(root, "node_modules", ".bin", "stryker"),
    ["run", ".stryker.conf.json"],
    {
      cwd: dir,
      stdio: "inherit",
      env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" },
    },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  scores.push([pkg, score(join(dir, "reports", "mutation.json"))]);
}
console.log(
  "\nmutation score, (killed + timeout) / (mutants that compiled and ran, uncovered ones included), by package:",
);
for (const [pkg, s] of scores) console.log(`  ${pkg.padEnd(12)} ${s}`);

function score(file) {
  const report = JSON.parse(readFileSync(file, "utf8"));
  let detected = 0;
  let valid = 0;
  for (const f of Object.values(report.files)) {
    for (const m of f.mutants) {
      if (m.status === "CompileError" || m.status === "RuntimeError" || m.status === "Ignored")
        continue;
      valid++;
      if (m.status === "Killed" || m.status === "Timeout") detected++;
    }
  }
  return valid === 0
    ? "no mutants"
    : `${((100 * detected) / valid).toFixed(1)}% (${detected}/${valid})`;
}
