/**
 * Services the NSM offers itself, for interop testing and benchmarks: RFC 862 echo and RFC 863
 * discard, over TCP and UDP, on any number of ports.
 *
 * TCP is served purely from `TcpStack.drainReady()` (work is O(ready sockets), so thousands
 * of idle connections cost nothing per iteration). Echo applies back-pressure: when the send
 * buffer refuses part of what was read, the rest is parked in a per-connection buffer and the
 * connection stops reading (interest WRITABLE only) until the stack takes it, so a fast client
 * fills our receive window instead of our memory. UDP datagrams are answered as they are read.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import { NEVER } from "../stacks/time.ts";
import type { UdpLayer, UdpSocket } from "../stacks/tcpip/iface/udp.ts";
import { ERROR, HANGUP, READABLE, WRITABLE } from "../stacks/tcpip/tcp/tcb.ts";
import { type TcpStack, WOULD_BLOCK } from "../stacks/tcpip/tcp/stack.ts";
import type { Pollable } from "./runtime.ts";

/** Which service a port offers. */
export type ServiceKind = "echo" | "discard";

/** Counters of the services. */
export interface ServiceStats {
  /** TCP connections accepted. */
  accepted: number;
  /** TCP connections finished (closed after EOF, reset or failed). */
  closed: number;
  /** TCP connections that ended with an error (reset, timeout). */
  failed: number;
  /** Bytes read from TCP connections. */
  tcpBytesIn: number;
  /** Bytes written back by TCP echo. */
  tcpBytesOut: number;
  /** UDP datagrams received. */
  udpIn: number;
  /** UDP datagrams echoed. */
  udpOut: number;
  /** UDP echo replies the link had no room for. */
  udpDropped: number;
  /** Times echo parked bytes because the send buffer was full (back-pressure). */
  parked: number;
  /** Connection failures by error class name (ConnectionReset, TimedOut, ...). */
  errors: Record<string, number>;
}

/** Per-connection state. */
class Conn {
  /** Bytes read but not yet taken by the send buffer (echo only), lazily allocated. */
  pending: Uint8Array | null = null;
  pendingOff = 0;
  pendingLen = 0;
  /** The peer finished sending; close once `pending` is flushed. */
  eof = false;
  constructor(readonly kind: ServiceKind) {}
}

const ALL = READABLE | WRITABLE | ERROR | HANGUP;

/** Echo and discard on TCP and UDP; a `Pollable` for `NsmRuntime`. */
export class Services implements Pollable {
  /** Name for logs. */
  readonly name = "services";
  /** Counters. */
  readonly stats: ServiceStats = {
    accepted: 0,
    closed: 0,
    failed: 0,
    tcpBytesIn: 0,
    tcpBytesOut: 0,
    udpIn: 0,
    udpOut: 0,
    udpDropped: 0,
    parked: 0,
    errors: {},
  };
  readonly #tcp: TcpStack;
  readonly #udp: UdpLayer;
  readonly #listeners = new Map<number, ServiceKind>();
  readonly #conns = new Map<number, Conn>();
  readonly #udpSockets: { sock: UdpSocket; kind: ServiceKind }[] = [];
  readonly #buf = new Uint8Array(64 * 1024);
  readonly #onReady: (id: number, ev: number) => void;
  #now: Instant = 0;
  #worked = false;

  /** Services over `tcp` and `udp` (both registered on the same interface). */
  constructor(tcp: TcpStack, udp: UdpLayer) {
    this.#tcp = tcp;
    this.#udp = udp;
    this.#onReady = (id, ev) => this.#ready(id, ev);
  }

  /** Offers `kind` on TCP and UDP `port` (any local address, v4 and v6). */
  serve(kind: ServiceKind, port: number, backlog = 4096): void {
    const l = this.#tcp.listen(null, port, backlog);
    this.#tcp.setInterest(l, READABLE);
    this.#listeners.set(l, kind);
    this.#udpSockets.push({ sock: this.#udp.bind(null, port, { rxDatagrams: 256 }), kind });
  }

  /** TcpStack ids of the TCP connections being served (for `ctl conns`, guest 0). */
  connectionIds(): number[] {
    return [...this.#conns.keys()];
  }

  /** Open TCP connections being served. */
  get connections(): number {
    return this.#conns.size;
  }

  /** True when a socket is ready or a datagram waits (see `Pollable.hasWork`). */
  hasWork(): boolean {
    if (this.#tcp.readyCount > 0) return true;
    const us = this.#udpSockets;
    for (let i = 0; i < us.length; i++) if (us[i]!.sock.pending > 0) return true;
    return false;
  }

  /** Serves ready sockets and queued datagrams; true when anything was done. */
  poll(now: Instant): boolean {
    this.#now = now;
    this.#worked = false;
    // Through the backend's view (a Proxy): only when something is queued, and an indexed
    // loop below: this runs on every loop pass, and the iterator of a for-of was garbage.
    if (this.#tcp.readyCount > 0) this.#tcp.drainReady(this.#onReady);
    const buf = this.#buf;
    const us = this.#udpSockets;
    for (let i = 0; i < us.length; i++) {
      const u = us[i]!;
      if (u.sock.pending === 0) continue;
      for (let r = u.sock.recvFrom(buf); r !== null; r = u.sock.recvFrom(buf)) {
        this.stats.udpIn++;
        this.#worked = true;
        if (u.kind !== "echo") continue;
        if (u.sock.sendTo(buf.subarray(0, r.length), r.address, r.port)) this.stats.udpOut++;
        else this.stats.udpDropped++;
      }
    }
    return this.#worked;
  }

  /** Event-driven: no timers of its own. */
  pollAt(): Instant {
    return NEVER;
  }

  #ready(id: number, ev: number): void {
    const tcp = this.#tcp;
    const kind = this.#listeners.get(id);
    if (kind !== undefined) {
      for (let c = tcp.accept(id); c > 0; c = tcp.accept(id)) {
        this.#conns.set(c, new Conn(kind));
        this.stats.accepted++;
        tcp.setInterest(c, ALL & ~WRITABLE);
        this.#worked = true;
      }
      return;
    }
    const conn = this.#conns.get(id);
    if (conn === undefined) return;
    this.#worked = true;
    try {
      this.#serve(id, conn, ev);
    } catch (e) {
      // Reset, timed out, or closed under us: the connection is over.
      this.stats.failed++;
      const name = e instanceof Error ? e.name : "unknown";
      this.stats.errors[name] = (this.stats.errors[name] ?? 0) + 1;
      this.#finish(id, true);
    }
  }

  #serve(id: number, conn: Conn, _ev: number): void {
    const tcp = this.#tcp;
    const now = this.#now;
    if (conn.pendingLen > 0 && !this.#flushPending(id, conn)) return;
    const buf = this.#buf;
    while (!conn.eof) {
      const n = tcp.recv(id, buf, now);
      if (n === WOULD_BLOCK) break;
      if (n === 0) {
        conn.eof = true;
        break;
      }
      this.stats.tcpBytesIn += n;
      if (conn.kind === "discard") continue;
      const sent = tcp.send(id, buf.subarray(0, n), now);
      this.stats.tcpBytesOut += sent;
      if (sent < n) {
        // Park the rest and wait for room; stop reading so the peer's window closes.
        if (conn.pending === null) conn.pending = new Uint8Array(buf.length);
        conn.pending.set(buf.subarray(sent, n));
        conn.pendingOff = 0;
        conn.pendingLen = n - sent;
        this.stats.parked++;
        tcp.setInterest(id, WRITABLE | ERROR | HANGUP);
        return;
      }
    }
    if (conn.eof && conn.pendingLen === 0) this.#finish(id, false);
  }

  /** Pushes parked bytes; true when all went (reading may resume). */
  #flushPending(id: number, conn: Conn): boolean {
    const tcp = this.#tcp;
    const p = conn.pending!;
    const sent = tcp.send(
      id,
      p.subarray(conn.pendingOff, conn.pendingOff + conn.pendingLen),
      this.#now,
    );
    this.stats.tcpBytesOut += sent;
    conn.pendingOff += sent;
    conn.pendingLen -= sent;
    if (conn.pendingLen > 0) return false;
    tcp.setInterest(id, ALL & ~WRITABLE);
    return true;
  }

  #finish(id: number, error: boolean): void {
    this.#conns.delete(id);
    this.stats.closed++;
    try {
      if (error) this.#tcp.abort(id, this.#now);
      else this.#tcp.close(id, this.#now);
    } catch {
      // Already gone.
    }
  }

  /** Closes listeners, UDP sockets and connections (RST for connections still open). */
  close(now: Instant): void {
    for (const l of this.#listeners.keys()) this.#tcp.close(l, now);
    this.#listeners.clear();
    for (const id of this.#conns.keys()) {
      try {
        this.#tcp.abort(id, now);
      } catch {
        // Already gone.
      }
    }
    this.#conns.clear();
    for (const u of this.#udpSockets) u.sock.close();
    this.#udpSockets.length = 0;
  }
}
