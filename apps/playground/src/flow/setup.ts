import type { AdjustReport } from "@smashlab/iommufd";
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from "@smashlab/iommufd";
import { sizesOfBitmap } from "@smashlab/pagetable";
import { PgLevel, PvalidateRet, RmpPageSize, RmpUpdateRet, rmpMakePrivate } from "@smashlab/rmp";
import type { Machine } from "../machine/machine.js";
import { formatBytes, hex, K4, M2, sizeName } from "../units.js";
import { expectStatus } from "./status.js";

/** The HWPT's cap: the known upper bound of the RMP's page size (the seed thread's step 2). */
export const HWPT_MAX_PAGE_SIZE = M2;

/** What a setup step did, one line per call. */
export interface StepActions {
  actions: string[];
}

/** Step 1: the device binds to iommufd (VFIO cdev), and the VMM creates an IOAS. */
export function createIoas(m: Machine): StepActions {
  m.devId = m.fd.bind(m.tdi);
  m.ioasId = m.fd.ioasAlloc();
  return {
    actions: [
      `VMM: VFIO_DEVICE_BIND_IOMMUFD(${m.tdi.name}) → dev_id ${m.devId}`,
      `VMM: IOMMU_IOAS_ALLOC → ioas_id ${m.ioasId}`,
    ],
  };
}

/** Step 2: a HWPT capped at 2M on the IOAS, and the device attached to it. */
export function createCappedHwpt(m: Machine): StepActions {
  m.hwptId = m.fd.hwptAlloc({
    flags: 0,
    devId: m.devId,
    ptId: m.ioasId,
    maxPageSize: HWPT_MAX_PAGE_SIZE,
  });
  m.fd.deviceAttach(m.devId, m.hwptId);
  const domain = m.requireDomain();
  m.device.attach(domain);
  const sizes = sizesOfBitmap(domain.pgsizeBitmap);
  return {
    actions: [
      `VMM: IOMMU_HWPT_ALLOC(dev_id ${m.devId}, pt_id ${m.ioasId}, max page size ${formatBytes(HWPT_MAX_PAGE_SIZE)}) → hwpt_id ${m.hwptId}`,
      `       an ${domain.format} (AMD IOMMU v1) domain with leaves of ${sizeName(sizes[0]!)}..${sizeName(sizes[sizes.length - 1]!)} (${sizes.length} sizes)`,
      `VMM: VFIO_DEVICE_ATTACH_IOMMUFD_PT(dev_id ${m.devId}, pt_id ${m.hwptId}) → 0`,
    ],
  };
}

/** Step 3: the guest's memory, a 2M-folio file, mapped at IOVA = GPA. */
export function mapGuestMemory(m: Machine): StepActions {
  const iova = m.fd.ioasMapFile({
    ioasId: m.ioasId,
    flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_FIXED_IOVA,
    file: m.file,
    start: 0,
    length: m.size,
    iova: m.gpa,
  });
  return {
    actions: [
      `VMM: a memfd of ${formatBytes(m.size)} in ${formatBytes(m.file.folioSize)} folios at host ${hex(m.hpa)} (it stands in for guest_memfd)`,
      `VMM: IOMMU_IOAS_MAP_FILE(ioas_id ${m.ioasId}, offset 0, length ${formatBytes(m.size)}, iova ${hex(m.gpa)}, FIXED_IOVA|READABLE|WRITEABLE)`,
      `       → iova ${hex(iova)}; iommufd fills the HWPT with one leaf per folio (a folio is contiguous)`,
    ],
  };
}

/**
 * Step 4: KVM assigns every 2M region to the guest at 2M and the guest
 * validates it; then the VMM adjusts the HWPT so that every IO leaf's size
 * class is its RMP entry's (the seed thread's steps 4 and 5).
 */
export function buildRmpAndMatchHwpt(m: Machine): StepActions {
  for (let r = 0; r < m.regions; r++) {
    const hpa = m.hpaOf(r);
    const gpa = m.gpaOf(r);
    expectStatus(
      RmpUpdateRet,
      rmpMakePrivate(m.rmp, hpa / K4, gpa, PgLevel.PG_LEVEL_2M, m.asid, false),
      RmpUpdateRet.SUCCESS,
      `rmp_make_private(${hex(hpa)}, 2M)`,
    );
    expectStatus(
      PvalidateRet,
      m.rmp.pvalidate(hpa, { asid: m.asid, gpa, pageSize: RmpPageSize.SIZE_2M, validate: true }),
      PvalidateRet.SUCCESS,
      `PVALIDATE(${hex(gpa)}, 2M)`,
    );
  }
  const n = m.regions;
  const actions = [
    `KVM: rmp_make_private(pfn, gpa, PG_LEVEL_2M, asid ${m.asid}) → SUCCESS, for each of the ${n} regions`,
    `guest: PVALIDATE(gpa, 2M, validate) → SUCCESS, for each of the ${n} regions`,
  ];
  for (const run of matchHwptToRmp(m)) actions.push(...adjustCall(m, "VMM", run));
  return { actions };
}

/** One IOMMU_HWPT_ADJUST_PAGE_SIZE call: a run of regions whose RMP entries have one size. */
export interface AdjustCall {
  iova: number;
  length: number;
  pageSize: number;
  report: AdjustReport;
}

/**
 * Asks iommufd to give every run of 2M regions with one RMP entry size that
 * size in the HWPT: 2M over a 2M entry, 4K over 4K entries (one call per run).
 */
export function matchHwptToRmp(m: Machine): AdjustCall[] {
  const calls: AdjustCall[] = [];
  let first = 0;
  for (let r = 1; r <= m.regions; r++) {
    const level = m.rmp.levelOf(m.hpaOf(first));
    if (r < m.regions && m.rmp.levelOf(m.hpaOf(r)) === level) continue;
    const pageSize = level === RmpPageSize.SIZE_2M ? M2 : K4;
    const iova = m.gpaOf(first);
    const length = (r - first) * M2;
    const report = m.fd.hwptAdjustPageSize({ hwptId: m.hwptId, iova, length, pageSize });
    calls.push({ iova, length, pageSize, report });
    first = r;
  }
  return calls;
}

/** The trace of one IOMMU_HWPT_ADJUST_PAGE_SIZE call: the call, then what it changed. */
export function adjustCall(m: Machine, actor: string, c: AdjustCall): string[] {
  return [
    `${actor}: IOMMU_HWPT_ADJUST_PAGE_SIZE(hwpt_id ${m.hwptId}, iova ${hex(c.iova)}, length ${formatBytes(c.length)}, page size ${formatBytes(c.pageSize)})`,
    `       → ${adjustSummary(c.report)}`,
  ];
}

/** "1 leaf split, 1 table allocated, 1 invalidation", or "no change: ...". */
export function adjustSummary(r: AdjustReport): string {
  if (r.leavesSplit + r.leavesMerged + r.tablesAllocated + r.tablesFreed === 0) {
    return `no change: the leaves already match (${plural(r.invalidations, "invalidation")})`;
  }
  const parts: string[] = [];
  if (r.leavesSplit) parts.push(`${plural(r.leavesSplit, "leaf", "leaves")} split`);
  if (r.leavesMerged) parts.push(`${plural(r.leavesMerged, "leaf", "leaves")} merged`);
  if (r.tablesAllocated) parts.push(`${plural(r.tablesAllocated, "table")} allocated`);
  if (r.tablesFreed) parts.push(`${plural(r.tablesFreed, "table")} freed`);
  parts.push(plural(r.invalidations, "invalidation"));
  return parts.join(", ");
}

/** "1 table", "2 tables". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Steps 1 to 4 without a record: the state every variant of step 6 starts from. */
export function freshMachineState(m: Machine): Machine {
  createIoas(m);
  createCappedHwpt(m);
  mapGuestMemory(m);
  buildRmpAndMatchHwpt(m);
  return m;
}
