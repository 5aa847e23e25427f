import { HAZARD_TITLES } from "../flow/hazards.js";
import type { FlowResult } from "../flow/run.js";
import type { VariantResult } from "../flow/share-variants.js";
import { type DmaTally, failedCount } from "../machine/trusted-device.js";
import { formatBytes, formatNs, hex } from "../units.js";
import type { RmpCounts, StateSnapshot, StepReport } from "./state.js";

const INDENT = "     ";

/** The flow as a person reads it: a header, one block per step, and a summary. */
export function renderText(r: FlowResult): string {
  const g = r.guest;
  const c = r.converted;
  const out: string[] = [
    `smashlab flow (seed ${r.options.seed}): a ${formatBytes(g.size)} confidential VM, ASID ${g.asid}, backed by 2M folios, and one trusted device (${g.device})`,
    `  guest memory: GPA ${hex(g.gpa)}..${hex(g.gpa + g.size - 1)} (IOVA = GPA) at host ${hex(g.hpa)}`,
    `  step 6 shares page ${c.page} of 2M region ${c.region}: GPA ${hex(c.gpa)}, host ${hex(c.hpa)}`,
    `  from step 5 on, the device does ${r.options.dmas} DMA writes after each step; the IOMMU checks every one`,
  ];
  let section = "";
  for (const s of r.steps) {
    const variant = r.variants.find((v) => s.id.startsWith(`6${v.id}.`));
    const inSection = variant !== undefined ? `6${variant.id}` : s.id.split(".")[0]!;
    if (inSection !== section) {
      section = inSection;
      if (variant !== undefined) {
        out.push(
          "",
          `${section.padEnd(5)}${variant.title}`,
          `${INDENT}on a fresh machine in the state of step 5`,
        );
      } else if (section === "7") {
        out.push(
          "",
          "7    The page goes back to private; PUNSMASH_IO makes the region 2M again",
          `${INDENT}on the machine of 6c`,
        );
      }
    }
    out.push("", ...renderStep(s));
  }
  out.push("", ...renderSummary(r));
  return `${out.join("\n")}\n`;
}

function renderStep(s: StepReport): string[] {
  const lines = [`${s.id.padEnd(5)}${s.title}`];
  for (const a of s.actions) lines.push(`${INDENT}  ${a}`);
  lines.push(`${INDENT}IO     ${renderIoLeaves(s.state)}`);
  lines.push(`${INDENT}RMP    ${renderRmp(s.state.rmp)}`);
  if (s.dma !== undefined) lines.push(`${INDENT}DMA    to ${s.dmaTarget}: ${renderDma(s.dma)}`);
  return lines;
}

/** "511 x 2M, 512 x 4K leaves; 3 table pages", largest leaves first. */
export function renderIoLeaves(s: StateSnapshot): string {
  const leaves = Object.entries(s.ioLeaves)
    .sort(([a], [b]) => bytesOf(b) - bytesOf(a))
    .map(([size, n]) => `${n} x ${size}`)
    .join(", ");
  const tables = `${s.tablesInUse} table page${s.tablesInUse === 1 ? "" : "s"} in use`;
  return `${leaves === "" ? "no leaves" : `${leaves} leaves`}; ${tables}`;
}

/** "511 x 2M private, 511 x 4K private, 1 x 4K shared". */
export function renderRmp(c: RmpCounts): string {
  const parts: string[] = [];
  if (c.private2M) parts.push(`${c.private2M} x 2M private`);
  if (c.invalid2M) parts.push(`${c.invalid2M} x 2M private (not validated)`);
  if (c.private4K) parts.push(`${c.private4K} x 4K private`);
  if (c.invalid4K) parts.push(`${c.invalid4K} x 4K private (not validated)`);
  if (c.shared4K) parts.push(`${c.shared4K} x 4K shared`);
  return parts.join(", ");
}

/** "1000 passed", or "0 passed, 1000 FAILED: LEAF_LARGER_THAN_RMP 1000 (H1)". */
export function renderDma(t: DmaTally): string {
  const f = failedCount(t);
  const held = t.held > 0 ? ` (${t.held} held ${formatNs(t.heldNs)} by the engine first)` : "";
  if (f === 0) return `${t.passed} passed${held}`;
  const reasons = Object.entries(t.failed)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(", ");
  return `${t.passed} passed${held}, ${f} FAILED: ${reasons} (${t.hazards.join(", ")})`;
}

function renderSummary(r: FlowResult): string[] {
  const rows: [string, string, string, string][] = r.variants.map((v) => [
    `6${v.id}`,
    v.short,
    v.faulted > 0 ? "FAULTS" : "no faults",
    variantOutcome(v),
  ]);
  const x = r.restored;
  const restored = x.ioLeaf2M && x.rmpEntry2M && x.rmpAsAfterStep5 && x.ioTableAsAfterStep5;
  rows.push([
    "7",
    "back to private, then PUNSMASH_IO",
    restored ? "restored" : "NOT RESTORED",
    restored
      ? `region ${r.converted.region}: one 2M IO leaf over one 2M RMP entry, all as after step 5`
      : `region ${r.converted.region}: IO leaf 2M ${x.ioLeaf2M}, RMP entry 2M ${x.rmpEntry2M}, RMP as after step 5 ${x.rmpAsAfterStep5}, IO table as after step 5 ${x.ioTableAsAfterStep5}`,
  ]);
  const l = r.leftovers;
  const leaked = l.tablePages + l.pinnedPages + l.objects;
  rows.push([
    "",
    "teardown",
    leaked === 0 ? "no leaks" : "LEAKS",
    `${l.tablePages} table pages, ${l.pinnedPages} pinned pages, ${l.objects} iommufd objects left (${l.machines} machines)`,
  ]);
  const w1 = Math.max(...rows.map((row) => row[1].length));
  const w2 = Math.max(...rows.map((row) => row[2].length));
  const seen = [...new Set(r.variants.flatMap((v) => v.hazards))];
  const legend = seen.map((h) => `${h}: ${HAZARD_TITLES[h] ?? "see coco.md §7"}`).join("; ");
  return [
    "Summary",
    ...rows.map(([id, what, verdict, detail]) =>
      `  ${id.padEnd(4)}${what.padEnd(w1)}  ${verdict.padEnd(w2)}  ${detail}`.trimEnd(),
    ),
    ...(legend === "" ? [] : [`  ${legend} (coco.md §7)`]),
  ];
}

/** "2000 of 2000 DMAs in 6a.1..6a.2 failed (H1)", or "2000 DMAs passed, 1000 of them held 1.000 ms by the engine". */
export function variantOutcome(v: VariantResult): string {
  const held = v.held > 0 ? `, ${v.held} of them held ${formatNs(v.heldNs)} by the engine` : "";
  if (v.faulted === 0) return `${v.dmas} DMAs passed${held}`;
  const steps = v.faultSteps;
  const where = steps.length === 1 ? steps[0]! : `${steps[0]}..${steps[steps.length - 1]}`;
  return `${v.faulted} of ${v.windowDmas} DMAs in ${where} failed (${v.hazards.join(", ")})${held}`;
}

/** "2M" → 2097152 (the keys of a snapshot's ioLeaves). */
function bytesOf(size: string): number {
  const units: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  return Number(size.slice(0, -1)) * (units[size.slice(-1)] ?? 1);
}
