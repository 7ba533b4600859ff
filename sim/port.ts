/**
 * A simulated network port: the `Link` a simulated host's stack (or a switch) uses. Transmitted
 * frames go to the attached outgoing `Channel`; frames the incoming channel delivers wait in a
 * bounded receive queue and wake the node bound to the port.
 *
 * Buffers come from the simulator's shared frame pool (MTU + 18 bytes each) and travel with the
 * frame from port to channel to port, so a steady state allocates nothing per frame.
 *
 * @module
 */

import type { Link, LinkCapabilities } from "../stacks/link/link.ts";
import type { Instant } from "../stacks/time.ts";
import { FRAME_OVERHEAD } from "./frame.ts";
import type { FramePool, SimFrame } from "./frame.ts";
import type { NodeSlot, Simulator } from "./simulator.ts";
import type { Channel } from "./channel.ts";

/** Options for a `SimPort`. */
export interface SimPortOptions {
  /** Name for logs and traces; also seeds the default MAC. */
  name: string;
  /** Layer-3 MTU. Default 1500. Frames may be up to MTU + 18 bytes (802.1Q tagged). */
  mtu?: number;
  /** Explicit MAC (6 bytes). Default: locally administered, derived from the name. */
  mac?: Uint8Array;
  /** Receive queue limit in frames; further arrivals are dropped and counted. Default 1024. */
  rxQueueFrames?: number;
  /** Committed-but-unflushed frames allowed before `transmitBuffer()` returns null. Default 1024. */
  txQueueFrames?: number;
  /**
   * When true, `transmitBuffer()` returns null while the outgoing channel's queue is full (a
   * host NIC pushing back on the stack) and the node is woken when room frees up. When false
   * (default; switch ports), frames go to the channel and its drop-tail queue decides.
   */
  backpressure?: boolean;
  /** `capabilities.maxBatch`. Default 64. */
  maxBatch?: number;
}

/** Counters of one port. */
export class SimPortStats {
  /** Frames handed to the stack by `receive()`. */
  rxFrames = 0;
  /** Bytes handed to the stack by `receive()`. */
  rxBytes = 0;
  /** Frames dropped because the receive queue was full. */
  rxDroppedQueue = 0;
  /** Frames dropped because the port was closed. */
  rxDroppedClosed = 0;
  /** Frames committed by the stack. */
  txFrames = 0;
  /** Bytes committed by the stack. */
  txBytes = 0;
  /** Frames flushed while no channel was attached (lost). */
  txNoCarrier = 0;
  /** `transmitBuffer()` calls answered with null (no room). */
  txBlocked = 0;
}

/** Thrown when the stack asks for a frame larger than MTU + 18. */
export class FrameTooLargeError extends RangeError {
  /** Creates the error. */
  constructor(length: number, max: number, port: string) {
    super(
      `frame of ${length} bytes exceeds ${port}'s maximum ${max} (MTU + 18); ` +
        `fragment or segment to the link MTU before transmitting`,
    );
    this.name = "FrameTooLargeError";
  }
}

const used = new WeakMap<Simulator, Set<number>>();

/** A deterministic, locally administered unicast MAC derived from the port name. */
function macFor(sim: Simulator, name: string): Uint8Array {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  let set = used.get(sim);
  if (set === undefined) used.set(sim, set = new Set());
  let key = h >>> 0;
  while (set.has(key)) key = (key + 1) >>> 0;
  set.add(key);
  // 02:xx: locally administered, unicast; the low 32 bits carry the hash.
  return new Uint8Array([
    0x02,
    0x00,
    key >>> 24,
    (key >>> 16) & 0xff,
    (key >>> 8) & 0xff,
    key & 0xff,
  ]);
}

/** A simulated port. */
export class SimPort implements Link {
  /** Port name. */
  readonly name: string;
  /** MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** Layer-3 MTU. */
  readonly mtu: number;
  /** No offloads: the stack computes and verifies every checksum. */
  readonly capabilities: LinkCapabilities;
  /** Counters. */
  readonly stats: SimPortStats = new SimPortStats();
  /** The simulator. */
  readonly sim: Simulator;
  /** Outgoing channel, set by `Channel.attach()`. */
  channel: Channel | null = null;
  /** True after `transmitBuffer()` returned null because of backpressure. */
  blocked = false;

  readonly #pool: FramePool;
  readonly #backpressure: boolean;
  #slot: NodeSlot | null = null;
  #closed = false;
  // Receive ring.
  readonly #rx: (SimFrame | null)[];
  #rxHead = 0;
  #rxCount = 0;
  // Transmit: the lent frame and committed-but-unflushed frames.
  #lent: SimFrame | null = null;
  readonly #tx: (SimFrame | null)[];
  #txCount = 0;
  #txBytes = 0;

  /** Creates a port; connect it with `Channel.attach()` or a topology helper. */
  constructor(sim: Simulator, options: SimPortOptions) {
    this.sim = sim;
    this.name = options.name;
    this.mtu = options.mtu ?? 1500;
    this.mac = options.mac !== undefined ? options.mac.slice(0, 6) : macFor(sim, options.name);
    this.capabilities = {
      rxChecksumVerified: false,
      txChecksumOffload: false,
      maxBatch: options.maxBatch ?? 64,
    };
    this.#pool = sim.framePool(this.mtu + FRAME_OVERHEAD);
    this.#backpressure = options.backpressure ?? false;
    this.#rx = new Array<SimFrame | null>(options.rxQueueFrames ?? 1024).fill(null);
    this.#tx = new Array<SimFrame | null>(options.txQueueFrames ?? 1024).fill(null);
  }

  /** Binds the port to a node slot so arrivals wake the node (see `Simulator.addNode`). */
  bindSlot(slot: NodeSlot): void {
    this.#slot = slot;
  }

  /** Frames waiting in the receive queue. */
  get rxQueued(): number {
    return this.#rxCount;
  }

  /** Committed frames not yet flushed. */
  get txPending(): number {
    return this.#txCount;
  }

  /** Hands up to `max` queued frames to `onFrame` in arrival order. */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    const rx = this.#rx;
    const cap = rx.length;
    const stats = this.stats;
    let n = 0;
    while (n < max && this.#rxCount > 0) {
      const i = this.#rxHead;
      const f = rx[i]!;
      rx[i] = null;
      this.#rxHead = i + 1 === cap ? 0 : i + 1;
      this.#rxCount--;
      n++;
      stats.rxFrames++;
      stats.rxBytes += f.length;
      try {
        onFrame(f.view);
      } finally {
        f.pool.release(f);
      }
    }
    return n;
  }

  /**
   * Simulator-internal fast path (switches): takes the oldest received frame, or null. The
   * caller owns it and must pass it to `sendFrame()` or `frame.pool.release()`.
   */
  takeFrame(): SimFrame | null {
    if (this.#rxCount === 0) return null;
    const rx = this.#rx;
    const i = this.#rxHead;
    const f = rx[i]!;
    rx[i] = null;
    this.#rxHead = i + 1 === rx.length ? 0 : i + 1;
    this.#rxCount--;
    this.stats.rxFrames++;
    this.stats.rxBytes += f.length;
    return f;
  }

  /**
   * Simulator-internal fast path (switches): queues an owned frame for the next `flush()`
   * without copying. Returns false (and releases the frame) when it cannot be sent: port
   * closed, frame larger than MTU + 18, or the transmit queue full.
   */
  sendFrame(frame: SimFrame): boolean {
    if (this.#closed || frame.length > this.#pool.capacity || this.#txCount === this.#tx.length) {
      this.stats.txBlocked++;
      frame.pool.release(frame);
      return false;
    }
    this.#tx[this.#txCount++] = frame;
    this.#txBytes += frame.length;
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    return true;
  }

  /** Lends a buffer of `length` bytes, or null when there is no room (see `backpressure`). */
  transmitBuffer(length: number): Uint8Array | null {
    if (this.#closed) return null;
    const max = this.#pool.capacity;
    if (length > max || length < 0) throw new FrameTooLargeError(length, max, this.name);
    if (this.#txCount === this.#tx.length) {
      this.stats.txBlocked++;
      return null;
    }
    if (this.#backpressure) {
      const ch = this.channel;
      if (ch !== null && !ch.hasRoom(this.#txCount + 1, this.#txBytes + length)) {
        this.blocked = true;
        this.stats.txBlocked++;
        return null;
      }
    }
    let f = this.#lent;
    if (f === null) this.#lent = f = this.#pool.acquire();
    f.setLength(length);
    return f.view;
  }

  /** Queues the lent frame, trimmed to `length` bytes, for the next `flush()`. */
  commit(length: number): void {
    const f = this.#lent;
    if (f === null) return;
    this.#lent = null;
    if (length > f.length) length = f.length;
    f.setLength(length);
    this.#tx[this.#txCount++] = f;
    this.#txBytes += length;
    this.stats.txFrames++;
    this.stats.txBytes += length;
  }

  /** Hands committed frames to the outgoing channel. */
  flush(): void {
    const n = this.#txCount;
    if (n === 0) return;
    const tx = this.#tx;
    const ch = this.channel;
    const now = this.sim.now;
    this.#txCount = 0;
    this.#txBytes = 0;
    for (let i = 0; i < n; i++) {
      const f = tx[i]!;
      tx[i] = null;
      if (ch === null) {
        this.stats.txNoCarrier++;
        f.pool.release(f);
      } else {
        ch.send(f, now);
      }
    }
  }

  /** Releases all queued frames; later transmits return null and arrivals are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#rxCount > 0) {
      const f = this.#rx[this.#rxHead]!;
      this.#rx[this.#rxHead] = null;
      this.#rxHead = (this.#rxHead + 1) % this.#rx.length;
      this.#rxCount--;
      f.pool.release(f);
    }
    for (let i = 0; i < this.#txCount; i++) {
      this.#tx[i]!.pool.release(this.#tx[i]!);
      this.#tx[i] = null;
    }
    this.#txCount = 0;
    if (this.#lent !== null) this.#lent.pool.release(this.#lent);
    this.#lent = null;
  }

  /** Channel side: a frame arrives (its last bit) at `now`. Takes ownership of `frame`. */
  deliver(frame: SimFrame, now: Instant): void {
    if (this.#closed) {
      this.stats.rxDroppedClosed++;
      frame.pool.release(frame);
      return;
    }
    const hook = this.sim.onDeliver;
    if (hook !== null) hook(now, this, frame.view);
    const rx = this.#rx;
    if (this.#rxCount === rx.length) {
      this.stats.rxDroppedQueue++;
      frame.pool.release(frame);
      return;
    }
    let i = this.#rxHead + this.#rxCount;
    if (i >= rx.length) i -= rx.length;
    rx[i] = frame;
    this.#rxCount++;
    if (this.#slot !== null) this.#slot.wake();
  }

  /** Channel side: the outgoing queue has room again; wakes a backpressured node. */
  roomAvailable(): void {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.#slot !== null) this.#slot.wake();
  }
}
