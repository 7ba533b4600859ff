/**
 * Two TcpStacks joined by an in-memory link that allocates nothing per packet, for measuring
 * the stacks' own per-segment cost and garbage (tests/support/tcp_pair.ts makes a new buffer
 * and a queue record per packet, which would hide the stack's allocations).
 *
 * Each direction is a FIFO of preallocated packet slots (the link has one rate and one delay,
 * so arrival order is send order). `beginPacket` hands out an exact-length view of the next
 * slot, cached per slot while the length repeats (bulk data and its ACKs repeat their lengths),
 * so the stack never has to make a subarray either. Time is virtual and advanced to the next
 * event, like the simulator.
 *
 * The application side is a bulk sender (writes one fixed 64 KiB buffer whenever the socket
 * has room for all of it) and a reader (reads into one fixed buffer), so the steady state is
 * the stacks' data path only: segment arrival, ACK processing, ring copies, emission, timers.
 *
 * @module
 */

import { type Instant, NEVER } from "../stacks/time.ts";
import type { IpOutput, IpReceiveInfo } from "../stacks/tcpip/iface/protocol.ts";
import { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import type { ByteRing } from "../stacks/tcpip/tcp/ring.ts";
import type { TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";

const SLOT_BYTES = 2048;

/** Mutable receive info (one per direction, reused for every packet). */
class RxInfo implements IpReceiveInfo {
  version: 4 | 6 = 4;
  ecn = 0;
  ttl = 64;
  packet: Uint8Array = new Uint8Array(0);
  checksumVerified = false;
  constructor(readonly src: Uint8Array, readonly dst: Uint8Array) {}
}

/** One direction of the link: a ring of packet slots. */
class Direction implements IpOutput {
  readonly store: Uint8Array;
  readonly views: Uint8Array[] = [];
  readonly lens: Int32Array;
  readonly at: Float64Array;
  readonly ecn: Uint8Array;
  head = 0;
  count = 0;
  free = 0;
  packets = 0;
  delivered = 0;
  dropped = 0;
  /** Drop every this-many-th data packet (0: none); see `SteadyPairOptions.dropEvery`. */
  dropEvery = 0;
  /** Data packets seen by `deliver` (for `dropEvery`). */
  #data = 0;
  /** Data packets `deliver` dropped. */
  lost = 0;
  #pendingEcn = 0;
  #pendingLen = 0;
  readonly info: RxInfo;

  constructor(
    readonly link: SteadyPair,
    readonly local: IpAddress,
    remote: IpAddress,
    readonly slots: number,
  ) {
    this.store = new Uint8Array(slots * SLOT_BYTES);
    for (let i = 0; i < slots; i++) {
      this.views.push(this.store.subarray(i * SLOT_BYTES, i * SLOT_BYTES));
    }
    this.lens = new Int32Array(slots);
    this.at = new Float64Array(slots);
    this.ecn = new Uint8Array(slots);
    // Packets of this direction arrive at the remote stack: source = local, destination = remote.
    this.info = new RxInfo(local.bytes, remote.bytes);
  }

  beginPacket(
    _s: IpAddress,
    _d: IpAddress,
    _p: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    if (this.count === this.slots || length > SLOT_BYTES) {
      this.dropped++;
      return null;
    }
    const i = (this.head + this.count) % this.slots;
    let v = this.views[i]!;
    if (v.length !== length) {
      v = this.store.subarray(i * SLOT_BYTES, i * SLOT_BYTES + length);
      this.views[i] = v;
    }
    this.#pendingEcn = ecn;
    this.#pendingLen = length;
    return v;
  }

  commitPacket(): void {
    const i = (this.head + this.count) % this.slots;
    const now = this.link.now;
    const start = this.free > now ? this.free : now;
    const done = start + ((this.#pendingLen + 40) * 1e9) / this.link.rate;
    this.free = done;
    this.lens[i] = this.#pendingLen;
    this.at[i] = done + this.link.delay;
    this.ecn[i] = this.#pendingEcn;
    this.count++;
    this.packets++;
  }

  sourceFor(_dst: IpAddress): IpAddress | null {
    return this.local;
  }
  mtuFor(_dst: IpAddress): number {
    return 1500;
  }
  isLocal(a: IpAddress): boolean {
    return a.equals(this.local);
  }

  nextAt(): Instant {
    return this.count > 0 ? this.at[this.head]! : NEVER;
  }

  /** Delivers every packet due by `now` to `to`. */
  deliver(to: TcpStack, now: Instant): void {
    const info = this.info;
    while (this.count > 0 && this.at[this.head]! <= now) {
      const i = this.head;
      const v = this.views[i]!;
      info.ecn = this.ecn[i]!;
      info.packet = v;
      // A data segment (longer than a header with options) lost on the way, now and then.
      if (this.dropEvery > 0 && this.lens[i]! > 100 && ++this.#data % this.dropEvery === 0) {
        this.lost++;
      } else to.receive(info, v, now);
      this.head = (i + 1) % this.slots;
      this.count--;
      this.delivered++;
    }
  }
}

/** Settings of a steady pair. */
export interface SteadyPairOptions {
  /** Link rate in bytes per second, each direction. Default 125e6 (1 Gbit/s). */
  rate?: number;
  /** One-way delay in ns. Default 50 µs. */
  delay?: number;
  /** Packet slots per direction (the link's queue). Default 1024. */
  slots?: number;
  /** TCP configuration of both stacks. */
  config?: Partial<TcpConfig>;
  /**
   * Poll the stacks only at multiples of this interval (ns), like a NIC driver polling with
   * interrupt moderation: packets that arrived meanwhile are received as one batch. 0 (the
   * default) handles every arrival at its own instant.
   */
  pollInterval?: number;
  /**
   * Seed of stack A's random source (B's is `seed + 1`); default 1. The seed decides the
   * initial sequence numbers, so it picks whether the measured transfer runs with sequence
   * numbers below or above 2^31 (see tests/tcp_gc_steady_test.ts).
   */
  seed?: number;
  /**
   * Loses every this-many-th data segment A -> B (the receiver holds data out of order and
   * SACKs it, the sender recovers): the loss path's allocation. 0 (the default): none.
   */
  dropEvery?: number;
}

/** Two stacks, a bulk connection from A to B, and the zero-allocation link between them. */
export class SteadyPair {
  /** Virtual time. */
  now: Instant = 0;
  /** Link rate, bytes per second. */
  readonly rate: number;
  /** One-way delay, ns. */
  readonly delay: number;
  /** Poll interval in ns (0: every event). */
  readonly pollInterval: number;
  /** Polls that received at least one packet, and packets they received (batch sizes). */
  batches = 0;
  /** Packets received by the stacks in those polls. */
  batched = 0;
  /** Sending stack. */
  readonly a: TcpStack;
  /** Receiving stack. */
  readonly b: TcpStack;
  /** A -> B direction. */
  readonly ab: Direction;
  /** B -> A direction. */
  readonly ba: Direction;
  /** Sender socket id on A. */
  readonly client: number;
  /** Receiver socket id on B (-1 until accepted). */
  server = -1;
  /** Payload bytes the receiver has read. */
  received = 0;
  /** Payload bytes the sender's socket has taken. */
  sent = 0;
  readonly #listener: number;
  readonly #src = new Uint8Array(65536);
  #sndRing: ByteRing | null = null;
  readonly #dst = new Uint8Array(65536);

  /** Builds the stacks and starts connecting (run `step`/`runUntil` to make progress). */
  constructor(opts: SteadyPairOptions = {}) {
    this.rate = opts.rate ?? 125e6;
    this.delay = opts.delay ?? 50_000;
    this.pollInterval = opts.pollInterval ?? 0;
    const slots = opts.slots ?? 1024;
    const addrA = IpAddress.parse("198.18.0.1");
    const addrB = IpAddress.parse("198.18.0.2");
    this.ab = new Direction(this, addrA, addrB, slots);
    this.ba = new Direction(this, addrB, addrA, slots);
    this.ab.dropEvery = opts.dropEvery ?? 0;
    let ra = opts.seed ?? 1, rb = (opts.seed ?? 1) + 1;
    this.a = new TcpStack({
      ip: this.ab,
      random: () => (ra = (Math.imul(ra, 1103515245) + 12345) >>> 0),
      config: opts.config ?? {},
    });
    this.b = new TcpStack({
      ip: this.ba,
      random: () => (rb = (Math.imul(rb, 1103515245) + 12345) >>> 0),
      config: opts.config ?? {},
    });
    for (let i = 0; i < this.#src.length; i++) this.#src[i] = (i * 131 + 7) & 0xff;
    this.#listener = this.b.listen(null, 5001, 4);
    this.client = this.a.connect(addrB, 5001, 0);
  }

  /** Segments carried so far in each direction. */
  get packets(): { ab: number; ba: number } {
    return { ab: this.ab.packets, ba: this.ba.packets };
  }

  /** One event: advance time, deliver due packets, run due timers, let the apps move data. */
  step(): void {
    let t = this.ab.nextAt();
    const t2 = this.ba.nextAt();
    if (t2 < t) t = t2;
    const pa = this.a.pollAt();
    if (pa < t) t = pa;
    const pb = this.b.pollAt();
    if (pb < t) t = pb;
    const pi = this.pollInterval;
    if (pi > 0 && t !== NEVER) t = Math.ceil(t / pi) * pi;
    if (t > this.now && t !== NEVER) this.now = t;
    const now = this.now;
    const before = this.ab.delivered + this.ba.delivered;
    this.ab.deliver(this.b, now);
    this.ba.deliver(this.a, now);
    const got = this.ab.delivered + this.ba.delivered - before;
    if (got > 0) {
      this.batches++;
      this.batched += got;
    }
    if (this.a.pollAt() <= now) this.a.poll(now);
    if (this.b.pollAt() <= now) this.b.poll(now);
    this.#apps(now);
  }

  #apps(now: Instant): void {
    if (this.server < 0) {
      const id = this.b.accept(this.#listener);
      if (id < 0) return;
      this.server = id;
    }
    // Whole 64 KiB writes only: a partial write needs a view of the source (the app's cost,
    // not the stack's), so the sender waits until the buffer has room for a whole chunk.
    const snd = this.#sndRing ??= this.a.tcbOf(this.client)!.sndRing;
    while (snd.free >= this.#src.length) this.sent += this.a.send(this.client, this.#src, now);
    for (let i = 0; i < 64; i++) {
      const n = this.b.recv(this.server, this.#dst, now);
      if (n <= 0) break;
      this.received += n;
    }
  }

  /** Steps until virtual time reaches `until` (bounded by `maxSteps`). */
  runUntil(until: Instant, maxSteps = 100_000_000): void {
    for (let i = 0; i < maxSteps && this.now < until; i++) this.step();
  }

  /** Runs `steps` events. */
  runSteps(steps: number): void {
    for (let i = 0; i < steps; i++) this.step();
  }
}
