/**
 * The one FFI table for libc used by the XDP driver, the TAP fallback and the lab, plus the
 * errno → typed error mapping.
 *
 * Hot-path rules (measured, see shared/notes/af_xdp.md): 64-bit integer parameters (`usize`,
 * `u64`, `i64`) leave V8's fast call path, so every `size_t` of a symbol called per batch
 * (`sendto`, `recvfrom`, `poll`) is declared `pointer` and passed a pointer precomputed once
 * with `Deno.UnsafePointer.create()`. `nonblocking: true` costs a thread hop per call, so only
 * `poll_wait` (idle waits) has it.
 *
 * @module
 */

/** libc symbols; each comment is the C prototype. */
export const LIBC_SYMBOLS = {
  /**
   * `long syscall(long number, int cmd, union bpf_attr *attr, unsigned int size)`: bpf(2)
   * (number 321 on x86-64). Cold path, so 64-bit parameters are fine here.
   */
  syscall: { parameters: ["i64", "i64", "buffer", "u64"], result: "i64" },
  /** `int socket(int domain, int type, int protocol)` */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /**
   * `int setsockopt(int sockfd, int level, int optname, const void *optval,
   * socklen_t optlen)`
   */
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  /**
   * `int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen)`;
   * `optlen` is a 4-byte in/out buffer.
   */
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /** `int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen)` */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /**
   * `void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)`;
   * returns `MAP_FAILED` ((void *)-1) on error. Cold path.
   */
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  /** `int munmap(void *addr, size_t length)` */
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  /**
   * `ssize_t sendto(int sockfd, const void *buf, size_t len (declared pointer: fast call),
   * int flags, const struct sockaddr *dest_addr, socklen_t addrlen)`. The AF_XDP TX kick;
   * the result is read as 32 bits (enough for -1 and small counts).
   */
  sendto: {
    parameters: ["i32", "pointer", "pointer", "i32", "pointer", "u32"],
    result: "i32",
  },
  /**
   * `ssize_t recvfrom(int sockfd, void *buf, size_t len (declared pointer), int flags,
   * struct sockaddr *src_addr, socklen_t *addrlen)`. The AF_XDP RX/fill wakeup.
   */
  recvfrom: {
    parameters: ["i32", "pointer", "pointer", "i32", "pointer", "pointer"],
    result: "i32",
  },
  /** `int poll(struct pollfd *fds, nfds_t nfds (declared pointer), int timeout)` */
  poll: { parameters: ["buffer", "pointer", "i32"], result: "i32" },
  /**
   * `int poll(struct pollfd *fds, nfds_t nfds, int timeout)` on Deno's thread pool, returning
   * a promise: only for idle waits (8–38 µs per call).
   */
  poll_wait: {
    name: "poll",
    parameters: ["buffer", "usize", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** `int close(int fd)` */
  close: { parameters: ["i32"], result: "i32" },
  /** `int open(const char *pathname, int flags, mode_t mode)` */
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  /** `ssize_t read(int fd, void *buf, size_t count)` (TAP fallback; not the XDP hot path) */
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** `ssize_t write(int fd, const void *buf, size_t count)` (TAP fallback) */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** `unsigned int if_nametoindex(const char *ifname)`; 0 when there is no such interface. */
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  /** `int ioctl(int fd, unsigned long request, void *argp)` */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** `int getrlimit(int resource, struct rlimit *rlim)` */
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  /** `int setrlimit(int resource, const struct rlimit *rlim)` */
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  /** `int *__errno_location(void)`: the calling thread's errno. */
  __errno_location: { parameters: [], result: "pointer" },
  /** `char *strerror(int errnum)` */
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null = null;
let errnoView: Deno.UnsafePointerView | null = null;

/** Opens libc once (needs --allow-ffi) and returns its symbols. */
export function libc(): Libc {
  if (lib === null) {
    lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  }
  return lib.symbols;
}

/** The calling thread's errno (read right after a failed call; FFI runs on the JS thread). */
export function errno(): number {
  if (errnoView === null) {
    const p = libc().__errno_location();
    if (p === null) return 0;
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32();
}

// errno values on Linux (asm-generic/errno-base.h, errno.h).
/** Operation not permitted. */
export const EPERM = 1;
/** No such file or directory. */
export const ENOENT = 2;
/** Interrupted system call. */
export const EINTR = 4;
/** No such device or address. */
export const ENXIO = 6;
/** Try again. */
export const EAGAIN = 11;
/** Out of memory. */
export const ENOMEM = 12;
/** Permission denied. */
export const EACCES = 13;
/** Device or resource busy. */
export const EBUSY = 16;
/** File exists. */
export const EEXIST = 17;
/** No such device. */
export const ENODEV = 19;
/** Invalid argument. */
export const EINVAL = 22;
/** Operation not supported. */
export const EOPNOTSUPP = 95;
/** Address family not supported by protocol. */
export const EAFNOSUPPORT = 97;
/** Network is down. */
export const ENETDOWN = 100;
/** No buffer space available. */
export const ENOBUFS = 105;

/** What the failing call was doing; selects the advice in the error message. */
export type SyscallContext =
  | "attach" // BPF_LINK_CREATE of the XDP program on an interface
  | "bind" // bind() of an AF_XDP socket to a queue
  | "zerocopy" // bind() with XDP_ZEROCOPY
  | "umem" // mmap/XDP_UMEM_REG of the packet buffer
  | "socket" // socket(AF_XDP)
  | "bpf" // other bpf(2) commands
  | "other";

/** Base of every error the XDP driver throws; `errno` is 0 when no syscall was involved. */
export class XdpError extends Error {
  /** The errno of the failed call, or 0. */
  readonly errno: number;
  /** The call that failed, e.g. "bpf(BPF_LINK_CREATE)". */
  readonly operation: string;
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, message: string) {
    super(message);
    this.name = "XdpError";
    this.errno = errnoValue;
    this.operation = operation;
  }
}

/** EPERM/EACCES: the process lacks privileges. */
export class XdpPermissionError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}needs root, or CAP_NET_ADMIN + ` +
        "CAP_BPF (+ CAP_NET_RAW for AF_XDP, CAP_IPC_LOCK for large UMEMs): run with sudo or " +
        "`setcap cap_net_admin,cap_bpf,cap_net_raw,cap_ipc_lock+ep $(which deno)`",
    );
    this.name = "XdpPermissionError";
  }
}

/** ENODEV/ENXIO: the interface or queue does not exist. */
export class XdpNoDeviceError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}no such interface or queue: ` +
        "check the name with `ip link show` and the queue count with `ethtool -l IFNAME`",
    );
    this.name = "XdpNoDeviceError";
  }
}

/** EBUSY/EEXIST on attach: another XDP program (or AF_XDP socket on the queue) holds it. */
export class XdpAlreadyAttachedError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}XDP is already attached by ` +
        "someone else: `ip link show dev IFNAME` shows it (look for 'xdp'/'prog/xdp id N'), " +
        "`bpftool net show` shows links; detach a legacy program with " +
        "`ip link set dev IFNAME xdp off` or stop the process that owns the BPF link",
    );
    this.name = "XdpAlreadyAttachedError";
  }
}

/** EBUSY on bind: another AF_XDP socket is bound to the queue (or a previous one is not gone). */
export class XdpQueueBusyError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}the queue is already used by ` +
        "another AF_XDP socket (another process, or this one without close()): stop it, or pick " +
        "another queue",
    );
    this.name = "XdpQueueBusyError";
  }
}

/** ENOBUFS/ENOMEM while registering the UMEM: the locked-memory limit is too low. */
export class XdpMemlockError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}the UMEM exceeds the ` +
        "locked-memory limit: raise RLIMIT_MEMLOCK (`ulimit -l unlimited`; done automatically " +
        "when running as root) or use fewer/smaller frames (ringSize, frameSize)",
    );
    this.name = "XdpMemlockError";
  }
}

/** EAFNOSUPPORT: the kernel has no AF_XDP. */
export class XdpUnsupportedError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}this kernel has no AF_XDP ` +
        "(needs Linux >= 4.18 built with CONFIG_XDP_SOCKETS=y); use the TAP link instead",
    );
    this.name = "XdpUnsupportedError";
  }
}

/** EOPNOTSUPP on a zero-copy bind: the driver cannot do zero-copy (the link falls back). */
export class XdpZeroCopyUnsupportedError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}the driver does not support ` +
        "AF_XDP zero-copy; falling back to copy mode (pass mode: 'copy' to silence this)",
    );
    this.name = "XdpZeroCopyUnsupportedError";
  }
}

/** Any other failure of a system call. */
export class XdpSyscallError extends XdpError {
  /** Builds the error. */
  constructor(operation: string, errnoValue: number, detail: string) {
    super(
      operation,
      errnoValue,
      `${operation} failed (${errnoName(errnoValue)}): ${detail}${errnoText(errnoValue)}`,
    );
    this.name = "XdpSyscallError";
  }
}

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EINTR]: "EINTR",
  [ENXIO]: "ENXIO",
  [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [EOPNOTSUPP]: "EOPNOTSUPP",
  [EAFNOSUPPORT]: "EAFNOSUPPORT",
  [ENETDOWN]: "ENETDOWN",
  [ENOBUFS]: "ENOBUFS",
};

/** "EBUSY" for 16, "errno 123" for names not listed. */
export function errnoName(value: number): string {
  return ERRNO_NAMES[value] ?? `errno ${value}`;
}

function errnoText(value: number): string {
  try {
    const p = libc().strerror(value);
    return p === null ? errnoName(value) : Deno.UnsafePointerView.getCString(p);
  } catch {
    return errnoName(value);
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

/** A NUL-terminated C string in a fresh buffer. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = struct(bytes.length + 1);
  out.set(bytes);
  return out;
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
 * A zeroed buffer for a kernel struct. Backed by its own ArrayBuffer so V8 keeps it off the
 * heap and its address (for u64 pointer fields) stays fixed.
 */
export function struct(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new ArrayBuffer(size));
}

/** The address of `buf` as a number (for u64 pointer fields of kernel structs). */
export function addressOf(buf: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** RLIMIT_MEMLOCK resource number. */
export const RLIMIT_MEMLOCK = 8;
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

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

// mmap constants.
/** Pages may be read. */
export const PROT_READ = 1;
/** Pages may be written. */
export const PROT_WRITE = 2;
/** Share the mapping (AF_XDP rings). */
export const MAP_SHARED = 0x01;
/** Private copy-on-write mapping (UMEM). */
export const MAP_PRIVATE = 0x02;
/** Not backed by a file. */
export const MAP_ANONYMOUS = 0x20;
/** Allocate huge pages. */
export const MAP_HUGETLB = 0x40000;
/** Pre-fault the pages. */
export const MAP_POPULATE = 0x8000;

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

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
  const p = libc().mmap(null, BigInt(length), prot, flags, fd, BigInt(offset));
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
    throw syscallError("mmap", errno(), context, detail);
  }
  return p;
}
