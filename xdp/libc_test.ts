import assert from "node:assert/strict";
import {
  EACCES,
  EAFNOSUPPORT,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOBUFS,
  ENODEV,
  ENOMEM,
  EOPNOTSUPP,
  EPERM,
  syscallError,
  XdpAlreadyAttachedError,
  XdpError,
  XdpMemlockError,
  XdpNoDeviceError,
  XdpPermissionError,
  XdpQueueBusyError,
  XdpSyscallError,
  XdpUnsupportedError,
  XdpZeroCopyUnsupportedError,
} from "./libc.ts";

Deno.test("syscallError() maps EPERM/EACCES to XdpPermissionError naming the capabilities", () => {
  for (const e of [EPERM, EACCES]) {
    const err = syscallError("bpf(BPF_PROG_LOAD)", e, "bpf");
    assert.ok(err instanceof XdpPermissionError);
    assert.equal(err.errno, e);
    assert.match(err.message, /root, or CAP_NET_ADMIN \+ CAP_BPF/);
  }
});

Deno.test("syscallError() maps EBUSY/EEXIST on attach to XdpAlreadyAttachedError with the fix", () => {
  for (const e of [EBUSY, EEXIST]) {
    const err = syscallError("bpf(BPF_LINK_CREATE)", e, "attach", "interface veth9");
    assert.ok(err instanceof XdpAlreadyAttachedError);
    assert.match(err.message, /interface veth9/);
    assert.match(err.message, /ip link show/);
    assert.match(err.message, /xdp off/);
  }
});

Deno.test("syscallError() maps EBUSY on bind to XdpQueueBusyError, not 'already attached'", () => {
  const err = syscallError("bind(AF_XDP)", EBUSY, "bind");
  assert.ok(err instanceof XdpQueueBusyError);
  assert.ok(!(err instanceof XdpAlreadyAttachedError));
});

Deno.test("syscallError() maps ENOBUFS/ENOMEM on the UMEM to XdpMemlockError (RLIMIT_MEMLOCK)", () => {
  for (const e of [ENOBUFS, ENOMEM]) {
    const err = syscallError("setsockopt(XDP_UMEM_REG)", e, "umem");
    assert.ok(err instanceof XdpMemlockError);
    assert.match(err.message, /RLIMIT_MEMLOCK/);
  }
  // Elsewhere ENOMEM is just a syscall error.
  assert.ok(syscallError("mmap", ENOMEM, "other") instanceof XdpSyscallError);
});

Deno.test("syscallError() maps ENODEV, EAFNOSUPPORT and zero-copy EOPNOTSUPP to their classes", () => {
  assert.ok(syscallError("bind(AF_XDP)", ENODEV, "bind") instanceof XdpNoDeviceError);
  const af = syscallError("socket(AF_XDP)", EAFNOSUPPORT, "socket");
  assert.ok(af instanceof XdpUnsupportedError);
  assert.match(af.message, /CONFIG_XDP_SOCKETS/);
  const zc = syscallError("bind(AF_XDP)", EOPNOTSUPP, "zerocopy");
  assert.ok(zc instanceof XdpZeroCopyUnsupportedError);
  assert.match(zc.message, /falling back to copy/);
  assert.ok(
    !(syscallError("bind(AF_XDP)", EOPNOTSUPP, "bind") instanceof
      XdpZeroCopyUnsupportedError),
  );
});

Deno.test("syscallError() keeps the errno and operation and includes strerror for the rest", () => {
  const err = syscallError("setsockopt(XDP_RX_RING)", EINVAL, "other");
  assert.ok(err instanceof XdpError);
  assert.equal(err.operation, "setsockopt(XDP_RX_RING)");
  assert.match(err.message, /EINVAL/);
  assert.match(err.message, /Invalid argument/);
});
