import { checkFlags, checkReserved, checkU32, checkU64, lastOf } from "../core/check.js";
import type { CtxInternals } from "../core/ctx-internals.js";
import { fail } from "../errors.js";
import { iommuProtOf } from "../hwpt/domain.js";
import type { PagesSlice } from "../iopt/io-pagetable.js";
import type { Span } from "../iopt/iova-alloc.js";
import type { ProcessAddressSpace } from "../pages/address-space.js";
import type { FileSource } from "../pages/file-source.js";
import { IoptPages, type PagesSource } from "../pages/iopt-pages.js";
import {
  IOMMU_IOAS_MAP_ALL,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  ObjectType,
  PAGE_SIZE,
  U64_MAX,
  ULONG_MAX,
} from "../uapi.js";
import { Ioas } from "./ioas.js";

/** What the IOAS ioctls need of the context beyond {@link CtxInternals}. */
export interface IoasCtx extends CtxInternals {
  /** The calling process (current->mm). */
  readonly process: ProcessAddressSpace;
  /** IOMMU_OPTION RLIMIT_MODE: "user" (0, default) or "mm" (1). */
  accountMode: "user" | "mm";
  /** The caller has CAP_SYS_RESOURCE (needed to SET RLIMIT_MODE). */
  readonly capSysResource: boolean;
  /** Registers new pages (page-ref queries, file events). */
  trackPages(pages: IoptPages): void;
}

/** struct iommu_ioas_alloc. */
export interface IoasAllocArgs {
  flags?: number;
  /** Out: the new IOAS's ID. */
  outIoasId?: number;
}

/** IOMMU_IOAS_ALLOC: flags must be 0 (EOPNOTSUPP); ENOMEM. */
export function ioasAlloc(ctx: IoasCtx, args: IoasAllocArgs): number {
  checkFlags("flags", args.flags ?? 0, 0);
  const id = ctx.objects.reserve();
  const ioas = new Ioas(ctx.injector);
  ctx.objects.finalize(id, ioas);
  args.outIoasId = id;
  return id;
}

function getIoas(ctx: CtxInternals, argument: string, id: unknown): Ioas {
  return ctx.objects.get<Ioas>(argument, checkU32(argument, id), ObjectType.IOAS);
}

/** struct iommu_ioas_iova_ranges. */
export interface IovaRangesArgs {
  ioasId: number;
  /** In: capacity of `allowedIovas`; out: how many ranges there are. */
  numIovas?: number;
  __reserved?: number;
  /** Out: the usable ranges (up to the capacity). */
  allowedIovas?: Span[];
  /** Out: the IOAS's iova_alignment. */
  outIovaAlignment?: number;
}

/**
 * IOMMU_IOAS_IOVA_RANGES: the holes of the reserved ranges over [0, ULONG_MAX]
 * (the allow list does not count). EMSGSIZE when `numIovas` is below the total;
 * the first `numIovas` ranges and the total are written anyway.
 */
export function iovaRanges(ctx: IoasCtx, args: IovaRangesArgs): Span[] {
  checkReserved("__reserved", args.__reserved);
  const ioas = getIoas(ctx, "ioas_id", args.ioasId);
  const capacity = checkU32("num_iovas", args.numIovas ?? 0);
  const holes: Span[] = [];
  let cur = 0;
  for (const r of [...ioas.iopt.reserved].sort((a, b) => a.start - b.start)) {
    if (r.start > cur) holes.push({ start: cur, last: r.start - 1 });
    cur = Math.max(cur, r.last + 1);
  }
  if (cur <= ULONG_MAX) holes.push({ start: cur, last: ULONG_MAX });
  const out = args.allowedIovas ?? [];
  out.length = 0;
  for (let i = 0; i < Math.min(capacity, holes.length); i++) out.push(holes[i]!);
  args.allowedIovas = out;
  args.numIovas = holes.length;
  args.outIovaAlignment = ioas.iopt.iovaAlignment;
  if (holes.length > capacity)
    fail("EMSGSIZE", "num_iovas", capacity, `${holes.length} ranges do not fit`);
  return holes;
}

/** struct iommu_ioas_allow_iovas. */
export interface AllowIovasArgs {
  ioasId: number;
  /** How many ranges to take from `allowedIovas` (default: all of them); 0 clears the list. */
  numIovas?: number;
  __reserved?: number;
  /** The new allow list; each range spans at least 2 bytes. */
  allowedIovas: Span[] | null;
}

/**
 * IOMMU_IOAS_ALLOW_IOVAS: replaces the allow list. EFAULT when the ranges
 * cannot be read; EINVAL for a range with start >= last or ranges that overlap
 * each other; EADDRINUSE (old list kept) if one overlaps a reserved range.
 */
export function allowIovas(ctx: IoasCtx, args: AllowIovasArgs): void {
  checkReserved("__reserved", args.__reserved);
  const ioas = getIoas(ctx, "ioas_id", args.ioasId);
  const list = args.allowedIovas;
  const count = checkU32("num_iovas", args.numIovas ?? (Array.isArray(list) ? list.length : 0));
  if (count !== 0 && (!Array.isArray(list) || list.length < count)) {
    fail("EFAULT", "allowed_iovas", list, `cannot read ${count} ranges`);
  }
  const spans: Span[] = [];
  for (const r of count === 0 ? [] : (list as Span[]).slice(0, count)) {
    const start = checkU64("allowed_iovas.start", r?.start);
    const last = checkU64("allowed_iovas.last", r?.last);
    if (start >= last)
      fail("EINVAL", "allowed_iovas.start", start, "a range must span at least 2 bytes");
    if (ctx.injector.shouldFail())
      fail("ENOMEM", "allowed_iovas", start, "allocation failed (injected)");
    if (spans.some((s) => s.last >= start && s.start <= last)) {
      fail("EINVAL", "allowed_iovas.start", start, "allowed ranges overlap each other");
    }
    spans.push({ start, last });
  }
  ioas.iopt.setAllowIova(spans);
}

/** struct iommu_ioas_map. */
export interface IoasMapArgs {
  /** IOMMU_IOAS_MAP_FIXED_IOVA | WRITEABLE | READABLE. */
  flags: number;
  ioasId: number;
  __reserved?: number;
  /** The user VA (in `process`). */
  userVa: number;
  length: number;
  /** In with FIXED_IOVA; out always. */
  iova?: number;
  /** The calling process (default: the context's). */
  process?: ProcessAddressSpace;
}

/** Shared entry checks of MAP, MAP_FILE and COPY (ioas.c). */
function checkMapFlags(
  flags: unknown,
  iova: unknown,
  length: unknown,
): { flags: number; iova: number; length: number } {
  const f = checkFlags("flags", flags, IOMMU_IOAS_MAP_ALL);
  const l = checkU64("length", length);
  const i = checkU64("iova", iova ?? 0);
  if (i >= ULONG_MAX || l >= ULONG_MAX)
    fail(
      "EOVERFLOW",
      i >= ULONG_MAX ? "iova" : "length",
      i >= ULONG_MAX ? i : l,
      "is >= ULONG_MAX",
    );
  return { flags: f, iova: i, length: l };
}

function protOf(flags: number): number {
  return iommuProtOf(
    (flags & IOMMU_IOAS_MAP_READABLE) !== 0,
    (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
  );
}

/**
 * IOMMU_IOAS_MAP: map a user VA range. EOPNOTSUPP (flags, reserved); EOVERFLOW;
 * EINVAL (neither READABLE nor WRITEABLE, length, alignment, reserved IOVA);
 * ENOENT (IOAS); EEXIST (over a mapping); ENOSPC (no automatic IOVA); with
 * domains attached also EFAULT (unmapped user memory) and ENOMEM (rlimit).
 * Returns the IOVA, also written to `iova`.
 */
export function ioasMap(ctx: IoasCtx, args: IoasMapArgs): number {
  const { flags, iova, length } = checkMapFlags(args.flags, args.iova, args.length);
  checkReserved("__reserved", args.__reserved);
  if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) {
    fail("EINVAL", "flags", flags, "needs READABLE or WRITEABLE");
  }
  const ioas = getIoas(ctx, "ioas_id", args.ioasId);
  const uptr = checkU64("user_va", args.userVa);
  if (length === 0 || length > ULONG_MAX - PAGE_SIZE)
    fail("EINVAL", "length", length, "must be non-zero and below SIZE_MAX - PAGE_SIZE");
  if (uptr + length > ULONG_MAX) fail("EOVERFLOW", "user_va", uptr, "+ length overflows");
  const mm = args.process ?? ctx.process;
  const base = uptr - (uptr % PAGE_SIZE);
  const source: PagesSource = { kind: "user", mm, uptr: base };
  return mapSource(ctx, ioas, source, uptr - base, length, iova, flags, uptr, mm, args);
}

/** struct iommu_ioas_map_file. */
export interface IoasMapFileArgs {
  flags: number;
  ioasId: number;
  /** The file (in the kernel, an fd naming it). */
  file: FileSource;
  /** Byte offset in the file. */
  start: number;
  length: number;
  /** In with FIXED_IOVA; out always. */
  iova?: number;
  /** The calling process, charged for the pins (default: the context's). */
  process?: ProcessAddressSpace;
}

/**
 * IOMMU_IOAS_MAP_FILE: map a file range (a memfd, or a guest_memfd). As MAP,
 * plus EBADF for something that is not a file, EINVAL for a file that cannot be
 * pinned or a range past its end (at pin time, when domains exist), EPERM for a
 * writable map of a read-only file.
 */
export function ioasMapFile(ctx: IoasCtx, args: IoasMapFileArgs): number {
  const { flags, iova, length } = checkMapFlags(args.flags, args.iova, args.length);
  if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) {
    fail("EINVAL", "flags", flags, "needs READABLE or WRITEABLE");
  }
  const ioas = getIoas(ctx, "ioas_id", args.ioasId);
  const file = args.file;
  if (
    file === null ||
    typeof file !== "object" ||
    typeof (file as FileSource).physOf !== "function"
  ) {
    fail("EBADF", "fd", file, "is not an open file");
  }
  const start = checkU64("start", args.start);
  if (length === 0) fail("EINVAL", "length", length, "must not be 0");
  if (start + length > ULONG_MAX) fail("EOVERFLOW", "start", start, "+ length overflows");
  if (file.kind !== "memfd" && file.kind !== "guest_memfd") {
    fail(
      "EINVAL",
      "fd",
      file.kind,
      "MAP_FILE pins only memfd (shmem, hugetlbfs) or guest_memfd files",
    );
  }
  const writable = (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0;
  if (writable && !file.writable)
    fail("EPERM", "flags", flags, "a writable map of a file opened read-only");
  const base = start - (start % PAGE_SIZE);
  const mm = args.process ?? ctx.process;
  const source: PagesSource = { kind: "file", file, start: base };
  return mapSource(ctx, ioas, source, start - base, length, iova, flags, start, mm, args);
}

/** struct iommu_ioas_copy. */
export interface IoasCopyArgs {
  flags: number;
  dstIoasId: number;
  srcIoasId: number;
  length: number;
  /** In with FIXED_IOVA; out always. */
  dstIova?: number;
  srcIova: number;
}

/**
 * IOMMU_IOAS_COPY: map in `dst` the same pages that [src_iova, +length) maps
 * in `src` (shared, not pinned again). EOVERFLOW; EOPNOTSUPP (flags); ENOENT
 * (an ID, or a source range that contiguous areas do not cover); then the MAP
 * errors for the destination, EPERM for a writable copy of read-only pages.
 */
export function ioasCopy(ctx: IoasCtx, args: IoasCopyArgs): number {
  const length = checkU64("length", args.length);
  const srcIova = checkU64("src_iova", args.srcIova);
  const dstIova = checkU64("dst_iova", args.dstIova ?? 0);
  for (const [name, v] of [
    ["length", length],
    ["src_iova", srcIova],
    ["dst_iova", dstIova],
  ] as const) {
    if (v >= ULONG_MAX) fail("EOVERFLOW", name, v, "is >= ULONG_MAX");
  }
  const flags = checkFlags("flags", args.flags, IOMMU_IOAS_MAP_ALL);
  const src = getIoas(ctx, "src_ioas_id", args.srcIoasId);
  const slices = src.iopt.getPages(srcIova, length);
  let dst: Ioas;
  try {
    dst = getIoas(ctx, "dst_ioas_id", args.dstIoasId);
  } catch (e) {
    for (const s of slices) s.pages.put();
    throw e;
  }
  const first = slices[0]!;
  const origin =
    first.pages.source.kind === "user" ? first.pages.source.uptr : first.pages.source.start;
  const out = { iova: 0 };
  mapSlices(dst, slices, length, dstIova, flags, origin + first.startByte, out);
  args.dstIova = out.iova;
  return out.iova;
}

/** MAP and MAP_FILE: new iopt_pages over `source` and one area for [startByte, +length) of it. */
function mapSource(
  ctx: IoasCtx,
  ioas: Ioas,
  source: PagesSource,
  startByte: number,
  length: number,
  iova: number,
  flags: number,
  origin: number,
  mm: ProcessAddressSpace,
  out: { iova?: number },
): number {
  const writable = (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0;
  const pages = newPages(ctx, source, startByte + length, writable, mm);
  return mapSlices(ioas, [{ pages, startByte, length }], length, iova, flags, origin, out);
}

/** iopt_map_pages() with the slices' references; on failure they are dropped. */
function mapSlices(
  ioas: Ioas,
  slices: PagesSlice[],
  length: number,
  iova: number,
  flags: number,
  origin: number,
  out: { iova?: number },
): number {
  const auto = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) === 0;
  let at: number;
  try {
    at = ioas.iopt.mapPages(slices, length, iova, protOf(flags), auto ? origin : null);
  } catch (e) {
    for (const s of slices) s.pages.put();
    throw e;
  }
  out.iova = at;
  return at;
}

/** iopt_alloc_pages() / iopt_alloc_file_pages(): ENOMEM when injected. */
function newPages(
  ctx: IoasCtx,
  source: PagesSource,
  bytes: number,
  writable: boolean,
  mm: ProcessAddressSpace,
): IoptPages {
  if (ctx.injector.shouldFail())
    fail("ENOMEM", "pages", bytes, "iopt_pages allocation failed (injected)");
  const pages = new IoptPages(source, bytes, writable, mm, ctx.injector);
  if (ctx.accountMode === "mm" && pages.accountMode === "user") pages.accountMode = "mm";
  ctx.trackPages(pages);
  return pages;
}

/** struct iommu_ioas_unmap. */
export interface IoasUnmapArgs {
  ioasId: number;
  iova: number;
  /** In: bytes to unmap (U64_MAX with iova 0 unmaps all); out: bytes unmapped. */
  length: number;
}

/**
 * IOMMU_IOAS_UNMAP: removes whole areas inside the range and returns the bytes
 * removed (also written to `length`). (iova 0, length U64_MAX) unmaps
 * everything and always succeeds. Otherwise EOVERFLOW, EINVAL (length 0),
 * ENOENT (nothing mapped, or an area only partly inside, after the areas before
 * it are gone, as in the kernel), EBUSY, EDEADLOCK.
 */
export function ioasUnmap(ctx: IoasCtx, args: IoasUnmapArgs): number {
  const ioas = getIoas(ctx, "ioas_id", args.ioasId);
  let unmapped: number;
  if (args.iova === 0 && args.length === U64_MAX) {
    unmapped = ioas.iopt.unmapAll();
  } else {
    const iova = checkU64("iova", args.iova);
    const length = checkU64("length", args.length);
    if (iova >= ULONG_MAX || length >= ULONG_MAX)
      fail("EOVERFLOW", "iova", iova, "a value is >= ULONG_MAX");
    if (length === 0) fail("EINVAL", "length", length, "must not be 0");
    unmapped = ioas.iopt.unmapIovaRange(iova, lastOf("iova", iova, length));
    if (unmapped === 0) fail("ENOENT", "iova", iova, "nothing is mapped in the range");
  }
  args.length = unmapped;
  return unmapped;
}

/** struct iommu_option. */
export interface OptionArgs {
  /** IOMMU_OPTION_RLIMIT_MODE (0) or IOMMU_OPTION_HUGE_PAGES (1). */
  optionId: number;
  /** IOMMU_OPTION_OP_SET (0) or IOMMU_OPTION_OP_GET (1). */
  op: number;
  __reserved?: number;
  /** 0 for RLIMIT_MODE; the IOAS for HUGE_PAGES. */
  objectId: number;
  /** In for SET; out for GET. */
  val64?: number;
}

/**
 * IOMMU_OPTION: RLIMIT_MODE (global: object 0 else EOPNOTSUPP; SET needs
 * CAP_SYS_RESOURCE (EPERM) and an empty context (EBUSY); values 0 or 1) and
 * HUGE_PAGES (per IOAS: ENOENT for a bad ID; SET 0 disables large pages, EINVAL
 * once domains hold mappings, EADDRINUSE for misaligned areas; SET 1 enables;
 * other values EINVAL). Unknown options or ops: EOPNOTSUPP.
 */
export function option(ctx: IoasCtx, args: OptionArgs): number {
  checkReserved("__reserved", args.__reserved);
  const op = checkU32("op", args.op);
  if (args.optionId === IOMMU_OPTION_RLIMIT_MODE) {
    if (args.objectId !== 0)
      fail("EOPNOTSUPP", "object_id", args.objectId, "RLIMIT_MODE is global: object_id must be 0");
    if (op === IOMMU_OPTION_OP_GET) {
      args.val64 = ctx.accountMode === "mm" ? 1 : 0;
      return args.val64;
    }
    if (op !== IOMMU_OPTION_OP_SET) fail("EOPNOTSUPP", "op", op, "unknown option op");
    if (!ctx.capSysResource) fail("EPERM", "option_id", args.optionId, "needs CAP_SYS_RESOURCE");
    if (ctx.objects.size !== 0) fail("EBUSY", "option_id", args.optionId, "objects exist already");
    if (args.val64 !== 0 && args.val64 !== 1)
      fail("EINVAL", "val64", args.val64, "must be 0 (user) or 1 (mm)");
    ctx.accountMode = args.val64 === 1 ? "mm" : "user";
    return args.val64;
  }
  if (args.optionId === IOMMU_OPTION_HUGE_PAGES) {
    const ioas = getIoas(ctx, "object_id", args.objectId);
    if (op === IOMMU_OPTION_OP_GET) {
      args.val64 = ioas.iopt.disableLargePages ? 0 : 1;
      return args.val64;
    }
    if (op !== IOMMU_OPTION_OP_SET) fail("EOPNOTSUPP", "op", op, "unknown option op");
    if (args.val64 === 0) ioas.iopt.disableLarge();
    else if (args.val64 === 1) ioas.iopt.enableLarge();
    else fail("EINVAL", "val64", args.val64, "must be 0 or 1");
    return args.val64;
  }
  return fail("EOPNOTSUPP", "option_id", args.optionId, "unknown option");
}

/** struct iommu_ioas_change_process. */
export interface ChangeProcessArgs {
  __reserved?: number;
  /** The calling process, which takes over the charge (default: the context's). */
  process?: ProcessAddressSpace;
}

/**
 * IOMMU_IOAS_CHANGE_PROCESS: every area of every IOAS of the context must be
 * file backed (EINVAL otherwise); the pinned pages are charged to the caller
 * first (ENOMEM over its limit, and nothing changes) and only then released
 * from their old owner.
 */
export function changeProcess(
  ctx: IoasCtx,
  args: ChangeProcessArgs,
  ioases: readonly Ioas[],
): void {
  checkReserved("__reserved", args.__reserved);
  const mm = args.process ?? ctx.process;
  const all = new Set<IoptPages>();
  for (const ioas of ioases) {
    for (const a of ioas.iopt.areas) {
      if (a.source.source.kind !== "file")
        fail("EINVAL", "ioas", ioas.id, "an area is not file backed");
      all.add(a.source);
    }
  }
  const moved: IoptPages[] = [];
  try {
    for (const p of all) {
      if (p.accountMm === mm) continue;
      p.chargeTo(mm);
      moved.push(p);
    }
  } catch (e) {
    for (const p of moved) p.uncharge(p.npinned, mm);
    throw e;
  }
  for (const p of moved) p.moveAccount(mm);
}
