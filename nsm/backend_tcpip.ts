/**
 * `SocketBackend` over our own stack: `TcpStack` for streams and `UdpLayer` for datagrams.
 *
 * TcpStack creates a socket id only at listen/connect/accept, so this backend hands out its own
 * ids at `socket()` and keeps the bind address and options until then. TCP readiness comes
 * from `TcpStack.drainReady` (O(ready)); UDP sockets have no ready list, so the few open ones
 * are checked for newly queued datagrams on every `drainReady` (their receive counter moved).
 * Typed stack errors become `-errno` through their `code` (`ECONNREFUSED` ...).
 *
 * @module
 */

import { type Instant, MICROSECOND, NEVER, SECOND } from "../stacks/time.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import type { UdpLayer, UdpSocket } from "../stacks/tcpip/iface/udp.ts";
import { ERROR, HANGUP, READABLE, WRITABLE } from "../stacks/tcpip/tcp/tcb.ts";
import { type TcpStack, WOULD_BLOCK } from "../stacks/tcpip/tcp/stack.ts";
import type { TcpSocketOptions } from "../stacks/tcpip/tcp/config.ts";
import {
  type BackendTcpInfo,
  Errno,
  Family,
  IntMap,
  SockAddr,
  type SocketBackend,
  SockLevel,
  SockOpt,
  SockType,
} from "./backend.ts";
import { NqeEvent } from "./nqe.ts";

const ERRNO_BY_CODE: Record<string, number> = {
  ECONNREFUSED: Errno.ECONNREFUSED,
  ECONNRESET: Errno.ECONNRESET,
  ETIMEDOUT: Errno.ETIMEDOUT,
  EADDRINUSE: Errno.EADDRINUSE,
  ENOTCONN: Errno.ENOTCONN,
  EAGAIN: Errno.EAGAIN,
  EBADF: Errno.EBADF,
  EINVAL: Errno.EINVAL,
  EPIPE: Errno.EPIPE,
  ENETUNREACH: Errno.ENETUNREACH,
  EADDRNOTAVAIL: Errno.EADDRNOTAVAIL,
  EHOSTUNREACH: Errno.EHOSTUNREACH,
};

/** A stack exception as a positive errno (EINVAL for anything unexpected). */
export function errnoOf(e: unknown): number {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && ERRNO_BY_CODE[code] !== undefined) return ERRNO_BY_CODE[code]!;
    switch (e.name) {
      case "PortInUseError":
        return Errno.EADDRINUSE;
      case "PortsExhaustedError":
        return Errno.EADDRNOTAVAIL;
      case "SocketClosedError":
        return Errno.EBADF;
    }
  }
  return Errno.EINVAL;
}

const LINUX_TCP_STATE: Record<string, number> = {
  ESTABLISHED: 1,
  "SYN-SENT": 2,
  "SYN-RECEIVED": 3,
  "FIN-WAIT-1": 4,
  "FIN-WAIT-2": 5,
  "TIME-WAIT": 6,
  CLOSED: 7,
  "CLOSE-WAIT": 8,
  "LAST-ACK": 9,
  LISTEN: 10,
  CLOSING: 11,
};

/** Linux TCP state number of an RFC 9293 state name (either "-" or "_" spelling). */
export function linuxTcpState(name: string): number {
  return LINUX_TCP_STATE[name.replace(/_/g, "-").toUpperCase()] ?? 0;
}

const enum Kind {
  TcpNew,
  TcpListen,
  TcpConn,
  Udp,
}

/** The options of a socket nobody set any on (copied on the first write). */
const NO_OPTS: Partial<TcpSocketOptions> = Object.freeze({});

class Rec {
  id: number;
  kind: Kind;
  family: number;
  tcpId = -1;
  udp: UdpSocket | null = null;
  readonly bound = new SockAddr();
  isBound = false;
  readonly peer = new SockAddr();
  hasPeer = false;
  /** Options set before connect/listen; `NO_OPTS` (shared, frozen) until the first one. */
  opts: Partial<TcpSocketOptions> = NO_OPTS;
  /** Pending error for SO_ERROR (positive errno), 0 none. */
  soError = 0;
  /** The stack's connection error was handed out through SO_ERROR already. */
  errTaken = false;
  /** UDP: receive counter at the last report. */
  lastRx = 0;
  readShut = false;
  /** In the backend's own ready list. */
  queued = false;
  constructor(id: number, kind: Kind, family: number) {
    this.id = id;
    this.kind = kind;
    this.family = family;
  }

  /** Makes a released record a new socket's (see `TcpipBackend.#newRec`). */
  reset(id: number, kind: Kind, family: number): this {
    this.id = id;
    this.kind = kind;
    this.family = family;
    this.tcpId = -1;
    this.udp = null;
    this.bound.clear();
    this.isBound = false;
    this.peer.clear();
    this.hasPeer = false;
    this.opts = NO_OPTS;
    this.soError = 0;
    this.errTaken = false;
    this.lastRx = 0;
    this.readShut = false;
    return this;
  }
}

/** Released socket records kept for reuse (a Rec is 5 objects: it and two SockAddrs). */
const REC_POOL_MAX = 256;

function toIp(a: SockAddr): IpAddress | null {
  if (a.family === Family.INET) return IpAddress.fromBytes(a.addr.subarray(0, 4));
  if (a.family === Family.INET6) return IpAddress.fromBytes(a.addr);
  return null;
}

/** True when `a` holds `ip` (same family and bytes). */
function sameIp(ip: IpAddress, a: SockAddr): boolean {
  const b = ip.bytes, x = a.addr;
  if (ip.version === 4) {
    return a.family === Family.INET && x[0] === b[0] && x[1] === b[1] && x[2] === b[2] &&
      x[3] === b[3];
  }
  if (a.family !== Family.INET6) return false;
  for (let i = 0; i < 16; i++) if (x[i] !== b[i]) return false;
  return true;
}

function fromIp(ip: IpAddress, port: number, out: SockAddr): void {
  out.family = ip.version === 4 ? Family.INET : Family.INET6;
  out.addr.fill(0);
  out.addr.set(ip.bytes);
  out.port = port;
  out.scopeId = 0;
}

function tcpEvents(ev: number): number {
  let r = 0;
  if (ev & READABLE) r |= NqeEvent.IN;
  if (ev & WRITABLE) r |= NqeEvent.OUT;
  if (ev & ERROR) r |= NqeEvent.ERR;
  if (ev & HANGUP) r |= NqeEvent.HUP;
  return r;
}

/** Options of `TcpipBackend`. */
export interface TcpipBackendOptions {
  /** Most sockets open at once over all guests (default 1 << 20). */
  readonly maxSockets?: number;
}

/** `SocketBackend` over `TcpStack` + `UdpLayer`; see the module comment. */
export class TcpipBackend implements SocketBackend {
  /** Name for logs. */
  readonly name = "tcpip";
  readonly #tcp: TcpStack;
  readonly #udp: UdpLayer;
  // IntMaps: a Map that empties rehashes into a new table, once per TCP_CRR connection each.
  readonly #recs = new IntMap<Rec>();
  readonly #byTcp = new IntMap<Rec>();
  readonly #udpRecs = new Set<Rec>();
  readonly #maxSockets: number;
  readonly #rand = new Uint32Array(1);
  #nextId = 1;
  /** Released TCP records for reuse (see `#newRec`). */
  readonly #recPool: Rec[] = [];
  /** The last remote of `connect()` (IpAddress is immutable: one per peer, not per call). */
  #lastRemote: IpAddress | null = null;

  /** Wraps `tcp` and `udp` (both registered on the same interface). */
  constructor(tcp: TcpStack, udp: UdpLayer, options: TcpipBackendOptions = {}) {
    this.#tcp = tcp;
    this.#udp = udp;
    this.#maxSockets = options.maxSockets ?? (1 << 20);
  }

  /**
   * The TcpStack socket id behind backend socket `id` when it is a TCP connection (connecting
   * or connected), else -1 (UDP, listener, not connected, unknown): for the operator tools.
   */
  tcpIdOf(id: number): number {
    const r = this.#recs.get(id);
    return r !== undefined && r.kind === Kind.TcpConn && r.tcpId >= 0 ? r.tcpId : -1;
  }

  /**
   * Sets the congestion control of TCP socket `id`: swapped live on a connection, remembered
   * for a socket not connected yet. Returns 0 or -errno (-EINVAL for an unknown name).
   */
  setCongestion(id: number, name: string, now: Instant): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind === Kind.Udp) return -Errno.ENOPROTOOPT;
    if (r.tcpId < 0) {
      if (r.opts === NO_OPTS) r.opts = {};
      r.opts.congestionControl = name;
      return 0;
    }
    try {
      this.#tcp.setOption(r.tcpId, "congestionControl", name, now);
    } catch (e) {
      return -errnoOf(e);
    }
    return 0;
  }

  /** Open backend sockets. */
  get socketCount(): number {
    return this.#recs.size;
  }

  #newId(): number {
    // Ids wrap at 2^31 skipping live ones: a long-running NSM never reuses a live id.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= 0x7fff_ffff ? 1 : id + 1;
      if (!this.#recs.has(id)) return id;
    }
  }

  /**
   * A record for a new socket: a released one when there is one. A connection per transaction
   * (TCP_CRR) made a Rec, two SockAddrs and their byte arrays per connection.
   */
  #newRec(kind: Kind, family: number): Rec {
    const id = this.#newId();
    const r = this.#recPool.pop();
    return r !== undefined ? r.reset(id, kind, family) : new Rec(id, kind, family);
  }

  socket(domain: number, type: number, protocol: number): number {
    if (domain !== Family.INET && domain !== Family.INET6) return -Errno.EAFNOSUPPORT;
    let kind: Kind;
    if (type === SockType.STREAM && (protocol === 0 || protocol === 6)) kind = Kind.TcpNew;
    else if (type === SockType.DGRAM && (protocol === 0 || protocol === 17)) kind = Kind.Udp;
    else return -Errno.EPROTONOSUPPORT;
    if (this.#recs.size >= this.#maxSockets) return -Errno.ENOBUFS;
    const r = this.#newRec(kind, domain);
    this.#recs.set(r.id, r);
    if (kind === Kind.Udp) this.#udpRecs.add(r);
    return r.id;
  }

  bind(id: number, local: SockAddr): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.isBound || r.kind === Kind.TcpConn || r.kind === Kind.TcpListen) return -Errno.EINVAL;
    if (local.family !== 0 && local.family !== Family.INET && local.family !== Family.INET6) {
      return -Errno.EAFNOSUPPORT;
    }
    const ip = toIp(local);
    if (r.kind === Kind.Udp) {
      try {
        r.udp = this.#udp.bind(ip === null || ip.isUnspecified ? null : ip, local.port);
      } catch (e) {
        return -errnoOf(e);
      }
      r.bound.copyFrom(local);
      r.bound.port = r.udp.localPort;
    } else r.bound.copyFrom(local);
    r.isBound = true;
    return 0;
  }

  listen(id: number, backlog: number): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind === Kind.Udp) return -Errno.EOPNOTSUPP;
    if (r.kind === Kind.TcpListen) {
      return 0; // Linux allows listen() again (changes the backlog); ours keeps the first.
    }
    if (r.kind !== Kind.TcpNew) return -Errno.EINVAL;
    const ip = r.isBound ? toIp(r.bound) : null;
    const addr = ip === null || ip.isUnspecified ? null : ip;
    const bl = backlog < 1 ? 1 : backlog > 65535 ? 65535 : backlog;
    let port = r.isBound ? r.bound.port : 0;
    const fixed = port !== 0;
    const cfg = this.#tcp.config;
    for (let attempt = 0; attempt < 64; attempt++) {
      if (!fixed) {
        crypto.getRandomValues(this.#rand);
        port = cfg.ephemeralLow + (this.#rand[0]! % (cfg.ephemeralHigh - cfg.ephemeralLow + 1));
      }
      try {
        r.tcpId = this.#tcp.listen(addr, port, bl, r.opts);
        r.kind = Kind.TcpListen;
        this.#byTcp.set(r.tcpId, r);
        if (!r.isBound) r.bound.family = r.family;
        r.bound.port = port;
        r.isBound = true;
        return 0;
      } catch (e) {
        const errno = errnoOf(e);
        if (fixed || errno !== Errno.EADDRINUSE) return -errno;
      }
    }
    return -Errno.EADDRNOTAVAIL;
  }

  accept(id: number, peer: SockAddr): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind !== Kind.TcpListen) return -Errno.EINVAL;
    let tid: number;
    try {
      tid = this.#tcp.accept(r.tcpId);
    } catch (e) {
      return -errnoOf(e);
    }
    if (tid < 0) return -Errno.EAGAIN;
    if (this.#recs.size >= this.#maxSockets) {
      this.#tcp.abort(tid, 0);
      return -Errno.ENOBUFS;
    }
    const c = this.#newRec(Kind.TcpConn, r.family);
    c.tcpId = tid;
    this.#recs.set(c.id, c);
    this.#byTcp.set(tid, c);
    try {
      const ra = this.#tcp.remoteAddress(tid);
      fromIp(ra.address, ra.port, peer);
      c.peer.copyFrom(peer);
      c.hasPeer = true;
    } catch {
      peer.clear();
    }
    return c.id;
  }

  connect(id: number, remote: SockAddr, now: Instant): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    const ip = this.#remoteIp(remote);
    if (ip === null) return -Errno.EAFNOSUPPORT;
    if (r.kind === Kind.Udp) {
      r.peer.copyFrom(remote);
      r.hasPeer = true;
      return 0;
    }
    if (r.kind === Kind.TcpConn) return r.hasPeer ? -Errno.EISCONN : -Errno.EALREADY;
    if (r.kind === Kind.TcpListen) return -Errno.EINVAL;
    if (remote.port < 1 || remote.port > 65535) return -Errno.EINVAL;
    this.#lastRemote = ip;
    const local = r.isBound ? toIp(r.bound) : null;
    let o: Partial<TcpSocketOptions> & { localPort?: number; local?: IpAddress } = r.opts;
    if (r.isBound) {
      // TcpStack.connect() only reads its options: the unbound common case passes r.opts as is.
      o = { ...r.opts };
      if (local !== null && !local.isUnspecified) o.local = local;
      if (r.bound.port !== 0) o.localPort = r.bound.port;
    }
    try {
      r.tcpId = this.#tcp.connect(ip, remote.port, now, o);
    } catch (e) {
      return -errnoOf(e);
    }
    r.kind = Kind.TcpConn;
    r.peer.copyFrom(remote);
    r.hasPeer = true;
    this.#byTcp.set(r.tcpId, r);
    return -Errno.EINPROGRESS;
  }

  /** `toIp(a)`, the previous connect's address object when `a` names it again. */
  #remoteIp(a: SockAddr): IpAddress | null {
    const last = this.#lastRemote;
    if (last !== null && sameIp(last, a)) return last;
    return toIp(a);
  }

  send(id: number, data: Uint8Array, _more: boolean, now: Instant): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind === Kind.Udp) {
      if (!r.hasPeer) return -Errno.EDESTADDRREQ;
      return this.sendTo(id, data, r.peer, now);
    }
    if (r.kind !== Kind.TcpConn) return -Errno.ENOTCONN;
    try {
      const n = this.#tcp.send(r.tcpId, data, now);
      return n > 0 || data.length === 0 ? n : -Errno.EAGAIN;
    } catch (e) {
      return -errnoOf(e);
    }
  }

  recv(id: number, dst: Uint8Array, now: Instant, max: number = dst.length): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind !== Kind.TcpConn) return r.kind === Kind.Udp ? -Errno.EOPNOTSUPP : -Errno.ENOTCONN;
    if (r.readShut) return 0;
    try {
      const n = this.#tcp.recv(r.tcpId, dst, now, max);
      return n === WOULD_BLOCK ? -Errno.EAGAIN : n;
    } catch (e) {
      return -errnoOf(e);
    }
  }

  sendTo(id: number, data: Uint8Array, dst: SockAddr, now: Instant): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind !== Kind.Udp) return this.send(id, data, false, now);
    const ip = toIp(dst);
    if (ip === null) return -Errno.EDESTADDRREQ;
    if (dst.port < 1 || dst.port > 65535) return -Errno.EINVAL;
    if (data.length > 65507) return -Errno.EMSGSIZE;
    if (r.udp === null) {
      try {
        r.udp = this.#udp.bind(null, 0);
      } catch (e) {
        return -errnoOf(e);
      }
      r.bound.family = r.family;
      r.bound.port = r.udp.localPort;
      r.isBound = true;
    }
    try {
      return r.udp.sendTo(data, ip, dst.port) ? data.length : -Errno.EAGAIN;
    } catch (e) {
      const errno = errnoOf(e);
      return -(errno === Errno.EINVAL ? Errno.EAFNOSUPPORT : errno);
    }
  }

  recvFrom(id: number, dst: Uint8Array, src: SockAddr): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind !== Kind.Udp) return -Errno.EOPNOTSUPP;
    if (r.udp === null) return -Errno.EAGAIN;
    const got = r.udp.recvFrom(dst);
    if (got === null) return -Errno.EAGAIN;
    fromIp(got.address, got.port, src);
    // UdpSocket does not keep the original length of a truncated datagram: report one more
    // than was copied so callers still see "truncated".
    return got.truncated ? got.length + 1 : got.length;
  }

  shutdown(id: number, how: number, now: Instant): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (how < 0 || how > 2) return -Errno.EINVAL;
    if (r.kind !== Kind.TcpConn) return -Errno.ENOTCONN;
    if (how === 0 || how === 2) r.readShut = true;
    if (how === 1 || how === 2) {
      try {
        this.#tcp.shutdown(r.tcpId, now);
      } catch (e) {
        return -errnoOf(e);
      }
    }
    return 0;
  }

  close(id: number, now: Instant): number {
    return this.#release(id, now, false);
  }

  abort(id: number, now: Instant): number {
    return this.#release(id, now, true);
  }

  #release(id: number, now: Instant, reset: boolean): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    this.#recs.delete(id);
    if (r.udp !== null) r.udp.close();
    if (r.kind === Kind.Udp) this.#udpRecs.delete(r);
    if (r.tcpId >= 0) {
      this.#byTcp.delete(r.tcpId);
      try {
        if (reset) this.#tcp.abort(r.tcpId, now);
        else this.#tcp.close(r.tcpId, now);
      } catch {
        // already gone inside the stack (e.g. failed connection): nothing to release
      }
    }
    // Not while it sits in #ownReady: drainReady() skips it there by its (old) id.
    if (r.kind !== Kind.Udp && !r.queued && this.#recPool.length < REC_POOL_MAX) {
      this.#recPool.push(r);
    }
    return 0;
  }

  setsockopt(id: number, level: number, name: number, value: number, now: Instant): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (!Number.isFinite(value) || value < 0) return -Errno.EINVAL;
    let key: keyof TcpSocketOptions;
    let v: number | boolean;
    if (level === SockLevel.SOL_SOCKET) {
      switch (name) {
        case SockOpt.SO_REUSEADDR:
          key = "reuseAddress";
          v = value !== 0;
          break;
        case SockOpt.SO_KEEPALIVE:
          key = "keepAlive";
          v = value !== 0;
          break;
        case SockOpt.SO_SNDBUF:
          key = "sendBufferSize";
          v = clampBuf(value);
          break;
        case SockOpt.SO_RCVBUF:
          key = "receiveBufferSize";
          v = clampBuf(value);
          break;
        case SockOpt.SO_LINGER:
          key = "linger";
          v = value === 0 ? -1 : value - 1;
          break;
        default:
          return -Errno.ENOPROTOOPT;
      }
    } else if (level === SockLevel.IPPROTO_TCP) {
      switch (name) {
        case SockOpt.TCP_NODELAY:
          key = "noDelay";
          v = value !== 0;
          break;
        case SockOpt.TCP_KEEPIDLE:
          if (value < 1) return -Errno.EINVAL;
          key = "keepIdle";
          v = value * SECOND;
          break;
        case SockOpt.TCP_KEEPINTVL:
          if (value < 1) return -Errno.EINVAL;
          key = "keepInterval";
          v = value * SECOND;
          break;
        default:
          return -Errno.ENOPROTOOPT;
      }
    } else return -Errno.ENOPROTOOPT;
    if (r.kind === Kind.Udp) return key === "reuseAddress" ? 0 : -Errno.ENOPROTOOPT;
    if (r.tcpId < 0) {
      if (r.opts === NO_OPTS) r.opts = {};
      (r.opts as Record<string, unknown>)[key] = v;
      return 0;
    }
    try {
      this.#tcp.setOption(r.tcpId, key, v as never, now);
    } catch (e) {
      return -errnoOf(e);
    }
    return 0;
  }

  getsockopt(id: number, level: number, name: number): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (level === SockLevel.SOL_SOCKET && name === SockOpt.SO_ERROR) {
      this.#collectError(r);
      const e = r.soError;
      r.soError = 0;
      if (e !== 0) r.errTaken = true;
      return e;
    }
    if (level === SockLevel.IPPROTO_TCP && name >= SockOpt.TCP_INFO_STATE) {
      const i = this.tcpInfo(id);
      if (i === null) return -Errno.ENOTCONN;
      switch (name) {
        case SockOpt.TCP_INFO_STATE:
          return i.state;
        case SockOpt.TCP_INFO_CWND:
          return i.cwnd;
        case SockOpt.TCP_INFO_RETRANSMITS:
          return i.retransmits;
        case SockOpt.TCP_INFO_RTT_US:
          return i.rttUs;
        case SockOpt.TCP_INFO_RTTVAR_US:
          return i.rttVarUs;
        case SockOpt.TCP_INFO_MSS:
          return i.mss;
        case SockOpt.TCP_INFO_SND_WND:
          return i.sndWnd;
        case SockOpt.TCP_INFO_SSTHRESH:
          return i.ssthresh;
        case SockOpt.TCP_INFO_BYTES_ACKED:
          return i.bytesAcked;
      }
      return -Errno.ENOPROTOOPT;
    }
    if (r.kind === Kind.Udp) return -Errno.ENOPROTOOPT;
    // Not connected: r.opts over the stack's defaults, read field by field (SO_SNDBUF is asked
    // for every new socket; a merged copy was an object per socket).
    const o: Partial<TcpSocketOptions> = r.tcpId >= 0 ? this.#tcp.getOptions(r.tcpId) : r.opts;
    const d: Partial<TcpSocketOptions> = r.tcpId >= 0 ? o : this.#tcp.config.socket;
    if (level === SockLevel.SOL_SOCKET) {
      switch (name) {
        case SockOpt.SO_REUSEADDR:
          return (o.reuseAddress ?? d.reuseAddress) ? 1 : 0;
        case SockOpt.SO_KEEPALIVE:
          return (o.keepAlive ?? d.keepAlive) ? 1 : 0;
        case SockOpt.SO_SNDBUF:
          return o.sendBufferSize ?? d.sendBufferSize ?? 0;
        case SockOpt.SO_RCVBUF:
          return o.receiveBufferSize ?? d.receiveBufferSize ?? 0;
        case SockOpt.SO_LINGER: {
          const l = o.linger ?? d.linger;
          return l === undefined || l < 0 ? 0 : l + 1;
        }
      }
    } else if (level === SockLevel.IPPROTO_TCP) {
      switch (name) {
        case SockOpt.TCP_NODELAY:
          return (o.noDelay ?? d.noDelay) ? 1 : 0;
        case SockOpt.TCP_KEEPIDLE:
          return Math.round((o.keepIdle ?? d.keepIdle ?? 0) / SECOND);
        case SockOpt.TCP_KEEPINTVL:
          return Math.round((o.keepInterval ?? d.keepInterval ?? 0) / SECOND);
      }
    }
    return -Errno.ENOPROTOOPT;
  }

  #collectError(r: Rec): void {
    if (r.soError !== 0 || r.tcpId < 0 || r.errTaken) return;
    try {
      const e = this.#tcp.error(r.tcpId);
      if (e !== null) r.soError = errnoOf(e);
    } catch {
      // socket gone inside the stack
    }
  }

  sendSpace(id: number): number {
    const r = this.#recs.get(id);
    if (r === undefined || r.kind !== Kind.TcpConn) return Number.MAX_SAFE_INTEGER;
    return this.#tcp.sendSpace(r.tcpId);
  }

  events(id: number): number {
    const r = this.#recs.get(id);
    if (r === undefined) return 0;
    return this.#eventsOf(r);
  }

  #eventsOf(r: Rec): number {
    if (r.kind === Kind.Udp) {
      return NqeEvent.OUT | (r.udp !== null && r.udp.pending > 0 ? NqeEvent.IN : 0);
    }
    if (r.tcpId < 0) return 0;
    try {
      let ev = tcpEvents(this.#tcp.events(r.tcpId));
      if (r.kind === Kind.TcpConn && this.#tcp.tcbOf(r.tcpId)?.rcvEof) ev |= NqeEvent.RDHUP;
      return ev;
    } catch {
      return 0;
    }
  }

  // TcpStack has one ready list. Sockets the NSM's own services opened (echo/discard) share it
  // with guests' sockets, so whoever polls first pulls everything and sorts it: ours to
  // #ownReady, theirs to #foreignReady (see `servicesView`).
  #pullTcp(): void {
    this.#tcp.drainReady(this.#sort);
  }

  readonly #sort = (tid: number, ev: number): void => {
    const r = this.#byTcp.get(tid);
    if (r === undefined) {
      this.#foreignReady.push(tid, ev);
      return;
    }
    if (r.queued) return;
    r.queued = true;
    this.#ownReady.push(r);
  };

  readonly #ownReady: Rec[] = [];
  readonly #foreignReady: number[] = [];

  /**
   * The TcpStack as other users of the same stack (the NSM's echo/discard `Services`) must see
   * it: every method is the stack's, except `drainReady`, which hands out only the sockets that
   * are not guests' (a guest socket's readiness is ServiceLib's).
   */
  servicesView(): TcpStack {
    const tcp = this.#tcp;
    const foreign = this.#foreignReady;
    const drain = (fn: (id: number, events: number) => void): number => {
      this.#pullTcp();
      const f = this.#foreignReady;
      const n = f.length >> 1;
      for (let i = 0; i < f.length; i += 2) fn(f[i]!, f[i + 1]!);
      while (f.length > 0) f.pop(); // keeps the capacity: `length = 0` drops the store
      return n;
    };
    return new Proxy(tcp, {
      get(target, key): unknown {
        if (key === "drainReady") return drain;
        if (key === "readyCount") return target.readyCount + (foreign.length >> 1);
        const v = Reflect.get(target, key, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  }

  drainReady(fn: (id: number, events: number) => void): number {
    let n = 0;
    this.#pullTcp();
    const own = this.#ownReady;
    for (let i = 0; i < own.length; i++) {
      const r = own[i]!;
      r.queued = false;
      if (!this.#recs.has(r.id)) continue; // closed meanwhile
      n++;
      fn(r.id, this.#eventsOf(r));
    }
    while (own.length > 0) own.pop(); // keeps the capacity: `length = 0` drops the store
    // Called every driver pass: a Set iterator is an allocation, so none without UDP sockets.
    if (this.#udpRecs.size === 0) return n;
    for (const r of this.#udpRecs) {
      const u = r.udp;
      if (u === null) continue;
      const rx = u.stats.rxDatagrams;
      if (rx !== r.lastRx) {
        r.lastRx = rx;
        if (u.pending > 0) {
          n++;
          fn(r.id, NqeEvent.IN | NqeEvent.OUT);
        }
      }
    }
    return n;
  }

  localAddr(id: number, out: SockAddr): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (r.kind === Kind.TcpConn) {
      // The Tcb's fields rather than localAddress(), whose result is an object per call (asked
      // once per connection, for the CONNECT completion).
      const t = this.#tcp.tcbOf(r.tcpId);
      if (t !== null) {
        fromIp(t.localAddr, t.localPort, out);
        return 0;
      }
      try {
        const a = this.#tcp.localAddress(r.tcpId); // throws the stack's reason (-errno below)
        fromIp(a.address, a.port, out);
        return 0;
      } catch (e) {
        return -errnoOf(e);
      }
    }
    if (!r.isBound) return -Errno.EINVAL;
    out.copyFrom(r.bound);
    if (out.family === 0) out.family = r.family;
    return 0;
  }

  remoteAddr(id: number, out: SockAddr): number {
    const r = this.#recs.get(id);
    if (r === undefined) return -Errno.EBADF;
    if (!r.hasPeer) return -Errno.ENOTCONN;
    out.copyFrom(r.peer);
    return 0;
  }

  tcpInfo(id: number): BackendTcpInfo | null {
    const r = this.#recs.get(id);
    if (r === undefined || r.kind !== Kind.TcpConn) return null;
    try {
      const i = this.#tcp.info(r.tcpId);
      return {
        state: linuxTcpState(i.state),
        cwnd: i.cwnd,
        ssthresh: Number.isFinite(i.ssthresh) ? i.ssthresh : 0,
        rttUs: i.srtt < 0 ? 0 : Math.round(i.srtt / MICROSECOND),
        rttVarUs: Math.round(i.rttvar / MICROSECOND),
        retransmits: i.retransmits,
        mss: i.mss,
        sndWnd: i.sndWnd,
        bytesAcked: i.bytesAcked,
      };
    } catch {
      return null;
    }
  }

  poll(_now: Instant): boolean {
    return false; // the runtime's Interface polls the stack
  }

  pollAt(): Instant {
    return NEVER;
  }

  dispose(now: Instant): void {
    for (const id of this.#recs.keys()) this.abort(id, now);
  }
}

function clampBuf(v: number): number {
  return v < 4096 ? 4096 : v > 64 * 1024 * 1024 ? 64 * 1024 * 1024 : Math.floor(v);
}
