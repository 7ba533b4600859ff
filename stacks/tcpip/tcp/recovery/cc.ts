/**
 * The narrow interface between the recovery engine and a congestion-control algorithm, in the
 * spirit of Linux `tcp_congestion_ops` but inverted: the engine pushes events and an immutable,
 * reused `AckSample`; the algorithm exposes its outputs (`cwnd`, `ssthresh`, `pacingRate`) as
 * plain properties the engine reads back. An algorithm never sees segments or sequence numbers,
 * so a WebAssembly module can implement the same surface.
 *
 * Also here: `RenoCc` (RFC 5681 + RFC 3465 ABC with L = 2 + RFC 6582 semantics; the engine's
 * PRR paces the reduction) and the registry `registerCc` / `createCc`.
 *
 * @module
 */

import type { Duration, Instant } from "../../../time.ts";

/** Congestion state names shared with the engine (see `RecoveryState` in api.ts). */
export type CcState = "open" | "disorder" | "recovery" | "loss";

/** Why the engine asks for a window reduction. */
export type CongestionKind = "loss" | "rto" | "ecn";

/**
 * Everything an algorithm may learn from one ACK. The engine owns and reuses one instance:
 * read it during `onAck`, never keep it.
 */
export interface AckSample {
  /** Bytes newly acknowledged or SACKed by this ACK. */
  readonly ackedBytes: number;
  /** Segments newly acknowledged or SACKed by this ACK. */
  readonly ackedPackets: number;
  /** Delivery-rate sample: bytes delivered over `interval`. */
  readonly delivered: number;
  /**
   * CE-echoed bytes of THIS ACK (not of the rate-sample interval): `ackedBytes` when the ACK
   * carried ECE, else 0. With the accurate ECE receiver (RFC 8257 3.2, asked for by
   * `wantsAccurateEce`) ECE is set exactly on the ACKs of CE-marked segments, so summing it over
   * an observation window gives DCTCP's marked-bytes count (RFC 8257 3.3).
   */
  readonly deliveredCe: number;
  /** Delivery-rate sample interval, or -1 when invalid. */
  readonly interval: Duration;
  /** RTT sample of this ACK, or -1. */
  readonly rtt: Duration;
  /** Minimum RTT seen so far, or -1. */
  readonly minRtt: Duration;
  /** Smoothed RTT, or -1. */
  readonly srtt: Duration;
  /** Bytes in flight after this ACK. */
  readonly inFlight: number;
  /** Bytes in flight before this ACK. */
  readonly priorInFlight: number;
  /** Bytes newly marked lost by this ACK. */
  readonly losses: number;
  /** True when the rate sample is app-limited (do not lower a bandwidth model from it). */
  readonly isAppLimited: boolean;
  /**
   * Congestion-window validation (RFC 7661 in spirit; Linux `tcp_is_cwnd_limited`): true when
   * cwnd was what limited the sender, so growing it is justified. The engine sets it when, in
   * the current or the last window of data (snd_una not yet past snd_nxt as of the first send
   * of that window), some transmission left the congestion allowance below one MSS (the flight
   * reached cwnd, or PRR's quota was used up), or, in slow start (cwnd < ssthresh), when
   * cwnd < 2 x the largest flight of that window (so slow start may double what was used).
   * A sender held back by the peer's receive window or by the application is not cwnd-limited.
   * Algorithms should not grow cwnd when it is false (RenoCc and the Wasm modules do not).
   */
  readonly isCwndLimited: boolean;
  /** The ECE flag of this ACK. */
  readonly ece: boolean;
  /**
   * True during fast recovery, where PRR owns the window (do not grow cwnd). False in the RTO
   * "loss" state: slow start from the loss window continues there.
   */
  readonly inRecovery: boolean;
  /** Arrival time. */
  readonly now: Instant;
  /** Current MSS. */
  readonly mss: number;
  /**
   * Bytes delivered (cumulatively ACKed or SACKed) on the connection so far, including this
   * ACK: Linux `tp->delivered` in bytes. Never negative when produced by the engine.
   */
  readonly totalDelivered: number;
  /**
   * `totalDelivered` when the packet this ACK's rate sample is taken from was sent (Linux
   * `rs->prior_delivered`), so `totalDelivered - priorDelivered === delivered` for a valid
   * sample; 0 when there is no sample. A new round trip starts when `priorDelivered` reaches
   * the `totalDelivered` noted at the previous round start (BBR, HyStart++).
   */
  readonly priorDelivered: number;
}

/**
 * What a swapped-in algorithm needs to continue a connection (live swap, `RecoveryEngine.setCc`)
 * without a stall or a burst: the outgoing algorithm's outputs plus the engine's estimators.
 */
export interface CcSwapState {
  /** Current cwnd of the outgoing algorithm, bytes. */
  readonly cwnd: number;
  /** Its ssthresh, bytes; Infinity when unset. */
  readonly ssthresh: number;
  /** Its pacing rate, bytes/s; 0 when it did not pace. */
  readonly pacingRate: number;
  /** Smoothed RTT, ns; -1 when none yet. */
  readonly srtt: Duration;
  /** Minimum RTT, ns; -1 when none yet. */
  readonly minRtt: Duration;
  /** Bytes in flight (RFC 6675 pipe). */
  readonly inFlight: number;
  /** Current sender MSS. */
  readonly mss: number;
  /** Bytes delivered on the connection so far (`AckSample.totalDelivered`); the engine sets it. */
  readonly totalDelivered?: number;
}

/** A congestion-control algorithm. Outputs are read after each event. */
export interface CongestionControl {
  /** Registry name, e.g. "reno". */
  readonly name: string;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow-start threshold in bytes (Infinity until the first reduction). */
  readonly ssthresh: number;
  /** Pacing rate in bytes/s, or 0 to let the engine derive one (or not pace). */
  readonly pacingRate: number;
  /** True when the algorithm wants ECN negotiated (ECT on data). */
  readonly wantsEcn: boolean;
  /** True when it needs the precise per-ACK CE echo (DCTCP-style receiver). */
  readonly wantsAccurateEce: boolean;
  /** (Re)initializes for a new connection with the given MSS. */
  init(mss: number, now: Instant): void;
  /** Informs the algorithm of the MSS changing (keeps the window in segments comparable). */
  setMss(mss: number): void;
  /** Called on every ACK that acknowledged or SACKed data. */
  onAck(sample: AckSample): void;
  /** A congestion signal: fast-recovery entry ("loss"), RTO ("rto"), ECN echo ("ecn"). */
  onCongestion(kind: CongestionKind, now: Instant): void;
  /** Fast recovery or RTO recovery completed (snd_una reached the recovery point). */
  onRecoveryExit(now: Instant): void;
  /** The last reduction was spurious: restore the window saved at `onCongestion`. */
  onUndo(now: Instant): void;
  /** Sending restarts after an idle period longer than the RTO (RFC 5681 4.1). */
  onIdleRestart(now: Instant): void;
  /** The engine's congestion state changed. */
  onStateChange(state: CcState, now: Instant): void;
  /**
   * Optional. Continue this connection from the given window instead of the initial window
   * (live swap). Called instead of `init()`; without it the engine calls `init()` and the
   * algorithm restarts from its initial window.
   */
  initFromState?(s: CcSwapState, now: Instant): void;
  /**
   * Optional. The connection no longer uses this instance (closed, aborted, or the algorithm
   * was swapped out): free per-flow resources. Idempotent; no other call follows except
   * reading the outputs.
   */
  release?(): void;
  /**
   * Optional. Whether ECN was negotiated on the connection: false after `reset()` until the
   * handshake says otherwise (RFC 8257 3.5: DCTCP behaves as Reno without ECN).
   */
  setEcnNegotiated?(on: boolean): void;
}

/** RFC 6928 initial window: min(10*MSS, max(2*MSS, 14600)). */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}

/**
 * NewReno: slow start with appropriate byte counting (RFC 3465, L = 2*SMSS per ACK), congestion
 * avoidance by byte counting (one MSS per cwnd of acked bytes), ssthresh = max(cwnd/2, 2*MSS) on
 * loss/ECN (Linux's cwnd-based halving; RFC 5681 uses FlightSize), cwnd = 1 MSS after an RTO,
 * cwnd = ssthresh at recovery exit (RFC 6582 "full" deflation; the engine's PRR reaches it
 * smoothly), and undo of spurious reductions.
 */
export class RenoCc implements CongestionControl {
  /** Registry name. */
  readonly name: string = "reno";
  /** Congestion window, bytes. */
  cwnd: number = 0;
  /** Slow-start threshold, bytes. */
  ssthresh: number = Infinity;
  /** Reno does not pace by itself. */
  readonly pacingRate: number = 0;
  /** Reno reacts to ECN echoes like loss (RFC 3168), so it asks for ECN. */
  readonly wantsEcn: boolean = true;
  /** Classic ECE latching is enough. */
  readonly wantsAccurateEce: boolean = false;
  private mss = 1460;
  private bytesAckedCa = 0;
  private priorCwnd = 0;
  private priorSsthresh = Infinity;
  private reducing = false;

  /** Sets the initial window of RFC 6928. */
  init(mss: number, _now: Instant): void {
    this.mss = mss;
    this.cwnd = initialWindow(mss);
    this.ssthresh = Infinity;
    this.bytesAckedCa = 0;
    this.priorCwnd = 0;
    this.priorSsthresh = Infinity;
    this.reducing = false;
  }

  /**
   * Live swap: continues from another algorithm's window (cwnd at least one MSS) and
   * ssthresh, in congestion avoidance if cwnd >= ssthresh, with no reduction to undo.
   */
  initFromState(s: CcSwapState, _now: Instant): void {
    this.mss = s.mss;
    this.cwnd = Math.max(s.cwnd, s.mss);
    this.ssthresh = s.ssthresh > 0 ? s.ssthresh : Infinity;
    this.bytesAckedCa = 0;
    this.priorCwnd = 0;
    this.priorSsthresh = Infinity;
    this.reducing = false;
  }

  /** Keeps the window at least 2 MSS of the new size. */
  setMss(mss: number): void {
    this.mss = mss;
    if (this.cwnd < 2 * mss) this.cwnd = 2 * mss;
  }

  /**
   * Grows cwnd: slow start below ssthresh, congestion avoidance above; never in recovery, and
   * only while the sender is cwnd-limited (`isCwndLimited`, as Linux `tcp_reno_cong_avoid`).
   */
  onAck(s: AckSample): void {
    if (s.inRecovery || s.ackedBytes <= 0) return;
    // RFC 7661: do not grow a window the sender is not using (receiver- or app-limited).
    if (!s.isCwndLimited) return;
    if (s.isAppLimited && s.priorInFlight < this.cwnd / 2) return;
    if (this.cwnd < this.ssthresh) {
      // RFC 3465 ABC with L = 2: at most 2*SMSS per ACK.
      this.cwnd += Math.min(s.ackedBytes, 2 * this.mss);
      if (this.cwnd > this.ssthresh && this.ssthresh !== Infinity) {
        this.bytesAckedCa = this.cwnd - this.ssthresh;
        this.cwnd = this.ssthresh;
      }
      return;
    }
    this.bytesAckedCa += s.ackedBytes;
    if (this.bytesAckedCa >= this.cwnd) {
      this.bytesAckedCa -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  /** Halves (loss, ECN) or collapses (RTO) the window, remembering it for undo. */
  onCongestion(kind: "loss" | "rto" | "ecn", _now: Instant): void {
    this.priorCwnd = this.cwnd;
    this.priorSsthresh = this.ssthresh;
    this.ssthresh = Math.max(Math.floor(this.cwnd / 2), 2 * this.mss);
    this.bytesAckedCa = 0;
    this.reducing = kind === "loss";
    if (kind === "rto") this.cwnd = this.mss;
    else if (kind === "ecn") this.cwnd = this.ssthresh;
    // "loss": cwnd stays; PRR in the engine brings the flight down to ssthresh.
  }

  /** Ends fast recovery at ssthresh (RFC 6582 / RFC 6937); after an RTO slow start goes on. */
  onRecoveryExit(_now: Instant): void {
    if (this.reducing && this.ssthresh !== Infinity) this.cwnd = this.ssthresh;
    this.reducing = false;
  }

  /** Restores the window saved at the spurious reduction. */
  onUndo(_now: Instant): void {
    if (this.priorCwnd === 0) return;
    this.cwnd = Math.max(this.cwnd, this.priorCwnd);
    this.ssthresh = Math.max(this.ssthresh, this.priorSsthresh);
    this.priorCwnd = 0;
    this.reducing = false;
  }

  /** RFC 5681 4.1: restart window = min(IW, cwnd). */
  onIdleRestart(_now: Instant): void {
    this.cwnd = Math.min(this.cwnd, initialWindow(this.mss));
  }

  /** Reno needs no state notifications. */
  onStateChange(_state: CcState, _now: Instant): void {}
}

/** Builds a fresh algorithm instance. */
export type CcFactory = () => CongestionControl;

/** Returned by `createCc` for a name nobody registered: Reno was used instead. */
export class UnknownCcWarning {
  /** Kind tag for switch statements. */
  readonly kind = "unknown-congestion-control" as const;
  /** Human-readable advice. */
  readonly message: string;
  /** Creates the warning for `requested`. */
  constructor(readonly requested: string, known: readonly string[]) {
    this.message = `unknown congestion control "${requested}", using "reno"; ` +
      `register it with registerCc() or pick one of: ${known.join(", ")}`;
  }
}

/** The outcome of `createCc`. */
export interface CreateCcResult {
  /** The algorithm (Reno when the name was unknown). */
  readonly cc: CongestionControl;
  /** Set when the name was unknown. */
  readonly warning: UnknownCcWarning | null;
}

const registry = new Map<string, CcFactory>([["reno", () => new RenoCc()]]);

/** Registers (or replaces) an algorithm under `name` (e.g. a WebAssembly-backed one). */
export function registerCc(name: string, factory: CcFactory): void {
  registry.set(name, factory);
}

/** Names currently registered. */
export function registeredCcNames(): string[] {
  return [...registry.keys()];
}

/** Creates the algorithm registered as `name`; unknown names give Reno plus a warning. */
export function createCc(name: string): CreateCcResult {
  const f = registry.get(name);
  if (f !== undefined) return { cc: f(), warning: null };
  return { cc: new RenoCc(), warning: new UnknownCcWarning(name, registeredCcNames()) };
}
