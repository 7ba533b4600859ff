/**
 * The contract between the TCP core (state machine, buffers, sockets) and the sender's
 * loss-recovery and congestion engine (`RecoveryEngine`, one per connection).
 *
 * The engine is a pure, time-injected state machine: the core reports every transmission
 * (`onSend`), every acceptable ACK (`onAck`) and every timer expiry (`onTimer`), and asks what
 * to send (`nextRetransmit`, `sendQuota`, `canSend`, `nextSendTime`) and when to wake up
 * (`pollAt`). The engine never sends anything itself and never reads a clock.
 *
 * Sequence space: the engine tracks every sequence number in `[snd_una, snd_nxt)`, so SYN and
 * FIN each count as one byte of length in `onSend` (a SYN with no data is `len = 1`).
 * Bytes and sequence numbers are the same unit everywhere (cwnd, quota, in-flight).
 *
 * Result objects (`AckResult`, `RateSample`, `RetransmitRange`, `RecoveryInfo`) are owned and
 * reused by the engine: read them before the next call into the engine, do not keep them.
 *
 * See /work/notes/recovery_api.md for the exact call sequence.
 *
 * @module
 */

import type { Duration, Instant } from "../../../time.ts";
import type { Seq } from "../seq.ts";
import type { AckSample, CongestionControl } from "./cc.ts";
import { AS_DOUBLE } from "../f64.ts";

/**
 * Linux-style congestion state of the sender (TCP_INFO `tcpi_ca_state`):
 * "open" nothing odd; "disorder" SACKs or dupacks seen but no loss declared yet;
 * "recovery" fast recovery (PRR governs sending) until snd_una reaches the recovery point;
 * "loss" after an RTO until snd_una reaches the point that was snd_nxt when it fired.
 */
export type RecoveryState = "open" | "disorder" | "recovery" | "loss";

/**
 * What `onTimer()` found due: "rto" retransmission timeout (everything outstanding is marked
 * lost; send `nextRetransmit()`), "tlp" tail loss probe (send one new segment if the core has
 * one, else the engine offers the last segment via `nextRetransmit()`), "reorder" the RACK
 * reordering window ran out (segments may now be marked lost; send `nextRetransmit()`),
 * "none" nothing was due.
 */
export type TimerKind = "none" | "rto" | "tlp" | "reorder";

/** Per-connection settings. Every field except `mss` has a Linux-like default. */
export interface RecoveryConfig {
  /** Sender MSS in bytes (payload per full segment). Change later with `setMss()`. */
  mss: number;
  /** SACK negotiated (default true until `setNegotiated()` says otherwise). */
  sack?: boolean;
  /**
   * Timestamps negotiated (default false). When true the core passes RTT samples taken from
   * TSecr in `onAck`; when false the engine measures RTT itself under Karn's rule.
   */
  timestamps?: boolean;
  /** Tick of the core's TSval clock, used to decide Eifel spurious detection safely. Default 1 ms. */
  tsGranularity?: Duration;
  /** RTO before any RTT sample (RFC 6298 2.1). Default 1 s. */
  initialRto?: Duration;
  /** Lower bound of the RTO. Default 200 ms (Linux TCP_RTO_MIN); RFC 6298 says 1 s. */
  minRto?: Duration;
  /** Upper bound of the RTO, also of the backed-off RTO. Default 120 s (Linux TCP_RTO_MAX). */
  maxRto?: Duration;
  /** Clock granularity G in RTO = SRTT + max(G, 4*RTTVAR). Default 1 ms. */
  clockGranularity?: Duration;
  /** DupThresh of RFC 5681/6675. Default 3. */
  dupThresh?: number;
  /** RACK time-based loss detection (RFC 8985). Default true (needs SACK). */
  rack?: boolean;
  /** Tail loss probes (RFC 8985 section 7). Default true (needs SACK and an RTT sample). */
  tlp?: boolean;
  /** Worst-case delayed-ACK time added to the PTO with one segment in flight. Default 200 ms. */
  delayedAckAllowance?: Duration;
  /** Pace transmissions (`nextSendTime()`). Default false (always true if the CC sets a rate). */
  pacing?: boolean;
  /** Segments that may leave back-to-back before pacing spaces them. Default 2. */
  pacingBurstSegments?: number;
  /**
   * Initial capacity of the in-flight record ring, in records (grown by doubling when a window
   * needs more; steady state allocates nothing). Default 16 (96 bytes per record).
   */
  capacity?: number;
  /** Congestion control instance, or a registry name (`createCc`). Default "reno". */
  cc?: CongestionControl | string;
}

/**
 * One delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation), produced by every
 * `onAck` that delivered data (cumulatively or by SACK). Reused by the engine.
 */
export class RateSample {
  /** Bytes delivered during `interval` (C.delivered - P.delivered of the newest acked packet). */
  delivered = AS_DOUBLE;
  /** Bytes newly ACKed/SACKed by this ACK when it carried ECE, else 0 (per ACK, see AckSample). */
  deliveredCe = AS_DOUBLE;
  /** Sample interval = max(send elapsed, ack elapsed); -1 when invalid (no delivery or < minRtt). */
  interval: Duration = AS_DOUBLE;
  /** RTT of the newest delivered, never-retransmitted packet; -1 when none. */
  rtt: Duration = AS_DOUBLE;
  /** Bytes newly marked lost by this ACK. */
  losses = 0;
  /** Bytes in flight (RFC 6675 pipe) before this ACK was processed. */
  priorInFlight = 0;
  /** `delivered` counter snapshot of the packet the sample is taken from. */
  priorDelivered = AS_DOUBLE;
  /** True when the sampled packet was sent while the application limited the flow. */
  isAppLimited = false;
  /** Bytes newly acknowledged or SACKed by this ACK (the DeliveredData of RFC 6937). */
  ackedSacked = AS_DOUBLE;
  constructor() {
    // Double fields from the start (see f64.ts), then their real start values.
    this.delivered = 0;
    this.deliveredCe = 0;
    this.interval = -1;
    this.rtt = -1;
    this.priorDelivered = 0;
    this.ackedSacked = 0;
  }

  /** `delivered / interval` in bytes per second, or 0 when the sample is invalid. */
  get deliveryRate(): number {
    return this.interval > 0 ? (this.delivered * 1e9) / this.interval : 0;
  }
}

/** What one `onAck()` did. Reused by the engine: read it before the next engine call. */
export class AckResult {
  /** True when the ACK was ignored (acks beyond snd_nxt); nothing else is meaningful then. */
  ignored = false;
  /** Bytes by which snd_una advanced (SYN/FIN count 1). */
  newlyAckedBytes = 0;
  /** Segment records fully removed by the cumulative ACK. */
  newlyAckedPackets = 0;
  /** Bytes newly marked SACKed by this ACK's blocks. */
  newlySackedBytes = 0;
  /** Bytes newly marked lost (by RACK, DupThresh, or NewReno partial ACK). */
  newlyLostBytes = 0;
  /** Segment records newly marked lost. */
  newlyLostPackets = 0;
  /** True when the ACK carried a D-SACK (RFC 2883). */
  dsack = false;
  /** The RTT sample fed to the RTO estimator, or -1 (none, or Karn's rule forbade one). */
  rttSample: Duration = AS_DOUBLE;
  /** True when this ACK entered fast recovery (the core should send `nextRetransmit()`). */
  enteredRecovery = false;
  /** True when this ACK ended fast recovery or RTO loss state. */
  exitedRecovery = false;
  /** True when this ACK proved the last reduction spurious (Eifel or D-SACK) and undid it. */
  spuriousUndo = false;
  /** True when this ACK counted as a duplicate ACK (RFC 5681 definition). */
  dupAck = false;
  /** The delivery-rate sample of this ACK. */
  readonly rate: RateSample = new RateSample();
  constructor() {
    // Double fields from the start (see f64.ts), then their real start values.
    this.rttSample = -1;
  }
}

/** A range the core must (re)transmit now. Reused by the engine. */
export class RetransmitRange {
  /** First sequence number to send. */
  seq: Seq = AS_DOUBLE;
  /** Length in sequence space (at most the MSS; a FIN counts 1). */
  len = 0;
  /** True when this is a tail loss probe of the last segment (not a declared loss). */
  isProbe = false;
  constructor() {
    // Double fields from the start (see f64.ts), then their real start values.
    this.seq = 0;
  }
}

/** Counters and estimators for TCP_INFO. Filled by `RecoveryEngine.info()`. */
export class RecoveryInfo {
  /** Current congestion state. */
  state: RecoveryState = "open";
  /** Congestion window in bytes. */
  cwnd: number = 0;
  /** Slow-start threshold in bytes (Infinity when never set). */
  ssthresh: number = Infinity;
  /** Smoothed RTT, or -1 before the first sample. */
  srtt: Duration = AS_DOUBLE;
  /** RTT variance, or -1 before the first sample. */
  rttvar: Duration = AS_DOUBLE;
  /** Current RTO including backoff. */
  rto: Duration = AS_DOUBLE;
  /** Number of consecutive RTO backoffs. */
  backoff = 0;
  /** Minimum RTT seen, or -1. */
  minRtt: Duration = AS_DOUBLE;
  /** Bytes in flight (RFC 6675 pipe). */
  inFlight = 0;
  /** snd_nxt - snd_una. */
  outstanding = 0;
  /** Bytes currently SACKed above snd_una. */
  sackedBytes = AS_DOUBLE;
  /** Bytes currently marked lost and not retransmitted-in-flight. */
  lostBytes = AS_DOUBLE;
  /** Total bytes cumulatively acknowledged. */
  bytesAcked = AS_DOUBLE;
  /** Total bytes sent (new data and retransmissions). */
  bytesSent = AS_DOUBLE;
  /** Total retransmitted segments. */
  retransSegs = 0;
  /** Total retransmitted bytes. */
  retransBytes = AS_DOUBLE;
  /** Total segments ever marked lost. */
  lostSegs = 0;
  /** Reductions undone as spurious. */
  spuriousUndos = 0;
  /** D-SACKs received. */
  dsacks = 0;
  /** RTO expirations. */
  rtoCount = 0;
  /** Tail loss probes sent. */
  tlpCount = 0;
  /** Fast recovery episodes entered. */
  recoveries = 0;
  /** Last valid delivery rate, bytes/s. */
  deliveryRate = AS_DOUBLE;
  /** Pacing rate in use, bytes/s (0 = not pacing). */
  pacingRate = AS_DOUBLE;
  /** True once reordering was observed (RACK). */
  reorderingSeen = false;
  /** Current RACK reordering window. */
  reoWnd: Duration = AS_DOUBLE;
  constructor() {
    // Double fields from the start (see f64.ts), then their real start values.
    this.srtt = -1;
    this.rttvar = -1;
    this.rto = 0;
    this.minRtt = -1;
    this.sackedBytes = 0;
    this.lostBytes = 0;
    this.bytesAcked = 0;
    this.bytesSent = 0;
    this.retransBytes = 0;
    this.deliveryRate = 0;
    this.pacingRate = 0;
    this.reoWnd = 0;
  }
}

/**
 * The engine's public surface, implemented by `RecoveryEngine` (engine.ts,
 * `new RecoveryEngine(config)`). All methods are cheap; none allocates in steady state.
 */
export interface RecoveryEngineApi {
  /**
   * Starts (or restarts, for a reused instance) tracking a connection whose first sequence
   * number is `iss` (snd_una = snd_nxt = iss). Resets estimators, counters and the CC.
   * Call once before `onSend` of the SYN.
   */
  reset(iss: Seq, now: Instant): void;

  /** Updates the MSS (after the handshake or on a path-MTU change). */
  setMss(mss: number): void;

  /**
   * Live swap of the congestion control (TCP_CONGESTION on an established socket). A string is
   * looked up with `createCc` (unknown or quarantined names give Reno). The new algorithm gets
   * `initFromState({cwnd, ssthresh, pacingRate} of the old one, srtt, minRtt, pipe, mss,
   * totalDelivered)`, or `init()` when it lacks that hook (it then restarts from its initial
   * window); then `setEcnNegotiated(ecn)` and, when not "open", `onStateChange(state)`. The old
   * instance is released (`release?.()`), and pacing is re-read from the new one.
   */
  setCc(cc: CongestionControl | string, now: Instant): void;

  /**
   * The connection is gone: releases the congestion control (`release?.()`, idempotent) and
   * drops the observer. Call once when the TCB is freed.
   */
  dispose(): void;

  /**
   * Observer called after `cc.onAck()` for every ACK that delivered data, with the engine's
   * reused sample and the CC in use (read both at once). Null by default.
   */
  onAckSample: ((s: AckSample, cc: CongestionControl) => void) | null;

  /**
   * Records what the handshake negotiated: SACK permitted, timestamps in use, ECN in use
   * (forwarded to `cc.setEcnNegotiated?.(ecn)`; `reset()` tells it false).
   * Without SACK the engine uses NewReno dupack counting (RFC 5681/6582) and disables RACK/TLP.
   */
  setNegotiated(sack: boolean, timestamps: boolean, ecn: boolean): void;

  /**
   * The peer's current send window in bytes (SND.WND, already scaled), measured from snd_una.
   * Call whenever it changes (typically after `onAck`). Only `sendQuota()` uses it.
   */
  setPeerWindow(bytes: number): void;

  /**
   * Records one transmitted segment `[seq, seq+len)` (len in sequence space: SYN/FIN count 1).
   * New data must start at snd_nxt; a retransmission (`isRetransmit`) must lie inside
   * `[snd_una, snd_nxt)` and may cover part of a record or several records.
   * Charges PRR and the pacer. Must be called for every data, SYN and FIN segment sent
   * (not for pure ACKs).
   */
  onSend(seq: Seq, len: number, now: Instant, isRetransmit: boolean): void;

  /**
   * Tells the engine the application has no more data to send right now although the window
   * would allow it (the core's send loop stopped for lack of data, not for cwnd/rwnd/pacing).
   * Marks rate samples app-limited until this data is delivered.
   */
  onAppLimited(): void;

  /**
   * Processes an acceptable ACK (the core has already dropped ACKs of unsent data, RFC 9293).
   * @param now arrival time
   * @param ack the cumulative acknowledgment number
   * @param sackBlocks SACK blocks as (left, right) pairs: left0, right0, left1, right1, ...
   *   (e.g. `TcpRepr.sackBlocks`); only the first `sackCount` pairs are read
   * @param sackCount number of blocks (0 when none or SACK not negotiated)
   * @param tsRtt RTT sample from the timestamp echo (now minus the time the echoed TSval was
   *   sent), or -1 when the ACK has no usable TSecr
   * @param ece the ECE flag of the segment
   * @param dupAckEligible false when the segment carried data, SYN/FIN or changed the window
   *   (so it cannot be a duplicate ACK in the RFC 5681 sense); default true
   * @returns the engine's reused result object
   */
  onAck(
    now: Instant,
    ack: Seq,
    sackBlocks: Uint32Array,
    sackCount: number,
    tsRtt: Duration,
    ece: boolean,
    dupAckEligible?: boolean,
  ): AckResult;

  /**
   * The next time `onTimer` must be called (earliest of the RTO, TLP and RACK reordering
   * deadlines), or `NEVER`. Does NOT include the pacing time (see `nextSendTime()`).
   */
  pollAt(): Instant;

  /**
   * `out[i] = pollAt()` without returning the time: an Instant above 2^31 ns returned from a
   * call that is not inlined is a heap number (garbage per call on the per-segment path).
   */
  pollAtInto(out: Float64Array, i: number): void;

  /**
   * Runs the timer that is due at `now` (at most one per call; call again if `pollAt() <= now`).
   * @param newDataAvailable true when the core has unsent data and the peer window admits at
   *   least one segment of it; decides whether a TLP probes with new data or with the last
   *   segment
   */
  onTimer(now: Instant, newDataAvailable: boolean): TimerKind;

  /**
   * The lowest range marked lost and not yet retransmitted (or the TLP probe segment), capped
   * at the MSS, or null. The core sends it when `canSend(len, true)` and then calls
   * `onSend(seq, len, now, true)`, which clears it; calling again yields the next one.
   */
  nextRetransmit(): RetransmitRange | null;

  /**
   * Bytes of NEW data that may be sent now: the congestion allowance (cwnd - pipe, or the PRR
   * allowance during recovery, or one MSS for a TLP probe) further limited by the peer window
   * (snd_una + SND.WND - snd_nxt). The congestion part is rounded down to whole MSS so the
   * window never forces runt segments. Never negative. Ignores pacing (see `nextSendTime()`).
   */
  sendQuota(): number;

  /**
   * Whether a segment of `bytes` may be sent now by congestion control. With `isRetransmit`
   * the peer window is not applied (the range was already inside it). A sender with nothing in
   * flight may always send one segment.
   */
  canSend(bytes: number, isRetransmit?: boolean): boolean;

  /**
   * Earliest time the next segment may leave under pacing; a value <= now means "now"
   * (-Infinity when not pacing). The core includes it in its own pollAt() when it has data.
   */
  nextSendTime(): Instant;

  /** `nextSendTime() > now`, compared inside (no time value returned; see `pollAtInto`). */
  pacedAfter(now: Instant): boolean;

  /** `out[i] = nextSendTime()` (see `pollAtInto`). */
  nextSendTimeInto(out: Float64Array, i: number): void;

  /**
   * True once after the engine reduced the window for an ECN echo: the core sets CWR on the
   * next new data segment it sends (RFC 3168 6.1.2).
   */
  takeCwr(): boolean;

  /** Whether new data segments should carry ECT(0) (ECN negotiated and the CC wants ECN). */
  readonly sendEct: boolean;

  /** The congestion control instance in use. */
  readonly cc: CongestionControl;
  /** Current congestion state. */
  readonly state: RecoveryState;
  /** Oldest unacknowledged sequence number. */
  readonly sndUna: Seq;
  /** Next sequence number to send (as recorded by onSend). */
  readonly sndNxt: Seq;
  /** Bytes in flight (RFC 6675 pipe: not SACKed and not lost, plus retransmitted). */
  readonly inFlight: number;
  /** Current retransmission timeout including backoff. */
  readonly rto: Duration;
  /** Smoothed RTT, or -1 before the first sample. */
  readonly srtt: Duration;

  /** Fills `out` (or the engine's own reused object) with TCP_INFO-style statistics. */
  info(out?: RecoveryInfo): RecoveryInfo;
}
