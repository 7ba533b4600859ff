/**
 * `RecoveryEngine`: the sender's loss-recovery and congestion engine (one per connection).
 * See api.ts for the contract and /work/notes/recovery_api.md for the call sequence.
 *
 * Pieces, each after its RFC: RFC 6298 RTO with Karn's rule (rtt.ts); RFC 2018 SACK scoreboard
 * over a record ring that splits records on partial coverage (ring.ts); RFC 2883 D-SACK;
 * RFC 8985 RACK (time-based loss marking with an adaptive reordering window) and TLP;
 * RFC 6675 pipe and DupThresh fallback; RFC 5681/6582 NewReno without SACK; RFC 6937 PRR-SSRB;
 * Eifel (RFC 3522/4015) and D-SACK undo; draft-cheng-iccrg-delivery-rate-estimation rate
 * samples; pacing (pacer.ts); congestion control behind cc.ts.
 *
 * @module
 */

import { type Duration, type Instant, MILLISECOND, NEVER, SECOND } from "../../../time.ts";
import { type Seq, seqGe, seqGt, seqLe, seqLt } from "../seq.ts";
import {
  AckResult,
  type RecoveryConfig,
  type RecoveryEngineApi,
  RecoveryInfo,
  type RecoveryState,
  RetransmitRange,
  type TimerKind,
} from "./api.ts";
import { type AckSample, type CcSwapState, type CongestionControl, createCc } from "./cc.ts";
import { Pacer } from "./pacer.ts";
import {
  F_APP_LIMITED,
  F_ECT,
  F_EVER_RETRANS,
  F_INLIST,
  F_LOST,
  F_RETRANS,
  F_SACKED,
  SegmentRing,
} from "./ring.ts";
import { RtoEstimator } from "./rtt.ts";
import { AS_DOUBLE } from "../f64.ts";

/** The engine's reused `AckSample`. */
class SampleRecord implements AckSample {
  ackedBytes = AS_DOUBLE;
  ackedPackets = 0;
  delivered = AS_DOUBLE;
  deliveredCe = AS_DOUBLE;
  interval: Duration = AS_DOUBLE;
  rtt: Duration = AS_DOUBLE;
  minRtt: Duration = AS_DOUBLE;
  srtt: Duration = AS_DOUBLE;
  inFlight = 0;
  priorInFlight = 0;
  losses = 0;
  isAppLimited = false;
  isCwndLimited = false;
  ece = false;
  inRecovery = false;
  now: Instant = AS_DOUBLE;
  mss = 0;
  totalDelivered = AS_DOUBLE;
  priorDelivered = AS_DOUBLE;
  constructor() {
    // Double fields from the start (see f64.ts), then their real start values.
    this.ackedBytes = 0;
    this.deliveredCe = 0;
    this.delivered = 0;
    this.interval = -1;
    this.rtt = -1;
    this.minRtt = -1;
    this.srtt = -1;
    this.now = 0;
    this.totalDelivered = 0;
    this.priorDelivered = 0;
  }
}

/** RFC 8985: how many recoveries a D-SACK-widened reordering window persists. */
const REO_WND_PERSIST = 16;
/** Extra probe timeout with several segments in flight (Linux TCP_TIMEOUT_MIN). */
const TLP_MIN_EXTRA: Duration = 2 * MILLISECOND;

/** The loss-recovery and congestion engine of one connection. */
export class RecoveryEngine implements RecoveryEngineApi {
  private readonly ring: SegmentRing;
  private readonly initialCapacity: number;
  private readonly est: RtoEstimator;
  private readonly pacer = new Pacer();
  private readonly res = new AckResult();
  private readonly rtx = new RetransmitRange();
  private infoOut: RecoveryInfo | null = null; // allocated on first use: idle connections stay small
  private readonly smp = new SampleRecord();
  private ccImpl: CongestionControl;
  /**
   * Observer called after the CC processed each ACK sample (null by default: one branch per
   * ACK). Gets the engine's reused sample and the CC instance; read them at once.
   */
  onAckSample: ((s: AckSample, cc: CongestionControl) => void) | null = null;

  private mss: number;
  private sackOn: boolean;
  private tsOn: boolean;
  private ecnOn = false;
  private readonly rackCfg: boolean;
  private readonly tlpCfg: boolean;
  private readonly pacingCfg: boolean;
  private readonly burstSegs: number;
  private readonly dupThresh: number;
  private readonly delAck: Duration;
  private readonly tsGran: Duration;

  private una: Seq = AS_DOUBLE;
  private nxt: Seq = AS_DOUBLE;
  private peerWnd = 0x7fff_ffff;
  private st: RecoveryState = "open";

  // Scoreboard byte counters (kept in step with the record flags).
  private sacked = 0;
  private sackedPkts = 0;
  private lost = 0;
  private retrans = 0;
  private renoSacked = 0;
  private dupAcks = 0;
  private retransHint: Seq = AS_DOUBLE;
  // The previous ACK's SACK blocks: two halves of one array used alternately (offset 0 or 8).
  private readonly sackCache = new Uint32Array(16);
  private sackCacheOff = 0;
  private sackCacheN = 0;

  // Timers.
  private rtoAt: Instant = NEVER;
  private tlpAt: Instant = NEVER;
  private reoAt: Instant = NEVER;

  // Recovery episode and PRR (RFC 6937).
  private recoveryPoint: Seq = AS_DOUBLE;
  private recoverValid = false;
  private prrDelivered = 0;
  private prrOut = 0;
  private recoverFs = 0;
  private prrQuota = 0;

  // Undo (Eifel and D-SACK).
  private undoValid = false;
  private undoMarker: Seq = AS_DOUBLE;
  private undoRetrans = 0;
  private undoRetransTime: Instant = AS_DOUBLE;
  private eifelPending = false;

  // RACK (RFC 8985). "Sent after" compares transmission order numbers, not (time, seq):
  // a retransmission sent at the same instant as, but after, new data is newer.
  private txOrder = 0;
  private rackOrder = AS_DOUBLE;
  private rackXmitTs: Instant = AS_DOUBLE;
  // The current ACK's context for deliver(), which is too large to inline: fields, because a
  // time or sequence number above 2^30 passed as an argument is boxed (a heap number per
  // delivered record). echoTime is the timestamp echo as a send time (-1: none); prevFack and
  // prevFackValid are RACK's highest SACKed sequence before this ACK.
  private echoTime: Instant = AS_DOUBLE;
  private prevFack: Seq = AS_DOUBLE;
  private prevFackValid = false;
  /** When the segment ring last grew (shrinking waits a second after it). */
  private ringGrownAt: Instant = Number.NEGATIVE_INFINITY;
  private rackEndSeq: Seq = AS_DOUBLE;
  private rackRtt: Duration = AS_DOUBLE;
  private rackFack: Seq = AS_DOUBLE;
  private rackFackValid = false;
  private reorderingSeen = false;
  private reoWndMult = 1;
  private reoWndPersist = 0;
  private dsackRound: Seq = AS_DOUBLE;
  private dsackRoundValid = false;
  private reoWnd: Duration = AS_DOUBLE;

  // TLP (RFC 8985 section 7).
  private probeQuota = 0;
  private probePending = false;
  private probeSeq: Seq = AS_DOUBLE;
  private probeLen = 0;
  private tlpOutstanding = false;
  private tlpIsRetrans = false;
  private tlpEndSeq: Seq = AS_DOUBLE;
  private tlpSeq: Seq = AS_DOUBLE;

  // Delivery rate (draft-cheng-iccrg-delivery-rate-estimation).
  private cDelivered = AS_DOUBLE;
  private cDeliveredTime: Instant = AS_DOUBLE;
  private cFirstSentTime: Instant = AS_DOUBLE;
  private cAppLimited = AS_DOUBLE;
  private rsPrior = AS_DOUBLE;
  private rsSendElapsed: Duration = AS_DOUBLE;
  private rsAckElapsed: Duration = AS_DOUBLE;
  private rsApp = false;
  private rsRtt: Duration = AS_DOUBLE;
  private lastRate = AS_DOUBLE;

  // ECN (RFC 3168).
  private cwrPending = false;
  private ecnRoundEnd: Seq = AS_DOUBLE;
  private ecnRoundValid = false;

  private lastSendTime: Instant = Number.NEGATIVE_INFINITY;
  private everSent = false;

  // Congestion-window validation (RFC 7661 in spirit, Linux tcp_cwnd_validate): per window of
  // data (until snd_una passes cwndUsageSeq), whether a send found the congestion allowance
  // used up, and the largest flight after a send.
  private cwndLimited = false;
  private maxFlight = 0;
  private cwndUsageSeq: Seq = AS_DOUBLE;

  // Statistics.
  private bytesAcked = AS_DOUBLE;
  private bytesSent = AS_DOUBLE;
  private retransSegs = 0;
  private retransBytes = AS_DOUBLE;
  private lostSegs = 0;
  private spurious = 0;
  private dsacks = 0;
  private rtoCount = 0;
  private tlpCount = 0;
  private recoveries = 0;

  /** Creates an engine; call `reset(iss, now)` before the first `onSend`. */
  constructor(config: RecoveryConfig) {
    // Double fields from the start (see f64.ts), then their real start values.
    this.una = 0;
    this.nxt = 0;
    this.retransHint = 0;
    this.recoveryPoint = 0;
    this.undoMarker = 0;
    this.undoRetransTime = -1;
    this.rackOrder = -1;
    this.rackXmitTs = -1;
    this.echoTime = -1;
    this.prevFack = 0;
    this.rackEndSeq = 0;
    this.rackRtt = -1;
    this.rackFack = 0;
    this.dsackRound = 0;
    this.reoWnd = 0;
    this.probeSeq = 0;
    this.tlpEndSeq = 0;
    this.tlpSeq = 0;
    this.cDelivered = 0;
    this.cDeliveredTime = 0;
    this.cFirstSentTime = 0;
    this.cAppLimited = 0;
    this.rsPrior = -1;
    this.rsSendElapsed = 0;
    this.rsAckElapsed = 0;
    this.rsRtt = -1;
    this.lastRate = 0;
    this.ecnRoundEnd = 0;
    this.cwndUsageSeq = 0;
    this.bytesAcked = 0;
    this.bytesSent = 0;
    this.retransBytes = 0;
    if (!(config.mss > 0)) {
      throw new RangeError(`RecoveryConfig.mss must be a positive byte count, got ${config.mss}`);
    }
    this.mss = config.mss;
    this.sackOn = config.sack ?? true;
    this.tsOn = config.timestamps ?? false;
    this.tsGran = config.tsGranularity ?? MILLISECOND;
    this.rackCfg = config.rack ?? true;
    this.tlpCfg = config.tlp ?? true;
    this.pacingCfg = config.pacing ?? false;
    this.burstSegs = Math.max(1, config.pacingBurstSegments ?? 2);
    this.dupThresh = config.dupThresh ?? 3;
    this.delAck = config.delayedAckAllowance ?? 200 * MILLISECOND;
    this.est = new RtoEstimator(
      config.initialRto ?? SECOND,
      config.minRto ?? 200 * MILLISECOND,
      config.maxRto ?? 120 * SECOND,
      config.clockGranularity ?? MILLISECOND,
    );
    this.initialCapacity = config.capacity ?? 16;
    this.ring = new SegmentRing(this.initialCapacity);
    const cc = config.cc ?? "reno";
    this.ccImpl = typeof cc === "string" ? createCc(cc).cc : cc;
    this.ccImpl.init(this.mss, 0);
    this.ccImpl.setEcnNegotiated?.(false);
  }

  /** See `RecoveryEngineApi.reset`. */
  reset(iss: Seq, now: Instant): void {
    this.ring.clear();
    this.sackCacheN = 0;
    this.est.reset();
    this.pacer.reset();
    this.una =
      this.nxt =
      this.retransHint =
        iss >>> 0;
    this.peerWnd = 0x7fff_ffff;
    this.st = "open";
    this.sacked =
      this.sackedPkts =
      this.lost =
      this.retrans =
      this.renoSacked =
        0;
    this.dupAcks = 0;
    this.rtoAt = this.tlpAt = this.reoAt = NEVER;
    this.recoverValid = false;
    this.prrDelivered =
      this.prrOut =
      this.recoverFs =
      this.prrQuota =
        0;
    this.undoValid = this.eifelPending = false;
    this.undoRetrans = 0;
    this.undoRetransTime = -1;
    this.rackXmitTs = -1;
    this.rackOrder = -1;
    this.txOrder = 0;
    this.rackRtt = -1;
    this.rackFackValid = this.reorderingSeen = false;
    this.reoWndMult = 1;
    this.reoWndPersist = 0;
    this.dsackRoundValid = false;
    this.reoWnd = 0;
    this.probeQuota = 0;
    this.probePending = this.tlpOutstanding = this.tlpIsRetrans = false;
    this.cDelivered = this.cAppLimited = 0;
    this.cDeliveredTime = this.cFirstSentTime = now;
    this.lastRate = 0;
    this.cwrPending = this.ecnRoundValid = false;
    this.lastSendTime = Number.NEGATIVE_INFINITY;
    this.everSent = false;
    this.cwndLimited = false;
    this.maxFlight = 0;
    this.cwndUsageSeq = this.una;
    this.bytesAcked =
      this.bytesSent =
      this.retransSegs =
      this.retransBytes =
        0;
    this.lostSegs =
      this.spurious =
      this.dsacks =
      this.rtoCount =
      this.tlpCount =
        0;
    this.recoveries = 0;
    this.ecnOn = false;
    this.ccImpl.init(this.mss, now);
    this.ccImpl.setEcnNegotiated?.(false);
    this.updatePacing();
  }

  /** See `RecoveryEngineApi.setCc`. */
  setCc(next: CongestionControl | string, now: Instant): void {
    const cc = typeof next === "string" ? createCc(next).cc : next;
    const old = this.ccImpl;
    if (cc === old) return;
    const state: CcSwapState = {
      cwnd: old.cwnd,
      ssthresh: old.ssthresh,
      pacingRate: old.pacingRate,
      srtt: this.est.srtt,
      minRtt: this.est.minRtt,
      inFlight: this.pipe(),
      mss: this.mss,
      totalDelivered: this.cDelivered,
    };
    if (cc.initFromState !== undefined) cc.initFromState(state, now);
    else cc.init(this.mss, now); // no continuation hook: restarts from the initial window
    cc.setEcnNegotiated?.(this.ecnOn);
    // The new algorithm must know about a recovery in progress (BBR keys packet conservation
    // on it; PRR keeps using the new ssthresh).
    if (this.st !== "open") cc.onStateChange(this.st, now);
    this.ccImpl = cc;
    old.release?.();
    this.updatePacing();
  }

  /** See `RecoveryEngineApi.dispose`. */
  dispose(): void {
    this.ccImpl.release?.();
    this.onAckSample = null;
  }

  /** See `RecoveryEngineApi.setMss`. */
  setMss(mss: number): void {
    if (!(mss > 0) || mss === this.mss) return;
    this.mss = mss;
    this.ccImpl.setMss(mss);
    this.updatePacing();
  }

  /** See `RecoveryEngineApi.setNegotiated`. */
  setNegotiated(sack: boolean, timestamps: boolean, ecn: boolean): void {
    this.sackOn = sack;
    this.tsOn = timestamps;
    this.ecnOn = ecn;
    this.ccImpl.setEcnNegotiated?.(ecn);
  }

  /** See `RecoveryEngineApi.setPeerWindow`. */
  setPeerWindow(bytes: number): void {
    this.peerWnd = bytes > 0 ? bytes : 0;
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  /** See `RecoveryEngineApi.onSend`. */
  onSend(seq: Seq, len: number, now: Instant, isRetransmit: boolean): void {
    if (!(len > 0)) return;
    seq = seq >>> 0;
    const end = (seq + len) >>> 0;
    if (!isRetransmit && seq !== this.nxt) {
      if (this.ring.count === 0 && seqGt(seq, this.nxt)) {
        // The core skipped ahead with nothing outstanding: follow it.
        this.una =
          this.nxt =
          this.retransHint =
            seq;
      } else if (seqLt(seq, this.nxt)) {
        // Overlaps data already sent: the overlapping part is a retransmission.
        const overlapEnd = seqLt(end, this.nxt) ? end : this.nxt;
        this.onSend(seq, (overlapEnd - seq) >>> 0, now, true);
        if (seqLe(end, this.nxt)) return;
        seq = this.nxt;
        len = (end - seq) >>> 0;
      } else {
        return; // a gap in sequence space cannot be tracked; the core broke the contract
      }
    }
    this.bytesSent += len;
    if (this.pipe() === 0) {
      // Rate estimation restarts its intervals when the flight was empty.
      this.cFirstSentTime = now;
      this.cDeliveredTime = now;
    }
    if (isRetransmit) {
      this.sendRetransmit(seq, len, now);
    } else {
      if (
        this.everSent && this.ring.count === 0 && now - this.lastSendTime > this.est.rto
      ) {
        this.ccImpl.onIdleRestart(now);
      }
      // The record written field by field here, once each (push + snapshot + linkTail wrote
      // most fields twice and cost ~150 ns per segment as calls).
      const r = this.ring;
      const cap = r.capacity;
      const s = r.pushSlot();
      if (r.capacity !== cap) this.ringGrownAt = now;
      const a = r.a;
      let f = F_INLIST;
      if (this.cAppLimited !== 0) f |= F_APP_LIMITED;
      if (this.ecnOn && this.ccImpl.wantsEcn) f |= F_ECT;
      a[s] = seq;
      a[r.oLen + s] = len;
      a[r.oFirst + s] = now;
      a[r.oLast + s] = now;
      a[r.oXmits + s] = 1;
      a[r.oFlags + s] = f;
      a[r.oDeliv + s] = this.cDelivered;
      a[r.oDelivT + s] = this.cDeliveredTime;
      a[r.oFirstSent + s] = this.cFirstSentTime;
      a[r.oOrder + s] = ++this.txOrder;
      const tail = r.listTail;
      a[r.oPrev + s] = tail;
      a[r.oNext + s] = -1;
      if (tail >= 0) a[r.oNext + tail] = s;
      else r.listHead = s;
      r.listTail = s;
      this.nxt = end;
      if (this.probeQuota > 0 && !this.probePending) {
        this.tlpOutstanding = true;
        this.tlpIsRetrans = false;
        this.tlpSeq = seq;
        this.tlpEndSeq = this.nxt;
      }
    }
    this.probeQuota = this.probeQuota > len ? this.probeQuota - len : 0;
    if (this.st === "recovery") {
      this.prrOut += len;
      this.prrQuota = this.prrQuota > len ? this.prrQuota - len : 0;
    }
    this.pacer.onSend(len, now);
    this.lastSendTime = now;
    this.everSent = true;
    this.validateCwnd();
    // RFC 6298 5.1, plus Linux's rule: retransmitting the oldest segment restarts the timer,
    // so a long SACK recovery without cumulative progress does not time out spuriously.
    if (this.rtoAt === NEVER || (isRetransmit && seq === this.una)) this.rtoAt = now + this.est.rto;
    if (!isRetransmit) this.armTlp(now);
  }

  /**
   * Congestion-window validation after a transmission (Linux tcp_cwnd_validate): the sender is
   * cwnd-limited when this send left less than one MSS of congestion allowance (cwnd - pipe,
   * or PRR's quota in recovery; whole segments only, so a cwnd that is not a multiple of the
   * MSS still counts as used). A sender stopped by the peer window or by the application never
   * gets there. The mark and the largest flight are per window of data: they restart with the
   * first send after snd_una passed the snd_nxt noted at the previous restart; within a window
   * a limited send sets the mark and, while unmarked, a larger flight raises the maximum.
   */
  private validateCwnd(): void {
    const pipe = this.pipe();
    const room = this.st === "recovery" ? this.prrQuota : this.ccImpl.cwnd - pipe;
    const limited = room < this.mss;
    if (
      limited || seqGe(this.una, this.cwndUsageSeq) || (!this.cwndLimited && pipe > this.maxFlight)
    ) {
      this.cwndLimited = limited;
      this.maxFlight = pipe;
      this.cwndUsageSeq = this.nxt;
    }
  }

  /**
   * Whether cwnd limited the sender in the current or last window (Linux tcp_is_cwnd_limited):
   * the mark, or in slow start cwnd below twice the largest flight (slow start may double it).
   */
  private isCwndLimited(): boolean {
    if (this.cwndLimited) return true;
    const cc = this.ccImpl;
    return cc.cwnd < cc.ssthresh && cc.cwnd < 2 * this.maxFlight;
  }

  /** Stores the delivery-rate snapshot and send-time flags of a (re)transmission. */
  private snapshot(s: number): void {
    const r = this.ring;
    r.a[r.oDeliv + s] = this.cDelivered;
    r.a[r.oDelivT + s] = this.cDeliveredTime;
    r.a[r.oFirstSent + s] = this.cFirstSentTime;
    let f = r.a[r.oFlags + s]! & ~(F_APP_LIMITED | F_ECT);
    if (this.cAppLimited !== 0) f |= F_APP_LIMITED;
    if (this.sendEct) f |= F_ECT;
    r.a[r.oFlags + s] = f;
  }

  /** Records a retransmission of [seq, seq+len) (clamped to the outstanding range). */
  private sendRetransmit(seq: Seq, len: number, now: Instant): void {
    const r = this.ring;
    if (seqLt(seq, this.una)) {
      const cut = (this.una - seq) >>> 0;
      if (cut >= len) return;
      seq = this.una;
      len -= cut;
    }
    let end = (seq + len) >>> 0;
    if (seqGt(end, this.nxt)) end = this.nxt;
    if (!seqLt(seq, end)) return;
    let i = this.boundary(seq);
    if (i < 0) return;
    this.boundary(end);
    const isProbe = this.probePending && seq === this.probeSeq;
    for (; i < r.count; i++) {
      const s = r.slot(i);
      if (!seqLt(r.a[s]!, end)) break;
      const f = r.a[r.oFlags + s]!;
      if (f & F_SACKED) continue;
      const l = r.a[r.oLen + s]!;
      r.a[r.oXmits + s] = r.a[r.oXmits + s]! + 1;
      r.a[r.oLast + s] = now;
      r.a[r.oOrder + s] = ++this.txOrder;
      r.a[r.oFlags + s] = f | F_RETRANS | F_EVER_RETRANS;
      r.unlink(s);
      r.linkTail(s);
      if (!(f & F_RETRANS)) this.retrans += l;
      this.snapshot(s);
      this.retransSegs++;
      this.retransBytes += l;
      if (this.undoValid && (this.st === "recovery" || this.st === "loss")) {
        this.undoRetrans++;
        if (this.undoRetransTime < 0) this.undoRetransTime = now;
      }
    }
    // Only a retransmission at or below the hint moves it: lower lost ranges must not be skipped.
    if (seqLe(seq, this.retransHint) && seqLt(this.retransHint, end)) this.retransHint = end;
    if (isProbe) {
      this.probePending = false;
      this.tlpOutstanding = true;
      this.tlpIsRetrans = true;
      this.tlpSeq = seq;
      this.tlpEndSeq = this.nxt;
    }
  }

  /**
   * Makes `seq` a record boundary (splitting the record containing it) and returns the logical
   * index of the record starting at `seq`, or -1 when `seq` is not inside [una, nxt).
   */
  private boundary(seq: Seq): number {
    const r = this.ring;
    const i = r.find(this.una, seq);
    if (i < 0) return -1;
    const off = (seq - r.a[r.slot(i)]!) | 0;
    if (off === 0) return i;
    r.split(i, off);
    if (r.a[r.oFlags + r.slot(i)]! & F_SACKED) this.sackedPkts++;
    return i + 1;
  }

  /** See `RecoveryEngineApi.onAppLimited`. */
  onAppLimited(): void {
    const v = this.cDelivered + this.pipe();
    this.cAppLimited = v > 0 ? v : 1;
  }

  // ---------------------------------------------------------------------------------------
  // ACK processing

  /** See `RecoveryEngineApi.onAck`. */
  onAck(
    now: Instant,
    ack: Seq,
    sackBlocks: Uint32Array,
    sackCount: number,
    tsRtt: Duration,
    ece: boolean,
    dupAckEligible = true,
  ): AckResult {
    const res = this.res;
    const r = this.ring;
    ack = ack >>> 0;
    res.ignored = false;
    res.newlyAckedBytes = res.newlyAckedPackets = res.newlySackedBytes = 0;
    res.newlyLostBytes = res.newlyLostPackets = 0;
    res.dsack =
      res.enteredRecovery =
      res.exitedRecovery =
      res.spuriousUndo =
      res.dupAck =
        false;
    res.rttSample = -1;
    if (seqGt(ack, this.nxt)) {
      res.ignored = true;
      res.rate.interval = -1;
      res.rate.delivered = res.rate.ackedSacked = res.rate.losses = 0;
      return res;
    }
    const priorInFlight = this.pipe();
    const priorDelivered = this.cDelivered;
    const priorRenoSacked = this.renoSacked;
    const priorUna = this.una;
    this.prevFack = this.rackFack;
    this.prevFackValid = this.rackFackValid;
    const echoTime = tsRtt >= 0 ? now - tsRtt : -1;
    this.echoTime = echoTime;
    let ackedPkts = 0; // records removed by the cumulative ACK (AckResult.newlyAckedPackets)
    let deliveredPkts = 0; // segments newly delivered: not counting ones SACKed earlier
    this.rsPrior = -1;
    this.rsRtt = -1;
    if (!this.sackOn) sackCount = 0;
    if (sackCount > 4) sackCount = 4;

    // 1. D-SACK (RFC 2883): first block below the cumulative ACK or inside the second block.
    let firstSack = 0;
    let dsackProbe = false;
    if (sackCount > 0) {
      const l0 = sackBlocks[0]! >>> 0;
      const r0 = sackBlocks[1]! >>> 0;
      let isDsack = seqLt(l0, r0) && seqLe(r0, ack);
      if (!isDsack && sackCount > 1 && seqLt(l0, r0)) {
        const l1 = sackBlocks[2]! >>> 0;
        const r1 = sackBlocks[3]! >>> 0;
        isDsack = seqLe(l1, l0) && seqLe(r0, r1);
      }
      if (isDsack) {
        firstSack = 1;
        res.dsack = true;
        this.dsacks++;
        if (this.undoValid && this.undoRetrans > 0 && seqGe(l0, this.undoMarker)) {
          const segs = this.dsackedRetransmits(l0, r0);
          this.undoRetrans = this.undoRetrans > segs ? this.undoRetrans - segs : 0;
        }
        if (
          this.tlpOutstanding && this.tlpIsRetrans && seqLt(l0, this.tlpEndSeq) &&
          seqGt(r0, this.tlpSeq)
        ) dsackProbe = true;
      }
    }

    // 2. Cumulative ACK.
    let karnSend: Instant = -1;
    let retransAcked = false;
    const advanced = seqGt(ack, this.una);
    if (advanced) {
      while (r.count > 0) {
        const s = r.slot(0);
        const start = r.a[s]!;
        if (!seqLt(start, ack)) break;
        const l = r.a[r.oLen + s]!;
        const f = r.a[r.oFlags + s]!;
        const covered = (ack - start) >>> 0;
        const take = covered < l ? covered : l;
        if (!(f & F_SACKED)) {
          this.deliver(s, take, now);
          if (f & F_EVER_RETRANS) retransAcked = true;
          else karnSend = r.a[r.oLast + s]!;
        }
        if (take === l) {
          if (f & F_SACKED) {
            this.sacked -= l;
            this.sackedPkts--;
          }
          if (f & F_LOST) this.lost -= l;
          if (f & F_RETRANS) this.retrans -= l;
          r.popFront();
          ackedPkts++;
          // A segment SACKed earlier was counted as delivered then (CC growth must not count
          // it twice: at recovery exit one ACK can cover a whole window of SACKed data).
          if (!(f & F_SACKED)) deliveredPkts++;
        } else {
          if (f & F_SACKED) this.sacked -= take;
          if (f & F_LOST) this.lost -= take;
          if (f & F_RETRANS) this.retrans -= take;
          r.a[s] = ack;
          r.a[r.oLen + s] = l - take;
          break;
        }
      }
      const acked = (ack - this.una) >>> 0;
      res.newlyAckedBytes = acked;
      res.newlyAckedPackets = ackedPkts;
      this.bytesAcked += acked;
      this.una = ack;
      if (seqLt(this.retransHint, ack)) this.retransHint = ack;
      this.renoSacked = this.renoSacked > acked ? this.renoSacked - acked : 0;
      this.dupAcks = 0;
      this.est.clearBackoff();
    }

    // 3. SACK blocks (RFC 2018). Blocks usually grow at their right edge from one ACK to the
    // next: the part a previous ACK's block already covered is SACKed and is skipped (Linux's
    // recv_sack_cache idea), so a growing block costs only its new records.
    const cache = this.sackCache;
    const prevOff = this.sackCacheOff;
    const nextOff = prevOff ^ 8;
    const cached = this.sackCacheN;
    this.sackCacheN = 0;
    for (let b = firstSack; b < sackCount; b++) {
      let left = sackBlocks[2 * b]! >>> 0;
      let right = sackBlocks[2 * b + 1]! >>> 0;
      if (!seqLt(left, right)) continue;
      if (seqLt(left, this.una)) left = this.una;
      if (seqGt(right, this.nxt)) right = this.nxt; // never cache edges beyond what was sent
      if (seqLt(left, right)) {
        const n = this.sackCacheN++;
        cache[nextOff + 2 * n] = left;
        cache[nextOff + 2 * n + 1] = right;
      }
      for (let c = 0; c < cached; c++) {
        const cl = cache[prevOff + 2 * c]!;
        const cr = cache[prevOff + 2 * c + 1]!;
        if (seqLe(cl, left) && seqLt(left, cr)) left = cr;
      }
      if (!seqLt(left, right)) continue;
      let i = this.boundary(left);
      if (i < 0) continue;
      this.boundary(right);
      for (; i < r.count; i++) {
        const s = r.slot(i);
        if (!seqLt(r.a[s]!, right)) break;
        const f = r.a[r.oFlags + s]!;
        if (f & F_SACKED) continue;
        const l = r.a[r.oLen + s]!;
        this.sacked += l;
        this.sackedPkts++;
        if (f & F_LOST) this.lost -= l;
        if (f & F_RETRANS) this.retrans -= l;
        r.a[r.oFlags + s] = (f & ~(F_LOST | F_RETRANS)) | F_SACKED;
        r.unlink(s);
        res.newlySackedBytes += l;
        deliveredPkts++;
        this.deliver(s, l, now);
      }
    }

    this.sackCacheOff = nextOff;

    // 4. RTT for the RTO estimator: the send time of data never retransmitted (Karn's rule),
    // else the timestamp echo (RFC 7323 4: it also times retransmitted data), as Linux does.
    // Timestamps tick in milliseconds: preferring them turned every sub-millisecond RTT
    // (veth, a local NSM) into a 0 sample, so SRTT = 0 and PTO = 2*SRTT sent a tail-loss
    // probe right behind every multi-segment flight (a spurious retransmission per
    // connection, and an RST to the peer's TIME-WAIT ACK of a probed FIN).
    if (advanced) {
      let sample: Duration = -1;
      if (!retransAcked && karnSend >= 0) sample = now - karnSend;
      else if (this.tsOn) sample = tsRtt;
      if (sample >= 0) {
        this.est.sample(sample, now);
        res.rttSample = sample;
      }
    }

    // 5. Duplicate ACK (RFC 5681): nothing new acknowledged, same ack, data outstanding.
    if (!advanced && ack === priorUna && dupAckEligible && r.count > 0) {
      this.dupAcks++;
      res.dupAck = true;
      if (!this.sackOn) {
        const cap = Math.max(0, (this.nxt - this.una) - this.mss);
        this.renoSacked = Math.min(this.renoSacked + this.mss, cap);
      }
    }

    // 6. Spurious-retransmission detection and undo.
    if (this.undoValid) {
      if (
        this.eifelPending && advanced && this.tsOn && echoTime >= 0 && this.undoRetransTime >= 0 &&
        (this.st === "loss" || (this.st === "recovery" && seqGe(this.una, this.recoveryPoint)))
      ) {
        this.eifelPending = false;
        if (echoTime < this.undoRetransTime - this.tsGran) this.undo(now);
      } else if (res.dsack && this.undoRetrans === 0 && this.undoRetransTime >= 0) {
        this.undo(now);
      }
    }

    // 7. Recovery / loss exit at the recovery point.
    if ((this.st === "recovery" || this.st === "loss") && seqGe(this.una, this.recoveryPoint)) {
      this.setState(this.sacked > 0 ? "disorder" : "open", now);
      this.ccImpl.onRecoveryExit(now);
      res.exitedRecovery = true;
      this.eifelPending = false;
      if (this.reoWndPersist > 0 && --this.reoWndPersist === 0) this.reoWndMult = 1;
    }

    // 8. Loss detection.
    if (this.sackOn && this.rackCfg) {
      this.updateReoWnd(res.dsack);
      if (this.sacked > 0 || this.retrans > 0 || this.reoAt !== NEVER) this.rackDetect(now);
    }
    if (this.sackOn) {
      // With RACK running and no reordering seen, reo_wnd is 0 at DupThresh SACKed segments,
      // so RACK already marks every hole DupThresh would: the scan is only a fallback.
      if (!this.rackCfg || this.rackXmitTs < 0) this.dupThreshMark();
    } else if (this.st === "recovery" && advanced && r.count > 0) {
      // RFC 6582: a partial ACK retransmits the first unacknowledged segment.
      const s = r.slot(0);
      if (!(r.a[r.oFlags + s]! & F_RETRANS)) this.markLost(s);
    }
    if (
      (this.st === "open" || this.st === "disorder") && this.dupAcks >= this.dupThresh &&
      r.count > 0 && (!this.sackOn || !this.rackCfg || !this.reorderingSeen) &&
      (!this.recoverValid || seqGt(this.una, this.recoveryPoint) || this.sackOn)
    ) {
      const s = r.slot(0);
      if (!(r.a[r.oFlags + s]! & (F_SACKED | F_RETRANS))) this.markLost(s);
    }

    // 9. Fast recovery entry.
    if ((this.st === "open" || this.st === "disorder") && this.lost > 0) {
      this.enterRecovery(now);
      res.enteredRecovery = true;
    }

    // 10. PRR (RFC 6937, PRR-SSRB).
    const deliveredData = (this.cDelivered - priorDelivered) + (this.renoSacked - priorRenoSacked);
    if (this.st === "recovery") {
      this.prrDelivered += deliveredData > 0 ? deliveredData : 0;
      const pipe = this.pipe();
      const ssthresh = this.ccImpl.ssthresh;
      let sndcnt: number;
      if (pipe > ssthresh) {
        sndcnt = Math.ceil((this.prrDelivered * ssthresh) / this.recoverFs) - this.prrOut;
      } else {
        const a = this.prrDelivered - this.prrOut;
        const limit = (a > deliveredData ? a : deliveredData) + this.mss;
        const room = ssthresh - pipe;
        sndcnt = room < limit ? room : limit;
      }
      if (this.prrOut === 0 && sndcnt < this.mss) sndcnt = this.mss; // the fast retransmit
      this.prrQuota = sndcnt > 0 ? sndcnt : 0;
    }

    // 11. ECN echo (RFC 3168): one reduction per window of data.
    if (
      ece && this.ecnOn && (this.st === "open" || this.st === "disorder") &&
      (!this.ecnRoundValid || seqGe(this.una, this.ecnRoundEnd))
    ) {
      this.ccImpl.onCongestion("ecn", now);
      this.cwrPending = true;
      this.ecnRoundEnd = this.nxt;
      this.ecnRoundValid = true;
      this.undoValid = false;
    }

    // 12. Tail loss probe outcome (RFC 8985 7.4).
    if (this.tlpOutstanding && seqGe(ack, this.tlpEndSeq)) {
      if (!this.tlpIsRetrans || dsackProbe) {
        this.tlpOutstanding = false;
      } else if (seqGt(ack, this.tlpEndSeq)) {
        // The probe repaired a loss: a (one-shot) congestion response.
        this.tlpOutstanding = false;
        if (this.st === "open" || this.st === "disorder") {
          this.ccImpl.onCongestion("loss", now);
          this.ccImpl.onRecoveryExit(now);
        }
      } else if (!advanced && res.newlySackedBytes === 0 && dupAckEligible) {
        this.tlpOutstanding = false; // original and probe both arrived
      }
    } else if (this.tlpOutstanding && dsackProbe) {
      this.tlpOutstanding = false;
    }

    // 13. Rate sample, congestion control, pacing.
    if (this.cAppLimited !== 0 && this.cDelivered > this.cAppLimited) this.cAppLimited = 0;
    const rs = res.rate;
    rs.ackedSacked = this.cDelivered - priorDelivered;
    rs.losses = res.newlyLostBytes;
    rs.priorInFlight = priorInFlight;
    rs.deliveredCe = ece ? rs.ackedSacked : 0;
    if (this.rsPrior < 0) {
      rs.delivered = 0;
      rs.interval = -1;
      rs.rtt = -1;
      rs.isAppLimited = false;
      rs.priorDelivered = 0;
    } else {
      rs.delivered = this.cDelivered - this.rsPrior;
      rs.priorDelivered = this.rsPrior;
      rs.isAppLimited = this.rsApp;
      rs.rtt = this.rsRtt;
      const iv = this.rsSendElapsed > this.rsAckElapsed ? this.rsSendElapsed : this.rsAckElapsed;
      rs.interval = iv > 0 && !(this.est.minRtt > 0 && iv < this.est.minRtt) ? iv : -1;
      if (rs.interval > 0) {
        // Computed here: the getter's fractional result is boxed when it is not inlined.
        const rate = (rs.delivered * 1e9) / rs.interval;
        if (!rs.isAppLimited || rate > this.lastRate) this.lastRate = rate;
      }
    }
    if (rs.ackedSacked > 0) {
      const m = this.smp;
      m.ackedBytes = rs.ackedSacked;
      m.ackedPackets = deliveredPkts;
      m.delivered = rs.delivered;
      m.deliveredCe = rs.deliveredCe;
      m.interval = rs.interval;
      m.rtt = rs.rtt;
      m.minRtt = this.est.minRtt;
      m.srtt = this.est.srtt;
      m.inFlight = this.pipe();
      m.priorInFlight = priorInFlight;
      m.losses = rs.losses;
      m.isAppLimited = rs.isAppLimited;
      m.isCwndLimited = this.isCwndLimited();
      m.ece = ece;
      m.inRecovery = this.st === "recovery";
      m.now = now;
      m.mss = this.mss;
      m.totalDelivered = this.cDelivered;
      m.priorDelivered = rs.priorDelivered;
      this.ccImpl.onAck(m);
      if (this.onAckSample !== null) this.onAckSample(m, this.ccImpl);
    }
    this.updatePacing();

    // 14. Disorder bookkeeping and timers.
    if (this.st === "open" || this.st === "disorder") {
      this.setState(this.sacked > 0 || this.dupAcks > 0 ? "disorder" : "open", now);
    }
    if (r.count === 0) {
      this.rtoAt = this.tlpAt = this.reoAt = NEVER;
      this.tlpOutstanding = false;
      // Give back a large ring after a burst (idle connections stay small), but not within a
      // second of its last growth: an application-limited bulk sender (an NSM serving a guest)
      // drains the flight many times a second, and shrinking at each drain regrew the ring
      // (a new Float64Array per doubling) right after.
      if (r.capacity > 4 * this.initialCapacity && now - this.ringGrownAt > SECOND) {
        r.shrink(this.initialCapacity);
      }
    } else {
      if (advanced || this.rtoAt === NEVER) this.rtoAt = now + this.est.rto;
      if (advanced || this.tlpAt === NEVER) this.armTlp(now);
    }
    return res;
  }

  /**
   * Retransmitted segments a D-SACK block reports as duplicates: below snd_una the records are
   * gone, so the block size is the estimate; above it, only retransmitted records count.
   */
  private dsackedRetransmits(left: Seq, right: Seq): number {
    let n = 0;
    if (seqLt(left, this.una)) {
      const top = seqLt(right, this.una) ? right : this.una;
      n += Math.max(1, Math.round(((top - left) >>> 0) / this.mss));
      left = this.una;
    }
    const r = this.ring;
    for (let i = r.find(this.una, left); i >= 0 && i < r.count; i++) {
      const s = r.slot(i);
      if (!seqLt(r.a[s]!, right)) break;
      if (r.a[r.oFlags + s]! & F_EVER_RETRANS) n++;
    }
    return n;
  }

  /** Per-record delivery: rate-sample candidate, RACK state, reordering detection. */
  private deliver(
    s: number,
    bytes: number,
    now: Instant,
  ): void {
    const prevFack = this.prevFack;
    const prevFackValid = this.prevFackValid;
    const r = this.ring;
    const f = r.a[r.oFlags + s]!;
    const xmit = r.a[r.oLast + s]!;
    const end = (r.a[s]! + r.a[r.oLen + s]!) >>> 0;
    this.cDelivered += bytes;
    this.cDeliveredTime = now;
    const pd = r.a[r.oDeliv + s]!;
    if (this.rsPrior < 0 || pd >= this.rsPrior) {
      this.rsPrior = pd;
      this.rsApp = (f & F_APP_LIMITED) !== 0;
      this.rsSendElapsed = xmit - r.a[r.oFirstSent + s]!;
      this.rsAckElapsed = now - r.a[r.oDelivT + s]!;
      this.rsRtt = f & F_EVER_RETRANS ? -1 : now - xmit;
      this.cFirstSentTime = xmit;
    }
    // RACK (RFC 8985 6.2 step 2): skip ambiguous deliveries of retransmitted segments.
    const rtt = now - xmit;
    let usable = true;
    if (f & F_EVER_RETRANS) {
      const echoTime = this.echoTime;
      if (echoTime >= 0 && echoTime < xmit) usable = false;
      else if (this.est.minRtt >= 0 && rtt < this.est.minRtt) usable = false;
    } else {
      this.est.noteMin(rtt, now);
    }
    if (usable && r.a[r.oOrder + s]! > this.rackOrder) {
      this.rackOrder = r.a[r.oOrder + s]!;
      this.rackXmitTs = xmit;
      this.rackEndSeq = end;
      this.rackRtt = rtt;
    }
    // Step 3: a never-retransmitted segment delivered below the previous highest SACK.
    if (!(f & F_EVER_RETRANS) && prevFackValid && seqLt(end, prevFack)) {
      this.reorderingSeen = true;
    }
    if (!this.rackFackValid || seqGt(end, this.rackFack)) {
      this.rackFack = end;
      this.rackFackValid = true;
    }
  }

  /** RFC 8985 6.2 step 4: the reordering window. */
  private updateReoWnd(dsack: boolean): void {
    if (this.dsackRoundValid && seqGe(this.una, this.dsackRound)) this.dsackRoundValid = false;
    if (!this.dsackRoundValid && dsack) {
      this.dsackRound = this.nxt;
      this.dsackRoundValid = true;
      this.reoWndMult++;
      this.reoWndPersist = REO_WND_PERSIST;
    }
    this.setReoWnd();
  }

  /**
   * Sets RACK.reo_wnd from reordering state, min RTT and SRTT. A store, not a return: a
   * fractional window returned from a call that is not inlined is a heap number per ACK.
   */
  private setReoWnd(): void {
    const minRtt = this.est.minRtt;
    if (
      (!this.reorderingSeen &&
        (this.st === "recovery" || this.st === "loss" || this.sackedPkts >= this.dupThresh)) ||
      minRtt < 0
    ) {
      this.reoWnd = 0;
      return;
    }
    const w = (this.reoWndMult * minRtt) / 4;
    const srtt = this.est.srtt;
    this.reoWnd = srtt >= 0 && srtt < w ? srtt : w;
  }

  /** RFC 8985 6.2 step 5: marks lost by time; arms the reordering timer for the rest. */
  private rackDetect(now: Instant): void {
    this.reoAt = NEVER;
    if (this.rackXmitTs < 0) return;
    const r = this.ring;
    let timeout = 0;
    // Walk the in-flight records in transmission order, up to the newest delivered one.
    for (let s = r.listHead; s >= 0;) {
      const next = r.listNext(s);
      if (r.a[r.oOrder + s]! >= this.rackOrder) break;
      const remaining = r.a[r.oLast + s]! + this.rackRtt + this.reoWnd - now;
      if (remaining <= 0) this.markLost(s);
      else if (remaining > timeout) timeout = remaining;
      s = next;
    }
    if (timeout > 0) this.reoAt = now + timeout;
  }

  /** RFC 6675 IsLost(): DupThresh SACKed segments (or that many bytes) above a hole. */
  private dupThreshMark(): void {
    if (this.sackedPkts < this.dupThresh && this.sacked <= (this.dupThresh - 1) * this.mss) {
      return;
    }
    const r = this.ring;
    let pkts = 0;
    let bytes = 0;
    for (let i = r.count - 1; i >= 0; i--) {
      const s = r.slot(i);
      const f = r.a[r.oFlags + s]!;
      if (f & F_SACKED) {
        pkts++;
        bytes += r.a[r.oLen + s]!;
      } else if (
        !(f & (F_LOST | F_RETRANS)) &&
        (pkts >= this.dupThresh || bytes > (this.dupThresh - 1) * this.mss)
      ) {
        this.markLost(s);
      }
    }
  }

  /** Marks slot `s` lost (a retransmission in flight counts as lost again). */
  private markLost(s: number): void {
    const r = this.ring;
    const f = r.a[r.oFlags + s]!;
    if (f & F_SACKED) return;
    if ((f & (F_LOST | F_RETRANS)) === F_LOST) return;
    const l = r.a[r.oLen + s]!;
    if (f & F_RETRANS) this.retrans -= l;
    if (!(f & F_LOST)) this.lost += l;
    r.a[r.oFlags + s] = (f & ~F_RETRANS) | F_LOST;
    r.unlink(s);
    this.lostSegs++;
    this.res.newlyLostBytes += l;
    this.res.newlyLostPackets++;
    const start = r.a[s]!;
    if (seqLt(start, this.retransHint)) this.retransHint = start;
  }

  /** Starts fast recovery: recovery point, CC reduction, PRR state. */
  private enterRecovery(now: Instant): void {
    this.recoveryPoint = this.nxt;
    this.recoverValid = true;
    this.startUndoEpisode();
    this.ccImpl.onCongestion("loss", now);
    this.prrDelivered = 0;
    this.prrOut = 0;
    this.prrQuota = 0;
    const fs = (this.nxt - this.una) >>> 0;
    this.recoverFs = fs > 0 ? fs : 1;
    this.recoveries++;
    this.tlpAt = NEVER;
    this.probeQuota = 0;
    this.probePending = false;
    this.setState("recovery", now);
  }

  /** Remembers what a later spurious-retransmission proof would undo. */
  private startUndoEpisode(): void {
    this.undoValid = true;
    this.undoMarker = this.una;
    this.undoRetrans = 0;
    this.undoRetransTime = -1;
    this.eifelPending = true;
  }

  /** Restores the window and forgets loss marks after a spurious reduction. */
  private undo(now: Instant): void {
    this.undoValid = false;
    this.eifelPending = false;
    this.ccImpl.onUndo(now);
    this.spurious++;
    this.res.spuriousUndo = true;
    this.reorderingSeen = true;
    const r = this.ring;
    let cursor = -1; // list position of the last re-inserted record (orders mostly ascend)
    for (let i = 0; i < r.count; i++) {
      const s = r.slot(i);
      const f = r.a[r.oFlags + s]!;
      if (f & F_LOST) {
        this.lost -= r.a[r.oLen + s]!;
        r.a[r.oFlags + s] = f & ~F_LOST;
        if (!(f & F_INLIST)) cursor = this.relink(s, cursor);
      }
    }
    if (this.st === "recovery" || this.st === "loss") {
      this.setState(this.sacked > 0 ? "disorder" : "open", now);
    }
  }

  /**
   * Puts slot `s` back on the in-flight list at its transmission-order position, searching
   * forward from `cursor` (a list slot known to be older, or -1 for the head); returns `s`.
   */
  private relink(s: number, cursor: number): number {
    const r = this.ring;
    const order = r.a[r.oOrder + s]!;
    let p = cursor >= 0 && r.a[r.oOrder + cursor]! <= order ? cursor : -1;
    let n = p >= 0 ? r.listNext(p) : r.listHead;
    while (n >= 0 && r.a[r.oOrder + n]! <= order) {
      p = n;
      n = r.listNext(n);
    }
    r.linkAfter(p, s);
    return s;
  }

  /** Changes the congestion state and tells the CC. */
  private setState(s: RecoveryState, now: Instant): void {
    if (s === this.st) return;
    this.st = s;
    this.ccImpl.onStateChange(s, now);
  }

  /** RFC 6675 pipe plus NewReno's dupack estimate. */
  private pipe(): number {
    const v = ((this.nxt - this.una) >>> 0) - this.sacked - this.lost + this.retrans -
      this.renoSacked;
    return v > 0 ? v : 0;
  }

  /** Pacing rate from the CC, or Linux's default ratio of cwnd/SRTT when pacing is on. */
  private updatePacing(): void {
    let rate = this.ccImpl.pacingRate;
    const srtt = this.est.srtt;
    if (!(rate > 0) && this.pacingCfg && srtt > 0) {
      const cwnd = this.ccImpl.cwnd;
      // Linux's rule: 200% of cwnd/srtt in slow start (below ssthresh/2), 120% otherwise.
      const factor = cwnd < this.ccImpl.ssthresh / 2 ? 2 : 1.2;
      rate = (factor * cwnd * SECOND) / srtt;
    }
    // Field stores, not configure(rate, ...): a fractional rate passed to a call that is not
    // inlined is boxed (a heap number per ACK).
    this.pacer.rate = rate > 0 ? rate : 0;
    this.pacer.credit = (this.burstSegs - 1) * this.mss;
  }

  // ---------------------------------------------------------------------------------------
  // Timers

  /** RFC 8985 7.2 conditions for arming a probe. */
  private tlpEligible(): boolean {
    // Needs an RTT sample: that also keeps probes away from the SYN (the handshake's RTO owns it).
    return this.tlpCfg && this.sackOn && (this.st === "open" || this.st === "disorder") &&
      !this.tlpOutstanding && !this.probePending && this.ring.count > 0 && this.est.srtt >= 0;
  }

  /**
   * RFC 8985 7.2: PTO = 2*SRTT (+ WCDelAckT with one segment in flight, + 2 ms otherwise as
   * Linux does), capped by the RTO
   * deadline. (Before the first RTT sample no probe is armed: the RTO covers that case.)
   */
  private armTlp(now: Instant): void {
    if (!this.tlpEligible()) {
      this.tlpAt = NEVER;
      return;
    }
    const srtt = this.est.srtt;
    let pto = 2 * srtt;
    // One segment in flight: wait out the peer's delayed ACK (RFC 8985 7.2). Several: Linux adds
    // TCP_TIMEOUT_MIN (2 ms) so that a sub-millisecond SRTT (veth, a local NSM) does not send a
    // probe right behind every flight.
    if (((this.nxt - this.una) >>> 0) <= this.mss) pto += this.delAck;
    else pto += TLP_MIN_EXTRA;
    const at = now + pto;
    // Capped by the RTO deadline: the probe then goes out instead of the timeout (RFC 8985).
    this.tlpAt = at < this.rtoAt ? at : this.rtoAt;
  }

  /** See `RecoveryEngineApi.pollAt`. */
  pollAt(): Instant {
    let t = this.rtoAt;
    if (this.tlpAt < t) t = this.tlpAt;
    if (this.reoAt < t) t = this.reoAt;
    return t;
  }

  /** See `RecoveryEngineApi.pollAtInto`. */
  pollAtInto(out: Float64Array, i: number): void {
    let t = this.rtoAt;
    if (this.tlpAt < t) t = this.tlpAt;
    if (this.reoAt < t) t = this.reoAt;
    out[i] = t;
  }

  /** See `RecoveryEngineApi.onTimer`. */
  onTimer(now: Instant, newDataAvailable: boolean): TimerKind {
    const r = this.ring;
    this.res.newlyLostBytes = this.res.newlyLostPackets = 0;
    if (r.count === 0) {
      this.rtoAt = this.tlpAt = this.reoAt = NEVER;
      return "none";
    }
    if (this.reoAt <= now && this.reoAt <= this.tlpAt && this.reoAt <= this.rtoAt) {
      this.reoAt = NEVER;
      this.setReoWnd();
      this.rackDetect(now);
      if ((this.st === "open" || this.st === "disorder") && this.lost > 0) {
        this.enterRecovery(now);
        // No ACK clocks PRR here: allow the fast retransmit.
        this.prrQuota = this.mss;
      } else if (this.st === "recovery" && this.res.newlyLostPackets > 0) {
        // Already recovering: with pipe below ssthresh, one segment may go without an ACK
        // (so a lost tail is repaired now rather than at the RTO).
        const room = this.ccImpl.ssthresh - this.pipe();
        const one = room < this.mss ? room : this.mss;
        if (one > this.prrQuota) this.prrQuota = one;
      }
      return "reorder";
    }
    if (this.tlpAt <= now && this.tlpAt <= this.rtoAt) {
      this.tlpAt = NEVER;
      this.tlpCount++;
      if (newDataAvailable) {
        this.probeQuota = this.mss;
      } else {
        // Probe with the last not-SACKed segment (its last MSS).
        for (let i = r.count - 1; i >= 0; i--) {
          const s = r.slot(i);
          if (r.a[r.oFlags + s]! & F_SACKED) continue;
          const l = r.a[r.oLen + s]!;
          const take = l > this.mss ? this.mss : l;
          this.probeSeq = (r.a[s]! + l - take) >>> 0;
          this.probeLen = take;
          this.probePending = true;
          this.probeQuota = take;
          break;
        }
      }
      this.rtoAt = now + this.est.rto;
      return "tlp";
    }
    if (this.rtoAt <= now) {
      this.rtoCount++;
      this.est.backOff();
      if (this.st !== "loss") {
        this.startUndoEpisode();
        this.ccImpl.onCongestion("rto", now);
      } else {
        this.eifelPending = false; // a second timeout: the first was no reordering artefact
      }
      this.recoveryPoint = this.nxt;
      this.recoverValid = true;
      for (let i = 0; i < r.count; i++) this.markLost(r.slot(i));
      this.retransHint = this.una;
      this.dupAcks = 0;
      this.renoSacked = 0;
      this.tlpAt = this.reoAt = NEVER;
      this.tlpOutstanding = this.probePending = false;
      this.probeQuota = 0;
      this.setState("loss", now);
      this.rtoAt = now + this.est.rto;
      this.updatePacing();
      return "rto";
    }
    return "none";
  }

  // ---------------------------------------------------------------------------------------
  // What to send

  /** See `RecoveryEngineApi.nextRetransmit`. */
  nextRetransmit(): RetransmitRange | null {
    const r = this.ring;
    // No byte marked lost means no record to repeat: skip the binary search (the output loop
    // asks before every segment, and a bulk sender is almost never in loss).
    let i = this.lost === 0
      ? r.count
      : seqLt(this.retransHint, this.una)
      ? 0
      : r.find(this.una, this.retransHint);
    if (i < 0) i = r.count;
    for (; i < r.count; i++) {
      const s = r.slot(i);
      if ((r.a[r.oFlags + s]! & (F_LOST | F_RETRANS | F_SACKED)) === F_LOST) {
        const l = r.a[r.oLen + s]!;
        this.retransHint = r.a[s]!;
        this.rtx.seq = r.a[s]!;
        this.rtx.len = l > this.mss ? this.mss : l;
        this.rtx.isProbe = false;
        return this.rtx;
      }
    }
    this.retransHint = this.nxt;
    if (this.probePending) {
      this.rtx.seq = this.probeSeq;
      this.rtx.len = this.probeLen;
      this.rtx.isProbe = true;
      return this.rtx;
    }
    return null;
  }

  /** Congestion allowance in bytes (cwnd - pipe, PRR, or a probe), unrounded. */
  private allowance(): number {
    const pipe = this.pipe();
    let a = this.st === "recovery" ? this.prrQuota : this.ccImpl.cwnd - pipe;
    if (pipe === 0 && a < this.mss) a = this.mss;
    if (this.probeQuota > a) a = this.probeQuota;
    return a > 0 ? a : 0;
  }

  /** Bytes the peer window still admits beyond snd_nxt. */
  private windowRoom(): number {
    const v = this.peerWnd - ((this.nxt - this.una) >>> 0);
    return v > 0 ? v : 0;
  }

  /** See `RecoveryEngineApi.sendQuota`. */
  sendQuota(): number {
    let a = this.allowance();
    // Whole segments only: no runt segments because of the window. As int32 when it fits: a
    // float64 remainder is a call to fmod.
    if (a <= 0x7fff_ffff) {
      const i = a | 0; // a >= 0: the same result as a - a % mss
      a = i - i % (this.mss | 0);
    } else {
      a -= a % this.mss;
    }
    const w = this.windowRoom();
    return a < w ? a : w;
  }

  /** See `RecoveryEngineApi.canSend`. */
  canSend(bytes: number, isRetransmit = false): boolean {
    if (bytes > this.allowance()) return false;
    return isRetransmit || bytes <= this.windowRoom();
  }

  /** See `RecoveryEngineApi.nextSendTime`. */
  nextSendTime(): Instant {
    return this.pacer.nextSendTime();
  }

  /** See `RecoveryEngineApi.pacedAfter`. */
  pacedAfter(now: Instant): boolean {
    const p = this.pacer;
    return p.rate > 0 && p.vt > now;
  }

  /** See `RecoveryEngineApi.nextSendTimeInto`. */
  nextSendTimeInto(out: Float64Array, i: number): void {
    const p = this.pacer;
    out[i] = p.rate > 0 ? p.vt : Number.NEGATIVE_INFINITY;
  }

  /** See `RecoveryEngineApi.takeCwr`. */
  takeCwr(): boolean {
    const v = this.cwrPending;
    this.cwrPending = false;
    return v;
  }

  /** See `RecoveryEngineApi.sendEct`. */
  get sendEct(): boolean {
    return this.ecnOn && this.ccImpl.wantsEcn;
  }
  /** See `RecoveryEngineApi.cc`. */
  get cc(): CongestionControl {
    return this.ccImpl;
  }
  /** See `RecoveryEngineApi.state`. */
  get state(): RecoveryState {
    return this.st;
  }
  /** See `RecoveryEngineApi.sndUna`. */
  get sndUna(): Seq {
    return this.una;
  }
  /** See `RecoveryEngineApi.sndNxt`. */
  get sndNxt(): Seq {
    return this.nxt;
  }
  /** See `RecoveryEngineApi.inFlight`. */
  get inFlight(): number {
    return this.pipe();
  }
  /** See `RecoveryEngineApi.rto`. */
  get rto(): Duration {
    return this.est.rto;
  }
  /** See `RecoveryEngineApi.srtt`. */
  get srtt(): Duration {
    return this.est.srtt;
  }

  /**
   * Recomputes the scoreboard counters from the records and checks the ring covers exactly
   * [snd_una, snd_nxt); returns a description of the first inconsistency, or null. For tests
   * and debugging (O(window)).
   */
  audit(): string | null {
    const r = this.ring;
    let at = this.una;
    let sacked = 0, sackedPkts = 0, lost = 0, retrans = 0;
    for (let i = 0; i < r.count; i++) {
      const s = r.slot(i);
      const f = r.a[r.oFlags + s]!;
      const l = r.a[r.oLen + s]!;
      if (r.a[s] !== at) return `record ${i} starts at ${r.a[s]}, expected ${at}`;
      if (!(l > 0)) return `record ${i} has length ${l}`;
      if ((f & F_SACKED) && (f & (F_LOST | F_RETRANS))) return `record ${i} SACKed and lost`;
      if (f & F_SACKED) {
        sacked += l;
        sackedPkts++;
      }
      if (f & F_LOST) lost += l;
      if (f & F_RETRANS) retrans += l;
      at = (at + l) >>> 0;
    }
    if (at !== this.nxt) return `records end at ${at}, snd_nxt is ${this.nxt}`;
    // The in-flight list: exactly the records not SACKed and not lost-and-waiting, in
    // transmission order, with consistent back links.
    let expected = 0;
    for (let i = 0; i < r.count; i++) {
      const f = r.a[r.oFlags + r.slot(i)]!;
      const inFlight = !(f & F_SACKED) && (f & (F_LOST | F_RETRANS)) !== F_LOST;
      if (inFlight !== ((f & F_INLIST) !== 0)) return `record ${i} list membership wrong`;
      if (inFlight) expected++;
    }
    let seen = 0;
    let prev = -1;
    let lastOrder = -1;
    for (let s = r.listHead; s >= 0; s = r.listNext(s)) {
      if (++seen > r.count) return "list has a cycle";
      if (r.a[r.oPrev + s] !== prev) return `list back link of slot ${s} wrong`;
      const o = r.a[r.oOrder + s]!;
      if (o < lastOrder) return `list out of transmission order at slot ${s}`;
      lastOrder = o;
      prev = s;
    }
    if (prev !== r.listTail) return "list tail wrong";
    if (seen !== expected) return `list has ${seen} records, expected ${expected}`;
    if (sacked !== this.sacked) return `sacked ${this.sacked} != ${sacked}`;
    if (sackedPkts !== this.sackedPkts) return `sackedPkts ${this.sackedPkts} != ${sackedPkts}`;
    if (lost !== this.lost) return `lost ${this.lost} != ${lost}`;
    if (retrans !== this.retrans) return `retrans ${this.retrans} != ${retrans}`;
    return null;
  }

  /** See `RecoveryEngineApi.info`. */
  info(out?: RecoveryInfo): RecoveryInfo {
    if (out === undefined) out = this.infoOut ??= new RecoveryInfo();
    out.state = this.st;
    out.cwnd = this.ccImpl.cwnd;
    out.ssthresh = this.ccImpl.ssthresh;
    out.srtt = this.est.srtt;
    out.rttvar = this.est.rttvar;
    out.rto = this.est.rto;
    out.backoff = this.est.backoff;
    out.minRtt = this.est.minRtt;
    out.inFlight = this.pipe();
    out.outstanding = (this.nxt - this.una) >>> 0;
    out.sackedBytes = this.sacked;
    out.lostBytes = this.lost;
    out.bytesAcked = this.bytesAcked;
    out.bytesSent = this.bytesSent;
    out.retransSegs = this.retransSegs;
    out.retransBytes = this.retransBytes;
    out.lostSegs = this.lostSegs;
    out.spuriousUndos = this.spurious;
    out.dsacks = this.dsacks;
    out.rtoCount = this.rtoCount;
    out.tlpCount = this.tlpCount;
    out.recoveries = this.recoveries;
    out.deliveryRate = this.lastRate;
    out.pacingRate = this.pacer.rate;
    out.reorderingSeen = this.reorderingSeen;
    out.reoWnd = this.reoWnd;
    return out;
  }
}
