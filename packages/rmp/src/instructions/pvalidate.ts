import { PvalidateRet, RmpPageSize } from "../constants.js";
import { fail } from "../errors.js";
import { checkAsid, checkGpa, checkPageSize, type Rmp } from "../rmp.js";
import { F_VALIDATED } from "../table/store.js";
import { locateGuestPage } from "./owner.js";

/** The guest side of PVALIDATE: who asks, for which page, at which size, to set or clear. */
export interface PvalidateArgs {
  /** The guest's ASID (the hardware knows it from the running VM). */
  asid: number;
  /** The GPA the guest validates (its translation of the virtual address). */
  gpa: number;
  pageSize: RmpPageSize;
  /** true to validate, false to rescind. */
  validate: boolean;
}

const where = new Int32Array(2);

/**
 * PVALIDATE: the guest sets or clears Validated. FAIL_INPUT for a misaligned 2M
 * request, an #NPF(RMP) when the page is not this guest's at this GPA,
 * #NPF(RMP|SIZEM) for 4K on a 2M entry, FAIL_SIZEMISMATCH for 2M on 4K entries,
 * NO_UPDATE (CF=1) when Validated already has the value.
 */
export function pvalidate(rmp: Rmp, spa: number, args: PvalidateArgs): number {
  rmp.checkSpa("spa", spa);
  if (spa % 4096 !== 0) fail("EINVAL", "spa", spa, "must be 4 KiB aligned");
  if (typeof args !== "object" || args === null)
    fail("EINVAL", "args", args, "must be PvalidateArgs");
  const asid = checkAsid("asid", args.asid);
  const gpa = checkGpa("gpa", args.gpa);
  const size = checkPageSize(args.pageSize);
  if (typeof args.validate !== "boolean")
    fail("EINVAL", "validate", args.validate, "must be a boolean");

  const ret = locateGuestPage(rmp, spa, asid, gpa, size, where);
  if (ret !== PvalidateRet.SUCCESS) return ret;
  const s = rmp.store;
  const rec = where[0]!;
  const i = where[1]!;
  const flags = i < 0 ? s.flagsAt(rec) : s.sFlagsAt(i);
  const was = (flags & F_VALIDATED) !== 0;
  if (was === args.validate) return PvalidateRet.NO_UPDATE;
  const next = args.validate ? flags | F_VALIDATED : flags & ~F_VALIDATED;
  if (i < 0) s.setFlagsAt(rec, next);
  else s.setSFlagsAt(i, next);
  rmp.notify("pvalidate", spa, size === RmpPageSize.SIZE_2M ? 2 ** 21 : 4096);
  return PvalidateRet.SUCCESS;
}
