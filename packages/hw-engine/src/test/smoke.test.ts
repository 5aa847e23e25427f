import { RmpPageSize } from "@smashlab/rmp";
import { expect, test } from "vitest";
import { GPA, HPA, M2, machine, translations } from "../test-support/machine.js";

test("PSMASH_IO then PUNSMASH_IO", () => {
  const m = machine();
  const before = translations(m);
  const fp = m.domain.fingerprint();
  const tables = m.domain.tablesInUse;
  const r = m.driver.psmashIo(m.gctx, m.domain, HPA + 3 * M2);
  expect(r.gpa).toBe(GPA + 3 * M2);
  expect(translations(m)).toEqual(before);
  expect(m.rmp.levelOf(HPA + 3 * M2)).toBe(RmpPageSize.SIZE_4K);
  expect(m.domain.stats().leavesBySize.get(12)).toBe(512);
  expect(m.domain.tablesInUse).toBe(tables + 1);
  m.driver.punsmashIo(m.gctx, m.domain, HPA + 3 * M2);
  expect(m.domain.fingerprint()).toBe(fp);
  expect(m.rmp.levelOf(HPA + 3 * M2)).toBe(RmpPageSize.SIZE_2M);
  expect(m.domain.tablesInUse).toBe(tables);
});
