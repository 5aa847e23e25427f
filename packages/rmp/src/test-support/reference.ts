/**
 * A deliberately naive RMP: one plain record per 4K page, a 2M entry being 512
 * records that say "2M" with consecutive GPAs. The same rules as the model,
 * written the obvious way, for property tests to compare against.
 */
export interface RefPage {
  assigned: boolean;
  size2M: boolean;
  immutable: boolean;
  validated: boolean;
  vmsa: boolean;
  asid: number;
  gfn: number;
  perms: number;
}

const ZERO: RefPage = {
  assigned: false,
  size2M: false,
  immutable: false,
  validated: false,
  vmsa: false,
  asid: 0,
  gfn: 0,
  perms: 0,
};

export class RefRmp {
  readonly pages = new Map<number, RefPage>();
  constructor(readonly hostBytes: number) {}

  get(pfn: number): RefPage {
    return this.pages.get(pfn) ?? ZERO;
  }

  private set(pfn: number, p: RefPage): void {
    if (
      !p.assigned &&
      !p.size2M &&
      !p.immutable &&
      !p.validated &&
      !p.vmsa &&
      p.asid === 0 &&
      p.gfn === 0 &&
      p.perms === 0
    ) {
      this.pages.delete(pfn);
    } else {
      this.pages.set(pfn, p);
    }
  }

  private regionPages(pfn: number): number[] {
    const base = pfn - (pfn % 512);
    return Array.from({ length: 512 }, (_, i) => base + i);
  }

  private isLarge(pfn: number): boolean {
    return this.get(pfn - (pfn % 512)).size2M;
  }

  rmpupdate(
    spa: number,
    st: { assigned: boolean; pageSize: 0 | 1; immutable: boolean; asid: number; gpa: number },
  ): number {
    if (spa >= this.hostBytes) return 1;
    if (st.pageSize === 1 && spa % 2 ** 21 !== 0) return 1;
    if (st.assigned ? st.asid === 0 : st.asid !== 0 || st.immutable) return 1;
    if (st.pageSize === 1 && st.assigned && st.gpa % 2 ** 21 !== 0) return 1;
    const pfn = spa / 4096;
    const region = this.regionPages(pfn);
    const gfn = st.assigned ? st.gpa / 4096 : 0;
    if (st.pageSize === 1) {
      if (region.some((p) => this.get(p).immutable)) return 2;
      if (!this.isLarge(pfn) && region.some((p) => this.get(p).assigned)) return 4;
      region.forEach((p, i) => {
        this.set(p, {
          assigned: st.assigned,
          size2M: true,
          immutable: st.immutable,
          validated: false,
          vmsa: false,
          asid: st.asid,
          gfn: st.assigned ? gfn + i : 0,
          perms: 0,
        });
      });
      return 0;
    }
    if (this.get(pfn).immutable) return 2;
    if (this.isLarge(pfn) && this.get(pfn).assigned) return 4;
    if (this.isLarge(pfn)) {
      // A 2M hypervisor entry becomes 512 4K hypervisor entries first.
      for (const p of region) this.set(p, { ...ZERO });
    }
    this.set(pfn, {
      assigned: st.assigned,
      size2M: false,
      immutable: st.immutable,
      validated: false,
      vmsa: false,
      asid: st.asid,
      gfn,
      perms: 0,
    });
    return 0;
  }

  psmash(spa: number): number {
    if (spa >= this.hostBytes) return 4;
    if (spa % 2 ** 21 !== 0) return 1;
    const pfn = spa / 4096;
    const e = this.get(pfn);
    if (!e.size2M || !e.assigned) return 1;
    if (e.immutable) return 2;
    for (const p of this.regionPages(pfn)) this.set(p, { ...this.get(p), size2M: false });
    return 0;
  }

  unsmash(spa: number): number {
    if (spa >= this.hostBytes) return 4;
    if (spa % 2 ** 21 !== 0) return 1;
    const pfn = spa / 4096;
    const region = this.regionPages(pfn);
    const first = this.get(pfn);
    if (first.size2M || !first.assigned || first.gfn % 512 !== 0) return 1;
    for (let i = 0; i < 512; i++) {
      const e = this.get(region[i]!);
      if (
        !e.assigned ||
        e.size2M ||
        e.asid !== first.asid ||
        e.immutable !== first.immutable ||
        e.validated !== first.validated ||
        e.vmsa !== first.vmsa ||
        e.perms !== first.perms ||
        e.gfn !== first.gfn + i
      )
        return 1;
    }
    for (const p of region) this.set(p, { ...this.get(p), size2M: true });
    return 0;
  }

  pvalidate(
    spa: number,
    a: { asid: number; gpa: number; pageSize: 0 | 1; validate: boolean },
  ): number {
    if (a.pageSize === 1 && (spa % 2 ** 21 !== 0 || a.gpa % 2 ** 21 !== 0)) return 1;
    if (spa >= this.hostBytes) return 0x100;
    const pfn = spa / 4096;
    const e = this.get(pfn);
    if (!e.assigned || e.asid !== a.asid || e.gfn !== a.gpa / 4096) return 0x100;
    if (e.size2M && a.pageSize === 0) return 0x101;
    if (!e.size2M && a.pageSize === 1) return 6;
    if (e.validated === a.validate) return 255;
    const pages = e.size2M ? this.regionPages(pfn) : [pfn];
    for (const p of pages) this.set(p, { ...this.get(p), validated: a.validate });
    return 0;
  }

  /** The untrusted DMA check (with the whole-region rule for leaves of 2M or more), the obvious way. */
  dmaUntrusted(spa: number, leafLg2: number): number {
    if (spa >= this.hostBytes) return 9;
    const pfn = Math.floor(spa / 4096);
    if (this.get(pfn).assigned) return 7;
    if (leafLg2 >= 21 && this.regionPages(pfn).some((p) => this.get(p).assigned)) return 8;
    return 0;
  }

  /** The trusted DMA check, the obvious way. */
  dmaTrusted(spa: number, leafLg2: number, asid: number, iova: number): number {
    if (spa >= this.hostBytes) return 9;
    const e = this.get(Math.floor(spa / 4096));
    if (!e.assigned) return 3;
    if (e.size2M !== leafLg2 >= 21) return e.size2M ? 2 : 1;
    if (e.asid !== asid) return 4;
    if (e.gfn !== Math.floor(iova / 4096)) return 5;
    return 0;
  }
}
