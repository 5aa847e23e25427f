import { PAGES_PER_REGION, RmpPageSize, RmpUpdateRet } from "../constants.js";
import { fail } from "../errors.js";
import { checkAsid, type Rmp } from "../rmp.js";
import { F_ASSIGNED, F_IMMUTABLE, F_VMSA, RegionMode } from "../table/store.js";

/** The kernel's page levels, as its RMP helpers take them (enum pg_level). */
export const PgLevel = {
  PG_LEVEL_4K: 1,
  PG_LEVEL_2M: 2,
} as const;
/** A value of {@link PgLevel}. */
export type PgLevel = (typeof PgLevel)[keyof typeof PgLevel];

function toPageSize(level: unknown): RmpPageSize {
  if (level === PgLevel.PG_LEVEL_4K) return RmpPageSize.SIZE_4K;
  if (level === PgLevel.PG_LEVEL_2M) return RmpPageSize.SIZE_2M;
  return fail(
    "EINVAL",
    "level",
    level,
    "must be PgLevel.PG_LEVEL_4K (1) or PgLevel.PG_LEVEL_2M (2)",
  );
}

function checkPfn(rmp: Rmp, pfn: unknown): number {
  if (typeof pfn !== "number" || !Number.isInteger(pfn) || pfn < 0) {
    fail("EINVAL", "pfn", pfn, "must be a non-negative integer page frame number");
  }
  rmp.checkSpa("pfn", pfn * 4096);
  return pfn;
}

/**
 * The kernel's rmpupdate(): split the host direct map around a 4K page first
 * (adjust_direct_map, so a host write through a 2M mapping cannot hit a private
 * page: H13), then RMPUPDATE, retrying while it returns FAIL_OVERLAP. The kernel
 * retries forever; a racing CPU's transient overlap clears. A deterministic one
 * would hang it: the model stops after `overlapRetryLimit` tries and counts it.
 */
function rmpupdateRetrying(rmp: Rmp, pfn: number, state: Parameters<Rmp["rmpupdate"]>[1]): number {
  if (state.pageSize === RmpPageSize.SIZE_4K)
    rmp.directMapSplit.add(Math.floor(pfn / PAGES_PER_REGION));
  let ret: number;
  let tries = 0;
  do {
    ret = rmp.rmpupdate(pfn * 4096, state);
  } while (ret === RmpUpdateRet.FAIL_OVERLAP && ++tries <= rmp.options.overlapRetryLimit);
  if (ret === RmpUpdateRet.FAIL_OVERLAP) rmp.overlapLivelocks++;
  return ret;
}

/**
 * rmp_make_private(): assign the page (4K) or the 2M region at `pfn` to guest
 * `asid` at `gpa`. Returns the RMPUPDATE status (0 on success; the kernel turns a
 * failure into -EFAULT after dumping the entry).
 */
export function rmpMakePrivate(
  rmp: Rmp,
  pfn: number,
  gpa: number,
  level: PgLevel,
  asid: number,
  immutable: boolean,
): number {
  checkPfn(rmp, pfn);
  const pageSize = toPageSize(level);
  checkAsid("asid", asid);
  if (typeof immutable !== "boolean") fail("EINVAL", "immutable", immutable, "must be a boolean");
  return rmpupdateRetrying(rmp, pfn, { assigned: true, pageSize, immutable, asid, gpa });
}

/** rmp_make_shared(): give the page (or 2M region) back to the hypervisor (the all-zero state at that size). */
export function rmpMakeShared(rmp: Rmp, pfn: number, level: PgLevel): number {
  checkPfn(rmp, pfn);
  const pageSize = toPageSize(level);
  return rmpupdateRetrying(rmp, pfn, {
    assigned: false,
    pageSize,
    immutable: false,
    asid: 0,
    gpa: 0,
  });
}

/**
 * Makes a hypervisor page HV-Fixed (Assigned 0, Immutable 1), as the TMPM driver
 * does for its ring page (rmp_make_hv_fixed). That state is the firmware's to set
 * (SNP_PAGE_SET_STATE / HV_FIXED); the model applies it directly. FAIL_INPUT
 * unless the page is a plain hypervisor page; 0 on success.
 */
export function rmpMakeHvFixed(rmp: Rmp, pfn: number): number {
  checkPfn(rmp, pfn);
  if (pfn * 4096 >= rmp.hostBytes) return RmpUpdateRet.FAIL_INPUT;
  const e = rmp.lookup(pfn * 4096).entry;
  if (e.assigned || e.immutable) return RmpUpdateRet.FAIL_INPUT;
  const s = rmp.store;
  const region = Math.floor(pfn / PAGES_PER_REGION);
  const rec = s.ensureRecord(region);
  if (s.modeAt(rec) !== RegionMode.SMALL) s.expand(rec);
  s.setSmall(rec, pfn, F_IMMUTABLE, 0, 0, 0);
  rmp.notify("hv-fixed", pfn * 4096, 4096);
  return RmpUpdateRet.SUCCESS;
}

/**
 * Makes a hypervisor page an SNP guest-context page (state Context: Assigned 1,
 * ASID 0, Immutable 1, VMSA 1 in sev_rmp.h's taxonomy), as the firmware's
 * SNP_GCTX_CREATE does. The firmware's command; the model applies the state
 * directly. FAIL_INPUT unless the page is a plain hypervisor page; 0 on success.
 */
export function rmpMakeGuestContextPage(rmp: Rmp, pfn: number): number {
  checkPfn(rmp, pfn);
  if (pfn * 4096 >= rmp.hostBytes) return RmpUpdateRet.FAIL_INPUT;
  const e = rmp.lookup(pfn * 4096).entry;
  if (e.assigned || e.immutable) return RmpUpdateRet.FAIL_INPUT;
  const s = rmp.store;
  const rec = s.ensureRecord(Math.floor(pfn / PAGES_PER_REGION));
  if (s.modeAt(rec) !== RegionMode.SMALL) s.expand(rec);
  s.setSmall(rec, pfn, F_ASSIGNED | F_IMMUTABLE | F_VMSA, 0, 0, 0);
  rmp.notify("firmware", pfn * 4096, 4096);
  return RmpUpdateRet.SUCCESS;
}

/** Whether the page at `pfn` is HV-Fixed (what the TMPM ring page must be under SNP). */
export function isHvFixed(rmp: Rmp, pfn: number): boolean {
  checkPfn(rmp, pfn);
  const e = rmp.lookup(pfn * 4096).entry;
  return !e.assigned && e.immutable;
}
