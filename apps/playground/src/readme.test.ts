import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { runReadmeExample } from "../../../scripts/readme-example.ts";
import { runFlow } from "./flow/run.js";
import { renderText } from "./report/text.js";

const here = dirname(fileURLToPath(import.meta.url));
const readme = join(here, "..", "README.md");

test("README example runs and prints what its comments say", async () => {
  const { logs, expected } = await runReadmeExample(
    readme,
    "@smashlab/playground",
    join(here, "index.ts"),
  );
  expect(expected.length).toBe(4);
  expect(logs.slice(0, expected.length)).toEqual(expected);
});

test("the README's excerpts of the default run are lines the default run prints", async () => {
  const { readFileSync } = await import("node:fs");
  const md = readFileSync(readme, "utf8");
  const text = renderText(runFlow({ size: 2 ** 30, seed: 1, dmas: 1000 })).split("\n");
  const blocks: string[][] = [];
  let open: string[] | null = null;
  for (const line of md.split("\n")) {
    if (line.startsWith("```")) {
      if (open === null) open = line === "```" ? [] : ["(not an output excerpt)"];
      else {
        blocks.push(open);
        open = null;
      }
    } else open?.push(line);
  }
  const excerpts = blocks.filter((b) => b[0] === "Summary" || /^6a\.1 /.test(b[0]!));
  expect(excerpts).toHaveLength(2);
  for (const block of excerpts) {
    const at = text.indexOf(block[0]!);
    expect(text.slice(at, at + block.length)).toEqual(block);
  }
});
