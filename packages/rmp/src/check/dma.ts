import type { Rmp } from "../rmp.js";
import type { RmpStore } from "../table/store.js";
import type { DmaVerdict } from "./verdict.js";

/*
 * Hot path. The words read are laid out in store.ts; its W_*, E_* and C_* names are
 * written here as literals, as are the verdicts of verdict.ts (layout.test.ts ties
 * the two together): TurboFan folds a literal in every compile, a module-level
 * constant only in some, and an imported one never (it reloads it from its cell,
 * with a hole check, at each use).
 *
 * Addresses stay doubles until they are known to be inside the host:
 * `spa * 2^-21 >= regionCount` is `floor(spa / 2M) >= regionCount`, and below it
 * spa is in [0, 2^42), so `>>> 0` truncates its page number to the floor. A NaN
 * address takes the path of address 0, as it always has. The IOVA's page q =
 * iova * 2^-12 matches a GFN when d = q - GFN is in [0, 1), which is exactly
 * `floor(q) === GFN`: q - GFN is exact when q is within a page of it (Sterbenz),
 * and rounding is monotonic and keeps the sign, so a q below it (even -0 against
 * GFN 0, as before), above it, infinite or NaN never lands in [0, 1). The GFN is
 * built in doubles, hi * 2^k + lo as (hi + 0.5) * 2^k + (lo - 2^(k-1)), exact, so
 * that TurboFan cannot speculate an int32 product and deoptimize on a GPA of 8 TiB
 * or more. The ASID is compared as an int32: -1, which no entry holds, for an
 * ASID that is not one.
 * Nothing is allocated or boxed; verdicts are small ints.
 */

/**
 * The IOMMU's RMP check for a trusted (T=1) DMA (coco.md §3): translate IOVA
 * (= GPA) to SPA, then the RMP entry ruling the page must be assigned to the
 * device's guest, at that GPA, with a size class equal to the IO leaf's: a leaf
 * of 2M or more is checked as 2M and needs a 2M entry; a leaf of 4K..1M is
 * checked as 4K and needs a 4K entry; there is no retry at the other size. A 1G
 * leaf is checked one 2M region at a time.
 *
 * Reads one directory word, one region record (two adjacent words) and at most
 * one 4K entry word.
 */
export function checkDmaTrusted(
  rmp: Rmp,
  spa: number,
  leafLg2: number,
  asid: number,
  iova: number,
): DmaVerdict {
  // One function that TurboFan inlines into a caller's loop (at most 460 bytes of
  // bytecode): a call to a helper of another module would cost a check of its
  // identity on every access.
  const s = rmp.store;
  if (spa * 4.76837158203125e-7 >= s.regionCount || spa < 0) return 9; // NOT_COVERED
  const pfn = (spa * 0.000244140625) >>> 0; // spa / 4K
  const t = s.tab;
  const c = t[pfn >>> 18]!; // the GiB's directory word
  if (c === 0) return 3; // NOT_ASSIGNED: nothing in this GiB was ever touched
  const r = c | ((pfn >>> 8) & 1022); // the region's record (chunks are 1024-word aligned)
  const page = pfn & 511; // the page in the region
  const w0 = t[r]!;
  const w1 = t[r | 1]!;
  const a = (asid | 0) === asid ? asid : -1; // -1: no entry holds it (-0 compares as 0)
  const mode = w0 & 3;
  if (mode === 1) {
    // LARGE: a 2M entry, GPA bits 50:21 in w1.
    if (!(w0 & 4)) return 3; // NOT_ASSIGNED
    if (leafLg2 < 21) return 2; // LEAF_SMALLER_THAN_RMP
    if (w0 >>> 10 !== a) return 4; // WRONG_ASID
    // The IOVA's page must be the entry's GFN (w1 * 512) plus the SPA's page in the region.
    const d = iova * 0.000244140625 - ((w1 + 0.5) * 512 + (page - 256));
    if (!(d >= 0 && d < 1)) return 5; // WRONG_GPA
    return ~w0 & s.validatedMask & 16 ? 6 : 0; // NOT_VALIDATED (W_VALIDATED unset) or ALLOWED
  }
  if (mode !== 2) return 3; // NOT_ASSIGNED: an UNTOUCHED region
  // SMALL: the 4K entry in slot w1; assigned without a look when all 512 are (W_FULL).
  if (w0 & 0x400000 && leafLg2 >= 21) return 1; // LEAF_LARGER_THAN_RMP
  const e = (w1 << 9) | page;
  const m = s.ent[e]!;
  if (!(m & 1)) return 3; // NOT_ASSIGNED
  if (leafLg2 >= 21) return 1; // LEAF_LARGER_THAN_RMP
  if (((m >>> 2) & 0x3ff) !== a) return 4; // WRONG_ASID
  // The IOVA's page number must be the GFN: bits 19:0 in the entry, bits 38:20 in
  // the record when uniform, else in sCold.
  // (bits 21:3 of w0, or bits 18:0 of sCold, shifted out on both sides)
  const hi = w0 & 4 ? (w0 << 10) >>> 13 : (s.sCold[e]! << 13) >>> 13;
  const d = iova * 0.000244140625 - ((hi + 0.5) * 1048576 + ((m >>> 12) - 524288));
  if (!(d >= 0 && d < 1)) return 5; // WRONG_GPA
  return ~m & s.validatedMask & 2 ? 6 : 0; // NOT_VALIDATED (E_VALIDATED unset) or ALLOWED
}

/**
 * {@link checkDmaTrusted} for a burst of accesses by one device (a scatter-gather
 * transfer), writing one verdict per access into `verdicts` and returning how many
 * were denied. Its cost does not depend on the caller's code being inlined.
 */
export function checkDmaTrustedBurst(
  rmp: Rmp,
  spas: Float64Array,
  iovas: Float64Array,
  count: number,
  leafLg2: number,
  asid: number,
  verdicts: Uint8Array,
): number {
  const s = rmp.store;
  const large = leafLg2 >= 21 ? 1 : 0;
  const a = (asid | 0) === asid ? asid | 0 : -1;
  // In chunks: burstChunk runs often enough to be optimized as a function, its
  // loop invariants typed once per call. One long loop here would run as
  // on-stack-replacement code, which re-checks every invariant on every access.
  let denied = 0;
  for (let k = 0; k < count; k += BURST_CHUNK) {
    denied += burstChunk(s, spas, iovas, k, Math.min(k + BURST_CHUNK, count), large, a, verdicts);
  }
  return denied;
}

const BURST_CHUNK = 256;

/**
 * Accesses [from, to) of a burst: `largeLeaf` 1 for a leaf of 2M or more, else 0;
 * `asid` an int32 (-1 when the caller's is not one). Both are numbers, which the
 * loop uses untagged: a boolean parameter would be tested with a full ToBoolean.
 */
function burstChunk(
  s: RmpStore,
  spas: Float64Array,
  iovas: Float64Array,
  from: number,
  to: number,
  largeLeaf: number,
  asid: number,
  verdicts: Uint8Array,
): number {
  const large = largeLeaf !== 0;
  const a = asid | 0;
  // `to` is a whole number unless the caller's count was not; ints keep the loop untagged.
  const end = (to | 0) === to ? to | 0 : to;
  const t = s.tab;
  const ent = s.ent;
  const cold = s.sCold;
  const regions = s.regionCount | 0;
  const needValidated = s.validatedMask !== 0;
  let denied = 0;
  for (let k = from | 0; k < end; k++) {
    const spa = spas[k]!;
    let v: DmaVerdict = 3; // NOT_ASSIGNED
    if (spa * 4.76837158203125e-7 >= regions || spa < 0) {
      v = 9; // NOT_COVERED
    } else {
      const pfn = (spa * 0.000244140625) >>> 0;
      const c = t[pfn >>> 18]!;
      if (c !== 0) {
        const r = c | ((pfn >>> 8) & 1022);
        const w0 = t[r]!;
        const w1 = t[r | 1]!;
        const mode = w0 & 3;
        if (mode === 1) {
          // LARGE
          if ((w0 & 4) === 0) v = 3;
          else if (!large) v = 2;
          else if (w0 >>> 10 !== a) v = 4;
          else {
            const d = iovas[k]! * 0.000244140625 - ((w1 + 0.5) * 512 + ((pfn & 511) - 256));
            if (!(d >= 0 && d < 1)) v = 5;
            else if (needValidated && (w0 & 16) === 0) v = 6;
            else v = 0;
          }
        } else if (mode === 2) {
          // SMALL
          const e = (w1 << 9) | (pfn & 511);
          if (large && (w0 & 0x400000) !== 0)
            v = 1; // all 512 assigned (W_FULL)
          else {
            const m = ent[e]!;
            if ((m & 1) === 0) v = 3;
            else if (large) v = 1;
            else if (((m >>> 2) & 0x3ff) !== a) v = 4;
            else {
              const hi = (w0 & 4) !== 0 ? (w0 >>> 3) & 0x7ffff : cold[e]! & 0x7ffff;
              const d = iovas[k]! * 0.000244140625 - ((hi + 0.5) * 1048576 + ((m >>> 12) - 524288));
              if (!(d >= 0 && d < 1)) v = 5;
              else if (needValidated && (m & 2) === 0) v = 6;
              else v = 0;
            }
          }
        }
      }
    }
    verdicts[k] = v;
    if (v !== 0) denied++;
  }
  return denied;
}

/**
 * The IOMMU's RMP check for an untrusted (T=0) DMA: the page must not be
 * assigned; through a leaf of 2M or more (with `untrustedLargeLeafChecksWholeRegion`,
 * the default) no page of its 2M region may be. Whether reads of assigned pages
 * are blocked as well as writes is open (coco.md §8 q4); both are, here.
 */
export function checkDmaUntrusted(rmp: Rmp, spa: number, leafLg2: number): DmaVerdict {
  const s = rmp.store;
  if (spa * 4.76837158203125e-7 >= s.regionCount || spa < 0) return 9; // NOT_COVERED
  const pfn = (spa * 0.000244140625) >>> 0;
  const t = s.tab;
  const c = t[pfn >>> 18]!;
  if (c === 0) return 0; // ALLOWED
  const r = c | ((pfn >>> 8) & 1022);
  const w0 = t[r]!;
  const mode = w0 & 3;
  if (mode === 1) return (w0 & 4) === 0 ? 0 : 7; // ALLOWED or ASSIGNED_TO_GUEST
  if (mode === 2) {
    if (w0 & 0x400000) return 7; // all 512 assigned (W_FULL): ASSIGNED_TO_GUEST
    const slot = t[r | 1]!;
    if ((s.ent[(slot << 9) | (pfn & 511)]! & 1) !== 0) return 7; // ASSIGNED_TO_GUEST
    if (
      leafLg2 >= 21 &&
      rmp.options.untrustedLargeLeafChecksWholeRegion &&
      s.slotAssigned[slot]! > 0
    ) {
      return 8; // ASSIGNED_IN_REGION
    }
  }
  return 0; // ALLOWED
}
