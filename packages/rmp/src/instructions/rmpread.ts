import { RmpUpdateRet } from "../constants.js";
import type { RmpReadView } from "../entry/entry.js";
import type { Rmp } from "../rmp.js";

/**
 * RMPREAD (newer CPUs; the kernel maps the raw entry onto the same view when it
 * is missing): the architectural fields of the effective entry. FAIL_INPUT for
 * an address the RMP does not cover.
 */
export function rmpread(rmp: Rmp, spa: number): { ret: number; entry: RmpReadView | null } {
  rmp.checkSpa("spa", spa);
  if (spa >= rmp.hostBytes) return { ret: RmpUpdateRet.FAIL_INPUT, entry: null };
  const { entry } = rmp.lookup(spa);
  const s = rmp.store;
  const rec = s.recordOf(Math.floor(spa / 2 ** 21));
  const someAssigned4k = rec >= 0 && s.assigned4kAt(rec) > 0;
  return {
    ret: RmpUpdateRet.SUCCESS,
    entry: {
      gpa: entry.gpa,
      assigned: entry.assigned,
      pageSize: entry.pageSize,
      hpageRegionStatus: someAssigned4k ? 1 : 0,
      immutable: entry.immutable,
      asid: entry.asid,
    },
  };
}
