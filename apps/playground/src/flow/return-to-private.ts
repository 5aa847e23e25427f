import { statusName } from "@smashlab/hw-engine";
import { WalkResult } from "@smashlab/pagetable";
import { RmpPageSize } from "@smashlab/rmp";
import type { Machine } from "../machine/machine.js";
import { emptyTally } from "../machine/trusted-device.js";
import type { StepLog } from "../report/state.js";
import { formatNs, hex } from "../units.js";
import { engineCallUnderDma } from "./engine-call.js";
import { type ConvertedPage, makePagePrivateAgain } from "./guest-conversion.js";

/** How the region looks after step 7. */
export interface RestoreCheck {
  /** One 2M IO leaf maps the region. */
  ioLeaf2M: boolean;
  /** One 2M RMP entry, the guest's and validated, rules the region. */
  rmpEntry2M: boolean;
  /** The RMP is entry for entry what it was after step 5. */
  rmpAsAfterStep5: boolean;
  /** The IO page table has the shape and leaves it had after step 5. */
  ioTableAsAfterStep5: boolean;
}

/** What the state looked like after step 5, to compare step 7's with. */
export interface Fingerprints {
  rmp: string;
  ioTable: string;
}

/** The fingerprints of the machine's RMP and IO page table now. */
export function fingerprints(m: Machine): Fingerprints {
  return { rmp: m.rmp.fingerprint(), ioTable: m.requireDomain().fingerprint() };
}

/**
 * Step 7: the page goes back to private, then PUNSMASH_IO (our inference of the
 * command TMPM lists) makes the region one 2M IO leaf over one 2M RMP entry.
 * The device DMAs to the whole region, the page included, all along.
 */
export function returnToPrivate(
  m: Machine,
  page: ConvertedPage,
  iovas: readonly number[],
  log: StepLog,
  afterStep5: Fingerprints,
): RestoreCheck {
  const target = "pages of the whole region, the converted one included";
  const actions = makePagePrivateAgain(m, page);
  const t1 = emptyTally();
  m.device.burst(iovas, t1);
  log.record(
    m,
    { id: "7.1", title: "The guest takes the page back: PSC(private), then PVALIDATE", actions },
    { tally: t1, target },
  );

  const hpa = m.hpaOf(page.region);
  const t2 = emptyTally();
  const res = engineCallUnderDma(m, iovas, t2, () =>
    m.driver.punsmashIo(m.gctx, m.requireDomain(), hpa),
  );
  log.record(
    m,
    {
      id: "7.2",
      title: "KVM merges the region back with PUNSMASH_IO",
      actions: [
        `KVM: punsmashIo(gctx ${hex(m.gctx.pa)}, domain, ${hex(hpa)}) through the TMPM driver`,
        "       (what PUNSMASH_IO does is our inference: coco.md §8 q6)",
        `TMPM: PUNSMASH_IO → ${statusName(res.status)} after ${formatNs(t2.heldNs)}, DMA to the region held meanwhile; at its end, in`,
        "       one step, one 2M IO leaf and one 2M RMP entry",
        `TMPM driver: the PTE page ${hex(res.ptePa)} goes back through the domain's gather: IOTLB flush, then free`,
      ],
    },
    { tally: t2, target },
  );

  const walk = new WalkResult();
  const mapped = m.requireDomain().lookup(m.gpaOf(page.region), walk);
  const { level, entry } = m.rmp.lookup(hpa);
  const now = fingerprints(m);
  return {
    ioLeaf2M: mapped && walk.leafLg2 === 21 && walk.leafOa === hpa,
    rmpEntry2M:
      level === RmpPageSize.SIZE_2M && entry.assigned && entry.asid === m.asid && entry.validated,
    rmpAsAfterStep5: now.rmp === afterStep5.rmp,
    ioTableAsAfterStep5: now.ioTable === afterStep5.ioTable,
  };
}
