import { describe, expect, test } from "vitest";
import { runFlow } from "../flow/run.js";
import { emptyTally } from "../machine/trusted-device.js";
import { renderDma, renderIoLeaves, renderRmp, renderText, variantOutcome } from "./text.js";

const result = runFlow({ size: 8 * 2 ** 20, seed: 1, dmas: 10 });
const text = renderText(result);
const lines = text.split("\n");

describe("renderText", () => {
  test("one block per step, each with its IO, RMP and (from step 5) DMA lines", () => {
    for (const s of result.steps) {
      const at = lines.indexOf(`${s.id.padEnd(5)}${s.title}`);
      expect(at).toBeGreaterThan(0);
      const block = lines.slice(at + 1, lines.indexOf("", at));
      expect(block.filter((l) => l.startsWith("     IO     "))).toHaveLength(1);
      expect(block.filter((l) => l.startsWith("     RMP    "))).toHaveLength(1);
      expect(block.filter((l) => l.startsWith("     DMA    "))).toHaveLength(s.dma ? 1 : 0);
      expect(block.filter((l) => l.startsWith("       ")).length).toBe(s.actions.length);
    }
  });

  test("each variant and step 7 get a header saying which machine they run on", () => {
    for (const v of result.variants) {
      const at = lines.indexOf(`6${v.id}   ${v.title}`);
      expect(lines[at + 1]).toBe("     on a fresh machine in the state of step 5");
    }
    expect(lines).toContain("     on the machine of 6c");
  });

  test("the summary names the faults, the hazards and the restored region", () => {
    const summary = lines.slice(lines.indexOf("Summary"));
    expect(summary.join("\n")).toMatch(
      /6a +RMP first, IO leaf still 2M +FAULTS +20 of 20 DMAs in 6a\.1\.\.6a\.2 failed \(H1\)/,
    );
    expect(summary.join("\n")).toMatch(/6b .* FAULTS +10 of 10 DMAs in 6b\.1 failed \(H2\)/);
    expect(summary.join("\n")).toMatch(
      /6c .* no faults +20 DMAs passed, 10 of them held 1\.000 ms by the engine/,
    );
    expect(summary).toContain(
      "  H1: RMP smashed under a 2M IO leaf; H2: IO leaf cut to 4K while the RMP entry is still 2M (coco.md §7)",
    );
    expect(text.endsWith("(coco.md §7)\n")).toBe(true);
  });

  test("a region that did not come back, and leftovers, are said in capitals", () => {
    const broken = structuredClone(result);
    broken.restored.ioLeaf2M = false;
    broken.leftovers.tablePages = 1;
    const summary = renderText(broken);
    expect(summary).toMatch(/NOT RESTORED +region \d+: IO leaf 2M false/);
    expect(summary).toMatch(/LEAKS +1 table pages/);
  });
});

describe("the pieces", () => {
  test("IO leaves largest first, with table pages", () => {
    expect(
      renderIoLeaves({ ioLeaves: { "4K": 512, "2M": 511 }, rmp: emptyRmp(), tablesInUse: 3 }),
    ).toBe("511 x 2M, 512 x 4K leaves; 3 table pages in use");
    expect(renderIoLeaves({ ioLeaves: {}, rmp: emptyRmp(), tablesInUse: 1 })).toBe(
      "no leaves; 1 table page in use",
    );
  });

  test("RMP entries by size and state", () => {
    expect(renderRmp({ ...emptyRmp(), private2M: 511, private4K: 511, invalid4K: 1 })).toBe(
      "511 x 2M private, 511 x 4K private, 1 x 4K private (not validated)",
    );
    expect(renderRmp({ ...emptyRmp(), shared4K: 1024 })).toBe("1024 x 4K shared");
  });

  test("DMA: passed, held, failed by reason with hazards", () => {
    const t = emptyTally();
    expect(renderDma({ ...t, issued: 5, passed: 5 })).toBe("5 passed");
    expect(renderDma({ ...t, issued: 5, passed: 5, held: 5, heldNs: 1_000_000 })).toBe(
      "5 passed (5 held 1.000 ms by the engine first)",
    );
    expect(
      renderDma({
        ...t,
        issued: 5,
        passed: 2,
        failed: { LEAF_SMALLER_THAN_RMP: 3 },
        hazards: ["H2"],
      }),
    ).toBe("2 passed, 3 FAILED: LEAF_SMALLER_THAN_RMP 3 (H2)");
  });

  test("a variant's outcome names the window", () => {
    expect(variantOutcome(result.variants[1]!)).toBe("10 of 10 DMAs in 6b.1 failed (H2)");
  });
});

function emptyRmp() {
  return { private2M: 0, invalid2M: 0, private4K: 0, invalid4K: 0, shared4K: 0 };
}
