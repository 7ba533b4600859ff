/**
 * The one FFI table for libc (glibc, x86-64 Linux), its one lazily opened handle, errno and the
 * errno facts every typed error is built on. Users: the AF_XDP driver and TAP fallback (xdp/),
 * the NK device shared memory (nsm/shm.ts). Each domain keeps its own error classes and advice
 * (xdp/libc.ts, nsm/os_error.ts) on top of `OsError`.
 *
 * Hot-path rules (measured, see shared/notes/af_xdp.md): 64-bit integer parameters (`usize`,
 * `u64`, `i64`) leave V8's fast call path, so every `size_t` of a symbol called per batch
 * (`sendto`, `recvfrom`, `poll`) is declared `pointer` and passed a pointer precomputed once
 * with `Deno.UnsafePointer.create()`. `nonblocking: true` costs a thread hop per call, so only
 * `poll_wait` (idle waits) has it. Everything else is a cold path (setup, once per device).
 *
 * @module
 */

/** libc symbols; the comment above each is the C prototype, one comment per parameter. */
export const LIBC_SYMBOLS = {
  /** long syscall(long number, ...): used for bpf(2) (number 321 on x86-64). Cold path. */
  syscall: {
    parameters: [
      "i64", // long number: SYS_bpf
      "i64", // int cmd
      "buffer", // union bpf_attr *attr
      "u64", // unsigned int size
    ],
    result: "i64",
  },
  /** int socket(int domain, int type, int protocol) */
  socket: {
    parameters: [
      "i32", // int domain
      "i32", // int type
      "i32", // int protocol
    ],
    result: "i32",
  },
  /** int setsockopt(int sockfd, int level, int optname, const void *optval, socklen_t optlen) */
  setsockopt: {
    parameters: [
      "i32", // int sockfd
      "i32", // int level
      "i32", // int optname
      "buffer", // const void *optval
      "u32", // socklen_t optlen
    ],
    result: "i32",
  },
  /** int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen) */
  getsockopt: {
    parameters: [
      "i32", // int sockfd
      "i32", // int level
      "i32", // int optname
      "buffer", // void *optval
      "buffer", // socklen_t *optlen: a 4-byte in/out buffer
    ],
    result: "i32",
  },
  /** int getsockname(int sockfd, struct sockaddr *addr, socklen_t *addrlen) */
  getsockname: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen: a 4-byte in/out buffer
    ],
    result: "i32",
  },
  /** int getpeername(int sockfd, struct sockaddr *addr, socklen_t *addrlen) */
  getpeername: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen: a 4-byte in/out buffer
    ],
    result: "i32",
  },
  /** int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen) */
  bind: {
    parameters: [
      "i32", // int sockfd
      "buffer", // const struct sockaddr *addr
      "u32", // socklen_t addrlen
    ],
    result: "i32",
  },
  /**
   * ssize_t sendto(int sockfd, const void *buf, size_t len, int flags,
   * const struct sockaddr *dest_addr, socklen_t addrlen): the AF_XDP TX kick (hot path).
   * The result is read as 32 bits (enough for -1 and small counts).
   */
  sendto: {
    parameters: [
      "i32", // int sockfd
      "pointer", // const void *buf
      "pointer", // size_t len: declared pointer to stay on the fast call path
      "i32", // int flags
      "pointer", // const struct sockaddr *dest_addr
      "u32", // socklen_t addrlen
    ],
    result: "i32",
  },
  /**
   * ssize_t recvfrom(int sockfd, void *buf, size_t len, int flags, struct sockaddr *src_addr,
   * socklen_t *addrlen): the AF_XDP RX/fill wakeup (hot path).
   */
  recvfrom: {
    parameters: [
      "i32", // int sockfd
      "pointer", // void *buf
      "pointer", // size_t len: declared pointer to stay on the fast call path
      "i32", // int flags
      "pointer", // struct sockaddr *src_addr
      "pointer", // socklen_t *addrlen
    ],
    result: "i32",
  },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout): busy-poll check (hot path). */
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds
      "pointer", // nfds_t nfds: declared pointer to stay on the fast call path
      "i32", // int timeout (ms)
    ],
    result: "i32",
  },
  /**
   * int poll(struct pollfd *fds, nfds_t nfds, int timeout) on Deno's thread pool, returning a
   * promise: only for idle waits (8–38 µs per call).
   */
  poll_wait: {
    name: "poll",
    parameters: [
      "buffer", // struct pollfd *fds
      "usize", // nfds_t nfds
      "i32", // int timeout (ms)
    ],
    result: "i32",
    nonblocking: true,
  },
  /** int open(const char *pathname, int flags, mode_t mode) */
  open: {
    parameters: [
      "buffer", // const char *pathname: NUL-terminated
      "i32", // int flags
      "u32", // mode_t mode
    ],
    result: "i32",
  },
  /** int close(int fd) */
  close: {
    parameters: [
      "i32", // int fd
    ],
    result: "i32",
  },
  /** ssize_t read(int fd, void *buf, size_t count): TAP fallback, not the XDP hot path. */
  read: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** ssize_t write(int fd, const void *buf, size_t count): TAP fallback. */
  write: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  /** int ftruncate(int fd, off_t length) */
  ftruncate: {
    parameters: [
      "i32", // int fd
      "i64", // off_t length
    ],
    result: "i32",
  },
  /** off_t lseek(int fd, off_t offset, int whence) */
  lseek: {
    parameters: [
      "i32", // int fd
      "i64", // off_t offset
      "i32", // int whence
    ],
    result: "i64",
  },
  /** int unlink(const char *pathname) */
  unlink: {
    parameters: [
      "buffer", // const char *pathname: NUL-terminated
    ],
    result: "i32",
  },
  /** int eventfd(unsigned int initval, int flags): the interrupt of nsm/sleeper.ts. Cold path. */
  eventfd: {
    parameters: [
      "u32", // unsigned int initval
      "i32", // int flags: EFD_NONBLOCK | EFD_CLOEXEC
    ],
    result: "i32",
  },
  /** int memfd_create(const char *name, unsigned int flags) */
  memfd_create: {
    parameters: [
      "buffer", // const char *name: NUL-terminated, for /proc display only
      "u32", // unsigned int flags
    ],
    result: "i32",
  },
  /**
   * void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset); returns
   * MAP_FAILED ((void *)-1) on error. Cold path, so 64-bit parameters are fine.
   */
  mmap: {
    parameters: [
      "pointer", // void *addr: NULL, the kernel chooses
      "usize", // size_t length
      "i32", // int prot
      "i32", // int flags
      "i32", // int fd
      "i64", // off_t offset
    ],
    result: "pointer",
  },
  /** int munmap(void *addr, size_t length) */
  munmap: {
    parameters: [
      "pointer", // void *addr
      "usize", // size_t length
    ],
    result: "i32",
  },
  /** unsigned int if_nametoindex(const char *ifname): 0 when there is no such interface. */
  if_nametoindex: {
    parameters: [
      "buffer", // const char *ifname: NUL-terminated
    ],
    result: "u32",
  },
  /** int ioctl(int fd, unsigned long request, void *argp) */
  ioctl: {
    parameters: [
      "i32", // int fd
      "u64", // unsigned long request
      "buffer", // void *argp
    ],
    result: "i32",
  },
  /** int getrlimit(int resource, struct rlimit *rlim) */
  getrlimit: {
    parameters: [
      "i32", // int resource
      "buffer", // struct rlimit *rlim
    ],
    result: "i32",
  },
  /** int setrlimit(int resource, const struct rlimit *rlim) */
  setrlimit: {
    parameters: [
      "i32", // int resource
      "buffer", // const struct rlimit *rlim
    ],
    result: "i32",
  },
  /** pid_t getpid(void) */
  getpid: { parameters: [], result: "i32" },
  /**
   * pid_t getpid(void) on Deno's thread pool: any cheap call whose promise makes the event loop
   * park and poll its I/O driver (nsm/backend_kernel.ts `yield()`); only the round trip matters.
   */
  getpid_hop: { name: "getpid", parameters: [], result: "i32", nonblocking: true },
  /** int sched_yield(void): lets another runnable thread on this CPU go first. */
  sched_yield: { parameters: [], result: "i32" },
  /** int *__errno_location(void): errno of the calling thread. */
  __errno_location: { parameters: [], result: "pointer" },
  /** char *strerror(int errnum) */
  strerror: {
    parameters: [
      "i32", // int errnum
    ],
    result: "pointer",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libc symbols. */
export type LibcSymbols = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** An opened libc: a private handle, its symbols, idempotent close. */
export class Libc {
  #lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null;

  /** Opens libc.so.6 with LIBC_SYMBOLS (needs --allow-ffi). */
  constructor() {
    this.#lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  }

  /** The symbols; throws once closed. */
  get symbols(): LibcSymbols {
    if (this.#lib === null) {
      throw new Error("libc handle is closed: open a new Libc (or use libc()) before calling it");
    }
    return this.#lib.symbols;
  }

  /** Closes the library handle. Idempotent. */
  close(): void {
    this.#lib?.close();
    this.#lib = null;
  }
}

// The process-wide handle (opened on first use, never closed). Its symbols are cached because
// libc() is called per batch on the AF_XDP kick path.
let shared: LibcSymbols | null = null;
let errnoView: Deno.UnsafePointerView | null = null;

/** Opens the process-wide libc on first use (needs --allow-ffi) and returns its symbols. */
export function libc(): LibcSymbols {
  if (shared === null) shared = new Libc().symbols;
  return shared;
}

/**
 * The calling thread's errno; read it right after the failed call (synchronous FFI calls run
 * on the JS thread, so nothing in between can overwrite it).
 */
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
/** Bad file descriptor. */
export const EBADF = 9;
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
/** File table overflow. */
export const ENFILE = 23;
/** Too many open files. */
export const EMFILE = 24;
/** File too large. */
export const EFBIG = 27;
/** No space left on device. */
export const ENOSPC = 28;
/** File name too long. */
export const ENAMETOOLONG = 36;
/** Operation not supported. */
export const EOPNOTSUPP = 95;
/** Address family not supported by protocol. */
export const EAFNOSUPPORT = 97;
/** Network is down. */
export const ENETDOWN = 100;
/** No buffer space available. */
export const ENOBUFS = 105;

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EINTR]: "EINTR",
  [ENXIO]: "ENXIO",
  [EBADF]: "EBADF",
  [EAGAIN]: "EAGAIN",
  [ENOMEM]: "ENOMEM",
  [EACCES]: "EACCES",
  [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [ENFILE]: "ENFILE",
  [EMFILE]: "EMFILE",
  [EFBIG]: "EFBIG",
  [ENOSPC]: "ENOSPC",
  [ENAMETOOLONG]: "ENAMETOOLONG",
  [EOPNOTSUPP]: "EOPNOTSUPP",
  [EAFNOSUPPORT]: "EAFNOSUPPORT",
  [ENETDOWN]: "ENETDOWN",
  [ENOBUFS]: "ENOBUFS",
};

/** "EBUSY" for 16; "E<number>" for values not listed. */
export function errnoName(value: number): string {
  return ERRNO_NAMES[value] ?? `E${value}`;
}

/** strerror(3) of `value`, or its name when libc cannot be opened. */
export function errnoText(value: number): string {
  try {
    const p = libc().strerror(value);
    return p === null ? errnoName(value) : Deno.UnsafePointerView.getCString(p);
  } catch {
    return errnoName(value);
  }
}

/**
 * Base of every error a failed libc call becomes: which call, its errno and errno's name. The
 * domain subclasses (XdpError, NkOsError) write the message, which says what to do.
 */
export class OsError extends Error {
  /** The call that failed, e.g. "mmap" or "bpf(BPF_LINK_CREATE)". */
  readonly operation: string;
  /** The errno of the failed call, or 0 when no system call was involved. */
  readonly errno: number;
  /** The symbolic errno name ("ENOENT"), or "E<number>". */
  readonly code: string;
  /** Builds the error; `message` must say what to do. */
  constructor(operation: string, errnoValue: number, message: string) {
    super(message);
    this.name = new.target.name; // "XdpNoDeviceError" etc. without each subclass saying so
    this.operation = operation;
    this.errno = errnoValue;
    this.code = errnoName(errnoValue);
  }
}

/** A NUL-terminated UTF-8 copy of `s` for `buffer` parameters (own ArrayBuffer, see struct). */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = struct(bytes.length + 1);
  out.set(bytes);
  return out;
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

// open(2), lseek(2), memfd_create(2) flags (x86-64 Linux).
/** open(2): read and write. */
export const O_RDWR = 0o2;
/** open(2): create the file if missing. */
export const O_CREAT = 0o100;
/** open(2): fail if the file exists. */
export const O_EXCL = 0o200;
/** open(2): close on exec, so spawned children do not inherit the fd. */
export const O_CLOEXEC = 0o2000000;
/** lseek(2): relative to the end. */
export const SEEK_END = 2;
/** memfd_create(2): close on exec. */
export const MFD_CLOEXEC = 1;
/** memfd_create(2): back the file with huge pages (needs vm.nr_hugepages > 0). */
export const MFD_HUGETLB = 4;

// mmap(2) constants.
/** Pages may be read. */
export const PROT_READ = 1;
/** Pages may be written. */
export const PROT_WRITE = 2;
/** Share the mapping with every process mapping the file (AF_XDP rings, NK devices). */
export const MAP_SHARED = 0x01;
/** Private copy-on-write mapping (UMEM). */
export const MAP_PRIVATE = 0x02;
/** Not backed by a file. */
export const MAP_ANONYMOUS = 0x20;
/** Allocate huge pages. */
export const MAP_HUGETLB = 0x40000;
/** Pre-fault the pages now, not on first touch in the hot loop. */
export const MAP_POPULATE = 0x8000;
/** What mmap(2) returns on failure, as the pointer's value. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/**
 * mmap(2) with the kernel choosing the address: the mapping, or null on failure (MAP_FAILED),
 * with errno() telling why. The caller maps that errno to its domain's error.
 */
export function mmap(
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
): Deno.PointerObject | null {
  const p = libc().mmap(null, BigInt(length), prot, flags, fd, BigInt(offset));
  return p === null || Deno.UnsafePointer.value(p) === MAP_FAILED ? null : p;
}

/** RLIMIT_MEMLOCK resource number. */
export const RLIMIT_MEMLOCK = 8;
/** RLIM_INFINITY: no limit. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
