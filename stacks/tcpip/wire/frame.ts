/**
 * A whole-frame walker: Ethernet -> ARP | IPv4 | IPv6 -> ICMP | ICMPv6 | UDP | TCP, verifying
 * every checksum, with one reusable repr per layer. Nothing is allocated per frame: each layer
 * is parsed by offsets into the frame (`parseAt`), checksums are summed over ranges, and payload
 * views are made only when someone reads them. `emit` re-emits the frame from the reprs, so
 * captures can be checked for byte-identical round trips.
 *
 * @module
 */

import { EMPTY, Span } from "./bytes.ts";
import {
  checksumRangeOk,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  writeTransportChecksum,
} from "./checksum.ts";
import { ARP_LEN, ArpRepr } from "./arp.ts";
import { DropCounters, type DropReason } from "./drop.ts";
import { EthernetRepr, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from "./ethernet.ts";
import { Icmpv4Repr } from "./icmpv4.ts";
import { Icmpv6Repr } from "./icmpv6.ts";
import { IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP, Ipv4Repr } from "./ipv4.ts";
import { Ipv6Repr } from "./ipv6.ts";
import { TcpRepr } from "./tcp.ts";
import { UdpRepr } from "./udp.ts";

/** Network layer of the last parsed frame. */
export type FrameL3 = "none" | "arp" | "ipv4" | "ipv6";
/**
 * Transport layer of the last parsed frame: "raw" means the IP payload was kept unparsed (a
 * fragment, or a protocol this walker does not decode, e.g. IGMP or ESP).
 */
export type FrameL4 = "none" | "icmpv4" | "icmpv6" | "udp" | "tcp" | "raw";

/** Walks whole Ethernet frames; one per receive path, reused for every frame. */
export class FrameParser {
  /** The Ethernet header of the last frame. */
  readonly ethernet: EthernetRepr = new EthernetRepr();
  /** ARP, when `l3 === "arp"`. */
  readonly arp: ArpRepr = new ArpRepr();
  /** IPv4, when `l3 === "ipv4"`. */
  readonly ipv4: Ipv4Repr = new Ipv4Repr();
  /** IPv6, when `l3 === "ipv6"`. */
  readonly ipv6: Ipv6Repr = new Ipv6Repr();
  /** ICMPv4, when `l4 === "icmpv4"`. */
  readonly icmpv4: Icmpv4Repr = new Icmpv4Repr();
  /** ICMPv6, when `l4 === "icmpv6"`. */
  readonly icmpv6: Icmpv6Repr = new Icmpv6Repr();
  /** UDP, when `l4 === "udp"`. */
  readonly udp: UdpRepr = new UdpRepr();
  /** TCP, when `l4 === "tcp"`. */
  readonly tcp: TcpRepr = new TcpRepr();
  /** Drops by reason, counted by `parse`. */
  readonly drops: DropCounters = new DropCounters();
  /** Frames `parse` accepted. */
  accepted = 0;
  /** Network layer of the last accepted frame. */
  l3: FrameL3 = "none";
  /** Transport layer of the last accepted frame. */
  l4: FrameL4 = "none";
  private readonly l3PayloadSpan = new Span();
  private readonly trailerSpan = new Span();

  /** The IP payload (upper-layer bytes) of the last frame, for `l4 === "raw"`. */
  get l3Payload(): Uint8Array {
    return this.l3PayloadSpan.view;
  }
  /** Bytes after the L3 packet inside the frame (Ethernet padding), kept for re-emission. */
  get trailer(): Uint8Array {
    return this.trailerSpan.view;
  }

  /** Frames seen: accepted plus dropped. */
  get total(): number {
    return this.accepted + this.drops.total();
  }

  /**
   * Parses and verifies `frame`; returns undefined when every layer is valid, else the reason
   * (also counted in `drops`). Never throws on bad input; never reads past `frame.length`.
   */
  parse(frame: Uint8Array): DropReason | undefined {
    const r = this.walk(frame);
    if (r === undefined) this.accepted++;
    else this.drops.count(r);
    return r;
  }

  private walk(frame: Uint8Array): DropReason | undefined {
    this.l3 = "none";
    this.l4 = "none";
    this.l3PayloadSpan.set(EMPTY, 0, 0);
    this.trailerSpan.set(EMPTY, 0, 0);
    const eth = this.ethernet;
    const end = frame.length;
    let r = eth.parseAt(frame, 0, end);
    if (r !== undefined) return r;
    const l3 = eth.payloadStart;
    switch (eth.ethertype) {
      case ETHERTYPE_ARP:
        r = this.arp.parseAt(frame, l3, end);
        if (r !== undefined) return r;
        this.l3 = "arp";
        this.trailerSpan.set(frame, l3 + ARP_LEN, end);
        return undefined;
      case ETHERTYPE_IPV4: {
        const ip = this.ipv4;
        r = ip.parseAt(frame, l3, end);
        if (r !== undefined) return r;
        this.l3 = "ipv4";
        const s = ip.payloadStart, e = ip.payloadEnd;
        this.trailerSpan.set(frame, e, end);
        this.l3PayloadSpan.set(frame, s, e);
        // Fragments carry only part of the L4 header/checksum coverage: leave them unparsed.
        if (ip.isFragment) {
          this.l4 = "raw";
          return undefined;
        }
        switch (ip.protocol) {
          case IP_PROTO_ICMP:
            r = this.icmpv4.parseAt(frame, s, e);
            if (r !== undefined) return r;
            this.l4 = "icmpv4";
            return undefined;
          case IP_PROTO_UDP: {
            const u = this.udp;
            r = u.parseAt(frame, s, e);
            if (r !== undefined) return r;
            if (u.checksum !== 0) {
              const ps = pseudoHeaderSumV4(ip.src, ip.dst, IP_PROTO_UDP, u.length);
              if (!checksumRangeOk(frame, s, s + u.length, ps)) return "bad-checksum";
            }
            this.l4 = "udp";
            return undefined;
          }
          case IP_PROTO_TCP:
            r = this.tcp.parseAt(frame, s, e);
            if (r !== undefined) return r;
            if (
              !checksumRangeOk(frame, s, e, pseudoHeaderSumV4(ip.src, ip.dst, IP_PROTO_TCP, e - s))
            ) {
              return "bad-checksum";
            }
            this.l4 = "tcp";
            return undefined;
          default:
            this.l4 = "raw";
            return undefined;
        }
      }
      case ETHERTYPE_IPV6: {
        const ip = this.ipv6;
        r = ip.parseAt(frame, l3, end);
        if (r !== undefined) return r;
        this.l3 = "ipv6";
        const s = ip.payloadStart, e = ip.payloadEnd;
        this.trailerSpan.set(frame, e, end);
        this.l3PayloadSpan.set(frame, s, e);
        if (ip.fragmentPresent) {
          this.l4 = "raw";
          return undefined;
        }
        const proto = ip.protocol;
        let covered = e;
        if (proto === IP_PROTO_ICMPV6) {
          r = this.icmpv6.parseAt(frame, s, e);
        } else if (proto === IP_PROTO_UDP) {
          r = this.udp.parseAt(frame, s, e);
          // RFC 8200 8.1: a zero UDP checksum is invalid over IPv6.
          if (r === undefined && this.udp.checksum === 0) r = "bad-checksum";
          covered = s + this.udp.length;
        } else if (proto === IP_PROTO_TCP) {
          r = this.tcp.parseAt(frame, s, e);
        } else {
          this.l4 = "raw";
          return undefined;
        }
        if (r !== undefined) return r;
        if (
          !checksumRangeOk(frame, s, covered, pseudoHeaderSumV6(ip.src, ip.dst, proto, covered - s))
        ) {
          return "bad-checksum";
        }
        this.l4 = proto === IP_PROTO_ICMPV6 ? "icmpv6" : proto === IP_PROTO_UDP ? "udp" : "tcp";
        return undefined;
      }
      default:
        return "unsupported-ethertype";
    }
  }

  /**
   * Re-emits the last accepted frame from the reprs into `buf` (large enough for it); returns
   * its length. Checksums are recomputed; UDP over IPv4 keeps "no checksum" when it had none.
   * `buf` must not overlap the parsed frame except exactly in place.
   */
  emit(buf: Uint8Array): number {
    let off = this.ethernet.emit(buf);
    if (this.l3 === "arp") {
      off += this.arp.emit(buf.subarray(off));
    } else if (this.l3 === "ipv4") {
      const ip = this.ipv4;
      const plen = ip.payload.length;
      off += ip.emit(buf.subarray(off), plen);
      this.emitL4(buf.subarray(off, off + plen), pseudoV4, ip.src, ip.dst);
      off += plen;
    } else if (this.l3 === "ipv6") {
      const ip = this.ipv6;
      const plen = ip.payload.length;
      off += ip.emit(buf.subarray(off), plen);
      this.emitL4(buf.subarray(off, off + plen), pseudoV6, ip.src, ip.dst);
      off += plen;
    }
    buf.set(this.trailer, off);
    return off + this.trailerSpan.length;
  }

  private emitL4<A>(
    seg: Uint8Array,
    pseudo: (src: A, dst: A, proto: number, len: number) => number,
    src: A,
    dst: A,
  ): void {
    let n = 0;
    switch (this.l4) {
      case "tcp": {
        const t = this.tcp;
        n = t.emit(seg);
        seg.set(t.payload, n);
        n += t.payload.length;
        writeTransportChecksum(seg.subarray(0, n), 16, pseudo(src, dst, IP_PROTO_TCP, n));
        break;
      }
      case "udp": {
        const u = this.udp;
        n = u.emit(seg, u.payload.length);
        seg.set(u.payload, n);
        n += u.payload.length;
        if (u.checksum !== 0) {
          writeTransportChecksum(seg.subarray(0, n), 6, pseudo(src, dst, IP_PROTO_UDP, n));
        }
        break;
      }
      case "icmpv4":
        n = this.icmpv4.emit(seg);
        break;
      case "icmpv6":
        n = this.icmpv6.emit(seg);
        writeTransportChecksum(seg.subarray(0, n), 2, pseudo(src, dst, IP_PROTO_ICMPV6, n));
        break;
      default:
        break;
    }
    // Bytes inside the IP payload beyond the L4 message (a raw payload, or a UDP length
    // shorter than the IP payload) are copied as they were.
    if (n < seg.length) seg.set(this.l3Payload.subarray(n), n);
  }
}

function pseudoV4(src: number, dst: number, proto: number, len: number): number {
  return pseudoHeaderSumV4(src, dst, proto, len);
}

function pseudoV6(src: Uint8Array, dst: Uint8Array, proto: number, len: number): number {
  return pseudoHeaderSumV6(src, dst, proto, len);
}
