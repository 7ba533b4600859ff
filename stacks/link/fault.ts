/**
 * `FaultInjector`: a `Link` middleware that wraps any link (simulated or real) and, from a
 * seeded random source, drops, duplicates, corrupts and reorders frames on receive and/or
 * transmit, counting each. It lets tests put a real veth or AF_XDP link under loss without
 * netem, reproducibly.
 *
 * Semantics (each direction independently, decisions drawn per frame in this order):
 * - drop: the frame is not handed on (receive) or not committed (transmit; the lent buffer is
 *   simply abandoned, which the Link contract allows).
 * - corrupt: one random bit at or after `corruptSkip` bytes (default 14, past the Ethernet
 *   header) is flipped in place, so the stack's IP/TCP checksums must catch it.
 * - reorder: the frame is held back (copied) and handed on right after the next frame; a held
 *   frame is released anyway by the second receive() call in a row that finds nothing new
 *   (receive) or by the second flush() after it was held (transmit): delayed, never lost.
 * - duplicate: a copy is handed on right after the original (on receive, when the batch is at
 *   `max`, at the start of the next receive() call).
 *
 * Copies live in buffers the injector owns (MTU + 18 bytes, recycled); frames larger than that
 * are never held or duplicated.
 *
 * @module
 */

import type { Link, LinkCapabilities } from "./link.ts";

/** A source of uniform random numbers in [0, 1), e.g. the simulator's `Prng`. */
export interface RandomSource {
  /** Next number in [0, 1). */
  next(): number;
}

/** Fault probabilities of one direction (all default 0). */
export interface FaultSpec {
  /** Probability a frame is dropped. */
  drop?: number;
  /** Probability a frame is delivered twice. */
  duplicate?: number;
  /** Probability one bit of a frame is flipped. */
  corrupt?: number;
  /** Probability a frame is held back behind the next one. */
  reorder?: number;
  /** Bytes at the start of a frame that corruption never touches. Default 14. */
  corruptSkip?: number;
}

/** Options of a `FaultInjector`. */
export interface FaultInjectorOptions {
  /** Seeded random source; the injector draws only from it. */
  rng: RandomSource;
  /** Faults on frames the wrapped link receives. */
  rx?: FaultSpec;
  /** Faults on frames the stack transmits. */
  tx?: FaultSpec;
}

/** Counters of one direction. */
export class FaultCounters {
  /** Frames seen (before faults). */
  frames = 0;
  /** Frames dropped. */
  dropped = 0;
  /** Extra copies handed on. */
  duplicated = 0;
  /** Frames with a flipped bit. */
  corrupted = 0;
  /** Frames held back behind a later one. */
  reordered = 0;
}

/** Thrown for a fault probability outside [0, 1]. */
export class FaultSpecError extends RangeError {
  /** Creates the error. */
  constructor(field: string, value: number) {
    super(`fault probability ${field} must be in [0, 1], got ${value}`);
    this.name = "FaultSpecError";
  }
}

/** Resolved probabilities of one direction. */
class Spec {
  readonly drop: number;
  readonly duplicate: number;
  readonly corrupt: number;
  readonly reorder: number;
  readonly corruptSkip: number;
  constructor(s: FaultSpec | undefined, dir: string) {
    const p = (field: keyof FaultSpec): number => {
      const v = s?.[field] ?? 0;
      if (!(v >= 0 && v <= 1)) throw new FaultSpecError(`${dir}.${field}`, v);
      return v;
    };
    this.drop = p("drop");
    this.duplicate = p("duplicate");
    this.corrupt = p("corrupt");
    this.reorder = p("reorder");
    this.corruptSkip = s?.corruptSkip ?? 14;
  }
}

/** An owned copy of a frame. */
class Copy {
  readonly buf: Uint8Array;
  view: Uint8Array;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = this.buf.subarray(0, 0);
  }
  fill(frame: Uint8Array): void {
    if (this.view.length !== frame.length) this.view = this.buf.subarray(0, frame.length);
    this.view.set(frame);
  }
}

/** Most copies (duplicates waiting) one direction keeps; beyond it no duplicates are made. */
const MAX_READY = 64;

/** A `Link` that injects seeded faults into another `Link`. */
export class FaultInjector implements Link {
  /** Receive-side counters. */
  readonly rxStats: FaultCounters = new FaultCounters();
  /** Transmit-side counters. */
  readonly txStats: FaultCounters = new FaultCounters();
  readonly #inner: Link;
  readonly #rng: RandomSource;
  readonly #rx: Spec;
  readonly #tx: Spec;
  readonly #capacity: number;
  readonly #free: Copy[] = [];

  // Receive state.
  readonly #ready: Copy[] = [];
  #held: Copy | null = null;
  #onFrame: (frame: Uint8Array) => void = () => {};
  #handed = 0;
  #max = 0;
  #heldIdle = 0;
  readonly #rxCallback: (frame: Uint8Array) => void;

  // Transmit state.
  #lent: Uint8Array | null = null;
  #txHeld: Copy | null = null;
  #txHeldFlushes = 0;
  #scratch: Copy | null = null;

  /** Wraps `inner`. */
  constructor(inner: Link, options: FaultInjectorOptions) {
    this.#inner = inner;
    this.#rng = options.rng;
    this.#rx = new Spec(options.rx, "rx");
    this.#tx = new Spec(options.tx, "tx");
    this.#capacity = inner.mtu + 18;
    this.#rxCallback = (frame) => this.#receiveOne(frame);
  }

  /** `fault(<inner name>)`. */
  get name(): string {
    return `fault(${this.#inner.name})`;
  }

  /** The wrapped link's MAC. */
  get mac(): Uint8Array {
    return this.#inner.mac;
  }

  /** The wrapped link's MTU. */
  get mtu(): number {
    return this.#inner.mtu;
  }

  /** The wrapped link's capabilities, minus checksum offloads (corruption must be caught). */
  get capabilities(): LinkCapabilities {
    const c = this.#inner.capabilities;
    return {
      rxChecksumVerified: false,
      txChecksumOffload: c.txChecksumOffload,
      maxBatch: c.maxBatch,
    };
  }

  #copy(frame: Uint8Array): Copy | null {
    if (frame.length > this.#capacity) return null;
    const c = this.#free.pop() ?? new Copy(this.#capacity);
    c.fill(frame);
    return c;
  }

  #corrupt(frame: Uint8Array, skip: number): void {
    const from = frame.length > skip ? skip : 0;
    const bits = (frame.length - from) * 8;
    if (bits === 0) return;
    const bit = Math.floor(this.#rng.next() * bits);
    const k = from + (bit >>> 3);
    frame[k] = frame[k]! ^ (1 << (bit & 7));
  }

  #hand(frame: Uint8Array): void {
    this.#handed++;
    this.#onFrame(frame);
  }

  #handCopy(c: Copy): void {
    try {
      this.#hand(c.view);
    } finally {
      this.#free.push(c);
    }
  }

  /** Receives from the wrapped link with receive-side faults applied. */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    this.#onFrame = onFrame;
    this.#handed = 0;
    this.#max = max;
    const ready = this.#ready;
    // Copies owed from earlier calls (duplicates, released held frames) go first.
    while (ready.length > 0 && this.#handed < max) this.#handCopy(ready.shift()!);
    // One frame at a time, so duplicates and released frames never push a batch past max.
    let got = 0;
    while (this.#handed < max && this.#inner.receive(this.#rxCallback, 1) === 1) got++;
    if (got === 0 && this.#held !== null && this.#handed < max && ++this.#heldIdle >= 2) {
      const h = this.#held;
      this.#held = null;
      this.#handCopy(h);
    }
    return this.#handed;
  }

  /** Hands `c` on now if the batch has room, else at the start of the next receive(). */
  #handOrQueue(c: Copy): void {
    if (this.#handed < this.#max) this.#handCopy(c);
    else this.#ready.push(c);
  }

  #receiveOne(frame: Uint8Array): void {
    const spec = this.#rx;
    const stats = this.rxStats;
    const rng = this.#rng;
    stats.frames++;
    if (spec.drop > 0 && rng.next() < spec.drop) {
      stats.dropped++;
      return;
    }
    if (spec.corrupt > 0 && rng.next() < spec.corrupt) {
      this.#corrupt(frame, spec.corruptSkip);
      stats.corrupted++;
    }
    if (spec.reorder > 0 && this.#held === null && rng.next() < spec.reorder) {
      const c = this.#copy(frame);
      if (c !== null) {
        this.#held = c;
        this.#heldIdle = 0;
        stats.reordered++;
        return;
      }
    }
    const dup = spec.duplicate > 0 && rng.next() < spec.duplicate &&
        this.#ready.length < MAX_READY
      ? this.#copy(frame)
      : null;
    this.#hand(frame);
    if (dup !== null) {
      stats.duplicated++;
      this.#handOrQueue(dup);
    }
    // A held frame goes right after the frame that overtook it.
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      this.#handOrQueue(held);
    }
  }

  /** Lends the wrapped link's transmit buffer. */
  transmitBuffer(length: number): Uint8Array | null {
    const b = this.#inner.transmitBuffer(length);
    this.#lent = b;
    return b;
  }

  /** Commits with transmit-side faults applied. */
  commit(length: number): void {
    const lent = this.#lent;
    if (lent === null) return;
    this.#lent = null;
    const spec = this.#tx;
    const stats = this.txStats;
    const rng = this.#rng;
    stats.frames++;
    if (spec.drop > 0 && rng.next() < spec.drop) {
      stats.dropped++;
      return; // abandon the lent buffer
    }
    const frame = lent.length === length ? lent : lent.subarray(0, length);
    if (spec.corrupt > 0 && rng.next() < spec.corrupt) {
      this.#corrupt(frame, spec.corruptSkip);
      stats.corrupted++;
    }
    if (spec.reorder > 0 && this.#txHeld === null && rng.next() < spec.reorder) {
      const c = this.#copy(frame);
      if (c !== null) {
        this.#txHeld = c;
        this.#txHeldFlushes = 0;
        stats.reordered++;
        return;
      }
    }
    let dup: Copy | null = null;
    if (spec.duplicate > 0 && rng.next() < spec.duplicate) {
      dup = this.#scratch ?? this.#copy(frame);
      if (dup !== null) dup.fill(frame);
    }
    this.#inner.commit(length);
    if (dup !== null) {
      if (this.#send(dup.view)) stats.duplicated++;
      this.#scratch = dup;
    }
    if (this.#txHeld !== null) this.#releaseTxHeld();
  }

  #send(frame: Uint8Array): boolean {
    const b = this.#inner.transmitBuffer(frame.length);
    if (b === null) return false;
    b.set(frame);
    this.#inner.commit(frame.length);
    return true;
  }

  #releaseTxHeld(): void {
    const h = this.#txHeld!;
    this.#txHeld = null;
    this.#send(h.view); // no room: the held frame is lost, like a full NIC ring
    this.#free.push(h);
  }

  /** Flushes; a frame held across a whole flush is sent then. */
  flush(): void {
    if (this.#txHeld !== null && ++this.#txHeldFlushes >= 2) this.#releaseTxHeld();
    this.#inner.flush();
  }

  /** Closes the wrapped link. */
  close(): void {
    this.#inner.close();
  }
}
