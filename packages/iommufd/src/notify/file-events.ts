import type { Ioas } from "../ioas/ioas.js";
import type { IoptArea } from "../iopt/area.js";
import type { FileEvent } from "../pages/file-source.js";
import type { IoptPages } from "../pages/iopt-pages.js";

/**
 * A guest_memfd range that some area maps is converting (the notification the
 * 2025-2026 threads ask guest_memfd to send iommufd). One event per area.
 */
export interface ConversionEvent {
  /** The IOAS whose area maps the range. */
  ioasId: number;
  /** The area's first IOVA and length. */
  area: { iova: number; length: number };
  /** The IOVA range the converted file range maps (inside the area). */
  iova: number;
  length: number;
  /** Where the memory is going. */
  to: "private" | "shared";
  /** The HWPT_PAGING objects mirroring that IOAS (a policy adjusts their page size). */
  hwptIds: number[];
}

/** An area was revoked because the file under it was truncated or punched. */
export interface RevokeEvent {
  ioasId: number;
  area: { iova: number; length: number };
  reason: "truncate" | "punch-hole";
}

/**
 * What the strategies subscribe with ({@link Iommufd.subscribe}): iommufd calls
 * `convert` for each area a conversion touches, before returning to the file
 * (the policy decides: adjust page size, do nothing, ...), and `revoked` after it
 * revoked an area on truncate or punch-hole.
 */
export interface ConversionPolicy {
  convert?(event: ConversionEvent): void;
  revoked?(event: RevokeEvent): void;
}

/** The file bytes an area maps: [start, end). */
function fileRange(area: IoptArea): [number, number] {
  const src = area.source.source;
  const base = src.kind === "file" ? src.start : 0;
  return [base + area.startByte, base + area.startByte + area.length];
}

/**
 * Routes one file event for `pages` to the areas that map it: conversions go
 * to the policies; truncate and punch-hole revoke every area whose range they
 * meet (whole areas, as proposed: "userspace made a mistake and gets burned").
 */
export function dispatchFileEvent(
  pages: IoptPages,
  event: FileEvent,
  policies: readonly ConversionPolicy[],
): void {
  for (const area of [...pages.areas]) {
    const ioas = area.iopt.owner as Ioas;
    const [start, end] = fileRange(area);
    if (event.kind === "convert") {
      const from = Math.max(start, event.offset);
      const to = Math.min(end, event.offset + event.length);
      if (from >= to || area.revoked) continue;
      const e: ConversionEvent = {
        ioasId: ioas.id,
        area: { iova: area.iova, length: area.length },
        iova: area.iova + (from - start),
        length: to - from,
        to: event.to,
        hwptIds: ioas.hwpts.map((h) => h.id),
      };
      for (const p of policies) p.convert?.(e);
      continue;
    }
    const gone =
      event.kind === "truncate"
        ? end > event.size
        : start < event.offset + event.length && end > event.offset;
    if (!gone || area.revoked) continue;
    area.iopt.revokeArea(area);
    const r: RevokeEvent = {
      ioasId: ioas.id,
      area: { iova: area.iova, length: area.length },
      reason: event.kind,
    };
    for (const p of policies) p.revoked?.(r);
  }
}
