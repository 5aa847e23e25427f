import { PvalidateRet, RmpPageSize, VMPL_PERM_ALL } from "../constants.js";
import { fail } from "../errors.js";
import { checkAsid, checkGpa, checkPageSize, type Rmp } from "../rmp.js";
import { F_VMSA } from "../table/store.js";
import { locateGuestPage } from "./owner.js";

/** What RMPADJUST asks for. */
export interface RmpadjustArgs {
  asid: number;
  gpa: number;
  pageSize: RmpPageSize;
  /** The VMPL running the instruction (0..3); only a higher-numbered VMPL can be adjusted. */
  callerVmpl: number;
  /** The VMPL whose permissions change (1..3). */
  targetVmpl: number;
  /** The new permission mask ({@link VmplPerm} bits). */
  perms: number;
  /** Mark the page a VMSA (only VMPL0 may). */
  vmsa: boolean;
}

const where = new Int32Array(2);

/**
 * RMPADJUST: a guest VMPL grants a lower-privileged VMPL permissions on a page
 * and (from VMPL0) sets the VMSA bit. FAIL_PERMISSION when the target VMPL is not
 * lower than the caller's or VMSA is asked for outside VMPL0; the page size rules
 * and the #NPF of PVALIDATE apply. The caller's own mask bounds what it grants:
 * VMPL0 holds every permission; VMPL1..3 hold what the entry grants them.
 */
export function rmpadjust(rmp: Rmp, spa: number, args: RmpadjustArgs): number {
  rmp.checkSpa("spa", spa);
  if (spa % 4096 !== 0) fail("EINVAL", "spa", spa, "must be 4 KiB aligned");
  if (typeof args !== "object" || args === null)
    fail("EINVAL", "args", args, "must be RmpadjustArgs");
  const asid = checkAsid("asid", args.asid);
  const gpa = checkGpa("gpa", args.gpa);
  const size = checkPageSize(args.pageSize);
  const caller = vmpl("callerVmpl", args.callerVmpl, 0);
  const target = vmpl("targetVmpl", args.targetVmpl, 1);
  if (!Number.isInteger(args.perms) || args.perms < 0 || args.perms > VMPL_PERM_ALL) {
    fail("EINVAL", "perms", args.perms, "must be a VmplPerm mask (0..0x1f)");
  }
  if (typeof args.vmsa !== "boolean") fail("EINVAL", "vmsa", args.vmsa, "must be a boolean");

  if (target <= caller || (args.vmsa && caller !== 0)) return PvalidateRet.FAIL_PERMISSION;
  const ret = locateGuestPage(rmp, spa, asid, gpa, size, where);
  if (ret !== PvalidateRet.SUCCESS) return ret;
  const s = rmp.store;
  const rec = where[0]!;
  const i = where[1]!;
  const perms = i < 0 ? s.permsAt(rec) : s.sPermsAt(i);
  const own = caller === 0 ? VMPL_PERM_ALL : (perms >>> (8 * (caller - 1))) & 0xff;
  if ((args.perms & ~own) !== 0) return PvalidateRet.FAIL_PERMISSION;
  const shift = 8 * (target - 1);
  const nextPerms = ((perms & ~(0xff << shift)) | (args.perms << shift)) >>> 0;
  const flags = i < 0 ? s.flagsAt(rec) : s.sFlagsAt(i);
  const nextFlags = args.vmsa ? flags | F_VMSA : flags & ~F_VMSA;
  if (i < 0) {
    s.setPermsAt(rec, nextPerms);
    s.setFlagsAt(rec, nextFlags);
  } else {
    s.setSPermsAt(i, nextPerms);
    s.setSFlagsAt(i, nextFlags);
  }
  rmp.notify("rmpadjust", spa, size === RmpPageSize.SIZE_2M ? 2 ** 21 : 4096);
  return PvalidateRet.SUCCESS;
}

function vmpl(name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > 3) {
    fail("EINVAL", name, v, `must be a VMPL in ${min}..3`);
  }
  return v;
}
