import { fail } from "../errors.js";
import { amdv1, amdv1Mock } from "./amdv1.js";
import type { PtFormat } from "./format.js";
import { vtdss } from "./vtdss.js";
import { x86_64 } from "./x86-64.js";

/** Names of the modelled formats. */
export type FormatName = "amdv1" | "amdv1-mock" | "x86_64" | "vtdss";

/** Every modelled format by name. */
export const FORMATS: Readonly<Record<FormatName, PtFormat>> = {
  amdv1,
  "amdv1-mock": amdv1Mock,
  x86_64,
  vtdss,
};

/** The format called `name`; EINVAL for an unknown name. */
export function formatByName(name: string): PtFormat {
  const f = (FORMATS as Record<string, PtFormat>)[name];
  if (f === undefined)
    fail("EINVAL", "format", name, `is not one of ${Object.keys(FORMATS).join(", ")}`);
  return f;
}
