import { featureMask, hasFeature, PtFeature } from "../features.js";
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

// VT-d spec §3.7 and §9.8 (fmt/vtdss.h). There is no present bit: an all-zero
// item is empty, anything else is valid.
const R = 1 << 0;
const W = 1 << 1;
const PS = 1 << 7;
const D = 1 << 9;
const SNP = 1 << 11;

/** Intel VT-d second-stage format: 4K/2M/1G leaves, R/W/PS/A/D/SNP bits. */
export class VtdSsFormat implements PtFormat {
  readonly name = "vtdss";
  readonly granuleLg2 = 12;
  readonly maxTopLevel = 4;
  readonly maxVaLg2 = 57;
  readonly maxOaLg2 = 52;
  // iommu_vtdss.c: FLUSH_RANGE, FORCE_COHERENCE, FORCE_WRITEABLE, DMA_INCOHERENT.
  readonly supportedFeatures = featureMask(
    PtFeature.FLUSH_RANGE,
    PtFeature.VTDSS_FORCE_COHERENCE,
    PtFeature.VTDSS_FORCE_WRITEABLE,
    PtFeature.DMA_INCOHERENT,
    PtFeature.OA_TABLE_XCHG,
  );
  readonly forcedFeatures = 0;
  readonly defaultFeatures = featureMask(PtFeature.FLUSH_RANGE, PtFeature.OA_TABLE_XCHG);
  readonly hasDirty = true;
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
    if (lo === 0 && t[2 * i + 1] === 0) return EntryType.EMPTY;
    if (level === 0 || (level <= 2 && (lo & PS) !== 0)) return EntryType.OA;
    return EntryType.TABLE;
  }

  firstNonEmpty(t: Uint32Array, i: number, end: number): number {
    while (i < end && t[2 * i] === 0 && t[2 * i + 1] === 0) i++;
    return i;
  }

  clearLeaves(t: Uint32Array, i: number, end: number, level: number): number {
    // Level 0 holds only leaves; levels 1 and 2 hold PS leaves; above, none.
    if (level > 2) return i;
    const psNeeded = level === 0 ? 0 : PS;
    for (; i < end; i++) {
      const lo = t[2 * i]!;
      if ((lo | t[2 * i + 1]!) === 0 || (lo & psNeeded) !== psNeeded) break;
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
    t[2 * i] = (attrs[0]! | (level !== 0 ? PS : 0) | addrLo(oa)) >>> 0;
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
    writeLeafRun(t, i, count, 1, oa, POW2[oaszLg2]!, attrs[0]! | (level !== 0 ? PS : 0), attrs[1]!);
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
    t[2 * i] = (R | W | addrLo(tablePa)) >>> 0;
    t[2 * i + 1] = addrHi(tablePa);
    return true;
  }

  clearEntries(t: Uint32Array, i: number, numContigLg2: number): void {
    clearItems(t, i, numContigLg2);
  }

  attrFromEntry(t: Uint32Array, i: number, out: Uint32Array): void {
    out[0] = t[2 * i]! & (R | W | SNP);
    out[1] = 0;
  }

  setProt(prot: number, features: number, out: Uint32Array): "EINVAL" | null {
    // Without a present bit, R or W is what makes an entry present.
    if (!(prot & (IommuProt.READ | IommuProt.WRITE))) return "EINVAL";
    let lo = 0;
    if (prot & IommuProt.READ) lo |= R;
    if (prot & IommuProt.WRITE) lo |= W;
    if (hasFeature(features, PtFeature.VTDSS_FORCE_COHERENCE)) lo |= SNP;
    // ERRATA_772415_SPR17: a nesting parent refuses read-only maps.
    if (hasFeature(features, PtFeature.VTDSS_FORCE_WRITEABLE) && !(prot & IommuProt.WRITE)) {
      return "EINVAL";
    }
    out[0] = lo;
    out[1] = 0;
    return null;
  }

  readable(t: Uint32Array, i: number): boolean {
    return (t[2 * i]! & R) !== 0;
  }

  writable(t: Uint32Array, i: number): boolean {
    return (t[2 * i]! & W) !== 0;
  }

  isWriteDirty(t: Uint32Array, i: number, _level: number): boolean {
    return (t[2 * i]! & D) !== 0;
  }

  makeWriteClean(t: Uint32Array, i: number, _level: number): void {
    t[2 * i] = t[2 * i]! & ~D;
  }

  makeWriteDirty(t: Uint32Array, i: number, expectLo: number, expectHi: number): boolean {
    if (t[2 * i] !== expectLo >>> 0 || t[2 * i + 1] !== expectHi >>> 0) return false;
    t[2 * i] = (t[2 * i]! | D) >>> 0;
    return true;
  }

  init(cfg: FormatConfig): FormatGeometry | "EINVAL" | "EOPNOTSUPP" {
    const va = cfg.hwMaxVaLg2;
    let top: number;
    if (va > this.maxVaLg2) return "EOPNOTSUPP";
    if (va > 48) top = 4;
    else if (va > 39) top = 3;
    else if (va > 30) top = 2;
    else return "EOPNOTSUPP";
    return { topLevel: top, maxVaLg2: va, maxOaLg2: Math.min(this.maxOaLg2, cfg.hwMaxOaLg2) };
  }

  hwInfo(topPa: number, topLevel: number): Record<string, number> {
    return { ssptptr: topPa, aw: topLevel - 1 };
  }
}

/** The Intel VT-d second-stage format. */
export const vtdss: PtFormat = new VtdSsFormat();
