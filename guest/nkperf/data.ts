/**
 * The data phase of a test: one send or receive loop per data connection, counting bytes into
 * `StreamCounter`s. Senders write the same random block (-l bytes) until stopped; receivers
 * read into one block-sized buffer each and count until stopped, then drain without counting
 * until the peer closes or `closeAll()` (so a sender that is still writing never stalls on a
 * full window while the control channel finishes).
 *
 * @module
 */

import { type Instant, monotonicNow, monotonicNowInto, SECOND } from "../../stacks/time.ts";
import type { NetApi } from "./net.ts";
import {
  intervalHeader,
  intervalLines,
  IntervalMeter,
  type Json,
  rebaseStreams,
  type StreamCounter,
} from "./report.ts";

/** Runs and stops the data loops of one test. */
export class DataPhase {
  /** The counters, one per data connection, in connection order. */
  readonly streams: readonly StreamCounter[];
  readonly #isSender: boolean;
  readonly #len: number;
  readonly #clock: () => Instant;
  /** `monotonicNowInto` when `#clock` is `monotonicNow`: readings stored, not returned. */
  readonly #clockInto: ((cells: Float64Array, i: number) => void) | null;
  #stopped = false;
  #loops: Promise<void>[] = [];
  /** The callback loops' steps: run by stop() and closeAll() so the loops see them. */
  readonly #wakers: (() => void)[] = [];
  /** First error a loop hit before the stop (a reset connection, say), if any. */
  error: unknown = undefined;

  /** Prepares loops over `streams`; `len` is the block length (-l). */
  constructor(
    streams: readonly StreamCounter[],
    isSender: boolean,
    len: number,
    clock: () => Instant,
  ) {
    this.streams = streams;
    this.#isSender = isSender;
    this.#len = len;
    this.#clock = clock;
    this.#clockInto = clock === monotonicNow ? monotonicNowInto : null;
  }

  /** A receiver's read counted: its end moves to now. */
  #markEnd(s: StreamCounter): void {
    const into = this.#clockInto;
    if (into !== null) into(s.endCell, 0);
    else s.endNs = this.#clock();
  }

  /** Whether `stop()` was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Starts every loop, counting from `now`. */
  start(now: Instant): void {
    const block = new Uint8Array(this.#len);
    if (this.#isSender) crypto.getRandomValues(block.subarray(0, Math.min(block.length, 65536)));
    for (const s of this.streams) {
      s.startNs = now;
      s.endNs = now;
      this.#loops.push(
        this.#isSender ? this.#send(s, block) : this.#receive(s, new Uint8Array(this.#len)),
      );
    }
  }

  #send(s: StreamCounter, block: Uint8Array): Promise<void> {
    const c = s.conn;
    if (c.tryWrite !== undefined && c.onWritable !== undefined) {
      return this.#sendByCallback(s, block, c.tryWrite.bind(c), c.onWritable.bind(c));
    }
    return this.#sendAwaiting(s, block);
  }

  async #sendAwaiting(s: StreamCounter, block: Uint8Array): Promise<void> {
    try {
      while (!this.#stopped) {
        // A write that completes after the stop still counts: the peer reads it before it
        // sees TEST_END, so sender and receiver totals stay comparable.
        s.bytes += await s.conn.write(block);
      }
    } catch (e) {
      if (!this.#stopped) this.error ??= e;
    }
  }

  /**
   * The send loop on a connection that calls back when writable (GuestLib): queue what fits,
   * return, and go on when called again; no promise per block or per wait. The block is sent
   * as a stream from where the last call stopped, as whole writes would.
   */
  #sendByCallback(
    s: StreamCounter,
    block: Uint8Array,
    tryWrite: (p: Uint8Array, start: number, end: number) => number,
    onWritable: (f: (() => void) | null) => void,
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      let off = 0;
      let done = false;
      const push = (): void => {
        if (done) return;
        try {
          while (!this.#stopped) {
            const n = tryWrite(block, off, block.length);
            s.bytes += n;
            off += n;
            if (off === block.length) off = 0;
            else return; // called again when there is room
          }
        } catch (e) {
          if (!this.#stopped) this.error ??= e;
        }
        done = true;
        onWritable(null);
        resolve();
      };
      this.#wakers.push(push);
      onWritable(push);
      push();
    });
  }

  #receive(s: StreamCounter, buf: Uint8Array): Promise<void> {
    const c = s.conn;
    if (c.tryRead !== undefined && c.onReadable !== undefined) {
      return this.#receiveByCallback(s, buf, c.tryRead.bind(c), c.onReadable.bind(c));
    }
    return this.#receiveAwaiting(s, buf);
  }

  async #receiveAwaiting(s: StreamCounter, buf: Uint8Array): Promise<void> {
    try {
      for (;;) {
        const n = await s.conn.read(buf);
        if (n === null) break;
        if (!this.#stopped) {
          s.bytes += n;
          this.#markEnd(s);
        }
      }
    } catch (e) {
      if (!this.#stopped) this.error ??= e;
    }
  }

  /**
   * The receive loop on a connection that calls back when readable (GuestLib): read what
   * arrived, return, go on when called again; no promise per read or per wait. The end time
   * is read once per burst of reads (the clock's answer is a new heap number per call).
   */
  #receiveByCallback(
    s: StreamCounter,
    buf: Uint8Array,
    tryRead: (p: Uint8Array) => number | null,
    onReadable: (f: (() => void) | null) => void,
  ): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const pull = (): void => {
        if (done) return;
        let counted = false;
        try {
          for (;;) {
            const n = tryRead(buf);
            if (n === null) break;
            if (n === -1) {
              if (counted && !this.#stopped) this.#markEnd(s);
              return; // called again when more arrives
            }
            if (!this.#stopped) {
              s.bytes += n;
              counted = true;
            }
          }
        } catch (e) {
          if (!this.#stopped) this.error ??= e;
        }
        if (counted && !this.#stopped) this.#markEnd(s);
        done = true;
        onReadable(null);
        resolve();
      };
      this.#wakers.push(pull);
      onReadable(pull);
      pull();
    });
  }

  /**
   * Stops counting at `now`. Senders finish their current write within `graceMs` (then their
   * connections are closed); receivers keep draining until `closeAll()`.
   */
  async stop(now: Instant, graceMs: number): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (!this.#isSender) return;
    for (const s of this.streams) s.endNs = now;
    this.#wake();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = await Promise.race([
      Promise.all(this.#loops).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (expired) this.closeAll();
  }

  /** Closes every data connection and waits (bounded) for the loops to end. */
  async closeAll(): Promise<void> {
    this.#stopped = true;
    for (const s of this.streams) {
      try {
        s.conn.close();
      } catch {
        // Already closed by the peer or an earlier stop.
      }
    }
    this.#wake();
    await Promise.allSettled(this.#loops);
  }

  #wake(): void {
    for (const w of this.#wakers) w();
  }
}

/** Options of `IntervalClock`. */
export interface IntervalClockOptions {
  /** The counters to sample. */
  readonly streams: readonly StreamCounter[];
  /** Whether this side sends the data. */
  readonly isSender: boolean;
  /** Asked for TCP_INFO in samples. */
  readonly net: NetApi;
  /** Monotonic clock. */
  readonly clock: () => Instant;
  /** Seconds between samples (0 = no interval reports). */
  readonly intervalSec: number;
  /** -O warm-up seconds: sampled as one omitted interval, then the counters restart. */
  readonly omitSec: number;
  /** Planned measured seconds (no tick is scheduled at or after the end); Infinity if unknown. */
  readonly durationSec: number;
  /** Called with each interval sample as it is taken. */
  readonly onInterval: (iv: Json) => void;
}

/**
 * The timeline of a running test on one side: the -O warm-up, interval samples every -i
 * seconds from the measured start, and the tail sample at the end. Timers only; the data loops
 * run in `DataPhase`.
 */
export class IntervalClock {
  readonly #o: IntervalClockOptions;
  #meter: IntervalMeter | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #finished = false;
  /** Start of the measured part (after -O); what results and intervals count from. */
  t0: Instant = 0;
  /** Interval samples taken so far (iperf3's `intervals[]`). */
  readonly intervals: Json[] = [];

  /** Prepares the timeline; nothing runs until `start`. */
  constructor(o: IntervalClockOptions) {
    this.#o = o;
  }

  /** Starts at `now` (when the data loops start). */
  start(now: Instant): void {
    const o = this.#o;
    this.t0 = now;
    this.#meter = new IntervalMeter(o.streams, o.isSender, now, o.net);
    if (o.omitSec > 0) {
      this.#timer = setTimeout(() => this.#endOmit(), o.omitSec * 1000);
    } else this.#schedule(1);
  }

  #endOmit(): void {
    const o = this.#o;
    const now = o.clock();
    if (o.intervalSec > 0) this.#push(this.#meter!.sample(now, true));
    rebaseStreams(o.streams, now, o.isSender, o.net);
    this.t0 = now;
    this.#meter = new IntervalMeter(o.streams, o.isSender, now, o.net);
    this.#schedule(1);
  }

  #schedule(k: number): void {
    const o = this.#o;
    if (o.intervalSec <= 0 || this.#finished) return;
    const due = this.t0 + k * o.intervalSec * SECOND;
    if (due >= this.t0 + o.durationSec * SECOND) return; // `finish` takes the last sample
    this.#timer = setTimeout(() => {
      this.#push(this.#meter!.sample(o.clock()));
      this.#schedule(k + 1);
    }, Math.max(0, (due - o.clock()) / 1e6));
  }

  #push(iv: Json): void {
    this.intervals.push(iv);
    this.#o.onInterval(iv);
  }

  /**
   * Stops the timers at `now` and takes the tail sample; a tail shorter than 5% of -i is
   * folded away (timer jitter), as iperf3 does.
   */
  finish(now: Instant): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timer);
    const o = this.#o;
    const m = this.#meter;
    if (
      o.intervalSec > 0 && m !== undefined && now - m.lastSampleAt > 0.05 * o.intervalSec * SECOND
    ) {
      this.#push(m.sample(now));
    }
  }

  /** Clears the timers without a sample (error paths). */
  cancel(): void {
    this.#finished = true;
    clearTimeout(this.#timer);
  }
}

/**
 * Starts a test's measured run at `now`, the same way on client and server: prints the interval
 * header (when -i > 0), then starts the data loops and a timeline that prints each interval
 * sample as iperf3 does. Returns the running timeline.
 */
export function startRun(
  phase: DataPhase,
  o: Omit<IntervalClockOptions, "onInterval">,
  now: Instant,
  text: ((line: string) => void) | undefined,
): IntervalClock {
  if (o.intervalSec > 0) text?.(intervalHeader(o.net.tcpInfo !== undefined && o.isSender));
  const timeline = new IntervalClock({
    ...o,
    onInterval: (iv) => {
      for (const l of intervalLines(iv)) text?.(l);
    },
  });
  phase.start(now);
  timeline.start(now);
  return timeline;
}
