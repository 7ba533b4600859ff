/**
 * TCP headers and options (RFC 9293; window scale and timestamps RFC 7323; SACK RFC 2018).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |          Source Port          |       Destination Port        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        Sequence Number                        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Acknowledgment Number                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Data |       |C|E|U|A|P|R|S|F|                               |
 * | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 * |       |       |R|E|G|K|H|T|N|N|                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           Checksum            |         Urgent Pointer        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Options                    |    Padding    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * Options: EOL (0), NOP (1), MSS (2, len 4), window scale (3, len 3), SACK-permitted (4, len 2),
 * SACK (5, len 2 + 8n, n = 1..4), timestamps (8, len 10). Unknown kinds are skipped by length.
 *
 * @module
 */

import { EMPTY, read16, read32, Span, write16, write32 } from "./bytes.ts";
import type { DropReason } from "./drop.ts";

/** Offset of the source port. */
export const TCP_SRC_PORT = 0;
/** Offset of the destination port. */
export const TCP_DST_PORT = 2;
/** Offset of the sequence number. */
export const TCP_SEQ = 4;
/** Offset of the acknowledgment number. */
export const TCP_ACK_NUM = 8;
/** Offset of the data offset (high nibble) and reserved bits. */
export const TCP_DATA_OFFSET = 12;
/** Offset of the flags byte. */
export const TCP_FLAGS = 13;
/** Offset of the window. */
export const TCP_WINDOW = 14;
/** Offset of the checksum. */
export const TCP_CHECKSUM = 16;
/** Offset of the urgent pointer. */
export const TCP_URGENT = 18;
/** Offset of the options. */
export const TCP_OPTIONS = 20;
/** Header length without options. */
export const TCP_MIN_HEADER_LEN = 20;
/** Largest header (data offset 15). */
export const TCP_MAX_HEADER_LEN = 60;

/** FIN flag. */
export const TCP_FIN = 0x01;
/** SYN flag. */
export const TCP_SYN = 0x02;
/** RST flag. */
export const TCP_RST = 0x04;
/** PSH flag. */
export const TCP_PSH = 0x08;
/** ACK flag. */
export const TCP_ACK = 0x10;
/** URG flag. */
export const TCP_URG = 0x20;
/** ECE flag. */
export const TCP_ECE = 0x40;
/** CWR flag. */
export const TCP_CWR = 0x80;

/** Option kind: end of option list. */
export const TCPOPT_EOL = 0;
/** Option kind: no-operation. */
export const TCPOPT_NOP = 1;
/** Option kind: maximum segment size. */
export const TCPOPT_MSS = 2;
/** Option kind: window scale. */
export const TCPOPT_WINDOW_SCALE = 3;
/** Option kind: SACK permitted. */
export const TCPOPT_SACK_PERMITTED = 4;
/** Option kind: SACK blocks. */
export const TCPOPT_SACK = 5;
/** Option kind: timestamps. */
export const TCPOPT_TIMESTAMPS = 8;
/** Largest window shift (RFC 7323 2.3: larger values are used as 14). */
export const TCP_MAX_WINDOW_SCALE = 14;

/** Zero-copy accessors over a TCP header; retarget with `wrap()`. No bounds checks. */
export class TcpView {
  /** The segment being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `segment` and returns it. */
  wrap(segment: Uint8Array): this {
    this.buf = segment;
    return this;
  }
  /** Source port. */
  get srcPort(): number {
    return read16(this.buf, TCP_SRC_PORT);
  }
  /** Destination port. */
  get dstPort(): number {
    return read16(this.buf, TCP_DST_PORT);
  }
  /** Sequence number (u32). */
  get seq(): number {
    return read32(this.buf, TCP_SEQ);
  }
  /** Acknowledgment number (u32). */
  get ack(): number {
    return read32(this.buf, TCP_ACK_NUM);
  }
  /** Header length in bytes (data offset * 4). */
  get headerLength(): number {
    return (this.buf[TCP_DATA_OFFSET]! >>> 4) * 4;
  }
  /** Flags byte plus the 4 reserved bits above it (AE at 0x100). */
  get flags(): number {
    return ((this.buf[TCP_DATA_OFFSET]! & 0x0f) << 8) | this.buf[TCP_FLAGS]!;
  }
  /** Raw window. */
  get window(): number {
    return read16(this.buf, TCP_WINDOW);
  }
  /** Checksum as on the wire. */
  get checksum(): number {
    return read16(this.buf, TCP_CHECKSUM);
  }
  /** Urgent pointer. */
  get urgent(): number {
    return read16(this.buf, TCP_URGENT);
  }
}

/**
 * A parsed (or to-be-emitted) TCP header with its options; one per stack, reused. `parse`
 * checks structure and options only (the checksum needs the pseudo-header: see
 * `transportChecksumOk`). `emit` lays options out as Linux does, so captures re-emit
 * byte-identically: MSS; then NOP,NOP,TS (or SACK-permitted,TS when both are set); then
 * NOP,NOP,SACK-permitted if not merged; then NOP,WS; then NOP,NOP,SACK blocks.
 */
export class TcpRepr {
  /** Source port. */
  srcPort = 0;
  /** Destination port. */
  dstPort = 0;
  /** Sequence number (u32). */
  seq = 0;
  /** Acknowledgment number (u32). */
  ack = 0;
  /** Flags (`TCP_SYN | TCP_ACK` ...); bits 8..11 hold the reserved bits (AE at 0x100). */
  flags = 0;
  /** Raw 16-bit window (unscaled). */
  window = 0;
  /** Urgent pointer. */
  urgent = 0;
  /** MSS option value, 0 when absent. */
  mss = 0;
  /** Window scale shift (capped at 14), -1 when absent. */
  windowScale = -1;
  /** SACK-permitted option present. */
  sackPermitted = false;
  /** Number of SACK blocks (0..4). */
  sackCount = 0;
  /** SACK blocks as left0, right0, left1, right1, ... (first `2 * sackCount` entries valid). */
  readonly sackBlocks: Uint32Array = new Uint32Array(8);
  /** Timestamps option present. */
  tsPresent = false;
  /** TSval. */
  tsVal = 0;
  /** TSecr. */
  tsEcr = 0;
  private readonly payloadSpan = new Span();
  /** Offset of the payload in the buffer given to the last parse. */
  get payloadStart(): number {
    return this.payloadSpan.start;
  }
  /** Payload length in bytes (no view is made). */
  get payloadLength(): number {
    return this.payloadSpan.end - this.payloadSpan.start;
  }
  /**
   * The buffer the payload lies in: bytes `[payloadStart, payloadStart + payloadLength)` of it
   * (the segment given to the last parse). Lets the receive path copy the payload without
   * making a view first.
   */
  get payloadBuffer(): Uint8Array {
    return this.payloadSpan.src;
  }
  /** The payload: a view into the parsed segment, or empty (made on first use). */
  get payload(): Uint8Array {
    return this.payloadSpan.view;
  }
  set payload(v: Uint8Array) {
    this.payloadSpan.assign(v);
  }

  /** Clears to an empty header without flags or options. */
  reset(): void {
    this.srcPort =
      this.dstPort =
      this.seq =
      this.ack =
      this.flags =
        0;
    this.window =
      this.urgent =
      this.mss =
      this.sackCount =
      this.tsVal =
      this.tsEcr =
        0;
    this.windowScale = -1;
    this.sackPermitted = this.tsPresent = false;
    this.sackBlocks.fill(0);
    this.payload = EMPTY;
  }

  /** Header length `emit` writes for the options set (20 + options, a multiple of 4). */
  get headerLength(): number {
    let n = TCP_MIN_HEADER_LEN;
    if (this.mss > 0) n += 4;
    if (this.tsPresent) n += 12;
    else if (this.sackPermitted) n += 4;
    if (this.windowScale >= 0) n += 4;
    if (this.sackCount > 0) n += 4 + 8 * this.sackCount;
    return n;
  }

  /**
   * Reads `segment` (the IP payload). Data offset < 5 or beyond the segment is
   * 'bad-header-length'; an option whose length is 0/1, wrong for its kind, or runs past the
   * header is 'bad-option'.
   */
  parse(segment: Uint8Array): DropReason | undefined {
    return this.parseAt(segment, 0, segment.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(segment: Uint8Array, start: number, end: number): DropReason | undefined {
    if (end - start < TCP_MIN_HEADER_LEN) return "truncated";
    const hlen = (segment[start + TCP_DATA_OFFSET]! >>> 4) * 4;
    if (hlen < TCP_MIN_HEADER_LEN || hlen > end - start) return "bad-header-length";
    const hl = start + hlen; // absolute end of the header
    let mss = 0, ws = -1, sackPerm = false, sackCount = 0, ts = false, tsVal = 0, tsEcr = 0;
    const blocks = this.sackBlocks;
    let i = start + TCP_OPTIONS;
    while (i < hl) {
      const kind = segment[i]!;
      if (kind === TCPOPT_EOL) break;
      if (kind === TCPOPT_NOP) {
        i++;
        continue;
      }
      if (i + 1 >= hl) return "bad-option";
      const len = segment[i + 1]!;
      if (len < 2 || i + len > hl) return "bad-option";
      switch (kind) {
        case TCPOPT_MSS:
          if (len !== 4) return "bad-option";
          mss = read16(segment, i + 2);
          break;
        case TCPOPT_WINDOW_SCALE:
          if (len !== 3) return "bad-option";
          ws = Math.min(segment[i + 2]!, TCP_MAX_WINDOW_SCALE);
          break;
        case TCPOPT_SACK_PERMITTED:
          if (len !== 2) return "bad-option";
          sackPerm = true;
          break;
        case TCPOPT_SACK: {
          const n = (len - 2) >>> 3;
          if ((len - 2) % 8 !== 0 || n < 1 || n > 4) return "bad-option";
          sackCount = n;
          for (let b = 0; b < 2 * n; b++) blocks[b] = read32(segment, i + 2 + 4 * b);
          break;
        }
        case TCPOPT_TIMESTAMPS:
          if (len !== 10) return "bad-option";
          ts = true;
          tsVal = read32(segment, i + 2);
          tsEcr = read32(segment, i + 6);
          break;
        default:
          break; // unknown option: skipped by its length
      }
      i += len;
    }
    this.srcPort = read16(segment, start + TCP_SRC_PORT);
    this.dstPort = read16(segment, start + TCP_DST_PORT);
    this.seq = read32(segment, start + TCP_SEQ);
    this.ack = read32(segment, start + TCP_ACK_NUM);
    this.flags = ((segment[start + TCP_DATA_OFFSET]! & 0x0f) << 8) | segment[start + TCP_FLAGS]!;
    this.window = read16(segment, start + TCP_WINDOW);
    this.urgent = read16(segment, start + TCP_URGENT);
    this.mss = mss;
    this.windowScale = ws;
    this.sackPermitted = sackPerm;
    this.sackCount = sackCount;
    this.tsPresent = ts;
    this.tsVal = tsVal;
    this.tsEcr = tsEcr;
    this.payloadSpan.set(segment, hl, end);
    return undefined;
  }

  /**
   * Writes header and options into `buf[0..headerLength)` with a zero checksum; returns
   * `headerLength`. Write the payload after it, then `writeTransportChecksum(seg, 16, pseudo)`.
   */
  emit(buf: Uint8Array): number {
    return this.emitAt(buf, 0);
  }

  /**
   * `emit` into `buf` at byte `at` (a segment inside a frame buffer, no view of it needed):
   * writes `buf[at, at + headerLength)`; returns `headerLength`.
   */
  emitAt(buf: Uint8Array, at: number): number {
    const hl = this.headerLength;
    write16(buf, at + TCP_SRC_PORT, this.srcPort);
    write16(buf, at + TCP_DST_PORT, this.dstPort);
    write32(buf, at + TCP_SEQ, this.seq);
    write32(buf, at + TCP_ACK_NUM, this.ack);
    buf[at + TCP_DATA_OFFSET] = ((hl >>> 2) << 4) | ((this.flags >>> 8) & 0x0f);
    buf[at + TCP_FLAGS] = this.flags;
    write16(buf, at + TCP_WINDOW, this.window);
    write16(buf, at + TCP_CHECKSUM, 0);
    write16(buf, at + TCP_URGENT, this.urgent);
    let i = at + TCP_OPTIONS;
    if (this.mss > 0) {
      write32(buf, i, 0x02040000 | (this.mss & 0xffff));
      i += 4;
    }
    let sackPermPending = this.sackPermitted;
    if (this.tsPresent) {
      write32(buf, i, sackPermPending ? 0x0402080a : 0x0101080a);
      sackPermPending = false;
      write32(buf, i + 4, this.tsVal);
      write32(buf, i + 8, this.tsEcr);
      i += 12;
    }
    if (sackPermPending) {
      write32(buf, i, 0x01010402);
      i += 4;
    }
    if (this.windowScale >= 0) {
      write32(buf, i, 0x01030300 | (this.windowScale & 0xff));
      i += 4;
    }
    const n = this.sackCount;
    if (n > 0) {
      write32(buf, i, 0x01010500 | (2 + 8 * n));
      i += 4;
      for (let b = 0; b < 2 * n; b++, i += 4) write32(buf, i, this.sackBlocks[b]!);
    }
    return hl;
  }
}
