import { expect, test } from "vitest";
import { DmaVerdict, PgLevel, Rmp, rmpMakePrivate } from "../index.js";

const TIB = 2 ** 40;
const M2 = 2 ** 21;

test("a 4 TiB host with 1% of its 2M regions smashed stays within a memory bound the model reports", () => {
  const rmp = new Rmp({ hostBytes: 4 * TIB });
  const regions = (4 * TIB) / M2; // 2,097,152
  const smashed = Math.floor(regions / 100);
  // Spread the smashed regions over the whole host, one every 100 regions.
  for (let k = 0; k < smashed; k++) {
    const spa = k * 100 * M2;
    expect(
      rmpMakePrivate(
        rmp,
        spa / 4096,
        (spa % 2 ** 48) + 0,
        PgLevel.PG_LEVEL_2M,
        1 + (k % 500),
        false,
      ),
    ).toBe(0);
    expect(rmp.psmash(spa)).toBe(0);
  }
  const s = rmp.stats();
  expect(s.regionsSmall).toBe(smashed);
  expect(s.regions2M).toBe(0);
  // Per smashed region 512 entries of 10 bytes (a word for the DMA check, a word of
  // GFN high bits, Immutable and VMSA, 2 bytes of VMPL permissions) and three 2-byte
  // counters; the slab grows by half, so at most 1.5x that (plus the slot that
  // triggered the growth). Per touched GiB 512 records of 10 bytes (two words, 2
  // bytes of permissions), grown by doubling; a directory word per GiB.
  const slot = 512 * 10 + 3 * 2;
  const gibs = (4 * TIB) / 2 ** 30;
  const bound = 1.5 * (smashed + 1) * slot + 2 * gibs * 512 * 10 + 4 * gibs;
  expect(s.bytesUsed).toBeLessThan(bound);
  // A flat table of 16-byte entries for 4 TiB would be 16 GiB.
  expect(s.bytesUsed).toBeLessThan(0.02 * 16 * 2 ** 30);
  const spa = 37 * 100 * M2 + 5 * 4096;
  expect(rmp.checkDmaTrusted(spa, 12, 1 + (37 % 500), spa % 2 ** 48)).toBe(DmaVerdict.ALLOWED);
  expect(rmp.checkDmaTrusted(spa, 21, 1 + (37 % 500), spa % 2 ** 48)).toBe(
    DmaVerdict.LEAF_LARGER_THAN_RMP,
  );
  expect(rmp.checkDmaTrusted(4 * TIB - 4096, 12, 1, 0)).toBe(DmaVerdict.NOT_ASSIGNED);
}, 60_000);

test("memory follows what is assigned: untouched host memory costs only the directory", () => {
  const rmp = new Rmp({ hostBytes: 4 * TIB });
  expect(rmp.stats().bytesUsed).toBe(4096 * 4);
  expect(rmpMakePrivate(rmp, 0, 0, PgLevel.PG_LEVEL_4K, 3, false)).toBe(0);
  const one = rmp.stats().bytesUsed;
  expect(one).toBeLessThan(64 * 1024);
  // Sharing the page back compacts the region to untouched (the slab slot returns).
  expect(
    rmp.rmpupdate(0, { assigned: false, pageSize: 0, immutable: false, asid: 0, gpa: 0 }),
  ).toBe(0);
  expect(rmp.stats().regionsSmall).toBe(0);
});
