import type { ObjectType } from "../uapi.js";

/**
 * struct iommufd_object: what every object in a context's table shares. `users`
 * counts long-term references; the table holds one, so an object can be
 * destroyed only while `users` is exactly 1 (else EBUSY), and close destroys the
 * objects whose only user is the table, leaves first.
 */
export abstract class IommufdObject {
  /** The object's ID (from 1; 0 is never valid). */
  id = 0;
  /** The type, for typed lookups (a wrong type is ENOENT). */
  abstract readonly type: ObjectType;
  /** Long-term references, the table's own included. */
  users = 1;

  /** Releases what the object holds; called once, after it left the table. */
  abstract destroy(): void;
}
