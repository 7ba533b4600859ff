/**
 * `RecoveryEngine`: the sender's loss-recovery and congestion engine (one per connection).
 * See api.ts for the contract and /work/notes/recovery_api.md for the call sequence.
 *
 * @module
 */

import type { Duration, Instant } from "../../../time.ts";
import type { Seq } from "../seq.ts";
import type {
  AckResult,
  RecoveryConfig,
  RecoveryEngineApi,
  RecoveryInfo,
  RecoveryState,
  RetransmitRange,
  TimerKind,
} from "./api.ts";
import type { CongestionControl } from "./cc.ts";

/** The loss-recovery and congestion engine of one connection. */
export class RecoveryEngine implements RecoveryEngineApi {
  /** Creates an engine; call `reset(iss, now)` before the first `onSend`. */
  constructor(_config: RecoveryConfig) {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.reset`. */
  reset(_iss: Seq, _now: Instant): void {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.setMss`. */
  setMss(_mss: number): void {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.setNegotiated`. */
  setNegotiated(_sack: boolean, _timestamps: boolean, _ecn: boolean): void {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.setPeerWindow`. */
  setPeerWindow(_bytes: number): void {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.onSend`. */
  onSend(_seq: Seq, _len: number, _now: Instant, _isRetransmit: boolean): void {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.onAppLimited`. */
  onAppLimited(): void {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.onAck`. */
  onAck(
    _now: Instant,
    _ack: Seq,
    _sackBlocks: Uint32Array,
    _sackCount: number,
    _tsRtt: Duration,
    _ece: boolean,
    _dupAckEligible = true,
  ): AckResult {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.pollAt`. */
  pollAt(): Instant {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.onTimer`. */
  onTimer(_now: Instant, _newDataAvailable: boolean): TimerKind {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.nextRetransmit`. */
  nextRetransmit(): RetransmitRange | null {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.sendQuota`. */
  sendQuota(): number {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.canSend`. */
  canSend(_bytes: number, _isRetransmit = false): boolean {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.nextSendTime`. */
  nextSendTime(): Instant {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.takeCwr`. */
  takeCwr(): boolean {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.sendEct`. */
  get sendEct(): boolean {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.cc`. */
  get cc(): CongestionControl {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.state`. */
  get state(): RecoveryState {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.sndUna`. */
  get sndUna(): Seq {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.sndNxt`. */
  get sndNxt(): Seq {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.inFlight`. */
  get inFlight(): number {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.rto`. */
  get rto(): Duration {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.srtt`. */
  get srtt(): Duration {
    throw new Error("unimplemented");
  }
  /** See `RecoveryEngineApi.info`. */
  info(_out?: RecoveryInfo): RecoveryInfo {
    throw new Error("unimplemented");
  }
}
