/**
 * AF_XDP single-producer/single-consumer rings as seen from user space.
 *
 * A ring mapping holds a u32 producer index, a u32 consumer index, a u32 flags word and
 * `size` descriptors at offsets the kernel reports (XDP_MMAP_OFFSETS). Indices run freely over
 * 2^32 and are masked with `size - 1` to find a slot, so all index arithmetic is modulo 2^32
 * (`>>> 0`). Each side caches the other side's index and re-reads it (with `Atomics.load`) only
 * when the cache says the ring is empty/full; its own index is published with `Atomics.store`
 * once per batch. Descriptors are plain loads/stores: the index store orders them (x86-TSO;
 * Atomics give sequentially consistent stores elsewhere).
 *
 * The classes take a `Uint32Array` over the mapping so tests can run them over ordinary memory.
 *
 * @module
 */

/** Byte offsets of one ring's fields inside its mapping (from XDP_MMAP_OFFSETS). */
export interface RingOffsets {
  /** Producer index. */
  readonly producer: number;
  /** Consumer index. */
  readonly consumer: number;
  /** Descriptor array. */
  readonly desc: number;
  /** Flags word (XDP_RING_NEED_WAKEUP). */
  readonly flags: number;
}

/** The kernel wants a syscall (sendto/recvfrom/poll) to make progress on this ring. */
export const XDP_RING_NEED_WAKEUP = 1;

/** Bytes of one RX/TX descriptor (`struct xdp_desc`: u64 addr, u32 len, u32 options). */
export const XDP_DESC_LEN = 16;
/** Bytes of one fill/completion descriptor (u64 addr). */
export const ADDR_DESC_LEN = 8;

/** A ring size is not a power of two or an offset is misaligned. */
export class RingLayoutError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "RingLayoutError";
  }
}

abstract class Ring {
  /** Number of descriptors (a power of two). */
  readonly size: number;
  /** `size - 1`. */
  readonly mask: number;
  protected readonly words: Uint32Array;
  /**
   * The same words as int32: ring indices are kept as int32 (the same bits as the kernel's
   * u32), because a uint32 past 2^31 is no small integer for V8 and every store of one into a
   * field allocated a heap number (after 2^31 frames, ~80 min at 450k frames/s).
   */
  protected readonly iwords: Int32Array;
  protected readonly producerWord: number;
  protected readonly consumerWord: number;
  protected readonly flagsWord: number;
  /** Word index of descriptor 0. */
  protected readonly descWord: number;
  /** u32 words per descriptor: 4 (xdp_desc) or 2 (u64 addr). */
  protected readonly descWords: number;

  constructor(words: Uint32Array, offsets: RingOffsets, size: number, descBytes: number) {
    if (size < 1 || (size & (size - 1)) !== 0 || size > 1 << 30) {
      throw new RingLayoutError(`ring size ${size} must be a power of two`);
    }
    for (const [k, v] of Object.entries(offsets)) {
      if (v % 4 !== 0) throw new RingLayoutError(`ring offset ${k}=${v} is not 4-byte aligned`);
    }
    this.size = size;
    this.mask = size - 1;
    this.words = words;
    this.iwords = new Int32Array(words.buffer, words.byteOffset, words.length);
    this.producerWord = offsets.producer >>> 2;
    this.consumerWord = offsets.consumer >>> 2;
    this.flagsWord = offsets.flags >>> 2;
    this.descWord = offsets.desc >>> 2;
    this.descWords = descBytes >>> 2;
    const need = this.descWord + size * this.descWords;
    if (words.length < need) {
      throw new RingLayoutError(`ring mapping of ${words.length * 4} bytes < ${need * 4} needed`);
    }
  }

  /** True when the kernel asked for a wakeup syscall (XDP_USE_NEED_WAKEUP). */
  needsWakeup(): boolean {
    return (Atomics.load(this.words, this.flagsWord) & XDP_RING_NEED_WAKEUP) !== 0;
  }

  /** Word index of the descriptor for ring index `index`. */
  protected slot(index: number): number {
    return this.descWord + (index & this.mask) * this.descWords;
  }
}

/**
 * The user-space producer side (fill and TX rings): `reserve` slots, write descriptors, then
 * `submit` publishes everything reserved since the last submit with one store.
 */
export class ProducerRing extends Ring {
  /** Next index to write (reserved but not yet published entries lie below it). */
  #prod: number;
  /** Cached consumer index plus `size`: the first index we may not write. */
  #limit: number;

  /** Wraps a mapping; the producer/consumer already in memory are taken as the start. */
  constructor(words: Uint32Array, offsets: RingOffsets, size: number, descBytes: number) {
    super(words, offsets, size, descBytes);
    this.#prod = Atomics.load(this.iwords, this.producerWord);
    this.#limit = (Atomics.load(this.iwords, this.consumerWord) + size) | 0;
  }

  /** Index of the next slot `reserve` hands out (int32: the kernel's u32 index bits). */
  get producerIndex(): number {
    return this.#prod;
  }

  /** Free slots, re-reading the consumer only when fewer than `want` look free. */
  free(want: number): number {
    let n = (this.#limit - this.#prod) >>> 0;
    if (n >= want) return n;
    this.#limit = (Atomics.load(this.iwords, this.consumerWord) + this.size) | 0;
    n = (this.#limit - this.#prod) >>> 0;
    return n;
  }

  /**
   * Reserves up to `want` slots; returns how many (0 when full). Write them with
   * `setAddr`/`setDesc` at indices `producerIndex - reserved ... producerIndex - 1`, or more
   * simply: read `producerIndex` before reserving and write from there.
   */
  reserve(want: number): number {
    const n = Math.min(want, this.free(want));
    this.#prod = (this.#prod + n) | 0;
    return n;
  }

  /** Publishes all reserved slots to the kernel (one atomic store). */
  submit(): void {
    Atomics.store(this.iwords, this.producerWord, this.#prod);
  }

  /** Reserved slots not yet published. */
  get pending(): number {
    return (this.#prod - Atomics.load(this.iwords, this.producerWord)) >>> 0;
  }

  /** Writes a fill-ring entry: UMEM address `addr` (below 2^53) at ring index `index`. */
  setAddr(index: number, addr: number): void {
    const w = this.slot(index);
    this.words[w] = addr >>> 0;
    this.words[w + 1] = Math.floor(addr / 0x1_0000_0000);
  }

  /** Writes a TX descriptor at ring index `index`. */
  setDesc(index: number, addr: number, len: number, options = 0): void {
    const w = this.slot(index);
    this.words[w] = addr >>> 0;
    this.words[w + 1] = Math.floor(addr / 0x1_0000_0000);
    this.words[w + 2] = len;
    this.words[w + 3] = options;
  }
}

/**
 * The user-space consumer side (RX and completion rings): `peek` how many entries are ready,
 * read them, then `release` them with one store.
 */
export class ConsumerRing extends Ring {
  /** Next index to read. */
  #cons: number;
  /** Cached producer index. */
  #prod: number;

  /** Wraps a mapping; the indices already in memory are taken as the start. */
  constructor(words: Uint32Array, offsets: RingOffsets, size: number, descBytes: number) {
    super(words, offsets, size, descBytes);
    this.#cons = Atomics.load(this.iwords, this.consumerWord);
    this.#prod = Atomics.load(this.iwords, this.producerWord);
  }

  /** Index of the first entry `peek` reports (int32: the kernel's u32 index bits). */
  get consumerIndex(): number {
    return this.#cons;
  }

  /** Entries ready, up to `max`; re-reads the producer only when the cache has fewer. */
  peek(max: number): number {
    let n = (this.#prod - this.#cons) >>> 0;
    if (n < max) {
      this.#prod = Atomics.load(this.iwords, this.producerWord);
      n = (this.#prod - this.#cons) >>> 0;
    }
    return n < max ? n : max;
  }

  /** Entries known ready without re-reading the producer (at least what `peek` returned). */
  ready(): number {
    return (this.#prod - this.#cons) >>> 0;
  }

  /** Marks `n` entries (from `consumerIndex`) consumed and publishes the consumer index. */
  release(n: number): void {
    if (n === 0) return;
    this.#cons = (this.#cons + n) | 0;
    Atomics.store(this.iwords, this.consumerWord, this.#cons);
  }

  /** UMEM address of the entry at ring index `index` (any descriptor kind). */
  addr(index: number): number {
    const w = this.slot(index);
    return this.words[w]! + this.words[w + 1]! * 0x1_0000_0000;
  }

  /** Length of the RX descriptor at ring index `index`. */
  len(index: number): number {
    return this.words[this.slot(index) + 2]!;
  }

  /** Options of the RX descriptor at ring index `index`. */
  options(index: number): number {
    return this.words[this.slot(index) + 3]!;
  }
}
