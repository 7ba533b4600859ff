/**
 * UDP headers (RFC 768; IPv6 rules in RFC 8200 section 8.1).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Source Port          |       Destination Port        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |            Length             |           Checksum            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Checksum: over the pseudo-header and `length` bytes. IPv4: 0 means "none". IPv6: mandatory
 * (0 is invalid). A computed 0 is sent as 0xffff (see `writeTransportChecksum`).
 *
 * @module
 */

import { EMPTY, read16, Span, write16 } from "./bytes.ts";
import type { DropReason } from "./drop.ts";

/** Offset of the source port. */
export const UDP_SRC_PORT = 0;
/** Offset of the destination port. */
export const UDP_DST_PORT = 2;
/** Offset of the length (header and payload). */
export const UDP_LENGTH = 4;
/** Offset of the checksum. */
export const UDP_CHECKSUM = 6;
/** Header length. */
export const UDP_HEADER_LEN = 8;

/** Zero-copy accessors over a UDP header; retarget with `wrap()`. No bounds checks. */
export class UdpView {
  /** The datagram being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `datagram` and returns it. */
  wrap(datagram: Uint8Array): this {
    this.buf = datagram;
    return this;
  }
  /** Source port. */
  get srcPort(): number {
    return read16(this.buf, UDP_SRC_PORT);
  }
  /** Destination port. */
  get dstPort(): number {
    return read16(this.buf, UDP_DST_PORT);
  }
  /** Length of header and payload. */
  get length(): number {
    return read16(this.buf, UDP_LENGTH);
  }
  /** Checksum as on the wire. */
  get checksum(): number {
    return read16(this.buf, UDP_CHECKSUM);
  }
}

/** A parsed (or to-be-emitted) UDP header; reuse one per receive path. */
export class UdpRepr {
  /** Source port. */
  srcPort = 0;
  /** Destination port. */
  dstPort = 0;
  /** Length of header and payload. */
  length = UDP_HEADER_LEN;
  /** Checksum as received (0: none, IPv4 only). */
  checksum = 0;
  private readonly payloadSpan = new Span();
  /** Offset of the payload in the buffer given to the last parse. */
  get payloadStart(): number {
    return this.payloadSpan.start;
  }
  /** The payload, bounded by `length`: a view. */
  get payload(): Uint8Array {
    return this.payloadSpan.view;
  }
  set payload(v: Uint8Array) {
    this.payloadSpan.assign(v);
  }

  /** Clears to an empty datagram. */
  reset(): void {
    this.srcPort = this.dstPort = this.checksum = 0;
    this.length = UDP_HEADER_LEN;
    this.payload = EMPTY;
  }

  /**
   * Reads `segment` (the IP payload): 8 <= length <= segment. Structure only; the caller checks
   * the checksum with the pseudo-header (`transportChecksumOk`).
   */
  parse(segment: Uint8Array): DropReason | undefined {
    return this.parseAt(segment, 0, segment.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(buf: Uint8Array, start: number, end: number): DropReason | undefined {
    if (end - start < UDP_HEADER_LEN) return "truncated";
    const len = read16(buf, start + UDP_LENGTH);
    if (len < UDP_HEADER_LEN || len > end - start) return "bad-length";
    this.srcPort = read16(buf, start + UDP_SRC_PORT);
    this.dstPort = read16(buf, start + UDP_DST_PORT);
    this.length = len;
    this.checksum = read16(buf, start + UDP_CHECKSUM);
    this.payloadSpan.set(buf, start + UDP_HEADER_LEN, start + len);
    return undefined;
  }

  /**
   * Writes the header for a `payloadLength`-byte payload into `buf` with a zero checksum (fill
   * it with `writeTransportChecksum(seg, 6, pseudo)` after the payload); sets `length`;
   * returns 8.
   */
  emit(buf: Uint8Array, payloadLength: number): number {
    this.length = UDP_HEADER_LEN + payloadLength;
    write16(buf, UDP_SRC_PORT, this.srcPort);
    write16(buf, UDP_DST_PORT, this.dstPort);
    write16(buf, UDP_LENGTH, this.length);
    write16(buf, UDP_CHECKSUM, 0);
    return UDP_HEADER_LEN;
  }
}
