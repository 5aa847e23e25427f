/**
 * The models did something the flow's script does not allow (an instruction
 * failed that must succeed at that point): a bug in a model or in the flow,
 * never a user error.
 */
export class FlowError extends Error {
  override readonly name = "FlowError";
}

/** The name of status `code` in a table of status codes (RmpUpdateRet, PsmashRet, ...). */
export function statusName(table: Readonly<Record<string, number>>, code: number): string {
  for (const k in table) if (table[k] === code) return k;
  return `status ${code}`;
}

/** Throws a {@link FlowError} unless `what` returned `want`; returns the status's name for the trace. */
export function expectStatus(
  table: Readonly<Record<string, number>>,
  got: number,
  want: number,
  what: string,
): string {
  if (got !== want) {
    throw new FlowError(
      `${what} returned ${statusName(table, got)}, the flow expects ${statusName(table, want)}`,
    );
  }
  return statusName(table, got);
}
