import { expect, test } from "vitest";
import {
  ctzNumber,
  floorLog2,
  hiWord,
  joinWords,
  lg2AlignDown,
  lg2Div,
  lg2Mod,
  loWord,
} from "./log2.js";

// The size arithmetic on addresses held in numbers, against BigInt two's complement.
const samples = [
  0,
  1,
  0xfff,
  0x1000,
  0x7fffffff,
  0x80000000,
  0xffffffff,
  2 ** 32,
  2 ** 52 + 4096,
  2 ** 53 - 1,
];

test("lg2Div / lg2Mod / lg2AlignDown agree with two's complement shifts, negatives included", () => {
  for (const x of [...samples, ...samples.filter((v) => v !== 0).map((v) => -v), -(2 ** 52)]) {
    for (const lg2 of [0, 1, 11, 12, 21, 30, 31, 32, 39, 48, 52]) {
      const b = BigInt(x);
      expect(lg2Div(x, lg2), `${x} >> ${lg2}`).toBe(Number(b >> BigInt(lg2)));
      expect(lg2Mod(x, lg2), `${x} mod 2^${lg2}`).toBe(Number(BigInt.asUintN(lg2, b)));
      expect(lg2AlignDown(x, lg2)).toBe(Number((b >> BigInt(lg2)) << BigInt(lg2)));
    }
  }
});

test("ctzNumber and floorLog2 on numbers up to 2^53", () => {
  expect(ctzNumber(0)).toBe(64);
  for (let i = 0; i < 53; i++) {
    expect(ctzNumber(2 ** i)).toBe(i);
    expect(ctzNumber(-(2 ** i))).toBe(i);
    expect(ctzNumber(-3 * 2 ** i)).toBe(i);
    expect(ctzNumber(2 ** i * 3)).toBe(i);
    expect(floorLog2(2 ** i)).toBe(i);
    if (i > 1) expect(floorLog2(2 ** i - 1)).toBe(i - 1);
  }
});

test("words of a 64-bit value", () => {
  for (const x of samples) {
    expect(joinWords(loWord(x), hiWord(x))).toBe(x);
    expect(loWord(x)).toBe(Number(BigInt(x) & 0xffffffffn));
  }
});
