/**
 * Lockless single-producer single-consumer ring of fixed 64-byte slots in shared memory.
 *
 * Layout of one ring (offsets from the ring start, which must be 64-byte aligned):
 * ```
 *   0   u32 producer index   (written only by the producer)   cache line 0 (+ line 1 padding)
 * 128   u32 consumer index   (written only by the consumer)   cache line 2 (+ line 3 padding)
 * 256   slot[0] .. slot[capacity-1], 64 bytes each
 * ```
 * The two indices sit 128 bytes apart, not 64: the adjacent-line prefetcher of x86 cores pulls
 * cache lines in 128-byte pairs, and two writers in one pair would still false-share.
 *
 * Indices are free-running u32 counters: slot = index & (capacity - 1), fill = (prod - cons)
 * mod 2^32, so they wrap at 2^32 without any special case (capacity is a power of two <= 2^31).
 * Each side keeps its own index in a local variable and never reads it back from shared memory
 * (the peer could scribble on it); it only reads the opposite index, and only when its cached
 * copy says "empty" (consumer) or "not enough room" (producer), so a batch costs one atomic load
 * and one index store instead of one per slot.
 *
 * Memory ordering. The producer writes slots with plain stores, then publishes them with one
 * release store of its index; the consumer reads the index with `Atomics.load`, then the slots
 * with plain loads, then frees them with one release store of its index.
 * - A release store is all the hand-off needs: the slot stores must be visible before the index
 *   store, and the consumer's slot reads must be done before its index store frees the slots.
 *   On x86-64 it is a plain typed-array store: x86-TSO never reorders a store with an older
 *   store, nor a store with an older load, nor a load with an older load (so the consumer
 *   cannot see the new index and then stale slots). Elsewhere it is `Atomics.store` (`stlr` on
 *   arm64).
 * - Why not `Atomics.store` on x86-64 too: it is sequentially consistent, which V8 compiles to
 *   `xchg`, a full barrier that makes the producer wait, once per batch, until every slot store
 *   of the batch has left its store buffer (64 cache lines the consumer holds). Measured with two
 *   processes (bench/nk_two_process.ts phase A, pinned, best warm round): 329-344 M elements/s
 *   with it (and a fenced notify per batch), 388-408 with a plain store (and
 *   `Doorbell.notifyLazy()` per batch), against 379 for the C ring (bench/RESULTS.md, "NQE ring
 *   against C (session 2)"); in a hand-written loop over the same mapping the producer's store
 *   alone made the difference (282-308 -> 335-360; the consumer's: none measurable).
 * - The compiler side: V8 keeps typed-array and DataView accesses on the effect chain and emits
 *   them in program order (it may drop a store overwritten before any read, never reorder two);
 *   the index load is an atomic (a builtin call here), which nothing moves across. So the
 *   program order above is the machine order.
 * - No StoreLoad fence comes with publish/release. The sleep/wake protocol, which needs one
 *   (index store, then read of the peer's sleep flag), takes it from locked read-modify-writes
 *   in wake.ts.
 * - The ECMAScript memory model formally covers SharedArrayBuffers only; these buffers are
 *   external mmaps shared with another process, so the argument above (TSO + V8's codegen) is
 *   what we rely on, as for the earlier `Atomics.store`; tests/nk_two_process_test.ts (3 M NQEs
 *   with checksums across two processes, index wrap, full-ring backpressure) exercises it.
 *
 * A full ring is backpressure: `claim()` returns fewer slots (0 when full); nothing is ever
 * overwritten. A hostile peer can write any value into its index: every index read from shared
 * memory is validated (never backwards, never more than the ring can hold); a violation poisons
 * the ring endpoint (`fault` is set, claim/available return 0 from then on), because after it
 * nothing in the ring can be trusted. The owner of the device then tears the queue set down.
 *
 * @module
 */

/** Bytes per slot (one NQE). */
export const SLOT_SIZE = 64;
/** 32-bit words per slot (the stride in `words`). */
export const SLOT_WORDS = SLOT_SIZE / 4;
/** Bytes before slot 0 (the two index cache-line pairs). */
export const RING_HEADER_SIZE = 256;
/** Byte offset of the producer index inside the ring. */
export const PRODUCER_OFFSET = 0;
/** Byte offset of the consumer index inside the ring. */
export const CONSUMER_OFFSET = 128;
/** Largest capacity: fill must stay below 2^31 so mod-2^32 differences are unambiguous. */
export const MAX_CAPACITY = 1 << 30;

/** x86-64: a plain store is a release store (TSO); see the module comment. */
const PLAIN_STORE_RELEASES = Deno.build.arch === "x86_64";

/** Bytes a ring of `capacity` slots occupies (a multiple of 64). */
export function ringBytes(capacity: number): number {
  return RING_HEADER_SIZE + capacity * SLOT_SIZE;
}

/** Why an index read from shared memory was rejected. */
export type RingFaultReason =
  | "producer-index-backwards"
  | "producer-index-beyond-capacity"
  | "consumer-index-backwards"
  | "consumer-index-beyond-producer";

/** The peer wrote an impossible index: the ring is corrupt or the peer is hostile. */
export class RingIndexError extends Error {
  /** What was wrong. */
  readonly reason: RingFaultReason;
  /** The index value read from shared memory. */
  readonly seen: number;
  /** The last index value known to be valid. */
  readonly previous: number;
  /** Builds the error; the message carries what to do. */
  constructor(ring: string, reason: RingFaultReason, seen: number, previous: number) {
    super(
      `ring ${ring}: ${reason} (read ${seen}, last valid ${previous}); the peer is buggy or hostile: ` +
        `stop using this queue set and close the device`,
    );
    this.name = "RingIndexError";
    this.reason = reason;
    this.seen = seen;
    this.previous = previous;
  }
}

/** A ring geometry that cannot work; the message says what to pass instead. */
export class RingConfigError extends Error {
  /** Builds the error; the message carries what to do. */
  constructor(message: string) {
    super(message);
    this.name = "RingConfigError";
  }
}

function checkGeometry(buffer: ArrayBufferLike, offset: number, capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 2 || capacity > MAX_CAPACITY) {
    throw new RingConfigError(`ring capacity ${capacity} invalid: use a power of two in 2..2^30`);
  }
  if ((capacity & (capacity - 1)) !== 0) {
    throw new RingConfigError(`ring capacity ${capacity} is not a power of two: round it up`);
  }
  if (offset % SLOT_SIZE !== 0) {
    throw new RingConfigError(`ring offset ${offset} is not 64-byte aligned: align the layout`);
  }
  if (offset + ringBytes(capacity) > buffer.byteLength) {
    throw new RingConfigError(
      `ring at ${offset} with ${capacity} slots needs ${ringBytes(capacity)} bytes; the buffer ` +
        `has ${buffer.byteLength}: make the mapping larger`,
    );
  }
}

/**
 * Writes both indices of a fresh ring (done once by the device creator, before the peer
 * attaches). `startIndex` lets tests start near 2^32 to exercise wrap-around.
 */
export function initRing(
  buffer: ArrayBufferLike,
  offset: number,
  capacity: number,
  startIndex = 0,
): void {
  checkGeometry(buffer, offset, capacity);
  const idx = new Uint32Array(buffer, offset, RING_HEADER_SIZE / 4);
  Atomics.store(idx, PRODUCER_OFFSET / 4, startIndex >>> 0);
  Atomics.store(idx, CONSUMER_OFFSET / 4, startIndex >>> 0);
}

// RingProducer and RingConsumer write out the same slot arithmetic (slot, firstWord, contiguous)
// on purpose: factored into shared module functions it ran 2x slower in `deno bench -A
// bench/nk_bench.ts` (u32 x1024 at batch 64: 4.6 us against 2.2 us), as V8 did not inline them.
/** The producing end of a ring. Writes slots, then publishes them in one index store. */
export class RingProducer {
  /** Slots in the ring. */
  readonly capacity: number;
  /** DataView over the whole ring (header included); slot offsets index into it. */
  readonly view: DataView;
  /** Bytes of the whole ring, same origin as `view`. */
  readonly bytes: Uint8Array;
  /**
   * 32-bit words of the whole ring, same origin as `view` (host byte order: little-endian on
   * every platform Deno ships for, as the NQE layout is). The batched path: after `claim(n)`,
   * slot j < `contiguous(n)` starts at word `firstWord + j * SLOT_WORDS`, no call per slot.
   */
  readonly words: Uint32Array;
  /** Name used in errors. */
  readonly name: string;
  /** Set when the consumer wrote an impossible index; the ring is dead from then on. */
  fault: RingIndexError | null = null;
  /** Number of `claim()` calls that found no free slot at all (backpressure events). */
  fullCount = 0;
  /** The header's index words as int32 (see `#prod`). */
  readonly #idx: Int32Array;
  readonly #mask: number;
  /**
   * Our index and the consumer's last seen, as int32 (the u32 bits): a uint32 past 2^31 is no
   * small integer for V8, and each store of one into a field allocated a heap number (after
   * 2^31 NQEs through the ring). Differences are taken `>>> 0` as before.
   */
  #prod: number;
  #consCache: number;

  /** Attaches to an initialized ring at `offset` of `buffer`. */
  constructor(buffer: ArrayBufferLike, offset: number, capacity: number, name = "ring") {
    checkGeometry(buffer, offset, capacity);
    this.capacity = capacity;
    this.name = name;
    this.view = new DataView(buffer, offset, ringBytes(capacity));
    this.bytes = new Uint8Array(buffer, offset, ringBytes(capacity));
    this.words = new Uint32Array(buffer, offset, ringBytes(capacity) / 4);
    this.#idx = new Int32Array(buffer, offset, RING_HEADER_SIZE / 4);
    this.#mask = capacity - 1;
    // Our own index is read once, at attach; from then on the local copy is the truth.
    this.#prod = Atomics.load(this.#idx, PRODUCER_OFFSET / 4);
    const cons = Atomics.load(this.#idx, CONSUMER_OFFSET / 4);
    this.#consCache = cons;
    if (((this.#prod - cons) >>> 0) > capacity) {
      this.fault = new RingIndexError(
        name,
        "consumer-index-beyond-producer",
        cons >>> 0,
        this.#prod >>> 0,
      );
    }
  }

  /** The next index this producer will publish (free-running u32). */
  get index(): number {
    return this.#prod >>> 0;
  }

  /**
   * Returns how many slots (at most `want`) may be written now. Reads the consumer index only
   * when the cached one shows fewer than `want` free slots. 0 means full (or faulted).
   */
  claim(want: number): number {
    if (this.fault !== null) return 0;
    let free = this.capacity - ((this.#prod - this.#consCache) >>> 0);
    if (free < want) {
      const cons = Atomics.load(this.#idx, CONSUMER_OFFSET / 4);
      // Valid consumer indices lie in [cached, prod]: it only moves forward, never past us.
      const moved = (cons - this.#consCache) >>> 0;
      if (moved > ((this.#prod - this.#consCache) >>> 0)) {
        const reason = moved > 0x80000000
          ? "consumer-index-backwards"
          : "consumer-index-beyond-producer";
        this.fault = new RingIndexError(this.name, reason, cons >>> 0, this.#consCache >>> 0);
        return 0;
      }
      this.#consCache = cons;
      free = this.capacity - ((this.#prod - cons) >>> 0);
      if (free === 0) this.fullCount++;
    }
    return free < want ? free : want;
  }

  /** Byte offset in `view` of the `i`-th slot after the last published one (i < claimed). */
  slot(i: number): number {
    return RING_HEADER_SIZE + (((this.#prod + i) & this.#mask) << 6);
  }

  /** Index in `words` of the first word of the next slot to write (slot(0) / 4). */
  get firstWord(): number {
    return (RING_HEADER_SIZE >> 2) + ((this.#prod & this.#mask) << 4);
  }

  /**
   * How many of the next `n` slots lie in one run before the ring wraps to slot 0: a batch
   * of `n` is written as `[firstWord, +contiguous(n))`, then the rest from slot 0 (word
   * `RING_HEADER_SIZE / 4`).
   */
  contiguous(n: number): number {
    const r = this.capacity - (this.#prod & this.#mask);
    return n < r ? n : r;
  }

  /**
   * Makes the next `n` written slots visible to the consumer (one release store; no StoreLoad
   * fence: wake a sleeping consumer with `Doorbell.notify()`).
   */
  publish(n: number): void {
    this.#prod = (this.#prod + n) | 0;
    // A release store after the slot stores in program order (module comment).
    if (PLAIN_STORE_RELEASES) this.#idx[PRODUCER_OFFSET / 4] = this.#prod;
    else Atomics.store(this.#idx, PRODUCER_OFFSET / 4, this.#prod);
  }

  /** Slots published but not yet known to be consumed (uses the cached consumer index). */
  get inFlight(): number {
    return (this.#prod - this.#consCache) >>> 0;
  }
}

/** The consuming end of a ring. Reads slots, then releases them in one index store. */
export class RingConsumer {
  /** Slots in the ring. */
  readonly capacity: number;
  /** DataView over the whole ring (header included); slot offsets index into it. */
  readonly view: DataView;
  /** Bytes of the whole ring, same origin as `view`. */
  readonly bytes: Uint8Array;
  /** 32-bit words of the whole ring (see `RingProducer.words`): the batched read path. */
  readonly words: Uint32Array;
  /** Name used in errors. */
  readonly name: string;
  /** Set when the producer wrote an impossible index; the ring is dead from then on. */
  fault: RingIndexError | null = null;
  /** The header's index words as int32 (see `#prod`). */
  readonly #idx: Int32Array;
  readonly #mask: number;
  #cons: number;
  #prodCache: number;

  /** Attaches to an initialized ring at `offset` of `buffer`. */
  constructor(buffer: ArrayBufferLike, offset: number, capacity: number, name = "ring") {
    checkGeometry(buffer, offset, capacity);
    this.capacity = capacity;
    this.name = name;
    this.view = new DataView(buffer, offset, ringBytes(capacity));
    this.bytes = new Uint8Array(buffer, offset, ringBytes(capacity));
    this.words = new Uint32Array(buffer, offset, ringBytes(capacity) / 4);
    this.#idx = new Int32Array(buffer, offset, RING_HEADER_SIZE / 4);
    this.#mask = capacity - 1;
    this.#cons = Atomics.load(this.#idx, CONSUMER_OFFSET / 4);
    this.#prodCache = this.#cons;
  }

  /** The next index this consumer will read (free-running u32). */
  get index(): number {
    return this.#cons >>> 0;
  }

  /**
   * Returns how many published slots (at most `want`) can be read now. Reads the producer
   * index only when the cached one shows the ring empty. 0 means empty (or faulted).
   */
  available(want: number): number {
    if (this.fault !== null) return 0;
    let avail = (this.#prodCache - this.#cons) >>> 0;
    if (avail === 0) {
      avail = this.#refresh();
    }
    return avail < want ? avail : want;
  }

  /** Reads the producer index now (even when the cache is non-empty); returns the fill. */
  peekFill(): number {
    if (this.fault !== null) return 0;
    return this.#refresh();
  }

  #refresh(): number {
    const prod = Atomics.load(this.#idx, PRODUCER_OFFSET / 4);
    // Valid producer indices lie in [cached, cons + capacity]: forward only, never more
    // than the ring holds. Anything else is a bug or an attack.
    const avail = (prod - this.#cons) >>> 0;
    const before = (this.#prodCache - this.#cons) >>> 0;
    if (avail > this.capacity || avail < before) {
      const reason = avail < before || avail > 0x80000000
        ? "producer-index-backwards"
        : "producer-index-beyond-capacity";
      this.fault = new RingIndexError(this.name, reason, prod >>> 0, this.#prodCache >>> 0);
      return 0;
    }
    this.#prodCache = prod;
    return avail;
  }

  /** Byte offset in `view` of the `i`-th unread slot (i < available). */
  slot(i: number): number {
    return RING_HEADER_SIZE + (((this.#cons + i) & this.#mask) << 6);
  }

  /** Index in `words` of the first word of the next unread slot (slot(0) / 4). */
  get firstWord(): number {
    return (RING_HEADER_SIZE >> 2) + ((this.#cons & this.#mask) << 4);
  }

  /** How many of the next `n` unread slots lie in one run before the ring wraps to slot 0. */
  contiguous(n: number): number {
    const r = this.capacity - (this.#cons & this.#mask);
    return n < r ? n : r;
  }

  /**
   * Frees the next `n` read slots for the producer (one release store; no StoreLoad fence: wake
   * a producer waiting for room with `Doorbell.notify()`).
   */
  release(n: number): void {
    this.#cons = (this.#cons + n) | 0;
    // A release store after the slot loads in program order (TSO keeps loads before a later
    // store).
    if (PLAIN_STORE_RELEASES) this.#idx[CONSUMER_OFFSET / 4] = this.#cons;
    else Atomics.store(this.#idx, CONSUMER_OFFSET / 4, this.#cons);
  }
}
