/**
 * The per-connection TCP state machine (the TCB of RFC 9293 3.3.1): pure and time-injected.
 *
 * `process(seg, ecn, now)` handles one parsed segment, `poll(now)` runs due timers and sends,
 * `pollAt()` says when the next timer is due. Segments leave through the `TcbHost` (the
 * socket layer), which borrows a packet buffer from the IP layer and copies payload straight
 * from this connection's send ring. The sender asks the `RecoveryEngine` what it may send and
 * what to retransmit; this file owns the handshake, teardown, receive side, flow control,
 * delayed ACK, persist, keepalive, TIME-WAIT and ECN echo.
 *
 * Comments cite the RFC section each transition follows.
 *
 * @module
 */

import { type Duration, type Instant, MILLISECOND, NEVER, SECOND } from "../../time.ts";
import type { IpAddress } from "../wire/address.ts";
import {
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  type TcpRepr,
} from "../wire/tcp.ts";
import type { TcpConfig, TcpSocketOptions } from "./config.ts";
import type { TcpCounters, TcpDropReason } from "./counters.ts";
import { ConnectionRefused, ConnectionReset, type TcpError, TimedOut } from "./errors.ts";
import { AddResult, Reassembly } from "./reassembly.ts";
import { createCc, RecoveryEngine, RecoveryInfo } from "./recovery/mod.ts";
import type { RecoveryEngineApi } from "./recovery/mod.ts";
import { ByteRing } from "./ring.ts";
import {
  type Seq,
  seqAdd,
  seqAdd32,
  seqDiff,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLt,
} from "./seq.ts";
import { AS_DOUBLE } from "./f64.ts";

/** The eleven connection states of RFC 9293 3.3.2. */
export const TcpState = {
  Closed: 0,
  Listen: 1,
  SynSent: 2,
  SynReceived: 3,
  Established: 4,
  FinWait1: 5,
  FinWait2: 6,
  CloseWait: 7,
  Closing: 8,
  LastAck: 9,
  TimeWait: 10,
} as const;
/** One of the `TcpState` values. */
export type TcpState = typeof TcpState[keyof typeof TcpState];

/** RFC 9293 names of the states, indexed by `TcpState`. */
export const TCP_STATE_NAMES: readonly string[] = [
  "CLOSED",
  "LISTEN",
  "SYN-SENT",
  "SYN-RECEIVED",
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
];

/** What a TCB needs from the socket layer. */
export interface TcbHost {
  /** Stack-wide counters. */
  readonly counters: TcpCounters;
  /** Scratch repr the TCB fills for each segment it sends. */
  readonly txRepr: TcpRepr;
  /**
   * Emits the segment in `repr` with `dataLength` payload bytes copied from the TCB's send
   * ring at `dataOffset` (see `Tcb.copySendData`); `ecn` is the IP ECN codepoint. Returns
   * false when the IP layer had no buffer or route (the TCB retries later).
   */
  transmit(tcb: Tcb, repr: TcpRepr, dataOffset: number, dataLength: number, ecn: number): boolean;
  /** RFC 5961 7: true when the stack-wide challenge-ACK budget allows one more now. */
  allowChallengeAck(now: Instant): boolean;
  /** The TCB's readiness, state or timers may have changed. */
  changed(tcb: Tcb): void;
  /**
   * Optional (ACK coalescing): send `tcb`'s owed ACK at the end of the receive batch by
   * calling `tcb.flushDeferredAck(now)`. Without it the TCB sends the ACK at once.
   */
  deferAck?(tcb: Tcb): void;
  /**
   * Optional: grants up to `bytes` of buffer auto-tuning growth from a stack-wide budget and
   * returns how many (the TCB gives them back with `releaseBufferGrowth`). Without it every
   * growth up to the ceilings is granted.
   */
  growBuffers?(bytes: number): number;
}

/** What the TCB needs to know about a segment besides its header (an `IpReceiveInfo` fits). */
export interface SegmentInfo {
  /** ECN codepoint of the IP header (0 not-ECT, 1 ECT(1), 2 ECT(0), 3 CE). */
  readonly ecn: number;
}

/** Receive-side view of a segment's ECN codepoint. */
const ECN_CE = 3;
const ECN_ECT0 = 2;

/** RFC 7323 5.5: TS.Recent is invalid after 24 days of idleness. */
const PAWS_IDLE_LIMIT = 24 * 24 * 3600 * 1000 * MILLISECOND;

/** Least time between ACKs answering unacceptable segments without data. */
const OOW_ACK_INTERVAL = 500 * MILLISECOND;

/** Segments one output pass may emit before yielding to other connections. */
const OUTPUT_BUDGET = 1024;
/** Delay before retrying after the IP layer refused a buffer. */
const RETRY_DELAY = MILLISECOND;
/** Out-parameter for times read from the engine (see `pollAtInto`); single-threaded use. */
const TIME_OUT = new Float64Array(1);

/** Largest window shift (RFC 7323 2.3). */
const MAX_WSCALE = 14;

/** Readiness bits (epoll-like). */
export const READABLE = 1;
/** Send buffer has room. */
export const WRITABLE = 2;
/** The connection failed; `error` says why. */
export const ERROR = 4;
/** Both directions are finished (or the connection is gone). */
export const HANGUP = 8;

/** TCP_INFO-like statistics of one connection. */
export interface TcpInfo {
  /** RFC 9293 state name. */
  state: string;
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow-start threshold, bytes (Infinity before the first reduction). */
  ssthresh: number;
  /** Smoothed RTT ns (-1 before a sample). */
  srtt: Duration;
  /** RTT variance ns. */
  rttvar: Duration;
  /** Current RTO ns. */
  rto: Duration;
  /** Effective send MSS. */
  mss: number;
  /** Data bytes handed to the IP layer (including retransmissions). */
  bytesSent: number;
  /** Bytes acknowledged by the peer. */
  bytesAcked: number;
  /** In-order bytes received. */
  bytesReceived: number;
  /** Retransmitted segments. */
  retransmits: number;
  /** Last delivery rate, bytes/s. */
  deliveryRate: number;
  /** Pacing rate, bytes/s. */
  pacingRate: number;
  /** Peer's window, bytes. */
  sndWnd: number;
  /** Our advertised window, bytes. */
  rcvWnd: number;
  /** Negotiated options. */
  options: { timestamps: boolean; sack: boolean; wscale: number; peerWscale: number; ecn: boolean };
}

/** One TCP connection. Created by the socket layer (`TcpStack`). */
export class Tcb {
  /** Current state. */
  state: TcpState = TcpState.Closed;
  /** Local address. */
  readonly localAddr: IpAddress;
  /** Local port. */
  readonly localPort: number;
  /** Remote address. */
  readonly remoteAddr: IpAddress;
  /** Remote port. */
  readonly remotePort: number;
  /** The error that ended the connection, if any. */
  error: TcpError | null = null;
  /** True when created by a passive open (a listener's SYN). */
  passive = false;
  /** Opaque slot for the socket layer (its socket record). */
  owner: unknown = null;
  /** True once the application closed the socket (no more reads or writes). */
  orphaned = false;

  // --- Send sequence space (RFC 9293 3.3.1) ---
  /** Initial send sequence number. */
  iss: Seq = AS_DOUBLE;
  /** Oldest unacknowledged sequence number. */
  sndUna: Seq = AS_DOUBLE;
  /** Next sequence number to send (highest sent + 1). */
  sndNxt: Seq = AS_DOUBLE;
  /** Peer's window in bytes (scaled). */
  sndWnd = 0;
  /** Largest window the peer ever offered (RFC 5961 5.2, sender SWS). */
  maxSndWnd = 0;
  #sndWl1: Seq = AS_DOUBLE;
  #sndWl2: Seq = AS_DOUBLE;
  /** Sequence number of send-ring byte 0. */
  #sndBufSeq: Seq = AS_DOUBLE;
  #finQueued = false;
  #finSent = false;
  #finSeq: Seq = AS_DOUBLE;

  // --- Receive sequence space ---
  /** Initial receive sequence number. */
  irs: Seq = AS_DOUBLE;
  /** Next sequence number expected. */
  rcvNxt: Seq = AS_DOUBLE;
  /** Right edge of the window last advertised (never moved left, RFC 9293 3.8.6). */
  #rcvAdv: Seq = AS_DOUBLE;
  #lastAckSent: Seq = AS_DOUBLE;
  #rcvFinSeq: Seq = AS_DOUBLE;
  #rcvFinPending = false;
  /** True once the peer's FIN was consumed (end of stream). */
  rcvEof = false;

  // --- Options ---
  /** Our MSS from the route MTU. */
  #ourMss: number;
  /** Effective send MSS (payload bytes per full segment). */
  mss = 536;
  #sndWscale = 0;
  #rcvWscale = 0;
  #wscaleOk = false;
  #tsOk = false;
  #sackOk = false;
  #ecnOk = false;
  #tsRecent = AS_DOUBLE;
  #tsRecentAt: Instant = -Infinity;
  #tsOffset = AS_DOUBLE;

  // --- Buffer auto-tuning (`TcpConfig.sendBufferMax`, `receiveBufferMax`) ---
  /**
   * The receiver's round-trip estimate (Linux's rcv_rtt_est without timestamps): the time
   * RCV.NXT takes to pass the window's right edge as it was when the last measurement started.
   * An upper bound (a sender that is not window-limited takes longer), so the smallest is kept.
   */
  #rcvRtt: Duration = AS_DOUBLE;
  /** Where the current measurement ends (int32 sequence bits) and when it started. */
  #rcvRttSeq = 0;
  #rcvRttAt: Instant = AS_DOUBLE;
  /** Bytes the application read since `#tuneAt`, the start of the current round trip. */
  #tuneRead = 0;
  #tuneAt: Instant = AS_DOUBLE;
  /** Bytes of growth the host granted this connection's buffers (`TcbHost.growBuffers`). */
  #grown = 0;

  // --- Buffers ---
  /** Send queue: bytes from `sndBufSeq` on (unacked + unsent). */
  readonly sndRing: ByteRing;
  /** Receive queue: in-order unread bytes, then out-of-order bytes past them. */
  readonly rcvRing: ByteRing;
  readonly #reass = new Reassembly();

  // --- Engine and timers ---
  /** The loss-recovery and congestion engine. */
  readonly rec: RecoveryEngineApi;
  #engineStarted = false;
  #delayedAckAt: Instant = NEVER;
  #ackNow = false;
  /** An ACK is owed under the every-second-segment rule (deferrable, see `ackCoalescing`). */
  #ackDue = false;
  /** Set by the host while this TCB waits in its deferred-ACK list. */
  ackDeferred = false;
  #unackedBytes = 0;
  #quickAcks: number;
  /**
   * Interactive mode (Linux's "pingpong"): we sent data within `delayedAckTimeout` of
   * receiving some, so the peer's next data is acknowledged by our next segment rather than at
   * once, even while quick ACKs remain (a request/response or connect/request/close exchange
   * then sends no separate ACK). Left when a delayed ACK had to go out on its own.
   */
  #interactive = false;
  /** When data (or the SYN-ACK) last arrived, for `#interactive`. */
  #lastDataAt = -Infinity;
  #persistAt: Instant = NEVER;
  #persistBackoff = 0;
  #keepaliveAt: Instant = NEVER;
  #keepaliveProbes = 0;
  #timeWaitAt: Instant = NEVER;
  #finWait2At: Instant = NEVER;
  #lingerAt: Instant = NEVER;
  #pacingAt: Instant = NEVER;
  #swsOverride = false;
  /** A short segment emptied the send queue: the next full segment re-aligns (see #output). */
  #realign = false;
  #lastOowAck: Instant = -Infinity;

  // --- ECN (RFC 3168 / RFC 8257) ---
  #eceEcho = false;
  #ceState = false;

  // --- Statistics ---
  /** In-order payload bytes received. */
  bytesReceived = AS_DOUBLE;
  /** Payload bytes handed to the IP layer. */
  bytesSent = AS_DOUBLE;
  /** Heap slot used by the socket layer's timer heap (-1 when not queued). */
  heapIndex = -1;
  /** Deadline under which the socket layer queued this TCB. */
  heapKey: Instant = NEVER;
  /** Last readiness reported to the socket layer. */
  lastEvents = 0;
  /** Next TCB in the socket layer's demux bucket. */
  demuxNext: Tcb | null = null;
  /** 4-tuple hash the socket layer filed this TCB under. */
  demuxHash = 0;
  /** True while filed in the demux table. */
  inDemux = false;
  /** Stack bookkeeping: counted in `TcpCounters.timeWait`. */
  inTimeWaitCount = false;

  readonly #host: TcbHost;
  readonly #cfg: TcpConfig;
  /** `cfg.windowUpdateOnRead === "half-window"`, read once (recv() is on the hot path). */
  readonly #halfWindowUpdates: boolean;
  /** `cfg.ackCoalescing`, read once. */
  readonly #coalesceAcks: boolean;
  /** Socket options in force (shared with the socket record). */
  readonly opts: TcpSocketOptions;

  /**
   * A closed TCB for one 4-tuple. `routeMss` is the MSS the route MTU allows (RFC 9293 3.7.1);
   * `tsOffset` the per-connection timestamp offset (RFC 7323 5.4).
   */
  constructor(
    host: TcbHost,
    cfg: TcpConfig,
    opts: TcpSocketOptions,
    local: IpAddress,
    localPort: number,
    remote: IpAddress,
    remotePort: number,
    routeMss: number,
    tsOffset: number,
  ) {
    // Double fields from the start (see f64.ts), then their real start values.
    this.iss = 0;
    this.sndUna = 0;
    this.sndNxt = 0;
    this.#sndBufSeq = 0;
    this.#finSeq = 0;
    this.irs = 0;
    this.rcvNxt = 0;
    this.#rcvAdv = 0;
    this.#lastAckSent = 0;
    this.#rcvFinSeq = 0;
    this.#tsRecent = 0;
    this.bytesReceived = 0;
    this.bytesSent = 0;
    this.#sndWl1 = 0;
    this.#sndWl2 = 0;
    this.#host = host;
    this.#cfg = cfg;
    this.#halfWindowUpdates = cfg.windowUpdateOnRead === "half-window";
    this.#coalesceAcks = cfg.ackCoalescing;
    this.opts = opts;
    this.localAddr = local;
    this.localPort = localPort;
    this.remoteAddr = remote;
    this.remotePort = remotePort;
    this.#ourMss = Math.max(88, routeMss);
    this.#tsOffset = tsOffset >>> 0;
    this.#quickAcks = cfg.quickAckSegments;
    this.sndRing = new ByteRing(opts.sendBufferSize, cfg.sendSpillBytes);
    this.rcvRing = new ByteRing(opts.receiveBufferSize);
    const { cc } = createCc(opts.congestionControl);
    this.rec = new RecoveryEngine({
      mss: this.#ourMss,
      cc,
      minRto: cfg.minRto,
      initialRto: cfg.initialRto,
      pacing: cfg.pacing,
      capacity: 8,
    });
    // RFC 7323 2.2: the shift is chosen once, from the receive buffer, before the SYN.
    this.#rcvWscale = receiveShiftFor(opts, cfg);
    this.#rcvRtt = 0;
    this.#rcvRttAt = -1;
    this.#tuneAt = 0;
  }

  /** RFC 9293 name of the current state. */
  get stateName(): string {
    return TCP_STATE_NAMES[this.state]!;
  }

  /** True in the synchronized states (RFC 9293 3.5.2 group 3 applies). */
  get synchronized(): boolean {
    return this.state >= TcpState.Established;
  }

  /** In-order bytes ready for `recv()`. */
  get readableBytes(): number {
    return this.rcvRing.length;
  }

  /** Room in the send buffer. */
  get writableBytes(): number {
    return this.#finQueued ? 0 : this.sndRing.free;
  }

  /** True after shutdown(write)/close(): no more data may be queued. */
  get writeShut(): boolean {
    return this.#finQueued;
  }

  /** Current readiness bits (READABLE | WRITABLE | ERROR | HANGUP). */
  events(): number {
    let ev = 0;
    if (this.rcvRing.length > 0 || this.rcvEof || this.error !== null) ev |= READABLE;
    // Writable once free space is at least half of what is queued (Linux's
    // sk_stream_min_wspace), so a nearly full buffer does not wake the writer per ACK.
    const free = this.sndRing.free;
    if (
      (this.state === TcpState.Established || this.state === TcpState.CloseWait) &&
      !this.#finQueued && free > 0 && free * 2 >= this.sndRing.length
    ) ev |= WRITABLE;
    if (this.error !== null) ev |= ERROR;
    if (
      this.state === TcpState.Closed || this.state === TcpState.TimeWait ||
      (this.rcvEof && this.#finQueued)
    ) ev |= HANGUP;
    return ev;
  }

  // ------------------------------------------------------------------------------------------
  // Opening

  /** Active OPEN (RFC 9293 3.10.1): sends the SYN and enters SYN-SENT. */
  connect(iss: Seq, now: Instant): void {
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.#sndBufSeq = seqAdd(this.iss, 1);
    this.rec.reset(this.iss, now);
    // No TLP/RACK for the SYN (RFC 8985 probes data only): options are set once negotiated.
    this.rec.setNegotiated(false, false, false);
    this.#engineStarted = true;
    this.state = TcpState.SynSent; // RFC 9293 3.10.1: CLOSED -> SYN-SENT on active OPEN
    this.#sendSyn(now, false);
    this.sndNxt = seqAdd(this.iss, 1);
    this.rec.onSend(this.iss, 1, now, false);
  }

  /**
   * Passive open from a listener's SYN (RFC 9293 3.10.7.2, third check): records the peer's
   * options, sends SYN-ACK, enters SYN-RECEIVED. `ecn` is the IP codepoint of the SYN.
   */
  acceptSyn(seg: TcpRepr, iss: Seq, now: Instant): void {
    this.passive = true;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.#rcvAdv = this.rcvNxt;
    this.#negotiateFromSyn(seg, now);
    // RFC 3168 6.1.1: an ECN-setup SYN has ECE and CWR; answer with ECE only.
    this.#ecnOk = this.#cfg.ecn && (seg.flags & (TCP_ECE | TCP_CWR)) === (TCP_ECE | TCP_CWR);
    this.sndWnd = seg.window; // RFC 7323 2.2: the window of a SYN is never scaled
    this.maxSndWnd = this.sndWnd;
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = iss;
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.#sndBufSeq = seqAdd(this.iss, 1);
    this.rec.reset(this.iss, now);
    // No TLP/RACK for the SYN (RFC 8985 probes data only): options are set once negotiated.
    this.rec.setNegotiated(false, false, false);
    this.#engineStarted = true;
    this.state = TcpState.SynReceived; // RFC 9293 3.10.7.2: LISTEN -> SYN-RECEIVED
    this.#sendSyn(now, true);
    this.sndNxt = seqAdd(this.iss, 1);
    this.rec.onSend(this.iss, 1, now, false);
  }

  /**
   * Builds an ESTABLISHED connection from a valid SYN cookie (RFC 4987 3.6): `seg` is the
   * final ACK; `mss` came from the cookie and `cookieTs` holds options encoded in the TSecr.
   */
  acceptCookie(seg: TcpRepr, mss: number, now: Instant): void {
    this.passive = true;
    this.iss = seqAdd(seg.ack, -1);
    this.irs = seqAdd(seg.seq, -1);
    this.rcvNxt = seg.seq;
    // The cookie SYN-ACK offered min(buffer, 65535) unscaled (RFC 7323 2.2).
    this.#rcvAdv = seqAdd(this.rcvNxt, Math.min(this.rcvRing.capacity, 0xffff));
    this.sndUna = seg.ack;
    this.sndNxt = seg.ack;
    this.#sndBufSeq = seg.ack;
    // Options the cookie could carry: from the echoed TSval's low 6 bits (see `cookieTsVal`).
    if (seg.tsPresent && this.#cfg.timestamps) {
      const bits = seg.tsEcr & 0x3f;
      this.#tsOk = true;
      this.#tsRecent = seg.tsVal;
      this.#tsRecentAt = now;
      const ws = bits & 0xf;
      if (ws !== 0xf && this.#cfg.windowScaling) {
        this.#wscaleOk = true;
        this.#sndWscale = ws;
      } else {
        this.#rcvWscale = 0;
      }
      this.#sackOk = (bits & 0x10) !== 0 && this.#cfg.sack;
      this.#ecnOk = (bits & 0x20) !== 0 && this.#cfg.ecn;
    } else {
      this.#rcvWscale = 0;
    }
    this.#setMssFromPeer(mss);
    // The engine starts past the SYN-ACK we never kept: no RTT sample. Replaying the SYN-ACK
    // as sent and acknowledged at `now` seeded SRTT with 0, so the tail-loss probe fired at
    // once (PTO = 2*SRTT) on every multi-segment flight and the RTO sat at its minimum.
    this.rec.reset(this.sndUna, now);
    this.#engineStarted = true;
    this.state = TcpState.SynReceived;
    this.#establish(seg, now);
    this.#host.changed(this);
  }

  /** TSval carrying the SYN-ACK options for a cookie: wscale (4 bits), SACK, ECN. */
  static cookieTsVal(tsClock: number, peer: TcpRepr, cfg: TcpConfig, ecn: boolean): number {
    let bits = peer.windowScale >= 0 && cfg.windowScaling ? Math.min(peer.windowScale, 14) : 0xf;
    if (peer.sackPermitted && cfg.sack) bits |= 0x10;
    if (ecn) bits |= 0x20;
    return (((tsClock - 64) & ~0x3f) | bits) >>> 0;
  }

  #negotiateFromSyn(seg: TcpRepr, now: Instant): void {
    // RFC 7323 2.2: scaling only when both SYNs carry the option.
    if (this.#cfg.windowScaling && seg.windowScale >= 0) {
      this.#wscaleOk = true;
      this.#sndWscale = Math.min(seg.windowScale, MAX_WSCALE); // RFC 7323 2.3: clamp at 14
    } else {
      this.#wscaleOk = false;
      this.#sndWscale = 0;
      this.#rcvWscale = 0;
    }
    this.#sackOk = this.#cfg.sack && seg.sackPermitted; // RFC 2018 2
    this.#tsOk = this.#cfg.timestamps && seg.tsPresent; // RFC 7323 3.2
    if (this.#tsOk) {
      this.#tsRecent = seg.tsVal;
      this.#tsRecentAt = now;
    }
    // RFC 9293 3.7.1: without an MSS option assume 536 (IPv4) / 1220 (IPv6, RFC 8200).
    const peerMss = seg.mss > 0 ? seg.mss : (this.remoteAddr.version === 4 ? 536 : 1220);
    this.#setMssFromPeer(peerMss);
  }

  #setMssFromPeer(peerMss: number): void {
    // RFC 9293 3.7.1: Eff.snd.MSS = min(SendMSS, MMS_S) minus option bytes in every segment.
    this.mss = Math.max(64, Math.min(peerMss, this.#ourMss) - (this.#tsOk ? 12 : 0));
    this.sndRing.setUnit(this.mss);
    // The peer's full segments carry our MSS less the same options: stored unit by unit, they
    // are read out with kept views (`ByteRing.copyOut`).
    this.rcvRing.setUnit(this.#ourMss - (this.#tsOk ? 12 : 0));
  }

  #establish(seg: TcpRepr, now: Instant): void {
    this.state = TcpState.Established;
    this.sndWnd = seg.window << this.#sndWscale;
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = seg.ack;
    this.rec.setNegotiated(this.#sackOk, this.#tsOk, this.#ecnOk);
    this.rec.setMss(this.mss);
    this.rec.setPeerWindow(this.sndWnd);
    // RFC 9293 3.10.4: a CLOSE issued in SYN-RECEIVED takes effect once established.
    if (this.#finQueued) this.state = TcpState.FinWait1;
    this.#armKeepalive(now);
  }

  // ------------------------------------------------------------------------------------------
  // Segment arrival (RFC 9293 3.10.7)

  /**
   * Handles one parsed segment for this connection (`info` carries the IP ECN codepoint).
   */
  process(seg: TcpRepr, info: SegmentInfo, now: Instant): void {
    const ecn = info.ecn;
    switch (this.state) {
      case TcpState.Closed:
      case TcpState.Listen:
        this.#drop("closed-connection");
        return;
      case TcpState.SynSent:
        this.#processSynSent(seg, ecn, now);
        break;
      default:
        this.#processSynchronized(seg, ecn, now);
    }
    this.#afterInput(now);
  }

  #afterInput(now: Instant): void {
    if (this.state !== TcpState.Closed) {
      this.#output(now);
      if (this.#ackNow) this.#sendAck(now);
      else if (this.#ackDue) {
        if (this.#host.deferAck !== undefined) this.#host.deferAck(this);
        else this.#sendAck(now);
      }
    }
    this.#host.changed(this);
  }

  #drop(reason: TcpDropReason): void {
    this.#host.counters.drop(reason);
  }

  /** RFC 9293 3.10.7.3: SYN-SENT. */
  #processSynSent(seg: TcpRepr, ecn: number, now: Instant): void {
    const f = seg.flags;
    let ackOk = false;
    if (f & TCP_ACK) {
      // First: an ACK outside (ISS, SND.NXT] gets a reset unless it is one.
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt)) {
        if (!(f & TCP_RST)) this.#sendReset(seg.ack, 0, false, now);
        this.#drop("syn-sent-bad-ack");
        return;
      }
      ackOk = true;
    }
    if (f & TCP_RST) {
      // Second: RST with an acceptable ACK refuses the connection; without ACK it is dropped.
      if (ackOk) {
        this.#fail(new ConnectionRefused(this.#where()), now);
      } else this.#drop("syn-sent-rst-unacceptable");
      return;
    }
    if (!(f & TCP_SYN)) {
      this.#drop("syn-sent-no-syn"); // Fifth: neither SYN nor RST
      return;
    }
    if (f & TCP_FIN) {
      this.#drop("syn-fin");
      return;
    }
    // Fourth: SYN. RCV.NXT = SEG.SEQ+1, IRS = SEG.SEQ.
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.#rcvAdv = this.rcvNxt;
    this.#negotiateFromSyn(seg, now);
    if (ackOk) {
      // RFC 3168 6.1.1: ECN-setup SYN-ACK has ECE without CWR.
      this.#ecnOk = this.#cfg.ecn && (f & (TCP_ECE | TCP_CWR)) === TCP_ECE;
      this.sndUna = seg.ack;
      // RFC 9293 3.10.7.3: our SYN acked -> ESTABLISHED, send <SEQ=SND.NXT><ACK=RCV.NXT><ACK>.
      this.state = TcpState.Established;
      this.sndWnd = seg.window; // RFC 7323 2.2: unscaled in a SYN-ACK
      this.#establishAfterSynAck(seg, now);
      this.#ackNow = true;
      this.#lastDataAt = now; // a request sent right away makes this an exchange (Linux lrcvtime)
      void ecn;
    } else {
      // RFC 9293 3.10.7.3: simultaneous open -> SYN-RECEIVED, send <SEQ=ISS><ACK=RCV.NXT><SYN,ACK>.
      this.#ecnOk = this.#ecnOk || false;
      this.state = TcpState.SynReceived;
      this.sndWnd = seg.window;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = this.iss;
      this.#sendSyn(now, true);
    }
  }

  #establishAfterSynAck(seg: TcpRepr, now: Instant): void {
    this.maxSndWnd = this.sndWnd;
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = seg.ack;
    this.rec.setNegotiated(this.#sackOk, this.#tsOk, this.#ecnOk);
    this.rec.setMss(this.mss);
    this.rec.setPeerWindow(this.sndWnd);
    this.rec.onAck(now, seg.ack, seg.sackBlocks, 0, this.#tsRtt(seg, now), false, false);
    this.#armKeepalive(now);
  }

  #tsRtt(seg: TcpRepr, now: Instant): Duration {
    if (!this.#tsOk || !seg.tsPresent || seg.tsEcr === 0) return -1;
    const d = seqDiff(this.#tsClock(now), seg.tsEcr);
    if (d < 0 || d > 3600_000) return -1;
    return d * MILLISECOND;
  }

  /** RFC 9293 3.10.7.4: SYN-RECEIVED and the synchronized states. */
  #processSynchronized(seg: TcpRepr, ecn: number, now: Instant): void {
    const f = seg.flags;
    // The payload as a range of the parsed segment: making a view of it would allocate.
    let plen = seg.payloadLength;
    const seq = seg.seq;
    let fin = (f & TCP_FIN) !== 0;
    const segLen = plen + ((f & TCP_SYN) ? 1 : 0) + (fin ? 1 : 0);

    // A retransmitted SYN in SYN-RECEIVED (our SYN-ACK was lost): send the SYN-ACK again.
    if (
      this.state === TcpState.SynReceived && (f & TCP_SYN) && !(f & (TCP_ACK | TCP_RST)) &&
      seq === this.irs
    ) {
      this.#sendSyn(now, true);
      return;
    }

    // RFC 7323 5.3 R1 (PAWS) runs before the sequence check. Timestamps and sequence numbers
    // are compared as int32 here and below (see seq.ts): a peer's TSval above 2^31 crossing a
    // comparison V8 did not inline was a heap number, ~1 B per segment in some runs (the
    // inlining differs from run to run) of a receiving NSM.
    if (this.#tsOk && seg.tsPresent && !(f & TCP_RST)) {
      if (seqLt(seg.tsVal | 0, this.#tsRecent | 0)) {
        if (now - this.#tsRecentAt > PAWS_IDLE_LIMIT) {
          this.#tsRecentAt = -Infinity; // RFC 7323 5.5: stale TS.Recent no longer protects
        } else {
          this.#drop("paws");
          this.#oowAck(plen > 0 || fin, now); // RFC 7323 5.3 R1: ACK, drop
          return;
        }
      }
    }

    // First: sequence number acceptability (four cases).
    const rcvWnd = Math.max(0, seqDiff(this.#rcvAdv, this.rcvNxt));
    let acceptable: boolean;
    if (segLen === 0) {
      acceptable = rcvWnd === 0 ? seq === this.rcvNxt : seqInRange(
        seq,
        this.rcvNxt,
        seqAdd(this.rcvNxt, rcvWnd),
      );
    } else if (rcvWnd === 0) {
      acceptable = false;
    } else {
      const last = seqAdd(seq, segLen - 1);
      const hi = seqAdd(this.rcvNxt, rcvWnd);
      acceptable = seqInRange(seq, this.rcvNxt, hi) || seqInRange(last, this.rcvNxt, hi);
    }
    if (!acceptable) {
      // RFC 9293 3.10.7.4: a zero window still admits valid ACKs, URGs and RSTs.
      if (rcvWnd === 0 && seq === this.rcvNxt && !(f & TCP_SYN)) {
        if (plen > 0 || fin) this.#drop("zero-window-data");
        plen = 0;
        fin = false;
        this.#ackNow = true;
      } else {
        if (f & TCP_RST) {
          this.#drop("rst-out-of-window");
          return;
        }
        // RFC 9293 3.10.7.4: in TIME-WAIT a retransmitted FIN restarts the 2 MSL timeout.
        if (this.state === TcpState.TimeWait && fin) this.#timeWaitAt = now + 2 * this.#cfg.msl;
        // An old duplicate: report it as D-SACK (RFC 2883 4.1.1) and re-ACK.
        if (this.#sackOk && plen > 0 && seqLe(seqAdd(seq, plen), this.rcvNxt)) {
          this.#reass.noteDuplicate(seq, seqAdd(seq, plen));
        }
        this.#drop("out-of-window");
        this.#oowAck(plen > 0 || fin, now);
        return;
      }
    }

    // Second: RST (RFC 5961 3.2: only an exact RCV.NXT match resets; else challenge ACK).
    if (f & TCP_RST) {
      if (seq !== this.rcvNxt) {
        this.#drop("rst-challenged");
        this.#challengeAck(now);
        return;
      }
      this.#onReset(now);
      return;
    }

    // Fourth (third is security): SYN in a synchronized state -> challenge ACK (RFC 5961 4.2).
    if (f & TCP_SYN) {
      if (this.state === TcpState.SynReceived && this.passive && !(f & TCP_ACK)) {
        // RFC 9293 3.10.7.4 fourth: passive SYN-RECEIVED goes back to LISTEN.
        this.#toClosed(now, true);
        return;
      }
      this.#drop("syn-challenged");
      this.#challengeAck(now);
      return;
    }

    // Fifth: the ACK field.
    if (!(f & TCP_ACK)) {
      this.#drop("no-ack");
      return;
    }
    const ack = seg.ack;
    if (this.state === TcpState.SynReceived) {
      // RFC 9293 3.10.7.4: SND.UNA < SEG.ACK =< SND.NXT -> ESTABLISHED, else reset.
      if (!(seqLt(this.sndUna, ack) && seqLe(ack, this.sndNxt))) {
        this.#drop("syn-received-bad-ack");
        this.#sendReset(ack, 0, false, now);
        return;
      }
      this.#establish(seg, now);
    }
    // RFC 5961 5.2: acceptable only within [SND.UNA - MAX.SND.WND, SND.NXT].
    if (seqGt(ack, this.sndNxt)) {
      this.#drop("ack-unsent"); // RFC 9293: ACK for unsent data -> send ACK, drop
      this.#challengeAck(now);
      return;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      this.#drop("ack-challenged");
      this.#challengeAck(now);
      return;
    }
    this.#processAck(seg, plen > 0 || fin, now);
    if ((this.state as TcpState) === TcpState.Closed) return;

    // RFC 7323 4.3: TS.Recent = SEG.TSval when SEG.SEQ =< Last.ACK.sent (and not older).
    if (
      this.#tsOk && seg.tsPresent && seqLe(seq | 0, this.#lastAckSent | 0) &&
      seqGe(seg.tsVal | 0, this.#tsRecent | 0)
    ) {
      this.#tsRecent = seg.tsVal;
      this.#tsRecentAt = now;
    }

    // Sixth: URG is not supported beyond ignoring the pointer (RFC 6093 discourages it).
    void TCP_URG;

    // Seventh: segment text.
    this.#keepaliveProbes = 0;
    this.#armKeepalive(now);
    this.#onEcnArrival(seg, ecn, plen > 0, now);
    if (plen > 0) {
      if (
        this.state === TcpState.Established || this.state === TcpState.FinWait1 ||
        this.state === TcpState.FinWait2
      ) {
        if (this.#rcvFinPending && seqGt(seqAdd(seq, plen), this.#rcvFinSeq)) {
          this.#drop("data-after-fin");
        } else {
          // seq crosses the call as int32, like onAck's ack: unsigned above 2^31 it would be
          // boxed into a heap number per segment.
          const r = this.#receiveData(seq | 0, seg.payloadBuffer, seg.payloadStart, plen, now);
          if (!r) fin = false;
        }
      } else {
        // RFC 9293 3.10.7.4 seventh: CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT ignore text.
        this.#drop("data-after-fin");
        fin = false;
      }
    }

    // Eighth: FIN.
    if (fin) {
      const finSeq = seqAdd(seq, plen);
      if (finSeq === this.rcvNxt) this.#consumeFin(now);
      else if (seqGt(finSeq, this.rcvNxt)) {
        this.#rcvFinPending = true;
        this.#rcvFinSeq = finSeq;
        this.#ackNow = true;
      } else if (this.state === TcpState.TimeWait) {
        // A retransmitted FIN in TIME-WAIT: acknowledge and restart 2 MSL (RFC 9293 3.10.7.4).
        this.#ackNow = true;
        this.#timeWaitAt = now + 2 * this.#cfg.msl;
      } else {
        this.#ackNow = true; // duplicate FIN: re-ACK
      }
    }
  }

  /** RFC 9293 3.10.7.4 fifth, for ESTABLISHED and later states. */
  #processAck(seg: TcpRepr, carriesData: boolean, now: Instant): void {
    const ack = seg.ack;
    const advanced = seqGt(ack, this.sndUna);
    const wnd = seg.window << this.#sndWscale;
    // Window update rule (RFC 9293 3.10.7.4): newer segment, or same segment with newer ACK.
    let windowChanged = false;
    if (
      seqLt(this.#sndWl1, seg.seq) ||
      (this.#sndWl1 === seg.seq && seqLe(this.#sndWl2, ack))
    ) {
      windowChanged = wnd !== this.sndWnd;
      this.sndWnd = wnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = ack;
      if (wnd > this.maxSndWnd) this.maxSndWnd = wnd;
    }
    if (advanced || (ack === this.sndUna && this.sndUna !== this.sndNxt)) {
      const tsRtt = advanced ? this.#tsRtt(seg, now) : -1;
      // Sequence numbers cross the engine's call as int32 (the engine reduces them mod 2^32):
      // an unsigned one above 2^31 would be boxed as a heap number per call.
      const r = this.rec.onAck(
        now,
        ack | 0,
        seg.sackBlocks,
        this.#sackOk ? seg.sackCount : 0,
        tsRtt,
        this.#ecnOk && (seg.flags & TCP_ECE) !== 0, // RFC 3168 6.1.2: only when negotiated
        !carriesData && !windowChanged,
      );
      void r;
      if (this.opts.sendBufferAuto && this.sndRing.capacity < this.#cfg.sendBufferMax) {
        this.#tuneSendBuffer();
      }
    }
    this.rec.setPeerWindow(this.sndWnd);
    if (advanced) {
      // Free acknowledged data from the send ring (the SYN and FIN occupy no ring bytes).
      const dataAcked = seqDiff(ack, this.#sndBufSeq);
      if (dataAcked > 0) {
        const n = Math.min(dataAcked, this.sndRing.length);
        this.sndRing.discard(n);
        this.#sndBufSeq = seqAdd(this.#sndBufSeq, n);
      }
      this.sndUna = ack;
      this.#persistBackoff = 0;
    }
    if (this.sndWnd > 0) this.#persistAt = NEVER;
    const finAcked = this.#finSent && seqGt(ack, this.#finSeq);
    switch (this.state) {
      case TcpState.FinWait1:
        if (finAcked) {
          // RFC 9293 3.10.7.4: our FIN acked in FIN-WAIT-1 -> FIN-WAIT-2.
          this.state = TcpState.FinWait2;
          if (this.orphaned) this.#finWait2At = now + this.#cfg.finWait2Timeout;
        }
        break;
      case TcpState.Closing:
        if (finAcked) this.#enterTimeWait(now); // RFC 9293 3.10.7.4: CLOSING -> TIME-WAIT
        break;
      case TcpState.LastAck:
        if (finAcked) this.#toClosed(now, false); // RFC 9293 3.10.7.4: LAST-ACK -> CLOSED
        break;
      default:
        break;
    }
  }

  /**
   * Stores the payload `buf[start, start + len)` at `seq` (already acceptable); returns false
   * when nothing was kept. Works on the range so no view of the payload is made.
   */
  #receiveData(seq: Seq, buf: Uint8Array, start: number, len: number, now: Instant): boolean {
    // `seq` arrives as int32 (see the caller) and RCV.NXT is read as one: the arithmetic is
    // modulo 2^32 either way, and an unsigned value above 2^31 is a heap number wherever it
    // crosses a call that is not inlined: 16.8 B per segment while RCV.NXT was in the upper
    // half of the sequence space, 0.9 B below (NSM receiving, sampled in 0.5 s windows).
    const rcvNxt = this.rcvNxt | 0;
    // Trim bytes before RCV.NXT (duplicates: D-SACK them, RFC 2883 4.1.1).
    const before = seqDiff(rcvNxt, seq);
    if (before > 0) {
      if (this.#sackOk) this.#reass.noteDuplicate(seq >>> 0, this.rcvNxt);
      const cut = Math.min(before, len);
      start += cut;
      len -= cut;
      seq = rcvNxt;
      this.#ackNow = true;
    }
    // Trim bytes past the right edge of the window we offered.
    const room = seqDiff(this.#rcvAdv | 0, seq);
    if (len > room) len = Math.max(0, room);
    if (len === 0) return false;
    const offset = seqDiff(seq, rcvNxt);
    const stored = this.rcvRing.writeRangeAt(offset, buf, start, start + len);
    if (stored < len) {
      this.#drop("no-buffer");
      if (stored === 0) return false;
      len = stored;
    }
    if (offset === 0) {
      this.rcvRing.commit(len);
      let next = seqAdd32(rcvNxt, len);
      const hadHoles = !this.#reass.empty;
      if (hadHoles) {
        const after = this.#reass.advance(next >>> 0) | 0;
        const extra = seqDiff(after, next);
        if (extra > 0) this.rcvRing.commit(extra);
        next = after;
        this.#ackNow = true; // RFC 5681 4.2: ACK at once when a hole is filled
      }
      const advancedBy = seqDiff(next, rcvNxt);
      this.rcvNxt = next >>> 0;
      if (
        this.#cfg.receiveBufferMax > 0 &&
        (this.#rcvRttAt < 0 || seqDiff(next, this.#rcvRttSeq) >= 0)
      ) {
        this.#measureReceiveRtt(next, now);
      }
      this.bytesReceived += advancedBy;
      this.#unackedBytes += advancedBy;
      this.#lastDataAt = now;
      if (this.#quickAcks > 0 && !this.#interactive) {
        this.#quickAcks--;
        this.#ackNow = true;
      } else if (this.#unackedBytes >= 2 * this.mss) {
        // RFC 9293 3.8.6.3 / RFC 5681 4.2: every second full segment (at the end of the
        // receive batch with ackCoalescing).
        if (this.#coalesceAcks) this.#ackDue = true;
        else this.#ackNow = true;
      } else if (this.#delayedAckAt === NEVER) {
        this.#delayedAckAt = now + this.#cfg.delayedAckTimeout;
      }
      if (this.#rcvFinPending && this.#rcvFinSeq === this.rcvNxt) this.#consumeFin(now);
    } else {
      // The buffer bounds the out-of-order store (the bytes are in the ring already); the range
      // table may grow to one range per smallest full segment that fits in it.
      this.#reass.maxRanges = Math.ceil(this.rcvRing.capacity / Math.min(this.mss, this.#ourMss));
      const r = this.#reass.add(seq >>> 0, seqAdd(seq, len));
      if (r === AddResult.Full) {
        this.#drop("ooo-full");
        this.#ackNow = true;
        return false;
      }
      // RFC 5681 4.2: an out-of-order segment is acknowledged at once (with SACK blocks).
      this.#ackNow = true;
      this.#quickAcks = Math.max(this.#quickAcks, 1);
    }
    return true;
  }

  /** The peer's FIN at RCV.NXT (RFC 9293 3.10.7.4 eighth). */
  #consumeFin(now: Instant): void {
    this.#rcvFinPending = false;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.rcvEof = true;
    this.#ackNow = true;
    switch (this.state) {
      case TcpState.SynReceived:
      case TcpState.Established:
        this.state = TcpState.CloseWait; // RFC 9293 3.10.7.4 eighth: -> CLOSE-WAIT
        break;
      case TcpState.FinWait1:
        // RFC 9293 3.10.7.4 eighth: FIN-WAIT-1 -> TIME-WAIT if our FIN is acked, else CLOSING.
        if (this.#finSent && seqGt(this.sndUna, this.#finSeq)) this.#enterTimeWait(now);
        else this.state = TcpState.Closing;
        break;
      case TcpState.FinWait2:
        this.#enterTimeWait(now); // RFC 9293 3.10.7.4 eighth: FIN-WAIT-2 -> TIME-WAIT
        break;
      default:
        break;
    }
  }

  #enterTimeWait(now: Instant): void {
    this.state = TcpState.TimeWait;
    // Nothing is sent under congestion control any more (as Linux frees the full socket and
    // its CA state at TIME-WAIT): release the algorithm now, not 2 MSL later.
    this.rec.dispose();
    this.#lingerAt = NEVER;
    this.#timeWaitAt = now + 2 * this.#cfg.msl;
    this.#finWait2At = NEVER;
    this.#keepaliveAt = NEVER;
    this.#persistAt = NEVER;
    this.#delayedAckAt = NEVER;
    // Storage back to the pool (ring.ts) now, not 2 MSL later: a TIME-WAIT connection sends no
    // data, and reads only what is already queued.
    this.trim();
  }

  /** An acceptable RST (RFC 9293 3.10.7.4 second). */
  #onReset(now: Instant): void {
    switch (this.state) {
      case TcpState.SynReceived:
        if (this.passive) {
          this.#toClosed(now, true); // back to LISTEN: the listener forgets it
        } else {
          this.#fail(new ConnectionRefused(this.#where()), now);
        }
        return;
      case TcpState.Established:
      case TcpState.FinWait1:
      case TcpState.FinWait2:
      case TcpState.CloseWait:
        this.#fail(new ConnectionReset(this.#where()), now);
        return;
      default:
        this.#toClosed(now, false); // CLOSING, LAST-ACK, TIME-WAIT -> CLOSED
    }
  }

  /** RFC 3168 6.1.3 (classic echo) and RFC 8257 3.2 (precise echo for DCTCP). */
  #onEcnArrival(seg: TcpRepr, ecn: number, hasData: boolean, now: Instant): void {
    if (!this.#ecnOk) return;
    const ce = ecn === ECN_CE;
    if (this.rec.cc.wantsAccurateEce) {
      if (ce !== this.#ceState) {
        // A CE change flushes the pending delayed ACK with the old ECE value first.
        if (this.#unackedBytes > 0) this.#sendAck(now);
        this.#ceState = ce;
        this.#eceEcho = ce;
        if (hasData) this.#ackNow = true;
      }
      return;
    }
    if (seg.flags & TCP_CWR) this.#eceEcho = false; // RFC 3168 6.1.3: CWR stops the echo
    if (ce && !this.#eceEcho) {
      this.#eceEcho = true; // RFC 3168 6.1.3: echo ECE on every ACK until CWR arrives
      this.#ackNow = true;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Application calls

  /** Queues up to `data.length` bytes; returns how many were taken (0 when the buffer is full). */
  send(data: Uint8Array, now: Instant): number {
    if (this.#finQueued) return 0;
    const n = this.sndRing.write(data);
    if (n > 0 && this.synchronized) this.#output(now);
    this.#host.changed(this);
    return n;
  }

  /**
   * Reads up to `max` (default `dst.length`) in-order bytes into `dst`; opens the window when
   * it grew enough.
   */
  recv(dst: Uint8Array, now: Instant, max: number = dst.length): number {
    const n = this.rcvRing.readAligned(dst, max);
    // Nothing read: nothing changed (a reader polls until WOULD_BLOCK; do not re-file then).
    if (n === 0) return 0;
    // Drained, with nothing stored out of order: the next segment starts on the unit grid.
    if (this.rcvRing.length === 0 && this.#reass.empty) this.rcvRing.alignEmpty();
    if (this.opts.receiveBufferAuto && this.rcvRing.capacity < this.#cfg.receiveBufferMax) {
      this.#tuneReceiveBuffer(n, now);
    }
    if (this.state !== TcpState.Closed && this.synchronized) {
      // RFC 9293 3.8.6.2.2: announce the window once it grew by min(RCV.BUFF/2, MSS);
      // "half-window" (Linux tcp_cleanup_rbuf) also waits until the window open at the sender
      // has fallen to half of the most we offer and would at least double.
      const cur = Math.max(0, seqDiff(this.#rcvAdv, this.rcvNxt));
      const could = this.#windowCandidate();
      if (
        !this.rcvEof && could - cur >= Math.min(this.rcvRing.capacity / 2, this.mss) &&
        (!this.#halfWindowUpdates ||
          (2 * cur <= Math.min(this.rcvRing.capacity, 0xffff * 2 ** this.#rcvWscale) &&
            could >= 2 * cur))
      ) {
        this.#sendAck(now);
      }
    }
    this.#host.changed(this);
    return n;
  }

  /**
   * One sample of the receiver's RTT estimate (`#rcvRtt`) once RCV.NXT (`next`, int32 bits)
   * passed the edge of the last measurement; starts the next one at the current right edge.
   */
  #measureReceiveRtt(next: number, now: Instant): void {
    if (this.#rcvRttAt >= 0) {
      const m = now - this.#rcvRttAt;
      if (m > 0 && (this.#rcvRtt === 0 || m < this.#rcvRtt)) this.#rcvRtt = m;
    }
    const edge = seqDiff(this.#rcvAdv | 0, next);
    this.#rcvRttSeq = seqAdd32(next, edge > this.mss ? edge : this.mss);
    this.#rcvRttAt = now;
  }

  /**
   * Receive-buffer auto-tuning (Linux's tcp_rcv_space_adjust): once per receiver RTT, the
   * buffer grows to twice what the application read in it, plus 16 segments, up to
   * `TcpConfig.receiveBufferMax`. A sender held by the window delivers about a window per
   * round trip, so the window doubles each round trip until the path or the reader is the
   * limit. The ring's storage still grows only with what is queued.
   */
  #tuneReceiveBuffer(n: number, now: Instant): void {
    this.#tuneRead += n;
    const rtt = this.#rcvRtt > 0 ? this.#rcvRtt : this.rec.srtt;
    if (rtt <= 0 || now - this.#tuneAt < rtt) return;
    const want = 2 * this.#tuneRead + 16 * this.mss;
    this.#tuneRead = 0;
    this.#tuneAt = now;
    const max = this.#cfg.receiveBufferMax;
    const extra = this.#granted((want < max ? want : max) - this.rcvRing.capacity);
    if (extra > 0) this.rcvRing.setCapacity(this.rcvRing.capacity + extra);
  }

  /**
   * Send-buffer auto-tuning (Linux's tcp_sndbuf_expand): the buffer holds twice the
   * congestion window, up to `TcpConfig.sendBufferMax`, so a window that grows is never held
   * back by the buffer that feeds it.
   */
  #tuneSendBuffer(): void {
    const want = 2 * this.rec.cc.cwnd;
    const max = this.#cfg.sendBufferMax;
    const extra = this.#granted((want < max ? want : max) - this.sndRing.capacity);
    if (extra > 0) this.sndRing.setCapacity(this.sndRing.capacity + extra);
  }

  /** How much of `bytes` of growth the host's budget grants (all of it without one). */
  #granted(bytes: number): number {
    if (bytes <= 0) return 0;
    const host = this.#host;
    const g = host.growBuffers === undefined ? bytes : host.growBuffers(bytes);
    this.#grown += g;
    return g;
  }

  /**
   * Gives up the auto-tuning growth granted so far (the stack returns it to its budget when the
   * connection reaches TIME-WAIT or CLOSED); returns it. The buffers keep their capacities.
   */
  releaseBufferGrowth(): number {
    const g = this.#grown;
    this.#grown = 0;
    return g;
  }

  /** Queued bytes, as a view on the next in-order bytes without consuming (for peeks). */
  copySendData(dst: Uint8Array, dstOffset: number, offset: number, length: number): void {
    this.sndRing.copySegment(offset, dst, dstOffset, length);
  }

  /** shutdown(SHUT_WR) (RFC 9293 3.10.4 CLOSE for the sending half). */
  shutdownWrite(now: Instant): void {
    switch (this.state) {
      case TcpState.SynSent:
        this.#toClosed(now, false); // RFC 9293 3.10.4: CLOSE in SYN-SENT deletes the TCB
        return;
      case TcpState.SynReceived:
      case TcpState.Established:
        // RFC 9293 3.10.4: queue a FIN after pending data; -> FIN-WAIT-1.
        this.#finQueued = true;
        if (this.state === TcpState.Established) this.state = TcpState.FinWait1;
        break;
      case TcpState.CloseWait:
        this.#finQueued = true;
        this.state = TcpState.LastAck; // RFC 9293 3.10.4: CLOSE-WAIT -> LAST-ACK
        break;
      default:
        return;
    }
    if (this.synchronized) this.#output(now);
    this.#host.changed(this);
  }

  /**
   * close(): no more reads or writes. Unread data or LINGER 0 abort with RST (RFC 2525 2.17);
   * otherwise the FIN goes out and the connection finishes on its own (orphaned). With LINGER
   * > 0 seconds, a connection whose data and FIN are not acknowledged by then is aborted (RST),
   * bounding how long an orphan may hold buffers.
   */
  close(now: Instant): void {
    this.orphaned = true;
    if (this.state === TcpState.Closed || this.state === TcpState.Listen) {
      this.#toClosed(now, false);
      return;
    }
    if (this.rcvRing.length > 0 || this.opts.linger === 0) {
      this.abort(now);
      return;
    }
    this.shutdownWrite(now);
    if (this.state === TcpState.FinWait2) this.#finWait2At = now + this.#cfg.finWait2Timeout;
    if (this.opts.linger > 0 && (this.state as TcpState) !== TcpState.Closed) {
      this.#lingerAt = now + this.opts.linger * SECOND;
    }
  }

  /** A smaller path MTU was learned (RFC 1191 / RFC 8201): shrink the send MSS to fit. */
  pathMtuChanged(mtu: number): void {
    const mss = mtu - (this.remoteAddr.version === 4 ? 40 : 60) - (this.#tsOk ? 12 : 0);
    if (mss >= 64 && mss < this.mss) {
      this.mss = mss;
      this.rec.setMss(mss);
    }
  }

  /**
   * An ICMP port/protocol unreachable for this connection. In SYN-SENT it ends the attempt
   * with ConnectionRefused (RFC 1122 4.2.3.9 hard error); in other states it is a soft error
   * and ignored (RFC 5461 4.1), since retransmissions may still get through.
   */
  icmpUnreachable(now: Instant): void {
    if (this.state !== TcpState.SynSent) return;
    this.#fail(new ConnectionRefused(this.#where()), now);
    this.#host.changed(this);
  }

  /** ABORT (RFC 9293 3.10.5): RST in the synchronized states, then CLOSED. */
  abort(now: Instant): void {
    if (
      this.state === TcpState.SynReceived || this.state === TcpState.Established ||
      this.state === TcpState.FinWait1 || this.state === TcpState.FinWait2 ||
      this.state === TcpState.CloseWait
    ) {
      this.#sendReset(this.sndNxt, 0, false, now);
    }
    this.#toClosed(now, false);
  }

  // ------------------------------------------------------------------------------------------
  // Timers

  /** The next instant `poll()` has work, or NEVER. */
  pollAt(): Instant {
    this.pollAtInto(TIME_OUT, 0);
    return TIME_OUT[0]!;
  }

  /**
   * `out[i] = pollAt()`: the socket layer re-files the connection after every segment, and a
   * returned Instant above 2^31 ns is a heap number when the call is not inlined.
   */
  pollAtInto(out: Float64Array, i: number): void {
    if (this.state === TcpState.Closed) {
      out[i] = NEVER;
      return;
    }
    let t = this.#delayedAckAt;
    if (this.#persistAt < t) t = this.#persistAt;
    if (this.#keepaliveAt < t) t = this.#keepaliveAt;
    if (this.#timeWaitAt < t) t = this.#timeWaitAt;
    if (this.#finWait2At < t) t = this.#finWait2At;
    if (this.#lingerAt < t) t = this.#lingerAt;
    if (this.#pacingAt < t) t = this.#pacingAt;
    if (this.#engineStarted && this.state !== TcpState.TimeWait) {
      this.rec.pollAtInto(out, i);
      if (t < out[i]!) out[i] = t;
    } else {
      out[i] = t;
    }
  }

  /** Runs due timers and sends what is due. */
  poll(now: Instant): void {
    if (this.state === TcpState.Closed) return;
    if (this.#timeWaitAt <= now) {
      this.#toClosed(now, false); // RFC 9293 3.10.8: TIME-WAIT timeout -> CLOSED
      this.#host.changed(this);
      return;
    }
    if (this.#lingerAt <= now) {
      this.#lingerAt = NEVER;
      const finAcked = this.#finSent && seqGt(this.sndUna, this.#finSeq);
      if (!finAcked) {
        this.abort(now); // SO_LINGER ran out with data or FIN unacknowledged
        this.#host.changed(this);
        return;
      }
    }
    if (this.#finWait2At <= now) {
      this.#finWait2At = NEVER;
      if (this.state === TcpState.FinWait2) {
        this.#toClosed(now, false);
        this.#host.changed(this);
        return;
      }
    }
    if (this.#engineStarted) {
      for (let i = 0; i < 4 && this.rec.pollAt() <= now; i++) {
        const kind = this.rec.onTimer(now, this.#unsentBytes() > 0 && this.#windowRoom() > 0);
        if (kind === "none") break;
        if (kind === "rto") {
          const backoff = this.rec.info(INFO).backoff;
          const limit = this.synchronized
            ? this.#cfg.maxRetries
            : (this.passive ? this.#cfg.synAckRetries : this.#cfg.synRetries);
          // RFC 9293 3.8.3 (R2) / RFC 1122 4.2.3.5: give up after too many retransmissions.
          if (backoff > limit) {
            if (this.state === TcpState.SynReceived && this.passive) {
              this.#toClosed(now, true);
            } else {
              this.#fail(new TimedOut(this.#where(), "retransmissions unanswered"), now);
            }
            this.#host.changed(this);
            return;
          }
        }
      }
    }
    if (this.#persistAt <= now) this.#onPersist(now);
    if (this.#keepaliveAt <= now) {
      if (this.#onKeepalive(now)) return;
    }
    if (this.#pacingAt <= now) this.#pacingAt = NEVER;
    this.#output(now);
    if (this.#delayedAckAt <= now) {
      // Nothing of ours carried the ACK within the delay: not an exchange after all.
      this.#interactive = false;
      this.#sendAck(now);
    } else if (this.#ackNow || this.#ackDue) this.#sendAck(now);
    this.#host.changed(this);
  }

  /** Zero-window probe (RFC 9293 3.8.6.1) with exponential backoff. */
  #onPersist(now: Instant): void {
    this.#persistAt = NEVER;
    if (!this.synchronized || this.#unsentBytes() === 0) return;
    if (this.#windowRoom() > 0) {
      // RFC 9293 3.8.6.2.1: the SWS override timeout: send what the window allows now.
      this.#swsOverride = true;
      return;
    }
    // Probe with SEG.SEQ = SND.UNA - 1 and no data: the peer must answer with its window.
    this.#sendSegment(TCP_ACK, seqAdd(this.sndUna, -1), 0, 0, now, false);
    this.#persistBackoff++;
    this.#armPersist(now);
  }

  #armPersist(now: Instant): void {
    if (this.#persistAt !== NEVER) return;
    const base = Math.max(this.rec.rto, this.#cfg.persistMin);
    const d = Math.min(base * 2 ** Math.min(this.#persistBackoff, 20), this.#cfg.persistMax);
    this.#persistAt = now + d;
  }

  /** Returns true when the connection was dropped. */
  #onKeepalive(now: Instant): boolean {
    this.#keepaliveAt = NEVER;
    if (!this.opts.keepAlive) return false;
    if (this.state !== TcpState.Established && this.state !== TcpState.CloseWait) return false;
    if (this.sndNxt !== this.sndUna || this.#unsentBytes() > 0) {
      this.#armKeepalive(now); // data in flight: retransmissions watch the peer instead
      return false;
    }
    if (this.#keepaliveProbes >= this.opts.keepCount) {
      this.#fail(new TimedOut(this.#where(), "keepalive probes unanswered"), now);
      this.#host.changed(this);
      return true;
    }
    // RFC 9293 3.8.4 / RFC 1122 4.2.3.6: SEG.SEQ = SND.NXT - 1, no data, elicits an ACK.
    this.#sendSegment(TCP_ACK, seqAdd(this.sndNxt, -1), 0, 0, now, false);
    this.#keepaliveProbes++;
    this.#keepaliveAt = now + this.opts.keepInterval;
    return false;
  }

  #armKeepalive(now: Instant): void {
    this.#keepaliveAt = this.opts.keepAlive &&
        (this.state === TcpState.Established || this.state === TcpState.CloseWait)
      ? now + (this.#keepaliveProbes > 0 ? this.opts.keepInterval : this.opts.keepIdle)
      : NEVER;
  }

  /**
   * TCP_CONGESTION on a live connection: the engine swaps the algorithm, continuing from the
   * current window (`RecoveryEngine.setCc`), and the send loop runs with the new window.
   * After CLOSED the option is only recorded (the engine was disposed).
   */
  congestionControlChanged(name: string, now: Instant): void {
    if (this.state === TcpState.Closed) return;
    this.rec.setCc(name, now);
    if (this.synchronized) this.#output(now);
    this.#host.changed(this);
  }

  /** Re-arms keepalive after the option changed. */
  keepaliveChanged(now: Instant): void {
    this.#keepaliveProbes = 0;
    this.#armKeepalive(now);
    this.#host.changed(this);
  }

  // ------------------------------------------------------------------------------------------
  // Output

  #unsentBytes(): number {
    return this.sndRing.length - seqDiff(this.sndNxt, this.#sndBufSeq) +
      (this.#finPendingSend() ? 1 : 0);
  }

  #finPendingSend(): boolean {
    return this.#finQueued && !this.#finSent;
  }

  #windowRoom(): number {
    return seqDiff(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
  }

  /** The transmit loop of /work/notes/recovery_api.md: retransmissions first, then new data. */
  #output(now: Instant): void {
    if (
      !this.synchronized && this.state !== TcpState.SynReceived && this.state !== TcpState.SynSent
    ) {
      return;
    }
    for (let guard = 0;; guard++) {
      if (guard === OUTPUT_BUDGET) {
        this.#pacingAt = now; // bounded work per call: continue on the next poll
        return;
      }
      // Compared inside the engine, the time copied through a Float64Array: a returned
      // Instant is a heap number when the call is not inlined.
      if (this.rec.pacedAfter(now)) {
        if (this.#unsentBytes() > 0 || this.rec.nextRetransmit() !== null) {
          this.rec.nextSendTimeInto(TIME_OUT, 0);
          this.#pacingAt = TIME_OUT[0]!;
        }
        return;
      }
      const rt = this.rec.nextRetransmit();
      if (rt !== null) {
        if (!this.rec.canSend(rt.len, true)) return;
        const seq = rt.seq;
        const len = rt.len;
        if (!this.#retransmit(seq, len, now)) {
          this.#pacingAt = now + RETRY_DELAY; // the IP layer had no room: try again shortly
          return;
        }
        this.rec.onSend(seq | 0, len, now, true);
        this.#host.counters.retransmits++;
        continue;
      }
      if (!this.synchronized || this.state === TcpState.TimeWait) return;
      const dataUnsent = this.sndRing.length - seqDiff(this.sndNxt, this.#sndBufSeq);
      const finWanted = this.#finPendingSend();
      if (dataUnsent <= 0 && !finWanted) {
        this.rec.onAppLimited();
        return;
      }
      const quota = this.rec.sendQuota();
      let len = Math.min(this.mss, dataUnsent, quota);
      if (len < 0) len = 0;
      // After a short segment that emptied the queue (the tail of a write), the next full one
      // ends at an MSS boundary of the send ring's storage: segments re-align with the
      // ring's cached source views (`ByteRing.copySegment`), which a bulk sender fed in pieces
      // (an NSM serving a guest) otherwise missed on every segment, one view each.
      let aligning = false;
      if (len === this.mss && this.#realign) {
        this.#realign = false;
        const b = this.sndRing.toUnitBoundary(seqDiff(this.sndNxt, this.#sndBufSeq));
        if (b < len) {
          len = b;
          aligning = true;
        }
      }
      const fin = finWanted && len === dataUnsent && quota > len;
      if (len === 0 && !fin) {
        // Blocked by the peer's window with nothing in flight: start persisting.
        if (this.#windowRoom() <= 0 && this.sndNxt === this.sndUna) this.#armPersist(now);
        return;
      }
      if (len < this.mss && !fin && !this.#swsOverride && !aligning) {
        // Sender SWS avoidance (RFC 9293 3.8.6.2.1) and Nagle (RFC 896, RFC 9293 3.7.4).
        const allQueuedFits = len === dataUnsent;
        const halfWindow = len >= this.maxSndWnd / 2;
        if (!allQueuedFits && !halfWindow) {
          if (this.sndNxt === this.sndUna) this.#armPersist(now); // override timer
          return;
        }
        if (allQueuedFits && !this.opts.noDelay && this.sndNxt !== this.sndUna && !halfWindow) {
          return;
        }
      }
      this.#swsOverride = false;
      const seq = this.sndNxt;
      let flags = TCP_ACK | (fin ? TCP_FIN : 0);
      if (len > 0 && len === dataUnsent) flags |= TCP_PSH;
      if (len > 0 && this.rec.takeCwr()) flags |= TCP_CWR; // RFC 3168 6.1.2
      const off = seqDiff(seq, this.#sndBufSeq);
      if (!this.#sendSegment(flags, seq | 0, off, len, now, len > 0 && this.rec.sendEct)) {
        this.#pacingAt = now + RETRY_DELAY;
        return;
      }
      if (len < this.mss && len === dataUnsent) this.#realign = true;
      const seqLen = len + (fin ? 1 : 0);
      if (fin) {
        this.#finSent = true;
        this.#finSeq = seqAdd(seq, len);
      }
      this.sndNxt = seqAdd(seq, seqLen);
      this.bytesSent += len;
      this.rec.onSend(seq | 0, seqLen, now, false);
    }
  }

  /** Re-sends `[seq, seq+len)`, which may be the SYN or end with the FIN. */
  #retransmit(seq: Seq, len: number, now: Instant): boolean {
    if (
      seq === this.iss && (this.state === TcpState.SynSent || this.state === TcpState.SynReceived)
    ) {
      return this.#sendSyn(now, this.state === TcpState.SynReceived);
    }
    let dataLen = len;
    let flags = TCP_ACK;
    if (this.#finSent && seqLe(seq, this.#finSeq) && seqGt(seqAdd(seq, len), this.#finSeq)) {
      flags |= TCP_FIN;
      dataLen = seqDiff(this.#finSeq, seq);
    }
    const off = seqDiff(seq, this.#sndBufSeq);
    if (off < 0 || off + dataLen > this.sndRing.length) return true; // already freed: nothing to do
    if (dataLen > 0) flags |= TCP_PSH;
    const ok = this.#sendSegment(flags, seq | 0, off, dataLen, now, false);
    if (ok) this.bytesSent += dataLen;
    return ok;
  }

  /** The window we could offer now, before SWS rules. */
  #windowCandidate(): number {
    const free = this.rcvRing.free;
    const max = 0xffff << this.#rcvWscale;
    return Math.min(free, max);
  }

  /** The window to put in an outgoing segment (bytes, unscaled), per RFC 9293 3.8.6.2.2. */
  #windowToAdvertise(): number {
    const cur = Math.max(0, seqDiff(this.#rcvAdv, this.rcvNxt));
    let win = this.#windowCandidate();
    const step = Math.min(this.rcvRing.capacity / 2, this.mss);
    if (win < cur) win = cur; // never shrink the window (RFC 9293 3.8.6)
    else if (win - cur < step && cur > 0) win = cur; // receiver SWS avoidance
    else if (win < step && cur === 0) win = 0; // keep a zero window closed until it is worth it
    // Scaled windows: round down to the granularity unless that would shrink the window.
    const g = 1 << this.#rcvWscale;
    const down = Math.floor(win / g) * g;
    if (down >= cur) return this.#alignWindowEdge(down, cur, g);
    // Rounding the open window up promises up to g - 1 bytes the ring may not have, and
    // repeated on every ACK while the reader lags, the edge crept past the buffer (RFC 7323
    // Appendix F; "no-buffer" drops with the shift of a 4 MiB buffer). Round up only into free
    // space; else round down: the window shrinks by less than a granule, and `#rcvAdv` keeps
    // accepting up to the edge already offered (which the ring has room for).
    const up = Math.ceil(cur / g) * g;
    return up <= this.rcvRing.free ? up : down;
  }

  /**
   * `win` (a multiple of the scale granularity `g`, at least `cur`) less at most two receive
   * units so that the window's right edge falls on a unit boundary of the receive ring, when
   * such a value exists. A sender filling the window then ends on a whole segment instead of
   * sending a short one to the edge, which would leave every later segment off the grid the
   * ring reads whole units from (`ByteRing.readAligned`). Otherwise `win`.
   */
  #alignWindowEdge(win: number, cur: number, g: number): number {
    const unit = this.rcvRing.unit;
    if (unit === 0 || win <= 2 * unit) return win;
    // Bytes from RCV.NXT to the next unit boundary: the edge is on one when win = t (mod unit).
    const next = this.rcvRing.toUnitBoundary(this.rcvRing.length);
    if (next === Number.POSITIVE_INFINITY) return win; // no storage yet
    const t = next % unit;
    let c = win - ((win - t) % unit + unit) % unit;
    const floor = Math.max(cur, win - 2 * unit);
    for (; c >= floor; c -= unit) if (c % g === 0) return c;
    return win;
  }

  /**
   * Our TSval at `now`, as int32 (the same 32 bits as the u32 on the wire): a value above 2^31
   * returned from a call that is not inlined is a heap number, one per segment.
   */
  #tsClock(now: Instant): number {
    return (Math.floor(now / MILLISECOND) + this.#tsOffset) | 0;
  }

  /** Emits a SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) with our options (RFC 9293 3.7.1). */
  #sendSyn(now: Instant, withAck: boolean): boolean {
    const r = this.#host.txRepr;
    r.reset();
    r.srcPort = this.localPort;
    r.dstPort = this.remotePort;
    r.seq = this.iss;
    r.flags = TCP_SYN;
    if (withAck) {
      r.flags |= TCP_ACK;
      r.ack = this.rcvNxt;
      if (this.#ecnOk) r.flags |= TCP_ECE; // RFC 3168 6.1.1
    } else if (this.#cfg.ecn) {
      r.flags |= TCP_ECE | TCP_CWR; // RFC 3168 6.1.1: ECN-setup SYN
    }
    r.window = Math.min(this.rcvRing.capacity, 0xffff);
    r.mss = this.#ourMss;
    // RFC 7323 2.2: a SYN offers scaling; a SYN-ACK carries it only when the SYN did.
    if (withAck ? this.#wscaleOk : this.#cfg.windowScaling) r.windowScale = this.#rcvWscale;
    if (this.#cfg.sack && (!withAck || this.#sackOk)) r.sackPermitted = true;
    if (this.#cfg.timestamps && (!withAck || this.#tsOk)) {
      r.tsPresent = true;
      r.tsVal = this.#tsClock(now);
      r.tsEcr = withAck ? this.#tsRecent : 0;
    }
    const ok = this.#host.transmit(this, r, 0, 0, 0);
    if (ok && withAck) {
      this.#lastAckSent = this.rcvNxt;
      this.#rcvAdv = seqAdd(this.rcvNxt, r.window);
    }
    return ok;
  }

  /**
   * The end of a receive batch (ACK coalescing): sends the ACK deferred by `deferAck` unless
   * a segment sent meanwhile carried it. The host re-files the TCB afterwards.
   */
  flushDeferredAck(now: Instant): void {
    this.ackDeferred = false;
    if (this.#ackDue && this.state !== TcpState.Closed) this.#sendAck(now);
  }

  /** Pure ACK now (cancels the delayed ACK). */
  #sendAck(now: Instant): void {
    if (!this.synchronized && this.state !== TcpState.SynReceived) {
      this.#ackNow = false;
      this.#ackDue = false;
      return;
    }
    this.#sendSegment(TCP_ACK, this.sndNxt | 0, 0, 0, now, false);
  }

  /**
   * The ACK owed to an unacceptable segment. Segments without data get at most one per
   * 500 ms per connection (as Linux's tcp_invalid_ratelimit), so a stream of stale or forged
   * pure ACKs cannot turn us into an ACK reflector or start an ACK war.
   */
  #oowAck(hasData: boolean, now: Instant): void {
    if (!hasData) {
      if (now - this.#lastOowAck < OOW_ACK_INTERVAL) {
        this.#drop("oow-ack-rate-limited");
        return;
      }
      this.#lastOowAck = now;
    }
    this.#ackNow = true;
  }

  /** RFC 5961 7: rate-limited challenge ACK. */
  #challengeAck(now: Instant): void {
    if (!this.#host.allowChallengeAck(now)) {
      this.#drop("challenge-ack-rate-limited");
      return;
    }
    this.#host.counters.challengeAcks++;
    this.#sendSegment(TCP_ACK, this.sndNxt | 0, 0, 0, now, false);
  }

  /** Builds and emits one non-SYN segment; ACK-bearing ones carry window, TS and SACK. */
  #sendSegment(
    flags: number,
    seq: Seq,
    dataOffset: number,
    dataLength: number,
    now: Instant,
    ect: boolean,
  ): boolean {
    // Every field `emit` and `headerLength` read is set here instead of `TcpRepr.reset()`, which
    // also zeroes all eight SACK words and re-points the payload per segment (~90 ns): emit
    // reads only the first `sackCount` blocks, and the transmit repr never carries a payload.
    const r = this.#host.txRepr;
    r.srcPort = this.localPort;
    r.dstPort = this.remotePort;
    r.seq = seq >>> 0; // callers may pass it as int32 (no heap number for the call)
    r.urgent = 0;
    r.mss = 0;
    r.windowScale = -1;
    r.sackPermitted = false;
    let win = 0;
    if (flags & TCP_ACK) {
      r.ack = this.rcvNxt;
      win = this.#windowToAdvertise();
      r.window = Math.min(0xffff, win >>> this.#rcvWscale);
      if (this.#eceEcho) flags |= TCP_ECE;
      if (this.#tsOk) {
        r.tsPresent = true;
        r.tsVal = this.#tsClock(now);
        r.tsEcr = this.#tsRecent;
      } else {
        r.tsPresent = false;
        r.tsVal = r.tsEcr = 0;
      }
      r.sackCount = this.#sackOk
        ? this.#reass.fillSack(r.sackBlocks, this.#tsOk ? 3 : 4, this.rcvNxt | 0)
        : 0;
    } else {
      r.ack = r.window = 0;
      r.tsPresent = false;
      r.tsVal = r.tsEcr = r.sackCount = 0;
    }
    r.flags = flags;
    const ok = this.#host.transmit(this, r, dataOffset, dataLength, ect ? ECN_ECT0 : 0);
    if (!ok) return false;
    // Data sent soon after data arrived: a request/response exchange (Linux tcp_event_data_sent).
    if (dataLength > 0 && now - this.#lastDataAt < this.#cfg.delayedAckTimeout) {
      this.#interactive = true;
    }
    if (flags & TCP_ACK) {
      this.#lastAckSent = this.rcvNxt;
      const right = seqAdd(this.rcvNxt, win);
      if (seqGt(right, this.#rcvAdv)) this.#rcvAdv = right;
      this.#ackNow = false;
      this.#ackDue = false;
      this.#delayedAckAt = NEVER;
      this.#unackedBytes = 0;
    }
    return true;
  }

  /** Sends RST <SEQ=seq> (with ACK=ack when `withAck`). */
  #sendReset(seq: Seq, ack: Seq, withAck: boolean, _now: Instant): void {
    const r = this.#host.txRepr;
    r.reset();
    r.srcPort = this.localPort;
    r.dstPort = this.remotePort;
    r.seq = seq;
    r.flags = TCP_RST | (withAck ? TCP_ACK : 0);
    r.ack = withAck ? ack : 0;
    r.window = 0;
    if (this.#host.transmit(this, r, 0, 0, 0)) this.#host.counters.resetsSent++;
  }

  // ------------------------------------------------------------------------------------------
  // Endings

  #fail(err: TcpError, now: Instant): void {
    this.error = err;
    this.#toClosed(now, false);
  }

  /** Enters CLOSED and releases buffers. `silent` marks a half-open passive TCB given up. */
  #toClosed(_now: Instant, silent: boolean): void {
    this.state = TcpState.Closed;
    this.#delayedAckAt = NEVER;
    this.#persistAt = NEVER;
    this.#keepaliveAt = NEVER;
    this.#timeWaitAt = NEVER;
    this.#finWait2At = NEVER;
    this.#lingerAt = NEVER;
    this.#pacingAt = NEVER;
    this.#ackNow = false;
    this.#ackDue = false;
    this.#engineStarted = false;
    this.silentlyDropped = silent;
    this.#reass.clear();
    // The TCB is never reopened: give the congestion control back (a Wasm slot, a module ref),
    // and the ring storage it no longer needs (unread bytes stay readable).
    this.rec.dispose();
    this.trim();
  }

  /** True when the TCB went back to LISTEN (a passive half-open connection was given up). */
  silentlyDropped = false;

  // ------------------------------------------------------------------------------------------
  // TIME-WAIT reuse and introspection

  /**
   * RFC 6191 / RFC 1122 4.2.2.13: may a new SYN reopen this TIME-WAIT connection? With
   * timestamps the SYN's TSval must exceed TS.Recent, else its sequence number must exceed
   * RCV.NXT.
   */
  /**
   * True when an outgoing connection may take over this TIME-WAIT 4-tuple at `now` (see
   * `TcpConfig.timeWaitReuse`): timestamps were in use and TIME-WAIT (re)started at least
   * `minAge` ago.
   */
  timeWaitReusable(now: Instant, minAge: Duration): boolean {
    return this.state === TcpState.TimeWait && this.#tsOk &&
      now - (this.#timeWaitAt - 2 * this.#cfg.msl) >= minAge;
  }

  acceptsNewSyn(seg: TcpRepr): boolean {
    if (this.state !== TcpState.TimeWait) return false;
    if (this.#tsOk && seg.tsPresent) return seqGt(seg.tsVal, this.#tsRecent);
    return seqGt(seg.seq, this.rcvNxt);
  }

  /** TCP_INFO-like statistics. */
  info(): TcpInfo {
    const ri = this.rec.info(new RecoveryInfo());
    return {
      state: this.stateName,
      cwnd: this.rec.cc.cwnd,
      ssthresh: this.rec.cc.ssthresh,
      srtt: ri.srtt,
      rttvar: ri.rttvar,
      rto: ri.rto,
      mss: this.mss,
      bytesSent: this.bytesSent,
      bytesAcked: ri.bytesAcked,
      bytesReceived: this.bytesReceived,
      retransmits: ri.retransSegs,
      deliveryRate: ri.deliveryRate,
      pacingRate: ri.pacingRate,
      sndWnd: this.sndWnd,
      rcvWnd: Math.max(0, seqDiff(this.#rcvAdv, this.rcvNxt)),
      options: {
        timestamps: this.#tsOk,
        sack: this.#sackOk,
        wscale: this.#wscaleOk ? this.#rcvWscale : -1,
        peerWscale: this.#wscaleOk ? this.#sndWscale : -1,
        ecn: this.#ecnOk,
      },
    };
  }

  /** Frees buffer storage an idle connection does not need. */
  trim(): void {
    if (this.#reass.empty) this.rcvRing.releaseIfEmpty();
    this.sndRing.releaseIfEmpty();
  }

  #where(): string {
    return `${this.remoteAddr.toString()}:${this.remotePort}`;
  }
}

const INFO = new RecoveryInfo();

/**
 * The window shift a connection with `opts` offers (RFC 7323 2.2): for the largest its receive
 * buffer may grow to (`receiveBufferAuto` with `TcpConfig.receiveBufferMax`), else for
 * `receiveBufferSize`.
 */
export function receiveShiftFor(opts: TcpSocketOptions, cfg: TcpConfig): number {
  const grows = opts.receiveBufferAuto && cfg.receiveBufferMax > opts.receiveBufferSize;
  return windowShiftFor(grows ? cfg.receiveBufferMax : opts.receiveBufferSize, cfg);
}

/** The window shift we offer for a receive buffer of `bytes` (RFC 7323 2.2), 0 when disabled. */
export function windowShiftFor(bytes: number, cfg: TcpConfig): number {
  if (!cfg.windowScaling) return 0;
  let shift = 0;
  while (shift < MAX_WSCALE && (0xffff << shift) < bytes) shift++;
  return shift;
}
