/**
 * ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Type      |     Code      |          Checksum             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Rest: echo Identifier|Sequence; packet-too-big MTU; param-prob |
 * | pointer; RA CurHopLimit|M|O|..|Router Lifetime; NA R|S|O|...   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | RA: Reachable Time (32), Retrans Timer (32)                   |
 * | NS/NA: Target Address (16 bytes)                              |
 * | then NDP options: Type (8) | Length (8, units of 8 bytes) |...|
 * | errors: as much of the invoking packet as fits; echo: data    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Prefix Information option (type 3, length 4):
 * | Type | Length | Prefix Length |L|A| Reserved1 | Valid Lifetime (32) |
 * | Preferred Lifetime (32) | Reserved2 (32) | Prefix (16 bytes) |
 * MTU option (type 5, length 1): | Type | Length | Reserved (16) | MTU (32) |
 * Link-layer address options (types 1 and 2, length 1 on Ethernet): | Type | Length | MAC (6) |
 * ```
 *
 * The checksum covers the IPv6 pseudo-header: `parse` checks structure only; verify with
 * `transportChecksumOk(msg, pseudoHeaderSumV6(src, dst, 58, msg.length))`.
 *
 * @module
 */

import { bytesEqual, copyBytes, EMPTY, read16, read32, Span, write16, write32 } from "./bytes.ts";
import type { DropReason } from "./drop.ts";

/** Offset of the type. */
export const ICMPV6_TYPE = 0;
/** Offset of the code. */
export const ICMPV6_CODE = 1;
/** Offset of the checksum. */
export const ICMPV6_CHECKSUM = 2;
/** Offset of the 32-bit rest of the header. */
export const ICMPV6_REST = 4;
/** Offset of the data after the 8-byte header. */
export const ICMPV6_DATA = 8;
/** Offset of the RA reachable time. */
export const ICMPV6_RA_REACHABLE = 8;
/** Offset of the RA retransmission timer. */
export const ICMPV6_RA_RETRANS = 12;
/** Offset of the NS/NA target address. */
export const ICMPV6_ND_TARGET = 8;

/** Destination unreachable. */
export const ICMPV6_DEST_UNREACHABLE = 1;
/** Packet too big (rest of header = MTU). */
export const ICMPV6_PACKET_TOO_BIG = 2;
/** Time exceeded. */
export const ICMPV6_TIME_EXCEEDED = 3;
/** Parameter problem (rest of header = pointer). */
export const ICMPV6_PARAMETER_PROBLEM = 4;
/** Echo request. */
export const ICMPV6_ECHO_REQUEST = 128;
/** Echo reply. */
export const ICMPV6_ECHO_REPLY = 129;
/** Router Solicitation. */
export const ICMPV6_ROUTER_SOLICIT = 133;
/** Router Advertisement. */
export const ICMPV6_ROUTER_ADVERT = 134;
/** Neighbor Solicitation. */
export const ICMPV6_NEIGHBOR_SOLICIT = 135;
/** Neighbor Advertisement. */
export const ICMPV6_NEIGHBOR_ADVERT = 136;

/** NDP option: source link-layer address. */
export const NDP_OPT_SOURCE_LLA = 1;
/** NDP option: target link-layer address. */
export const NDP_OPT_TARGET_LLA = 2;
/** NDP option: prefix information. */
export const NDP_OPT_PREFIX_INFO = 3;
/** NDP option: MTU. */
export const NDP_OPT_MTU = 5;

/** RA flag: managed address configuration (in the rest-of-header word). */
export const RA_FLAG_MANAGED = 0x0080_0000;
/** RA flag: other configuration. */
export const RA_FLAG_OTHER = 0x0040_0000;
/** NA flag: router. */
export const NA_FLAG_ROUTER = 0x8000_0000;
/** NA flag: solicited. */
export const NA_FLAG_SOLICITED = 0x4000_0000;
/** NA flag: override. */
export const NA_FLAG_OVERRIDE = 0x2000_0000;

/** The fixed length of an NDP message of `type` before its options, or 0 if not NDP. */
export function ndpFixedLength(type: number): number {
  switch (type) {
    case ICMPV6_ROUTER_SOLICIT:
      return 8;
    case ICMPV6_ROUTER_ADVERT:
      return 16;
    case ICMPV6_NEIGHBOR_SOLICIT:
    case ICMPV6_NEIGHBOR_ADVERT:
      return 24;
    default:
      return 0;
  }
}

/** Zero-copy accessors over an ICMPv6 message; retarget with `wrap()`. No bounds checks. */
export class Icmpv6View {
  /** The message being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `message` and returns it. */
  wrap(message: Uint8Array): this {
    this.buf = message;
    return this;
  }
  /** Message type. */
  get type(): number {
    return this.buf[ICMPV6_TYPE]!;
  }
  /** Message code. */
  get code(): number {
    return this.buf[ICMPV6_CODE]!;
  }
  /** Checksum as on the wire. */
  get checksum(): number {
    return read16(this.buf, ICMPV6_CHECKSUM);
  }
  /** Bytes 4..8 as u32. */
  get rest(): number {
    return read32(this.buf, ICMPV6_REST);
  }
}

function setBit(word: number, bit: number, on: boolean): number {
  return (on ? word | bit : word & ~bit) >>> 0;
}

/**
 * A parsed (or to-be-emitted) ICMPv6 message; reuse one per receive path. Bytes 4..8 live in
 * `restOfHeader`; the echo, MTU, pointer, RA and NA accessors read and write their parts of it.
 * NDP options are decoded into the typed fields (first prefix only) and also kept raw in
 * `options`: `emit` copies `options` verbatim when non-empty (so unknown options such as the
 * DAD nonce re-emit identically), otherwise builds them from the typed fields.
 */
export class Icmpv6Repr {
  /** Message type. */
  type = 0;
  /** Message code. */
  code = 0;
  /** Checksum as received. */
  checksum = 0;
  /** Bytes 4..8 of the header as u32. */
  restOfHeader = 0;
  private readonly dataSpan = new Span();
  private readonly optionSpan = new Span();
  /** Non-NDP messages: everything after the 8-byte header (echo data, quoted packet). */
  get data(): Uint8Array {
    return this.dataSpan.view;
  }
  set data(v: Uint8Array) {
    this.dataSpan.assign(v);
  }
  /** NDP options as received (a view), or empty. */
  get options(): Uint8Array {
    return this.optionSpan.view;
  }
  set options(v: Uint8Array) {
    this.optionSpan.assign(v);
  }
  /** RA reachable time (ms). */
  reachableTime = 0;
  /** RA retransmission timer (ms). */
  retransTimer = 0;
  /** NS/NA target address (copied in). */
  readonly target: Uint8Array = new Uint8Array(16);
  /** Source link-layer address option present. */
  sourceLlaPresent = false;
  /** Source link-layer address (copied in). */
  readonly sourceLla: Uint8Array = new Uint8Array(6);
  /** Target link-layer address option present. */
  targetLlaPresent = false;
  /** Target link-layer address (copied in). */
  readonly targetLla: Uint8Array = new Uint8Array(6);
  /** MTU option present. */
  mtuOptionPresent = false;
  /** MTU option value. */
  mtuOption = 0;
  /** Prefix information option present (the first one is decoded). */
  prefixPresent = false;
  /** Prefix length in bits. */
  prefixLength = 0;
  /** Prefix flag L (on-link). */
  prefixOnLink = false;
  /** Prefix flag A (autonomous address configuration). */
  prefixAutonomous = false;
  /** Valid lifetime (s). */
  prefixValidLifetime = 0;
  /** Preferred lifetime (s). */
  prefixPreferredLifetime = 0;
  /** The prefix (copied in). */
  readonly prefix: Uint8Array = new Uint8Array(16);

  /** Echo identifier. */
  get identifier(): number {
    return this.restOfHeader >>> 16;
  }
  set identifier(v: number) {
    this.restOfHeader = (((v & 0xffff) << 16) | (this.restOfHeader & 0xffff)) >>> 0;
  }
  /** Echo sequence number. */
  get sequence(): number {
    return this.restOfHeader & 0xffff;
  }
  set sequence(v: number) {
    this.restOfHeader = ((this.restOfHeader & 0xffff0000) | (v & 0xffff)) >>> 0;
  }
  /** Packet-too-big MTU (the whole rest-of-header word). */
  get mtu(): number {
    return this.restOfHeader;
  }
  set mtu(v: number) {
    this.restOfHeader = v >>> 0;
  }
  /** Parameter-problem pointer (the whole rest-of-header word). */
  get pointer(): number {
    return this.restOfHeader;
  }
  set pointer(v: number) {
    this.restOfHeader = v >>> 0;
  }
  /** RA current hop limit. */
  get curHopLimit(): number {
    return this.restOfHeader >>> 24;
  }
  set curHopLimit(v: number) {
    this.restOfHeader = (((v & 0xff) << 24) | (this.restOfHeader & 0x00ffffff)) >>> 0;
  }
  /** RA M flag. */
  get managedFlag(): boolean {
    return (this.restOfHeader & RA_FLAG_MANAGED) !== 0;
  }
  set managedFlag(v: boolean) {
    this.restOfHeader = setBit(this.restOfHeader, RA_FLAG_MANAGED, v);
  }
  /** RA O flag. */
  get otherFlag(): boolean {
    return (this.restOfHeader & RA_FLAG_OTHER) !== 0;
  }
  set otherFlag(v: boolean) {
    this.restOfHeader = setBit(this.restOfHeader, RA_FLAG_OTHER, v);
  }
  /** RA router lifetime (s). */
  get routerLifetime(): number {
    return this.restOfHeader & 0xffff;
  }
  set routerLifetime(v: number) {
    this.sequence = v;
  }
  /** NA R flag. */
  get routerFlag(): boolean {
    return (this.restOfHeader & NA_FLAG_ROUTER) !== 0;
  }
  set routerFlag(v: boolean) {
    this.restOfHeader = setBit(this.restOfHeader, NA_FLAG_ROUTER, v);
  }
  /** NA S flag. */
  get solicitedFlag(): boolean {
    return (this.restOfHeader & NA_FLAG_SOLICITED) !== 0;
  }
  set solicitedFlag(v: boolean) {
    this.restOfHeader = setBit(this.restOfHeader, NA_FLAG_SOLICITED, v);
  }
  /** NA O flag. */
  get overrideFlag(): boolean {
    return (this.restOfHeader & NA_FLAG_OVERRIDE) !== 0;
  }
  set overrideFlag(v: boolean) {
    this.restOfHeader = setBit(this.restOfHeader, NA_FLAG_OVERRIDE, v);
  }
  /** The quoted invoking packet of an error message (types 1..4), else empty. */
  get quoted(): Uint8Array {
    return this.type >= 1 && this.type <= 4 ? this.data : EMPTY;
  }
  /** True for RS, RA, NS and NA. */
  get isNdp(): boolean {
    return ndpFixedLength(this.type) !== 0;
  }

  /** Length `emit` writes. */
  get length(): number {
    const fixed = ndpFixedLength(this.type);
    if (fixed === 0) return 8 + this.dataSpan.length;
    const opts = this.optionSpan.length;
    return fixed + (opts > 0 ? opts : this.builtOptionsLength());
  }

  private builtOptionsLength(): number {
    return (this.sourceLlaPresent ? 8 : 0) + (this.targetLlaPresent ? 8 : 0) +
      (this.mtuOptionPresent ? 8 : 0) + (this.prefixPresent ? 32 : 0);
  }

  /** Clears every field (no options, no data). */
  reset(): void {
    this.type =
      this.code =
      this.checksum =
      this.restOfHeader =
        0;
    this.data = EMPTY;
    this.options = EMPTY;
    this.reachableTime =
      this.retransTimer =
      this.mtuOption =
      this.prefixLength =
        0;
    this.prefixValidLifetime = this.prefixPreferredLifetime = 0;
    this.sourceLlaPresent = this.targetLlaPresent = this.mtuOptionPresent = false;
    this.prefixPresent = this.prefixOnLink = this.prefixAutonomous = false;
    this.target.fill(0);
    this.sourceLla.fill(0);
    this.targetLla.fill(0);
    this.prefix.fill(0);
  }

  /**
   * Reads `message` (the upper-layer payload). NDP messages shorter than their fixed part are
   * 'truncated'; options of length 0, overrunning the message, or of the wrong length for a
   * known type are 'bad-option'. Checksum not checked here (see the module doc).
   */
  parse(message: Uint8Array): DropReason | undefined {
    return this.parseAt(message, 0, message.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(buf: Uint8Array, start: number, end: number): DropReason | undefined {
    const len = end - start;
    if (len < 8) return "truncated";
    const type = buf[start + ICMPV6_TYPE]!;
    const fixed = ndpFixedLength(type);
    if (fixed !== 0) {
      if (len < fixed) return "truncated";
      const r = this.parseOptions(buf, start + fixed, end);
      if (r !== undefined) return r;
      if (type === ICMPV6_ROUTER_ADVERT) {
        this.reachableTime = read32(buf, start + ICMPV6_RA_REACHABLE);
        this.retransTimer = read32(buf, start + ICMPV6_RA_RETRANS);
      } else {
        this.reachableTime = this.retransTimer = 0;
      }
      if (fixed === 24) copyBytes(this.target, 0, buf, start + ICMPV6_ND_TARGET, 16);
      else this.target.fill(0);
      this.optionSpan.set(buf, start + fixed, end);
      this.dataSpan.set(EMPTY, 0, 0);
    } else {
      this.clearOptions();
      this.optionSpan.set(EMPTY, 0, 0);
      this.reachableTime = this.retransTimer = 0;
      this.target.fill(0);
      this.dataSpan.set(buf, start + ICMPV6_DATA, end);
    }
    this.type = type;
    this.code = buf[start + ICMPV6_CODE]!;
    this.checksum = read16(buf, start + ICMPV6_CHECKSUM);
    this.restOfHeader = read32(buf, start + ICMPV6_REST);
    return undefined;
  }

  private clearOptions(): void {
    this.sourceLlaPresent = this.targetLlaPresent = this.mtuOptionPresent = false;
    this.prefixPresent = false;
  }

  private parseOptions(m: Uint8Array, start: number, len: number): DropReason | undefined {
    this.clearOptions();
    let i = start;
    // Each option is at least 8 bytes, so the walk ends within (len - start) / 8 steps; `len`
    // is the absolute end of the message.
    while (i < len) {
      if (i + 2 > len) return "bad-option";
      const type = m[i]!;
      const olen = m[i + 1]! * 8;
      if (olen === 0 || i + olen > len) return "bad-option";
      switch (type) {
        case NDP_OPT_SOURCE_LLA:
        case NDP_OPT_TARGET_LLA: {
          if (olen !== 8) return "bad-option";
          if (type === NDP_OPT_SOURCE_LLA) {
            this.sourceLlaPresent = true;
            copyBytes(this.sourceLla, 0, m, i + 2, 6);
          } else {
            this.targetLlaPresent = true;
            copyBytes(this.targetLla, 0, m, i + 2, 6);
          }
          break;
        }
        case NDP_OPT_MTU:
          if (olen !== 8) return "bad-option";
          this.mtuOptionPresent = true;
          this.mtuOption = read32(m, i + 4);
          break;
        case NDP_OPT_PREFIX_INFO:
          if (olen !== 32) return "bad-option";
          if (!this.prefixPresent) {
            this.prefixPresent = true;
            this.prefixLength = m[i + 2]!;
            const f = m[i + 3]!;
            this.prefixOnLink = (f & 0x80) !== 0;
            this.prefixAutonomous = (f & 0x40) !== 0;
            this.prefixValidLifetime = read32(m, i + 4);
            this.prefixPreferredLifetime = read32(m, i + 8);
            copyBytes(this.prefix, 0, m, i + 16, 16);
          }
          break;
        default:
          break; // unknown option: skipped by its length
      }
      i += olen;
    }
    return undefined;
  }

  /**
   * Writes the message into `buf` with a zero checksum; returns its length. Fill the checksum
   * with `writeTransportChecksum(buf.subarray(0, n), 2, pseudoHeaderSumV6(...))`.
   */
  emit(buf: Uint8Array): number {
    buf[ICMPV6_TYPE] = this.type;
    buf[ICMPV6_CODE] = this.code;
    write16(buf, ICMPV6_CHECKSUM, 0);
    write32(buf, ICMPV6_REST, this.restOfHeader);
    const fixed = ndpFixedLength(this.type);
    if (fixed === 0) {
      buf.set(this.data, ICMPV6_DATA);
      return ICMPV6_DATA + this.data.length;
    }
    if (this.type === ICMPV6_ROUTER_ADVERT) {
      write32(buf, ICMPV6_RA_REACHABLE, this.reachableTime);
      write32(buf, ICMPV6_RA_RETRANS, this.retransTimer);
    } else if (fixed === 24) {
      copyBytes(buf, ICMPV6_ND_TARGET, this.target, 0, 16);
    }
    const opts = this.optionSpan;
    if (opts.length > 0) {
      copyBytes(buf, fixed, opts.src, opts.start, opts.length);
      return fixed + opts.length;
    }
    let i = fixed;
    if (this.sourceLlaPresent) i = writeLla(buf, i, NDP_OPT_SOURCE_LLA, this.sourceLla);
    if (this.targetLlaPresent) i = writeLla(buf, i, NDP_OPT_TARGET_LLA, this.targetLla);
    if (this.mtuOptionPresent) {
      buf[i] = NDP_OPT_MTU;
      buf[i + 1] = 1;
      write16(buf, i + 2, 0);
      write32(buf, i + 4, this.mtuOption);
      i += 8;
    }
    if (this.prefixPresent) {
      buf[i] = NDP_OPT_PREFIX_INFO;
      buf[i + 1] = 4;
      buf[i + 2] = this.prefixLength;
      buf[i + 3] = (this.prefixOnLink ? 0x80 : 0) | (this.prefixAutonomous ? 0x40 : 0);
      write32(buf, i + 4, this.prefixValidLifetime);
      write32(buf, i + 8, this.prefixPreferredLifetime);
      write32(buf, i + 12, 0);
      copyBytes(buf, i + 16, this.prefix, 0, 16);
      i += 32;
    }
    return i;
  }

  /** True when the NS/NA target equals `address` (16 bytes). */
  targetEquals(address: Uint8Array): boolean {
    return address.length === 16 && bytesEqual(this.target, 0, address, 0, 16);
  }
}

function writeLla(buf: Uint8Array, i: number, type: number, mac: Uint8Array): number {
  buf[i] = type;
  buf[i + 1] = 1;
  copyBytes(buf, i + 2, mac, 0, 6);
  return i + 8;
}
