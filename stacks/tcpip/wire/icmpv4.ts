/**
 * ICMP for IPv4 (RFC 792; fragmentation-needed MTU per RFC 1191).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Rest of header: echo = Identifier | Sequence Number;          |
 * |  unreachable = unused (16) | Next-Hop MTU (code 4), else 0      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Data: echo data, or the quoted IP header + first 8 bytes ...  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { EMPTY, read16, read32, Span, write16, write32 } from "./bytes.ts";
import { internetChecksum, onesComplementSumRange } from "./checksum.ts";
import type { DropReason } from "./drop.ts";

/** Offset of the type. */
export const ICMPV4_TYPE = 0;
/** Offset of the code. */
export const ICMPV4_CODE = 1;
/** Offset of the checksum. */
export const ICMPV4_CHECKSUM = 2;
/** Offset of the rest of the header (identifier/sequence, MTU, pointer...). */
export const ICMPV4_REST = 4;
/** Offset of the data (echo data or quoted datagram). */
export const ICMPV4_DATA = 8;
/** Length of the fixed header. */
export const ICMPV4_HEADER_LEN = 8;

/** Echo reply. */
export const ICMPV4_ECHO_REPLY = 0;
/** Destination unreachable (codes 0..15; code 4 carries the next-hop MTU). */
export const ICMPV4_DEST_UNREACHABLE = 3;
/** Echo request. */
export const ICMPV4_ECHO_REQUEST = 8;
/** Time exceeded (code 0 TTL, 1 reassembly). */
export const ICMPV4_TIME_EXCEEDED = 11;
/** Parameter problem. */
export const ICMPV4_PARAMETER_PROBLEM = 12;
/** Destination unreachable code: fragmentation needed and DF set. */
export const ICMPV4_CODE_FRAG_NEEDED = 4;

/** Zero-copy accessors over an ICMPv4 message; retarget with `wrap()`. No bounds checks. */
export class Icmpv4View {
  /** The message being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `message` and returns it. */
  wrap(message: Uint8Array): this {
    this.buf = message;
    return this;
  }
  /** Message type. */
  get type(): number {
    return this.buf[ICMPV4_TYPE]!;
  }
  /** Message code. */
  get code(): number {
    return this.buf[ICMPV4_CODE]!;
  }
  /** Checksum as on the wire. */
  get checksum(): number {
    return read16(this.buf, ICMPV4_CHECKSUM);
  }
  /** Bytes 4..8 as u32. */
  get rest(): number {
    return read32(this.buf, ICMPV4_REST);
  }
}

/** True for the error types whose data quotes the offending datagram. */
export function isIcmpv4Error(type: number): boolean {
  return type === ICMPV4_DEST_UNREACHABLE || type === ICMPV4_TIME_EXCEEDED ||
    type === ICMPV4_PARAMETER_PROBLEM || type === 4 /* source quench */ ||
    type === 5 /* redirect */;
}

/**
 * A parsed (or to-be-emitted) ICMPv4 message; reuse one per receive path. Bytes 4..8 live in
 * `restOfHeader`; `identifier`, `sequence` and `nextHopMtu` read and write their parts of it, so
 * any message type re-emits identically.
 */
export class Icmpv4Repr {
  /** Message type. */
  type = 0;
  /** Message code. */
  code = 0;
  /** Checksum as received (`emit` computes its own). */
  checksum = 0;
  /** Bytes 4..8 of the header as u32. */
  restOfHeader = 0;
  private readonly dataSpan = new Span();
  /** Everything after the 8-byte header: echo data, or the quoted datagram of an error. */
  get data(): Uint8Array {
    return this.dataSpan.view;
  }
  set data(v: Uint8Array) {
    this.dataSpan.assign(v);
  }

  /** Echo identifier (high half of `restOfHeader`). */
  get identifier(): number {
    return this.restOfHeader >>> 16;
  }
  set identifier(v: number) {
    this.restOfHeader = (((v & 0xffff) << 16) | (this.restOfHeader & 0xffff)) >>> 0;
  }
  /** Echo sequence number (low half of `restOfHeader`). */
  get sequence(): number {
    return this.restOfHeader & 0xffff;
  }
  set sequence(v: number) {
    this.restOfHeader = ((this.restOfHeader & 0xffff0000) | (v & 0xffff)) >>> 0;
  }
  /** Next-hop MTU of a fragmentation-needed message (low half of `restOfHeader`). */
  get nextHopMtu(): number {
    return this.restOfHeader & 0xffff;
  }
  set nextHopMtu(v: number) {
    this.sequence = v;
  }
  /** The quoted original datagram of an error message (same view as `data`), else empty. */
  get quoted(): Uint8Array {
    return isIcmpv4Error(this.type) ? this.data : EMPTY;
  }
  /** Length `emit` writes: 8 + data. */
  get length(): number {
    return ICMPV4_HEADER_LEN + this.dataSpan.length;
  }

  /** Clears to an empty echo reply. */
  reset(): void {
    this.type =
      this.code =
      this.checksum =
      this.restOfHeader =
        0;
    this.data = EMPTY;
  }

  /** Reads `message` (the whole IP payload) and verifies its checksum. */
  parse(message: Uint8Array): DropReason | undefined {
    return this.parseAt(message, 0, message.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(buf: Uint8Array, start: number, end: number): DropReason | undefined {
    if (end - start < ICMPV4_HEADER_LEN) return "truncated";
    if (onesComplementSumRange(buf, start, end) !== 0xffff) return "bad-checksum";
    this.type = buf[start + ICMPV4_TYPE]!;
    this.code = buf[start + ICMPV4_CODE]!;
    this.checksum = read16(buf, start + ICMPV4_CHECKSUM);
    this.restOfHeader = read32(buf, start + ICMPV4_REST);
    this.dataSpan.set(buf, start + ICMPV4_DATA, end);
    return undefined;
  }

  /**
   * Writes the message (header, `data` copied after it, checksum) into `buf`; returns its
   * length. `data` may already sit at `buf[8..]` (then it is left in place).
   */
  emit(buf: Uint8Array): number {
    const n = ICMPV4_HEADER_LEN + this.data.length;
    buf[ICMPV4_TYPE] = this.type;
    buf[ICMPV4_CODE] = this.code;
    write16(buf, ICMPV4_CHECKSUM, 0);
    write32(buf, ICMPV4_REST, this.restOfHeader);
    buf.set(this.data, ICMPV4_DATA);
    this.checksum = internetChecksum(buf.subarray(0, n));
    write16(buf, ICMPV4_CHECKSUM, this.checksum);
    return n;
  }
}
