/**
 * Field helpers shared by the formats: an address in bits 51:12 of a 64-bit entry
 * held as two 32-bit words. All of it is exact integer arithmetic on numbers
 * below 2^53, with no division and no Math.pow.
 */

const TWO32 = 4294967296;
const INV_TWO32 = 1 / TWO32;

/** Bits 31:12 of a 4 KiB aligned address, placed as they sit in the low word. */
export function addrLo(addr: number): number {
  // ToUint32 of an exact integer is the integer mod 2^32.
  return (addr >>> 0) & 0xfffff000;
}

/** Bits 51:32 of an address, placed as they sit in the high word. */
export function addrHi(addr: number): number {
  return Math.floor(addr * INV_TWO32) & 0xfffff;
}

/** The address held in bits 51:12 of item `i`. */
export function readAddr(t: Uint32Array, i: number): number {
  return (t[2 * i + 1]! & 0xfffff) * TWO32 + ((t[2 * i]! & 0xfffff000) >>> 0);
}

/**
 * Bits 19:0 of the 4 KiB frame number held in bits 51:12 of item `i` (address
 * bits 31:12). With {@link readFrameHi}, the address as two small integers: a walk
 * resolves a table without building the double `readAddr` returns, which is a heap
 * number wherever it is not inlined.
 */
export function readFrameLo(t: Uint32Array, i: number): number {
  return t[2 * i]! >>> 12;
}

/** Bits 39:20 of the 4 KiB frame number held in bits 51:12 of item `i` (address bits 51:32). */
export function readFrameHi(t: Uint32Array, i: number): number {
  return t[2 * i + 1]! & 0xfffff;
}

/** Number of trailing one bits of a 20-bit value (20 when all are ones). */
function trailingOnes20(x: number): number {
  const lowestZero = ~x & (x + 1);
  return lowestZero & 0xfffff ? 31 - Math.clz32(lowestZero) : 20;
}

/** Trailing one bits of the 40-bit field in bits 51:12 of item `i`. */
export function fieldTrailingOnes(t: Uint32Array, i: number): number {
  const n0 = trailingOnes20(t[2 * i]! >>> 12);
  return n0 < 20 ? n0 : 20 + trailingOnes20(t[2 * i + 1]! & 0xfffff);
}

/**
 * Bits [shift, shift+32) of the 64-bit item `i` as an unsigned 32-bit value
 * (the kernel's `(u32)(entry >> shift)`).
 */
export function entryShr32(t: Uint32Array, i: number, shift: number): number {
  const lo = t[2 * i]!;
  const hi = t[2 * i + 1]!;
  if (shift === 0) return lo;
  if (shift < 32) return ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
  return hi >>> (shift - 32);
}

/**
 * Zeroes 2^numContigLg2 items from `i`: a store loop for short runs, fill() for
 * long ones (the kernel switches to memset64 above 32 items for the same reason).
 */
export function clearItems(t: Uint32Array, i: number, numContigLg2: number): void {
  if (numContigLg2 === 0) {
    // One item, the common case: small enough to inline everywhere.
    t[2 * i] = 0;
    t[2 * i + 1] = 0;
  } else {
    clearRun(t, i, numContigLg2);
  }
}

function clearRun(t: Uint32Array, i: number, numContigLg2: number): void {
  if (numContigLg2 <= 5) {
    const end = 2 * (i + (1 << numContigLg2));
    for (let w = 2 * i; w < end; w++) t[w] = 0;
  } else {
    t.fill(0, 2 * i, 2 * (i + (1 << numContigLg2)));
  }
}

/**
 * Writes `count` leaves at consecutive items from `i`, each spanning `itemsPer`
 * items with the same value, the address part starting at `raw` (entry-bit terms,
 * any size code included) and growing by `step` per leaf, a power of two; `loBits`
 * and `hiBits` are the constant flag bits (below bit 12, and above bit 51). The
 * words are stepped in 32-bit integer arithmetic: between two carries out of the
 * low word (or, for leaves of 4 GiB and more, for each leaf) the loop does nothing
 * but the stores and one add, so a bulk map costs little more than the stores;
 * leaves of 16 MiB to 2 GiB, which carry every few leaves, test each add instead.
 */
export function writeLeafRun(
  t: Uint32Array,
  i: number,
  count: number,
  itemsPer: number,
  raw: number,
  step: number,
  loBits: number,
  hiBits: number,
): void {
  const rawHi = Math.floor(raw * INV_TWO32);
  let lo = loBits | ((raw - rawHi * TWO32) & 0xfffff000) | 0;
  let hi = hiBits | (rawHi & 0xfffff) | 0;
  // A power of two: below 2^32 it steps the low word (modulo 2^32, so 2^31 reads
  // as negative), else the high one.
  const stepLo = step < TWO32 ? step | 0 : 0;
  const stepHi = step < TWO32 ? 0 : Math.floor(step * INV_TWO32) | 0;
  const stepLg2 = 31 - Math.clz32(stepLo);
  let w = 2 * i;
  if (itemsPer === 1 && stepLg2 >= 24) {
    // Large leaves carry every few steps: test each leaf's add instead of
    // splitting the run.
    const end = w + 2 * count;
    for (; w < end; w += 2) {
      t[w] = lo;
      t[w + 1] = hi;
      const next = (lo + stepLo) | 0;
      if (next >>> 0 < lo >>> 0) hi = hiBits | ((hi + 1) & 0xfffff) | 0;
      lo = next;
    }
    return;
  }
  let left = count;
  while (left > 0) {
    // Leaves that share the current high word: up to the low word's wrap.
    let n = 1;
    if (stepLo !== 0 && left > 1) {
      // (2^32 - 1 - the low word's address bits) / step, plus the leaf at `lo`.
      const room = ((~lo | 0xfff) >>> stepLg2) + 1;
      n = Math.min(room, left);
    }
    const end = w + 2 * n * itemsPer;
    if (itemsPer === 1) {
      for (; w < end; w += 2) {
        t[w] = lo;
        t[w + 1] = hi;
        lo = (lo + stepLo) | 0;
      }
    } else {
      while (w < end) {
        for (let k = 0; k < itemsPer; k++, w += 2) {
          t[w] = lo;
          t[w + 1] = hi;
        }
        lo = (lo + stepLo) | 0;
      }
    }
    left -= n;
    // The next leaf's high word: the step's part, plus the low word's carry.
    const carry = stepLo !== 0 ? 1 : 0;
    hi = hiBits | ((hi + stepHi + carry) & 0xfffff) | 0;
  }
}
