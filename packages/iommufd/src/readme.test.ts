import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { runReadmeExample } from "../../../scripts/readme-example.ts";

const here = dirname(fileURLToPath(import.meta.url));

test("README example runs and prints what its comments say", async () => {
  const { logs, expected } = await runReadmeExample(
    join(here, "..", "README.md"),
    "@smashlab/iommufd",
    join(here, "index.ts"),
  );
  expect(expected.length).toBeGreaterThan(6);
  expect(logs.slice(0, expected.length)).toEqual(expected);
});
