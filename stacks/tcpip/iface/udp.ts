/**
 * UDP sockets (RFC 768) over the interface's `IpOutput`, and the protocol-17 handler that
 * demultiplexes received datagrams to them.
 *
 * Each socket has a bounded receive queue (bytes and datagrams) held in one preallocated ring,
 * so a flood cannot grow memory: datagrams that do not fit are dropped and counted
 * ("socket-queue-full"). Datagrams for a port nobody listens on are counted ("no-listener")
 * and reported to the `onNoListener` hook, which the interface answers with a rate-limited ICMP
 * port unreachable.
 *
 * Sending outside `poll()` uses the interface's last known time for neighbour bookkeeping; in
 * the simulator call `sim.wake(node)` afterwards so the interface flushes and arms its timers.
 *
 * @module
 */

import type { Instant } from "../../time.ts";
import { NEVER } from "../../time.ts";
import { IpAddress } from "../wire/address.ts";
import {
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  transportChecksumOk,
  writeTransportChecksum,
} from "../wire/checksum.ts";
import { DropCounters } from "../wire/drop.ts";
import { UDP_HEADER_LEN, UdpRepr } from "../wire/udp.ts";
import type { IcmpErrorInfo } from "./icmp.ts";
import type { IpOutput, IpProtocolHandler, IpReceiveInfo } from "./protocol.ts";

/** IP protocol number of UDP. */
export const IP_PROTOCOL_UDP = 17;
/** First ephemeral port (IANA dynamic range, RFC 6335). */
export const EPHEMERAL_FIRST = 49152;
/** Last ephemeral port. */
export const EPHEMERAL_LAST = 65535;
/** Largest UDP payload: 65535 minus the UDP and smallest IP header. */
export const UDP_MAX_PAYLOAD = 65535 - 8 - 20;

/** Thrown by `bind` when the port (for an overlapping address) is taken. */
export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number, address: string) {
    super(
      `UDP port ${port} is already bound on ${address}; close that socket or bind port 0 ` +
        `for an ephemeral port`,
    );
    this.name = "PortInUseError";
    this.port = port;
  }
}

/** Thrown by `bind(…, 0)` when every ephemeral port is in use. */
export class PortsExhaustedError extends Error {
  constructor() {
    super(
      `all UDP ephemeral ports ${EPHEMERAL_FIRST}-${EPHEMERAL_LAST} are bound; close sockets`,
    );
    this.name = "PortsExhaustedError";
  }
}

/** Thrown when a closed socket is used. */
export class SocketClosedError extends Error {
  constructor() {
    super("the UDP socket is closed; bind a new one");
    this.name = "SocketClosedError";
  }
}

/** Thrown by `sendTo` for arguments no network state can make valid. */
export class UdpSendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UdpSendError";
  }
}

/** Result of `recvFrom`. */
export interface UdpReceived {
  /** Bytes copied into the caller's buffer. */
  readonly length: number;
  /** The sender's address and port. */
  readonly address: IpAddress;
  readonly port: number;
  /** True when the datagram was longer than the buffer (the rest is discarded, as with recvfrom). */
  readonly truncated: boolean;
}

/** Options of a socket. */
export interface UdpSocketOptions {
  /** Receive queue bytes (64 KiB). */
  rxBytes?: number;
  /** Receive queue datagrams (64). */
  rxDatagrams?: number;
}

/** Counters of one socket. */
export interface UdpSocketStats {
  rxDatagrams: number;
  rxBytes: number;
  rxDropped: number;
  txDatagrams: number;
  txBytes: number;
  /** sendTo calls that found no route or no room (returned false). */
  txFailed: number;
  icmpErrors: number;
}

/** A UDP socket. Create with `UdpLayer.bind`. */
export class UdpSocket {
  /** Local address, or null for any. */
  readonly localAddress: IpAddress | null;
  /** Local port. */
  readonly localPort: number;
  /** Counters. */
  readonly stats: UdpSocketStats = {
    rxDatagrams: 0,
    rxBytes: 0,
    rxDropped: 0,
    txDatagrams: 0,
    txBytes: 0,
    txFailed: 0,
    icmpErrors: 0,
  };
  /** The last ICMP error reported for a datagram this socket sent (copied), or null. */
  lastError: { kind: IcmpErrorInfo["kind"]; from: IpAddress; port: number } | null = null;

  private readonly layer: UdpLayer;
  private closed = false;
  // Receive ring: bytes wrap around; per-datagram metadata in parallel arrays.
  private readonly ring: Uint8Array;
  private ringHead = 0;
  private ringUsed = 0;
  private readonly lens: Int32Array;
  private readonly ports: Uint16Array;
  private readonly versions: Uint8Array;
  private readonly addrs: Uint8Array;
  private qHead = 0;
  private qCount = 0;

  /** Use `UdpLayer.bind`. */
  constructor(
    layer: UdpLayer,
    address: IpAddress | null,
    port: number,
    options: UdpSocketOptions,
  ) {
    this.layer = layer;
    this.localAddress = address;
    this.localPort = port;
    const n = options.rxDatagrams ?? 64;
    this.ring = new Uint8Array(options.rxBytes ?? 64 * 1024);
    this.lens = new Int32Array(n);
    this.ports = new Uint16Array(n);
    this.versions = new Uint8Array(n);
    this.addrs = new Uint8Array(16 * n);
  }

  /** Datagrams waiting in the receive queue. */
  get pending(): number {
    return this.qCount;
  }

  /** True after `close()`. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends `data` to `address`:`port`. Returns false (counted in `stats.txFailed`) when there
   * is no route or the link has no room now; throws for a closed socket, a payload over
   * 65507 bytes, a bad port, or an address family the bound address cannot send from.
   */
  sendTo(data: Uint8Array, address: IpAddress, port: number): boolean {
    if (this.closed) throw new SocketClosedError();
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new UdpSendError(`destination port ${port} is not in 1..65535`);
    }
    if (data.length > UDP_MAX_PAYLOAD) {
      throw new UdpSendError(
        `a UDP payload is at most ${UDP_MAX_PAYLOAD} bytes, not ${data.length}; split the data`,
      );
    }
    const local = this.localAddress;
    if (local !== null && local.version !== address.version) {
      throw new UdpSendError(
        `the socket is bound to IPv${local.version} ${local}; it cannot send to ${address}`,
      );
    }
    const ok = this.layer.send(this, local, data, address, port);
    if (ok) {
      this.stats.txDatagrams++;
      this.stats.txBytes += data.length;
    } else this.stats.txFailed++;
    return ok;
  }

  /**
   * Copies the oldest queued datagram into `into` and returns its length and sender, or null
   * when the queue is empty. A datagram longer than `into` is truncated (`truncated` true).
   */
  recvFrom(into: Uint8Array): UdpReceived | null {
    if (this.closed) throw new SocketClosedError();
    if (this.qCount === 0) return null;
    const i = this.qHead;
    const len = this.lens[i]!;
    const n = Math.min(len, into.length);
    this.copyOut(into, n);
    this.ringHead = (this.ringHead + len) % this.ring.length;
    this.ringUsed -= len;
    const v = this.versions[i]!;
    const address = IpAddress.fromBytes(this.addrs.subarray(16 * i, 16 * i + (v === 4 ? 4 : 16)));
    const port = this.ports[i]!;
    this.qHead = (i + 1) % this.lens.length;
    this.qCount--;
    return { length: n, address, port, truncated: n < len };
  }

  /** Unbinds the socket and discards queued datagrams. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.qCount = 0;
    this.ringUsed = 0;
    this.layer.unbind(this);
  }

  /** Queues a received datagram; false when it does not fit (caller counts the drop). */
  enqueue(version: 4 | 6, src: Uint8Array, srcPort: number, payload: Uint8Array): boolean {
    const len = payload.length;
    if (this.qCount === this.lens.length || this.ringUsed + len > this.ring.length) {
      this.stats.rxDropped++;
      return false;
    }
    const i = (this.qHead + this.qCount) % this.lens.length;
    this.lens[i] = len;
    this.ports[i] = srcPort;
    this.versions[i] = version;
    this.addrs.set(src, 16 * i);
    // Copy into the ring, wrapping once at most.
    const cap = this.ring.length;
    const tail = (this.ringHead + this.ringUsed) % cap;
    const first = Math.min(len, cap - tail);
    if (first === len) this.ring.set(payload, tail);
    else {
      this.ring.set(payload.subarray(0, first), tail);
      this.ring.set(payload.subarray(first), 0);
    }
    this.ringUsed += len;
    this.qCount++;
    this.stats.rxDatagrams++;
    this.stats.rxBytes += len;
    return true;
  }

  private copyOut(into: Uint8Array, n: number): void {
    const cap = this.ring.length;
    const first = Math.min(n, cap - this.ringHead);
    into.set(this.ring.subarray(this.ringHead, this.ringHead + first), 0);
    if (first < n) into.set(this.ring.subarray(0, n - first), first);
  }
}

/** Options of the UDP layer. */
export interface UdpLayerOptions {
  /** Where drops are counted (a private set when omitted). */
  drops?: DropCounters;
  /** Called for a datagram to a port nobody listens on (the interface sends ICMP). */
  onNoListener?: (info: IpReceiveInfo, now: Instant) => void;
  /** Default socket options. */
  socket?: UdpSocketOptions;
}

/** The UDP protocol handler: owns the port table. Register it with the interface. */
export class UdpLayer implements IpProtocolHandler {
  readonly protocol = IP_PROTOCOL_UDP;
  /** Drop counters (shared with the interface when it created the layer). */
  readonly drops: DropCounters;
  /** Datagrams received (valid) and sent by all sockets. */
  readonly counters = { rx: 0, tx: 0 };
  private readonly ip: IpOutput;
  private readonly onNoListener: ((info: IpReceiveInfo, now: Instant) => void) | null;
  private readonly socketOptions: UdpSocketOptions;
  private readonly byPort = new Map<number, UdpSocket[]>();
  private nextEphemeral = EPHEMERAL_FIRST;
  private readonly repr = new UdpRepr();

  constructor(ip: IpOutput, options: UdpLayerOptions = {}) {
    this.ip = ip;
    this.drops = options.drops ?? new DropCounters();
    this.onNoListener = options.onNoListener ?? null;
    this.socketOptions = options.socket ?? {};
  }

  /**
   * Binds a socket to `address` (null = any address of either family) and `port` (0 = an
   * ephemeral port). Throws `PortInUseError` when another socket holds the port for an
   * overlapping address, `PortsExhaustedError` when no ephemeral port is free.
   */
  bind(address: IpAddress | null, port: number, options: UdpSocketOptions = {}): UdpSocket {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UdpSendError(`port ${port} is not in 0..65535`);
    }
    if (port === 0) port = this.ephemeral(address);
    else if (this.conflicts(address, port)) {
      throw new PortInUseError(port, address === null ? "any address" : address.toString());
    }
    const s = new UdpSocket(this, address, port, { ...this.socketOptions, ...options });
    let list = this.byPort.get(port);
    if (list === undefined) this.byPort.set(port, list = []);
    list.push(s);
    return s;
  }

  /** Number of bound sockets. */
  get socketCount(): number {
    let n = 0;
    for (const l of this.byPort.values()) n += l.length;
    return n;
  }

  /** Handles one received UDP datagram. Never throws. */
  receive(info: IpReceiveInfo, payload: Uint8Array, now: Instant): void {
    const r = this.repr;
    const bad = r.parse(payload);
    if (bad !== undefined) {
      this.drops.count(bad);
      return;
    }
    if (!info.checksumVerified) {
      const seg = r.length === payload.length ? payload : payload.subarray(0, r.length);
      if (r.checksum === 0) {
        // Zero means "no checksum" in IPv4 only; IPv6 requires one (RFC 8200 8.1).
        if (info.version === 6) {
          this.drops.count("bad-checksum");
          return;
        }
      } else {
        const sum = info.version === 4
          ? pseudoHeaderSumV4(read32(info.src), read32(info.dst), IP_PROTOCOL_UDP, r.length)
          : pseudoHeaderSumV6(info.src, info.dst, IP_PROTOCOL_UDP, r.length);
        if (!transportChecksumOk(seg, sum)) {
          this.drops.count("bad-checksum");
          return;
        }
      }
    }
    const s = this.lookup(info.dst, r.dstPort);
    if (s === null) {
      this.drops.count("no-listener");
      if (this.onNoListener !== null) this.onNoListener(info, now);
      return;
    }
    if (!s.enqueue(info.version, info.src, r.srcPort, r.payload)) {
      this.drops.count("socket-queue-full");
      return;
    }
    this.counters.rx++;
  }

  /** UDP has no timers. */
  poll(_now: Instant): void {}

  /** UDP has no timers. */
  pollAt(): Instant {
    return NEVER;
  }

  /** Records an ICMP error about a datagram we sent on the socket that sent it. */
  icmpError(error: IcmpErrorInfo, _now: Instant): void {
    if (error.protocol !== IP_PROTOCOL_UDP || error.srcPort < 0) return;
    const s = this.lookup(error.src, error.srcPort);
    if (s === null) return;
    s.stats.icmpErrors++;
    s.lastError = {
      kind: error.kind,
      from: IpAddress.fromBytes(error.dst),
      port: error.dstPort,
    };
  }

  /** Sends one datagram (used by `UdpSocket.sendTo`). */
  send(
    socket: UdpSocket,
    local: IpAddress | null,
    data: Uint8Array,
    dst: IpAddress,
    dstPort: number,
  ): boolean {
    const src = local ?? this.ip.sourceFor(dst);
    if (src === null) {
      this.drops.count("no-route");
      return false;
    }
    const len = UDP_HEADER_LEN + data.length;
    const buf = this.ip.beginPacket(src, dst, IP_PROTOCOL_UDP, len, 0);
    if (buf === null) return false;
    const r = this.repr;
    r.srcPort = socket.localPort;
    r.dstPort = dstPort;
    r.emit(buf, data.length);
    buf.set(data, UDP_HEADER_LEN);
    const seg = buf.subarray(0, len);
    const sum = dst.version === 4
      ? pseudoHeaderSumV4(src.v4, dst.v4, IP_PROTOCOL_UDP, len)
      : pseudoHeaderSumV6(src.bytes, dst.bytes, IP_PROTOCOL_UDP, len);
    writeTransportChecksum(seg, 6, sum);
    this.ip.commitPacket();
    this.counters.tx++;
    return true;
  }

  /** Removes a closed socket from the port table. */
  unbind(socket: UdpSocket): void {
    const list = this.byPort.get(socket.localPort);
    if (list === undefined) return;
    const i = list.indexOf(socket);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byPort.delete(socket.localPort);
  }

  /** The socket for a destination address/port: an exact address bind wins over any. */
  private lookup(dst: Uint8Array, port: number): UdpSocket | null {
    const list = this.byPort.get(port);
    if (list === undefined) return null;
    let wildcard: UdpSocket | null = null;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.localAddress === null) wildcard = s;
      else if (s.localAddress.equalsBytes(dst)) return s;
    }
    return wildcard;
  }

  private conflicts(address: IpAddress | null, port: number): boolean {
    const list = this.byPort.get(port);
    if (list === undefined) return false;
    for (const s of list) {
      const a = s.localAddress;
      if (a === null || address === null || a.equals(address)) return true;
    }
    return false;
  }

  private ephemeral(address: IpAddress | null): number {
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < span; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p === EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
      if (!this.conflicts(address, p)) return p;
    }
    throw new PortsExhaustedError();
  }
}

function read32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}
