import { amdv1, EntryType } from "@smashlab/pagetable";
import type { CommandContext } from "./context.js";

/**
 * The level at which a walk of guest `asid`'s IO page tables for `iova` meets
 * the entry at physical address `entryPa`, or -1 when no walk passes it.
 *
 * Why a walk: an AMD v1 leaf with NL=0 is a leaf of its level's item size, so
 * the same 64 bits are a 2M leaf in a level-1 table and a 1G leaf in a level-2
 * table; only the level of the table holding it tells them apart, and a command
 * page gives the entry's address, not its level. So the engine walks, as the
 * IOMMU would, the tables that translate the guest's trusted DMA (those bound
 * with `SnpFirmware.bindIoPageTable`), at IOVA = the RMP's GPA: the assumption
 * the Linux driver makes too (rmp_get_gpa; hazard H9).
 */
export function entryLevelOnWalk(
  ctx: CommandContext,
  asid: number,
  iova: number,
  entryPa: number,
): number {
  for (const root of ctx.firmware.ioPageTablesOf(asid)) {
    if (root.format !== amdv1.name || !ctx.tables.isLive(root.topPa)) continue;
    // An IOVA beyond what the top level decodes would alias a lower one.
    const vaLg2 = 12 + 9 * root.topLevel + amdv1.numItemsLg2(root.topLevel);
    if (vaLg2 < 53 && iova >= 2 ** vaLg2) continue;
    let tablePa = root.topPa;
    for (let level = root.topLevel; level >= 0; level--) {
      const index = Math.floor(iova / 2 ** (12 + 9 * level)) % 2 ** amdv1.numItemsLg2(level);
      if (tablePa + 8 * index === entryPa) return level;
      const t = ctx.tables.words(tablePa);
      if (amdv1.load(t, index, level) !== EntryType.TABLE) break;
      tablePa = amdv1.tablePa(t, index);
      if (!ctx.tables.isLive(tablePa)) break;
    }
  }
  return -1;
}
