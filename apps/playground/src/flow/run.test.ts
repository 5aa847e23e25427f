import { DmaVerdict, VERDICT_HAZARDS } from "@smashlab/rmp";
import { describe, expect, test } from "vitest";
import { DEFAULT_FLOW_OPTIONS } from "../cli/args.js";
import { failedCount } from "../machine/trusted-device.js";
import { renderJson } from "../report/json.js";
import { renderText } from "../report/text.js";
import { seedFlowHazards } from "./hazards.js";
import { type FlowResult, runFlow } from "./run.js";

const G = 2 ** 30;
const result = runFlow({ ...DEFAULT_FLOW_OPTIONS });
const step = (r: FlowResult, id: string) => {
  const s = r.steps.find((x) => x.id === id);
  if (s === undefined) throw new Error(`no step ${id}`);
  return s;
};
const variant = (r: FlowResult, id: "a" | "b" | "c") => r.variants.find((v) => v.id === id)!;

describe("the seed flow on the default guest (1G, 2M-backed, seed 1)", () => {
  test("runs every step of the issue, in order", () => {
    expect(result.steps.map((s) => s.id)).toEqual([
      "1",
      "2",
      "3",
      "4",
      "5",
      "6a.1",
      "6a.2",
      "6a.3",
      "6b.1",
      "6b.2",
      "6b.3",
      "6c.1",
      "6c.2",
      "7.1",
      "7.2",
    ]);
  });

  test("steps 1-4 build 512 x 2M IO leaves over 512 x 2M private RMP entries; step 5's DMA all passes", () => {
    expect(step(result, "1").state).toMatchObject({ ioLeaves: {}, tablesInUse: 0 });
    expect(step(result, "3").state.ioLeaves).toEqual({ "2M": 512 });
    expect(step(result, "3").state.rmp.shared4K).toBe(512 * 512);
    const s4 = step(result, "4").state;
    expect(s4.ioLeaves).toEqual({ "2M": 512 });
    expect(s4.rmp).toEqual({
      private2M: 512,
      invalid2M: 0,
      private4K: 0,
      invalid4K: 0,
      shared4K: 0,
    });
    const dma = step(result, "5").dma!;
    expect(dma.issued).toBe(1000);
    expect(dma.passed).toBe(1000);
  });

  test("6a, RMP first: DMA to the other 511 pages fails from the PSMASH until the IO leaf is split (H1)", () => {
    const v = variant(result, "a");
    expect(v.faultSteps).toEqual(["6a.1", "6a.2"]);
    expect(v.faulted).toBe(2000);
    expect(v.windowDmas).toBe(2000);
    expect(v.failed).toEqual({ LEAF_LARGER_THAN_RMP: 2000 });
    expect(v.hazards).toEqual(["H1"]);
    expect(step(result, "6a.1").state.ioLeaves).toEqual({ "2M": 512 });
    expect(step(result, "6a.3").dma!.passed).toBe(1000);
  });

  test("6b, IO leaf first: DMA fails between the hitless split and the PSMASH (H2)", () => {
    const v = variant(result, "b");
    expect(v.faultSteps).toEqual(["6b.1"]);
    expect(v.faulted).toBe(1000);
    expect(v.failed).toEqual({ LEAF_SMALLER_THAN_RMP: 1000 });
    expect(v.hazards).toEqual(["H2"]);
    expect(step(result, "6b.1").state.rmp.private2M).toBe(512);
    expect(step(result, "6b.1").state.ioLeaves).toEqual({ "2M": 511, "4K": 512 });
  });

  test("6c, PSMASH_IO: no DMA fails; the engine holds the region's DMA for its 1 ms instead", () => {
    const v = variant(result, "c");
    expect(v.faulted).toBe(0);
    expect(v.failed).toEqual({});
    expect(v.held).toBe(1000);
    expect(v.heldNs).toBe(1_000_000);
    expect(v.dmas).toBe(2000);
  });

  test("every variant ends with 4K IO leaves over 4K RMP entries and the page shared", () => {
    for (const id of ["6a.3", "6b.3", "6c.2"]) {
      const s = step(result, id).state;
      expect(s.ioLeaves).toEqual({ "2M": 511, "4K": 512 });
      expect(s.rmp).toEqual({
        private2M: 511,
        invalid2M: 0,
        private4K: 511,
        invalid4K: 0,
        shared4K: 1,
      });
      expect(s.tablesInUse).toBe(3);
    }
  });

  test("step 7 restores one 2M IO leaf and one 2M RMP entry: the state of step 5, fingerprints and all", () => {
    expect(result.restored).toEqual({
      ioLeaf2M: true,
      rmpEntry2M: true,
      rmpAsAfterStep5: true,
      ioTableAsAfterStep5: true,
    });
    expect(step(result, "7.2").state).toEqual(step(result, "5").state);
    expect(step(result, "7.1").dma!.passed).toBe(1000);
    expect(step(result, "7.2").dma).toMatchObject({ passed: 1000, held: 1000 });
  });

  test("no table page, pin or iommufd object is left once the four machines are closed", () => {
    expect(result.leftovers).toEqual({ tablePages: 0, pinnedPages: 0, objects: 0, machines: 4 });
  });

  test("every DMA is accounted for: passed + failed = issued, held never more than issued", () => {
    for (const s of result.steps) {
      if (s.dma === undefined) continue;
      expect(s.dma.passed + failedCount(s.dma)).toBe(s.dma.issued);
      expect(s.dma.held).toBeLessThanOrEqual(s.dma.issued);
    }
  });

  test("the converted page is the one the header names", () => {
    const c = result.converted;
    expect(c.gpa).toBe(result.guest.gpa + c.region * 2 ** 21 + c.page * 4096);
    expect(c.hpa).toBe(result.guest.hpa + c.region * 2 ** 21 + c.page * 4096);
    expect(c.region).toBeLessThan(512);
    expect(c.page).toBeLessThan(512);
  });
});

describe("determinism and options", () => {
  test("the same options give the same result and the same output, byte for byte", () => {
    const again = runFlow({ ...DEFAULT_FLOW_OPTIONS });
    expect(again).toEqual(result);
    expect(renderText(again)).toBe(renderText(result));
    expect(renderJson(again)).toBe(renderJson(result));
  });

  test("another seed picks another page; the outcomes stay the same", () => {
    const other = runFlow({ ...DEFAULT_FLOW_OPTIONS, seed: 2 });
    expect([other.converted.region, other.converted.page]).not.toEqual([
      result.converted.region,
      result.converted.page,
    ]);
    expect(other.variants.map((v) => [v.id, v.hazards, v.faulted > 0])).toEqual([
      ["a", ["H1"], true],
      ["b", ["H2"], true],
      ["c", [], false],
    ]);
  });

  test("a guest of one 2M region, and a larger one, give the same outcomes", () => {
    for (const size of [2 ** 21, 4 * G]) {
      const r = runFlow({ size, seed: 5, dmas: 64 });
      expect(r.variants.map((v) => v.faulted)).toEqual([128, 64, 0]);
      expect(step(r, "4").state.ioLeaves).toEqual({ "2M": size / 2 ** 21 });
      expect(r.restored.rmpAsAfterStep5 && r.restored.ioTableAsAfterStep5).toBe(true);
      expect(r.leftovers.tablePages).toBe(0);
    }
  });

  test("--dmas sets the DMAs per step", () => {
    const r = runFlow({ size: 64 * 2 ** 20, seed: 1, dmas: 3 });
    for (const s of r.steps) if (s.dma !== undefined) expect(s.dma.issued).toBe(3);
  });
});

describe("seedFlowHazards", () => {
  test("narrows the RMP package's list, never adds to it", () => {
    for (const v of Object.values(DmaVerdict)) {
      for (const lg2 of [12, 16, 21, 22, 30]) {
        for (const h of seedFlowHazards(v, lg2)) expect(VERDICT_HAZARDS[v]).toContain(h);
      }
    }
    expect(seedFlowHazards(DmaVerdict.LEAF_LARGER_THAN_RMP, 21)).toEqual(["H1"]);
    expect(seedFlowHazards(DmaVerdict.LEAF_LARGER_THAN_RMP, 22)).toEqual(["H4"]);
    expect(seedFlowHazards(DmaVerdict.LEAF_SMALLER_THAN_RMP, 12)).toEqual(["H2"]);
  });
});
