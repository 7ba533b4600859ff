/**
 * IPv4 headers (RFC 791).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |Version|  IHL  |   DSCP    |ECN|          Total Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |         Identification        |R|D|M|      Fragment Offset    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Time to Live |    Protocol   |         Header Checksum       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       Source Address                          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Destination Address                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Options (IHL > 5)          |    Padding    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { copyBytes, EMPTY, read16, read32, Span, write16, write32 } from "./bytes.ts";
import { onesComplementSumRange } from "./checksum.ts";
import type { DropReason } from "./drop.ts";

/** Offset of version (high nibble) and IHL (low nibble). */
export const IPV4_VER_IHL = 0;
/** Offset of DSCP (6 bits) and ECN (2 bits). */
export const IPV4_TOS = 1;
/** Offset of the total length. */
export const IPV4_TOTAL_LEN = 2;
/** Offset of the identification. */
export const IPV4_IDENT = 4;
/** Offset of flags (3 bits) and fragment offset (13 bits, units of 8 bytes). */
export const IPV4_FLAGS_FRAG = 6;
/** Offset of the TTL. */
export const IPV4_TTL = 8;
/** Offset of the protocol. */
export const IPV4_PROTOCOL = 9;
/** Offset of the header checksum. */
export const IPV4_CHECKSUM = 10;
/** Offset of the source address. */
export const IPV4_SRC = 12;
/** Offset of the destination address. */
export const IPV4_DST = 16;
/** Length of a header without options. */
export const IPV4_MIN_HEADER_LEN = 20;

/** Reserved ("evil") flag bit in the flags/fragment word. */
export const IPV4_FLAG_RESERVED = 0x8000;
/** Don't Fragment bit in the flags/fragment word. */
export const IPV4_FLAG_DF = 0x4000;
/** More Fragments bit in the flags/fragment word. */
export const IPV4_FLAG_MF = 0x2000;

/** IP protocol number of ICMP. */
export const IP_PROTO_ICMP = 1;
/** IP protocol number of TCP. */
export const IP_PROTO_TCP = 6;
/** IP protocol number of UDP. */
export const IP_PROTO_UDP = 17;
/** IP protocol number of ICMPv6. */
export const IP_PROTO_ICMPV6 = 58;

/** Zero-copy accessors over an IPv4 header; retarget with `wrap()`. No bounds checks. */
export class Ipv4View {
  /** The packet being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `packet` and returns it. */
  wrap(packet: Uint8Array): this {
    this.buf = packet;
    return this;
  }
  /** IP version (4). */
  get version(): number {
    return this.buf[IPV4_VER_IHL]! >>> 4;
  }
  /** Header length in bytes (IHL * 4). */
  get headerLength(): number {
    return (this.buf[IPV4_VER_IHL]! & 0x0f) * 4;
  }
  /** DSCP (6 bits). */
  get dscp(): number {
    return this.buf[IPV4_TOS]! >>> 2;
  }
  /** ECN codepoint (2 bits). */
  get ecn(): number {
    return this.buf[IPV4_TOS]! & 3;
  }
  /** Total length of header and payload. */
  get totalLength(): number {
    return read16(this.buf, IPV4_TOTAL_LEN);
  }
  /** Identification. */
  get identification(): number {
    return read16(this.buf, IPV4_IDENT);
  }
  /** Flags and fragment offset word. */
  get flagsFragment(): number {
    return read16(this.buf, IPV4_FLAGS_FRAG);
  }
  /** Time to live. */
  get ttl(): number {
    return this.buf[IPV4_TTL]!;
  }
  /** Protocol number. */
  get protocol(): number {
    return this.buf[IPV4_PROTOCOL]!;
  }
  /** Header checksum as on the wire. */
  get checksum(): number {
    return read16(this.buf, IPV4_CHECKSUM);
  }
  /** Source address as u32. */
  get src(): number {
    return read32(this.buf, IPV4_SRC);
  }
  /** Destination address as u32. */
  get dst(): number {
    return read32(this.buf, IPV4_DST);
  }
}

/** A parsed (or to-be-emitted) IPv4 header; reuse one per receive path. */
export class Ipv4Repr {
  /** DSCP (6 bits). */
  dscp = 0;
  /** ECN codepoint (2 bits). */
  ecn = 0;
  /** Total length (set by `parse`; `emit` recomputes it from the payload length). */
  totalLength = 0;
  /** Identification. */
  identification = 0;
  /** The reserved flag bit (kept so captures re-emit identically). */
  reservedFlag = false;
  /** Don't Fragment. */
  dontFragment = false;
  /** More Fragments. */
  moreFragments = false;
  /** Fragment offset in bytes (a multiple of 8). */
  fragmentOffset = 0;
  /** Time to live. */
  ttl = 64;
  /** Protocol number of the payload. */
  protocol = 0;
  /** Header checksum as received (`emit` computes its own). */
  checksum = 0;
  /** Source address as u32. */
  src = 0;
  /** Destination address as u32. */
  dst = 0;
  private readonly optionSpan = new Span();
  private readonly payloadSpan = new Span();

  /** Option bytes (a view into the packet, or empty); `emit` copies them, zero-padded to 4. */
  get options(): Uint8Array {
    return this.optionSpan.view;
  }
  set options(v: Uint8Array) {
    this.optionSpan.assign(v);
  }
  /** The payload, bounded by the total length (Ethernet padding excluded): a view. */
  get payload(): Uint8Array {
    return this.payloadSpan.view;
  }
  set payload(v: Uint8Array) {
    this.payloadSpan.assign(v);
  }
  /** Offset of the payload in the buffer given to the last parse. */
  get payloadStart(): number {
    return this.payloadSpan.start;
  }
  /** End of the payload (start + total length) in the buffer given to the last parse. */
  get payloadEnd(): number {
    return this.payloadSpan.end;
  }

  /** True for any fragment (MF set or a non-zero offset). */
  get isFragment(): boolean {
    return this.moreFragments || this.fragmentOffset !== 0;
  }

  /** Header length `emit` writes: 20 + options rounded up to 4. */
  get headerLength(): number {
    return IPV4_MIN_HEADER_LEN + ((this.optionSpan.length + 3) & ~3);
  }

  /** Clears to a header with no options and no payload. */
  reset(): void {
    this.dscp =
      this.ecn =
      this.totalLength =
      this.identification =
        0;
    this.reservedFlag = this.dontFragment = this.moreFragments = false;
    this.fragmentOffset =
      this.protocol =
      this.checksum =
      this.src =
      this.dst =
        0;
    this.ttl = 64;
    this.options = EMPTY;
    this.payload = EMPTY;
  }

  /**
   * Reads and validates `packet` (the Ethernet payload, possibly padded): version, IHL >= 5,
   * header within the buffer, 20 <= total length <= buffer, header checksum.
   */
  parse(packet: Uint8Array): DropReason | undefined {
    return this.parseAt(packet, 0, packet.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(buf: Uint8Array, start: number, end: number): DropReason | undefined {
    const avail = end - start;
    if (avail < IPV4_MIN_HEADER_LEN) return "truncated";
    const vihl = buf[start + IPV4_VER_IHL]!;
    if (vihl >>> 4 !== 4) return "bad-version";
    const hl = (vihl & 0x0f) * 4;
    if (hl < IPV4_MIN_HEADER_LEN) return "bad-header-length";
    if (hl > avail) return "truncated";
    const total = read16(buf, start + IPV4_TOTAL_LEN);
    if (total < hl || total > avail) return "bad-length";
    const tos = buf[start + IPV4_TOS]!;
    const id = read16(buf, start + IPV4_IDENT);
    const ff = read16(buf, start + IPV4_FLAGS_FRAG);
    const ttl = buf[start + IPV4_TTL]!, protocol = buf[start + IPV4_PROTOCOL]!;
    const checksum = read16(buf, start + IPV4_CHECKSUM);
    const src = read32(buf, start + IPV4_SRC), dst = read32(buf, start + IPV4_DST);
    // The header checksum from the words just read (no second pass over the bytes); options,
    // rare, are summed from the buffer.
    let sum = ((vihl << 8) | tos) + total + id + ff + ((ttl << 8) | protocol) + checksum +
      (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
    if (hl > IPV4_MIN_HEADER_LEN) {
      sum += onesComplementSumRange(buf, start + IPV4_MIN_HEADER_LEN, start + hl);
    }
    sum = (sum & 0xffff) + (sum >>> 16);
    if ((sum & 0xffff) + (sum >>> 16) !== 0xffff) return "bad-checksum";
    this.dscp = tos >>> 2;
    this.ecn = tos & 3;
    this.totalLength = total;
    this.identification = id;
    this.reservedFlag = (ff & IPV4_FLAG_RESERVED) !== 0;
    this.dontFragment = (ff & IPV4_FLAG_DF) !== 0;
    this.moreFragments = (ff & IPV4_FLAG_MF) !== 0;
    this.fragmentOffset = (ff & 0x1fff) * 8;
    this.ttl = ttl;
    this.protocol = protocol;
    this.checksum = checksum;
    this.src = src;
    this.dst = dst;
    this.optionSpan.set(buf, start + IPV4_MIN_HEADER_LEN, start + hl);
    this.payloadSpan.set(buf, start + hl, start + total);
    return undefined;
  }

  /**
   * Writes the header for a `payloadLength`-byte payload into `buf` (options copied, checksum
   * computed); sets `totalLength` and `checksum`; returns the header length.
   */
  emit(buf: Uint8Array, payloadLength: number): number {
    return this.emitAt(buf, 0, payloadLength);
  }

  /**
   * `emit(buf.subarray(at), payloadLength)` without making that view: the header goes at
   * offset `at` of `buf` (the IP layer writes it behind the Ethernet header of a frame).
   */
  emitAt(buf: Uint8Array, at: number, payloadLength: number): number {
    const hl = this.headerLength;
    const total = (hl + payloadLength) & 0xffff;
    this.totalLength = hl + payloadLength;
    // Masked to the bits written, so the sum matches the bytes even for out-of-range fields.
    const w0 = ((0x40 | (hl >>> 2)) << 8) | (((this.dscp << 2) | (this.ecn & 3)) & 0xff);
    const id = this.identification & 0xffff;
    const ff = (this.reservedFlag ? IPV4_FLAG_RESERVED : 0) |
      (this.dontFragment ? IPV4_FLAG_DF : 0) | (this.moreFragments ? IPV4_FLAG_MF : 0) |
      ((this.fragmentOffset >>> 3) & 0x1fff);
    const w4 = ((this.ttl & 0xff) << 8) | (this.protocol & 0xff);
    const src = this.src, dst = this.dst;
    write16(buf, at, w0);
    write16(buf, at + IPV4_TOTAL_LEN, total);
    write16(buf, at + IPV4_IDENT, id);
    write16(buf, at + IPV4_FLAGS_FRAG, ff);
    write16(buf, at + IPV4_TTL, w4);
    write32(buf, at + IPV4_SRC, src);
    write32(buf, at + IPV4_DST, dst);
    const opt = this.optionSpan;
    const n = opt.length;
    // The fixed part's sum from the field values (no pass over the written bytes); options,
    // rare, are summed from the buffer once written.
    let sum = w0 + total + id + ff + w4 + (src >>> 16) + (src & 0xffff) +
      (dst >>> 16) + (dst & 0xffff);
    if (n > 0 || hl > IPV4_MIN_HEADER_LEN) {
      copyBytes(buf, at + IPV4_MIN_HEADER_LEN, opt.src, opt.start, n);
      for (let i = IPV4_MIN_HEADER_LEN + n; i < hl; i++) buf[at + i] = 0;
      sum += onesComplementSumRange(buf, at + IPV4_MIN_HEADER_LEN, at + hl);
    }
    this.checksum = ipv4FoldChecksum(sum);
    write16(buf, at + IPV4_CHECKSUM, this.checksum);
    return hl;
  }
}

/** The complemented 16-bit checksum of a header word sum below 2^31. */
function ipv4FoldChecksum(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Writes a 20-byte IPv4 header without options at `buf[at..]`, its checksum computed from the
 * field values rather than by summing the written bytes: the IP layer's per-packet transmit
 * header. `tos` is DSCP << 2 | ECN, `flagsFragment` the flags/fragment-offset word as on the
 * wire (e.g. `IPV4_FLAG_DF`), `src`/`dst` u32 (or the same bits as int32). Returns the
 * checksum written.
 */
export function emitIpv4Header(
  buf: Uint8Array,
  at: number,
  tos: number,
  totalLength: number,
  identification: number,
  flagsFragment: number,
  ttl: number,
  protocol: number,
  src: number,
  dst: number,
): number {
  const w0 = 0x4500 | (tos & 0xff);
  const w4 = ((ttl & 0xff) << 8) | (protocol & 0xff);
  const ck = ipv4FoldChecksum(
    w0 + (totalLength & 0xffff) + (identification & 0xffff) + (flagsFragment & 0xffff) + w4 +
      (src >>> 16) + (src & 0xffff) +
      (dst >>> 16) + (dst & 0xffff),
  );
  buf[at] = 0x45;
  buf[at + IPV4_TOS] = tos;
  buf[at + IPV4_TOTAL_LEN] = totalLength >>> 8;
  buf[at + IPV4_TOTAL_LEN + 1] = totalLength;
  buf[at + IPV4_IDENT] = identification >>> 8;
  buf[at + IPV4_IDENT + 1] = identification;
  buf[at + IPV4_FLAGS_FRAG] = flagsFragment >>> 8;
  buf[at + IPV4_FLAGS_FRAG + 1] = flagsFragment;
  buf[at + IPV4_TTL] = ttl;
  buf[at + IPV4_PROTOCOL] = protocol;
  buf[at + IPV4_CHECKSUM] = ck >>> 8;
  buf[at + IPV4_CHECKSUM + 1] = ck;
  buf[at + IPV4_SRC] = src >>> 24;
  buf[at + IPV4_SRC + 1] = src >>> 16;
  buf[at + IPV4_SRC + 2] = src >>> 8;
  buf[at + IPV4_SRC + 3] = src;
  buf[at + IPV4_DST] = dst >>> 24;
  buf[at + IPV4_DST + 1] = dst >>> 16;
  buf[at + IPV4_DST + 2] = dst >>> 8;
  buf[at + IPV4_DST + 3] = dst;
  return ck;
}
