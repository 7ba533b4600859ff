/**
 * Ethernet II frames with an optional IEEE 802.1Q tag.
 *
 * ```text
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                    Destination MAC (6 bytes)                  |
 * +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                               |                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 * |                      Source MAC (6 bytes)                     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |    EtherType / TPID 0x8100    |  PCP|D|       VLAN ID         |  <- tag only with 0x8100
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |      EtherType (tagged)       |  Payload ...
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * @module
 */

import { copyBytes, EMPTY, read16, Span, write16 } from "./bytes.ts";
import type { DropReason } from "./drop.ts";

/** Offset of the destination MAC. */
export const ETH_DST = 0;
/** Offset of the source MAC. */
export const ETH_SRC = 6;
/** Offset of the EtherType (or the TPID of a tag). */
export const ETH_TYPE = 12;
/** Offset of the tag control information (PCP, DEI, VLAN ID) when tagged. */
export const ETH_TCI = 14;
/** Offset of the inner EtherType when tagged. */
export const ETH_TAGGED_TYPE = 16;
/** Untagged header length. */
export const ETH_HEADER_LEN = 14;
/** 802.1Q-tagged header length. */
export const ETH_TAGGED_HEADER_LEN = 18;

/** EtherType of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of ARP. */
export const ETHERTYPE_ARP = 0x0806;
/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;
/** TPID of an IEEE 802.1Q tag. */
export const ETHERTYPE_VLAN = 0x8100;

/** Zero-copy accessors over an Ethernet frame; retarget with `wrap()`. No bounds checks. */
export class EthernetView {
  /** The frame being viewed. */
  buf: Uint8Array = EMPTY;

  /** Points the view at `frame` and returns it. */
  wrap(frame: Uint8Array): this {
    this.buf = frame;
    return this;
  }
  /** True when an 802.1Q tag follows the source MAC. */
  get tagged(): boolean {
    return read16(this.buf, ETH_TYPE) === ETHERTYPE_VLAN;
  }
  /** Header length: 14, or 18 when tagged. */
  get headerLength(): number {
    return this.tagged ? ETH_TAGGED_HEADER_LEN : ETH_HEADER_LEN;
  }
  /** The EtherType of the payload (the inner one when tagged). */
  get ethertype(): number {
    return read16(this.buf, this.tagged ? ETH_TAGGED_TYPE : ETH_TYPE);
  }
  /** Tag control information (valid only when tagged). */
  get tci(): number {
    return read16(this.buf, ETH_TCI);
  }
}

/** A parsed (or to-be-emitted) Ethernet II header; reuse one per receive path. */
export class EthernetRepr {
  /** Destination MAC, copied in by `parse`. */
  readonly dst: Uint8Array = new Uint8Array(6);
  /** Source MAC, copied in by `parse`. */
  readonly src: Uint8Array = new Uint8Array(6);
  /** True when an 802.1Q tag is present. */
  vlanPresent = false;
  /** VLAN identifier (12 bits). */
  vlanId = 0;
  /** Priority code point (3 bits). */
  pcp = 0;
  /** Drop eligible indicator. */
  dei = false;
  /** EtherType of the payload. */
  ethertype = 0;
  private readonly span = new Span();

  /** The payload (everything after the header, padding included): a view into the frame. */
  get payload(): Uint8Array {
    return this.span.view;
  }
  set payload(v: Uint8Array) {
    this.span.assign(v);
  }
  /** Offset of the payload in the buffer given to the last parse. */
  get payloadStart(): number {
    return this.span.start;
  }

  /** Header length for the fields set: 14, or 18 with a tag. */
  get headerLength(): number {
    return this.vlanPresent ? ETH_TAGGED_HEADER_LEN : ETH_HEADER_LEN;
  }

  /** Reads `frame`; returns a drop reason, or undefined when the header is usable. */
  parse(frame: Uint8Array): DropReason | undefined {
    return this.parseAt(frame, 0, frame.length);
  }

  /** `parse(buf.subarray(start, end))` without making the subarray. */
  parseAt(buf: Uint8Array, start: number, end: number): DropReason | undefined {
    if (end - start < ETH_HEADER_LEN) return "truncated";
    copyBytes(this.dst, 0, buf, start + ETH_DST, 6);
    copyBytes(this.src, 0, buf, start + ETH_SRC, 6);
    let hl = ETH_HEADER_LEN;
    if (read16(buf, start + ETH_TYPE) === ETHERTYPE_VLAN) {
      if (end - start < ETH_TAGGED_HEADER_LEN) return "truncated";
      const tci = read16(buf, start + ETH_TCI);
      this.vlanPresent = true;
      this.pcp = tci >>> 13;
      this.dei = (tci & 0x1000) !== 0;
      this.vlanId = tci & 0x0fff;
      this.ethertype = read16(buf, start + ETH_TAGGED_TYPE);
      hl = ETH_TAGGED_HEADER_LEN;
    } else {
      this.vlanPresent = false;
      this.pcp = 0;
      this.dei = false;
      this.vlanId = 0;
      this.ethertype = read16(buf, start + ETH_TYPE);
    }
    this.span.set(buf, start + hl, end);
    return undefined;
  }

  /** Writes the header into `buf` (at least `headerLength` bytes); returns its length. */
  emit(buf: Uint8Array): number {
    copyBytes(buf, ETH_DST, this.dst, 0, 6);
    copyBytes(buf, ETH_SRC, this.src, 0, 6);
    if (this.vlanPresent) {
      write16(buf, ETH_TYPE, ETHERTYPE_VLAN);
      write16(buf, ETH_TCI, (this.pcp << 13) | (this.dei ? 0x1000 : 0) | (this.vlanId & 0x0fff));
      write16(buf, ETH_TAGGED_TYPE, this.ethertype);
      return ETH_TAGGED_HEADER_LEN;
    }
    write16(buf, ETH_TYPE, this.ethertype);
    return ETH_HEADER_LEN;
  }
}
