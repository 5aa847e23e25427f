/**
 * PSMASH_IO + PUNSMASH_IO round trips through the driver and the engine
 * (standalone: commands complete at once), against the pagetable's own
 * splitRange of a 2M leaf to 4K and collapseRange back, in the same run.
 *
 * Run: `pnpm bench` (`--json` writes bench-results.json, `--quick` for a smoke run).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchCase, benchArgs, runBench } from "@smashlab/bench-harness";
import { IommuProt, IoPageTable, pageSizeBitmap, TableMemory } from "@smashlab/pagetable";
import { PgLevel, Rmp, RmpPageSize, rmpMakePrivate } from "@smashlab/rmp";
import { HostMemory, ManualClock, SnpFirmware, TmpmDriver, TmpmEngine } from "../src/index.js";

const K4 = 4096;
const M2 = 2 ** 21;
const REGIONS = 64;
const HPA = 64 * 2 ** 30;
const GPA = 4 * 2 ** 30;
const ASID = 5;

const rmp = new Rmp();
const host = new HostMemory();
const firmware = new SnpFirmware(rmp, host);
const tables = new TableMemory();
const domain = new IoPageTable({
  format: "amdv1",
  memory: tables,
  pgsizeBitmap: pageSizeBitmap(K4, M2),
});
domain.mapRange(GPA, HPA, REGIONS * M2, IommuProt.READ | IommuProt.WRITE);
for (let r = 0; r < REGIONS; r++) {
  rmpMakePrivate(rmp, (HPA + r * M2) / K4, GPA + r * M2, PgLevel.PG_LEVEL_2M, ASID, false);
  rmp.pvalidate(HPA + r * M2, {
    asid: ASID,
    gpa: GPA + r * M2,
    pageSize: RmpPageSize.SIZE_2M,
    validate: true,
  });
}
const engine = new TmpmEngine({ firmware, tables, clock: new ManualClock() });
const driver = new TmpmDriver(engine);
driver.init();
const gctx = firmware.createGuestContext(ASID);

// The baseline's own domain, so the two never share state.
const plain = new IoPageTable({ format: "amdv1", pgsizeBitmap: pageSizeBitmap(K4, M2) });
plain.mapRange(GPA, HPA, REGIONS * M2, IommuProt.READ | IommuProt.WRITE);

const splitCollapse: BenchCase = {
  name: "pagetable split 2M->4K + collapse",
  opsPerSample: REGIONS,
  entriesPerOp: 513,
  run: () => {
    for (let r = 0; r < REGIONS; r++) {
      plain.splitRange(GPA + r * M2, M2, K4);
      plain.collapseRange(GPA + r * M2, M2);
    }
  },
};

const cases: BenchCase[] = [
  {
    name: "tmpm/psmash_io+punsmash_io/2M",
    opsPerSample: REGIONS,
    entriesPerOp: 513,
    run: () => {
      for (let r = 0; r < REGIONS; r++) {
        driver.psmashIo(gctx, domain, HPA + r * M2);
        driver.punsmashIo(gctx, domain, HPA + r * M2);
      }
    },
    baseline: splitCollapse,
  },
  {
    name: "tmpm/psmash_io/2M",
    opsPerSample: REGIONS,
    entriesPerOp: 513,
    run: () => {
      for (let r = 0; r < REGIONS; r++) driver.psmashIo(gctx, domain, HPA + r * M2);
    },
    after: () => {
      for (let r = 0; r < REGIONS; r++) driver.punsmashIo(gctx, domain, HPA + r * M2);
    },
    baseline: {
      name: "pagetable split 2M->4K",
      opsPerSample: REGIONS,
      entriesPerOp: 513,
      run: () => {
        for (let r = 0; r < REGIONS; r++) plain.splitRange(GPA + r * M2, M2, K4);
      },
      after: () => {
        for (let r = 0; r < REGIONS; r++) plain.collapseRange(GPA + r * M2, M2);
      },
    },
  },
];

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
// A round trip runs the driver, the engine, the RMP and the pagetable: the JIT
// needs about two seconds of it before the time per round trip settles (it falls
// from ~700 us to ~35 us on a 2-core VM), far more than the harness's default
// warm-up. `--quick` still skips it.
runBench(cases, { warmupMs: 2500, ...benchArgs(dir) });
