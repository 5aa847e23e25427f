import { expect, test } from "vitest";
import { PACKAGE } from "./index.js";

test("workspace smoke", () => {
  expect(PACKAGE).toBe("@smashlab/pagetable");
});
