import { describe, expect, test } from "vitest";
import { featureMask, IommuProt, IoPageTable, PtFeature } from "./index.js";

const RW = IommuProt.READ | IommuProt.WRITE;

describe("smoke", () => {
  for (const format of ["amdv1", "x86_64", "vtdss"] as const) {
    test(`${format} map/translate/unmap`, () => {
      const pt = new IoPageTable({ format, ...(format !== "amdv1" ? { hwMaxVaLg2: 48 } : {}) });
      pt.map(0x1000, 0x5000, 0x1000, RW);
      expect(pt.translate(0x1234)).toBe(0x5234);
      pt.map(0x200000, 0x40000000, 0x200000, RW);
      expect(pt.translate(0x200000 + 0x1234)).toBe(0x40001234);
      pt.mapRange(0x40000000, 0x80000000, 0x40000000 + 0x200000 + 0x1000, RW);
      expect(pt.translate(0x40000000 + 0x40000000 + 0x200000 + 0x10)).toBe(
        0x80000000 + 0x40000000 + 0x200000 + 0x10,
      );
      const st = pt.stats();
      expect(st.mappedBytes).toBe(0x1000 + 0x200000 + 0x40000000 + 0x200000 + 0x1000);
      expect(pt.unmap(0x200000, 0x1000)).toBe(0x200000);
      expect(pt.translate(0x200000)).toBe(-1);
      expect(pt.unmapRange(0x40000000, 0x40201000)).toBe(0x40201000);
      expect(pt.unmap(0x1000, 0x1000)).toBe(0x1000);
      expect(pt.stats().mappedBytes).toBe(0);
      pt.destroy();
      expect(pt.mem.inUse).toBe(0);
    });
  }
  test("amdv1 contiguous 16K", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    pt.map(0x10000, 0x20000, 0x4000, RW);
    const leaves: number[] = [];
    pt.forEachLeaf((l) => leaves.push(l.sizeLg2));
    expect(leaves).toEqual([14]);
    expect(pt.translate(0x13008)).toBe(0x23008);
  });
  test("split and collapse", () => {
    const pt = new IoPageTable({ format: "amdv1" });
    pt.map(0x40000000, 0x80000000, 0x40000000, RW);
    const fp = pt.fingerprint();
    const r = pt.splitRange(0x40200000, 0x200000, 0x1000);
    expect(r.writes.length).toBe(1);
    const sizes = new Map<number, number>();
    pt.forEachLeaf((l) => sizes.set(l.sizeLg2, (sizes.get(l.sizeLg2) ?? 0) + 1));
    expect(sizes.get(12)).toBe(512);
    for (let va = 0x40000000; va < 0x80000000; va += 0x100000)
      expect(pt.translate(va + 8)).toBe(va + 0x40000008);
    const c = pt.collapseRange(0x40000000, 0x40000000);
    expect(c.leavesMerged).toBeGreaterThan(0);
    expect(pt.fingerprint()).toBe(fp);
    void featureMask(PtFeature.OA_SIZE_CHANGE);
  });
});
