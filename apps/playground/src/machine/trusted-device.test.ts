import { DmaVerdict, PgLevel, rmpMakeShared, VERDICT_HAZARDS } from "@smashlab/rmp";
import { describe, expect, test } from "vitest";
import { seedFlowHazards } from "../flow/hazards.js";
import { freshMachineState } from "../flow/setup.js";
import { K4 } from "../units.js";
import { Machine } from "./machine.js";
import { emptyTally, failedCount, IO_PAGE_FAULT } from "./trusted-device.js";

const M4 = 4 * 2 ** 20;

describe("TrustedDevice", () => {
  test("before its DTE points at a domain, and outside the guest's mapping, DMA is an IO page fault", () => {
    const m = new Machine({ size: M4 });
    const t = emptyTally();
    m.device.dma(m.gpaOf(0), t);
    expect(t).toMatchObject({ issued: 1, passed: 0, failed: { [IO_PAGE_FAULT]: 1 } });
    freshMachineState(m);
    const t2 = emptyTally();
    m.device.dma(m.gpa - K4, t2);
    m.device.dma(m.gpa + M4, t2);
    expect(t2).toMatchObject({ issued: 2, passed: 0, failed: { [IO_PAGE_FAULT]: 2 } });
    m.teardown();
  });

  test("through a 2M leaf over a 2M private entry every page passes", () => {
    const m = freshMachineState(new Machine({ size: M4 }));
    const t = emptyTally();
    for (let p = 0; p < 1024; p++) m.device.dma(m.gpaOf(0, p), t);
    expect(t).toMatchObject({ issued: 1024, passed: 1024, failed: {}, hazards: [] });
    m.teardown();
  });

  test("a smashed entry under a 2M leaf fails as LEAF_LARGER_THAN_RMP, attributed by the machine's rule", () => {
    const flow = freshMachineState(new Machine({ size: M4, attribute: seedFlowHazards }));
    const plain = freshMachineState(new Machine({ size: M4 }));
    for (const m of [flow, plain]) {
      expect(m.rmp.psmash(m.hpaOf(1))).toBe(0);
      const t = emptyTally();
      m.device.dma(m.gpaOf(1, 3), t);
      m.device.dma(m.gpaOf(0, 3), t);
      expect(t.failed).toEqual({ LEAF_LARGER_THAN_RMP: 1 });
      expect(t.passed).toBe(1);
    }
    const t1 = emptyTally();
    flow.device.dma(flow.gpaOf(1), t1);
    expect(t1.hazards).toEqual(["H1"]);
    const t2 = emptyTally();
    plain.device.dma(plain.gpaOf(1), t2);
    expect(t2.hazards).toEqual([...VERDICT_HAZARDS[DmaVerdict.LEAF_LARGER_THAN_RMP]]);
    flow.teardown();
    plain.teardown();
  });

  test("a shared page is NOT_ASSIGNED to trusted DMA", () => {
    const m = freshMachineState(new Machine({ size: M4 }));
    expect(m.rmp.psmash(m.hpaOf(0))).toBe(0);
    expect(rmpMakeShared(m.rmp, m.hpaOf(0, 9) / K4, PgLevel.PG_LEVEL_4K)).toBe(0);
    m.fd.hwptAdjustPageSize({ hwptId: m.hwptId, iova: m.gpaOf(0), length: 2 ** 21, pageSize: K4 });
    const t = emptyTally();
    m.device.dma(m.gpaOf(0, 9), t);
    m.device.dma(m.gpaOf(0, 10), t);
    expect(t).toMatchObject({ passed: 1, failed: { NOT_ASSIGNED: 1 } });
    m.teardown();
  });

  test("while the engine runs PSMASH_IO the region's DMA waits, then goes through the new tables", () => {
    const m = freshMachineState(new Machine({ size: M4 }));
    const t = emptyTally();
    let waitingAtStall = -1;
    const off = m.engine.on((e) => {
      if (e.kind !== "stall") return;
      m.device.dma(m.gpaOf(1, 5), t, e.from); // the region being smashed: held
      m.device.dma(m.gpaOf(0, 5), t, e.from); // another region: goes on
      waitingAtStall = m.device.waiting;
    });
    m.driver.psmashIo(m.gctx, m.requireDomain(), m.hpaOf(1));
    off();
    expect(waitingAtStall).toBe(1);
    expect(t).toMatchObject({ issued: 2, passed: 1, held: 1 });
    m.device.releaseHeld(t);
    expect(m.device.waiting).toBe(0);
    expect(t).toMatchObject({ issued: 2, passed: 2, held: 1 });
    expect(failedCount(t)).toBe(0);
    m.teardown();
  });
});
