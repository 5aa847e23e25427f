/**
 * A small benchmark harness. Every case is timed together with a plain typed-array
 * loop that stores the same number of 64-bit entries, in the same process and the
 * same rounds, so results are reported as a ratio that survives a slower or busier
 * machine. Timing is in benchmarks only, never in tests.
 *
 * @packageDocumentation
 */
import { writeFileSync } from "node:fs";

/** One benchmark case. */
export interface BenchCase {
  /** `<format>/<op>/<shape>`, e.g. `amdv1/map/4K`. */
  name: string;
  /** Operations per timed sample; `nsPerOp` divides the sample time by this. */
  opsPerSample: number;
  /** 64-bit entries one operation stores: the size of the raw baseline per op. */
  entriesPerOp: number;
  /** Untimed preparation before each sample (e.g. map what the sample will unmap). */
  before?: () => void;
  /** The timed body: performs `opsPerSample` operations. */
  run: () => void;
  /** Untimed clean-up after each sample. */
  after?: () => void;
  /**
   * A second baseline timed in the same rounds (e.g. the pagetable's own map of the
   * same range, for an iommufd case); reported as `ratioToBaseline`.
   */
  baseline?: BenchCase;
}

/** One result row, as written to `bench-results.json`. */
export interface BenchRow {
  case: string;
  nsPerOp: number;
  rawNsPerOp: number;
  /** Time divided by that of {@link rawStore64} storing the same number of entries. */
  ratioToRaw: number;
  baseline?: string;
  baselineNsPerOp?: number;
  /** Time divided by that of the case's own `baseline`, when it has one. */
  ratioToBaseline?: number;
}

/** Options of {@link runBench}. */
export interface BenchOptions {
  /** Least timed samples per case; the median is reported. */
  samples?: number;
  /** Least untimed warm-up samples per case, so the JIT has settled. */
  warmup?: number;
  /** Warm up for at least this long per case (ms), whatever `warmup` says. */
  warmupMs?: number;
  /** Keep sampling a case until this long has been spent (ms), whatever `samples` says. */
  sampleMs?: number;
  /** Write rows to this file as JSON. */
  jsonFile?: string;
  /** Print the table (default true). */
  print?: boolean;
}

const rawWords = new Uint32Array(2 * 1024 * 1024);
let rawSink = 0;

/**
 * The baseline: store `entries` 64-bit values as two 32-bit words each, walking
 * through a 16 MiB buffer the way a page-table writer walks its tables.
 */
export function rawStore64(entries: number): void {
  const w = rawWords;
  const mask = w.length - 1;
  let pos = rawSink & mask & ~1;
  for (let i = 0; i < entries; i++) {
    w[pos] = (i << 12) | 1;
    w[pos + 1] = i >>> 20;
    pos = (pos + 2) & mask;
  }
  rawSink = pos;
}

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? Number.NaN;
}

function sampleOnce(c: BenchCase): number {
  c.before?.();
  const t0 = nowNs();
  c.run();
  const t1 = nowNs();
  c.after?.();
  return t1 - t0;
}

/**
 * Warms a case up (at least `warmup` samples and `warmupMs`), then takes at least
 * `samples` samples and keeps going until `sampleMs` is spent, capped at 10x the
 * sample count, so short operations are measured after the JIT has settled.
 */
function timeSamples(
  c: BenchCase,
  samples: number,
  warmup: number,
  warmupMs: number,
  sampleMs: number,
): number[] {
  const start = nowNs();
  for (let s = 0; s < warmup || (nowNs() - start) / 1e6 < warmupMs; s++) {
    sampleOnce(c);
    if (s > 100 * Math.max(warmup, 1)) break;
  }
  const out: number[] = [];
  const t0 = nowNs();
  while (out.length < samples || ((nowNs() - t0) / 1e6 < sampleMs && out.length < 10 * samples)) {
    out.push(sampleOnce(c) / c.opsPerSample);
  }
  return out;
}

/** The raw baseline case for a case: same entries stored per op. */
function rawCaseFor(c: BenchCase): BenchCase {
  const entries = c.entriesPerOp;
  const ops = c.opsPerSample;
  return {
    name: `raw/${c.name}`,
    opsPerSample: ops,
    entriesPerOp: entries,
    run: () => {
      for (let i = 0; i < ops; i++) rawStore64(entries);
    },
  };
}

/** Shortest sample worth timing: virtual machines' clocks can be coarse. */
const MIN_SAMPLE_NS = 200_000;

/**
 * A case without before/after can be repeated inside one sample; repeat it
 * until a sample lasts at least MIN_SAMPLE_NS. Cases with before/after must
 * carry enough operations themselves (rows where they do not are flagged).
 */
function calibrate(c: BenchCase): BenchCase {
  if (c.before || c.after) return c;
  c.run();
  const t0 = nowNs();
  c.run();
  const one = Math.max(nowNs() - t0, 1);
  const reps = Math.min(Math.ceil(MIN_SAMPLE_NS / one), 1_000_000);
  if (reps <= 1) return c;
  const body = c.run;
  return {
    ...c,
    opsPerSample: c.opsPerSample * reps,
    run: () => {
      for (let r = 0; r < reps; r++) body();
    },
  };
}

/** Runs every case with its baseline and returns (and optionally prints/writes) the rows. */
export function runBench(cases: BenchCase[], opts: BenchOptions = {}): BenchRow[] {
  const samples = opts.samples ?? 15;
  const warmup = opts.warmup ?? 5;
  const warmupMs = opts.warmupMs ?? 150;
  const sampleMs = opts.sampleMs ?? 150;
  const rows: BenchRow[] = [];
  for (const original of cases) {
    const c = calibrate(original);
    const raw = calibrate(rawCaseFor(original));
    // Interleave case and baseline so a burst of noise hits both.
    const baseline = c.baseline ? calibrate(c.baseline) : undefined;
    const a: number[] = [];
    const b: number[] = [];
    const d: number[] = [];
    const per = Math.ceil(samples / 3);
    for (let round = 0; round < 3; round++) {
      const wu = round === 0 ? warmup : 1;
      const wms = round === 0 ? warmupMs : 0;
      a.push(...timeSamples(c, per, wu, wms, sampleMs / 3));
      b.push(...timeSamples(raw, per, wu, wms, sampleMs / 3));
      if (baseline) d.push(...timeSamples(baseline, per, wu, wms, sampleMs / 3));
    }
    const nsPerOp = median(a);
    if (nsPerOp * c.opsPerSample < MIN_SAMPLE_NS / 4) {
      console.warn(
        `bench: ${c.name}: samples of ${Math.round(nsPerOp * c.opsPerSample)} ns are too short to time well; give it more operations per sample`,
      );
    }
    const rawNsPerOp = median(b);
    const row: BenchRow = {
      case: c.name,
      nsPerOp: round3(nsPerOp),
      rawNsPerOp: round3(rawNsPerOp),
      ratioToRaw: round3(nsPerOp / Math.max(rawNsPerOp, 1e-3)),
    };
    if (baseline) {
      const base = median(d);
      row.baseline = baseline.name;
      row.baselineNsPerOp = round3(base);
      row.ratioToBaseline = round3(nsPerOp / Math.max(base, 1e-3));
    }
    rows.push(row);
  }
  if (opts.print ?? true) printRows(rows);
  if (opts.jsonFile) writeFileSync(opts.jsonFile, `${JSON.stringify(rows, null, 2)}\n`);
  return rows;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Prints rows as an aligned table. */
export function printRows(rows: BenchRow[]): void {
  const w = Math.max(4, ...rows.map((r) => r.case.length));
  const anyBase = rows.some((r) => r.baseline !== undefined);
  const head = `${"case".padEnd(w)}  ${"ns/op".padStart(14)}  ${"raw ns/op".padStart(12)}  ${"÷raw".padStart(8)}`;
  console.log(anyBase ? `${head}  ${"÷baseline".padStart(9)}  baseline` : head);
  for (const r of rows) {
    const line = `${r.case.padEnd(w)}  ${fmt(r.nsPerOp).padStart(14)}  ${fmt(r.rawNsPerOp).padStart(12)}  ${r.ratioToRaw.toFixed(2).padStart(8)}`;
    console.log(
      r.baseline !== undefined
        ? `${line}  ${(r.ratioToBaseline ?? 0).toFixed(2).padStart(9)}  ${r.baseline}`
        : line,
    );
  }
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(2);
}

/** Parses the common bench command line: `--json` writes `bench-results.json` in `dir`. */
export function benchArgs(dir: string, argv = process.argv.slice(2)): BenchOptions {
  const o: BenchOptions = {};
  if (argv.includes("--json")) o.jsonFile = `${dir}/bench-results.json`;
  const quick = argv.includes("--quick");
  if (quick) {
    o.samples = 3;
    o.warmup = 1;
    o.warmupMs = 0;
    o.sampleMs = 0;
  }
  return o;
}
