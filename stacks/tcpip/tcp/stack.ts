/**
 * The TCP socket layer: `TcpStack` is the protocol-6 handler of an interface. It demultiplexes
 * segments to connections by 4-tuple (IPv4 and IPv6) through a hash table without allocating,
 * answers segments for closed ports with RST (RFC 9293 3.10.7.1), runs listeners with a bounded
 * SYN queue, an accept queue and SYN cookies, keeps every connection's timers in one heap, and
 * gives the application non-blocking calls on integer socket ids (or `TcpSocket` handles) with
 * an epoll-like ready list.
 *
 * Readiness is edge-triggered: a socket enters the ready list when its event bits (masked by
 * its interest set) change to a non-empty value; `drainReady()` hands out each queued id once
 * with its current bits. After draining, call the non-blocking operations until they report
 * "nothing now" (`recv` -> `WOULD_BLOCK`, `send` -> 0, `accept` -> -1).
 *
 * @module
 */

import { type Instant, SECOND } from "../../time.ts";
import { IpAddress } from "../wire/address.ts";
import {
  pseudoHeaderSumV4,
  pseudoHeaderSumV4Bytes,
  pseudoHeaderSumV6,
  transportChecksumOk,
  writePartialChecksum,
  writeTransportChecksum,
  writeTransportChecksumAt,
} from "../wire/checksum.ts";
import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_RST, TCP_SYN, TcpRepr } from "../wire/tcp.ts";
import type { IpOutput, IpProtocolHandler, IpReceiveInfo } from "../iface/protocol.ts";
import type { IcmpErrorInfo } from "../iface/icmp.ts";
import { defaultTcpConfig, type TcpConfig, type TcpSocketOptions } from "./config.ts";
import { TcpCounters } from "./counters.ts";
import {
  AddressInUse,
  AddressNotAvailable,
  BadSocket,
  BrokenPipe,
  InvalidArgument,
  InvalidState,
  NetworkUnreachable,
  NotConnected,
  type TcpError,
} from "./errors.ts";
import { COOKIE_PERIOD, IsnGenerator, SynCookies } from "./isn.ts";
import { registeredCcNames } from "./recovery/mod.ts";
import { seqAdd, seqGt } from "./seq.ts";
import {
  ERROR,
  HANGUP,
  READABLE,
  receiveShiftFor,
  Tcb,
  type TcbHost,
  type TcpInfo,
  TcpState,
  WRITABLE,
} from "./tcb.ts";
import { TimerHeap } from "./timer_heap.ts";
import { AS_DOUBLE } from "./f64.ts";

/** IP protocol number of TCP. */
export const IP_PROTOCOL_TCP = 6;
/** `recv()` result when no data is available yet (EOF is 0). */
export const WOULD_BLOCK = -1;

/** Settings of a `TcpStack`. */
export interface TcpStackOptions {
  /** The IP layer to send through. */
  ip: IpOutput;
  /** Source of random 32-bit words (seeded in tests and the simulator for determinism). */
  random: () => number;
  /** Overrides of the stack-wide defaults. */
  config?: Partial<TcpConfig>;
  /** Test hook: replaces the RFC 6528 ISN generator (e.g. to start near 2^32). */
  isn?: (now: Instant) => number;
}

/** Socket options accepted by `setOption`. */
export type TcpOptionName = keyof TcpSocketOptions;

/** Listener state. */
class Listener {
  synQueue = 0;
  /** When this listener last answered a SYN with a cookie (-Infinity: never). */
  lastCookieAt: Instant = -Infinity;
  readonly acceptQueue: Tcb[] = [];
  constructor(
    readonly sock: SocketRec,
    readonly addr: IpAddress | null,
    readonly port: number,
    public backlog: number,
  ) {}

  matches(version: 4 | 6, dst: Uint8Array): boolean {
    if (this.addr === null) return true;
    if (this.addr.version !== version) return false;
    return this.addr.isUnspecified || this.addr.equalsBytes(dst);
  }
}

/** Owner of an established connection waiting in a listener's accept queue. */
class AcceptPending {
  constructor(readonly listener: Listener) {}
}

/** Per-socket record. */
class SocketRec {
  tcb: Tcb | null = null;
  listener: Listener | null = null;
  interest = READABLE | WRITABLE | ERROR | HANGUP;
  queued = false;
  lastEvents = 0;
  closed = false;
  constructor(readonly id: number, readonly opts: TcpSocketOptions) {}
}

/** A handle object over a socket id, for callers that prefer methods to ids. */
export class TcpSocket {
  /** Wraps socket `id` of `stack`. */
  constructor(readonly stack: TcpStack, readonly id: number) {}
  /** See `TcpStack.send`. */
  send(data: Uint8Array, now: Instant): number {
    return this.stack.send(this.id, data, now);
  }
  /** See `TcpStack.recv`. */
  recv(dst: Uint8Array, now: Instant): number {
    return this.stack.recv(this.id, dst, now);
  }
  /** See `TcpStack.accept`. */
  accept(): TcpSocket | null {
    const id = this.stack.accept(this.id);
    return id < 0 ? null : new TcpSocket(this.stack, id);
  }
  /** See `TcpStack.shutdown`. */
  shutdown(now: Instant): void {
    this.stack.shutdown(this.id, now);
  }
  /** See `TcpStack.close`. */
  close(now: Instant): void {
    this.stack.close(this.id, now);
  }
  /** See `TcpStack.abort`. */
  abort(now: Instant): void {
    this.stack.abort(this.id, now);
  }
  /** See `TcpStack.events`. */
  events(): number {
    return this.stack.events(this.id);
  }
  /** See `TcpStack.info`. */
  info(): TcpInfo {
    return this.stack.info(this.id);
  }
  /** See `TcpStack.state`. */
  get state(): string {
    return this.stack.state(this.id);
  }
}

/** The TCP protocol handler and socket table of one interface. */
export class TcpStack implements IpProtocolHandler, TcbHost {
  /** IP protocol number. */
  readonly protocol: number = IP_PROTOCOL_TCP;
  /** Drop reasons and event counts. */
  readonly counters: TcpCounters = new TcpCounters();
  /** Scratch header for output (TcbHost). */
  readonly txRepr: TcpRepr = new TcpRepr();
  /** Stack-wide settings in force. */
  readonly config: TcpConfig;

  readonly #ip: IpOutput;
  /** `#ip` lends frame buffers at offsets (`IpOutput.beginPacketAt`). */
  readonly #ipAt: boolean;
  readonly #random: () => number;
  readonly #isnHook: ((now: Instant) => number) | null;
  readonly #rx = new TcpRepr();
  readonly #isn: IsnGenerator;
  readonly #cookies: SynCookies;
  readonly #demux = new Map<number, Tcb>();
  readonly #listeners = new Map<number, Listener[]>();
  readonly #portUse = new Map<number, number>();
  readonly #sockets = new Map<number, SocketRec>();
  readonly #heap = new TimerHeap<Tcb>();
  /** Out-parameter for a connection's deadline (`changed`). */
  readonly #key = new Float64Array(1);
  readonly #ready: number[] = [];
  readonly #locals: IpAddress[] = [];
  readonly #due: Tcb[] = [];
  /** Connections owing an ACK at the end of the receive batch (ACK coalescing). */
  readonly #deferredAcks: Tcb[] = [];
  #nextId = 1;
  /** The TIME-WAIT connection `#pickPort` chose to take over (connect() retires it). */
  #reusedTimeWait: Tcb | null = null;
  #connections = 0;
  #challengeSecond = -1;
  #challengeCount = 0;
  #challengeBudget = 0;
  #now: Instant = AS_DOUBLE;
  /** Auto-tuning growth granted to connections and not given back (`bufferTuningBudget`). */
  #bufferGrowth = 0;
  /** The last exception caught at the stack boundary (a bug; tests assert it stays null). */
  lastInternalError: unknown = null;

  /** A stack sending through `opts.ip`. */
  constructor(opts: TcpStackOptions) {
    // Double fields from the start (see f64.ts), then their real start values.
    this.#now = 0;
    this.#ip = opts.ip;
    this.#ipAt = typeof opts.ip.beginPacketAt === "function";
    this.#random = opts.random;
    this.#isnHook = opts.isn ?? null;
    const base = defaultTcpConfig();
    this.config = { ...base, ...opts.config, socket: { ...base.socket, ...opts.config?.socket } };
    const secret = new Uint32Array(6);
    for (let i = 0; i < 6; i++) secret[i] = this.#random() >>> 0;
    this.#isn = new IsnGenerator(secret);
    this.#cookies = new SynCookies(secret[4]!, secret[5]!);
  }

  /** Socket ids in use (listeners, connections, and closed ones not yet finished). */
  get socketCount(): number {
    return this.#sockets.size;
  }

  /** Connections with a pending timer. */
  get timerCount(): number {
    return this.#heap.size;
  }

  /** Bytes of buffer auto-tuning growth connections hold now (`TcpConfig.bufferTuningBudget`). */
  get bufferGrowth(): number {
    return this.#bufferGrowth;
  }

  /** TcbHost: grants what is left of the stack-wide tuning budget, up to `bytes`. */
  growBuffers(bytes: number): number {
    const left = this.config.bufferTuningBudget - this.#bufferGrowth;
    const g = bytes < left ? bytes : left > 0 ? left : 0;
    this.#bufferGrowth += g;
    return g;
  }

  /** Live connections (any state but CLOSED) in the demux table. */
  get connectionCount(): number {
    return this.#connections;
  }

  // ------------------------------------------------------------------------------------------
  // IpProtocolHandler

  /** Handles one TCP segment from the IP layer. Never throws. */
  receive(info: IpReceiveInfo, payload: Uint8Array, now: Instant): void {
    this.#now = now;
    this.counters.segmentsIn++;
    try {
      this.#receive(info, payload, now);
    } catch (e) {
      // A bug must not take the interface down: count it, keep it for tests, keep going.
      this.counters.internalErrors++;
      this.lastInternalError = e;
    }
  }

  #receive(info: IpReceiveInfo, payload: Uint8Array, now: Instant): void {
    if (!info.checksumVerified) {
      const pseudo = info.version === 4
        ? pseudoHeaderSumV4Bytes(info.src, info.dst, IP_PROTOCOL_TCP, payload.length)
        : pseudoHeaderSumV6(info.src, info.dst, IP_PROTOCOL_TCP, payload.length);
      if (!transportChecksumOk(payload, pseudo)) {
        this.counters.drop("bad-checksum");
        return;
      }
    }
    const rx = this.#rx;
    const bad = rx.parse(payload);
    if (bad !== undefined) {
      this.counters.drop(
        bad === "bad-option"
          ? "bad-option"
          : bad === "truncated"
          ? "truncated"
          : "bad-header-length",
      );
      return;
    }
    const hash = tupleHash(info.dst, rx.dstPort, info.src, rx.srcPort);
    const tcb = this.#lookup(hash, info.dst, rx.dstPort, info.src, rx.srcPort);
    if (
      tcb !== null && tcb.state === TcpState.TimeWait &&
      (rx.flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN
    ) {
      // RFC 6191 / RFC 1122 4.2.2.13: a new SYN may reopen a TIME-WAIT connection.
      if (tcb.acceptsNewSyn(rx)) {
        const listener = this.#findListener(info.version, info.dst, rx.dstPort);
        if (listener !== null) {
          const minIss = seqAdd(tcb.sndNxt, 65537);
          this.#retire(tcb, now); // the old incarnation ends here
          this.#listenInput(listener, info, rx, now, minIss);
          return;
        }
      }
    }
    if (tcb !== null) {
      if (tcb.state === TcpState.SynReceived && this.#overflowDrop(tcb, rx)) return;
      tcb.process(rx, info, now);
      return;
    }
    const listener = this.#findListener(info.version, info.dst, rx.dstPort);
    if (listener !== null) {
      this.#listenInput(listener, info, rx, now, -1);
      return;
    }
    this.#closedInput(info, rx, now);
  }

  /**
   * Accept-queue overflow policy (Linux's default, tcp_abort_on_overflow = 0): the ACK that
   * would complete a passive handshake while the listener's accept queue is full is dropped
   * and the connection stays in SYN-RECEIVED. Its SYN-ACK retransmission makes the client
   * ACK again, by when accept() may have made room; after `synAckRetries` it is given up
   * silently. Resetting it instead (what `#promote` would have to do) kills a connection the
   * client already considers established. Returns true when `rx` was dropped.
   */
  #overflowDrop(tcb: Tcb, rx: TcpRepr): boolean {
    const l = tcb.owner;
    if (!(l instanceof Listener) || l.sock.closed || l.acceptQueue.length < l.backlog) {
      return false;
    }
    // Only an ACK that would establish the connection; a bad ACK still gets its RST from the
    // TCB, a RST or SYN its usual handling.
    if ((rx.flags & (TCP_ACK | TCP_RST | TCP_SYN)) !== TCP_ACK) return false;
    if (!seqGt(rx.ack, tcb.sndUna) || seqGt(rx.ack, tcb.sndNxt)) return false;
    this.counters.drop("accept-queue-full");
    return true;
  }

  /** Runs due connection timers. */
  poll(now: Instant): void {
    this.#now = now;
    if (this.#deferredAcks.length > 0) this.#flushDeferredAcks(now);
    // Take every due connection out first, so each runs at most once per call even if it asks
    // to be polled again at once (bounded work per poll, no spinning on one connection).
    const due = this.#due;
    while (true) {
      const t = this.#heap.peek();
      if (t === undefined || t.heapKey > now) break;
      this.#heap.remove(t);
      due.push(t);
    }
    for (let i = 0; i < due.length; i++) {
      const t = due[i]!;
      try {
        t.poll(now);
      } catch (e) {
        this.counters.internalErrors++;
        this.lastInternalError = e;
      }
      if (t.heapIndex < 0) this.changed(t);
    }
    // pop(), not `length = 0`: V8 drops the backing store at length 0 and the next push
    // allocates a new one (a ~150 B array per poll); pop() keeps the capacity.
    while (due.length > 0) due.pop();
  }

  /** The earliest connection deadline (now while coalesced ACKs wait), or NEVER. */
  pollAt(): Instant {
    return this.#deferredAcks.length > 0 ? this.#now : this.#heap.peekKey();
  }

  /** `out[i] = pollAt()`, stored instead of returned (see `IpProtocolHandler.pollAtInto`). */
  pollAtInto(out: Float64Array, i: number): void {
    if (this.#deferredAcks.length > 0) out[i] = this.#now;
    else this.#heap.peekKeyInto(out, i);
  }

  /** ACK coalescing (TcbHost): the ACK goes out at the next poll, the end of the batch. */
  deferAck(tcb: Tcb): void {
    if (tcb.ackDeferred) return;
    tcb.ackDeferred = true;
    this.#deferredAcks.push(tcb);
  }

  #flushDeferredAcks(now: Instant): void {
    const list = this.#deferredAcks;
    for (let i = 0; i < list.length; i++) {
      const t = list[i]!;
      try {
        t.flushDeferredAck(now);
      } catch (e) {
        this.counters.internalErrors++;
        this.lastInternalError = e;
      }
      this.changed(t);
    }
    while (list.length > 0) list.pop(); // keeps the capacity (see poll)
  }

  /**
   * ICMP errors quoting one of our segments: path-MTU updates shrink the connection's MSS;
   * port/protocol unreachable refuses a connection still in SYN-SENT.
   */
  icmpError(error: IcmpErrorInfo, now: Instant): void {
    if (error.protocol !== IP_PROTOCOL_TCP || error.srcPort < 0) return;
    const hash = tupleHash(error.src, error.srcPort, error.dst, error.dstPort);
    const tcb = this.#lookup(hash, error.src, error.srcPort, error.dst, error.dstPort);
    if (tcb === null) return;
    if (error.kind === "port-unreachable" || error.kind === "protocol-unreachable") {
      tcb.icmpUnreachable(now);
      return;
    }
    if ((error.kind === "frag-needed" || error.kind === "packet-too-big") && error.mtu > 0) {
      tcb.pathMtuChanged(error.mtu);
    }
  }

  // ------------------------------------------------------------------------------------------
  // TcbHost

  /** Emits one segment of `tcb` (TcbHost). */
  transmit(tcb: Tcb, repr: TcpRepr, dataOffset: number, dataLength: number, ecn: number): boolean {
    if (this.#ipAt) return this.#transmitAt(tcb, repr, dataOffset, dataLength, ecn);
    const hl = repr.headerLength;
    const total = hl + dataLength;
    const buf = this.#ip.beginPacket(tcb.localAddr, tcb.remoteAddr, IP_PROTOCOL_TCP, total, ecn);
    if (buf === null) {
      this.counters.outputFailures++;
      return false;
    }
    const seg = buf.length === total ? buf : buf.subarray(0, total);
    repr.emit(seg);
    if (dataLength > 0) tcb.copySendData(seg, hl, dataOffset, dataLength);
    const ip = this.#ip;
    if (ip.canOffloadChecksum?.() === true) {
      // The link completes it (AF_XDP TX metadata): no pass over the payload here.
      writePartialChecksum(seg, 16, pseudoFor(tcb.localAddr, tcb.remoteAddr, total));
      ip.commitPacketPartial!(16);
    } else {
      writeTransportChecksum(seg, 16, pseudoFor(tcb.localAddr, tcb.remoteAddr, total));
      ip.commitPacket();
    }
    this.counters.segmentsOut++;
    return true;
  }

  /**
   * `transmit` through `IpOutput.beginPacketAt`: the segment is written at its offset in the
   * lent frame buffer, so no view of it is made per segment.
   */
  #transmitAt(
    tcb: Tcb,
    repr: TcpRepr,
    dataOffset: number,
    dataLength: number,
    ecn: number,
  ): boolean {
    const hl = repr.headerLength;
    const total = hl + dataLength;
    const ip = this.#ip;
    const at = ip.beginPacketAt!(tcb.localAddr, tcb.remoteAddr, IP_PROTOCOL_TCP, total, ecn);
    if (at < 0) {
      this.counters.outputFailures++;
      return false;
    }
    const buf = ip.packetBuffer!;
    repr.emitAt(buf, at);
    if (dataLength > 0) tcb.copySendData(buf, at + hl, dataOffset, dataLength);
    const pseudo = pseudoFor(tcb.localAddr, tcb.remoteAddr, total);
    if (ip.canOffloadChecksum?.() === true) {
      writePartialChecksum(buf, at + 16, pseudo);
      ip.commitPacketPartial!(16);
    } else {
      writeTransportChecksumAt(buf, at, at + total, 16, pseudo);
      ip.commitPacket();
    }
    this.counters.segmentsOut++;
    return true;
  }

  /**
   * RFC 5961 7: a stack-wide budget of challenge ACKs per second. The budget is drawn anew
   * each second between half and all of `challengeAckLimit`, so an off-path prober cannot use
   * an exact global counter as a side channel (CVE-2016-5696).
   */
  allowChallengeAck(now: Instant): boolean {
    const sec = Math.floor(now / 1e9);
    if (sec !== this.#challengeSecond) {
      this.#challengeSecond = sec;
      this.#challengeCount = 0;
      const limit = this.config.challengeAckLimit;
      const half = Math.ceil(limit / 2);
      this.#challengeBudget = half + ((this.#random() >>> 0) % (limit - half + 1));
    }
    if (this.#challengeCount >= this.#challengeBudget) return false;
    this.#challengeCount++;
    return true;
  }

  /** Re-files `tcb` after anything happened to it (TcbHost). */
  changed(tcb: Tcb): void {
    // Tuned buffers' growth goes back to the budget in TIME-WAIT (CLOSED: in #onClosed).
    if (tcb.state === TcpState.TimeWait) this.#bufferGrowth -= tcb.releaseBufferGrowth();
    if (tcb.state === TcpState.TimeWait && !tcb.inTimeWaitCount) {
      if (this.counters.timeWait >= this.config.maxTimeWait) {
        // Linux's "time wait bucket table overflow": no TIME-WAIT for this one.
        this.counters.timeWaitOverflows++;
        tcb.abort(this.#now); // no RST in TIME-WAIT: just CLOSED
      } else {
        tcb.inTimeWaitCount = true;
        this.counters.timeWait++;
      }
    }
    if (tcb.state === TcpState.Closed) {
      if (tcb.inTimeWaitCount) {
        tcb.inTimeWaitCount = false;
        this.counters.timeWait--;
      }
      this.#heap.remove(tcb);
      this.#onClosed(tcb);
    } else {
      // Through a Float64Array, not a returned Instant (a heap number per call).
      tcb.pollAtInto(this.#key, 0);
      this.#heap.setFrom(tcb, this.#key, 0);
    }
    const owner = tcb.owner;
    if (owner instanceof Listener) {
      if (tcb.state !== TcpState.SynReceived && tcb.state !== TcpState.Closed) {
        this.#promote(owner, tcb);
      }
      return;
    }
    if (owner instanceof SocketRec) this.#notify(owner, tcb.events());
    // AcceptPending: waits in the accept queue; accept() reports what happened meanwhile.
  }

  #promote(l: Listener, tcb: Tcb): void {
    l.synQueue = Math.max(0, l.synQueue - 1);
    // A full queue is normally caught before the final ACK is processed (`#overflowDrop`,
    // `#tryCookie`); a closed listener resets what it can no longer hand out.
    if (l.acceptQueue.length >= l.backlog || l.sock.closed) {
      this.counters.drop("accept-queue-full");
      tcb.owner = null;
      tcb.abort(this.#now);
      this.changed(tcb);
      return;
    }
    tcb.owner = new AcceptPending(l); // until accept() gives it a socket of its own
    l.acceptQueue.push(tcb);
    this.#notify(l.sock, READABLE);
  }

  #notify(sock: SocketRec, ev: number): void {
    if (ev === sock.lastEvents) return;
    sock.lastEvents = ev;
    if ((ev & sock.interest) !== 0 && !sock.queued) {
      sock.queued = true;
      this.#ready.push(sock.id);
    }
  }

  #onClosed(tcb: Tcb): void {
    this.#bufferGrowth -= tcb.releaseBufferGrowth();
    if (tcb.inDemux) this.#forget(tcb);
    const owner = tcb.owner;
    if (owner instanceof Listener) {
      if (tcb.state === TcpState.Closed) owner.synQueue = Math.max(0, owner.synQueue - 1);
      tcb.owner = null;
    } else if (owner instanceof SocketRec && owner.closed) {
      this.#sockets.delete(owner.id);
      tcb.owner = null;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Demux

  #lookup(
    hash: number,
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
  ): Tcb | null {
    let t = this.#demux.get(hash) ?? null;
    while (t !== null) {
      if (
        t.localPort === lport && t.remotePort === rport && t.localAddr.equalsBytes(local) &&
        t.remoteAddr.equalsBytes(remote)
      ) return t;
      t = t.demuxNext;
    }
    return null;
  }

  #file(tcb: Tcb): void {
    const h = tupleHash(tcb.localAddr.bytes, tcb.localPort, tcb.remoteAddr.bytes, tcb.remotePort);
    tcb.demuxHash = h;
    tcb.demuxNext = this.#demux.get(h) ?? null;
    this.#demux.set(h, tcb);
    tcb.inDemux = true;
    this.#connections++;
    this.#portUse.set(tcb.localPort, (this.#portUse.get(tcb.localPort) ?? 0) + 1);
  }

  #forget(tcb: Tcb): void {
    if (!tcb.inDemux) return;
    const h = tcb.demuxHash;
    let t = this.#demux.get(h) ?? null;
    let prev: Tcb | null = null;
    while (t !== null && t !== tcb) {
      prev = t;
      t = t.demuxNext;
    }
    if (t === tcb) {
      if (prev === null) {
        if (tcb.demuxNext === null) this.#demux.delete(h);
        else this.#demux.set(h, tcb.demuxNext);
      } else prev.demuxNext = tcb.demuxNext;
    }
    tcb.demuxNext = null;
    tcb.inDemux = false;
    this.#connections--;
    const n = (this.#portUse.get(tcb.localPort) ?? 1) - 1;
    if (n <= 0) this.#portUse.delete(tcb.localPort);
    else this.#portUse.set(tcb.localPort, n);
    this.#heap.remove(tcb);
  }

  /** Ends a TIME-WAIT connection early (its 4-tuple is reused) and releases its socket. */
  #retire(tcb: Tcb, now: Instant): void {
    tcb.abort(now); // no RST in TIME-WAIT: just CLOSED
    this.changed(tcb);
  }

  #findListener(version: 4 | 6, dst: Uint8Array, port: number): Listener | null {
    const list = this.#listeners.get(port);
    if (list === undefined) return null;
    let wildcard: Listener | null = null;
    for (let i = 0; i < list.length; i++) {
      const l = list[i]!;
      if (!l.matches(version, dst)) continue;
      if (l.addr !== null && !l.addr.isUnspecified) return l; // exact address wins
      wildcard = l;
    }
    return wildcard;
  }

  // ------------------------------------------------------------------------------------------
  // LISTEN and CLOSED input

  /** RFC 9293 3.10.7.2: segments for a listener. */
  #listenInput(l: Listener, info: IpReceiveInfo, rx: TcpRepr, now: Instant, minIss: number): void {
    const f = rx.flags;
    if (f & TCP_RST) {
      this.counters.drop((f & TCP_SYN) ? "syn-rst" : "listen-rst"); // first: ignore RST
      return;
    }
    if (f & TCP_ACK && !(f & TCP_SYN)) {
      // Second: an ACK. It may complete a SYN cookie handshake (RFC 4987 3.6), but only if
      // this listener sent cookies recently enough for one to be valid still (as Linux's
      // tcp_synq_no_recent_overflow): otherwise every stray ACK (e.g. a peer's TIME-WAIT ACK
      // after we closed) would be checked and miscounted as a forged cookie.
      if (this.config.synCookies && now - l.lastCookieAt < 2 * COOKIE_PERIOD) {
        if (this.#tryCookie(l, info, rx, now)) return; // else dropped or "bad-cookie"
      } else this.counters.drop("listen-ack");
      // RFC 9293 3.10.7.2: any ACK in LISTEN gets <SEQ=SEG.ACK><CTL=RST>.
      this.#resetReply(info, rx);
      return;
    }
    if (!(f & TCP_SYN)) {
      this.counters.drop("listen-non-syn"); // fourth: other text or control
      return;
    }
    if (f & TCP_FIN) {
      this.counters.drop("syn-fin"); // Linux drops SYN+FIN in LISTEN; nothing sane combines them
      return;
    }
    if (f & TCP_ACK) {
      this.counters.drop("listen-ack");
      this.#resetReply(info, rx);
      return;
    }
    // Third: SYN. Dropped while the accept queue is full (as Linux): the client retries.
    if (l.acceptQueue.length >= l.backlog) {
      this.counters.drop("accept-queue-full");
      return;
    }
    const synMax = Math.min(Math.max(l.backlog, 1), this.config.synQueueMax);
    if (l.synQueue >= synMax) {
      if (this.config.synCookies) this.#sendCookieSynAck(l, info, rx, now);
      else this.counters.drop("syn-queue-full");
      return;
    }
    const local = this.#localAddress(info.dst);
    const remote = IpAddress.fromBytes(info.src);
    const tcb = this.#newTcb(l.sock.opts, local, rx.dstPort, remote, rx.srcPort);
    tcb.owner = l;
    let iss = this.#isnHook?.(now) ??
      this.#isn.isn(info.dst, rx.dstPort, info.src, rx.srcPort, now);
    if (minIss >= 0 && !seqGt(iss, minIss)) iss = minIss;
    l.synQueue++;
    this.#file(tcb);
    tcb.acceptSyn(rx, iss, now);
    this.changed(tcb);
  }

  /** One shared IpAddress per local address (connections need not each own a copy). */
  #localAddress(raw: Uint8Array): IpAddress {
    for (let i = 0; i < this.#locals.length; i++) {
      if (this.#locals[i]!.equalsBytes(raw)) return this.#locals[i]!;
    }
    const a = IpAddress.fromBytes(raw);
    if (this.#locals.length < 64) this.#locals.push(a);
    return a;
  }

  #newTcb(
    opts: TcpSocketOptions,
    local: IpAddress,
    lport: number,
    remote: IpAddress,
    rport: number,
  ): Tcb {
    const mtu = this.#ip.mtuFor(remote);
    const routeMss = mtu - (remote.version === 4 ? 40 : 60);
    const tsOff = this.#isn.tsOffset(local.bytes, lport, remote.bytes, rport);
    return new Tcb(this, this.config, { ...opts }, local, lport, remote, rport, routeMss, tsOff);
  }

  #sendCookieSynAck(l: Listener, info: IpReceiveInfo, rx: TcpRepr, now: Instant): void {
    const peerMss = rx.mss > 0 ? rx.mss : (info.version === 4 ? 536 : 1220);
    const cookie = this.#cookies.make(
      info.dst,
      rx.dstPort,
      info.src,
      rx.srcPort,
      rx.seq,
      peerMss,
      now,
    );
    const remote = IpAddress.fromBytes(info.src);
    const local = IpAddress.fromBytes(info.dst);
    const r = this.txRepr;
    const ecn = this.config.ecn && (rx.flags & (TCP_ECE | TCP_CWR)) === (TCP_ECE | TCP_CWR);
    const ts = this.config.timestamps && rx.tsPresent;
    const tsOff = this.#isn.tsOffset(info.dst, rx.dstPort, info.src, rx.srcPort);
    const clock = (Math.floor(now / 1e6) + tsOff) >>> 0;
    const tsVal = ts ? Tcb.cookieTsVal(clock, rx, this.config, ecn) : 0;
    r.reset();
    r.srcPort = rx.dstPort;
    r.dstPort = rx.srcPort;
    r.seq = cookie;
    r.ack = seqAdd(rx.seq, 1);
    r.flags = TCP_SYN | TCP_ACK | (ecn && ts ? TCP_ECE : 0);
    r.window = Math.min(l.sock.opts.receiveBufferSize, 0xffff);
    r.mss = this.#ip.mtuFor(remote) - (remote.version === 4 ? 40 : 60);
    if (ts) {
      // Without timestamps there is nowhere to keep these options, so they are not offered.
      if (rx.windowScale >= 0 && this.config.windowScaling) {
        r.windowScale = receiveShiftFor(l.sock.opts, this.config);
      }
      r.sackPermitted = rx.sackPermitted && this.config.sack;
      r.tsPresent = true;
      r.tsVal = tsVal;
      r.tsEcr = rx.tsVal;
    }
    this.counters.cookiesSent++;
    l.lastCookieAt = now;
    this.#emitRaw(local, remote, r);
  }

  #tryCookie(l: Listener, info: IpReceiveInfo, rx: TcpRepr, now: Instant): boolean {
    const cookie = seqAdd(rx.ack, -1);
    const mss = this.#cookies.check(
      info.dst,
      rx.dstPort,
      info.src,
      rx.srcPort,
      seqAdd(rx.seq, -1),
      cookie,
      now,
    );
    if (mss === 0) {
      // A cookie checks only on the client's segment at ISN + 1. When that one was lost (a
      // congested link, or dropped by us for a full accept queue) a later segment of the
      // same flight (e.g. the client's tail-loss probe) arrives first: the client holds the
      // connection as established, so a RST (what Linux sends: a failed cookie leaves a
      // plain ACK in LISTEN) would kill it. When the segment provably follows a cookie we
      // issued, drop it: the client's retransmission from SND.UNA (= ISN + 1) checks.
      const k = this.#cookies.laterOffset(
        info.dst,
        rx.dstPort,
        info.src,
        rx.srcPort,
        seqAdd(rx.seq, -1),
        cookie,
        now,
      );
      if (k !== 0) {
        this.counters.drop("cookie-later-segment");
        return true;
      }
      this.counters.drop("bad-cookie");
      return false;
    }
    if (l.acceptQueue.length >= l.backlog) {
      // Valid, but no room: dropped (not reset) so the client's retransmission completes it.
      this.counters.drop("accept-queue-full");
      return true;
    }
    const local = this.#localAddress(info.dst);
    const remote = IpAddress.fromBytes(info.src);
    const tcb = this.#newTcb(l.sock.opts, local, rx.dstPort, remote, rx.srcPort);
    this.#file(tcb);
    tcb.owner = l;
    l.synQueue++; // balanced by #promote
    this.counters.cookiesAccepted++;
    tcb.acceptCookie(rx, mss, now);
    if (rx.payload.length > 0 || (rx.flags & TCP_FIN)) tcb.process(rx, info, now);
    return true;
  }

  /** RFC 9293 3.10.7.1: CLOSED. Everything but a RST is answered with a RST. */
  #closedInput(info: IpReceiveInfo, rx: TcpRepr, _now: Instant): void {
    if (rx.flags & TCP_RST) {
      this.counters.drop((rx.flags & TCP_SYN) ? "syn-rst" : "closed-port");
      return;
    }
    this.counters.drop("closed-port");
    this.#resetReply(info, rx);
  }

  /** RST answering `rx` (RFC 9293 3.10.7.1 / 3.5.2). */
  #resetReply(info: IpReceiveInfo, rx: TcpRepr): void {
    const remote = IpAddress.fromBytes(info.src);
    const local = IpAddress.fromBytes(info.dst);
    const f = rx.flags;
    const segLen = rx.payload.length + ((f & TCP_SYN) ? 1 : 0) + ((f & TCP_FIN) ? 1 : 0);
    const r = this.txRepr;
    const ack = rx.ack;
    const seq = rx.seq;
    const sport = rx.srcPort;
    const dport = rx.dstPort;
    r.reset();
    r.srcPort = dport;
    r.dstPort = sport;
    if (f & TCP_ACK) {
      r.seq = ack; // <SEQ=SEG.ACK><CTL=RST>
      r.flags = TCP_RST;
    } else {
      r.seq = 0; // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
      r.ack = seqAdd(seq, segLen);
      r.flags = TCP_RST | TCP_ACK;
    }
    if (this.#emitRaw(local, remote, r)) this.counters.resetsSent++;
  }

  #emitRaw(local: IpAddress, remote: IpAddress, r: TcpRepr): boolean {
    const hl = r.headerLength;
    const buf = this.#ip.beginPacket(local, remote, IP_PROTOCOL_TCP, hl, 0);
    if (buf === null) {
      this.counters.outputFailures++;
      return false;
    }
    const seg = buf.length === hl ? buf : buf.subarray(0, hl);
    r.emit(seg);
    writeTransportChecksum(seg, 16, pseudoFor(local, remote, hl));
    this.#ip.commitPacket();
    this.counters.segmentsOut++;
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Socket API

  #sock(id: number): SocketRec {
    const s = this.#sockets.get(id);
    if (s === undefined || s.closed) throw new BadSocket(id);
    return s;
  }

  #conn(id: number, op: string): Tcb {
    const s = this.#sock(id);
    if (s.tcb === null) throw new NotConnected(op);
    return s.tcb;
  }

  /**
   * Opens a listening socket on `port` (`addr` null = every address, v4 and v6) with at most
   * `backlog` connections waiting in accept(). Returns its id.
   */
  listen(
    addr: IpAddress | null,
    port: number,
    backlog: number,
    options: Partial<TcpSocketOptions> = {},
  ): number {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgument(`port ${port} is not in 1..65535; pick a valid port to listen on`);
    }
    if (!Number.isInteger(backlog) || backlog < 1) {
      throw new InvalidArgument(`backlog ${backlog} must be a positive integer`);
    }
    const opts = { ...this.config.socket, ...options };
    checkCc(opts.congestionControl);
    const list = this.#listeners.get(port) ?? [];
    for (const l of list) {
      const overlap = l.addr === null || addr === null || l.addr.isUnspecified ||
        addr.isUnspecified || l.addr.equals(addr);
      if (overlap) throw new AddressInUse(`port ${port}`);
    }
    if ((this.#portUse.get(port) ?? 0) > 0 && !opts.reuseAddress) {
      throw new AddressInUse(`port ${port}`);
    }
    const sock = new SocketRec(this.#nextId++, opts);
    const l = new Listener(sock, addr, port, backlog);
    sock.listener = l;
    list.push(l);
    this.#listeners.set(port, list);
    this.#sockets.set(sock.id, sock);
    return sock.id;
  }

  /** Takes one established connection from listener `id`; -1 when none is waiting. */
  accept(id: number): number {
    const s = this.#sock(id);
    const l = s.listener;
    if (l === null) throw new InvalidState("accept()", "not listening");
    const tcb = l.acceptQueue.shift();
    if (tcb === undefined) {
      s.lastEvents = 0;
      return -1;
    }
    const sock = new SocketRec(this.#nextId++, tcb.opts);
    sock.tcb = tcb;
    tcb.owner = sock;
    this.#sockets.set(sock.id, sock);
    if (l.acceptQueue.length === 0) s.lastEvents = 0;
    this.#notify(sock, tcb.events());
    if (tcb.state === TcpState.Closed) this.#onClosed(tcb);
    return sock.id;
  }

  /**
   * Starts connecting to `remote`:`port` (non-blocking): returns the socket id at once; the
   * socket becomes WRITABLE when established or ERROR when refused or timed out.
   */
  connect(
    remote: IpAddress,
    port: number,
    now: Instant,
    options: Partial<TcpSocketOptions> & { localPort?: number; local?: IpAddress } = {},
  ): number {
    this.#now = now;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new InvalidArgument(`port ${port} is not in 1..65535; pick the server's port`);
    }
    const src = options.local ?? this.#ip.sourceFor(remote);
    if (src === null) throw new NetworkUnreachable(`${remote}:${port}`);
    const local = this.#localAddress(src.bytes);
    const { localPort: fixedPort, local: _l, ...rest } = options;
    const opts = { ...this.config.socket, ...rest };
    checkCc(opts.congestionControl);
    let lport: number;
    let minIss = -1;
    if (fixedPort !== undefined) {
      const h = tupleHash(local.bytes, fixedPort, remote.bytes, port);
      const old = this.#lookup(h, local.bytes, fixedPort, remote.bytes, port);
      if (old !== null) {
        if (old.state === TcpState.TimeWait && opts.reuseAddress) {
          minIss = seqAdd(old.sndNxt, 65537); // RFC 1122 4.2.2.13: new ISN above the old SND.NXT
          this.#retire(old, now);
        } else throw new AddressInUse(`${local}:${fixedPort} -> ${remote}:${port}`);
      }
      lport = fixedPort;
    } else {
      lport = this.#pickPort(local, remote, port, now);
      const reused = this.#reusedTimeWait;
      if (reused !== null) {
        this.#reusedTimeWait = null;
        minIss = seqAdd(reused.sndNxt, 65537); // RFC 1122 4.2.2.13: above the old SND.NXT
        this.#retire(reused, now);
        this.counters.timeWaitReused++;
      }
    }
    const sock = new SocketRec(this.#nextId++, opts);
    const tcb = this.#newTcb(opts, local, lport, remote, port);
    sock.tcb = tcb;
    tcb.owner = sock;
    this.#sockets.set(sock.id, sock);
    this.#file(tcb);
    let iss = this.#isnHook?.(now) ?? this.#isn.isn(local.bytes, lport, remote.bytes, port, now);
    if (minIss >= 0 && !seqGt(iss, minIss)) iss = minIss;
    tcb.connect(iss, now);
    this.changed(tcb);
    return sock.id;
  }

  /**
   * A random free ephemeral port (RFC 6056 algorithm 1: random start, linear probe). When none
   * turns up within `REUSE_AFTER_PROBES` probes (or at all), a port whose connection to
   * `remote`:`port` is in reusable TIME-WAIT (`TcpConfig.timeWaitReuse`): it is left in
   * `#reusedTimeWait` for `connect()` to retire.
   */
  #pickPort(local: IpAddress, remote: IpAddress, port: number, now: Instant): number {
    const lo = this.config.ephemeralLow;
    const n = this.config.ephemeralHigh - lo + 1;
    const start = (this.#random() >>> 0) % n;
    const reuse = this.config.timeWaitReuse;
    let spare: Tcb | null = null;
    for (let i = 0; i < n; i++) {
      const p = lo + ((start + i) % n);
      if (this.#listeners.has(p)) continue;
      const h = tupleHash(local.bytes, p, remote.bytes, port);
      const old = this.#lookup(h, local.bytes, p, remote.bytes, port);
      if (old === null) return p;
      if (reuse && spare === null && old.timeWaitReusable(now, SECOND)) spare = old;
      // A range full of TIME-WAIT would be scanned whole on every connect (28,232 lookups, a
      // few ms): after a window without a free port, take the reusable one found.
      if (spare !== null && i >= REUSE_AFTER_PROBES) break;
    }
    if (spare !== null) {
      this.#reusedTimeWait = spare;
      return spare.localPort;
    }
    throw new AddressNotAvailable(`${remote}:${port}`);
  }

  /**
   * Queues bytes for sending; returns how many were taken (0 when the buffer is full: wait for
   * WRITABLE). Throws the connection's error, BrokenPipe after shutdown, NotConnected before.
   */
  send(id: number, data: Uint8Array, now: Instant): number {
    this.#now = now;
    const tcb = this.#conn(id, "send()");
    if (tcb.error !== null) throw tcb.error;
    if (tcb.writeShut) throw new BrokenPipe();
    if (tcb.state === TcpState.Closed) throw new NotConnected("send()");
    return tcb.send(data, now);
  }

  /**
   * Bytes `send(id)` would take now: the send buffer's free space, 0 when it is full.
   * `Number.MAX_SAFE_INTEGER` when `send` would throw instead (unknown id, not connected,
   * shut down, failed), so a caller that sizes its sends by this still gets the error.
   */
  sendSpace(id: number): number {
    const s = this.#sockets.get(id);
    const tcb = s === undefined || s.closed ? null : s.tcb;
    if (
      tcb === null || tcb.error !== null || tcb.writeShut || tcb.state === TcpState.Closed
    ) return Number.MAX_SAFE_INTEGER;
    return tcb.writableBytes;
  }

  /**
   * Reads received bytes into `dst` (at most `max`, default `dst.length`): the count, 0 at end
   * of stream, or `WOULD_BLOCK` when nothing is there yet. Throws the connection's error (reset,
   * timeout) once data ran out. (`max` lets a caller keep one view of a buffer it fills to
   * varying lengths.)
   */
  recv(id: number, dst: Uint8Array, now: Instant, max: number = dst.length): number {
    this.#now = now;
    const tcb = this.#conn(id, "recv()");
    const n = tcb.recv(dst, now, max);
    if (n > 0) {
      this.#refresh(tcb);
      return n;
    }
    if (tcb.rcvEof) return 0;
    if (tcb.error !== null) throw tcb.error;
    if (tcb.state === TcpState.Closed) return 0;
    const s = tcb.owner;
    if (s instanceof SocketRec) s.lastEvents = tcb.events();
    return WOULD_BLOCK;
  }

  #refresh(tcb: Tcb): void {
    const s = tcb.owner;
    if (s instanceof SocketRec) s.lastEvents = tcb.events();
  }

  /** shutdown(SHUT_WR): sends FIN after queued data; reading continues. */
  shutdown(id: number, now: Instant): void {
    this.#now = now;
    const tcb = this.#conn(id, "shutdown()");
    tcb.shutdownWrite(now);
  }

  /**
   * Closes the socket id. A connection finishes in the background (FIN, TIME-WAIT); unread
   * data or LINGER 0 turn close into abort (RST). A listener resets its queued connections.
   */
  close(id: number, now: Instant): void {
    this.#now = now;
    const s = this.#sock(id);
    s.closed = true;
    if (s.listener !== null) {
      const l = s.listener;
      const list = this.#listeners.get(l.port);
      if (list !== undefined) {
        const i = list.indexOf(l);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.#listeners.delete(l.port);
      }
      for (const t of l.acceptQueue) {
        t.owner = null;
        t.abort(now);
        this.changed(t);
      }
      l.acceptQueue.length = 0;
      this.#sockets.delete(id);
      return;
    }
    const tcb = s.tcb;
    if (tcb === null) {
      this.#sockets.delete(id);
      return;
    }
    tcb.close(now);
    this.changed(tcb);
    if (tcb.state === TcpState.Closed) this.#sockets.delete(id);
  }

  /** Resets the connection at once (RST) and frees the socket id. */
  abort(id: number, now: Instant): void {
    this.#now = now;
    const s = this.#sock(id);
    if (s.tcb !== null) {
      s.tcb.abort(now);
      this.changed(s.tcb);
    }
    if (s.listener !== null) {
      this.close(id, now);
      return;
    }
    s.closed = true;
    this.#sockets.delete(id);
  }

  /** Sets a socket option. */
  setOption<K extends TcpOptionName>(
    id: number,
    name: K,
    value: TcpSocketOptions[K],
    now: Instant,
  ): void {
    const s = this.#sock(id);
    // Linux allows TCP_CONGESTION at any time: on a connection it is a live swap.
    if (name === "congestionControl") checkCc(value as string);
    const targets: TcpSocketOptions[] = [s.opts];
    if (s.tcb !== null && s.tcb.opts !== s.opts) targets.push(s.tcb.opts);
    for (const o of targets) {
      o[name] = value;
      // SO_SNDBUF / SO_RCVBUF fix the buffer (Linux's SOCK_SNDBUF_LOCK / SOCK_RCVBUF_LOCK).
      if (name === "sendBufferSize") o.sendBufferAuto = false;
      if (name === "receiveBufferSize") o.receiveBufferAuto = false;
    }
    const tcb = s.tcb;
    if (tcb === null) return;
    if (name === "keepAlive" || name === "keepIdle" || name === "keepInterval") {
      tcb.keepaliveChanged(now);
    } else if (name === "sendBufferSize") tcb.sndRing.setCapacity(value as number);
    else if (name === "receiveBufferSize") tcb.rcvRing.setCapacity(value as number);
    else if (name === "noDelay" && value === true) tcb.send(new Uint8Array(0), now);
    else if (name === "congestionControl") tcb.congestionControlChanged(value as string, now);
  }

  /** The socket's options in force. */
  getOptions(id: number): Readonly<TcpSocketOptions> {
    return this.#sock(id).opts;
  }

  /** Sets the interest set (READABLE | WRITABLE | ERROR | HANGUP) for the ready list. */
  setInterest(id: number, mask: number): void {
    const s = this.#sock(id);
    s.interest = mask;
    s.lastEvents = -1;
    this.#notify(s, this.events(id));
  }

  /** Current event bits of a socket. */
  events(id: number): number {
    const s = this.#sock(id);
    if (s.listener !== null) return s.listener.acceptQueue.length > 0 ? READABLE : 0;
    return s.tcb === null ? 0 : s.tcb.events();
  }

  /** Sockets queued for the next `drainReady` (a driver's cheap "anything new?" check). */
  get readyCount(): number {
    return this.#ready.length;
  }

  /**
   * Hands every ready socket id (and its current event bits) to `fn` once and empties the
   * ready list; returns how many were handed out. Costs O(ready), not O(sockets).
   */
  drainReady(fn: (id: number, events: number) => void): number {
    const ready = this.#ready;
    let n = 0;
    for (let i = 0; i < ready.length; i++) {
      const id = ready[i]!;
      const s = this.#sockets.get(id);
      // A socket closed by the application while queued (its connection still finishing in
      // the background) is no longer the application's: skip it rather than throw.
      if (s === undefined || s.closed) continue;
      s.queued = false;
      const ev = this.events(id) & s.interest;
      if (ev === 0) continue;
      n++;
      fn(id, ev);
    }
    while (ready.length > 0) ready.pop(); // keeps the capacity (see poll)
    return n;
  }

  /** RFC 9293 state name of a socket ("LISTEN" for listeners). */
  state(id: number): string {
    const s = this.#sock(id);
    if (s.listener !== null) return "LISTEN";
    return s.tcb === null ? "CLOSED" : s.tcb.stateName;
  }

  /** The pending error of a connection, or null. */
  error(id: number): TcpError | null {
    const s = this.#sock(id);
    return s.tcb?.error ?? null;
  }

  /** TCP_INFO-like statistics. */
  info(id: number): TcpInfo {
    return this.#conn(id, "info()").info();
  }

  /** Local address and port of a connection. */
  localAddress(id: number): { address: IpAddress; port: number } {
    const t = this.#conn(id, "localAddress()");
    return { address: t.localAddr, port: t.localPort };
  }

  /** Remote address and port of a connection. */
  remoteAddress(id: number): { address: IpAddress; port: number } {
    const t = this.#conn(id, "remoteAddress()");
    return { address: t.remoteAddr, port: t.remotePort };
  }

  /** A handle object for socket `id`. */
  handle(id: number): TcpSocket {
    this.#sock(id);
    return new TcpSocket(this, id);
  }

  /** The TCB behind a socket (for tests and introspection). */
  tcbOf(id: number): Tcb | null {
    return this.#sockets.get(id)?.tcb ?? null;
  }

  /** Frees buffer storage of idle connections (call now and then under memory pressure). */
  trimIdle(): void {
    for (const s of this.#sockets.values()) s.tcb?.trim();
  }
}

/** Throws InvalidArgument for a congestion control nobody registered. */
function checkCc(name: string): void {
  const known = registeredCcNames();
  if (!known.includes(name)) {
    throw new InvalidArgument(
      `unknown congestion control "${name}"; register it with registerCc() or use one of: ${
        known.join(", ")
      }`,
    );
  }
}

/** Ports probed for a free one before a reusable TIME-WAIT port is taken instead. */
const REUSE_AFTER_PROBES = 128;

function pseudoFor(local: IpAddress, remote: IpAddress, length: number): number {
  return local.version === 4
    ? pseudoHeaderSumV4(local.v4, remote.v4, IP_PROTOCOL_TCP, length)
    : pseudoHeaderSumV6(local.bytes, remote.bytes, IP_PROTOCOL_TCP, length);
}

/**
 * FNV-1a style hash of a 4-tuple over raw address bytes (no allocation). Kept to 30 bits: a
 * larger value is not a small integer in V8, so it was boxed as a heap number (an allocation
 * per segment) when passed to the lookup and used as the Map key.
 */
function tupleHash(local: Uint8Array, lport: number, remote: Uint8Array, rport: number): number {
  let h = (0x811c9dc5 ^ ((lport << 16) | rport)) >>> 0;
  for (let i = 0; i < local.length; i++) h = Math.imul(h ^ local[i]!, 0x01000193);
  for (let i = 0; i < remote.length; i++) h = Math.imul(h ^ remote[i]!, 0x01000193);
  h ^= h >>> 15;
  return h & 0x3fffffff;
}

export { ERROR, HANGUP, READABLE, WRITABLE };
