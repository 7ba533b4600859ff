/**
 * Periodic sampling of a channel's queue, for plots and for researchers comparing congestion
 * controls: queue length in frames and bytes, and cumulative delivered bytes (throughput), at
 * a fixed virtual-time interval. One reusable event, samples in growable typed arrays.
 *
 * @module
 */

import type { Duration, Instant } from "../stacks/time.ts";
import { SimEvent } from "./event_queue.ts";
import type { EventHandler } from "./event_queue.ts";
import type { Channel } from "./channel.ts";
import type { Simulator } from "./simulator.ts";

/** Thrown for a sampling interval that is not a positive number of ns. */
export class MonitorIntervalError extends RangeError {
  /** Creates the error. */
  constructor(interval: number) {
    super(`sampling interval must be > 0 ns, got ${interval}; e.g. 1_000_000 for 1 ms`);
    this.name = "MonitorIntervalError";
  }
}

/** Samples `channel` every `interval` ns from `start` (default: now) until `stop()`. */
export class QueueMonitor implements EventHandler {
  readonly #sim: Simulator;
  readonly #channel: Channel;
  readonly #interval: Duration;
  readonly #event: SimEvent;
  #n = 0;
  #time = new Float64Array(256);
  #packets = new Float64Array(256);
  #bytes = new Float64Array(256);
  #delivered = new Float64Array(256);

  /** Starts sampling. */
  constructor(sim: Simulator, channel: Channel, interval: Duration, start: Instant = sim.now) {
    if (!(interval > 0)) throw new MonitorIntervalError(interval);
    this.#sim = sim;
    this.#channel = channel;
    this.#interval = interval;
    this.#event = new SimEvent(this);
    sim.scheduleEvent(this.#event, start);
  }

  /** Event handler: takes one sample and schedules the next. */
  fire(event: SimEvent): void {
    const now = event.time;
    if (this.#n === this.#time.length) this.#grow();
    const i = this.#n++;
    const ch = this.#channel;
    this.#time[i] = now;
    this.#packets[i] = ch.queuedPackets;
    this.#bytes[i] = ch.queuedBytes;
    this.#delivered[i] = ch.stats.bytesOut;
    this.#sim.queue.schedule(this.#event, now + this.#interval);
  }

  #grow(): void {
    const grow = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.#time = grow(this.#time);
    this.#packets = grow(this.#packets);
    this.#bytes = grow(this.#bytes);
    this.#delivered = grow(this.#delivered);
  }

  /** Stops sampling (samples taken so far stay available). */
  stop(): void {
    this.#sim.cancel(this.#event);
  }

  /** Number of samples. */
  get length(): number {
    return this.#n;
  }

  /** Sample times, ns (a view; copy to keep). */
  get times(): Float64Array {
    return this.#time.subarray(0, this.#n);
  }

  /** Frames waiting in the queue at each sample. */
  get queuePackets(): Float64Array {
    return this.#packets.subarray(0, this.#n);
  }

  /** Bytes waiting in the queue at each sample. */
  get queueBytes(): Float64Array {
    return this.#bytes.subarray(0, this.#n);
  }

  /** Cumulative bytes delivered by the channel at each sample (differences give throughput). */
  get deliveredBytes(): Float64Array {
    return this.#delivered.subarray(0, this.#n);
  }
}
