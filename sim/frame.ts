/**
 * Pooled frame buffers. A `SimFrame` carries one Ethernet frame from the transmitting port,
 * through a channel, to the receiving port's queue; it is also the event for its own
 * serialization end and arrival, so a frame in flight costs no allocation at all.
 *
 * @module
 */

import { SimEvent } from "./event_queue.ts";
import type { Instant } from "../stacks/time.ts";

/** Room for an Ethernet header with one 802.1Q tag (14 + 4) on top of the IP MTU. */
export const FRAME_OVERHEAD = 18;

/** One reusable frame buffer. */
export class SimFrame extends SimEvent {
  /** Backing storage, `pool.capacity` bytes. */
  readonly buf: Uint8Array;
  /** The pool this frame returns to. */
  readonly pool: FramePool;
  /** `buf.subarray(0, length)`, cached so equal-sized frames reuse the same view object. */
  view: Uint8Array;
  /**
   * The view made for the previous different length. Frames are shared by every port of a
   * pool, so one frame alternates between, say, a 1514-byte data frame and a 66-byte ACK; two
   * cached views keep both without making a new view (garbage) per packet.
   */
  #other: Uint8Array;
  /** Frame length in bytes. */
  length = 0;
  /** When the frame entered its current channel queue (for queue-delay samples). */
  enqueuedAt: Instant = 0;
  /** Channel phase: 0 while serializing onto the wire, 1 while propagating. */
  phase = 0;
  /** When the frame reaches the far end of its channel (while propagating). */
  due: Instant = 0;

  /** Creates a frame of `pool.capacity` bytes; use `FramePool.acquire()` instead. */
  constructor(pool: FramePool, buf: Uint8Array = new Uint8Array(pool.capacity)) {
    super();
    this.pool = pool;
    this.buf = buf;
    this.view = this.buf.subarray(0, 0);
    this.#other = this.view;
  }

  /** Sets the frame length, re-creating the view only when neither cached view fits. */
  setLength(length: number): void {
    const v = this.view;
    if (v.length !== length) {
      const o = this.#other;
      this.#other = v;
      this.view = o.length === length ? o : this.buf.subarray(0, length);
    }
    this.length = length;
  }
}

/**
 * Frames a pool carves out of one ArrayBuffer at a time: one buffer per frame would make
 * every frame a different buffer, and the checksum code caches its word view per buffer.
 */
const FRAMES_PER_SLAB = 64;

/** A free list of frames of one capacity. */
export class FramePool {
  /** Bytes per frame buffer. */
  readonly capacity: number;
  readonly #free: SimFrame[] = [];
  #slab: Uint8Array = new Uint8Array(0);
  #slabUsed = FRAMES_PER_SLAB;
  /** Frames ever created by this pool (a steady state stops growing this). */
  allocated = 0;

  /** Creates an empty pool of `capacity`-byte frames. */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Takes a frame from the free list, or creates one. */
  acquire(): SimFrame {
    const f = this.#free.pop();
    if (f !== undefined) return f;
    if (this.#slabUsed === FRAMES_PER_SLAB) {
      this.#slab = new Uint8Array(this.capacity * FRAMES_PER_SLAB);
      this.#slabUsed = 0;
    }
    const at = this.#slabUsed++ * this.capacity;
    this.allocated++;
    return new SimFrame(this, this.#slab.subarray(at, at + this.capacity));
  }

  /** Returns a frame to the free list. The caller must not use it afterwards. */
  release(frame: SimFrame): void {
    this.#free.push(frame);
  }

  /** Frames currently on the free list. */
  get free(): number {
    return this.#free.length;
  }
}

/** A growable FIFO ring of frames (grows by doubling; never shrinks, so no steady-state garbage). */
export class FrameRing {
  #items: (SimFrame | null)[] = new Array<SimFrame | null>(16).fill(null);
  #head = 0;
  #count = 0;

  /** Frames in the ring. */
  get length(): number {
    return this.#count;
  }

  /** The oldest frame, or null. */
  peek(): SimFrame | null {
    return this.#count === 0 ? null : this.#items[this.#head]!;
  }

  /** The newest frame, or null. */
  peekLast(): SimFrame | null {
    if (this.#count === 0) return null;
    let i = this.#head + this.#count - 1;
    if (i >= this.#items.length) i -= this.#items.length;
    return this.#items[i]!;
  }

  /** Appends a frame. */
  push(frame: SimFrame): void {
    let items = this.#items;
    if (this.#count === items.length) {
      const grown = new Array<SimFrame | null>(items.length * 2).fill(null);
      for (let k = 0; k < this.#count; k++) grown[k] = items[(this.#head + k) % items.length]!;
      this.#items = items = grown;
      this.#head = 0;
    }
    let i = this.#head + this.#count;
    if (i >= items.length) i -= items.length;
    items[i] = frame;
    this.#count++;
  }

  /** Removes and returns the oldest frame, or null. */
  shift(): SimFrame | null {
    if (this.#count === 0) return null;
    const items = this.#items;
    const h = this.#head;
    const f = items[h]!;
    items[h] = null;
    this.#head = h + 1 === items.length ? 0 : h + 1;
    this.#count--;
    return f;
  }
}
