/**
 * Shared memory mappings for NK devices: a file mapped `MAP_SHARED` by two processes.
 *
 * Backing, chosen by `create()` (option `hugePages`):
 * 1. a file on a hugetlbfs mount, when one is mounted and has enough free huge pages;
 * 2. `memfd_create(MFD_HUGETLB)` when `vm.nr_hugepages > 0` but nothing is mounted; the other
 *    process attaches through `/proc/<pid>/fd/<fd>` of the creator (same user required);
 * 3. an ordinary file under `/dev/shm` (tmpfs, 4 KiB pages): the default on machines without
 *    huge pages, and the fallback whenever 1 and 2 fail (ENOMEM: no huge pages reserved).
 *
 * Unlink policy: the creator owns the name. `create()` uses O_EXCL (a stale file from a crashed
 * NSM is an error unless `replaceStale` is set); the creator's `close()` unlinks the file, so the
 * name disappears with the device while an attached peer keeps its mapping until it closes too
 * (the kernel frees the pages after the last munmap). `unlink()` can be called earlier, e.g.
 * right after the guest attached, so a crash of both sides leaves nothing behind. Openers never
 * unlink.
 *
 * The mapping is wrapped with `Deno.UnsafePointerView.getArrayBuffer`: that buffer does not own
 * the memory, so this object keeps the mapping alive until `close()`, which detaches the buffer
 * (views over it become empty instead of pointing at unmapped memory) and then unmaps.
 * mmap returns page-aligned addresses, so every 64-byte offset in the layout is cache-line aligned.
 *
 * @module
 */

import {
  cString,
  ENOENT,
  libc,
  MAP_POPULATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  MFD_HUGETLB,
  mmap,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
  SEEK_END,
} from "../stacks/sys/libc.ts";
import { NkOsError, osError } from "./os_error.ts";

/** Which memory backs a mapping ("dev-shm": an ordinary tmpfs file, 4 KiB pages). */
export type ShmBacking = "dev-shm" | "hugetlbfs" | "memfd-hugetlb";

/** Huge page preference: try them and fall back, never try, or fail without them. */
export type HugePagePolicy = "auto" | "never" | "require";

/** Options of `SharedMemory.create`. */
export interface ShmCreateOptions {
  /** File name without directory, e.g. "nk-guest1" (letters, digits, '-', '_', '.'). */
  readonly name: string;
  /** Bytes to map; rounded up to the page (or huge page) size. */
  readonly size: number;
  /** Default "auto". */
  readonly hugePages?: HugePagePolicy;
  /** Directory for the ordinary backing; default "/dev/shm". */
  readonly dir?: string;
  /** Unlink an existing file of that name first (a crashed creator's leftover). Default false. */
  readonly replaceStale?: boolean;
}

/** A request that cannot be satisfied as asked; the message says what to change. */
export class ShmConfigError extends Error {
  /** Builds the error; the message carries what to do. */
  constructor(message: string) {
    super(message);
    this.name = "ShmConfigError";
  }
}

const PAGE = 4096;

/** Huge page facts of this machine, read from /proc. */
export interface HugePageInfo {
  /** Huge page size in bytes (0 when unknown). */
  readonly pageSize: number;
  /** Free huge pages (HugePages_Free). */
  readonly free: number;
  /** A hugetlbfs mount point, or null. */
  readonly mount: string | null;
}

/** Reads /proc/meminfo and /proc/mounts; zeros when unreadable. */
export function hugePageInfo(): HugePageInfo {
  let pageSize = 0;
  let free = 0;
  let mount: string | null = null;
  try {
    const meminfo = Deno.readTextFileSync("/proc/meminfo");
    const size = /^Hugepagesize:\s+(\d+) kB/m.exec(meminfo);
    const fr = /^HugePages_Free:\s+(\d+)/m.exec(meminfo);
    pageSize = size?.[1] !== undefined ? Number(size[1]) * 1024 : 0;
    free = fr?.[1] !== undefined ? Number(fr[1]) : 0;
    for (const line of Deno.readTextFileSync("/proc/mounts").split("\n")) {
      const f = line.split(" ");
      if (f[2] === "hugetlbfs" && f[1] !== undefined) {
        mount = f[1];
        break;
      }
    }
  } catch {
    // Not Linux or /proc hidden: behave as if there were no huge pages.
  }
  return { pageSize, free, mount };
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** A `MAP_SHARED` mapping of a file another process can map by `path`. */
export class SharedMemory {
  /** Path another process passes to `SharedMemory.open` (for memfd: /proc/<pid>/fd/<fd>). */
  readonly path: string;
  /** Mapped bytes (a multiple of the page size). */
  readonly size: number;
  /** What backs the mapping. */
  readonly backing: ShmBacking;
  /** True for the process that created the file (the one that unlinks it). */
  readonly owner: boolean;
  #fd: number;
  #ptr: Deno.PointerObject | null;
  #buffer: ArrayBuffer;
  #unlinkPath: string | null;

  private constructor(
    path: string,
    size: number,
    backing: ShmBacking,
    owner: boolean,
    fd: number,
    ptr: Deno.PointerObject,
    unlinkPath: string | null,
  ) {
    this.path = path;
    this.size = size;
    this.backing = backing;
    this.owner = owner;
    this.#fd = fd;
    this.#ptr = ptr;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(ptr, size);
    this.#unlinkPath = unlinkPath;
  }

  /** The mapped memory. Empty (detached) after `close()`. */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }

  /** True until `close()`. */
  get open(): boolean {
    return this.#ptr !== null;
  }

  /**
   * Creates, sizes and maps a new shared file, zero-filled. Throws `NkOsError` (errno) or
   * `ShmConfigError` (hugePages "require" without huge pages, bad name).
   */
  static create(options: ShmCreateOptions): SharedMemory {
    const { name, size } = options;
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(name)) {
      throw new ShmConfigError(
        `shared memory name ${
          JSON.stringify(name)
        } is invalid: use 1-200 letters, digits, '.', '-', '_'`,
      );
    }
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new ShmConfigError(`shared memory size ${size} is invalid: pass a positive integer`);
    }
    const policy = options.hugePages ?? "auto";
    if (policy !== "never") {
      const info = hugePageInfo();
      const hugeSize = info.pageSize > 0 ? roundUp(size, info.pageSize) : 0;
      const enough = info.pageSize > 0 && info.free * info.pageSize >= hugeSize;
      if (enough && info.mount !== null) {
        const path = `${info.mount}/${name}`;
        try {
          return SharedMemory.#createFile(path, hugeSize, "hugetlbfs", options.replaceStale);
        } catch (e) {
          if (policy === "require") throw e;
        }
      }
      if (enough) {
        try {
          return SharedMemory.#createMemfd(name, hugeSize);
        } catch (e) {
          if (policy === "require") throw e;
        }
      }
      if (policy === "require") {
        throw new ShmConfigError(
          `huge pages required but none are free (Hugepagesize ${info.pageSize}, free ${info.free}): ` +
            `reserve some with 'sysctl vm.nr_hugepages=N' or pass hugePages: "auto"`,
        );
      }
    }
    const dir = options.dir ?? "/dev/shm";
    return SharedMemory.#createFile(
      `${dir}/${name}`,
      roundUp(size, PAGE),
      "dev-shm",
      options.replaceStale,
    );
  }

  static #createFile(
    path: string,
    size: number,
    backing: ShmBacking,
    replaceStale: boolean | undefined,
  ): SharedMemory {
    const c = libc();
    const cpath = cString(path);
    if (replaceStale === true) c.unlink(cpath); // ENOENT is fine: nothing stale
    const fd = c.open(cpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600);
    if (fd < 0) throw osError("open", path);
    try {
      if (c.ftruncate(fd, BigInt(size)) !== 0) throw osError("ftruncate", `${path}, ${size}`);
      const ptr = SharedMemory.#map(fd, size, path);
      return new SharedMemory(path, size, backing, true, fd, ptr, path);
    } catch (e) {
      c.close(fd);
      c.unlink(cpath);
      throw e;
    }
  }

  static #createMemfd(name: string, size: number): SharedMemory {
    const c = libc();
    const fd = c.memfd_create(cString(name), MFD_HUGETLB | MFD_CLOEXEC);
    if (fd < 0) throw osError("memfd_create", `${name}, MFD_HUGETLB`);
    try {
      if (c.ftruncate(fd, BigInt(size)) !== 0) throw osError("ftruncate", `memfd ${name}, ${size}`);
      const ptr = SharedMemory.#map(fd, size, name);
      const path = `/proc/${c.getpid()}/fd/${fd}`;
      return new SharedMemory(path, size, "memfd-hugetlb", true, fd, ptr, null);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  /** Maps an existing shared file (created by another process) in full. */
  static open(path: string): SharedMemory {
    const c = libc();
    const fd = c.open(cString(path), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) throw osError("open", path);
    try {
      const end = c.lseek(fd, 0n, SEEK_END);
      const size = Number(end);
      if (size < 0) throw osError("lseek", path);
      if (size === 0) {
        throw new ShmConfigError(`${path} is empty: the creator has not sized it yet; retry later`);
      }
      const mount = hugePageInfo().mount;
      const backing: ShmBacking = path.startsWith("/proc/")
        ? "memfd-hugetlb"
        : mount !== null && path.startsWith(`${mount}/`)
        ? "hugetlbfs"
        : "dev-shm";
      const ptr = SharedMemory.#map(fd, size, path);
      return new SharedMemory(path, size, backing, false, fd, ptr, null);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  static #map(fd: number, size: number, what: string): Deno.PointerObject {
    const ptr = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (ptr === null) throw osError("mmap", `${what}, ${size}`);
    return ptr;
  }

  /** Removes the file name now (owner only; the mapping stays valid). Idempotent. */
  unlink(): void {
    if (this.#unlinkPath === null) return;
    const path = this.#unlinkPath;
    this.#unlinkPath = null;
    if (libc().unlink(cString(path)) !== 0) {
      const err = osError("unlink", path);
      if (err.errno !== ENOENT) throw err; // already gone is what we wanted
    }
  }

  /**
   * Unmaps and closes; the owner also unlinks. Idempotent. Every view over `buffer` becomes
   * empty (the buffer is detached first), so a late access reads `undefined`, not freed memory.
   */
  close(): void {
    const ptr = this.#ptr;
    if (ptr === null) return;
    this.#ptr = null;
    this.#buffer.transfer(0); // detach: views created from it now have length 0
    const c = libc();
    const unmapped = c.munmap(ptr, BigInt(this.size));
    const unmapErr = unmapped === 0 ? null : osError("munmap", this.path);
    c.close(this.#fd);
    this.#fd = -1;
    if (this.owner) this.unlink();
    if (unmapErr !== null) throw unmapErr;
  }
}

export { NkOsError };
