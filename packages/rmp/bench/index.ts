/**
 * RMP throughput: trusted-DMA checks (2M hits, 4K hits, denials) as bursts and as
 * single calls, RMPUPDATE and PSMASH, each against a flat typed-array lookup of
 * the same count in the same run (`ratioToBaseline`). Target: a DMA check costs no
 * more than 3 flat lookups.
 *
 * Run: `pnpm bench` (`--json` writes bench-results.json, `--quick` for a smoke run).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchCase, benchArgs, runBench } from "@smashlab/bench-harness";
import { PgLevel, Rmp, rmpMakePrivate, rmpMakeShared } from "../src/index.js";

const K4 = 4096;
const M2 = 2 ** 21;
const N = 1 << 16;
const ASID = 5;
const GUEST_BASE = 64 * 2 ** 30; // host physical base of a 1 GiB guest
const GPA_BASE = 2 ** 30;

const rmp = new Rmp();
for (let r = 0; r < 512; r++) {
  const spa = GUEST_BASE + r * M2;
  rmpMakePrivate(rmp, spa / K4, GPA_BASE + r * M2, PgLevel.PG_LEVEL_2M, ASID, false);
}
// Regions 256..511 smashed: 4K entries.
for (let r = 256; r < 512; r++) rmp.psmash(GUEST_BASE + r * M2);

/** Deterministic addresses (an LCG), inside the first or the second half of the guest. */
function addresses(firstRegion: number): Float64Array {
  const a = new Float64Array(N);
  let x = 12345;
  for (let i = 0; i < N; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    a[i] = GUEST_BASE + (firstRegion + (x % 256)) * M2 + ((x >>> 8) % 512) * K4 + 0x40;
  }
  return a;
}
const large = addresses(0);
const small = addresses(256);

let sink = 0;

/*
 * Fairness: the timed loops, the baseline's and the cases', have the same shape.
 * Each is a function written out once over module-level inputs: TurboFan then
 * embeds those arrays and objects in the loop's code, as it always did for the
 * baseline. The single-call cases used to be made by a factory, whose closures
 * reload and recheck every captured and module-level value (the Rmp, the
 * addresses, N, the ASID, two bases for the IOVA arithmetic) on every access:
 * 1.3-1.5x their time. Each loop returns its count and `run` adds it to the sink:
 * code after a loop has no type feedback when the loop is first compiled (on stack
 * replacement), and a `sink +=` there deoptimized at the end of every sample, which
 * cost the short baseline samples more than the cases'. Each baseline runs over
 * its case's own addresses, and the IOVAs are precomputed like the SPAs, so the
 * two loops differ only by the lookup.
 */

/** The IOVA of each access: the guest's memory is mapped at GPA_BASE (IOVA = GPA). */
const iovasOf = (spas: Float64Array) => spas.map((spa) => spa - GUEST_BASE + GPA_BASE);
const largeIovas = iovasOf(large);
const smallIovas = iovasOf(small);

// The baseline: one lookup per access in a flat table indexed by page.
const flat = new Uint32Array(1 << 20);
function flatLookupLargeLoop(): number {
  let hits = 0;
  const inv = 1 / K4;
  for (let i = 0; i < N; i++) {
    const spa = large[i]!;
    hits += flat[Math.floor(spa * inv) & 0xfffff] === ASID ? 1 : 0;
  }
  return hits;
}
function flatLookupSmallLoop(): number {
  let hits = 0;
  const inv = 1 / K4;
  for (let i = 0; i < N; i++) {
    const spa = small[i]!;
    hits += flat[Math.floor(spa * inv) & 0xfffff] === ASID ? 1 : 0;
  }
  return hits;
}
const flatLookupLarge: BenchCase = {
  name: "flat typed-array lookup",
  opsPerSample: N,
  entriesPerOp: 1,
  run: () => {
    sink += flatLookupLargeLoop();
  },
};
const flatLookupSmall: BenchCase = {
  name: "flat typed-array lookup",
  opsPerSample: N,
  entriesPerOp: 1,
  run: () => {
    sink += flatLookupSmallLoop();
  },
};

function dma2MHitLoop(): number {
  let bad = 0;
  for (let i = 0; i < N; i++) bad += rmp.checkDmaTrusted(large[i]!, 21, ASID, largeIovas[i]!);
  return bad;
}
function dma4KHitLoop(): number {
  let bad = 0;
  for (let i = 0; i < N; i++) bad += rmp.checkDmaTrusted(small[i]!, 12, ASID, smallIovas[i]!);
  return bad;
}
function dmaDenySizeLoop(): number {
  let bad = 0;
  for (let i = 0; i < N; i++) bad += rmp.checkDmaTrusted(small[i]!, 21, ASID, smallIovas[i]!);
  return bad;
}
const dma2MHit: BenchCase = {
  name: "rmp/dma/2M-hit",
  opsPerSample: N,
  entriesPerOp: 1,
  run: () => {
    sink += dma2MHitLoop();
  },
  baseline: flatLookupLarge,
};
const dma4KHit: BenchCase = {
  name: "rmp/dma/4K-hit",
  opsPerSample: N,
  entriesPerOp: 1,
  run: () => {
    sink += dma4KHitLoop();
  },
  baseline: flatLookupSmall,
};
const dmaDenySize: BenchCase = {
  name: "rmp/dma/deny-size",
  opsPerSample: N,
  entriesPerOp: 1,
  run: () => {
    sink += dmaDenySizeLoop();
  },
  baseline: flatLookupSmall,
};

const UPD = 4096;
const updBase = 128 * 2 ** 30;
const rmpupdate4K: BenchCase = {
  name: "rmp/rmpupdate/4K",
  opsPerSample: UPD,
  entriesPerOp: 1,
  run: () => {
    for (let i = 0; i < UPD; i++)
      rmpMakePrivate(rmp, updBase / K4 + i, i * K4, PgLevel.PG_LEVEL_4K, ASID, false);
  },
  after: () => {
    for (let i = 0; i < UPD; i++) rmpMakeShared(rmp, updBase / K4 + i, PgLevel.PG_LEVEL_4K);
  },
  baseline: flatLookupLarge,
};

const SM = 256;
const smBase = 256 * 2 ** 30;
const psmash2M: BenchCase = {
  name: "rmp/psmash/2M",
  opsPerSample: SM,
  entriesPerOp: 512,
  before: () => {
    for (let r = 0; r < SM; r++)
      rmpMakePrivate(rmp, (smBase + r * M2) / K4, r * M2, PgLevel.PG_LEVEL_2M, ASID, false);
  },
  run: () => {
    for (let r = 0; r < SM; r++) rmp.psmash(smBase + r * M2);
  },
  after: () => {
    for (let r = 0; r < SM; r++) rmp.unsmash(smBase + r * M2);
    for (let r = 0; r < SM; r++) rmpMakeShared(rmp, (smBase + r * M2) / K4, PgLevel.PG_LEVEL_2M);
  },
  baseline: flatLookupLarge,
};

const verdicts = new Uint8Array(N);
function burstCase(
  name: string,
  spas: Float64Array,
  iovas: Float64Array,
  leafLg2: number,
  baseline: BenchCase,
): BenchCase {
  return {
    name,
    opsPerSample: N,
    entriesPerOp: 1,
    run: () => {
      // One call per sample: what the closure captures is read once.
      sink += rmp.checkDmaTrustedBurst(spas, iovas, N, leafLg2, ASID, verdicts);
    },
    baseline,
  };
}

const cases: BenchCase[] = [
  burstCase("rmp/dma-burst/2M-hit", large, largeIovas, 21, flatLookupLarge),
  burstCase("rmp/dma-burst/4K-hit", small, smallIovas, 12, flatLookupSmall),
  burstCase("rmp/dma-burst/deny-size", small, smallIovas, 21, flatLookupSmall),
  dma2MHit,
  dma4KHit,
  dmaDenySize,
  rmpupdate4K,
  psmash2M,
];

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
runBench(cases, benchArgs(dir));
if (sink === -1) console.log(sink);
