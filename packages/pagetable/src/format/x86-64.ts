import { featureMask, PtFeature } from "../features.js";
import { POW2 } from "../log2.js";
import { IommuProt } from "../prot.js";
import {
  addrHi,
  addrLo,
  clearItems,
  readAddr,
  readFrameHi,
  readFrameLo,
  writeLeafRun,
} from "./bits.js";
import {
  EntryType,
  type FormatConfig,
  type FormatGeometry,
  ITEMS_PER_TABLE_LG2,
  type PtFormat,
} from "./format.js";

// Intel SDM vol.3 §4.5, VT-d §9.7, AMD IOMMU §2.2.6 (fmt/x86_64.h).
const P = 1 << 0;
const RW = 1 << 1;
const U = 1 << 2;
const A = 1 << 5;
const D = 1 << 6;
const PS = 1 << 7; // leaf at levels 1 and 2
const XD_HI = 1 << 31; // bit 63

/**
 * The x86 4/5-level format: AMD IOMMU v2, VT-d first stage and the CPU's own
 * tables. Leaves of 4K, 2M and 1G; no contiguous entries; optional sign extension.
 */
export class X86_64Format implements PtFormat {
  readonly name = "x86_64";
  readonly granuleLg2 = 12;
  readonly maxTopLevel = 4;
  readonly maxVaLg2 = 57;
  readonly maxOaLg2 = 52;
  // iommu_x86_64.c: SIGN_EXTEND, FLUSH_RANGE, FLUSH_RANGE_NO_GAPS, AMD_ENCRYPT_TABLES.
  // A PS leaf may be swapped for an equivalent table hitlessly (no contiguous
  // entries exist, so OA_SIZE_CHANGE has nothing to act on and is not built).
  readonly supportedFeatures = featureMask(
    PtFeature.SIGN_EXTEND,
    PtFeature.FLUSH_RANGE,
    PtFeature.FLUSH_RANGE_NO_GAPS,
    PtFeature.X86_64_AMD_ENCRYPT_TABLES,
    PtFeature.OA_TABLE_XCHG,
  );
  readonly forcedFeatures = 0;
  readonly defaultFeatures = featureMask(PtFeature.FLUSH_RANGE, PtFeature.OA_TABLE_XCHG);
  readonly hasDirty = false;
  private readonly sizes = [[12], [21], [30], [], []];

  numItemsLg2(_level: number): number {
    return ITEMS_PER_TABLE_LG2;
  }

  canHaveLeaf(level: number): boolean {
    return level <= 2;
  }

  possibleSizes(level: number): readonly number[] {
    return this.sizes[level] ?? [];
  }

  load(t: Uint32Array, i: number, level: number): EntryType {
    const lo = t[2 * i]!;
    if ((lo & P) === 0) return EntryType.EMPTY;
    if (level === 0 || (level <= 2 && (lo & PS) !== 0)) return EntryType.OA;
    return EntryType.TABLE;
  }

  firstNonEmpty(t: Uint32Array, i: number, end: number): number {
    while (i < end && (t[2 * i]! & P) === 0) i++;
    return i;
  }

  clearLeaves(t: Uint32Array, i: number, end: number, level: number): number {
    // Level 0 holds only leaves; levels 1 and 2 hold PS leaves; above, none.
    if (level > 2) return i;
    const leaf = level === 0 ? P : P | PS;
    for (; i < end && (t[2 * i]! & leaf) === leaf; i++) {
      t[2 * i] = 0;
      t[2 * i + 1] = 0;
    }
    return i;
  }

  tablePa(t: Uint32Array, i: number): number {
    return readAddr(t, i);
  }

  tableFrameLo(t: Uint32Array, i: number): number {
    return readFrameLo(t, i);
  }

  tableFrameHi(t: Uint32Array, i: number): number {
    return readFrameHi(t, i);
  }

  entryOa(t: Uint32Array, i: number, _level: number): number {
    return readAddr(t, i);
  }

  numContigLg2(_t: Uint32Array, _i: number, _level: number): number {
    return 0;
  }

  installLeaf(
    t: Uint32Array,
    i: number,
    level: number,
    oa: number,
    _oaszLg2: number,
    attrs: Uint32Array,
  ): void {
    t[2 * i] = (P | attrs[0]! | (level !== 0 ? PS : 0) | addrLo(oa)) >>> 0;
    t[2 * i + 1] = (attrs[1]! | addrHi(oa)) >>> 0;
  }

  installLeafRun(
    t: Uint32Array,
    i: number,
    count: number,
    level: number,
    oa: number,
    oaszLg2: number,
    attrs: Uint32Array,
  ): void {
    writeLeafRun(
      t,
      i,
      count,
      1,
      oa,
      POW2[oaszLg2]!,
      P | attrs[0]! | (level !== 0 ? PS : 0),
      attrs[1]!,
    );
  }

  installTable(
    t: Uint32Array,
    i: number,
    _level: number,
    tablePa: number,
    expectLo: number,
    expectHi: number,
  ): boolean {
    if (t[2 * i] !== expectLo >>> 0 || t[2 * i + 1] !== expectHi >>> 0) return false;
    t[2 * i] = (P | RW | U | A | addrLo(tablePa)) >>> 0;
    t[2 * i + 1] = addrHi(tablePa);
    return true;
  }

  clearEntries(t: Uint32Array, i: number, numContigLg2: number): void {
    clearItems(t, i, numContigLg2);
  }

  attrFromEntry(t: Uint32Array, i: number, out: Uint32Array): void {
    out[0] = t[2 * i]! & (RW | U | A | D);
    out[1] = t[2 * i + 1]! & XD_HI;
  }

  setProt(prot: number, _features: number, out: Uint32Array): "EINVAL" | null {
    // Leaves are always user/accessed; writable leaves are pre-dirtied (no dirty tracking).
    let lo = U | A;
    if (prot & IommuProt.WRITE) lo |= RW | D;
    out[0] = lo;
    out[1] = 0;
    return null;
  }

  readable(t: Uint32Array, i: number): boolean {
    return (t[2 * i]! & P) !== 0;
  }

  writable(t: Uint32Array, i: number): boolean {
    return (t[2 * i]! & RW) !== 0;
  }

  isWriteDirty(_t: Uint32Array, _i: number, _level: number): boolean {
    return false;
  }

  makeWriteClean(_t: Uint32Array, _i: number, _level: number): void {}

  makeWriteDirty(_t: Uint32Array, _i: number, _lo: number, _hi: number): boolean {
    return false;
  }

  init(cfg: FormatConfig): FormatGeometry | "EINVAL" | "EOPNOTSUPP" {
    const va = cfg.hwMaxVaLg2;
    if (va < 31 || va > 57) return "EINVAL";
    return {
      topLevel: Math.floor((va - 31) / 9) + 2,
      maxVaLg2: va,
      maxOaLg2: Math.min(this.maxOaLg2, cfg.hwMaxOaLg2),
    };
  }

  hwInfo(topPa: number, topLevel: number): Record<string, number> {
    return { gcr3Pt: topPa, levels: topLevel + 1 };
  }
}

/** The x86_64 format (AMD v2, VT-d first stage). */
export const x86_64: PtFormat = new X86_64Format();
