/**
 * `KernelBackend`: the `SocketBackend` of `--stack kernel`. It serves the same NQEs as our
 * stack with the host kernel's sockets (NetKernel's kernel-stack NSM), as the baseline for
 * comparisons and as proof that the NQE boundary decouples guests from the stack.
 *
 * Deno gives promise-based sockets (`Deno.listen`/`Deno.connect`/`Deno.listenDatagram`), not
 * file descriptors, so the backend bridges them to the synchronous, non-blocking, readiness
 * model of `SocketBackend`:
 *
 * - Every TCP connection has two bounded byte rings (SO_RCVBUF / SO_SNDBUF, 256 KiB default).
 *   A reader task keeps one `conn.read()` outstanding into the free tail of the receive ring
 *   and stops when the ring is full, so a guest that stops reading fills our ring, then the
 *   kernel's receive buffer, and the kernel closes the TCP window (real backpressure, bounded
 *   memory). A writer task drains the send ring with `conn.write()`; `send()` copies into the
 *   ring and answers -EAGAIN when it is full, so a peer that stops reading turns OUT off.
 * - Listeners keep one `accept()` outstanding while fewer than `backlog` connections wait;
 *   beyond that the kernel's own backlog holds them.
 * - UDP: one `receive()` outstanding per socket into a 64 KiB scratch buffer, datagrams copied
 *   into a bounded queue (drops counted when full, as a kernel drops when SO_RCVBUF is full);
 *   sends are queued (bounded) and written by a sender task.
 * - Whenever a task changes a socket's state it queues the id on the ready list (edge-triggered,
 *   each id once until drained) and wakes the driver loop (`onWake`, `wait()`).
 * - Errors from Deno (`Deno.errors.*` with `code` "ECONNREFUSED", ... or "(os error N)") map
 *   to Linux errno values (`errnoOf`).
 *
 * What Deno does not expose, and how each case is answered:
 * - No socket file descriptor, so no FFI setsockopt/getsockopt on it: TCP_INFO (cwnd, RTT,
 *   retransmits, ... -> -ENOPROTOOPT; `tcpInfo` gives the state only), TCP_CONGESTION,
 *   TCP_KEEPIDLE/KEEPINTVL and SO_LINGER 0 -> -ENOPROTOOPT. What is knowable is counted per
 *   socket (`counters`: bytes handed to / read from the kernel, datagrams).
 * - No RST from a Deno.Conn: `abort` closes it (the kernel sends FIN, or RST only when its
 *   receive queue still holds unread bytes). A connection made through node:net (below) is
 *   reset properly.
 * - No bind before connect in Deno.connect: a TCP socket bound to a specific address or port
 *   connects through `node:net` (`localAddress`/`localPort`), ~4x slower per byte.
 * - No separate bind and listen: `bind` probes the address by listening and closing at once,
 *   so EADDRINUSE and the ephemeral port are known at bind time; `listen` re-opens it (a
 *   tiny window in which another process could take the port: listen then says EADDRINUSE).
 * - Addresses Deno reports carry no IPv6 scope id: the backend passes the guest's scope id to
 *   Deno (`fe80::1%3`) and keeps it on the socket's addresses, but an accepted link-local
 *   peer's address comes without one. Connect timeouts are the kernel's (SYN retries,
 *   ~2 min); SO_RCVBUF/SO_SNDBUF size our rings, not the kernel's buffers.
 * - UDP needs `--unstable-net` (`Deno.listenDatagram`); without it SOCKET(SOCK_DGRAM) answers
 *   -EPROTONOSUPPORT. A UDP `connect` filters received datagrams in the backend (Deno's
 *   datagram sockets cannot connect), so ICMP errors of unconnected sends are not reported.
 *
 * @module
 */

import { type Instant, NEVER } from "../stacks/time.ts";
import {
  type BackendTcpInfo,
  Errno,
  Family,
  SockAddr,
  type SocketBackend,
  SockLevel,
  SockOpt,
  SockType,
} from "./backend.ts";
import { libc } from "../stacks/sys/libc.ts";
import { NqeEvent } from "./nqe.ts";
import type { WaitableLink } from "./runtime.ts";
import net from "node:net";

/** Linux EIO: an I/O error Deno reported without a known errno. */
export const EIO = 5;

/** Tunables of `KernelBackend`. */
export interface KernelBackendOptions {
  /** Receive ring bytes per TCP connection (SO_RCVBUF default), 256 KiB. */
  readonly rcvBuf?: number;
  /** Send ring bytes per TCP connection (SO_SNDBUF default), 256 KiB. */
  readonly sndBuf?: number;
  /** Datagrams queued per UDP socket in each direction, 256. */
  readonly udpQueue?: number;
  /** Sockets at once (-ENOBUFS beyond), 65 536. */
  readonly maxSockets?: number;
  /** How long a closed connection may keep flushing its send ring, ms (default 30 000). */
  readonly lingerMs?: number;
  /** Called (from Deno's event loop) whenever a socket's readiness may have changed. */
  readonly onWake?: () => void;
}

/** accept() errors after which a listener retries (descriptor or memory exhaustion). */
const RETRY_ACCEPT: ReadonlySet<number> = new Set([Errno.EMFILE, 23, Errno.ENOBUFS, Errno.ENOMEM]);
/** UDP receive errors that report an ICMP error and leave the socket usable. */
const UDP_SOFT_ERRORS: ReadonlySet<number> = new Set([
  Errno.ECONNREFUSED,
  Errno.EHOSTUNREACH,
  Errno.ENETUNREACH,
  Errno.EMSGSIZE,
]);
/** Storage a connection's rings start with (they double up to SO_RCVBUF/SO_SNDBUF). */
const INITIAL_RING = 8192;
/** Smallest and largest SO_RCVBUF/SO_SNDBUF accepted. */
const MIN_BUF = 4096;
const MAX_BUF = 64 * 1024 * 1024;
/** Largest UDP payload over IPv4 (65535 - 20 - 8) and IPv6 (65535 - 8, no jumbograms). */
const UDP_MAX_V4 = 65507;
const UDP_MAX_V6 = 65527;
/** Linux TCP state numbers (include/net/tcp_states.h) for TCP_INFO_STATE. */
const TCP_ESTABLISHED = 1;
const TCP_SYN_SENT = 2;
const TCP_FIN_WAIT1 = 4;
const TCP_CLOSE = 7;
const TCP_CLOSE_WAIT = 8;
const TCP_LISTEN = 10;

const ERRNO_BY_CODE: Readonly<Record<string, number>> = {
  EPERM: Errno.EPERM,
  EACCES: 13,
  EAGAIN: Errno.EAGAIN,
  EWOULDBLOCK: Errno.EAGAIN,
  EINVAL: Errno.EINVAL,
  EMFILE: Errno.EMFILE,
  ENFILE: 23,
  EPIPE: Errno.EPIPE,
  EMSGSIZE: Errno.EMSGSIZE,
  EAFNOSUPPORT: Errno.EAFNOSUPPORT,
  EADDRINUSE: Errno.EADDRINUSE,
  EADDRNOTAVAIL: Errno.EADDRNOTAVAIL,
  ENETUNREACH: Errno.ENETUNREACH,
  ECONNABORTED: Errno.ECONNABORTED,
  ECONNRESET: Errno.ECONNRESET,
  ENOBUFS: Errno.ENOBUFS,
  ENOTCONN: Errno.ENOTCONN,
  ETIMEDOUT: Errno.ETIMEDOUT,
  ECONNREFUSED: Errno.ECONNREFUSED,
  EHOSTUNREACH: Errno.EHOSTUNREACH,
  ENETDOWN: 100,
  EHOSTDOWN: 112,
};

const ERRNO_BY_CLASS: Readonly<Record<string, number>> = {
  ConnectionRefused: Errno.ECONNREFUSED,
  ConnectionReset: Errno.ECONNRESET,
  ConnectionAborted: Errno.ECONNABORTED,
  NotConnected: Errno.ENOTCONN,
  AddrInUse: Errno.EADDRINUSE,
  AddrNotAvailable: Errno.EADDRNOTAVAIL,
  BrokenPipe: Errno.EPIPE,
  TimedOut: Errno.ETIMEDOUT,
  NetworkUnreachable: Errno.ENETUNREACH,
  PermissionDenied: Errno.EPERM,
  WouldBlock: Errno.EAGAIN,
};

/**
 * Linux errno (positive) of an error thrown by Deno's socket calls: its `code`
 * ("ECONNREFUSED"), else the "(os error N)" of its message, else its class
 * (`Deno.errors.ConnectionReset`), else EIO.
 */
export function errnoOf(e: unknown): number {
  if (e !== null && typeof e === "object") {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      const n = ERRNO_BY_CODE[code];
      if (n !== undefined) return n;
    }
    const msg = (e as { message?: unknown }).message;
    if (typeof msg === "string") {
      const m = /\(os error (\d+)\)/.exec(msg);
      if (m !== null) return Number(m[1]);
    }
    const cls = (e as { name?: unknown }).name;
    if (typeof cls === "string") {
      const n = ERRNO_BY_CLASS[cls];
      if (n !== undefined) return n;
    }
  }
  return EIO;
}

/** Text form of a `SockAddr`'s address for Deno ("198.18.0.1", "fd00::1"). */
export function sockAddrHost(a: SockAddr): string {
  const b = a.addr;
  if (a.family === Family.INET) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero words (RFC 5952) so the text is canonical.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return w.join(":");
  return `${w.slice(0, best).join(":")}::${w.slice(best + bestLen).join(":")}`;
}

/**
 * The host text for Deno's calls: `sockAddrHost` plus `%scope` for an IPv6 address with a
 * scope id (Deno accepts a numeric interface index there; link-local peers need it).
 */
export function hostFor(a: SockAddr): string {
  const h = sockAddrHost(a);
  return a.family === Family.INET6 && a.scopeId !== 0 ? `${h}%${a.scopeId}` : h;
}

/** Parses Deno's address text into `out`; false when it is not a literal IP address. */
export function parseHostInto(host: string, port: number, out: SockAddr): boolean {
  out.clear();
  out.port = port;
  let h = host;
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  const pct = h.indexOf("%");
  if (pct >= 0) h = h.slice(0, pct);
  if (!h.includes(":")) {
    const p = h.split(".");
    if (p.length !== 4) return false;
    for (let i = 0; i < 4; i++) {
      const v = Number(p[i]);
      if (!Number.isInteger(v) || v < 0 || v > 255 || p[i] === "") return false;
      out.addr[i] = v;
    }
    out.family = Family.INET;
    return true;
  }
  // IPv6, possibly with an embedded IPv4 tail (::ffff:1.2.3.4).
  let tail: number[] = [];
  const lastColon = h.lastIndexOf(":");
  if (h.slice(lastColon + 1).includes(".")) {
    const v4 = new SockAddr();
    if (!parseHostInto(h.slice(lastColon + 1), 0, v4)) return false;
    tail = [(v4.addr[0]! << 8) | v4.addr[1]!, (v4.addr[2]! << 8) | v4.addr[3]!];
    h = h.slice(0, lastColon + 1) + "0";
  }
  const halves = h.split("::");
  if (halves.length > 2) return false;
  const parse = (s: string): number[] | null => {
    if (s === "") return [];
    const r: number[] = [];
    for (const x of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(x)) return null;
      r.push(parseInt(x, 16));
    }
    return r;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === null || rest === null) return false;
  if (tail.length > 0) {
    // The "0" placeholder we appended stands for the two IPv4 words.
    (rest.length > 0 || halves.length === 2 ? rest : head).pop();
  }
  const words = halves.length === 2
    ? [...head, ...new Array<number>(8 - head.length - rest.length - tail.length).fill(0), ...rest]
    : head;
  words.push(...tail);
  if (words.length !== 8) return false;
  for (let i = 0; i < 8; i++) {
    out.addr[2 * i] = words[i]! >> 8;
    out.addr[2 * i + 1] = words[i]! & 0xff;
  }
  out.family = Family.INET6;
  return true;
}

function isUnspecified(a: SockAddr): boolean {
  if (a.family === 0) return true;
  const n = a.family === Family.INET ? 4 : 16;
  for (let i = 0; i < n; i++) if (a.addr[i] !== 0) return false;
  return true;
}

/**
 * A bounded byte ring. Its storage is handed to Deno's read/write ops as contiguous spans
 * (`freeSpan`/`dataSpan`), so bytes are copied once in each direction. It starts small and
 * doubles on demand up to `limit`, so thousands of idle connections cost little memory.
 */
export class ByteRing {
  #buf: Uint8Array;
  #head = 0;
  #length = 0;
  #limit: number;

  /** A ring of at most `limit` bytes, starting with `initial` bytes of storage. */
  constructor(limit: number, initial = limit) {
    this.#limit = limit;
    this.#buf = new Uint8Array(Math.max(1, Math.min(initial, limit)));
  }
  /** Bytes the ring holds at most. */
  get capacity(): number {
    return this.#limit;
  }
  /** Bytes of storage allocated now. */
  get allocated(): number {
    return this.#buf.length;
  }
  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }
  /** Bytes that still fit (0 when a lowered limit is below what is queued). */
  get free(): number {
    return this.#limit > this.#length ? this.#limit - this.#length : 0;
  }
  /**
   * Changes the limit (SO_RCVBUF/SO_SNDBUF on a live connection). Lowering it keeps what is
   * queued and takes nothing more until the ring drains below it; storage is never shrunk.
   */
  setLimit(limit: number): void {
    this.#limit = limit;
  }
  /**
   * Grows the storage to hold `need` bytes (doubling, capped at the limit), moving the data to
   * the front. Safe while a write holds a `dataSpan()` of the old storage (it is left intact
   * and the bytes keep their order); not while a read into a `freeSpan()` is outstanding.
   */
  #grow(need: number): void {
    let cap = this.#buf.length;
    if (need <= cap || cap >= this.#limit) return;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(Math.min(cap, this.#limit));
    const first = Math.min(this.#length, this.#buf.length - this.#head);
    next.set(this.#buf.subarray(this.#head, this.#head + first));
    next.set(this.#buf.subarray(0, this.#length - first), first);
    this.#buf = next;
    this.#head = 0;
  }
  /** Grows the storage (up to the limit) to hold `need` bytes; see `#grow` for when it is safe. */
  reserve(need: number): void {
    this.#grow(need);
  }
  /** Copies as much of `src` as fits; returns the count. */
  push(src: Uint8Array): number {
    const n = Math.min(src.length, this.free);
    this.#grow(this.#length + n);
    const cap = this.#buf.length;
    const tail = (this.#head + this.#length) % cap;
    const first = Math.min(n, cap - tail);
    this.#buf.set(src.subarray(0, first), tail);
    if (n > first) this.#buf.set(src.subarray(first, n), 0);
    this.#length += n;
    return n;
  }
  /** Moves up to `dst.length` bytes out; returns the count. */
  pop(dst: Uint8Array): number {
    const n = Math.min(dst.length, this.#length);
    const cap = this.#buf.length;
    const first = Math.min(n, cap - this.#head);
    dst.set(this.#buf.subarray(this.#head, this.#head + first));
    if (n > first) dst.set(this.#buf.subarray(0, n - first), first);
    this.consume(n);
    return n;
  }
  /**
   * The contiguous free bytes after the data (empty when full). Grows the storage first when
   * it is full below the limit, so call it only when no read into a span is outstanding.
   */
  freeSpan(): Uint8Array {
    if (this.#length === this.#buf.length) this.#grow(this.#length * 2);
    const cap = this.#buf.length;
    const free = this.free;
    if (this.#length === cap || free === 0) return this.#buf.subarray(0, 0);
    const tail = (this.#head + this.#length) % cap;
    const end = tail >= this.#head ? cap : this.#head;
    return this.#buf.subarray(tail, Math.min(tail + free, end));
  }
  /** Marks `n` bytes written into `freeSpan()` as data. */
  commit(n: number): void {
    this.#length += n;
  }
  /** The contiguous data bytes at the head (empty when empty). */
  dataSpan(): Uint8Array {
    const end = Math.min(this.#head + this.#length, this.#buf.length);
    return this.#buf.subarray(this.#head, end);
  }
  /**
   * Drops `n` bytes from the head. The head never jumps, even when the ring empties: a read
   * may be outstanding into `freeSpan()`, and its bytes must land where `commit` expects them.
   */
  consume(n: number): void {
    this.#length -= n;
    this.#head = (this.#head + n) % this.#buf.length;
  }
  /**
   * Moves an empty ring's head to 0 so the next `freeSpan()` is the whole buffer. Only when no
   * read into a span is outstanding.
   */
  rewind(): void {
    if (this.#length === 0) this.#head = 0;
  }
  /** Drops everything. */
  clear(): void {
    this.#head = 0;
    this.#length = 0;
  }
}

/**
 * What the backend uses of a connection: `Deno.TcpConn` has it all; `NodeTcpConn` adapts a
 * `node:net` socket for the cases Deno.connect cannot do (a bound local address or port).
 */
export interface StreamConn {
  /** Resolves to the bytes read into `p`, or null at EOF. */
  read(p: Uint8Array): Promise<number | null>;
  /** Resolves to the bytes of `p` written. */
  write(p: Uint8Array): Promise<number>;
  /** shutdown(SHUT_WR). */
  closeWrite(): Promise<void>;
  /** Closes the connection. */
  close(): void;
  /** TCP_NODELAY. */
  setNoDelay(noDelay?: boolean): void;
  /** SO_KEEPALIVE. */
  setKeepAlive(keepAlive?: boolean): void;
  /** Local address. */
  readonly localAddr: Deno.Addr;
  /** Peer address. */
  readonly remoteAddr: Deno.Addr;
  /** Resets the connection (RST, SO_LINGER 0) when the implementation can; absent otherwise. */
  reset?(): void;
}

/**
 * A `node:net` socket behind the `StreamConn` shape (promise reads and writes). Used only for
 * connects from a bound address/port (node's `localAddress`/`localPort`), because node's
 * sockets move bytes about 4x slower than Deno.Conn here; in exchange they can send a RST.
 */
export class NodeTcpConn implements StreamConn {
  readonly #sock: net.Socket;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #eof = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;
  /** Bytes node may buffer for us before the socket is paused (bounds memory). */
  static readonly HIGH_WATER = 256 * 1024;

  /** Wraps a connected socket. */
  constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.on("data", (b: Uint8Array) => {
      this.#queue.push(b);
      this.#queued += b.length;
      if (this.#queued >= NodeTcpConn.HIGH_WATER) sock.pause();
      this.#signal();
    });
    sock.on("end", () => {
      this.#eof = true;
      this.#signal();
    });
    sock.on("error", (e: unknown) => {
      this.#error ??= e;
      this.#signal();
    });
    sock.on("close", () => {
      this.#eof = true;
      this.#signal();
    });
  }

  /**
   * Connects from `local` to `remote` (bind before connect). Rejects with node's error, whose
   * `code` ("ECONNREFUSED", "EADDRINUSE", ...) `errnoOf` maps.
   */
  static connect(
    o: { host: string; port: number; localAddress: string; localPort?: number },
    signal: AbortSignal,
  ): Promise<NodeTcpConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ ...o, allowHalfOpen: true });
      const onError = (e: unknown): void => reject(e);
      sock.once("error", onError);
      const onAbort = (): void => {
        sock.destroy();
        reject(new Deno.errors.Interrupted("connect aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      sock.once("connect", () => {
        sock.off("error", onError);
        signal.removeEventListener("abort", onAbort);
        resolve(new NodeTcpConn(sock));
      });
    });
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** See `StreamConn.read`. */
  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#queue.length > 0) {
        let n = 0;
        while (n < p.length && this.#queue.length > 0) {
          const head = this.#queue[0]!;
          const k = Math.min(head.length, p.length - n);
          p.set(head.subarray(0, k), n);
          n += k;
          if (k === head.length) this.#queue.shift();
          else this.#queue[0] = head.subarray(k);
        }
        this.#queued -= n;
        if (this.#queued < NodeTcpConn.HIGH_WATER && this.#sock.isPaused()) this.#sock.resume();
        return n;
      }
      if (this.#error !== null) throw this.#error;
      if (this.#eof) return null;
      await new Promise<void>((r) => this.#wake = r);
    }
  }

  /** See `StreamConn.write`. */
  write(p: Uint8Array): Promise<number> {
    if (this.#error !== null) return Promise.reject(this.#error);
    // node keeps a reference until flushed: the caller must not change `p` before this
    // resolves (the backend's send ring consumes bytes only after the write completed).
    return new Promise((resolve, reject) => {
      this.#sock.write(p, (e?: Error | null) => e ? reject(e) : resolve(p.length));
    });
  }

  /** See `StreamConn.closeWrite`. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#sock.end(resolve));
  }

  /** See `StreamConn.close`. */
  close(): void {
    this.#sock.destroy();
    this.#eof = true;
    this.#signal();
  }

  /** See `StreamConn.reset`: RST (node sets SO_LINGER 0). */
  reset(): void {
    this.#sock.resetAndDestroy();
    this.#eof = true;
    this.#signal();
  }

  /** See `StreamConn.setNoDelay`. */
  setNoDelay(noDelay = true): void {
    this.#sock.setNoDelay(noDelay);
  }

  /** See `StreamConn.setKeepAlive`. */
  setKeepAlive(keepAlive = true): void {
    this.#sock.setKeepAlive(keepAlive);
  }

  /** See `StreamConn.localAddr`. */
  get localAddr(): Deno.NetAddr {
    return {
      transport: "tcp",
      hostname: this.#sock.localAddress ?? "",
      port: this.#sock.localPort ?? 0,
    };
  }

  /** See `StreamConn.remoteAddr`. */
  get remoteAddr(): Deno.NetAddr {
    return {
      transport: "tcp",
      hostname: this.#sock.remoteAddress ?? "",
      port: this.#sock.remotePort ?? 0,
    };
  }
}

/** Per-socket byte counters the kernel backend can know (it cannot see the kernel's TCP state). */
export interface KernelSocketCounters {
  /** Bytes handed to the kernel (`conn.write` completed). Not "acked": the kernel may still hold them. */
  readonly bytesSent: number;
  /** Bytes read from the kernel. */
  readonly bytesReceived: number;
  /** Datagrams received (UDP). */
  readonly datagramsReceived: number;
  /** Datagrams dropped because the socket's queue was full (UDP). */
  readonly datagramsDropped: number;
  /** Datagrams sent (UDP). */
  readonly datagramsSent: number;
}

/** Backend-wide counters. */
export interface KernelBackendStats {
  /** Sockets created. */
  created: number;
  /** Connections accepted. */
  accepted: number;
  /** Connections established by connect. */
  connected: number;
  /** Connects that failed. */
  connectFailed: number;
  /** Connections closed with bytes still unread by the guest (Linux would RST; we cannot). */
  closedWithUnread: number;
  /** Closed connections whose send ring was still flushing when the linger time ran out. */
  lingerExpired: number;
  /** UDP datagrams dropped (queue full). */
  udpDropped: number;
  /** Connects from a bound address/port (through node:net). */
  boundConnects: number;
  /** RSTs sent by abort() (only node:net connections can). */
  resetsSent: number;
  /** Unexpected exceptions caught in the I/O tasks (a bug; tests assert 0). */
  internalErrors: number;
}

const enum St {
  New,
  Bound,
  Listening,
  Connecting,
  Connected,
  Failed,
  Closed,
}

interface Datagram {
  data: Uint8Array;
  from: SockAddr;
}

interface OutDatagram {
  data: Uint8Array;
  host: string;
  port: number;
}

class KSock {
  state: St = St.New;
  local: SockAddr | null = null;
  remote: SockAddr | null = null;
  queued = false;
  soError = 0;
  // options
  noDelay = false;
  keepAlive = false;
  reuseAddr = false;
  lingerOpt = 0;
  rcvBuf: number;
  sndBuf: number;
  // tcp connection
  conn: StreamConn | null = null;
  /** The port bind() was asked for (0 = any), for a bound connect. */
  bindPort = 0;
  abortConnect: AbortController | null = null;
  rx: ByteRing | null = null;
  tx: ByteRing | null = null;
  reading = false;
  rxWake: (() => void) | null = null;
  rxEof = false;
  connErr = 0;
  errReported = false;
  shutRd = false;
  shutWr = false;
  finSent = false;
  writing = false;
  txBlocked = false;
  // listener
  listener: Deno.TcpListener | null = null;
  backlog = 0;
  acceptQ: Deno.TcpConn[] = [];
  accepting = false;
  // udp
  dgram: Deno.DatagramConn | null = null;
  udpRx: Datagram[] = [];
  udpTx: OutDatagram[] = [];
  udpSending = false;
  // counters
  bytesSent = 0;
  bytesReceived = 0;
  datagramsReceived = 0;
  datagramsDropped = 0;
  datagramsSent = 0;

  constructor(
    readonly id: number,
    readonly type: number,
    readonly domain: number,
    o: { rcvBuf: number; sndBuf: number },
  ) {
    this.rcvBuf = o.rcvBuf;
    this.sndBuf = o.sndBuf;
  }

  get stream(): boolean {
    return this.type === SockType.STREAM;
  }
}

function hasListenDatagram(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
}

/** The host kernel's sockets behind the `SocketBackend` interface; see the module comment. */
export class KernelBackend implements SocketBackend {
  /** Name for logs and the `ready` line. */
  readonly name = "kernel";
  /** Backend-wide counters. */
  readonly stats: KernelBackendStats = {
    created: 0,
    accepted: 0,
    connected: 0,
    connectFailed: 0,
    closedWithUnread: 0,
    lingerExpired: 0,
    udpDropped: 0,
    boundConnects: 0,
    resetsSent: 0,
    internalErrors: 0,
  };
  /** The last unexpected exception caught in an I/O task (tests assert it stays null). */
  lastInternalError: unknown = null;

  readonly #socks = new Map<number, KSock>();
  #ready: number[] = [];
  #spare: number[] = [];
  #nextId = 1;
  readonly #rcvBuf: number;
  readonly #sndBuf: number;
  readonly #udpQueue: number;
  readonly #maxSockets: number;
  readonly #lingerMs: number;
  readonly #onWake: (() => void) | null;
  #waiter: ((v: boolean) => void) | null = null;
  #disposed = false;
  /** Connections still flushing after close (abandoned ids), so dispose can end them. */
  readonly #lingering = new Set<KSock>();
  /** The thread-pool hop of `yield()` (undefined: not looked up yet; null: no FFI). */
  #hop: (() => Promise<number>) | null | undefined = undefined;

  /** A backend with `options` (all optional). */
  constructor(options: KernelBackendOptions = {}) {
    this.#rcvBuf = options.rcvBuf ?? 256 * 1024;
    this.#sndBuf = options.sndBuf ?? 256 * 1024;
    this.#udpQueue = options.udpQueue ?? 256;
    this.#maxSockets = options.maxSockets ?? 65536;
    this.#lingerMs = options.lingerMs ?? 30_000;
    this.#onWake = options.onWake ?? null;
  }

  /** Sockets open now (ids not yet closed). */
  get socketCount(): number {
    return this.#socks.size;
  }

  /** True when UDP is available (`Deno.listenDatagram`, i.e. `--unstable-net`). */
  static get udpAvailable(): boolean {
    return hasListenDatagram();
  }

  // ----------------------------------------------------------------------------------------
  // Readiness

  #mark(s: KSock): void {
    if (s.state === St.Closed) return;
    if (!s.queued) {
      s.queued = true;
      this.#ready.push(s.id);
    }
    const w = this.#waiter;
    if (w !== null) {
      this.#waiter = null;
      w(true);
    }
    this.#onWake?.();
  }

  #eventsOf(s: KSock): number {
    if (!s.stream) {
      if (s.dgram === null) return 0;
      return NqeEvent.OUT | (s.udpRx.length > 0 ? NqeEvent.IN : 0) |
        (s.soError !== 0 ? NqeEvent.ERR : 0);
    }
    switch (s.state) {
      case St.New:
      case St.Bound:
      case St.Connecting:
      case St.Closed:
        return 0;
      case St.Failed:
        return NqeEvent.ERR | NqeEvent.HUP;
      case St.Listening:
        return (s.acceptQ.length > 0 ? NqeEvent.IN : 0) | (s.soError !== 0 ? NqeEvent.ERR : 0);
      case St.Connected:
        break;
    }
    let ev = 0;
    const rx = s.rx!, tx = s.tx!;
    if (s.connErr !== 0) ev |= NqeEvent.ERR | NqeEvent.HUP | NqeEvent.IN;
    if (rx.length > 0 || s.rxEof || s.shutRd) ev |= NqeEvent.IN;
    if (s.rxEof) ev |= NqeEvent.RDHUP;
    if (s.rxEof && s.shutWr) ev |= NqeEvent.HUP;
    // Writable like Linux's sk_stream_is_writeable: a useful amount of room, not one byte.
    if (s.connErr === 0 && !s.shutWr && tx.free >= Math.min(tx.capacity >> 2, 16384)) {
      ev |= NqeEvent.OUT;
    }
    return ev;
  }

  /** Current readiness (NqeEvent bits); 0 for an unknown id. */
  /** The kernel's send(2) takes what fits itself: no limit known here. */
  sendSpace(_id: number): number {
    return Number.MAX_SAFE_INTEGER;
  }

  events(id: number): number {
    const s = this.#socks.get(id);
    return s === undefined ? 0 : this.#eventsOf(s);
  }

  /** Hands each queued socket to `fn` once with its bits now; returns the count. */
  drainReady(fn: (id: number, events: number) => void): number {
    if (this.#ready.length === 0) return 0;
    // Swap lists so sockets marked by `fn` are handed out on the next drain, not this one.
    const list = this.#ready;
    this.#ready = this.#spare;
    this.#spare = list;
    let n = 0;
    for (let i = 0; i < list.length; i++) {
      const s = this.#socks.get(list[i]!);
      if (s === undefined) continue;
      s.queued = false;
      n++;
      fn(s.id, this.#eventsOf(s));
    }
    list.length = 0;
    return n;
  }

  /** True when sockets wait in the ready list. */
  poll(_now: Instant): boolean {
    return this.#ready.length > 0;
  }

  /** The kernel's timers are the kernel's: nothing timed here. */
  pollAt(): Instant {
    return NEVER;
  }

  /**
   * Resolves true as soon as a socket is queued on the ready list (at once if one is), or
   * false after `timeoutMs`. The driver loop races it with the guests' doorbells.
   */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.#ready.length > 0) return Promise.resolve(true);
    if (timeoutMs <= 0) return this.yield().then(() => this.#ready.length > 0);
    this.#waiter?.(false);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        if (this.#waiter === done) this.#waiter = null;
        resolve(false);
      }, timeoutMs);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        resolve(v);
      };
      this.#waiter = done;
    });
  }

  /** Ends a pending `wait()` now (with true), e.g. to stop a sleeping driver loop. */
  interrupt(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.(true);
  }

  /**
   * Lets Deno's event loop run once *with* its I/O driver: socket reads, writes and accepts
   * complete only when tokio polls epoll, which a busy event loop does only every 61 tasks
   * unless it parks. A thread-pool hop (a non-blocking FFI call of `getpid`, ~8 us; or
   * `Deno.stat("/")`, ~13 us, without --allow-ffi) makes it park. A MessagePort or a resolved
   * promise would not (measured: 265 MB/s through the backend with MessagePort yields, 2 GB/s
   * with thread-pool hops); `setTimeout(0)` costs 1-2 ms.
   */
  yield(): Promise<void> {
    if (this.#hop === undefined) {
      try {
        this.#hop = libc().getpid_hop; // the shared libc handle, never closed
      } catch {
        this.#hop = null; // no --allow-ffi
      }
    }
    const hop = this.#hop;
    if (hop === null) return Deno.stat("/").then(() => {}, () => {});
    return hop().then(() => {});
  }

  // ----------------------------------------------------------------------------------------
  // Socket calls

  /** Creates a socket; see `SocketBackend.socket`. */
  socket(domain: number, type: number, protocol: number): number {
    if (this.#disposed) return -Errno.ENOBUFS;
    if (domain !== Family.INET && domain !== Family.INET6) return -Errno.EAFNOSUPPORT;
    if (type === SockType.STREAM) {
      if (protocol !== 0 && protocol !== 6) return -Errno.EPROTONOSUPPORT;
    } else if (type === SockType.DGRAM) {
      if (protocol !== 0 && protocol !== 17) return -Errno.EPROTONOSUPPORT;
      if (!hasListenDatagram()) return -Errno.EPROTONOSUPPORT;
    } else return -Errno.EPROTONOSUPPORT;
    if (this.#socks.size >= this.#maxSockets) return -Errno.ENOBUFS;
    const id = this.#nextId++;
    this.#socks.set(
      id,
      new KSock(id, type, domain, { rcvBuf: this.#rcvBuf, sndBuf: this.#sndBuf }),
    );
    this.stats.created++;
    return id;
  }

  /** Binds; see `SocketBackend.bind` and the module comment for TCP's probe. */
  bind(id: number, local: SockAddr): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (s.state !== St.New || s.local !== null) return -Errno.EINVAL;
    const fam = local.family === 0 ? s.domain : local.family;
    if (fam !== s.domain) return -Errno.EAFNOSUPPORT;
    const host = local.family === 0
      ? (s.domain === Family.INET ? "0.0.0.0" : "::")
      : hostFor(local);
    if (s.stream) {
      // Deno binds only inside listen(): probe now so errors and the ephemeral port are known.
      let port: number;
      try {
        const l = Deno.listen({ hostname: host, port: local.port });
        port = (l.addr as Deno.NetAddr).port;
        l.close();
      } catch (e) {
        return -errnoOf(e);
      }
      const a = new SockAddr();
      if (!parseHostInto(host, port, a)) return -Errno.EINVAL;
      a.scopeId = local.family === Family.INET6 ? local.scopeId : 0;
      s.local = a;
      s.bindPort = local.port;
      s.state = St.Bound;
      return 0;
    }
    const r = this.#openUdp(s, host, local.port);
    if (r === 0) this.#mark(s);
    return r;
  }

  #openUdp(s: KSock, host: string, port: number): number {
    try {
      const d = Deno.listenDatagram({
        hostname: host,
        port,
        transport: "udp",
        ...(s.reuseAddr ? { reuseAddress: true } : {}),
      });
      s.dgram = d;
      const a = new SockAddr();
      const na = d.addr as Deno.NetAddr;
      parseHostInto(na.hostname, na.port, a);
      s.local = a;
      s.state = St.Bound;
      void this.#udpReceiveLoop(s, d);
      return 0;
    } catch (e) {
      return -errnoOf(e);
    }
  }

  /** Listens (TCP); see `SocketBackend.listen`. */
  listen(id: number, backlog: number): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (!s.stream) return -Errno.EOPNOTSUPP;
    if (s.state === St.Listening) {
      s.backlog = Math.max(1, backlog);
      return 0;
    }
    if (s.state !== St.New && s.state !== St.Bound) return -Errno.EINVAL;
    const host = s.local !== null
      ? hostFor(s.local)
      : (s.domain === Family.INET ? "0.0.0.0" : "::");
    const port = s.local?.port ?? 0;
    try {
      const l = Deno.listen({ hostname: host, port, tcpBacklog: Math.max(1, backlog) });
      s.listener = l;
      const a = new SockAddr();
      parseHostInto(host, (l.addr as Deno.NetAddr).port, a);
      a.scopeId = s.local?.scopeId ?? 0;
      s.local = a;
    } catch (e) {
      return -errnoOf(e);
    }
    s.backlog = Math.max(1, backlog);
    s.state = St.Listening;
    this.#startAccepting(s);
    return 0;
  }

  #startAccepting(s: KSock): void {
    if (s.accepting || s.state !== St.Listening || s.acceptQ.length >= s.backlog) return;
    s.accepting = true;
    void this.#acceptLoop(s);
  }

  async #acceptLoop(s: KSock): Promise<void> {
    const l = s.listener!;
    try {
      while (s.state === St.Listening && s.acceptQ.length < s.backlog) {
        let c: Deno.TcpConn;
        try {
          c = await l.accept();
        } catch (e) {
          if (s.state !== St.Listening) return;
          const errno = errnoOf(e);
          // ECONNABORTED (a connection reset before accept) is not the listener's error.
          if (errno === Errno.ECONNABORTED || errno === Errno.ECONNRESET) continue;
          s.soError = errno;
          this.#mark(s);
          // Out of descriptors or memory passes: keep the listener, retry a little later (a
          // Linux listener stays usable after accept() failed with EMFILE). Others are final.
          if (!RETRY_ACCEPT.has(errno)) return;
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        if (s.state !== St.Listening) {
          c.close();
          return;
        }
        s.acceptQ.push(c);
        if (s.acceptQ.length === 1) this.#mark(s);
      }
    } catch (e) {
      this.#internal(e);
    } finally {
      s.accepting = false;
    }
  }

  /** Takes one connection; see `SocketBackend.accept`. */
  accept(id: number, peer: SockAddr): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (s.state !== St.Listening) return -Errno.EINVAL;
    const c = s.acceptQ.shift();
    if (c === undefined) return -Errno.EAGAIN;
    this.#startAccepting(s);
    if (this.#socks.size >= this.#maxSockets) {
      c.close();
      return -Errno.ENOBUFS;
    }
    const n = new KSock(this.#nextId++, SockType.STREAM, s.domain, {
      rcvBuf: s.rcvBuf,
      sndBuf: s.sndBuf,
    });
    n.noDelay = s.noDelay;
    n.keepAlive = s.keepAlive;
    this.#socks.set(n.id, n);
    this.stats.created++;
    this.stats.accepted++;
    this.#established(n, c);
    const ra = c.remoteAddr as Deno.NetAddr;
    parseHostInto(ra.hostname, ra.port, peer);
    return n.id;
  }

  /** Starts a connection (TCP) or sets the default peer (UDP); see `SocketBackend.connect`. */
  connect(id: number, remote: SockAddr, _now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (remote.family !== Family.INET && remote.family !== Family.INET6) {
      return -Errno.EAFNOSUPPORT;
    }
    if (remote.family !== s.domain) return -Errno.EAFNOSUPPORT;
    if (!s.stream) {
      if (s.state === St.New) {
        const r = this.#openUdp(s, s.domain === Family.INET ? "0.0.0.0" : "::", 0);
        if (r < 0) return r;
      }
      s.remote = new SockAddr().copyFrom(remote);
      s.state = St.Connected;
      this.#mark(s);
      return 0;
    }
    switch (s.state) {
      case St.Connecting:
        return -Errno.EALREADY;
      case St.Connected:
        return -Errno.EISCONN;
      case St.Listening:
      case St.Failed:
      case St.Closed:
        return -Errno.EINVAL;
      default:
        break;
    }
    if (remote.port === 0) return -Errno.EINVAL;
    // Deno.connect cannot choose the local address or port; node:net can (slower, see
    // NodeTcpConn), so a bound socket connects through it.
    const bound = s.local !== null && (!isUnspecified(s.local) || s.bindPort !== 0)
      ? s.local
      : null;
    s.state = St.Connecting;
    s.remote = new SockAddr().copyFrom(remote);
    const ac = new AbortController();
    s.abortConnect = ac;
    void this.#connectTask(s, hostFor(remote), remote.port, ac.signal, bound);
    return -Errno.EINPROGRESS;
  }

  async #connectTask(
    s: KSock,
    host: string,
    port: number,
    signal: AbortSignal,
    bound: SockAddr | null,
  ): Promise<void> {
    try {
      let c: StreamConn;
      try {
        c = bound === null
          ? await Deno.connect({ hostname: host, port, signal, autoSelectFamily: false })
          : await NodeTcpConn.connect({
            host,
            port,
            localAddress: hostFor(bound),
            ...(s.bindPort !== 0 ? { localPort: s.bindPort } : {}),
          }, signal);
        if (bound !== null) this.stats.boundConnects++;
      } catch (e) {
        if (s.state !== St.Connecting) return;
        s.abortConnect = null;
        s.soError = errnoOf(e);
        s.state = St.Failed;
        this.stats.connectFailed++;
        this.#mark(s);
        return;
      }
      s.abortConnect = null;
      if (s.state !== St.Connecting) {
        c.close();
        return;
      }
      this.stats.connected++;
      this.#established(s, c);
      this.#mark(s);
    } catch (e) {
      this.#internal(e);
    }
  }

  #established(s: KSock, c: StreamConn): void {
    s.conn = c;
    s.state = St.Connected;
    // Small at first, doubling on demand: an idle connection costs 2 x 8 KiB.
    s.rx = new ByteRing(s.rcvBuf, INITIAL_RING);
    s.tx = new ByteRing(s.sndBuf, INITIAL_RING);
    try {
      c.setNoDelay(s.noDelay);
      if (s.keepAlive) c.setKeepAlive(true);
    } catch {
      // The connection may already be gone; the reader reports that.
    }
    // Deno's addresses carry no scope id: keep the ones the guest gave (link-local IPv6).
    const la = c.localAddr as Deno.NetAddr, ra = c.remoteAddr as Deno.NetAddr;
    const localScope = s.local?.scopeId ?? 0, remoteScope = s.remote?.scopeId ?? 0;
    s.local ??= new SockAddr();
    parseHostInto(la.hostname, la.port, s.local);
    s.local.scopeId = localScope || remoteScope;
    s.remote ??= new SockAddr();
    parseHostInto(ra.hostname, ra.port, s.remote);
    s.remote.scopeId = remoteScope;
    void this.#readLoop(s, c);
  }

  async #readLoop(s: KSock, c: StreamConn): Promise<void> {
    const rx = s.rx!;
    s.reading = true;
    try {
      while (s.state === St.Connected && !s.rxEof && s.connErr === 0) {
        if (rx.free === 0) {
          // Full: stop reading, so the kernel's buffer fills and its window closes.
          await new Promise<void>((r) => s.rxWake = r);
          continue;
        }
        let n: number | null;
        rx.rewind(); // no read is outstanding here
        const span = rx.freeSpan();
        try {
          n = await c.read(span);
        } catch (e) {
          if (s.state !== St.Connected || s.conn !== c) return;
          this.#fail(s, errnoOf(e));
          return;
        }
        if (s.conn !== c) return;
        if (n === null) {
          s.rxEof = true;
          this.#mark(s);
          return;
        }
        if (n === 0) continue;
        s.bytesReceived += n;
        if (s.shutRd) continue; // SHUT_RD: keep the peer flowing, drop what arrives
        const wasEmpty = rx.length === 0;
        rx.commit(n);
        // A read that filled its whole span suggests more is waiting: read bigger next time.
        if (n === span.length) rx.reserve(rx.allocated * 2);
        if (wasEmpty) this.#mark(s);
      }
    } catch (e) {
      this.#internal(e);
    } finally {
      s.reading = false;
    }
  }

  #wakeReader(s: KSock): void {
    const w = s.rxWake;
    if (w === null) return;
    s.rxWake = null;
    w();
  }

  #fail(s: KSock, errno: number): void {
    // After the peer's RST, Linux writes answer EPIPE once ECONNRESET was consumed by a read;
    // the guest should see the reset.
    s.connErr = errno === Errno.EPIPE ? Errno.ECONNRESET : errno;
    s.soError = s.connErr;
    s.tx?.clear();
    this.#mark(s);
  }

  #kickWriter(s: KSock): void {
    if (s.writing || s.conn === null) return;
    s.writing = true;
    void this.#writeLoop(s, s.conn);
  }

  async #writeLoop(s: KSock, c: StreamConn): Promise<void> {
    const tx = s.tx!;
    try {
      while (tx.length > 0 && s.connErr === 0 && s.conn === c) {
        let n: number;
        try {
          n = await c.write(tx.dataSpan());
        } catch (e) {
          if (s.conn !== c) return;
          this.#fail(s, errnoOf(e));
          return;
        }
        tx.consume(n);
        tx.rewind(); // the writer is the only one holding a span of tx, and it holds none now
        s.bytesSent += n;
        if (s.txBlocked && (this.#eventsOf(s) & NqeEvent.OUT) !== 0) {
          s.txBlocked = false;
          this.#mark(s);
        }
      }
      if (tx.length === 0 && s.shutWr && !s.finSent && s.connErr === 0 && s.conn === c) {
        s.finSent = true;
        try {
          await c.closeWrite();
        } catch (e) {
          if (s.conn === c) this.#fail(s, errnoOf(e));
        }
      }
    } catch (e) {
      this.#internal(e);
    } finally {
      s.writing = false;
      if (s.state === St.Closed) this.#finishClose(s);
    }
  }

  /** Queues stream bytes or sends a datagram to the default peer; see `SocketBackend.send`. */
  send(id: number, data: Uint8Array, _more: boolean, _now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (!s.stream) {
      if (s.remote === null) return -Errno.EDESTADDRREQ;
      return this.#udpSend(s, data, s.remote);
    }
    if (s.state === St.Connecting) return -Errno.EAGAIN;
    if (s.state === St.Failed) return -Errno.EPIPE;
    if (s.state !== St.Connected) return -Errno.ENOTCONN;
    if (s.connErr !== 0) {
      if (!s.errReported) {
        s.errReported = true;
        return -s.connErr;
      }
      return -Errno.EPIPE;
    }
    if (s.shutWr) return -Errno.EPIPE;
    if (data.length === 0) return 0;
    const n = s.tx!.push(data);
    if (n < data.length) s.txBlocked = true;
    if (n === 0) return -Errno.EAGAIN;
    this.#kickWriter(s);
    return n;
  }

  /** Reads stream bytes; see `SocketBackend.recv`. */
  recv(id: number, dst: Uint8Array, _now: Instant, max: number = dst.length): number {
    if (max < dst.length) dst = dst.subarray(0, Math.max(0, max));
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (!s.stream) {
      const n = this.recvFrom(id, dst, new SockAddr());
      return n > dst.length ? dst.length : n;
    }
    if (s.state === St.Failed) {
      if (s.soError !== 0) {
        const e = s.soError;
        s.soError = 0;
        return -e;
      }
      return 0;
    }
    if (s.state !== St.Connected) return -Errno.ENOTCONN;
    const rx = s.rx!;
    if (s.shutRd) return 0;
    if (rx.length > 0 && dst.length > 0) {
      const wasFull = rx.free === 0;
      const n = rx.pop(dst);
      if (wasFull) this.#wakeReader(s);
      return n;
    }
    if (s.connErr !== 0) {
      if (!s.errReported) {
        s.errReported = true;
        s.soError = 0;
        return -s.connErr;
      }
      return 0;
    }
    if (s.rxEof) return 0;
    return -Errno.EAGAIN;
  }

  #udpSend(s: KSock, data: Uint8Array, dst: SockAddr): number {
    if (dst.family !== s.domain) return -Errno.EAFNOSUPPORT;
    if (data.length > (s.domain === Family.INET ? UDP_MAX_V4 : UDP_MAX_V6)) {
      return -Errno.EMSGSIZE;
    }
    if (dst.port === 0) return -Errno.EINVAL;
    if (s.dgram === null) {
      const r = this.#openUdp(s, s.domain === Family.INET ? "0.0.0.0" : "::", 0);
      if (r < 0) return r;
    }
    if (s.udpTx.length >= this.#udpQueue) return -Errno.EAGAIN;
    s.udpTx.push({ data: data.slice(), host: hostFor(dst), port: dst.port });
    if (!s.udpSending) {
      s.udpSending = true;
      void this.#udpSendLoop(s, s.dgram!);
    }
    return data.length;
  }

  async #udpSendLoop(s: KSock, d: Deno.DatagramConn): Promise<void> {
    try {
      while (s.udpTx.length > 0 && s.dgram === d) {
        const o = s.udpTx[0]!;
        try {
          await d.send(o.data, { transport: "udp", hostname: o.host, port: o.port });
          s.datagramsSent++;
        } catch (e) {
          if (s.dgram !== d) return;
          // Like an ICMP error on a kernel UDP socket: pending SO_ERROR, the datagram is gone.
          s.soError = errnoOf(e);
          this.#mark(s);
        }
        s.udpTx.shift();
      }
    } catch (e) {
      this.#internal(e);
    } finally {
      s.udpSending = false;
    }
  }

  async #udpReceiveLoop(s: KSock, d: Deno.DatagramConn): Promise<void> {
    // One receive is outstanding per socket, each into its own buffer.
    const scratch = new Uint8Array(65536);
    try {
      while (s.dgram === d) {
        let data: Uint8Array, addr: Deno.Addr;
        try {
          [data, addr] = await d.receive(scratch);
        } catch (e) {
          if (s.dgram !== d) return;
          const errno = errnoOf(e);
          s.soError = errno;
          this.#mark(s);
          // ICMP errors (port/host/net unreachable) are pending errors of a socket that keeps
          // receiving; anything else ends the loop (no busy loop on a broken socket).
          if (!UDP_SOFT_ERRORS.has(errno)) return;
          continue;
        }
        const na = addr as Deno.NetAddr;
        s.datagramsReceived++;
        const from = new SockAddr();
        parseHostInto(na.hostname, na.port, from);
        if (s.remote !== null && !sameAddr(from, s.remote)) continue; // connected: peer only
        if (s.udpRx.length >= this.#udpQueue) {
          s.datagramsDropped++;
          this.stats.udpDropped++;
          continue;
        }
        s.udpRx.push({ data: data.slice(), from });
        if (s.udpRx.length === 1) this.#mark(s);
      }
    } catch (e) {
      this.#internal(e);
    }
  }

  /** Sends one datagram to `dst`; see `SocketBackend.sendTo`. */
  sendTo(id: number, data: Uint8Array, dst: SockAddr, now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (s.stream) return this.send(id, data, false, now);
    return this.#udpSend(s, data, dst.family === 0 && s.remote !== null ? s.remote : dst);
  }

  /** Receives one datagram; see `SocketBackend.recvFrom`. */
  recvFrom(id: number, dst: Uint8Array, src: SockAddr): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (s.stream) {
      const n = this.recv(id, dst, 0);
      if (n >= 0 && s.remote !== null) src.copyFrom(s.remote);
      return n;
    }
    if (s.dgram === null) return -Errno.ENOTCONN;
    const d = s.udpRx.shift();
    if (d === undefined) {
      if (s.soError !== 0) {
        const e = s.soError;
        s.soError = 0;
        return -e;
      }
      return -Errno.EAGAIN;
    }
    const n = Math.min(dst.length, d.data.length);
    dst.set(d.data.subarray(0, n));
    src.copyFrom(d.from);
    return d.data.length;
  }

  /** shutdown(2); see `SocketBackend.shutdown`. */
  shutdown(id: number, how: number, _now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (how !== 0 && how !== 1 && how !== 2) return -Errno.EINVAL;
    if (s.state !== St.Connected) return -Errno.ENOTCONN;
    if (!s.stream) return 0;
    if (how !== 1 && !s.shutRd) {
      s.shutRd = true;
      s.rx!.clear();
      if (s.rxWake !== null) {
        const w = s.rxWake;
        s.rxWake = null;
        w();
      }
    }
    if (how !== 0 && !s.shutWr) {
      s.shutWr = true;
      if (s.tx!.length === 0 && !s.writing) this.#kickWriterForFin(s);
    }
    this.#mark(s);
    return 0;
  }

  #kickWriterForFin(s: KSock): void {
    // The write loop sends the FIN once the ring is empty; run it even with nothing to write.
    if (s.writing || s.conn === null) return;
    s.writing = true;
    void this.#writeLoop(s, s.conn);
  }

  /** Closes the id; queued bytes are still sent (see `SocketBackend.close`). */
  close(id: number, _now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    this.#socks.delete(id);
    const graceful = s.stream && s.state === St.Connected && s.connErr === 0 &&
      s.tx!.length > 0;
    if (s.stream && s.state === St.Connected && s.rx!.length > 0) this.stats.closedWithUnread++;
    s.state = St.Closed;
    if (graceful) {
      // Like the kernel after close(): the ring still drains, bounded by the linger time.
      s.shutWr = true;
      this.#lingering.add(s);
      const timer = setTimeout(() => {
        if (this.#lingering.has(s)) {
          this.stats.lingerExpired++;
          this.#release(s);
        }
      }, this.#lingerMs);
      Deno.unrefTimer(timer);
      this.#kickWriter(s);
      return 0;
    }
    this.#release(s);
    return 0;
  }

  #finishClose(s: KSock): void {
    if (!this.#lingering.has(s)) return;
    if (s.tx !== null && s.tx.length > 0 && s.connErr === 0) return;
    this.#release(s);
  }

  /** Releases every kernel resource of a socket whose id is already gone. */
  #release(s: KSock): void {
    this.#lingering.delete(s);
    s.state = St.Closed;
    const c = s.conn;
    s.conn = null;
    if (c !== null) {
      try {
        c.close();
      } catch {
        // Already closed by Deno.
      }
    }
    s.abortConnect?.abort();
    s.abortConnect = null;
    if (s.rxWake !== null) {
      const w = s.rxWake;
      s.rxWake = null;
      w();
    }
    const l = s.listener;
    s.listener = null;
    if (l !== null) {
      try {
        l.close();
      } catch {
        // Already closed.
      }
    }
    for (const q of s.acceptQ) {
      try {
        q.close();
      } catch {
        // Already closed.
      }
    }
    s.acceptQ.length = 0;
    const d = s.dgram;
    s.dgram = null;
    if (d !== null) {
      try {
        d.close();
      } catch {
        // Already closed.
      }
    }
    s.udpRx.length = 0;
    s.udpTx.length = 0;
  }

  /**
   * Ends the connection and frees the id at once; queued bytes are discarded. A node:net
   * connection is reset (RST); a Deno.Conn cannot be (no SO_LINGER), so it is closed: the peer
   * sees FIN, or RST when the kernel still held unread bytes.
   */
  abort(id: number, _now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    this.#socks.delete(id);
    s.tx?.clear();
    const c = s.conn;
    if (c !== null && c.reset !== undefined) {
      s.conn = null;
      c.reset(); // a node:net connection can send the RST
      this.stats.resetsSent++;
    }
    this.#release(s);
    return 0;
  }

  /** Sets an integer option; see `SocketBackend.setsockopt` and the module comment. */
  setsockopt(id: number, level: number, name: number, value: number, _now: Instant): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (!Number.isInteger(value) || value < 0) return -Errno.EINVAL;
    if (level === SockLevel.SOL_SOCKET) {
      switch (name) {
        case SockOpt.SO_REUSEADDR:
          s.reuseAddr = value !== 0;
          return 0;
        case SockOpt.SO_KEEPALIVE:
          s.keepAlive = value !== 0;
          if (s.conn !== null) {
            try {
              s.conn.setKeepAlive(s.keepAlive);
            } catch {
              return -Errno.EINVAL;
            }
          }
          return 0;
        case SockOpt.SO_RCVBUF:
        case SockOpt.SO_SNDBUF: {
          if (!s.stream) return -Errno.ENOPROTOOPT;
          // The limits of this socket's rings (the kernel's own buffers are left alone).
          const v = Math.min(MAX_BUF, Math.max(MIN_BUF, value));
          if (name === SockOpt.SO_RCVBUF) {
            s.rcvBuf = v;
            s.rx?.setLimit(v);
            this.#wakeReader(s); // more room: a paused reader may go on
          } else {
            s.sndBuf = v;
            s.tx?.setLimit(v);
            if (s.conn !== null) this.#mark(s); // OUT may have changed
          }
          return 0;
        }
        case SockOpt.SO_LINGER:
          // Linger 0 means "reset on close", which Deno cannot do.
          if (value === 1) return -Errno.ENOPROTOOPT;
          s.lingerOpt = value;
          return 0;
        default:
          return -Errno.ENOPROTOOPT;
      }
    }
    if (level === SockLevel.IPPROTO_TCP && s.stream && name === SockOpt.TCP_NODELAY) {
      s.noDelay = value !== 0;
      if (s.conn !== null) {
        try {
          s.conn.setNoDelay(s.noDelay);
        } catch {
          return -Errno.EINVAL;
        }
      }
      return 0;
    }
    return -Errno.ENOPROTOOPT;
  }

  /** Reads an integer option; see `SocketBackend.getsockopt`. */
  getsockopt(id: number, level: number, name: number): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (level === SockLevel.SOL_SOCKET) {
      switch (name) {
        case SockOpt.SO_ERROR: {
          const e = s.soError;
          s.soError = 0;
          if (s.connErr !== 0) s.errReported = true;
          return e;
        }
        case SockOpt.SO_REUSEADDR:
          return s.reuseAddr ? 1 : 0;
        case SockOpt.SO_KEEPALIVE:
          return s.keepAlive ? 1 : 0;
        case SockOpt.SO_RCVBUF:
          return s.stream ? s.rcvBuf : this.#udpQueue;
        case SockOpt.SO_SNDBUF:
          return s.stream ? s.sndBuf : this.#udpQueue;
        case SockOpt.SO_LINGER:
          return s.lingerOpt;
        default:
          return -Errno.ENOPROTOOPT;
      }
    }
    if (level === SockLevel.IPPROTO_TCP && s.stream) {
      if (name === SockOpt.TCP_NODELAY) return s.noDelay ? 1 : 0;
      if (name === SockOpt.TCP_INFO_STATE) return this.#tcpState(s);
    }
    return -Errno.ENOPROTOOPT;
  }

  #tcpState(s: KSock): number {
    switch (s.state) {
      case St.Listening:
        return TCP_LISTEN;
      case St.Connecting:
        return TCP_SYN_SENT;
      case St.Connected:
        if (s.connErr !== 0) return TCP_CLOSE;
        if (s.rxEof) return TCP_CLOSE_WAIT;
        if (s.shutWr) return TCP_FIN_WAIT1;
        return TCP_ESTABLISHED;
      default:
        return TCP_CLOSE;
    }
  }

  /** Local address; see `SocketBackend.localAddr`. */
  localAddr(id: number, out: SockAddr): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (s.local === null) return -Errno.EINVAL;
    out.copyFrom(s.local);
    return 0;
  }

  /** Peer address; see `SocketBackend.remoteAddr`. */
  remoteAddr(id: number, out: SockAddr): number {
    const s = this.#socks.get(id);
    if (s === undefined) return -Errno.EBADF;
    if (s.remote === null || s.state !== St.Connected) return -Errno.ENOTCONN;
    out.copyFrom(s.remote);
    return 0;
  }

  /**
   * What the kernel backend knows of a connection: the state only. cwnd, ssthresh, RTT, MSS,
   * retransmits, the peer's window and acked bytes live in the kernel's TCP_INFO, which needs
   * the descriptor Deno does not expose: they are reported as 0 (unknown).
   */
  tcpInfo(id: number): BackendTcpInfo | null {
    const s = this.#socks.get(id);
    if (s === undefined || !s.stream || s.state === St.New || s.state === St.Bound) return null;
    return {
      state: this.#tcpState(s),
      cwnd: 0,
      ssthresh: 0,
      rttUs: 0,
      rttVarUs: 0,
      retransmits: 0,
      mss: 0,
      sndWnd: 0,
      bytesAcked: 0,
    };
  }

  /** Byte and datagram counters of a socket, or null for an unknown id. */
  counters(id: number): KernelSocketCounters | null {
    const s = this.#socks.get(id);
    if (s === undefined) return null;
    return {
      bytesSent: s.bytesSent,
      bytesReceived: s.bytesReceived,
      datagramsReceived: s.datagramsReceived,
      datagramsDropped: s.datagramsDropped,
      datagramsSent: s.datagramsSent,
    };
  }

  /** Closes every socket at once (no flushing) and ends the I/O tasks. Idempotent. */
  dispose(_now: Instant): void {
    this.#disposed = true;
    for (const s of this.#socks.values()) {
      s.tx?.clear();
      this.#release(s);
    }
    this.#socks.clear();
    for (const s of [...this.#lingering]) this.#release(s);
    this.#ready.length = 0;
    const w = this.#waiter;
    this.#waiter = null;
    w?.(false);
  }

  #internal(e: unknown): void {
    this.stats.internalErrors++;
    this.lastInternalError = e;
  }
}

function sameAddr(a: SockAddr, b: SockAddr): boolean {
  if (a.port !== b.port || a.family !== b.family) return false;
  const n = a.family === Family.INET ? 4 : 16;
  for (let i = 0; i < n; i++) if (a.addr[i] !== b.addr[i]) return false;
  return true;
}

/**
 * A frameless `WaitableLink` whose idle `wait(ms)` is the backend's: lets `NsmRuntime` and
 * `ServiceLib.wrapLink` drive a kernel-stack NSM, which has no link of its own.
 */
export function kernelWaitLink(backend: KernelBackend, name = "kernel"): WaitableLink {
  return {
    name,
    mac: new Uint8Array(6),
    mtu: 65535,
    capabilities: { rxChecksumVerified: true, txChecksumOffload: true, maxBatch: 1 },
    receive(_onFrame: (frame: Uint8Array) => void, _max: number): number {
      return 0;
    },
    transmitBuffer(_length: number): Uint8Array | null {
      return null;
    },
    commit(_length: number): void {},
    flush(): void {},
    close(): void {},
    wait(timeoutMs: number): Promise<boolean> {
      return backend.wait(timeoutMs);
    },
  };
}
