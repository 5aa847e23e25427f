import { expect } from "vitest";
import { IommufdError } from "../errors.js";
import type { HwptPaging } from "../hwpt/hwpt-paging.js";
import type { Ioas } from "../ioas/ioas.js";
import type { Iommufd } from "../iommufd.js";
import { ObjectType } from "../uapi.js";
import { openSelftest, type SelftestContext } from "./selftest.js";

/**
 * Everything a failed call must leave as it found: the object table, each
 * IOAS's areas, reserved and allowed ranges, alignment and HUGE_PAGES, every
 * leaf of each domain (what a walker sees) and its dirty state, pins and
 * charges. Not the count of table pages: a map that fails on a table
 * allocation leaves the empty upper tables it linked, as the kernel's does;
 * they map nothing and go with the domain (the leak check at close sees them).
 */
export function visibleState(fd: Iommufd): string {
  const objects = fd.objects.objects().map((o) => {
    const base = { id: o.id, type: o.type, users: o.users };
    if (o.type === ObjectType.IOAS) {
      const iopt = (o as Ioas).iopt;
      return {
        ...base,
        areas: iopt.areas.map((a) => [
          a.iova,
          a.last,
          a.startByte,
          a.prot,
          a.filled,
          a.revoked,
          a.numAccesses,
        ]),
        reserved: iopt.reserved.map((r) => [r.start, r.last]),
        allowed: iopt.allowed.map((r) => [r.start, r.last]),
        alignment: iopt.iovaAlignment,
        largePages: !iopt.disableLargePages,
        domains: iopt.domains.length,
        hwpts: (o as Ioas).hwpts.map((h) => h.id),
      };
    }
    if (o.type === ObjectType.HWPT_PAGING) {
      const h = o as HwptPaging;
      const leaves: string[] = [];
      h.domain.table.forEachLeaf((l) => {
        leaves.push(
          `${l.va.toString(16)}:${l.oa.toString(16)}:${l.sizeLg2}:${+l.readable}${+l.writable}${+l.dirty}`,
        );
      });
      return { ...base, leaves: leaves.join(" "), dirty: h.domain.dirtyTracking };
    }
    return base;
  });
  const s = fd.stats();
  const mm = fd.process;
  return JSON.stringify({
    objects,
    pinned: s.pinnedPages,
    pages: s.pages,
    charges: [mm.pinnedVm, mm.lockedVm, mm.user.lockedVm],
  });
}

/** A scenario body: `step` runs one call and stops the body at the first failure. */
export type FailNthBody = (ctx: SelftestContext, step: <T>(call: () => T) => T) => void;

/** Stops a body at its first failing call. */
class Stop extends Error {}

/** What a sweep saw. */
export interface FailNthReport {
  /** The n of the first run that reached the end without hitting its site: the number of sites. */
  sites: number;
  /** How many runs failed a call (and were checked). */
  failures: number;
  /** The errnos seen. */
  errnos: Set<string>;
}

/**
 * TEST_FAIL_NTH(): run the body once with nothing injected (it must succeed),
 * then for n = 1, 2, ... on a fresh context, after `setup`, fail the n-th
 * injection site: the failing call must throw an IommufdError (ENOMEM from
 * an allocation, ENOENT from a lookup, or what a caller turns them into, as
 * pt_id's EINVAL) and change nothing visible, and after close nothing may be left pinned, charged or
 * allocated. The sweep ends at the first n the body never reaches (with the
 * kernel's cap of 400 runs).
 */
export function sweepFailNth(
  setup: (ctx: SelftestContext) => void,
  body: FailNthBody,
): FailNthReport {
  const report: FailNthReport = { sites: 0, failures: 0, errnos: new Set() };
  for (let n = 0; n <= 400; n++) {
    const ctx = openSelftest();
    setup(ctx);
    if (n > 0) ctx.fd.injector.failNth(n);
    let failed = false;
    const step = <T>(call: () => T): T => {
      const before = visibleState(ctx.fd);
      try {
        return call();
      } catch (e) {
        if (n === 0 || !(e instanceof IommufdError)) throw e;
        expect(JSON.parse(visibleState(ctx.fd)), `n=${n}: ${e.message} changed state`).toEqual(
          JSON.parse(before),
        );
        report.errnos.add(e.code);
        failed = true;
        throw new Stop();
      }
    };
    try {
      body(ctx, step);
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
    }
    const reached = n > 0 && !ctx.fd.injector.pending;
    ctx.fd.injector.failNth(0);
    ctx.fd.close();
    const s = ctx.fd.stats();
    expect({ ...s, n }).toEqual({ objects: 0, pinnedPages: 0, pages: 0, tablePages: 0, n });
    expect([
      ctx.fd.process.pinnedVm,
      ctx.fd.process.lockedVm,
      ctx.fd.process.user.lockedVm,
    ]).toEqual([0, 0, 0]);
    if (failed) report.failures++;
    if (n > 0 && !reached) {
      // The body ran to the end without reaching site n: every site has been failed once.
      expect(failed, `n=${n}: the body failed without an injected site`).toBe(false);
      report.sites = n - 1;
      return report;
    }
    if (n > 0) expect(failed, `n=${n}: site reached but no call failed`).toBe(true);
  }
  throw new Error("fail-nth: more than 400 sites");
}
