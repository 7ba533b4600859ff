/**
 * The few libc calls NK devices need (shared memory setup only; nothing here is on a hot path).
 *
 * One symbol table for libc, one errno mapper, one lazily opened library handle. `xdp/libc.ts`
 * carries a larger libc table; the two are meant to merge into one later (see nsm/README.md).
 *
 * Parameters typed `usize`/`i64` leave V8's fast FFI path (af_xdp notes, pitfall 1); that costs a
 * few hundred nanoseconds per call, irrelevant for calls made once per device.
 *
 * @module
 */

/** libc symbols used by nsm/shm.ts (x86-64 Linux, glibc). */
export const LIBC_SYMBOLS = {
  /** int open(const char *path, int flags, mode_t mode) */
  open: {
    parameters: [
      "buffer", // const char *path: NUL-terminated
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
  /** void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) */
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
  /** int unlink(const char *path) */
  unlink: {
    parameters: [
      "buffer", // const char *path: NUL-terminated
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
  /** pid_t getpid(void) */
  getpid: { parameters: [], result: "i32" },
  /** int *__errno_location(void): errno of the calling thread */
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** open(2) flags (x86-64 Linux). */
export const O_RDWR = 0o2;
/** open(2): create the file if missing. */
export const O_CREAT = 0o100;
/** open(2): fail if the file exists. */
export const O_EXCL = 0o200;
/** open(2): close on exec, so spawned children do not inherit the fd. */
export const O_CLOEXEC = 0o2000000;
/** mmap(2) protection: readable. */
export const PROT_READ = 1;
/** mmap(2) protection: writable. */
export const PROT_WRITE = 2;
/** mmap(2): changes are shared with every process mapping the file. */
export const MAP_SHARED = 1;
/** mmap(2): prefault the pages now, not on first touch in the hot loop. */
export const MAP_POPULATE = 0x8000;
/** memfd_create(2): close on exec. */
export const MFD_CLOEXEC = 1;
/** memfd_create(2): back the file with huge pages (needs vm.nr_hugepages > 0). */
export const MFD_HUGETLB = 4;
/** lseek(2): relative to the end. */
export const SEEK_END = 2;

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  36: "ENAMETOOLONG",
};

/** A libc call failed; `errno` and `code` say why, the message says what to try. */
export class NkOsError extends Error {
  /** The failing call, e.g. "mmap". */
  readonly call: string;
  /** The raw errno value. */
  readonly errno: number;
  /** Symbolic errno name ("ENOENT") or "E<number>". */
  readonly code: string;
  /** Builds the error; the message carries what to do. */
  constructor(call: string, errno: number, what: string, hint: string) {
    const code = ERRNO_NAMES[errno] ?? `E${errno}`;
    super(`${call}(${what}) failed with ${code} (errno ${errno}): ${hint}`);
    this.name = "NkOsError";
    this.call = call;
    this.errno = errno;
    this.code = code;
  }
}

/** Hints per errno so each error message says what to do. */
function hintFor(errno: number): string {
  switch (errno) {
    case 2:
      return "the path does not exist; check that the NSM created the device and its path";
    case 13:
    case 1:
      return "permission denied; run both processes as the same user or fix the file mode";
    case 17:
      return "the file already exists; pick another device name or unlink the stale one";
    case 12:
      return "out of memory or no huge pages (vm.nr_hugepages = 0); use ordinary pages or a smaller device";
    case 28:
      return "no space on the tmpfs/hugetlbfs mount; make the device smaller or free /dev/shm";
    case 22:
      return "invalid argument; check sizes (page/huge-page multiple) and flags";
    default:
      return "see the errno for the cause";
  }
}

/** The opened libc: a private handle, symbols, idempotent close. */
export class Libc {
  #lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null;

  /** Opens libc.so.6 with LIBC_SYMBOLS. */
  constructor() {
    this.#lib = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  }

  /** The symbols; throws once closed. */
  get symbols(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"] {
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

/** The process-wide handle every NK device uses (opened on first use, never closed). */
let shared: Libc | null = null;

/** Opens libc on first use and returns its symbols. */
export function libc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"] {
  shared ??= new Libc();
  return shared.symbols;
}

/** Reads errno of the last failed libc call on this thread. */
export function lastErrno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
}

/** The errno->Error mapper: builds an NkOsError for `call` from the current errno. */
export function osError(call: string, what: string): NkOsError {
  const errno = lastErrno();
  return new NkOsError(call, errno, what, hintFor(errno));
}

/** NUL-terminated UTF-8 copy of `s` for `buffer` parameters. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
