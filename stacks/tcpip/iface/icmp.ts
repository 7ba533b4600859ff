/**
 * ICMP policy shared by the IPv4 and IPv6 paths of the interface: the token bucket that limits
 * the rate of ICMP errors (RFC 1812 4.3.2.8, RFC 4443 2.4(f)), the rules for when an error may
 * be sent at all (RFC 1122 3.2.2, RFC 4443 2.4(e)), and the shape of received ICMP errors as
 * delivered to transports (for path MTU discovery and error reporting).
 *
 * @module
 */

import type { Duration, Instant } from "../../time.ts";
import { SECOND } from "../../time.ts";
import {
  ICMPV4_CODE_FRAG_NEEDED,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_PARAMETER_PROBLEM,
  ICMPV4_TIME_EXCEEDED,
  isIcmpv4Error,
} from "../wire/icmpv4.ts";
import {
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAMETER_PROBLEM,
  ICMPV6_TIME_EXCEEDED,
} from "../wire/icmpv6.ts";

// The message types are defined once, by the wire layer; re-exported here because the
// interface and its users name them through this module.
export {
  ICMPV4_CODE_FRAG_NEEDED,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REPLY,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_PARAMETER_PROBLEM,
  ICMPV4_TIME_EXCEEDED,
  isIcmpv4Error as isIcmpV4Error,
} from "../wire/icmpv4.ts";
export {
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_NEIGHBOR_ADVERT,
  ICMPV6_NEIGHBOR_SOLICIT,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_PARAMETER_PROBLEM,
  ICMPV6_ROUTER_ADVERT,
  ICMPV6_ROUTER_SOLICIT,
  ICMPV6_TIME_EXCEEDED,
} from "../wire/icmpv6.ts";

/** A token bucket: `burst` tokens, refilled at `perSecond`. Time is injected. */
export class TokenBucket {
  readonly burst: number;
  readonly interval: Duration;
  private tokens: number;
  private last: Instant = 0;
  private started = false;

  constructor(burst: number, perSecond: number) {
    this.burst = Math.max(1, burst);
    this.interval = perSecond > 0 ? SECOND / perSecond : Number.POSITIVE_INFINITY;
    this.tokens = this.burst;
  }

  /** Takes one token if available; returns whether the caller may send. */
  take(now: Instant): boolean {
    if (!this.started) {
      this.started = true;
      this.last = now;
    }
    if (this.tokens < this.burst) {
      const add = Math.floor((now - this.last) / this.interval);
      if (add > 0) {
        this.tokens = Math.min(this.burst, this.tokens + add);
        this.last = this.tokens === this.burst ? now : this.last + add * this.interval;
      }
    } else {
      // A full bucket does not bank time: refill starts counting from the first spend.
      this.last = now;
    }
    if (this.tokens === 0) return false;
    this.tokens--;
    return true;
  }

  /** Tokens left (for tests and metrics). */
  get available(): number {
    return this.tokens;
  }
}

/** Unreachable codes (RFC 792). */
export const ICMPV4_CODE_PROTOCOL_UNREACHABLE = 2;
/** Port unreachable. */
export const ICMPV4_CODE_PORT_UNREACHABLE = 3;

/** ICMPv6 unreachable code: port unreachable. */
export const ICMPV6_CODE_PORT_UNREACHABLE = 4;
/** ICMPv6 parameter problem code: unrecognized next header (protocol unreachable). */
export const ICMPV6_CODE_UNRECOGNIZED_NEXT_HEADER = 1;

/** True when an ICMPv6 type is an error message (types 0..127, RFC 4443 2.1). */
export function isIcmpV6Error(type: number): boolean {
  return type < 128;
}

/** What is known about a packet we are considering answering with an ICMP error. */
export interface ErrorCandidate {
  readonly version: 4 | 6;
  /** Source address bytes of the offending packet. */
  readonly src: Uint8Array;
  /** Destination address bytes of the offending packet. */
  readonly dst: Uint8Array;
  /** The frame was link-layer broadcast or multicast. */
  readonly linkMulticast: boolean;
  /** The destination is a (subnet or limited) broadcast address. */
  readonly dstBroadcast: boolean;
  /** Fragment offset of the offending packet (0 for a first or unfragmented packet). */
  readonly fragmentOffset: number;
  /** Upper-layer protocol of the offending packet. */
  readonly protocol: number;
  /** If the offending packet is ICMP, its type; otherwise -1. */
  readonly icmpType: number;
}

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Whether an ICMP error about the packet may be sent (rate limiting aside): never about an ICMP
 * error, a non-first fragment, a packet sent to a broadcast/multicast address (except ICMPv6
 * Packet Too Big, which the caller handles separately), or from an address that does not name a
 * single host (unspecified, multicast, loopback, broadcast). RFC 1122 3.2.2, RFC 4443 2.4(e).
 */
export function icmpErrorAllowed(c: ErrorCandidate): boolean {
  if (c.fragmentOffset !== 0) return false;
  if (c.linkMulticast || c.dstBroadcast) return false;
  if (c.version === 4) {
    if (c.protocol === 1 && (c.icmpType < 0 || isIcmpv4Error(c.icmpType))) return false;
    if ((c.dst[0]! & 0xf0) === 0xe0) return false;
    const s0 = c.src[0]!;
    if ((s0 & 0xf0) >= 0xe0 || s0 === 127 || s0 === 0) return false;
    return true;
  }
  if (c.protocol === 58 && (c.icmpType < 0 || isIcmpV6Error(c.icmpType))) return false;
  if (c.dst[0] === 0xff) return false;
  if (c.src[0] === 0xff || allZero(c.src)) return false;
  return true;
}

/** Kinds of received ICMP errors delivered to subscribers. */
export type IcmpErrorKind =
  | "unreachable"
  | "port-unreachable"
  | "protocol-unreachable"
  | "frag-needed"
  | "packet-too-big"
  | "time-exceeded"
  | "parameter-problem";

/**
 * A received ICMP error about a packet we sent. Views are valid only during the callback.
 * `src`/`dst`/`protocol`/ports are those of the quoted (original) packet.
 */
export interface IcmpErrorInfo {
  readonly version: 4 | 6;
  readonly kind: IcmpErrorKind;
  readonly type: number;
  readonly code: number;
  /** Next-hop MTU for frag-needed / packet-too-big, else 0. */
  readonly mtu: number;
  /** Who sent the ICMP error. */
  readonly reporter: Uint8Array;
  /** Source of the quoted packet (one of our addresses). */
  readonly src: Uint8Array;
  /** Destination of the quoted packet. */
  readonly dst: Uint8Array;
  /** Upper-layer protocol of the quoted packet. */
  readonly protocol: number;
  /** Source port of the quoted TCP/UDP header, or -1 when not quoted. */
  readonly srcPort: number;
  /** Destination port of the quoted TCP/UDP header, or -1 when not quoted. */
  readonly dstPort: number;
  /** The quoted bytes after the original IP header (at least 8 when ports are set). */
  readonly quoted: Uint8Array;
}

/** A subscriber to received ICMP errors. */
export type IcmpErrorListener = (error: IcmpErrorInfo, now: Instant) => void;

/** Classifies an ICMPv4 error type/code, or null for types that are not errors we report. */
export function classifyIcmpV4(type: number, code: number): IcmpErrorKind | null {
  if (type === ICMPV4_DEST_UNREACHABLE) {
    if (code === ICMPV4_CODE_FRAG_NEEDED) return "frag-needed";
    if (code === ICMPV4_CODE_PORT_UNREACHABLE) return "port-unreachable";
    if (code === ICMPV4_CODE_PROTOCOL_UNREACHABLE) return "protocol-unreachable";
    return "unreachable";
  }
  if (type === ICMPV4_TIME_EXCEEDED) return "time-exceeded";
  if (type === ICMPV4_PARAMETER_PROBLEM) return "parameter-problem";
  return null;
}

/** Classifies an ICMPv6 error type/code, or null for non-error types. */
export function classifyIcmpV6(type: number, code: number): IcmpErrorKind | null {
  if (type === ICMPV6_DEST_UNREACHABLE) {
    return code === ICMPV6_CODE_PORT_UNREACHABLE ? "port-unreachable" : "unreachable";
  }
  if (type === ICMPV6_PACKET_TOO_BIG) return "packet-too-big";
  if (type === ICMPV6_TIME_EXCEEDED) return "time-exceeded";
  if (type === ICMPV6_PARAMETER_PROBLEM) {
    return code === ICMPV6_CODE_UNRECOGNIZED_NEXT_HEADER
      ? "protocol-unreachable"
      : "parameter-problem";
  }
  return null;
}
