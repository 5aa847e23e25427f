import { DmaVerdict, VERDICT_HAZARDS } from "@smashlab/rmp";

/**
 * Ties a failed trusted DMA of the seed flow to the hazard of coco.md §7 it
 * shows. The RMP package lists every hazard a verdict can come from; in this
 * flow some cannot happen, so they are left out:
 * - a size mismatch is never H3 or H22: the HWPT allows 2M leaves and step 4
 *   matches every leaf to its RMP entry before the device's first DMA;
 * - an IO leaf larger than a 4K RMP entry is H4 when the leaf is above 2M, H1
 *   (the RMP was smashed under it) when it is exactly 2M.
 * Anything else keeps the package's list.
 */
export function seedFlowHazards(verdict: DmaVerdict, leafLg2: number): readonly string[] {
  if (verdict === DmaVerdict.LEAF_LARGER_THAN_RMP) return leafLg2 > 21 ? ["H4"] : ["H1"];
  if (verdict === DmaVerdict.LEAF_SMALLER_THAN_RMP) return ["H2"];
  return VERDICT_HAZARDS[verdict];
}

/** One line on each hazard this flow can show (coco.md §7), for reports. */
export const HAZARD_TITLES: Readonly<Record<string, string>> = {
  H1: "RMP smashed under a 2M IO leaf",
  H2: "IO leaf cut to 4K while the RMP entry is still 2M",
  H4: "IO leaf above 2M over a smashed region",
};
