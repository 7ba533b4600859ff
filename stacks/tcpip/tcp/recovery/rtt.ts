/**
 * RFC 6298 retransmission-timer estimator: SRTT/RTTVAR smoothing, RTO = SRTT + max(G, 4*RTTVAR)
 * clamped to [minRto, maxRto], exponential backoff (5.5) capped at maxRto, and the minimum RTT.
 *
 * @module
 */

import { type Duration, type Instant, SECOND } from "../../../time.ts";

/** RTT smoothing and RTO with backoff. Allocation-free. */
export class RtoEstimator {
  /** Smoothed RTT, -1 before the first sample. */
  srtt: Duration = -1;
  /** RTT variation, -1 before the first sample. */
  rttvar: Duration = -1;
  /** Smallest sample within the last `minRttWindow`, -1 before the first. */
  minRtt: Duration = -1;
  /** How long a minimum stays valid without being matched (Linux tcp_min_rtt_wlen: 300 s). */
  minRttWindow: Duration = 300 * SECOND;
  private minRttAt: Instant = 0;
  /** Number of consecutive backoffs. */
  backoff = 0;
  private base: Duration;

  /** Creates an estimator with the RFC 6298 constants supplied by the configuration. */
  constructor(
    readonly initialRto: Duration,
    readonly minRto: Duration,
    readonly maxRto: Duration,
    readonly granularity: Duration,
  ) {
    this.base = this.clamp(initialRto);
  }

  /** Back to the state before any sample. */
  reset(): void {
    this.srtt = -1;
    this.rttvar = -1;
    this.minRtt = -1;
    this.minRttAt = 0;
    this.backoff = 0;
    this.base = this.clamp(this.initialRto);
  }

  private clamp(v: Duration): Duration {
    return v < this.minRto ? this.minRto : v > this.maxRto ? this.maxRto : v;
  }

  /** The current RTO including backoff (base * 2^backoff, capped at maxRto). */
  get rto(): Duration {
    let v = this.base;
    for (let i = 0; i < this.backoff && v < this.maxRto; i++) v *= 2;
    return v > this.maxRto ? this.maxRto : v;
  }

  /** Feeds one RTT measurement taken at `now` (RFC 6298 2.2/2.3). Negative samples are ignored. */
  sample(r: Duration, now: Instant = 0): void {
    if (r < 0) return;
    this.noteMin(r, now);
    if (this.srtt < 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      const err = this.srtt - r;
      this.rttvar = 0.75 * this.rttvar + 0.25 * (err < 0 ? -err : err);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    const k = 4 * this.rttvar;
    this.base = this.clamp(this.srtt + (k > this.granularity ? k : this.granularity));
  }

  /**
   * Notes a min-RTT candidate (also one that must not drive the RTO, e.g. a SACK sample): a
   * new minimum, or any sample once the current minimum is older than `minRttWindow` (a path
   * change must not be hidden forever by an old, shorter path).
   */
  noteMin(r: Duration, now: Instant = 0): void {
    if (r < 0) return;
    if (this.minRtt < 0 || r <= this.minRtt || now - this.minRttAt > this.minRttWindow) {
      this.minRtt = r;
      this.minRttAt = now;
    }
  }

  /** Doubles the timer after an expiry (RFC 6298 5.5). */
  backOff(): void {
    if (this.rto < this.maxRto) this.backoff++;
  }

  /** Forgets the backoff (new data was acknowledged). */
  clearBackoff(): void {
    this.backoff = 0;
  }
}
