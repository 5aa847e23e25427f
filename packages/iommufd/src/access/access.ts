import { checkU64, lastOf } from "../core/check.js";
import { IommufdObject } from "../core/object.js";
import { fail } from "../errors.js";
import type { Ioas } from "../ioas/ioas.js";
import type { IoptArea } from "../iopt/area.js";
import type { PhysMemory } from "../pages/phys-memory.js";
import { ObjectType, PAGE_SIZE, ULONG_MAX } from "../uapi.js";

/** What an access's owner does when iommufd needs its pins gone (struct iommufd_access_ops). */
export interface AccessOps {
  /** The access pins pages: the IOAS's alignment becomes PAGE_SIZE. */
  needsPinPages: boolean;
  /**
   * ops->unmap(): [iova, iova + length) is being unmapped; the owner must unpin
   * what it pinned there. Default: unpin every pin that meets the range (what
   * the selftest's mock access does).
   */
  unmap?(access: IommufdAccess, iova: number, length: number): void;
}

/** One pin an access holds (the selftest's access_pages item). */
export interface AccessPin {
  id: number;
  iova: number;
  length: number;
  /** Physical address of each page, in order (out_pages). */
  pfns: number[];
}

/**
 * IOMMUFD_OBJ_ACCESS: an in-kernel user (an emulated or mdev device) that pins,
 * reads and writes IOAS memory without a domain. It holds its IOAS.
 */
export class IommufdAccess extends IommufdObject {
  readonly type = ObjectType.ACCESS;
  /** @internal The IOAS the access is attached to. */
  ioas: Ioas | null = null;
  readonly iovaAlignment: number;
  /** Pins held, by id. */
  readonly pins = new Map<number, AccessPin>();
  private nextPinId = 1;

  constructor(
    readonly ops: AccessOps,
    private readonly phys: PhysMemory,
  ) {
    super();
    this.iovaAlignment = ops.needsPinPages ? PAGE_SIZE : 1;
  }

  /** @internal iommufd_access_attach(): join an IOAS (its alignment may rise: EADDRINUSE). */
  attach(ioas: Ioas): void {
    if (this.ioas !== null) fail("EINVAL", "ioas_id", ioas.id, "the access is attached already");
    ioas.iopt.addAccess(this);
    this.ioas = ioas;
    ioas.users++;
  }

  /** iommufd_access_detach(): the owner is told to unpin everything first. */
  detach(): void {
    this.changeIoas(null);
  }

  /**
   * @internal
   * iommufd_access_replace(): join the new IOAS (on failure the old one stays),
   * then tell the owner to unpin everything (ops->unmap over the whole IOVA
   * space) and leave the old one.
   */
  replace(ioas: Ioas): void {
    this.changeIoas(ioas);
  }

  /** iommufd_access_change_ioas(). */
  private changeIoas(next: Ioas | null): void {
    const cur = this.ioas;
    if (cur === next) return;
    if (next !== null) next.iopt.addAccess(this);
    if (cur !== null) {
      this.notifyUnmap(0, ULONG_MAX);
      cur.iopt.removeAccess(this);
      cur.users--;
    }
    this.ioas = next;
    if (next !== null) next.users++;
  }

  /**
   * iommufd_access_pin_pages(): pin [iova, iova + length) (page aligned) and
   * return the pin with its PFNs. EINVAL for length 0 or an area being unmapped;
   * ENOENT if contiguous areas do not cover the range; EPERM to pin a read-only
   * area for write; ENODEV for a revoked area; EFAULT/ENOMEM from pinning.
   */
  pin(iova: number, length: number, write: boolean): AccessPin {
    const ioas = this.attached();
    checkU64("iova", iova);
    checkU64("length", length);
    if (length === 0) fail("EINVAL", "length", length, "must not be 0");
    const last = lastOf("iova", iova, length);
    if (iova % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0) {
      fail("EINVAL", "iova", iova, "pins are whole pages");
    }
    const areas = ioas.iopt.contigAreas(iova, last);
    if (areas === null) fail("ENOENT", "iova", iova, "the range is not fully mapped");
    for (const a of areas) {
      if (a.preventAccess) fail("EINVAL", "iova", a.iova, "the area is being unmapped");
      if (a.revoked) fail("ENODEV", "iova", a.iova, "the area was revoked");
      if (write && (a.prot & 2) === 0) fail("EPERM", "flags", 1, "the area is not writable");
    }
    const done: [IoptArea, number, number][] = [];
    try {
      for (const a of areas) {
        const [first, lastIdx] = indexRange(a, Math.max(iova, a.iova), Math.min(last, a.last));
        a.source.pin(first, lastIdx);
        done.push([a, first, lastIdx]);
      }
    } catch (e) {
      for (const [a, f, l] of done) a.source.unpin(f, l);
      throw e;
    }
    const pfns: number[] = [];
    for (const [a, f, l] of done) {
      a.numAccesses++;
      for (let i = f; i <= l; i++) pfns.push(a.source.physOf(i));
    }
    const pin: AccessPin = { id: this.nextPinId++, iova, length, pfns };
    this.pins.set(pin.id, pin);
    return pin;
  }

  /** iommufd_access_unpin_pages() for one pin; ENOENT for an unknown pin id. */
  unpin(id: number): void {
    const pin = this.pins.get(id);
    if (pin === undefined) fail("ENOENT", "access_pages_id", id, "no such pin");
    const ioas = this.attached();
    const last = pin.iova + pin.length - 1;
    for (const a of ioas.iopt.areasIn(pin.iova, last)) {
      const [f, l] = indexRange(a, Math.max(pin.iova, a.iova), Math.min(last, a.last));
      a.source.unpin(f, l);
      a.numAccesses--;
    }
    this.pins.delete(id);
  }

  /**
   * iommufd_access_rw(): copy between `data` and IOAS memory at any byte
   * offset, through pinned pages where there are some, else through the source.
   * ENOENT if the range is not covered; EPERM to write a read-only area; ENODEV
   * for a revoked area; EFAULT where the source has no page.
   */
  rw(iova: number, data: Uint8Array, write: boolean): void {
    const ioas = this.attached();
    checkU64("iova", iova);
    if (data.length === 0) fail("EINVAL", "length", 0, "must not be 0");
    const last = lastOf("iova", iova, data.length);
    const areas = ioas.iopt.contigAreas(iova, last);
    if (areas === null) fail("ENOENT", "iova", iova, "the range is not fully mapped");
    for (const a of areas) {
      if (a.revoked) fail("ENODEV", "iova", a.iova, "the area was revoked");
      if (write && (a.prot & 2) === 0) fail("EPERM", "flags", 1, "the area is not writable");
    }
    const phys = this.phys;
    for (let done = 0; done < data.length; ) {
      const at = iova + done;
      const a = areas.find((x) => at >= x.iova && at <= x.last)!;
      const byte = a.startByteOf(at);
      const index = Math.floor(byte / PAGE_SIZE);
      const pa = a.source.physOf(index);
      if (pa < 0) fail("EFAULT", "iova", at, "no page backs this address");
      const n = Math.min(PAGE_SIZE - (byte % PAGE_SIZE), data.length - done, a.last - at + 1);
      if (write) phys.write(pa + (byte % PAGE_SIZE), data, done, n);
      else phys.read(pa + (byte % PAGE_SIZE), data, done, n);
      done += n;
    }
  }

  /** ops->unmap from the io_pagetable. */
  notifyUnmap(iova: number, length: number): void {
    if (this.ops.unmap !== undefined) {
      this.ops.unmap(this, iova, length);
      return;
    }
    const last = iova + length - 1;
    for (const p of [...this.pins.values()]) {
      if (p.iova <= last && p.iova + p.length - 1 >= iova) this.unpin(p.id);
    }
  }

  destroy(): void {
    this.detach();
  }

  private attached(): Ioas {
    if (this.ioas === null) fail("EINVAL", "access", this.id, "is not attached to an IOAS");
    return this.ioas;
  }
}

/** The page indices of [from, to] inside an area. */
function indexRange(a: IoptArea, from: number, to: number): [number, number] {
  return [Math.floor(a.startByteOf(from) / PAGE_SIZE), Math.floor(a.startByteOf(to) / PAGE_SIZE)];
}
