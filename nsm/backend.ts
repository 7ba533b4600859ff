/**
 * The socket backend: what the ServiceLib calls to operate sockets of a network stack. The
 * ServiceLib turns guest NQEs into calls on this interface and readiness from it into
 * completion / receive NQEs; the stack behind it is ours (`backend_tcpip.ts`: TcpStack +
 * UdpLayer) or the host kernel's (`--stack kernel`, sockets through libc).
 *
 * Shape (BSD non-blocking sockets, without exceptions):
 * - Every call is synchronous and non-blocking; waiting is the ServiceLib's job (it parks the
 *   request and retries when `drainReady` reports the socket).
 * - Results are numbers: `>= 0` success, `< 0` = `-errno` with Linux errno values (`Errno`
 *   below). No call throws on bad arguments or on a socket id it does not know (`-EBADF`);
 *   a throw is a bug of the backend.
 * - Socket ids are the backend's own positive integers, global over all guests; the ServiceLib
 *   maps each guest's ids onto them (guests never see backend ids).
 * - Addresses travel in a reusable `SockAddr` (the NQE's family/addr/port/aux), so the hot path
 *   allocates nothing.
 * - Readiness is edge-triggered and uses the NQE/poll(2) bits (`NqeEvent`: IN, OUT, ERR, HUP,
 *   RDHUP): `drainReady` hands out each socket whose bits may have changed since it was last
 *   handed out, with its bits now. After a report the caller retries its operations until they
 *   say -EAGAIN. `events(id)` is the level.
 * - Time: calls that can emit segments or arm timers take `now` (nanoseconds, `Instant`).
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";

/** Linux errno numbers used in results (negated) and in SO_ERROR. */
export const Errno = {
  /** Operation not permitted. */
  EPERM: 1,
  /** Bad socket id (unknown, closed, or not the caller's). */
  EBADF: 9,
  /** Try again: nothing to accept/receive, no send room (non-blocking). */
  EAGAIN: 11,
  /** Out of memory. */
  ENOMEM: 12,
  /** Bad data reference (outside the region, wrong half, ...). */
  EFAULT: 14,
  /** Invalid argument. */
  EINVAL: 22,
  /** Too many open sockets (per-guest limit). */
  EMFILE: 24,
  /** Write after shutdown(SHUT_WR) or after the connection ended. */
  EPIPE: 32,
  /** Unknown op. */
  ENOSYS: 38,
  /** Destination required (unconnected UDP send). */
  EDESTADDRREQ: 89,
  /** Datagram too long. */
  EMSGSIZE: 90,
  /** Unsupported socket option. */
  ENOPROTOOPT: 92,
  /** Unsupported protocol. */
  EPROTONOSUPPORT: 93,
  /** Operation not supported on this socket type (listen on UDP). */
  EOPNOTSUPP: 95,
  /** Unsupported address family. */
  EAFNOSUPPORT: 97,
  /** Address already in use. */
  EADDRINUSE: 98,
  /** Address not available locally / no ephemeral port left. */
  EADDRNOTAVAIL: 99,
  /** No route. */
  ENETUNREACH: 101,
  /** Connection aborted (request cancelled by close, or guest gone). */
  ECONNABORTED: 103,
  /** Connection reset by peer. */
  ECONNRESET: 104,
  /** No buffer space (per-guest memory limit). */
  ENOBUFS: 105,
  /** Already connected. */
  EISCONN: 106,
  /** Not connected. */
  ENOTCONN: 107,
  /** Connection timed out. */
  ETIMEDOUT: 110,
  /** Connection refused. */
  ECONNREFUSED: 111,
  /** Host unreachable. */
  EHOSTUNREACH: 113,
  /** Connect already in progress. */
  EALREADY: 114,
  /** Connect started (non-blocking). */
  EINPROGRESS: 115,
} as const;

/** Socket option levels (Linux numbers). */
export const SockLevel = {
  SOL_SOCKET: 1,
  IPPROTO_IP: 0,
  IPPROTO_TCP: 6,
  IPPROTO_IPV6: 41,
} as const;

/**
 * Socket option names (Linux numbers) the backends understand. Unknown ones: -ENOPROTOOPT.
 * TCP_INFO_* are this project's integer slices of TCP_INFO for GETSOCKOPT (one value per NQE):
 * they live in IPPROTO_TCP's private range (0x4e00+), not in Linux.
 */
export const SockOpt = {
  /** SOL_SOCKET: SO_REUSEADDR (0/1). */
  SO_REUSEADDR: 2,
  /** SOL_SOCKET: SO_ERROR (get only: pending error as positive errno, then cleared). */
  SO_ERROR: 4,
  /** SOL_SOCKET: SO_SNDBUF bytes. */
  SO_SNDBUF: 7,
  /** SOL_SOCKET: SO_RCVBUF bytes. */
  SO_RCVBUF: 8,
  /** SOL_SOCKET: SO_KEEPALIVE (0/1). */
  SO_KEEPALIVE: 9,
  /** SOL_SOCKET: SO_LINGER (0 off, else seconds + 1; 1 = linger 0 = RST on close). */
  SO_LINGER: 13,
  /** IPPROTO_TCP: TCP_NODELAY (0/1). */
  TCP_NODELAY: 1,
  /** IPPROTO_TCP: TCP_KEEPIDLE seconds. */
  TCP_KEEPIDLE: 4,
  /** IPPROTO_TCP: TCP_KEEPINTVL seconds. */
  TCP_KEEPINTVL: 5,
  /** IPPROTO_TCP: TCP_INFO state number (Linux TCP_ESTABLISHED=1 ... TCP_CLOSING=11). */
  TCP_INFO_STATE: 0x4e00,
  /** IPPROTO_TCP: congestion window, bytes. */
  TCP_INFO_CWND: 0x4e01,
  /** IPPROTO_TCP: retransmitted segments. */
  TCP_INFO_RETRANSMITS: 0x4e02,
  /** IPPROTO_TCP: smoothed RTT, microseconds (0 before a sample). */
  TCP_INFO_RTT_US: 0x4e03,
  /** IPPROTO_TCP: RTT variation, microseconds. */
  TCP_INFO_RTTVAR_US: 0x4e04,
  /** IPPROTO_TCP: send MSS, bytes. */
  TCP_INFO_MSS: 0x4e05,
  /** IPPROTO_TCP: peer's advertised window, bytes. */
  TCP_INFO_SND_WND: 0x4e06,
  /** IPPROTO_TCP: slow-start threshold, bytes (0 = unset/infinite). */
  TCP_INFO_SSTHRESH: 0x4e07,
  /** IPPROTO_TCP: bytes acknowledged by the peer. */
  TCP_INFO_BYTES_ACKED: 0x4e08,
} as const;

/** Address families (Linux AF_*), as in NQEs. */
export const Family = { INET: 2, INET6: 10 } as const;
/** Socket types (Linux SOCK_*). */
export const SockType = { STREAM: 1, DGRAM: 2 } as const;

/**
 * A socket address in the NQE's representation; reused by callers (no allocation per call).
 * `addr` holds 16 bytes: IPv4 in the first 4 (network order), IPv6 in all 16.
 */
export class SockAddr {
  /** 2 AF_INET, 10 AF_INET6, 0 none. */
  family = 0;
  /** Address bytes, network order. */
  readonly addr: Uint8Array = new Uint8Array(16);
  /** Port (host number). */
  port = 0;
  /** IPv6 scope id. */
  scopeId = 0;

  /** Copies another address into this one. */
  copyFrom(o: SockAddr): this {
    this.family = o.family;
    this.addr.set(o.addr);
    this.port = o.port;
    this.scopeId = o.scopeId;
    return this;
  }

  /** Sets an IPv4 address from 4 bytes (network order). */
  setV4(bytes: ArrayLike<number>, port: number): this {
    this.family = Family.INET;
    this.addr.fill(0);
    for (let i = 0; i < 4; i++) this.addr[i] = bytes[i]!;
    this.port = port;
    this.scopeId = 0;
    return this;
  }

  /** Resets to "no address". */
  clear(): this {
    this.family = 0;
    this.addr.fill(0);
    this.port = 0;
    this.scopeId = 0;
    return this;
  }
}

/** Statistics a backend may report per TCP connection (for GETSOCKOPT TCP_INFO_*). */
export interface BackendTcpInfo {
  /** Linux TCP state number (1 ESTABLISHED ... 10 LISTEN, 11 CLOSING). */
  readonly state: number;
  /** Congestion window, bytes. */
  readonly cwnd: number;
  /** Slow-start threshold, bytes (0 when unset). */
  readonly ssthresh: number;
  /** Smoothed RTT, microseconds (0 before a sample). */
  readonly rttUs: number;
  /** RTT variation, microseconds. */
  readonly rttVarUs: number;
  /** Retransmitted segments. */
  readonly retransmits: number;
  /** Send MSS. */
  readonly mss: number;
  /** Peer's window, bytes. */
  readonly sndWnd: number;
  /** Bytes acknowledged by the peer. */
  readonly bytesAcked: number;
}

/**
 * A network stack as seen by the ServiceLib. See the module comment for the conventions
 * (non-blocking, `-errno` results, edge-triggered readiness, reusable `SockAddr`).
 */
export interface SocketBackend {
  /** Name for logs and the `ready` line ("tcpip", "kernel"). */
  readonly name: string;

  /**
   * Creates a socket. `domain` 2/10, `type` 1 stream / 2 datagram, `protocol` 0, 6 or 17.
   * Returns the new id (> 0), or -EAFNOSUPPORT, -EPROTONOSUPPORT, -ENOBUFS.
   * A new socket reports no readiness until it is bound/connected/listening.
   */
  socket(domain: number, type: number, protocol: number): number;

  /**
   * Binds to a local address (`family` 0 or an unspecified address = any; port 0 = ephemeral).
   * 0, or -EADDRINUSE, -EADDRNOTAVAIL, -EINVAL (already bound / connected), -EBADF.
   * For TCP the binding takes effect at listen/connect.
   */
  bind(id: number, local: SockAddr): number;

  /** Starts listening (TCP). 0, or -EOPNOTSUPP (UDP), -EADDRINUSE, -EINVAL, -EBADF. */
  listen(id: number, backlog: number): number;

  /**
   * Takes one established connection of listener `id`: its new id, with the peer's address
   * written to `peer`; -EAGAIN when none is waiting; -EINVAL when not listening; -EBADF.
   */
  accept(id: number, peer: SockAddr): number;

  /**
   * Starts a connection (TCP: returns -EINPROGRESS; the socket reports OUT when established
   * or ERR with `soError` set when refused/timed out) or sets the default peer (UDP: 0).
   * Other results: -EISCONN, -EALREADY, -ENETUNREACH, -EADDRNOTAVAIL, -EAFNOSUPPORT, -EBADF.
   */
  connect(id: number, remote: SockAddr, now: Instant): number;

  /**
   * Queues stream bytes (TCP) or sends one datagram to the default peer (UDP). Returns bytes
   * taken (TCP: possibly fewer than `data.length`, 0 never; -EAGAIN when no room), or -EPIPE,
   * -ECONNRESET, -ETIMEDOUT, -ENOTCONN, -EDESTADDRREQ, -EMSGSIZE, -EBADF. `more` is a hint
   * like MSG_MORE. The backend copies `data` before returning.
   */
  send(id: number, data: Uint8Array, more: boolean, now: Instant): number;

  /**
   * Reads stream bytes into `dst`, at most `max` (default `dst.length`): n > 0, 0 at end of
   * stream, -EAGAIN when nothing is there yet, or the connection's error (-ECONNRESET,
   * -ETIMEDOUT), -ENOTCONN, -EBADF. (`max`: ServiceLib keeps one view per receive chunk and
   * fills it to what the guest's credit allows.)
   */
  recv(id: number, dst: Uint8Array, now: Instant, max?: number): number;

  /**
   * Sends one datagram to `dst` (UDP; TCP ignores `dst` and behaves like `send`). Returns the
   * datagram length, or -EMSGSIZE, -ENETUNREACH, -EAGAIN (no room on the link now), -EBADF.
   * An unbound UDP socket is bound to an ephemeral port first.
   */
  sendTo(id: number, data: Uint8Array, dst: SockAddr, now: Instant): number;

  /**
   * Receives one datagram (UDP) into `dst`, source written to `src`. Returns the original
   * datagram length (may exceed `dst.length`: the copy is truncated, the rest discarded), or
   * -EAGAIN when the queue is empty, -EBADF.
   */
  recvFrom(id: number, dst: Uint8Array, src: SockAddr): number;

  /** shutdown(2): how 0 SHUT_RD, 1 SHUT_WR (FIN after queued data), 2 both. 0, -ENOTCONN, -EBADF. */
  shutdown(id: number, how: number, now: Instant): number;

  /**
   * Closes the id (graceful: queued data is still sent, then FIN; unread data or SO_LINGER 0
   * turn it into a reset). The id is invalid afterwards and never reported again. 0 or -EBADF.
   */
  close(id: number, now: Instant): number;

  /** Resets the connection (RST) and frees the id at once (guest died, NSM shutting down). */
  abort(id: number, now: Instant): number;

  /** Sets an integer option (`SockLevel`/`SockOpt`). 0, -ENOPROTOOPT, -EINVAL, -EBADF. */
  setsockopt(id: number, level: number, name: number, value: number, now: Instant): number;

  /**
   * Reads an integer option: result >= 0 is the value (SO_ERROR: pending positive errno, then
   * cleared; TCP_INFO_*: statistics), or -ENOPROTOOPT, -EBADF.
   */
  getsockopt(id: number, level: number, name: number): number;

  /** Current readiness (NqeEvent bits, level-triggered); 0 for an unknown id. */
  events(id: number): number;

  /**
   * Bytes a stream `send` on `id` would take now: 0 when it would answer -EAGAIN,
   * `Number.MAX_SAFE_INTEGER` when the backend cannot tell (it then takes what it can). The
   * ServiceLib hands a guest's SEND over whole when it fits, so the bytes it passes are always
   * a whole chunk (a view it keeps) and never a piece of one (a new view per piece).
   */
  sendSpace(id: number): number;

  /**
   * Hands every socket whose readiness may have changed since it was last handed out to `fn`
   * once, with its bits now (NqeEvent: IN 0x1, OUT 0x4, ERR 0x8, HUP 0x10, RDHUP 0x2000);
   * returns the count. Costs O(ready). Closed ids are never handed out.
   */
  drainReady(fn: (id: number, events: number) => void): number;

  /** Local address of a socket into `out`: 0, or -EBADF / -EINVAL (not bound). */
  localAddr(id: number, out: SockAddr): number;

  /** Peer address of a connected socket into `out`: 0, or -ENOTCONN, -EBADF. */
  remoteAddr(id: number, out: SockAddr): number;

  /** TCP statistics of a connection, or null (UDP, not connected, unknown id). */
  tcpInfo(id: number): BackendTcpInfo | null;

  /**
   * Does the backend's own periodic work (the kernel backend polls its epoll set here; the
   * tcpip backend's stack is polled by the runtime's Interface, so it only scans UDP queues).
   * True when something happened.
   */
  poll(now: Instant): boolean;

  /** The next instant `poll` has timed work, or NEVER. */
  pollAt(): Instant;

  /**
   * Optional extra wake source for an idle driver loop (the kernel backend: its epoll fd turned
   * readable). Resolves when there may be work; the loop races it with the doorbells.
   */
  wait?(timeoutMs: number): Promise<boolean>;

  /** Releases everything (all sockets reset). Idempotent. */
  dispose(now: Instant): void;
}

/**
 * A map from socket ids (integers 0..2^53-1) to values that never shrinks: open addressing
 * with linear probing and backward-shift deletion (no tombstones). A `Map` that empties
 * rehashes into a new table on the delete, and a connection per transaction (TCP_CRR) takes
 * the socket tables from one entry to none and back on every connection: ~300 bytes of
 * garbage per table per connection. The table grows at half full and keeps its size.
 */
export class IntMap<V> {
  #keys: Float64Array;
  #vals: (V | undefined)[];
  #mask: number;
  #size = 0;

  /** An empty map with room for `capacity` entries before it grows (rounded up to 2^n). */
  constructor(capacity = 16) {
    let c = 16;
    while (c < 2 * capacity) c *= 2;
    this.#keys = new Float64Array(c).fill(-1);
    this.#vals = new Array<V | undefined>(c).fill(undefined);
    this.#mask = c - 1;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  #slot(key: number): number {
    // `key | 0`: the low 32 bits (ids are sequential, so the low bits differ).
    return Math.imul(key | 0, 0x9e3779b1) >>> 0 & this.#mask;
  }

  /** Index of `key`, or -1. */
  #find(key: number): number {
    const keys = this.#keys, mask = this.#mask;
    for (let i = this.#slot(key);; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) return i;
      if (k === -1) return -1;
    }
  }

  /** The value of `key`, or undefined. */
  get(key: number): V | undefined {
    const i = this.#find(key);
    return i < 0 ? undefined : this.#vals[i];
  }

  /** True when `key` is present. */
  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  /** Sets `key` (an integer in 0..2^53-1) to `value`. */
  set(key: number, value: V): this {
    if (!Number.isSafeInteger(key) || key < 0) {
      throw new RangeError(`IntMap key ${key} is not an integer in 0..2^53-1`);
    }
    const keys = this.#keys, mask = this.#mask;
    let i = this.#slot(key);
    for (;; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) {
        this.#vals[i] = value;
        return this;
      }
      if (k === -1) break;
    }
    keys[i] = key;
    this.#vals[i] = value;
    if (++this.#size * 2 > keys.length) this.#grow();
    return this;
  }

  /** Removes `key`; true when it was present. */
  delete(key: number): boolean {
    let i = this.#find(key);
    if (i < 0) return false;
    const keys = this.#keys, vals = this.#vals, mask = this.#mask;
    // Backward shift: move later entries of the probe run into the hole when their home slot
    // does not lie (cyclically) between the hole and their position.
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const k = keys[j]!;
      if (k === -1) break;
      const home = this.#slot(k);
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = k;
        vals[i] = vals[j];
        i = j;
      }
    }
    keys[i] = -1;
    vals[i] = undefined;
    this.#size--;
    return true;
  }

  #grow(): void {
    const oldKeys = this.#keys, oldVals = this.#vals;
    const c = oldKeys.length * 2;
    this.#keys = new Float64Array(c).fill(-1);
    this.#vals = new Array<V | undefined>(c).fill(undefined);
    this.#mask = c - 1;
    this.#size = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      if (oldKeys[i] !== -1) this.set(oldKeys[i]!, oldVals[i] as V);
    }
  }

  /** The keys (a snapshot: the map may change while the caller walks it). */
  keys(): number[] {
    const out: number[] = [];
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== -1) out.push(keys[i]!);
    return out;
  }

  /** The values (a snapshot: the map may change while the caller walks it). */
  values(): V[] {
    const out: V[] = [];
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== -1) out.push(this.#vals[i] as V);
    return out;
  }
}
