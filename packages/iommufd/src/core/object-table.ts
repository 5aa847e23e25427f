import { fail } from "../errors.js";
import type { ObjectType } from "../uapi.js";
import type { FaultInjector } from "./inject.js";
import type { IommufdObject } from "./object.js";

/** The placeholder an ID holds while its object is being built (XA_ZERO_ENTRY). */
const BUILDING = null;

/**
 * The context's object table (the xarray with XA_FLAGS_ALLOC1): IDs from 1, the
 * lowest free one first, one namespace for every type. An ID being built holds a
 * placeholder, so lookups of it fail with ENOENT until it is finalized.
 */
export class ObjectTable {
  private readonly slots: (IommufdObject | null | undefined)[] = [undefined];

  constructor(private readonly injector: FaultInjector) {}

  /** Reserves the lowest free ID for an object being built (ENOMEM when injected). */
  reserve(): number {
    if (this.injector.shouldFail()) fail("ENOMEM", "object", "id", "xa_alloc failed (injected)");
    let id = 1;
    while (id < this.slots.length && this.slots[id] !== undefined) id++;
    this.slots[id] = BUILDING;
    return id;
  }

  /** iommufd_object_finalize(): the object becomes visible under its ID. */
  finalize(id: number, obj: IommufdObject): void {
    obj.id = id;
    this.slots[id] = obj;
  }

  /** iommufd_object_abort(): an object that failed to build gives its ID back. */
  abort(id: number): void {
    this.slots[id] = undefined;
    this.trim();
  }

  /**
   * iommufd_get_object(): the object with this ID and type (any type when
   * `type` is omitted), else ENOENT. A lookup is an injection site (ENOENT).
   */
  get<T extends IommufdObject>(
    argument: string,
    id: number,
    type?: ObjectType | readonly ObjectType[],
  ): T {
    if (this.injector.shouldFail()) fail("ENOENT", argument, id, "lookup failed (injected)");
    const obj = Number.isInteger(id) && id > 0 ? this.slots[id] : undefined;
    if (obj === undefined || obj === null) fail("ENOENT", argument, id, "no such object");
    if (
      type !== undefined &&
      !(typeof type === "string" ? obj.type === type : type.includes(obj.type))
    ) {
      fail("ENOENT", argument, id, `is a ${obj.type}, not a ${String(type)}`);
    }
    return obj as T;
  }

  /** The object with this ID, or undefined; not an injection site (internal bookkeeping). */
  peek(id: number): IommufdObject | undefined {
    return this.slots[id] ?? undefined;
  }

  /**
   * IOMMU_DESTROY: ENOENT for an absent ID or one being built; EBUSY while anyone
   * but the table holds a reference. Otherwise the ID is freed and the object's
   * destroy runs.
   */
  destroy(id: number): void {
    const obj = Number.isInteger(id) && id > 0 ? this.slots[id] : undefined;
    if (obj === undefined || obj === null) fail("ENOENT", "id", id, "no such object");
    if (obj.users !== 1)
      fail("EBUSY", "id", id, `${obj.type} is in use (${obj.users - 1} references)`);
    this.remove(obj);
  }

  /** Removes an object that has no other users and runs its destroy. */
  remove(obj: IommufdObject): void {
    this.slots[obj.id] = undefined;
    this.trim();
    obj.users--;
    obj.destroy();
  }

  /** Every live object, in ID order. */
  objects(): IommufdObject[] {
    const out: IommufdObject[] = [];
    for (const o of this.slots) if (o !== undefined && o !== null) out.push(o);
    return out;
  }

  /** Number of live objects. */
  get size(): number {
    let n = 0;
    for (const o of this.slots) if (o !== undefined && o !== null) n++;
    return n;
  }

  private trim(): void {
    while (this.slots.length > 1 && this.slots[this.slots.length - 1] === undefined)
      this.slots.pop();
  }
}
