import { type Leftovers, Machine } from "../machine/machine.js";
import { emptyTally } from "../machine/trusted-device.js";
import { StepLog, type StepReport } from "../report/state.js";
import { SeededRng } from "../rng.js";
import { PAGES_PER_REGION } from "../units.js";
import type { ConvertedPage } from "./guest-conversion.js";
import { seedFlowHazards } from "./hazards.js";
import { fingerprints, type RestoreCheck, returnToPrivate } from "./return-to-private.js";
import {
  buildRmpAndMatchHwpt,
  createCappedHwpt,
  createIoas,
  freshMachineState,
  mapGuestMemory,
} from "./setup.js";
import { emptyVariantResult, SHARE_VARIANTS, type VariantResult } from "./share-variants.js";
import { FlowError } from "./status.js";

/** What the `flow` job runs on. */
export interface FlowOptions {
  /** Guest memory in bytes: a multiple of 2M. */
  size: number;
  /** Seed of the run's only source of randomness. */
  seed: number;
  /** DMAs the device issues after each step. */
  dmas: number;
}

/** Everything the flow did and saw; plain data, so `--json` prints it as it is. */
export interface FlowResult {
  options: FlowOptions;
  guest: {
    asid: number;
    /** First GPA (= IOVA). */
    gpa: number;
    /** Host physical address of the first page. */
    hpa: number;
    size: number;
    /** The trusted device's name. */
    device: string;
  };
  /** The page step 6 shares: page `page` (0..511) of 2M region `region`. */
  converted: ConvertedPage & { gpa: number; hpa: number };
  steps: StepReport[];
  variants: VariantResult[];
  /** How the region looks after step 7. */
  restored: RestoreCheck;
  /** What was left after every machine was torn down (the step 1-5 one and one per variant). */
  leftovers: Leftovers & { machines: number };
}

/**
 * The flow the project started from (shared/seed, coco.md §1.2) through the
 * real packages: an IOAS, a HWPT capped at 2M, the guest's memory mapped from
 * a file, the RMP built at 2M and the HWPT matched to it, trusted DMA, then one
 * 4K page shared inside a 2M region three ways (each on a fresh machine built
 * the same way), and back to private with PUNSMASH_IO.
 *
 * Deterministic: the seed picks the page and the DMA targets, nothing else is
 * random, so one set of options always gives the same result.
 */
export function runFlow(options: FlowOptions): FlowResult {
  const rng = new SeededRng(options.seed);
  const log = new StepLog();
  const machines: Machine[] = [];
  const build = () => {
    const m = new Machine({ size: options.size, attribute: seedFlowHazards });
    machines.push(m);
    return m;
  };
  try {
    const m = build();
    const page: ConvertedPage = {
      region: rng.below(m.regions),
      page: rng.below(PAGES_PER_REGION),
    };

    const setup = [
      ["1", "Create an IOAS", createIoas],
      ["2", "Create a HWPT capped at 2M (the RMP's largest page size)", createCappedHwpt],
      ["3", "Map the guest's memory into the IOAS from a file", mapGuestMemory],
      ["4", "Build the RMP at 2M and match the HWPT to it", buildRmpAndMatchHwpt],
    ] as const;
    for (const [id, title, step] of setup) log.record(m, { id, title, ...step(m) });

    const anywhere = randomPages(rng, m.gpaOf(0), m.pages, options.dmas);
    const t5 = emptyTally();
    m.device.burst(anywhere, t5);
    log.record(
      m,
      {
        id: "5",
        title: "The trusted device does DMA to random pages",
        actions: [
          `${m.device.name} (TDISP RUN, T=1): DMA writes through hwpt_id ${m.hwptId}; the IOMMU walks it (IOVA = GPA),`,
          `       then checks the RMP: leaf size class = entry size, assigned to ASID ${m.asid}, GPA = IOVA`,
        ],
      },
      { tally: t5, target: "random pages of the guest" },
    );
    const afterStep5 = fingerprints(m);

    // The device keeps hitting the region's other 511 pages while one is converted.
    const others = otherPages(rng, m, page, options.dmas);
    const region = randomPages(rng, m.gpaOf(page.region), PAGES_PER_REGION, options.dmas);

    const variants: VariantResult[] = [];
    const ranOn = new Map<string, Machine>();
    for (const v of SHARE_VARIANTS) {
      const fresh = freshMachineState(build());
      const f = fingerprints(fresh);
      if (f.rmp !== afterStep5.rmp || f.ioTable !== afterStep5.ioTable) {
        throw new FlowError(`the fresh machine for 6${v.id} differs from the state after step 5`);
      }
      const result = emptyVariantResult(v);
      v.run({ m: fresh, page, iovas: others, log }, result);
      variants.push(result);
      ranOn.set(v.id, fresh);
    }
    // Step 7 goes on from 6c: the conversion the engine did without a fault.
    const restored = returnToPrivate(ranOn.get("c")!, page, region, log, afterStep5);

    return {
      options,
      guest: { asid: m.asid, gpa: m.gpa, hpa: m.hpa, size: m.size, device: m.device.name },
      converted: {
        ...page,
        gpa: m.gpaOf(page.region, page.page),
        hpa: m.hpaOf(page.region, page.page),
      },
      steps: log.steps,
      variants,
      restored,
      leftovers: teardownAll(machines),
    };
  } catch (e) {
    teardownAll(machines);
    throw e;
  }
}

function teardownAll(machines: readonly Machine[]): Leftovers & { machines: number } {
  const sum = { tablePages: 0, pinnedPages: 0, objects: 0, machines: machines.length };
  for (const m of machines) {
    const l = m.teardown();
    sum.tablePages += l.tablePages;
    sum.pinnedPages += l.pinnedPages;
    sum.objects += l.objects;
  }
  return sum;
}

function randomPages(rng: SeededRng, base: number, pages: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(base + rng.below(pages) * 4096);
  return out;
}

/** `n` IOVAs uniform over the region's pages other than the converted one. */
function otherPages(rng: SeededRng, m: Machine, p: ConvertedPage, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = rng.below(PAGES_PER_REGION - 1);
    out.push(m.gpaOf(p.region, k < p.page ? k : k + 1));
  }
  return out;
}
