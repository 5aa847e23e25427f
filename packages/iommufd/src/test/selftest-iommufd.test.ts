/**
 * FIXTURE iommufd (a bare /dev/iommu fd) of tools/testing/selftests/iommu/iommufd.c,
 * through the raw ioctl entry where the case is about the uAPI encoding, and
 * FIXTURE change_process. cmd_length skips VIOMMU_ALLOC and VDEVICE_ALLOC, which
 * the model does not implement (they are ENOTTY here).
 */
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { IommufdError } from "../errors.js";
import { IOMMU, IOMMUFD_CMD_BASE, type IoctlArg, iommufdIo } from "../ioctl/dispatch.js";
import { LAYOUTS } from "../ioctl/layout.js";
import { UserAccount } from "../pages/account.js";
import {
  expectErrno,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
  openSelftest,
  type SelftestContext,
  teardownSelftest,
} from "../test-support/selftest.js";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  PAGE_SIZE,
} from "../uapi.js";

/** What an ioctl did: 0, or the errno name. */
function outcome(call: () => unknown): string | 0 {
  try {
    call();
    return 0;
  } catch (e) {
    if (e instanceof IommufdError) return e.code;
    throw e;
  }
}

describe("iommufd", () => {
  let ctx: SelftestContext;
  beforeEach(() => {
    ctx = openSelftest();
  });
  afterEach(() => teardownSelftest(ctx));

  test("simple_close", () => {});

  test("cmd_fail", () => {
    // The object ID is invalid
    expectErrno("ENOENT", () => ctx.fd.destroy(0));
    // A bad pointer
    expectErrno("EFAULT", () => ctx.fd.ioctl(IOMMU.DESTROY, null));
    // An unknown ioctl
    expectErrno("ENOTTY", () => ctx.fd.ioctl(iommufdIo(IOMMUFD_CMD_BASE - 1), { size: 8, id: 0 }));
  });

  const lengthCases = [
    "DESTROY",
    "GET_HW_INFO",
    "HWPT_ALLOC",
    "HWPT_INVALIDATE",
    "IOAS_ALLOC",
    "IOAS_IOVA_RANGES",
    "IOAS_ALLOW_IOVAS",
    "IOAS_MAP",
    "IOAS_COPY",
    "IOAS_UNMAP",
    "OPTION",
    "VFIO_IOAS",
    "IOAS_MAP_FILE",
    "IOAS_CHANGE_PROCESS",
  ] as const;

  test.each(lengthCases)("cmd_length %s", (name) => {
    const layout = LAYOUTS[name];
    const cmd = IOMMU[name];
    const extra = new Uint8Array([0xff]);
    // One byte short of min_size, with a non-zero byte after the struct
    expectErrno("EINVAL", () => ctx.fd.ioctl(cmd, { size: layout.minSize - 1, tail: extra }));
    // One byte longer than the kernel's struct, the extra byte non-zero
    expectErrno("E2BIG", () => ctx.fd.ioctl(cmd, { size: layout.size + 1, tail: extra }));
    // The exact size gives some result; one zero extra byte must give the same
    const exact = outcome(() => ctx.fd.ioctl(cmd, { size: layout.size }));
    const longer = outcome(() =>
      ctx.fd.ioctl(cmd, { size: layout.size + 1, tail: new Uint8Array([0]) }),
    );
    expect(longer).toBe(exact);
  });

  test("cmd_ex_fail", () => {
    const future = new Uint8Array(8);
    // The object ID is invalid and the command is longer
    expectErrno("ENOENT", () => ctx.fd.ioctl(IOMMU.DESTROY, { size: 16, id: 0, tail: future }));
    // The future area is non-zero
    future[0] = 1;
    expectErrno("E2BIG", () => ctx.fd.ioctl(IOMMU.DESTROY, { size: 16, id: 0, tail: future }));
    // The original command "works"
    expectErrno("ENOENT", () => ctx.fd.ioctl(IOMMU.DESTROY, { size: 8, id: 0, tail: future }));
    // A short command fails
    expectErrno("EINVAL", () => ctx.fd.ioctl(IOMMU.DESTROY, { size: 7, id: 0, tail: future }));
  });

  test("the outputs past a short struct are not written", () => {
    // min_size of IOMMU_IOAS_ALLOC ends at out_ioas_id; a full struct gets the ID back.
    const arg: IoctlArg = { size: LAYOUTS.IOAS_ALLOC.size, flags: 0 };
    ctx.fd.ioctl(IOMMU.IOAS_ALLOC, arg);
    expect(arg.outIoasId).toBe(1);
    // HWPT_ALLOC's min_size ends at __reserved: fields past the user's size read as zero.
    const hw: IoctlArg = {
      size: LAYOUTS.HWPT_ALLOC.minSize,
      flags: 0,
      devId: 0,
      ptId: 1,
      dataType: 7,
      dataLen: 0,
    };
    expectErrno("ENOENT", () => ctx.fd.ioctl(IOMMU.HWPT_ALLOC, hw));
    hw.size = LAYOUTS.HWPT_ALLOC.size;
    expectErrno("EINVAL", () => ctx.fd.ioctl(IOMMU.HWPT_ALLOC, hw));
  });

  test("global_options", () => {
    const cmd = {
      optionId: IOMMU_OPTION_RLIMIT_MODE,
      op: IOMMU_OPTION_OP_GET,
      objectId: 0,
      val64: 1,
    };
    ctx.fd.option(cmd);
    expect(cmd.val64).toBe(0);
    // This requires root
    ctx.fd.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 1 });
    expectErrno("EINVAL", () => ctx.fd.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 2 }));
    ctx.fd.option(cmd);
    expect(cmd.val64).toBe(1);
    ctx.fd.option({ ...cmd, op: IOMMU_OPTION_OP_SET, val64: 0 });
    expectErrno("ENOENT", () => ctx.fd.option({ ...cmd, optionId: IOMMU_OPTION_HUGE_PAGES }));
    expectErrno("ENOENT", () =>
      ctx.fd.option({ ...cmd, optionId: IOMMU_OPTION_HUGE_PAGES, op: IOMMU_OPTION_OP_SET }),
    );
  });

  test("global_options: SET needs CAP_SYS_RESOURCE and an empty context", () => {
    ctx.fd.ioasAlloc();
    const set = {
      optionId: IOMMU_OPTION_RLIMIT_MODE,
      op: IOMMU_OPTION_OP_SET,
      objectId: 0,
      val64: 1,
    };
    expectErrno("EBUSY", () => ctx.fd.option(set));
    expectErrno("EOPNOTSUPP", () => ctx.fd.option({ ...set, objectId: 1 }));
  });

  test("vfio_ioas", () => {
    expectErrno("ENODEV", () => ctx.fd.vfioIoas({ op: 0 }));
    expectErrno("ENOENT", () => ctx.fd.vfioIoas({ op: 1, ioasId: 0 }));
    const ioasId = ctx.fd.ioasAlloc();
    ctx.fd.vfioIoas({ op: 1, ioasId });
    const get = { op: 0, ioasId: 0 };
    ctx.fd.vfioIoas(get);
    expect(get.ioasId).toBe(ioasId);
    ctx.fd.vfioIoas({ op: 2 });
    expectErrno("ENODEV", () => ctx.fd.vfioIoas({ op: 0 }));
  });
});

describe.each([
  { name: "account_none", accounting: "none" },
  { name: "account_user", accounting: "user" },
  { name: "account_mm", accounting: "mm" },
] as const)("change_process.$name", (variant) => {
  let ctx: SelftestContext;
  let ioasId = 0;

  beforeEach(() => {
    ctx = openSelftest();
    // drop_cap_ipc_lock(): charges are counted unless the variant has no accounting at all.
    ctx.fd.process.user.capIpcLock = variant.accounting === "none";
    if (variant.accounting !== "none") {
      ctx.fd.option({
        optionId: IOMMU_OPTION_RLIMIT_MODE,
        op: IOMMU_OPTION_OP_SET,
        objectId: 0,
        val64: variant.accounting === "mm" ? 1 : 0,
      });
    }
    ioasId = ctx.fd.ioasAlloc();
    ctx.t.mockDomain(ioasId);
  });

  afterEach(() => teardownSelftest(ctx));

  test("basic", () => {
    const parent = ctx.fd.process;
    // Fails if non-file maps exist
    const iova = ioasMap(ctx, ioasId, ctx.buffer, PAGE_SIZE);
    expectErrno("EINVAL", () => ctx.fd.ioasChangeProcess());
    ioasUnmap(ctx, ioasId, iova, PAGE_SIZE);

    // Works in the current process
    ioasMapFile(ctx, ioasId, ctx.mfd, 0, PAGE_SIZE);
    ctx.fd.ioasChangeProcess();

    // Works in another process: the charge moves from parent to child
    const child = parent.fork();
    expect(parent.pinnedVm).toBe(1);
    if (variant.accounting === "mm") expect(parent.lockedVm).toBe(1);
    expect(child.pinnedVm).toBe(0);
    expect(child.lockedVm).toBe(0);
    ctx.fd.ioasChangeProcess({ process: child });
    expect(parent.pinnedVm).toBe(0);
    expect(parent.lockedVm).toBe(0);
    expect(child.pinnedVm).toBe(1);
    if (variant.accounting === "mm") expect(child.lockedVm).toBe(1);
    child.exit();
  });

  test("a child over its RLIMIT_MEMLOCK: ENOMEM and nothing moves", () => {
    if (variant.accounting === "none") return;
    ioasMapFile(ctx, ioasId, ctx.mfd, 0, 4 * PAGE_SIZE);
    const child = ctx.fd.process.fork();
    if (variant.accounting === "user") {
      // Another user whose limit is below what is pinned.
      (child as unknown as { user: UserAccount }).user = new UserAccount(2);
    } else {
      child.user.rlimitPages = 2;
    }
    expectErrno("ENOMEM", () => ctx.fd.ioasChangeProcess({ process: child }));
    expect(ctx.fd.process.pinnedVm).toBe(4);
    expect(child.pinnedVm).toBe(0);
    child.user.rlimitPages = Number.POSITIVE_INFINITY;
    child.exit();
  });
});
