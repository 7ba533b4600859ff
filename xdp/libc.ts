/**
 * The XDP driver's view of libc: the shared table and handle (stacks/sys/libc.ts, re-exported
 * here for the driver's modules) plus the XDP errno advice: `syscallError()` maps a failed
 * call's errno, in the context of what the driver was doing, to the typed error whose message
 * says what to do.
 *
 * @module
 */

import {
  cString,
  EACCES,
  EAFNOSUPPORT,
  EBUSY,
  EEXIST,
  ENOBUFS,
  ENODEV,
  ENOMEM,
  ENXIO,
  EOPNOTSUPP,
  EPERM,
  errno,
  errnoName,
  errnoText,
  libc,
  mmap,
  OsError,
  RLIM_INFINITY,
  RLIMIT_MEMLOCK,
} from "../stacks/sys/libc.ts";

export * from "../stacks/sys/libc.ts";

/** What the failing call was doing; selects the advice in the error message. */
export type SyscallContext =
  | "attach" // BPF_LINK_CREATE of the XDP program on an interface
  | "bind" // bind() of an AF_XDP socket to a queue
  | "zerocopy" // bind() with XDP_ZEROCOPY
  | "umem" // mmap/XDP_UMEM_REG of the packet buffer
  | "socket" // socket(AF_XDP)
  | "bpf" // other bpf(2) commands
  | "other";

/**
 * Base of every error the XDP driver throws; `errno` is 0 when no syscall was involved,
 * `operation` is the call that failed, e.g. "bpf(BPF_LINK_CREATE)".
 */
export class XdpError extends OsError {}

/** The errors below: message "<call> failed (<ERRNO>): <detail><advice>". */
class XdpErrnoError extends XdpError {
  constructor(operation: string, errnoValue: number, detail: string, advice: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}${advice}`,
    );
  }
}

/** EPERM/EACCES: the process lacks privileges. */
export class XdpPermissionError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "needs root, or CAP_NET_ADMIN + " +
        "CAP_BPF (+ CAP_NET_RAW for AF_XDP, CAP_IPC_LOCK for large UMEMs): run with sudo or " +
        "`setcap cap_net_admin,cap_bpf,cap_net_raw,cap_ipc_lock+ep $(which deno)`",
    );
  }
}

/** ENODEV/ENXIO: the interface or queue does not exist. */
export class XdpNoDeviceError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "no such interface or queue: " +
        "check the name with `ip link show` and the queue count with `ethtool -l IFNAME`",
    );
  }
}

/** EBUSY/EEXIST on attach: another XDP program (or AF_XDP socket on the queue) holds it. */
export class XdpAlreadyAttachedError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "XDP is already attached by " +
        "someone else: `ip link show dev IFNAME` shows it (look for 'xdp'/'prog/xdp id N'), " +
        "`bpftool net show` shows links; detach a legacy program with " +
        "`ip link set dev IFNAME xdp off` or stop the process that owns the BPF link",
    );
  }
}

/** EBUSY on bind: another AF_XDP socket is bound to the queue (or a previous one is not gone). */
export class XdpQueueBusyError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "the queue is already used by " +
        "another AF_XDP socket (another process, or this one without close()): stop it, or pick " +
        "another queue",
    );
  }
}

/** ENOBUFS/ENOMEM while registering the UMEM: the locked-memory limit is too low. */
export class XdpMemlockError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "the UMEM exceeds the " +
        "locked-memory limit: raise RLIMIT_MEMLOCK (`ulimit -l unlimited`; done automatically " +
        "when running as root) or use fewer/smaller frames (ringSize, frameSize)",
    );
  }
}

/** EAFNOSUPPORT: the kernel has no AF_XDP. */
export class XdpUnsupportedError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "this kernel has no AF_XDP " +
        "(needs Linux >= 4.18 built with CONFIG_XDP_SOCKETS=y); use the TAP link instead",
    );
  }
}

/** EOPNOTSUPP on a zero-copy bind: the driver cannot do zero-copy (the link falls back). */
export class XdpZeroCopyUnsupportedError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      detail,
      "the driver does not support " +
        "AF_XDP zero-copy; falling back to copy mode (pass mode: 'copy' to silence this)",
    );
  }
}

/** Any other failure of a system call. */
export class XdpSyscallError extends XdpErrnoError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(operation, errnoValue, detail, errnoText(errnoValue));
  }
}

/**
 * Maps a failed call's errno to the typed error whose message says what to do. `detail`
 * names the object (e.g. "interface veth0 queue 0") and ends with ": " when given.
 */
export function syscallError(
  operation: string,
  errnoValue: number,
  context: SyscallContext,
  detail = "",
): XdpError {
  const d = detail === "" ? "" : `${detail}: `;
  switch (errnoValue) {
    case EPERM:
    case EACCES:
      return new XdpPermissionError(operation, errnoValue, d);
    case ENODEV:
    case ENXIO:
      return new XdpNoDeviceError(operation, errnoValue, d);
    case EBUSY:
    case EEXIST:
      if (context === "bind" || context === "zerocopy") {
        return new XdpQueueBusyError(operation, errnoValue, d);
      }
      if (context === "attach") return new XdpAlreadyAttachedError(operation, errnoValue, d);
      break;
    case ENOBUFS:
    case ENOMEM:
      if (context === "umem") return new XdpMemlockError(operation, errnoValue, d);
      break;
    case EAFNOSUPPORT:
      return new XdpUnsupportedError(operation, errnoValue, d);
    case EOPNOTSUPP:
      if (context === "zerocopy") {
        return new XdpZeroCopyUnsupportedError(operation, errnoValue, d);
      }
      break;
  }
  return new XdpSyscallError(operation, errnoValue, d);
}

/** Throws the mapped error for the current errno when `result` is negative. */
export function check(
  result: number | bigint,
  operation: string,
  context: SyscallContext,
  detail = "",
): number {
  const n = Number(result);
  if (n < 0) throw syscallError(operation, errno(), context, detail);
  return n;
}

/** The interface index of `ifname`; throws `XdpNoDeviceError` when there is none. */
export function ifNameToIndex(ifname: string): number {
  const index = libc().if_nametoindex(cString(ifname));
  if (index === 0) {
    throw syscallError("if_nametoindex", errno() || ENODEV, "other", `interface ${ifname}`);
  }
  return index;
}

/**
 * Raises RLIMIT_MEMLOCK to infinity when allowed (root/CAP_SYS_RESOURCE); returns true when the
 * limit is now unlimited. Older kernels charge the UMEM to this limit (pitfall 8).
 */
export function raiseMemlockLimit(): boolean {
  const c = libc();
  const rl = new BigUint64Array(2);
  const bytes = new Uint8Array(rl.buffer);
  if (c.getrlimit(RLIMIT_MEMLOCK, bytes) === 0 && rl[0] === RLIM_INFINITY) return true;
  rl[0] = RLIM_INFINITY;
  rl[1] = RLIM_INFINITY;
  return c.setrlimit(RLIMIT_MEMLOCK, bytes) === 0;
}

/** mmap(2) that throws the mapped error; returns the mapping's address. */
export function mmapChecked(
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
  context: SyscallContext,
  detail: string,
): Deno.PointerObject {
  const p = mmap(length, prot, flags, fd, offset);
  if (p === null) throw syscallError("mmap", errno(), context, detail);
  return p;
}
