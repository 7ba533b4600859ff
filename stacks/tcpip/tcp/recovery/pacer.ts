/**
 * Transmission pacing by a virtual send clock: each segment advances the clock by its
 * serialization time at the pacing rate, and a segment may leave once the real clock has
 * reached the virtual one. After idle the virtual clock is pulled up to `now - credit`, so a
 * small burst (the credit plus one segment) may leave back-to-back; idle time is never banked
 * beyond that, which keeps bursts bounded after application pauses.
 *
 * @module
 */

import type { Instant } from "../../../time.ts";
import { AS_DOUBLE } from "../f64.ts";

/** Timestamp-based pacer. Allocation-free. */
export class Pacer {
  /** Pacing rate in bytes per second; 0 or less disables pacing. */
  rate = AS_DOUBLE;
  /** Bytes the sender may run ahead of the rate after idle (burst = credit + one segment). */
  credit = AS_DOUBLE;
  /** The virtual send clock (read by the engine's allocation-free `pacedAfter`). */
  vt: Instant = Number.NEGATIVE_INFINITY;
  constructor() {
    // Double fields from the start (see f64.ts), then their real start values.
    this.rate = 0;
    this.credit = 0;
  }

  /** Forgets the send history (a new connection). */
  reset(): void {
    this.vt = Number.NEGATIVE_INFINITY;
  }

  /** Sets the rate (bytes/s) and the burst credit (bytes). */
  configure(rate: number, credit: number): void {
    this.rate = rate;
    this.credit = credit;
  }

  /** Earliest time the next segment may leave; -Infinity when not pacing or never sent. */
  nextSendTime(): Instant {
    return this.rate > 0 ? this.vt : Number.NEGATIVE_INFINITY;
  }

  /** Charges a `len`-byte segment sent at `now`. */
  onSend(len: number, now: Instant): void {
    if (this.rate <= 0) return;
    const floor = now - (this.credit * 1e9) / this.rate;
    this.vt = (this.vt > floor ? this.vt : floor) + (len * 1e9) / this.rate;
  }
}
