import { PAGES_PER_REGION, PsmashRet, RmpPageSize } from "../constants.js";
import type { Rmp } from "../rmp.js";
import { F_ASSIGNED, RegionMode } from "../table/store.js";

/** Whether a 2M region can be one 2M entry again, and why not. */
export interface RegionUniformity {
  uniform: boolean;
  /** Why not: "already-2M", "not-assigned", "asid", "flags", "perms", "gpa-not-contiguous", "gpa-not-aligned". */
  reason: string | null;
  /** The first page (0..511) that breaks uniformity, or -1. */
  page: number;
}

/**
 * Whether the 512 4K entries of the region at `spa` are uniform and contiguous:
 * all assigned to one ASID with the same Immutable / Validated / VMSA / VMPL
 * permissions, GPAs contiguous from a 2M-aligned GPA. That is what a 2M entry
 * would say, so a merge changes no access decision.
 */
export function regionUniformity(rmp: Rmp, spa: number): RegionUniformity {
  rmp.checkSpa("spa", spa);
  const s = rmp.store;
  const region = Math.floor(spa / 2 ** 21);
  const rec = region < s.regionCount ? s.recordOf(region) : -1;
  const mode = rec < 0 ? RegionMode.UNTOUCHED : s.modeAt(rec);
  if (mode === RegionMode.LARGE) return { uniform: false, reason: "already-2M", page: -1 };
  if (mode === RegionMode.UNTOUCHED) return { uniform: false, reason: "not-assigned", page: 0 };
  const i0 = s.slabIndex(rec, 0);
  const f0 = s.sFlagsAt(i0);
  const a0 = s.sAsidAt(i0);
  const g0 = s.sGfnAt(i0);
  const p0 = s.sPermsAt(i0);
  if (!(f0 & F_ASSIGNED)) return { uniform: false, reason: "not-assigned", page: 0 };
  if (g0 % PAGES_PER_REGION !== 0) return { uniform: false, reason: "gpa-not-aligned", page: 0 };
  for (let p = 1; p < PAGES_PER_REGION; p++) {
    const i = i0 + p;
    if (!(s.sFlagsAt(i) & F_ASSIGNED)) return { uniform: false, reason: "not-assigned", page: p };
    if (s.sAsidAt(i) !== a0) return { uniform: false, reason: "asid", page: p };
    if (s.sFlagsAt(i) !== f0) return { uniform: false, reason: "flags", page: p };
    if (s.sPermsAt(i) !== p0) return { uniform: false, reason: "perms", page: p };
    if (s.sGfnAt(i) !== g0 + p) return { uniform: false, reason: "gpa-not-contiguous", page: p };
  }
  return { uniform: true, reason: null, page: -1 };
}

/**
 * The model's inference for PUNSMASH_IO's RMP half (no such instruction is
 * documented; TMPM lists the command, AK [SEED] says it exists unused): when the
 * region is uniform, write one 2M entry with its fields and release the 512.
 * FAIL_BADADDR beyond the RMP, FAIL_INPUT misaligned or not uniform, FAIL_INUSE busy.
 */
export function unsmash(rmp: Rmp, spa: number): number {
  rmp.checkSpa("spa", spa);
  if (spa >= rmp.hostBytes) return PsmashRet.FAIL_BADADDR;
  if (spa % 2 ** 21 !== 0) return PsmashRet.FAIL_INPUT;
  if (rmp.isBusy(spa, RmpPageSize.SIZE_2M, "unsmash")) return PsmashRet.FAIL_INUSE;
  if (!regionUniformity(rmp, spa).uniform) return PsmashRet.FAIL_INPUT;
  const s = rmp.store;
  const rec = s.recordOf(spa / 2 ** 21);
  const i0 = s.slabIndex(rec, 0);
  s.setLarge(rec, s.sFlagsAt(i0), s.sAsidAt(i0), s.sGfnAt(i0), s.sPermsAt(i0));
  rmp.notify("unsmash", spa, 2 ** 21);
  return PsmashRet.SUCCESS;
}
