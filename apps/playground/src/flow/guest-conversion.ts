import {
  PgLevel,
  PsmashRet,
  PvalidateRet,
  RmpPageSize,
  RmpUpdateRet,
  rmpMakePrivate,
  rmpMakeShared,
} from "@smashlab/rmp";
import type { Machine } from "../machine/machine.js";
import { hex, K4 } from "../units.js";
import { expectStatus } from "./status.js";

/** The 4K page the guest converts: page `page` of 2M region `region`. */
export interface ConvertedPage {
  region: number;
  page: number;
}

/**
 * The guest's first PVALIDATE rescinding the page (Linux's __set_pages_state
 * rescinds before it asks to share). Over a 2M RMP entry a 4K PVALIDATE does
 * not run: it raises #NPF with RMP and SIZEM, and KVM must smash the entry.
 */
export function rescindHitsLargeEntry(m: Machine, p: ConvertedPage): string {
  const gpa = rescind(m, p, PvalidateRet.NPF_RMP_SIZEM);
  return `guest: PVALIDATE(${hex(gpa)}, 4K, rescind) → #NPF(RMP|SIZEM): 4K on a 2M RMP entry; exit to KVM`;
}

/** The guest's PVALIDATE again, once the entry is 4K: Validated goes to 0. */
export function rescindSucceeds(m: Machine, p: ConvertedPage): string {
  const gpa = rescind(m, p, PvalidateRet.SUCCESS);
  return `guest: PVALIDATE(${hex(gpa)}, 4K, rescind) again → SUCCESS: Validated 1 → 0`;
}

/** The guest's 4K PVALIDATE rescinding the page, which must return `expected`; returns its GPA. */
function rescind(m: Machine, p: ConvertedPage, expected: number): number {
  const gpa = m.gpaOf(p.region, p.page);
  expectStatus(
    PvalidateRet,
    m.rmp.pvalidate(m.hpaOf(p.region, p.page), {
      asid: m.asid,
      gpa,
      pageSize: RmpPageSize.SIZE_4K,
      validate: false,
    }),
    expected,
    `PVALIDATE(${hex(gpa)}, 4K, rescind)`,
  );
  return gpa;
}

/** KVM smashes the page's 2M RMP entry (sev_handle_rmp_fault → PSMASH). */
export function psmashRegion(m: Machine, p: ConvertedPage, actor: string): string {
  const hpa = m.hpaOf(p.region);
  expectStatus(PsmashRet, m.rmp.psmash(hpa), PsmashRet.SUCCESS, `PSMASH(${hex(hpa)})`);
  return `${actor}: PSMASH(${hex(hpa)}) → SUCCESS: 512 x 4K entries, each keeps Validated`;
}

/**
 * The guest asks to share the page (PSC); KVM exits to the VMM, which converts
 * it in place on the guest_memfd; the arch hook, sev_gmem_invalidate, finds a
 * 4K entry (it was smashed on the rescind) and makes it the hypervisor's.
 */
export function shareRescindedPage(m: Machine, p: ConvertedPage): string[] {
  const hpa = m.hpaOf(p.region, p.page);
  expectStatus(
    RmpUpdateRet,
    rmpMakeShared(m.rmp, hpa / K4, PgLevel.PG_LEVEL_4K),
    RmpUpdateRet.SUCCESS,
    `rmp_make_shared(${hex(hpa)}, 4K)`,
  );
  return [
    `guest: PSC(shared, ${hex(m.gpaOf(p.region, p.page))}, 4K) → KVM exits: KVM_HC_MAP_GPA_RANGE(decrypted, 1 page)`,
    "VMM: KVM_SET_MEMORY_ATTRIBUTES2(shared) on guest_memfd, in place → sev_gmem_invalidate",
    `KVM: rmp_make_shared(${hex(hpa)}, PG_LEVEL_4K) → SUCCESS (the entry is 4K already: no PSMASH)`,
  ];
}

/**
 * The guest takes the page back (§5.4): PSC(private); guest_memfd's prepare
 * hook (sev_gmem_prepare) assigns it at 4K, since the rest of its 2M region is
 * assigned already; then the guest validates it.
 */
export function makePagePrivateAgain(m: Machine, p: ConvertedPage): string[] {
  const hpa = m.hpaOf(p.region, p.page);
  const gpa = m.gpaOf(p.region, p.page);
  expectStatus(
    RmpUpdateRet,
    rmpMakePrivate(m.rmp, hpa / K4, gpa, PgLevel.PG_LEVEL_4K, m.asid, false),
    RmpUpdateRet.SUCCESS,
    `rmp_make_private(${hex(hpa)}, 4K)`,
  );
  expectStatus(
    PvalidateRet,
    m.rmp.pvalidate(hpa, { asid: m.asid, gpa, pageSize: RmpPageSize.SIZE_4K, validate: true }),
    PvalidateRet.SUCCESS,
    `PVALIDATE(${hex(gpa)}, 4K, validate)`,
  );
  return [
    `guest: PSC(private, ${hex(gpa)}, 4K) → KVM exits: KVM_HC_MAP_GPA_RANGE(encrypted, 1 page)`,
    "VMM: KVM_SET_MEMORY_ATTRIBUTES2(private) on guest_memfd, in place → sev_gmem_prepare",
    `KVM: rmp_make_private(${hex(hpa)}, ${hex(gpa)}, PG_LEVEL_4K, asid ${m.asid}) → SUCCESS`,
    "       (4K, not 2M: the rest of the region is assigned already)",
    `guest: PVALIDATE(${hex(gpa)}, 4K, validate) → SUCCESS: the region's 512 entries are uniform again`,
  ];
}
