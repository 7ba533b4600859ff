/**
 * The data phase of a test: one send or receive loop per data connection, counting bytes into
 * `StreamCounter`s. Senders write the same random block (-l bytes) until stopped; receivers
 * read into one block-sized buffer each and count until stopped, then drain without counting
 * until the peer closes or `closeAll()` (so a sender that is still writing never stalls on a
 * full window while the control channel finishes).
 *
 * @module
 */

import type { Instant } from "../../stacks/time.ts";
import { StreamCounter } from "./report.ts";

/** Runs and stops the data loops of one test. */
export class DataPhase {
  /** The counters, one per data connection, in connection order. */
  readonly streams: readonly StreamCounter[];
  readonly #isSender: boolean;
  readonly #len: number;
  readonly #clock: () => Instant;
  #stopped = false;
  #loops: Promise<void>[] = [];
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

  async #send(s: StreamCounter, block: Uint8Array): Promise<void> {
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

  async #receive(s: StreamCounter, buf: Uint8Array): Promise<void> {
    try {
      for (;;) {
        const n = await s.conn.read(buf);
        if (n === null) break;
        if (!this.#stopped) {
          s.bytes += n;
          s.endNs = this.#clock();
        }
      }
    } catch (e) {
      if (!this.#stopped) this.error ??= e;
    }
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
    await Promise.allSettled(this.#loops);
  }
}
