import { IommuProt, IoPageTable, pageSizeBitmap, TableMemory } from "@smashlab/pagetable";
import { PgLevel, Rmp, RmpPageSize, rmpMakePrivate } from "@smashlab/rmp";
import { TmpmEngine, type TmpmEngineOptions } from "../device/engine.js";
import { type GuestContext, SnpFirmware } from "../device/firmware.js";
import { TmpmDriver, type TmpmDriverOptions } from "../driver/driver.js";
import { HostMemory } from "../memory/host-memory.js";
import { ManualClock } from "../time/clock.js";

export const K4 = 4096;
export const M2 = 2 ** 21;
export const G1 = 2 ** 30;
/** Host physical base of the test guest's memory. */
export const HPA = 64 * G1;
/** The guest's GPA base (IOVA = GPA in the trusted domain). */
export const GPA = 4 * G1;
export const ASID = 5;

export interface Machine {
  rmp: Rmp;
  host: HostMemory;
  firmware: SnpFirmware;
  tables: TableMemory;
  domain: IoPageTable;
  clock: ManualClock;
  engine: TmpmEngine;
  driver: TmpmDriver;
  gctx: GuestContext;
  regions: number;
}

/**
 * A confidential VM of `regions` 2M regions: private at 2M in the RMP and
 * validated, mapped 1:1 (IOVA = GPA) in an AMD v1 domain capped at 2M, with a
 * TMPM engine and its driver up.
 */
export function machine(
  regions = 8,
  engine: Partial<TmpmEngineOptions> = {},
  driver: TmpmDriverOptions = {},
): Machine {
  const rmp = new Rmp();
  const host = new HostMemory();
  const firmware = new SnpFirmware(rmp, host);
  const tables = new TableMemory();
  const clock = new ManualClock();
  const domain = new IoPageTable({
    format: "amdv1",
    memory: tables,
    pgsizeBitmap: pageSizeBitmap(K4, M2),
  });
  domain.mapRange(GPA, HPA, regions * M2, IommuProt.READ | IommuProt.WRITE);
  for (let r = 0; r < regions; r++) {
    if (
      rmpMakePrivate(rmp, (HPA + r * M2) / K4, GPA + r * M2, PgLevel.PG_LEVEL_2M, ASID, false) !== 0
    )
      throw new Error("rmp");
    if (
      rmp.pvalidate(HPA + r * M2, {
        asid: ASID,
        gpa: GPA + r * M2,
        pageSize: RmpPageSize.SIZE_2M,
        validate: true,
      }) !== 0
    )
      throw new Error("pvalidate");
  }
  const e = new TmpmEngine({ firmware, tables, clock, ...engine });
  const d = new TmpmDriver(e, driver);
  d.init();
  const gctx = firmware.createGuestContext(ASID);
  // The guest's TDI is translated by this domain (SEV-TIO's bind): the engine walks it.
  firmware.bindIoPageTable(ASID, domain);
  return { rmp, host, firmware, tables, domain, clock, engine: e, driver: d, gctx, regions };
}

/** Translations of every 4K page of the guest, to compare before and after. */
export function translations(m: Machine): number[] {
  const out: number[] = [];
  for (let i = 0; i < m.regions * 512; i++) out.push(m.domain.translate(GPA + i * K4));
  return out;
}
