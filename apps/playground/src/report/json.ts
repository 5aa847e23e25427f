import type { FlowResult } from "../flow/run.js";

/** The flow's result as JSON for scripts: the same data the text report shows, nothing dropped. */
export function renderJson(r: FlowResult): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
