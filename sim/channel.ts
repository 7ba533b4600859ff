/**
 * One direction of a simulated link: a drop-tail queue feeding a wire of fixed rate and
 * propagation delay, with seeded impairments (random loss, reordering, duplication, bit
 * corruption) and DCTCP-style step ECN marking.
 *
 * Model, per frame:
 * 1. `send()` (the transmitting port's flush): if the wire is idle the frame starts serializing
 *    at once; otherwise it joins the queue, or is dropped when the queue is at its limit
 *    (packets and/or bytes; the frame on the wire does not count). A frame that arrives to find
 *    more than `ecnK` frames already waiting (DCTCP's "occupancy upon arrival > K"; the frame
 *    on the wire not counted) is marked CE if it is ECT.
 * 2. Serialization takes exactly (length + overheadBytes) * 8 / rateBps seconds, in whole ns;
 *    the sub-ns remainder carries into the next frame so long runs do not drift.
 * 3. When the last bit leaves: random loss (the frame used the wire but is lost), else maybe a
 *    flipped bit (never in the 14-byte Ethernet header, so the stack's IP/TCP checksums see
 *    it), maybe an extra `reorderDelay` (later frames overtake it), maybe a duplicate that
 *    arrives right after it; the next queued frame starts serializing.
 * 4. After `delay` (+ extra) the frame is delivered to the far port, which wakes its node.
 *
 * Each impairment draws from its own stream forked from the simulator seed and the channel
 * name, so e.g. enabling duplication does not change which frames are lost.
 *
 * @module
 */

import type { Duration, Instant } from "../stacks/time.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { SimEvent } from "./event_queue.ts";
import type { EventHandler } from "./event_queue.ts";
import { FrameRing } from "./frame.ts";
import type { SimFrame } from "./frame.ts";
import type { SimPort } from "./port.ts";
import type { Simulator } from "./simulator.ts";
import type { Prng } from "./prng.ts";
import { markCongestionExperienced } from "./ecn.ts";

/** Parameters of one link direction. */
export interface ChannelParams {
  /** Line rate in bit/s (an integer for exact serialization times). */
  rateBps: number;
  /** One-way propagation delay in ns. */
  delay: Duration;
  /** Queue limit in frames (not counting the frame on the wire). Default 1000 if no limit set. */
  queuePackets?: number;
  /** Queue limit in bytes of queued frames (not counting the frame on the wire). */
  queueBytes?: number;
  /** Probability a frame is lost on the wire. */
  loss?: number;
  /** Probability a frame is held back by `reorderDelay`. */
  reorder?: number;
  /** Extra delay of a reordered frame, ns. Default 1 ms. */
  reorderDelay?: Duration;
  /** Probability a frame is delivered twice. */
  duplicate?: number;
  /** Probability one random bit of a frame (after the Ethernet header) is flipped. */
  corrupt?: number;
  /** Step-marking threshold: ECT frames arriving to more than K waiting frames get CE. */
  ecnK?: number;
  /** Bytes added per frame for serialization only (preamble+FCS+IFG = 24 on real Ethernet). */
  overheadBytes?: number;
  /** Keep per-packet queue-delay samples, up to this many (default 1<<20; 0 disables). */
  maxQueueDelaySamples?: number;
}

/** Counters of one channel. */
export class ChannelStats {
  /** Frames offered by the transmitting port. */
  framesIn = 0;
  /** Bytes offered. */
  bytesIn = 0;
  /** Frames delivered to the far port (duplicates included). */
  framesOut = 0;
  /** Bytes delivered. */
  bytesOut = 0;
  /** Frames dropped because the queue was full. */
  droppedQueue = 0;
  /** Frames lost at random on the wire. */
  droppedLoss = 0;
  /** Frames delivered without a far port attached. */
  droppedNoPort = 0;
  /** ECT frames marked CE. */
  marked = 0;
  /** Extra copies made. */
  duplicated = 0;
  /** Frames with a flipped bit. */
  corrupted = 0;
  /** Frames given the extra reorder delay. */
  reordered = 0;
  /** Total serialization time of frames that finished serializing, ns (for utilization). */
  busyTime: Duration = 0;
  /** Largest queue seen, frames. */
  maxQueuePackets = 0;
  /** Largest queue seen, bytes. */
  maxQueueBytes = 0;
  /** Frames whose queue delay was measured (every frame that started serializing). */
  queueDelayCount = 0;
  /** Sum of queue delays, ns. */
  queueDelaySum: Duration = 0;
  /** Largest queue delay, ns. */
  queueDelayMax: Duration = 0;
  /** Samples not kept because `maxQueueDelaySamples` was reached. */
  queueDelaySamplesSkipped = 0;
  #samples: Float64Array = new Float64Array(0);
  #nSamples = 0;
  readonly #maxSamples: number;

  /** Creates zeroed counters keeping up to `maxSamples` queue-delay samples. */
  constructor(maxSamples: number) {
    this.#maxSamples = maxSamples;
  }

  /** Records one frame's queue delay (time from enqueue to start of serialization). */
  addQueueDelay(d: Duration): void {
    this.queueDelayCount++;
    this.queueDelaySum += d;
    if (d > this.queueDelayMax) this.queueDelayMax = d;
    if (this.#nSamples === this.#samples.length) {
      if (this.#nSamples >= this.#maxSamples) {
        this.queueDelaySamplesSkipped++;
        return;
      }
      const grown = new Float64Array(
        Math.min(this.#maxSamples, Math.max(1024, this.#samples.length * 2)),
      );
      grown.set(this.#samples);
      this.#samples = grown;
    }
    this.#samples[this.#nSamples++] = d;
  }

  /** Per-packet queue delays in ns, in transmission order (a view; copy to keep). */
  queueDelays(): Float64Array {
    return this.#samples.subarray(0, this.#nSamples);
  }

  /** Mean queue delay in ns (0 with no frames). */
  meanQueueDelay(): number {
    return this.queueDelayCount === 0 ? 0 : this.queueDelaySum / this.queueDelayCount;
  }

  /** Fraction of `elapsed` ns the wire was busy. */
  utilization(elapsed: Duration): number {
    return elapsed > 0 ? this.busyTime / elapsed : 0;
  }

  /** Plain copy of the counters (no samples). */
  snapshot(): Record<string, number> {
    return {
      framesIn: this.framesIn,
      bytesIn: this.bytesIn,
      framesOut: this.framesOut,
      bytesOut: this.bytesOut,
      droppedQueue: this.droppedQueue,
      droppedLoss: this.droppedLoss,
      droppedNoPort: this.droppedNoPort,
      marked: this.marked,
      duplicated: this.duplicated,
      corrupted: this.corrupted,
      reordered: this.reordered,
      busyTime: this.busyTime,
      maxQueuePackets: this.maxQueuePackets,
      maxQueueBytes: this.maxQueueBytes,
      queueDelayCount: this.queueDelayCount,
      queueDelaySum: this.queueDelaySum,
      queueDelayMax: this.queueDelayMax,
    };
  }
}

/** Thrown for channel parameters that cannot describe a link. */
export class ChannelParamsError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ChannelParamsError";
  }
}

function checkProbability(name: string, p: number | undefined): number {
  const v = p ?? 0;
  if (!(v >= 0 && v <= 1)) {
    throw new ChannelParamsError(`${name} must be a probability in [0, 1], got ${p}`);
  }
  return v;
}

/** One direction of a link. */
export class Channel implements EventHandler {
  /** Name (also the label its random streams are forked from). */
  readonly name: string;
  /** Counters. */
  readonly stats: ChannelStats;
  readonly #sim: Simulator;
  #src: SimPort | null = null;
  #dst: SimPort | null = null;

  #rate = 0;
  #delay = 0;
  #limitPackets = Number.POSITIVE_INFINITY;
  #limitBytes = Number.POSITIVE_INFINITY;
  #loss = 0;
  #reorder = 0;
  #reorderDelay: Duration = MILLISECOND;
  #duplicate = 0;
  #corrupt = 0;
  #ecnK = Number.POSITIVE_INFINITY;
  #overhead = 0;

  readonly #lossRng: Prng;
  readonly #reorderRng: Prng;
  readonly #dupRng: Prng;
  readonly #corruptRng: Prng;

  // Queue ring (frames waiting; the frame on the wire is not in it).
  #ring: (SimFrame | null)[] = new Array<SimFrame | null>(16).fill(null);
  #head = 0;
  #count = 0;
  #bytes = 0;
  #busy = false;
  /** Sub-ns remainder of serialization, in units of 1/rate ns. */
  #carry = 0;
  /**
   * Frames propagating in order of arrival. Only the head is in the event queue (through
   * `#arrival`), which keeps the global heap small however long the pipe is.
   */
  readonly #flight = new FrameRing();
  readonly #arrival: SimEvent = new SimEvent(this);
  /** When the frame on the wire started serializing. */
  #txStart: Instant = 0;

  /** Creates a channel; `attach()` it to ports (topology helpers do both). */
  constructor(sim: Simulator, name: string, params: ChannelParams) {
    this.#sim = sim;
    this.name = name;
    this.stats = new ChannelStats(params.maxQueueDelaySamples ?? 1 << 20);
    const rng = sim.forkRng(`channel:${name}`);
    this.#lossRng = rng.fork("loss");
    this.#reorderRng = rng.fork("reorder");
    this.#dupRng = rng.fork("duplicate");
    this.#corruptRng = rng.fork("corrupt");
    this.configure(params);
  }

  /** Changes parameters mid-run (e.g. a rate step); omitted fields keep their value. */
  configure(params: Partial<ChannelParams>): void {
    if (params.rateBps !== undefined) {
      if (!(params.rateBps > 0)) {
        throw new ChannelParamsError(`rateBps must be > 0 bit/s, got ${params.rateBps}`);
      }
      this.#rate = params.rateBps;
      this.#carry = 0;
    }
    if (params.delay !== undefined) {
      if (!(params.delay >= 0)) {
        throw new ChannelParamsError(`delay must be >= 0 ns, got ${params.delay}`);
      }
      this.#delay = params.delay;
    }
    if (params.queuePackets !== undefined) this.#limitPackets = params.queuePackets;
    if (params.queueBytes !== undefined) this.#limitBytes = params.queueBytes;
    if (
      this.#limitPackets === Number.POSITIVE_INFINITY &&
      this.#limitBytes === Number.POSITIVE_INFINITY
    ) this.#limitPackets = 1000;
    if (params.loss !== undefined) this.#loss = checkProbability("loss", params.loss);
    if (params.reorder !== undefined) this.#reorder = checkProbability("reorder", params.reorder);
    if (params.reorderDelay !== undefined) this.#reorderDelay = params.reorderDelay;
    if (params.duplicate !== undefined) {
      this.#duplicate = checkProbability("duplicate", params.duplicate);
    }
    if (params.corrupt !== undefined) this.#corrupt = checkProbability("corrupt", params.corrupt);
    if (params.ecnK !== undefined) this.#ecnK = params.ecnK;
    if (params.overheadBytes !== undefined) this.#overhead = params.overheadBytes;
  }

  /** Connects `src` (whose flushes feed this channel) to `dst` (which receives). */
  attach(src: SimPort, dst: SimPort): void {
    this.#src = src;
    this.#dst = dst;
    src.channel = this;
  }

  /** The transmitting port. */
  get source(): SimPort | null {
    return this.#src;
  }

  /** The receiving port. */
  get destination(): SimPort | null {
    return this.#dst;
  }

  /** Line rate, bit/s. */
  get rateBps(): number {
    return this.#rate;
  }

  /** Propagation delay, ns. */
  get delay(): Duration {
    return this.#delay;
  }

  /** Frames waiting in the queue (not counting the one on the wire). */
  get queuedPackets(): number {
    return this.#count;
  }

  /** Bytes waiting in the queue. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  /** True while a frame is serializing. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Serialization time of a frame of `length` bytes, ns, ignoring the carried remainder. */
  serializationTime(length: number): Duration {
    return Math.ceil(((length + this.#overhead) * 8 * SECOND) / this.#rate);
  }

  /** Would `packets` more frames totalling `bytes` fit (used by backpressured ports)? */
  hasRoom(packets: number, bytes: number): boolean {
    if (!this.#busy) {
      if (this.#count === 0 && packets === 1) return true;
      // The first of the frames will go straight onto the idle wire (its bytes are still
      // counted: conservative for byte limits).
      packets--;
    }
    return this.#count + packets <= this.#limitPackets && this.#bytes + bytes <= this.#limitBytes;
  }

  /** Takes ownership of `frame` from the transmitting port at `now`. */
  send(frame: SimFrame, now: Instant): void {
    const stats = this.stats;
    const len = frame.length;
    stats.framesIn++;
    stats.bytesIn += len;
    frame.enqueuedAt = now;
    if (!this.#busy) {
      this.#startTx(frame, now);
      return;
    }
    const count = this.#count;
    if (count + 1 > this.#limitPackets || this.#bytes + len > this.#limitBytes) {
      stats.droppedQueue++;
      frame.pool.release(frame);
      return;
    }
    if (count > this.#ecnK && markCongestionExperienced(frame.view) === "marked") {
      stats.marked++;
    }
    let ring = this.#ring;
    if (count === ring.length) ring = this.#grow();
    let i = this.#head + count;
    if (i >= ring.length) i -= ring.length;
    ring[i] = frame;
    this.#count = count + 1;
    this.#bytes += len;
    if (count + 1 > stats.maxQueuePackets) stats.maxQueuePackets = count + 1;
    if (this.#bytes > stats.maxQueueBytes) stats.maxQueueBytes = this.#bytes;
  }

  #grow(): (SimFrame | null)[] {
    const old = this.#ring;
    const ring = new Array<SimFrame | null>(old.length * 2).fill(null);
    for (let k = 0; k < this.#count; k++) ring[k] = old[(this.#head + k) % old.length]!;
    this.#ring = ring;
    this.#head = 0;
    return ring;
  }

  #startTx(frame: SimFrame, now: Instant): void {
    this.#busy = true;
    const rate = this.#rate;
    const num = (frame.length + this.#overhead) * 8 * SECOND + this.#carry;
    let t = Math.floor(num / rate);
    let carry = num - t * rate;
    // Guard against the quotient rounding up past an integer boundary.
    if (carry < 0) {
      t--;
      carry += rate;
    }
    this.#carry = carry;
    this.#txStart = now;
    this.stats.addQueueDelay(now - frame.enqueuedAt);
    frame.phase = 0;
    frame.handler = this;
    this.#sim.queue.schedule(frame, now + t);
  }

  /**
   * Event handler: the in-order arrival event (delivers every frame now due), a reordered
   * frame's own arrival (phase 1), or the end of a frame's serialization (phase 0).
   */
  fire(event: SimEvent, now: Instant): void {
    if (event === this.#arrival) {
      const flight = this.#flight;
      for (let f = flight.peek(); f !== null && f.due <= now; f = flight.peek()) {
        flight.shift();
        this.#deliver(f, now);
      }
      const next = flight.peek();
      if (next !== null) this.#sim.queue.schedule(this.#arrival, next.due);
      return;
    }
    const frame = event as SimFrame;
    if (frame.phase === 1) {
      this.#deliver(frame, now);
      return;
    }
    this.#busy = false;
    this.stats.busyTime += now - this.#txStart;
    this.#wireDone(frame, now);
    // Next frame onto the wire.
    if (this.#count > 0) {
      const ring = this.#ring;
      const h = this.#head;
      const next = ring[h]!;
      ring[h] = null;
      this.#head = h + 1 === ring.length ? 0 : h + 1;
      this.#count--;
      this.#bytes -= next.length;
      this.#startTx(next, now);
    }
    const src = this.#src;
    if (src !== null && src.blocked) src.roomAvailable();
  }

  /** The last bit of `frame` left at `now`: impairments, then propagation. */
  #wireDone(frame: SimFrame, now: Instant): void {
    const stats = this.stats;
    if (this.#loss > 0 && this.#lossRng.next() < this.#loss) {
      stats.droppedLoss++;
      frame.pool.release(frame);
      return;
    }
    if (this.#corrupt > 0 && this.#corruptRng.next() < this.#corrupt && frame.length > 0) {
      const len = frame.length;
      const from = len > 14 ? 14 : 0;
      const bit = this.#corruptRng.nextInt((len - from) * 8);
      const k = from + (bit >>> 3);
      frame.buf[k] = frame.buf[k]! ^ (1 << (bit & 7));
      stats.corrupted++;
    }
    let at = now + this.#delay;
    const reordered = this.#reorder > 0 && this.#reorderRng.next() < this.#reorder;
    if (reordered) {
      at += this.#reorderDelay;
      stats.reordered++;
    }
    const queue = this.#sim.queue;
    let copy: SimFrame | null = null;
    if (this.#duplicate > 0 && this.#dupRng.next() < this.#duplicate) {
      copy = frame.pool.acquire();
      copy.setLength(frame.length);
      copy.buf.set(frame.view);
      stats.duplicated++;
    }
    if (reordered) {
      // Reordered: its own event, so later frames overtake it.
      frame.phase = 1;
      frame.handler = this;
      queue.schedule(frame, at);
      if (copy !== null) {
        copy.phase = 1;
        copy.handler = this;
        queue.schedule(copy, at);
      }
      return;
    }
    // In order. A FIFO wire never lets a frame overtake: if the delay was lowered mid-run,
    // arrivals wait for the frame ahead.
    const flight = this.#flight;
    const last = flight.peekLast();
    if (last !== null && last.due > at) at = last.due;
    frame.due = at;
    const wasEmpty = flight.length === 0;
    flight.push(frame);
    if (copy !== null) {
      copy.due = at;
      flight.push(copy);
    }
    if (wasEmpty) queue.schedule(this.#arrival, at);
  }

  #deliver(frame: SimFrame, now: Instant): void {
    const dst = this.#dst;
    if (dst === null) {
      this.stats.droppedNoPort++;
      frame.pool.release(frame);
      return;
    }
    this.stats.framesOut++;
    this.stats.bytesOut += frame.length;
    dst.deliver(frame, now);
  }
}
