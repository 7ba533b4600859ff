/**
 * UMEM: the packet buffer shared with the kernel, cut into equal frames, and a pool that
 * tracks who owns each frame.
 *
 * The region is mapped with MAP_HUGETLB when huge pages are reserved (fewer TLB misses), else
 * with ordinary pages. Frames are addressed by their byte offset in the region (the "UMEM
 * address" the rings carry).
 *
 * @module
 */

import {
  libc,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  mmapChecked,
  PROT_READ,
  PROT_WRITE,
  XdpError,
} from "./libc.ts";

/** Huge page size assumed for MAP_HUGETLB (the x86-64 default). */
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;

/** Whether to back the UMEM with huge pages: "auto" tries and falls back silently. */
export type HugepageMode = "auto" | "on" | "off";

/** Options of `Umem.allocate`. */
export interface UmemOptions {
  /** Bytes per frame: 2048 or 4096. */
  readonly frameSize: number;
  /** Number of frames. */
  readonly frameCount: number;
  /** Default "auto". */
  readonly hugepages?: HugepageMode;
}

/** Frame size is not one the kernel accepts in aligned mode, or huge pages were required. */
export class UmemOptionError extends XdpError {
  /** Builds the error. */
  constructor(message: string) {
    super("Umem.allocate", 0, message);
    this.name = "UmemOptionError";
  }
}

/** An mmap'ed UMEM region. */
export class Umem {
  /** Bytes per frame. */
  readonly frameSize: number;
  /** Number of frames. */
  readonly frameCount: number;
  /** Bytes mapped (frameSize × frameCount, rounded up to a huge page when huge). */
  readonly length: number;
  /** True when backed by huge pages. */
  readonly hugepages: boolean;
  /** The whole region; frame `a` is `bytes.subarray(a, a + frameSize)`. */
  readonly bytes: Uint8Array;
  #ptr: Deno.PointerObject | null;

  private constructor(
    ptr: Deno.PointerObject,
    length: number,
    frameSize: number,
    frameCount: number,
    huge: boolean,
  ) {
    this.#ptr = ptr;
    this.length = length;
    this.frameSize = frameSize;
    this.frameCount = frameCount;
    this.hugepages = huge;
    this.bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, length));
  }

  /** Maps a region for `frameCount` frames of `frameSize` bytes. */
  static allocate(options: UmemOptions): Umem {
    const { frameSize, frameCount } = options;
    if (frameSize !== 2048 && frameSize !== 4096) {
      throw new UmemOptionError(`frameSize ${frameSize}: use 2048 or 4096`);
    }
    if (!Number.isInteger(frameCount) || frameCount < 2 || frameSize * frameCount > 2 ** 31) {
      throw new UmemOptionError(`frameCount ${frameCount}: use 2 .. ${2 ** 31 / frameSize}`);
    }
    const size = frameSize * frameCount;
    const mode = options.hugepages ?? "auto";
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
    if (mode !== "off") {
      const hugeLen = Math.ceil(size / HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
      try {
        const p = mmapChecked(
          hugeLen,
          PROT_READ | PROT_WRITE,
          flags | MAP_HUGETLB,
          -1,
          0,
          "umem",
          `UMEM of ${hugeLen} bytes on huge pages`,
        );
        return new Umem(p, hugeLen, frameSize, frameCount, true);
      } catch (e) {
        if (mode === "on") {
          throw new UmemOptionError(
            `huge pages requested but mmap(MAP_HUGETLB) failed (${(e as Error).message}); ` +
              `reserve some: sysctl vm.nr_hugepages=${Math.ceil(hugeLen / HUGE_PAGE_SIZE)}`,
          );
        }
      }
    }
    const p = mmapChecked(
      size,
      PROT_READ | PROT_WRITE,
      flags,
      -1,
      0,
      "umem",
      `UMEM of ${size} bytes`,
    );
    return new Umem(p, size, frameSize, frameCount, false);
  }

  /** Start address of the mapping (for XDP_UMEM_REG). */
  get address(): bigint {
    if (this.#ptr === null) throw new XdpError("Umem.address", 0, "UMEM is unmapped");
    return Deno.UnsafePointer.value(this.#ptr);
  }

  /** Unmaps the region. Idempotent. Views of `bytes` must not be used afterwards. */
  close(): void {
    if (this.#ptr === null) return;
    libc().munmap(this.#ptr, BigInt(this.length));
    this.#ptr = null;
  }
}

/** Who holds a frame. */
export const FrameOwner = {
  /** In a user-space free list (or lent to the stack). */
  User: 0,
  /** Posted to the fill ring, or received into the RX ring and not yet handed up. */
  KernelRx: 1,
  /** Posted to the TX ring, not yet completed. */
  KernelTx: 2,
} as const;
/** One of `FrameOwner`'s values. */
export type FrameOwner = typeof FrameOwner[keyof typeof FrameOwner];

/**
 * A LIFO stack of free frame addresses plus an owner byte per frame, so a frame is never posted
 * twice (a double post would let the kernel write into a frame user space is reading).
 */
export class FramePool {
  readonly #stack: Uint32Array;
  #top = 0;
  readonly #owner: Uint8Array;
  readonly #shift: number;
  /** Times a frame was handed back that was not in the expected state (should stay 0). */
  violations = 0;

  /** A pool for frames of `frameSize` (power of two) bytes, of which there are `frameCount`. */
  constructor(frameCount: number, frameSize: number) {
    this.#stack = new Uint32Array(frameCount);
    this.#owner = new Uint8Array(frameCount).fill(FrameOwner.User);
    this.#shift = Math.log2(frameSize);
  }

  /** Free frames available. */
  get available(): number {
    return this.#top;
  }

  /** Adds frame `addr` (its start) to the free stack. */
  push(addr: number): void {
    this.#stack[this.#top++] = addr;
  }

  /** Takes a free frame's address, or -1 when none. */
  pop(): number {
    return this.#top === 0 ? -1 : this.#stack[--this.#top]!;
  }

  /** Moves frame `addr` from `from` to `to`; counts a violation when it was not in `from`. */
  move(addr: number, from: FrameOwner, to: FrameOwner): boolean {
    const i = addr >>> this.#shift;
    if (this.#owner[i] !== from) {
      this.violations++;
      return false;
    }
    this.#owner[i] = to;
    return true;
  }

  /** Owner of frame `addr`. */
  owner(addr: number): FrameOwner {
    return this.#owner[addr >>> this.#shift]! as FrameOwner;
  }
}
