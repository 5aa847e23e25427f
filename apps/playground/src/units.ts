/** 4 KiB: a base page, and the size of one RMP entry's page. */
export const K4 = 2 ** 12;
/** 2 MiB: a large IO leaf, a 2M RMP entry, a guest folio. */
export const M2 = 2 ** 21;
/** 1 GiB. */
export const G1 = 2 ** 30;
/** 4K pages in a 2M region. */
export const PAGES_PER_REGION = M2 / K4;

const UNITS = [
  ["T", 2 ** 40],
  ["G", 2 ** 30],
  ["M", 2 ** 20],
  ["K", 2 ** 10],
] as const;

/** A byte count the way kernel people write it: 1073741824 → "1G", 6291456 → "6M". */
export function formatBytes(n: number): string {
  for (const [unit, size] of UNITS) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return `${n}B`;
}

/** A power-of-two size from its log2: 12 → "4K", 21 → "2M". */
export function sizeName(lg2: number): string {
  return formatBytes(2 ** lg2);
}

/** An address as the kernel prints it: 0x100000000. */
export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Nanoseconds of simulated time, readable: 1000000 → "1.000 ms". */
export function formatNs(ns: number): string {
  if (ns >= 1_000_000) return `${(ns / 1_000_000).toFixed(3)} ms`;
  if (ns >= 1_000) return `${(ns / 1_000).toFixed(3)} µs`;
  return `${ns} ns`;
}
