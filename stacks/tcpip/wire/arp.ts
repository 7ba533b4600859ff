/**
 * ARP for IPv4 over Ethernet (RFC 826).
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |     Hardware type (1)         |     Protocol type (0x0800)    |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  HLEN (6)     |  PLEN (4)     |          Operation            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Sender hardware address (6)                   |
 * +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                               |  Sender protocol address (4)  |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Sender protocol address      |                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 * |                 Target hardware address (6)                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                 Target protocol address (4)                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { copyBytes, EMPTY, read16, read32, write16, write32 } from "./bytes.ts";
import type { DropReason } from "./drop.ts";

/** Offset of the hardware type. */
export const ARP_HTYPE = 0;
/** Offset of the protocol type. */
export const ARP_PTYPE = 2;
/** Offset of the hardware address length. */
export const ARP_HLEN = 4;
/** Offset of the protocol address length. */
export const ARP_PLEN = 5;
/** Offset of the operation. */
export const ARP_OPER = 6;
/** Offset of the sender hardware address. */
export const ARP_SHA = 8;
/** Offset of the sender protocol address. */
export const ARP_SPA = 14;
/** Offset of the target hardware address. */
export const ARP_THA = 18;
/** Offset of the target protocol address. */
export const ARP_TPA = 24;
/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;

/** ARP request. */
export const ARP_REQUEST = 1;
/** ARP reply. */
export const ARP_REPLY = 2;

/** Zero-copy accessors over an ARP packet; retarget with `wrap()`. No bounds checks. */
export class ArpView {
  /** The packet being viewed. */
  buf: Uint8Array = EMPTY;
  /** Points the view at `packet` and returns it. */
  wrap(packet: Uint8Array): this {
    this.buf = packet;
    return this;
  }
  /** Hardware type (1 for Ethernet). */
  get htype(): number {
    return read16(this.buf, ARP_HTYPE);
  }
  /** Protocol type (0x0800 for IPv4). */
  get ptype(): number {
    return read16(this.buf, ARP_PTYPE);
  }
  /** Hardware address length. */
  get hlen(): number {
    return this.buf[ARP_HLEN]!;
  }
  /** Protocol address length. */
  get plen(): number {
    return this.buf[ARP_PLEN]!;
  }
  /** Operation (1 request, 2 reply). */
  get operation(): number {
    return read16(this.buf, ARP_OPER);
  }
  /** Sender protocol address as u32. */
  get spa(): number {
    return read32(this.buf, ARP_SPA);
  }
  /** Target protocol address as u32. */
  get tpa(): number {
    return read32(this.buf, ARP_TPA);
  }
}

/** A parsed (or to-be-emitted) Ethernet/IPv4 ARP packet; reuse one per receive path. */
export class ArpRepr {
  /** Operation: `ARP_REQUEST` or `ARP_REPLY`. */
  operation = ARP_REQUEST;
  /** Sender hardware address (copied in). */
  readonly sha: Uint8Array = new Uint8Array(6);
  /** Sender protocol address as u32. */
  spa = 0;
  /** Target hardware address (copied in). */
  readonly tha: Uint8Array = new Uint8Array(6);
  /** Target protocol address as u32. */
  tpa = 0;

  /**
   * Reads `packet` (the Ethernet payload; trailing padding is ignored). Rejects anything but
   * Ethernet/IPv4 request or reply with 'bad-arp-format'.
   */
  parse(packet: Uint8Array): DropReason | undefined {
    return this.parseAt(packet, 0, packet.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(buf: Uint8Array, start: number, end: number): DropReason | undefined {
    if (end - start < ARP_LEN) return "truncated";
    if (
      read16(buf, start + ARP_HTYPE) !== 1 || read16(buf, start + ARP_PTYPE) !== 0x0800 ||
      buf[start + ARP_HLEN] !== 6 || buf[start + ARP_PLEN] !== 4
    ) {
      return "bad-arp-format";
    }
    const op = read16(buf, start + ARP_OPER);
    if (op !== ARP_REQUEST && op !== ARP_REPLY) return "bad-arp-format";
    this.operation = op;
    copyBytes(this.sha, 0, buf, start + ARP_SHA, 6);
    this.spa = read32(buf, start + ARP_SPA);
    copyBytes(this.tha, 0, buf, start + ARP_THA, 6);
    this.tpa = read32(buf, start + ARP_TPA);
    return undefined;
  }

  /** Writes the 28-byte packet into `buf`; returns 28. */
  emit(buf: Uint8Array): number {
    write16(buf, ARP_HTYPE, 1);
    write16(buf, ARP_PTYPE, 0x0800);
    buf[ARP_HLEN] = 6;
    buf[ARP_PLEN] = 4;
    write16(buf, ARP_OPER, this.operation);
    copyBytes(buf, ARP_SHA, this.sha, 0, 6);
    write32(buf, ARP_SPA, this.spa);
    copyBytes(buf, ARP_THA, this.tha, 0, 6);
    write32(buf, ARP_TPA, this.tpa);
    return ARP_LEN;
  }
}
