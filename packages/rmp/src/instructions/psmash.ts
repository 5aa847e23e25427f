import { PAGES_PER_REGION, PsmashRet, RmpPageSize } from "../constants.js";
import type { Rmp } from "../rmp.js";
import { F_ASSIGNED, F_IMMUTABLE, RegionMode } from "../table/store.js";

/**
 * PSMASH: split the assigned 2M entry at the 2M-aligned `spa` into 512 4K
 * entries with the same fields, the GPA advancing page by page and Validated
 * preserved on each. Codes (asm/sev.h; early SNP patches): FAIL_BADADDR beyond
 * the RMP, FAIL_INPUT not 2M aligned or not an assigned 2M entry, FAIL_INUSE
 * another processor is on it, FAIL_PERMISSION the entry is Immutable. KVM rounds
 * the PFN down to 2M before calling (snp_rmptable_psmash); this does not.
 */
export function psmash(rmp: Rmp, spa: number): number {
  rmp.checkSpa("spa", spa);
  if (spa >= rmp.hostBytes) return PsmashRet.FAIL_BADADDR;
  if (spa % 2 ** 21 !== 0) return PsmashRet.FAIL_INPUT;
  if (rmp.isBusy(spa, RmpPageSize.SIZE_2M, "psmash")) return PsmashRet.FAIL_INUSE;
  const s = rmp.store;
  const region = spa / 2 ** 21;
  const rec = s.recordOf(region);
  if (rec < 0 || s.modeAt(rec) !== RegionMode.LARGE || !(s.flagsAt(rec) & F_ASSIGNED)) {
    return PsmashRet.FAIL_INPUT;
  }
  if (s.flagsAt(rec) & F_IMMUTABLE) return PsmashRet.FAIL_PERMISSION;
  s.expand(rec);
  rmp.notify("psmash", spa, PAGES_PER_REGION * 4096);
  return PsmashRet.SUCCESS;
}
