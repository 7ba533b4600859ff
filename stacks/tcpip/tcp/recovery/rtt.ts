/**
 * RFC 6298 retransmission-timer estimator: SRTT/RTTVAR smoothing, RTO = SRTT + max(G, 4*RTTVAR)
 * clamped to [minRto, maxRto], exponential backoff (5.5) capped at maxRto, and the minimum RTT.
 *
 * @module
 */

import { type Duration, type Instant, SECOND } from "../../../time.ts";

const SRTT = 0, RTTVAR = 1, MIN_RTT = 2, MIN_RTT_AT = 3, BASE = 4;

/**
 * RTT smoothing and RTO with backoff. Allocation-free: the fractional estimates live in a
 * Float64Array, because storing them in object fields allocated a heap number per store in
 * V8 (two per ACK for SRTT and RTTVAR, measured), while typed-array stores are in place.
 */
export class RtoEstimator {
  readonly #v = new Float64Array([-1, -1, -1, 0, 0]);
  /** How long a minimum stays valid without being matched (Linux tcp_min_rtt_wlen: 300 s). */
  minRttWindow: Duration = 300 * SECOND;
  /** Number of consecutive backoffs. */
  backoff = 0;

  /** Smoothed RTT, -1 before the first sample. */
  get srtt(): Duration {
    return this.#v[SRTT]!;
  }
  /** RTT variation, -1 before the first sample. */
  get rttvar(): Duration {
    return this.#v[RTTVAR]!;
  }
  /** Smallest sample within the last `minRttWindow`, -1 before the first. */
  get minRtt(): Duration {
    return this.#v[MIN_RTT]!;
  }

  /** Creates an estimator with the RFC 6298 constants supplied by the configuration. */
  constructor(
    readonly initialRto: Duration,
    readonly minRto: Duration,
    readonly maxRto: Duration,
    readonly granularity: Duration,
  ) {
    this.#v[BASE] = this.clamp(initialRto);
  }

  /** Back to the state before any sample. */
  reset(): void {
    const v = this.#v;
    v[SRTT] = -1;
    v[RTTVAR] = -1;
    v[MIN_RTT] = -1;
    v[MIN_RTT_AT] = 0;
    this.backoff = 0;
    v[BASE] = this.clamp(this.initialRto);
  }

  private clamp(v: Duration): Duration {
    return v < this.minRto ? this.minRto : v > this.maxRto ? this.maxRto : v;
  }

  /** The current RTO including backoff (base * 2^backoff, capped at maxRto). */
  get rto(): Duration {
    let v = this.#v[BASE]!;
    for (let i = 0; i < this.backoff && v < this.maxRto; i++) v *= 2;
    return v > this.maxRto ? this.maxRto : v;
  }

  /** Feeds one RTT measurement taken at `now` (RFC 6298 2.2/2.3). Negative samples are ignored. */
  sample(r: Duration, now: Instant = 0): void {
    if (r < 0) return;
    this.noteMin(r, now);
    const v = this.#v;
    let srtt = v[SRTT]!, rttvar = v[RTTVAR]!;
    if (srtt < 0) {
      srtt = r;
      rttvar = r / 2;
    } else {
      const err = srtt - r;
      rttvar = 0.75 * rttvar + 0.25 * (err < 0 ? -err : err);
      srtt = 0.875 * srtt + 0.125 * r;
    }
    // Whole nanoseconds: a fractional value is not a small integer, so every read through a
    // getter that is not inlined (armTlp, pacing, RACK's reordering window) boxed it as a heap
    // number. Half a nanosecond of rounding is far below any timer's resolution.
    srtt = Math.round(srtt);
    rttvar = Math.round(rttvar);
    v[SRTT] = srtt;
    v[RTTVAR] = rttvar;
    const k = 4 * rttvar;
    v[BASE] = this.clamp(srtt + (k > this.granularity ? k : this.granularity));
  }

  /**
   * Notes a min-RTT candidate (also one that must not drive the RTO, e.g. a SACK sample): a
   * new minimum, or any sample once the current minimum is older than `minRttWindow` (a path
   * change must not be hidden forever by an old, shorter path).
   */
  noteMin(r: Duration, now: Instant = 0): void {
    if (r < 0) return;
    const v = this.#v;
    const min = v[MIN_RTT]!;
    if (min < 0 || r <= min || now - v[MIN_RTT_AT]! > this.minRttWindow) {
      v[MIN_RTT] = r;
      v[MIN_RTT_AT] = now;
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
