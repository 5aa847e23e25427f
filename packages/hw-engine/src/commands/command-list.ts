import { TmpmStatus } from "../spec/status.js";
import type { CommandContext } from "./context.js";

/**
 * Byte offset of the next-page pointer in each page of a multi-page command
 * list (our inference: the sources give the ring entry's page count, bits 27:16,
 * and the status INVALID_NEXT, not the link's layout). The last qword of the
 * page, clear of the 32-byte PSMASH_IO / PUNSMASH_IO fields.
 */
export const LIST_NEXT_OFFSET = 4096 - 8;

/**
 * The pages of a command list of `count` pages whose first page, `first`, the
 * engine has already checked: each page links to the next through its qword at
 * {@link LIST_NEXT_OFFSET}; the last page's link is not read (the Linux driver
 * sends single-page commands in pages it never clears). Returns the page
 * addresses, or the status that refuses the list:
 * - INVALID_NUM_PAGES: a link is 0 before `count` pages (the list is shorter
 *   than its count);
 * - INVALID_NEXT: a link that is not a 4K-aligned host page, names a page
 *   assigned to a guest in the RMP, or loops back into the list;
 * - MEM_POISONED: a linked page is poisoned.
 */
export function commandListPages(
  ctx: CommandContext,
  first: number,
  count: number,
): number[] | number {
  const pages = [first];
  for (let k = 1; k < count; k++) {
    const linkPa = pages[k - 1]! + LIST_NEXT_OFFSET;
    if (ctx.host.read64Hi(linkPa) !== 0) return TmpmStatus.INVALID_NEXT;
    const next = ctx.host.read64(linkPa);
    if (next === 0) return TmpmStatus.INVALID_NUM_PAGES;
    if (next % 4096 !== 0 || !ctx.host.owns(next)) return TmpmStatus.INVALID_NEXT;
    // As for the first page: the engine reads command lists only from hypervisor pages.
    if (ctx.rmp.lookup(next).entry.assigned) return TmpmStatus.INVALID_NEXT;
    if (pages.includes(next)) return TmpmStatus.INVALID_NEXT;
    if (ctx.isPoisoned(next)) return TmpmStatus.MEM_POISONED;
    pages.push(next);
  }
  return pages;
}
