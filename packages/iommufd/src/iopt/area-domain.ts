import type { IommuDomain } from "../hwpt/domain.js";
import { PAGE_SIZE } from "../uapi.js";
import type { IoptArea } from "./area.js";

const run = new Float64Array(1);

/**
 * Maps an area's pinned pages into one domain, batch by batch of physically
 * contiguous pages, each batch with the largest page sizes iommu_map() finds;
 * with large pages disabled, page by page (batch_iommu_map_small). All or
 * nothing: on failure what this call mapped is unmapped again.
 */
export function fillAreaDomain(area: IoptArea, domain: IommuDomain, smallPagesOnly: boolean): void {
  const pages = area.source;
  const end = area.startByte + area.length;
  const lastIndex = area.lastIndex;
  let b = area.startByte;
  // IOVA up to which this call has mapped.
  let mapped = area.iova;
  try {
    while (b < end) {
      const index = Math.floor(b / PAGE_SIZE);
      const pa = pages.pinnedRun(index, lastIndex, run) + (b - index * PAGE_SIZE);
      const runEnd = Math.min((index + run[0]!) * PAGE_SIZE, end);
      if (smallPagesOnly) {
        for (let p = b; p < runEnd; ) {
          const next = Math.min((Math.floor(p / PAGE_SIZE) + 1) * PAGE_SIZE, runEnd);
          domain.map(mapped, pa + (p - b), next - p, area.prot);
          mapped += next - p;
          p = next;
        }
      } else {
        domain.map(mapped, pa, runEnd - b, area.prot);
        mapped += runEnd - b;
      }
      b = runEnd;
    }
  } catch (e) {
    if (mapped > area.iova) domain.unmap(area.iova, mapped - area.iova);
    throw e;
  }
}

/** Removes an area from one domain (every leaf lies inside it, so one iommu_unmap does). */
export function unfillAreaDomain(area: IoptArea, domain: IommuDomain): void {
  const n = domain.unmap(area.iova, area.length);
  if (n !== area.length) {
    throw new Error(
      `iommufd: unmapping area [0x${area.iova.toString(16)}, 0x${area.last.toString(16)}] removed 0x${n.toString(16)} bytes`,
    );
  }
}
