import { featureMask, hasFeature, PtFeature } from "../features.js";
import { ffz32, POW2 } from "../log2.js";
import { IommuProt } from "../prot.js";
import {
  addrHi,
  addrLo,
  clearItems,
  entryShr32,
  fieldTrailingOnes,
  readAddr,
  writeLeafRun,
} from "./bits.js";
import {
  EntryType,
  type FormatConfig,
  type FormatGeometry,
  ITEMS_PER_TABLE_LG2,
  type PtFormat,
} from "./format.js";

// Entry bits (AMD IOMMU spec §2.2.3; drivers/iommu/generic_pt/fmt/amdv1.h).
const PR = 1 << 0; // lo
const D = 1 << 6; // lo: hardware dirty
const NL_SHIFT = 9; // lo bits 11:9, "next level"
const NL_MASK = 7 << NL_SHIFT;
const NL_DEFAULT = 0; // a leaf of its level's item size
const NL_SIZE = 7; // a leaf whose size is encoded in the OA field's trailing ones
const FC_HI = 1 << 28; // bit 60: force coherent
const IR_HI = 1 << 29; // bit 61: read permission
const IW_HI = 1 << 30; // bit 62: write permission

/** The 512 GiB leaf is never used: the kernel removes it "due to a hardware bug". */
const SZ_512G_LG2 = 39;

/**
 * AMD IOMMU v1 host page table (the "v1" / host translation format), and its
 * iommufd-selftest variant with a 2 KiB granule.
 *
 * Leaves exist at levels 0..4; a leaf larger than its level's item is written into
 * every item it spans with NL=7 and its size encoded as a run of ones in the OA
 * field: address bits 12..s-2 set, bit s-1 clear, for a 2^s leaf.
 */
export class AmdV1Format implements PtFormat {
  readonly name: string;
  readonly granuleLg2: number;
  readonly maxTopLevel: number;
  readonly maxVaLg2: number;
  readonly maxOaLg2: number;
  readonly supportedFeatures: number;
  readonly forcedFeatures: number;
  readonly defaultFeatures: number;
  readonly hasDirty = true;
  private readonly sizesByLevel: number[][];
  /**
   * The OA field holds addr >> granule at bit 12, i.e. addr * 2^(12 - granule) in
   * entry-bit terms: 1 for 4 KiB, 2 for the 2 KiB mock.
   */
  private readonly toField: number;
  private readonly fromField: number;
  /** log2 of toField: how far the field sits above the address (0, or 1 for the mock). */
  private readonly fieldShift: number;

  /** `mock`: the AMDV1_IOMMUFD_SELFTEST variant (2 KiB granule, 4 top levels, 56/51-bit). */
  constructor(mock: boolean) {
    this.name = mock ? "amdv1-mock" : "amdv1";
    this.granuleLg2 = mock ? 11 : 12;
    this.maxTopLevel = mock ? 4 : 5;
    this.maxVaLg2 = mock ? 56 : 64;
    this.maxOaLg2 = mock ? 51 : 52;
    this.toField = 2 ** (12 - this.granuleLg2);
    this.fromField = 2 ** (this.granuleLg2 - 12);
    this.fieldShift = 12 - this.granuleLg2;
    const cut = featureMask(PtFeature.OA_SIZE_CHANGE, PtFeature.OA_TABLE_XCHG);
    // iommu_amdv1.c builds FULL_VA, DYNAMIC_TOP, FLUSH_RANGE(_NO_GAPS),
    // ENCRYPT_TABLES and FORCE_COHERENCE, forcing DYNAMIC_TOP and the last two
    // (FULL_VA is what init sets for a 64-bit top range); iommu_mock.c builds none,
    // so the mock also refuses cut/split/collapse with EOPNOTSUPP. Hitless resizing
    // (the RFC cut features) suits the AMD walker: a PDE replaced by an equivalent
    // table, or a run rewritten item by item, keeps every translation valid.
    this.supportedFeatures = mock
      ? 0
      : featureMask(
          PtFeature.FULL_VA,
          PtFeature.DYNAMIC_TOP,
          PtFeature.FLUSH_RANGE,
          PtFeature.FLUSH_RANGE_NO_GAPS,
          PtFeature.AMDV1_ENCRYPT_TABLES,
          PtFeature.AMDV1_FORCE_COHERENCE,
        ) | cut;
    this.forcedFeatures = mock
      ? 0
      : featureMask(
          PtFeature.DYNAMIC_TOP,
          PtFeature.AMDV1_ENCRYPT_TABLES,
          PtFeature.AMDV1_FORCE_COHERENCE,
        );
    this.defaultFeatures = mock
      ? 0
      : this.forcedFeatures | featureMask(PtFeature.FLUSH_RANGE) | cut;
    this.sizesByLevel = [];
    for (let level = 0; level <= this.maxTopLevel; level++) {
      const sizes: number[] = [];
      if (level < this.maxTopLevel) {
        const isz = this.granuleLg2 + ITEMS_PER_TABLE_LG2 * level;
        const top = Math.min(51, isz + ITEMS_PER_TABLE_LG2 - 1);
        for (let s = isz; s <= top; s++) if (s !== SZ_512G_LG2) sizes.push(s);
      }
      this.sizesByLevel.push(sizes);
    }
  }

  numItemsLg2(level: number): number {
    // The level-5 table decodes VA[63:57] only; max_vasz limits it, not the table size.
    return level === 5 ? 7 : ITEMS_PER_TABLE_LG2;
  }

  canHaveLeaf(level: number): boolean {
    return level < this.maxTopLevel;
  }

  possibleSizes(level: number): readonly number[] {
    return this.sizesByLevel[level] ?? [];
  }

  load(t: Uint32Array, i: number, level: number): EntryType {
    const lo = t[2 * i]!;
    if ((lo & PR) === 0) return EntryType.EMPTY;
    const nl = (lo & NL_MASK) >>> NL_SHIFT;
    if (level === 0 || nl === NL_DEFAULT || nl === NL_SIZE) return EntryType.OA;
    return EntryType.TABLE;
  }

  firstNonEmpty(t: Uint32Array, i: number, end: number): number {
    while (i < end && (t[2 * i]! & PR) === 0) i++;
    return i;
  }

  clearLeaves(t: Uint32Array, i: number, end: number, level: number): number {
    if (level === 0) {
      // Every present level-0 item is a leaf.
      for (; i < end && (t[2 * i]! & PR) !== 0; i++) {
        t[2 * i] = 0;
        t[2 * i + 1] = 0;
      }
      return i;
    }
    // Above level 0 an item is a leaf when NL says "this level" or "size encoded".
    for (; i < end; i++) {
      const lo = t[2 * i]!;
      const nl = (lo & NL_MASK) >>> NL_SHIFT;
      if ((lo & PR) === 0 || (nl !== NL_DEFAULT && nl !== NL_SIZE)) break;
      t[2 * i] = 0;
      t[2 * i + 1] = 0;
    }
    return i;
  }

  tablePa(t: Uint32Array, i: number): number {
    return readAddr(t, i) * this.fromField;
  }

  tableFrameLo(t: Uint32Array, i: number): number {
    // The field's bits above the frame's, in the low word (and for the mock, one
    // bit of the high word).
    const sh = this.fieldShift;
    return ((t[2 * i]! >>> (12 + sh)) | (t[2 * i + 1]! << (20 - sh))) & 0xfffff;
  }

  tableFrameHi(t: Uint32Array, i: number): number {
    return (t[2 * i + 1]! & 0xfffff) >>> this.fieldShift;
  }

  entryOa(t: Uint32Array, i: number, _level: number): number {
    let raw = readAddr(t, i);
    if ((t[2 * i]! & NL_MASK) >>> NL_SHIFT === NL_SIZE) {
      // The size code is the run of ones above bit 12; clearing it leaves the base.
      raw -= (POW2[fieldTrailingOnes(t, i)]! - 1) * 4096;
    }
    return raw * this.fromField;
  }

  numContigLg2(t: Uint32Array, i: number, level: number): number {
    // NL=0 (NL_DEFAULT): a single item; else the size code says.
    return (t[2 * i]! & NL_MASK) === 0 ? 0 : this.sizeCodeLg2(t, i, level);
  }

  /** numContigLg2() of an NL=7 entry, out of line so the common case inlines small. */
  private sizeCodeLg2(t: Uint32Array, i: number, level: number): number {
    // The NL=7 marker (bit 11) is the leading one of the size code: shifting so
    // that bit 11 + (item - granule) lands at bit 0, the first zero is the count.
    return ffz32(entryShr32(t, i, 11 + ITEMS_PER_TABLE_LG2 * level));
  }

  installLeaf(
    t: Uint32Array,
    i: number,
    level: number,
    oa: number,
    oaszLg2: number,
    attrs: Uint32Array,
  ): void {
    if (oaszLg2 !== this.granuleLg2 + 9 * level) {
      this.installContig(t, i, level, oa, oaszLg2, attrs);
      return;
    }
    // PR, NL=0 (a leaf of this level's size), the address, the attributes.
    const raw = oa * this.toField;
    t[2 * i] = PR | attrs[0]! | addrLo(raw);
    t[2 * i + 1] = attrs[1]! | addrHi(raw);
  }

  /** installLeaf() of a leaf larger than its level's item: NL=7 in every item it spans. */
  private installContig(
    t: Uint32Array,
    i: number,
    level: number,
    oa: number,
    oaszLg2: number,
    attrs: Uint32Array,
  ): void {
    const isz = this.granuleLg2 + ITEMS_PER_TABLE_LG2 * level;
    // A 2^s leaf sets field bits 0..s-granule-2: address bits 12..s-granule+10.
    const raw = oa * this.toField + (POW2[oaszLg2 - this.granuleLg2 - 1]! - 1) * 4096;
    const lo = (PR | (NL_SIZE << NL_SHIFT) | attrs[0]! | addrLo(raw)) >>> 0;
    const hi = (attrs[1]! | addrHi(raw)) >>> 0;
    const end = 2 * (i + (1 << (oaszLg2 - isz)));
    for (let w = 2 * i; w < end; w += 2) {
      t[w] = lo;
      t[w + 1] = hi;
    }
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
    const isz = this.granuleLg2 + ITEMS_PER_TABLE_LG2 * level;
    const step = POW2[oaszLg2]! * this.toField;
    let raw = oa * this.toField;
    let nl = NL_DEFAULT;
    if (oaszLg2 !== isz) {
      nl = NL_SIZE;
      raw += (POW2[oaszLg2 - this.granuleLg2 - 1]! - 1) * 4096;
    }
    writeLeafRun(
      t,
      i,
      count,
      1 << (oaszLg2 - isz),
      raw,
      step,
      PR | (nl << NL_SHIFT) | attrs[0]!,
      attrs[1]!,
    );
  }

  installTable(
    t: Uint32Array,
    i: number,
    level: number,
    tablePa: number,
    expectLo: number,
    expectHi: number,
  ): boolean {
    if (t[2 * i] !== expectLo >>> 0 || t[2 * i + 1] !== expectHi >>> 0) return false;
    const raw = tablePa * this.toField;
    // Permissions are ANDed down the walk, so table entries always grant IR|IW.
    t[2 * i] = PR | (level << NL_SHIFT) | addrLo(raw);
    t[2 * i + 1] = IR_HI | IW_HI | addrHi(raw);
    return true;
  }

  clearEntries(t: Uint32Array, i: number, numContigLg2: number): void {
    clearItems(t, i, numContigLg2);
  }

  attrFromEntry(t: Uint32Array, i: number, out: Uint32Array): void {
    out[0] = 0;
    out[1] = t[2 * i + 1]! & (FC_HI | IR_HI | IW_HI);
  }

  setProt(prot: number, features: number, out: Uint32Array): "EINVAL" | null {
    let hi = 0;
    if (hasFeature(features, PtFeature.AMDV1_FORCE_COHERENCE)) hi |= FC_HI;
    if (prot & IommuProt.READ) hi |= IR_HI;
    if (prot & IommuProt.WRITE) hi |= IW_HI;
    // The SME C-bit of ENCRYPT_TABLES is not modelled (no memory encryption model).
    out[0] = 0;
    out[1] = hi;
    return null;
  }

  readable(t: Uint32Array, i: number): boolean {
    return (t[2 * i + 1]! & IR_HI) !== 0;
  }

  writable(t: Uint32Array, i: number): boolean {
    return (t[2 * i + 1]! & IW_HI) !== 0;
  }

  isWriteDirty(t: Uint32Array, i: number, level: number): boolean {
    const n = 1 << this.numContigLg2(t, i, level);
    const start = i - (i % n);
    for (let j = start; j < start + n; j++) if (t[2 * j]! & D) return true;
    return false;
  }

  makeWriteClean(t: Uint32Array, i: number, level: number): void {
    const n = 1 << this.numContigLg2(t, i, level);
    const start = i - (i % n);
    for (let j = start; j < start + n; j++) t[2 * j] = t[2 * j]! & ~D;
  }

  makeWriteDirty(t: Uint32Array, i: number, expectLo: number, expectHi: number): boolean {
    if (t[2 * i] !== expectLo >>> 0 || t[2 * i + 1] !== expectHi >>> 0) return false;
    t[2 * i] = (t[2 * i]! | D) >>> 0;
    return true;
  }

  init(cfg: FormatConfig): FormatGeometry | "EINVAL" | "EOPNOTSUPP" {
    const start = cfg.startingLevel ?? 2;
    if (!Number.isInteger(start) || start < 1 || start > this.maxTopLevel) return "EINVAL";
    let maxVa = this.maxVaLg2;
    if (!hasFeature(cfg.features, PtFeature.DYNAMIC_TOP) && start !== this.maxTopLevel) {
      maxVa = this.granuleLg2 + ITEMS_PER_TABLE_LG2 * (start + 1);
    }
    return {
      topLevel: start,
      maxVaLg2: Math.min(maxVa, cfg.hwMaxVaLg2),
      maxOaLg2: Math.min(this.maxOaLg2, cfg.hwMaxOaLg2),
    };
  }

  hwInfo(topPa: number, topLevel: number): Record<string, number> {
    return { hostPtRoot: topPa, mode: topLevel + 1 };
  }
}

/** The AMD IOMMU v1 host page-table format. */
export const amdv1: PtFormat = new AmdV1Format(false);
/** The AMD v1 variant iommufd's selftests use: 2 KiB granule, tables still 4 KiB. */
export const amdv1Mock: PtFormat = new AmdV1Format(true);
