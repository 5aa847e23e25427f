import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/**
 * Runs the first ```ts block of a package README with the package's own import
 * rewritten to its source, capturing console.log lines, so the README's example
 * is a test: if the example breaks or its output comments drift, the test fails.
 */
export async function runReadmeExample(
  readmePath: string,
  packageName: string,
  sourceEntry: string,
): Promise<{ code: string; logs: string[]; expected: string[] }> {
  const md = readFileSync(readmePath, "utf8");
  const m = /```ts\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error(`${readmePath}: no \`\`\`ts example`);
  const code = m[1]!;
  const expected: string[] = [];
  for (const line of code.split("\n")) {
    const c = /console\.log\(.*\);\s*\/\/ (.*)$/.exec(line);
    if (c) expected.push(c[1]!.split(":")[0]!.trim());
  }
  // Inside the package, so its other imports resolve through its node_modules.
  const file = join(dirname(readmePath), `.readme-example-${process.pid}-${Date.now()}.ts`);
  const src = pathToFileURL(sourceEntry).href;
  writeFileSync(file, code.split(`"${packageName}"`).join(JSON.stringify(src)));
  const logs: string[] = [];
  const orig = console.log;
  console.log = (...args: unknown[]) => {
    logs.push(args.map((a) => (typeof a === "string" ? a : formatValue(a))).join(" "));
  };
  try {
    await import(pathToFileURL(file).href);
  } finally {
    console.log = orig;
    rmSync(file, { force: true });
  }
  return { code, logs, expected };
}

function formatValue(v: unknown): string {
  if (v instanceof Map) {
    return `Map(${v.size}) { ${[...v].map(([k, x]) => `${formatValue(k)} => ${formatValue(x)}`).join(", ")} }`;
  }
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}
