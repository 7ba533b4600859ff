/**
 * IPv6 headers (RFC 8200) and the walk over extension headers to the upper-layer protocol.
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version| Traffic Class |           Flow Label                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                  Source Address (16 bytes)                    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               Destination Address (16 bytes)                  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Generic extension header (hop-by-hop, routing, destination options):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Header  |  Hdr Ext Len  |  ... (Hdr Ext Len + 1) * 8 bytes in all
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Fragment header (8 bytes):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
 * |                         Identification                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Authentication header (RFC 4302): Payload Len = (length / 4) - 2, length a multiple of 8.
 * ```
 *
 * @module
 */

import { copyBytes, EMPTY, read16, read32, Span, write16 } from "./bytes.ts";
import type { DropReason } from "./drop.ts";

/** Offset of version, traffic class and flow label. */
export const IPV6_VER_TC_FLOW = 0;
/** Offset of the payload length. */
export const IPV6_PAYLOAD_LEN = 4;
/** Offset of the next header. */
export const IPV6_NEXT_HEADER = 6;
/** Offset of the hop limit. */
export const IPV6_HOP_LIMIT = 7;
/** Offset of the source address. */
export const IPV6_SRC = 8;
/** Offset of the destination address. */
export const IPV6_DST = 24;
/** Length of the fixed header. */
export const IPV6_HEADER_LEN = 40;

/** Next header: hop-by-hop options. */
export const IPV6_NH_HOP_BY_HOP = 0;
/** Next header: routing. */
export const IPV6_NH_ROUTING = 43;
/** Next header: fragment. */
export const IPV6_NH_FRAGMENT = 44;
/** Next header: ESP (the walk stops: the rest is encrypted). */
export const IPV6_NH_ESP = 50;
/** Next header: authentication header. */
export const IPV6_NH_AH = 51;
/** Next header: no next header. */
export const IPV6_NH_NONE = 59;
/** Next header: destination options. */
export const IPV6_NH_DEST_OPTS = 60;

/** Zero-copy accessors over an IPv6 fixed header; retarget with `wrap()`. No bounds checks. */
export class Ipv6View {
  /** The packet being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `packet` and returns it. */
  wrap(packet: Uint8Array): this {
    this.buf = packet;
    return this;
  }
  /** IP version (6). */
  get version(): number {
    return this.buf[0]! >>> 4;
  }
  /** Traffic class (DSCP << 2 | ECN). */
  get trafficClass(): number {
    return ((this.buf[0]! & 0x0f) << 4) | (this.buf[1]! >>> 4);
  }
  /** Flow label (20 bits). */
  get flowLabel(): number {
    return ((this.buf[1]! & 0x0f) << 16) | read16(this.buf, 2);
  }
  /** Payload length (extension headers included). */
  get payloadLength(): number {
    return read16(this.buf, IPV6_PAYLOAD_LEN);
  }
  /** Next header of the fixed header. */
  get nextHeader(): number {
    return this.buf[IPV6_NEXT_HEADER]!;
  }
  /** Hop limit. */
  get hopLimit(): number {
    return this.buf[IPV6_HOP_LIMIT]!;
  }
  /** Source address (a new view; allocates). */
  get src(): Uint8Array {
    return this.buf.subarray(IPV6_SRC, IPV6_SRC + 16);
  }
  /** Destination address (a new view; allocates). */
  get dst(): Uint8Array {
    return this.buf.subarray(IPV6_DST, IPV6_DST + 16);
  }
}

/** True for extension headers laid out as next header, length in 8-byte units minus one. */
function isGenericExt(nh: number): boolean {
  return nh === IPV6_NH_HOP_BY_HOP || nh === IPV6_NH_ROUTING || nh === IPV6_NH_DEST_OPTS ||
    nh === 135 /* mobility */ || nh === 139 /* HIP */ || nh === 140 /* shim6 */ ||
    nh === 253 || nh === 254; /* experimental, RFC 3692 */
}

/** A parsed (or to-be-emitted) IPv6 header with its extension headers; reuse one per path. */
export class Ipv6Repr {
  /** Traffic class: DSCP << 2 | ECN. */
  trafficClass = 0;
  /** Flow label (20 bits). */
  flowLabel = 0;
  /** Payload length from the header (extension headers included). */
  payloadLength = 0;
  /** Next header of the fixed header (the first extension header, or the protocol). */
  nextHeader = 0;
  /** Hop limit. */
  hopLimit = 64;
  /** Source address (copied in). */
  readonly src: Uint8Array = new Uint8Array(16);
  /** Destination address (copied in). */
  readonly dst: Uint8Array = new Uint8Array(16);
  private readonly extSpan = new Span();
  private readonly payloadSpan = new Span();

  /** Extension header bytes as received (a view), reproduced verbatim by `emit`. */
  get extHeaders(): Uint8Array {
    return this.extSpan.view;
  }
  set extHeaders(v: Uint8Array) {
    this.extSpan.assign(v);
  }
  /** The upper-layer payload, bounded by the payload length: a view. */
  get payload(): Uint8Array {
    return this.payloadSpan.view;
  }
  set payload(v: Uint8Array) {
    this.payloadSpan.assign(v);
  }
  /** Offset of the upper-layer payload in the buffer given to the last parse. */
  get payloadStart(): number {
    return this.payloadSpan.start;
  }
  /** End of the payload (start of header + 40 + payload length) in that buffer. */
  get payloadEnd(): number {
    return this.payloadSpan.end;
  }
  /** The upper-layer protocol after the extension headers (or ESP 50 / No Next Header 59). */
  protocol = 0;
  /** Offset of the upper-layer header from the start of the IPv6 header. */
  upperOffset = IPV6_HEADER_LEN;
  /** True when a fragment header was present. */
  fragmentPresent = false;
  /** Fragment offset in bytes. */
  fragmentOffset = 0;
  /** The fragment header's M flag. */
  moreFragments = false;
  /** The fragment header's identification. */
  fragmentId = 0;

  /** ECN codepoint (low 2 bits of the traffic class). */
  get ecn(): number {
    return this.trafficClass & 3;
  }
  /** DSCP (high 6 bits of the traffic class). */
  get dscp(): number {
    return this.trafficClass >>> 2;
  }
  /** Header length `emit` writes: 40 + extension headers. */
  get headerLength(): number {
    return IPV6_HEADER_LEN + this.extSpan.length;
  }

  /** Clears to a header with no extension headers and no payload. */
  reset(): void {
    this.trafficClass =
      this.flowLabel =
      this.payloadLength =
      this.nextHeader =
        0;
    this.hopLimit = 64;
    this.src.fill(0);
    this.dst.fill(0);
    this.extHeaders = EMPTY;
    this.protocol = 0;
    this.upperOffset = IPV6_HEADER_LEN;
    this.fragmentPresent = this.moreFragments = false;
    this.fragmentOffset = this.fragmentId = 0;
    this.payload = EMPTY;
  }

  /**
   * Reads `packet` (the Ethernet payload, possibly padded): version, payload length within the
   * buffer, and every extension header within the payload. Hop-by-hop anywhere but first and an
   * AH whose length is not a multiple of 8 are 'bad-extension-header'.
   */
  parse(packet: Uint8Array): DropReason | undefined {
    return this.parseAt(packet, 0, packet.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(packet: Uint8Array, start: number, bufEnd: number): DropReason | undefined {
    if (bufEnd - start < IPV6_HEADER_LEN) return "truncated";
    if (packet[start + IPV6_VER_TC_FLOW]! >>> 4 !== 6) return "bad-version";
    const plen = read16(packet, start + IPV6_PAYLOAD_LEN);
    const end = start + IPV6_HEADER_LEN + plen;
    if (end > bufEnd) return "bad-length";
    let nh = packet[start + IPV6_NEXT_HEADER]!;
    let off = start + IPV6_HEADER_LEN;
    let fragPresent = false, fragOffset = 0, fragMore = false, fragId = 0;
    // Each header consumes at least 8 bytes, so the walk ends within plen / 8 steps.
    for (;;) {
      if (isGenericExt(nh)) {
        if (nh === IPV6_NH_HOP_BY_HOP && off !== start + IPV6_HEADER_LEN) {
          return "bad-extension-header";
        }
        if (off + 2 > end) return "truncated";
        const len = (packet[off + 1]! + 1) * 8;
        if (off + len > end) return "truncated";
        nh = packet[off]!;
        off += len;
      } else if (nh === IPV6_NH_FRAGMENT) {
        if (off + 8 > end) return "truncated";
        const fo = read16(packet, off + 2);
        fragPresent = true;
        fragOffset = fo & 0xfff8;
        fragMore = (fo & 1) !== 0;
        fragId = read32(packet, off + 4);
        nh = packet[off]!;
        off += 8;
      } else if (nh === IPV6_NH_AH) {
        if (off + 2 > end) return "truncated";
        const len = (packet[off + 1]! + 2) * 4;
        // RFC 4302 2.2: an IPv6 AH is a multiple of 8 bytes; its fixed part is 12, so 16 at least.
        if (len % 8 !== 0 || len < 16) return "bad-extension-header";
        if (off + len > end) return "truncated";
        nh = packet[off]!;
        off += len;
      } else {
        break;
      }
    }
    const b0 = packet[start]!, b1 = packet[start + 1]!;
    this.trafficClass = ((b0 & 0x0f) << 4) | (b1 >>> 4);
    this.flowLabel = ((b1 & 0x0f) << 16) | read16(packet, start + 2);
    this.payloadLength = plen;
    this.nextHeader = packet[start + IPV6_NEXT_HEADER]!;
    this.hopLimit = packet[start + IPV6_HOP_LIMIT]!;
    copyBytes(this.src, 0, packet, start + IPV6_SRC, 16);
    copyBytes(this.dst, 0, packet, start + IPV6_DST, 16);
    this.extSpan.set(packet, start + IPV6_HEADER_LEN, off);
    this.protocol = nh;
    this.upperOffset = off - start;
    this.fragmentPresent = fragPresent;
    this.fragmentOffset = fragOffset;
    this.moreFragments = fragMore;
    this.fragmentId = fragId;
    this.payloadSpan.set(packet, off, end);
    return undefined;
  }

  /**
   * Writes the fixed header and the extension headers for a `payloadLength`-byte upper-layer
   * payload into `buf`; sets `payloadLength`; returns the header length. With no extension
   * headers the next header written is `protocol`, otherwise `nextHeader` (the chain inside the
   * extension bytes must end in `protocol`).
   */
  emit(buf: Uint8Array, payloadLength: number): number {
    return this.emitAt(buf, 0, payloadLength);
  }

  /**
   * `emit(buf.subarray(at), payloadLength)` without making that view: the header goes at
   * offset `at` of `buf` (the IP layer writes it behind the Ethernet header of a frame).
   */
  emitAt(buf: Uint8Array, at: number, payloadLength: number): number {
    const ext = this.extSpan.length;
    this.payloadLength = ext + payloadLength;
    const tc = this.trafficClass, fl = this.flowLabel;
    buf[at] = 0x60 | (tc >>> 4);
    buf[at + 1] = ((tc & 0x0f) << 4) | ((fl >>> 16) & 0x0f);
    write16(buf, at + 2, fl & 0xffff);
    write16(buf, at + IPV6_PAYLOAD_LEN, this.payloadLength);
    buf[at + IPV6_NEXT_HEADER] = ext === 0 ? this.protocol : this.nextHeader;
    buf[at + IPV6_HOP_LIMIT] = this.hopLimit;
    copyBytes(buf, at + IPV6_SRC, this.src, 0, 16);
    copyBytes(buf, at + IPV6_DST, this.dst, 0, 16);
    copyBytes(buf, at + IPV6_HEADER_LEN, this.extSpan.src, this.extSpan.start, ext);
    return IPV6_HEADER_LEN + ext;
  }
}

/**
 * Writes a 40-byte IPv6 header without extension headers at `buf[at..]`: the IP layer's
 * per-packet transmit header, without a repr to fill. `src`/`dst` are 16 bytes each.
 */
export function emitIpv6Header(
  buf: Uint8Array,
  at: number,
  trafficClass: number,
  flowLabel: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
  src: Uint8Array,
  dst: Uint8Array,
): void {
  buf[at] = 0x60 | ((trafficClass >>> 4) & 0x0f);
  buf[at + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f);
  buf[at + 2] = flowLabel >>> 8;
  buf[at + 3] = flowLabel;
  buf[at + IPV6_PAYLOAD_LEN] = payloadLength >>> 8;
  buf[at + IPV6_PAYLOAD_LEN + 1] = payloadLength;
  buf[at + IPV6_NEXT_HEADER] = nextHeader;
  buf[at + IPV6_HOP_LIMIT] = hopLimit;
  for (let i = 0; i < 16; i++) {
    buf[at + IPV6_SRC + i] = src[i]!;
    buf[at + IPV6_DST + i] = dst[i]!;
  }
}
