/**
 * What the operator tools (control handler, metrics) need to see of a running NSM, as small
 * structural interfaces, so the NSM mounts them without these files importing its runtime or
 * ServiceLib. The NSM implements `GuestTable` over ServiceLib's guests and the backend's
 * socket map (see /work/notes/ops_api.md).
 *
 * @module
 */

import type { TcpStack } from "../stacks/tcpip/tcp/stack.ts";

/** Guest id of connections that belong to no guest (the NSM's own services). */
export const NSM_GUEST = 0;

/** One TCP connection of the NSM: which guest owns it and where it lives. */
export interface ConnRef {
  /** Owning guest id (`NSM_GUEST` for the NSM's own services). */
  readonly guest: number;
  /** The stack that holds it. */
  readonly stack: TcpStack;
  /** The socket id in that stack. */
  readonly id: number;
  /** The guest's own socket id, if different from `id` (shown by `ctl conns`). */
  readonly guestSocket?: number;
}

/** One attached guest, as the ServiceLib knows it. */
export interface GuestRow {
  /** Guest id. */
  readonly id: number;
  /** Guest process id (0 if unknown). */
  readonly pid: number;
  /** NK device path. */
  readonly device: string;
  /** Open sockets. */
  readonly sockets: number;
  /** Stream bytes taken from the guest's SENDs, if counted. */
  readonly bytesFromGuest?: number;
  /** Stream bytes delivered to the guest, if counted. */
  readonly bytesToGuest?: number;
  /** Per-guest counters (rejected NQEs by reason, ...). */
  readonly counters?: Readonly<Record<string, number>>;
}

/** The ServiceLib's guest table, seen by the operator tools. */
export interface GuestTable {
  /** Guests attached now. */
  guests(): GuestRow[];
  /** Every TCP connection (listeners excluded), with its owning guest. */
  connections(): ConnRef[];
}

/** NQE transport totals (structurally what `ServiceLib.stats` holds). */
export interface NqeTotals {
  /** Guests attached so far. */
  attached: number;
  /** Attach attempts that failed. */
  attachFailed: number;
  /** Guests torn down, by reason. */
  detached: Readonly<Record<string, number>>;
  /** Request NQEs consumed. */
  requests: number;
  /** Completions written. */
  completions: number;
  /** RECV/RECVFROM/EVENT written. */
  notifications: number;
  /** Stream bytes delivered to guests. */
  bytesToGuests: number;
  /** Bytes taken from guests' SENDs. */
  bytesFromGuests: number;
  /** Rejections and faults by counter. */
  rejected: Readonly<Record<string, number>>;
}

/** A `ss -ti`-like row of one connection (plain data; JSON of `ctl conns`). */
export interface ConnRow {
  /** Connection id for `cc set --conn`: `<stack>:<socket id>`. */
  conn: string;
  /** Owning guest. */
  guest: number;
  /** Local address:port. */
  local: string;
  /** Remote address:port. */
  remote: string;
  /** RFC 9293 state name. */
  state: string;
  /** Congestion control in use. */
  cc: string;
  /** Congestion window, bytes. */
  cwnd: number;
  /** Slow-start threshold, bytes (null before the first reduction). */
  ssthresh: number | null;
  /** Smoothed RTT, microseconds (null before a sample). */
  srttUs: number | null;
  /** RTT variance, microseconds (null before a sample). */
  rttvarUs: number | null;
  /** Retransmission timeout, microseconds. */
  rtoUs: number;
  /** Send MSS. */
  mss: number;
  /** Pacing rate, bytes/s. */
  pacingRate: number;
  /** Last delivery rate, bytes/s. */
  deliveryRate: number;
  /** Data bytes sent, including retransmissions. */
  bytesSent: number;
  /** Bytes acknowledged by the peer. */
  bytesAcked: number;
  /** In-order bytes received. */
  bytesReceived: number;
  /** Retransmitted segments. */
  retransmits: number;
}

function hostPort(a: { address: { version: number; toString(): string }; port: number }): string {
  return a.address.version === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The row of one connection, or null when it is gone (closed since it was listed). */
export function connRow(ref: ConnRef, stackName: string): ConnRow | null {
  const { stack, id } = ref;
  let info;
  try {
    info = stack.info(id);
  } catch {
    return null;
  }
  const us = (ns: number): number | null => (ns < 0 ? null : Math.round(ns / 1000));
  return {
    conn: `${stackName}:${id}`,
    guest: ref.guest,
    local: hostPort(stack.localAddress(id)),
    remote: hostPort(stack.remoteAddress(id)),
    state: info.state,
    cc: stack.getOptions(id).congestionControl,
    cwnd: info.cwnd,
    ssthresh: Number.isFinite(info.ssthresh) ? info.ssthresh : null,
    srttUs: us(info.srtt),
    rttvarUs: info.srtt < 0 ? null : us(info.rttvar),
    rtoUs: Math.round(info.rto / 1000),
    mss: info.mss,
    pacingRate: Math.round(info.pacingRate),
    deliveryRate: Math.round(info.deliveryRate),
    bytesSent: info.bytesSent,
    bytesAcked: info.bytesAcked,
    bytesReceived: info.bytesReceived,
    retransmits: info.retransmits,
  };
}

/** A `GuestTable` over fixed lists (tests, and an NSM without a ServiceLib). */
export class StaticGuestTable implements GuestTable {
  /** Guest rows returned by `guests()`. */
  rows: GuestRow[] = [];
  /** Connections returned by `connections()`. */
  conns: ConnRef[] = [];
  /** Returns `rows`. */
  guests(): GuestRow[] {
    return this.rows;
  }
  /** Returns `conns` whose socket still exists. */
  connections(): ConnRef[] {
    return this.conns.filter((c) => c.stack.tcbOf(c.id) !== null);
  }
}
