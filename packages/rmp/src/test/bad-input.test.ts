import { describe, expect, test } from "vitest";
import { PgLevel, Rmp, RmpError, rmpMakeHvFixed, rmpMakePrivate, rmpMakeShared } from "../index.js";

const good = { assigned: true, pageSize: 0, immutable: false, asid: 1, gpa: 0 } as const;
const gv = { asid: 1, gpa: 0, pageSize: 0, validate: true } as const;
const adj = {
  asid: 1,
  gpa: 0,
  pageSize: 0,
  callerVmpl: 0,
  targetVmpl: 1,
  perms: 1,
  vmsa: false,
} as const;

/** Expects an RmpError naming `argument`, and no change to the table. */
function refuses(rmp: Rmp, call: () => unknown, argument: string, code = "EINVAL"): void {
  const before = rmp.fingerprint();
  let err: unknown;
  try {
    call();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RmpError);
  expect((err as RmpError).argument).toBe(argument);
  expect((err as RmpError).code).toBe(code);
  expect((err as RmpError).message).toContain(argument);
  expect(rmp.fingerprint()).toBe(before);
}

const badAddresses: [unknown, string][] = [
  [1.5, "EINVAL"],
  [Number.NaN, "EINVAL"],
  ["4096", "EINVAL"],
  [-4096, "EINVAL"],
  [2 ** 52, "ERANGE"],
  [2 ** 60, "ERANGE"],
];

describe("bad input gets a typed error naming the argument; nothing changes", () => {
  test("constructor options", () => {
    for (const [opt, v, code] of [
      ["hostBytes", 0, "EINVAL"],
      ["hostBytes", 3 * 2 ** 20, "EINVAL"],
      ["hostBytes", 8 * 2 ** 40, "ERANGE"],
      ["overlapRetryLimit", -1, "EINVAL"],
    ] as const) {
      expect(() => new Rmp({ [opt]: v })).toThrow(RmpError);
      try {
        new Rmp({ [opt]: v });
      } catch (e) {
        expect((e as RmpError).argument).toBe(opt);
        expect((e as RmpError).code).toBe(code);
      }
    }
  });

  test("every instruction's address", () => {
    const rmp = new Rmp({ hostBytes: 2 ** 30 });
    for (const [spa, code] of badAddresses) {
      refuses(rmp, () => rmp.rmpupdate(spa as number, good), "spa", code);
      refuses(rmp, () => rmp.psmash(spa as number), "spa", code);
      refuses(rmp, () => rmp.unsmash(spa as number), "spa", code);
      refuses(rmp, () => rmp.pvalidate(spa as number, gv), "spa", code);
      refuses(rmp, () => rmp.rmpadjust(spa as number, adj), "spa", code);
      refuses(rmp, () => rmp.rmpread(spa as number), "spa", code);
      refuses(rmp, () => rmp.lookup(spa as number), "spa", code);
      refuses(rmp, () => rmp.regionUniformity(spa as number), "spa", code);
      refuses(rmp, () => rmp.markInUse(spa as number, 0, true), "spa", code);
    }
    refuses(rmp, () => rmp.rmpupdate(100, good), "spa");
    refuses(rmp, () => rmp.pvalidate(100, gv), "spa");
  });

  test("RMPUPDATE state fields", () => {
    const rmp = new Rmp({ hostBytes: 2 ** 30 });
    refuses(rmp, () => rmp.rmpupdate(0, null as never), "state");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, pageSize: 2 as never }), "state.pageSize");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, asid: 0x400 }), "state.asid");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, asid: -1 }), "state.asid");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, gpa: 100 }), "state.gpa");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, gpa: 2 ** 51 }), "state.gpa", "ERANGE");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, assigned: 1 as never }), "state.assigned");
    refuses(rmp, () => rmp.rmpupdate(0, { ...good, immutable: "no" as never }), "state.immutable");
  });

  test("PVALIDATE and RMPADJUST arguments", () => {
    const rmp = new Rmp({ hostBytes: 2 ** 30 });
    refuses(rmp, () => rmp.pvalidate(0, { ...gv, asid: 4096 }), "asid");
    refuses(rmp, () => rmp.pvalidate(0, { ...gv, gpa: 3 }), "gpa");
    refuses(rmp, () => rmp.pvalidate(0, { ...gv, pageSize: 7 as never }), "pageSize");
    refuses(rmp, () => rmp.pvalidate(0, { ...gv, validate: 0 as never }), "validate");
    refuses(rmp, () => rmp.rmpadjust(0, { ...adj, callerVmpl: 4 }), "callerVmpl");
    refuses(rmp, () => rmp.rmpadjust(0, { ...adj, targetVmpl: 0 }), "targetVmpl");
    refuses(rmp, () => rmp.rmpadjust(0, { ...adj, perms: 0x20 }), "perms");
    refuses(rmp, () => rmp.rmpadjust(0, { ...adj, vmsa: null as never }), "vmsa");
    refuses(rmp, () => rmp.markInUse(0, 5 as never, true), "pageSize");
  });

  test("Linux helpers: pfn, level, asid, immutable", () => {
    const rmp = new Rmp({ hostBytes: 2 ** 30 });
    refuses(rmp, () => rmpMakePrivate(rmp, -1, 0, PgLevel.PG_LEVEL_4K, 1, false), "pfn");
    refuses(rmp, () => rmpMakePrivate(rmp, 0.5, 0, PgLevel.PG_LEVEL_4K, 1, false), "pfn");
    refuses(
      rmp,
      () => rmpMakePrivate(rmp, 2 ** 40, 0, PgLevel.PG_LEVEL_4K, 1, false),
      "pfn",
      "ERANGE",
    );
    // A kernel engineer passing the RMP page-size encoding (0) instead of PG_LEVEL_4K (1).
    refuses(rmp, () => rmpMakePrivate(rmp, 0, 0, 0 as never, 1, false), "level");
    refuses(rmp, () => rmpMakePrivate(rmp, 0, 0, PgLevel.PG_LEVEL_4K, 2000, false), "asid");
    refuses(
      rmp,
      () => rmpMakePrivate(rmp, 0, 0, PgLevel.PG_LEVEL_4K, 1, "yes" as never),
      "immutable",
    );
    refuses(rmp, () => rmpMakeShared(rmp, 0, 3 as never), "level");
    refuses(rmp, () => rmpMakeHvFixed(rmp, Number.NaN), "pfn");
  });
});
