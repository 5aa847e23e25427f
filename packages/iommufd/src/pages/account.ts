import { fail } from "../errors.js";

/**
 * A user's locked-memory account (struct user_struct's locked_vm) and its
 * RLIMIT_MEMLOCK, in pages. Several processes of one user share it.
 */
export class UserAccount {
  /** Pages charged (user->locked_vm). */
  lockedVm = 0;

  /** `rlimitPages`: RLIMIT_MEMLOCK in pages (default unlimited); `capIpcLock`: charges nothing. */
  constructor(
    public rlimitPages = Number.POSITIVE_INFINITY,
    public capIpcLock = false,
  ) {
    if (!(rlimitPages >= 0)) fail("EINVAL", "rlimitPages", rlimitPages, "must be >= 0");
  }
}
