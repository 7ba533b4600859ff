/**
 * Frames for wire-layer tests and benchmarks: the captured Linux fixtures, and synthetic frames
 * built with the reprs themselves for cases the captures lack (SACK over IPv6, extension
 * headers, options, padding).
 *
 * @module
 */

import { PcapReader } from "../../stacks/link/pcap.ts";
import {
  EthernetRepr,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ICMPV6_NEIGHBOR_SOLICIT,
  Icmpv6Repr,
  IP_PROTO_ICMPV6,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  Ipv4Repr,
  Ipv6Repr,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  TCP_ACK,
  TCP_PSH,
  TcpRepr,
  UdpRepr,
  writeTransportChecksum,
} from "../../stacks/tcpip/wire/mod.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** Names of the fixture sets (pcap + expect.json) present in tests/fixtures. */
export function fixtureNames(): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(FIXTURES)) {
    if (e.name.endsWith(".expect.json")) names.push(e.name.slice(0, -".expect.json".length));
  }
  return names.sort();
}

/** The frames of one fixture pcap (views into the file bytes). */
export function fixtureFrames(name: string): Uint8Array[] {
  return PcapReader.fromFile(new URL(`${name}.pcap`, FIXTURES)).records().map((r) => r.data);
}

/** Every frame of every fixture pcap. */
export function allFixtureFrames(): Uint8Array[] {
  return fixtureNames().flatMap((n) => fixtureFrames(n));
}

function ethernet(ethertype: number, vlan: number): EthernetRepr {
  const e = new EthernetRepr();
  e.dst.set([2, 0, 0, 0, 9, 2]);
  e.src.set([2, 0, 0, 0, 9, 1]);
  e.ethertype = ethertype;
  if (vlan >= 0) {
    e.vlanPresent = true;
    e.vlanId = vlan;
    e.pcp = 3;
  }
  return e;
}

function tcpWithOptions(payload: number): TcpRepr {
  const t = new TcpRepr();
  t.srcPort = 5001;
  t.dstPort = 49610;
  t.seq = 0xeaaa4ea5;
  t.ack = 0x13c975d3;
  t.flags = TCP_ACK | TCP_PSH;
  t.window = 501;
  t.tsPresent = true;
  t.tsVal = 2891324732;
  t.tsEcr = 51636060;
  t.sackCount = 2;
  t.sackBlocks.set([0x13c976db, 0x13c97733, 0x13c9762b, 0x13c97683]);
  t.payload = new Uint8Array(payload).map((_, i) => i);
  return t;
}

/**
 * Ethernet/IPv4/TCP with timestamps and two SACK blocks (the benchmark frame), `payload` data
 * bytes, optional 802.1Q tag (`vlan` >= 0) and `padding` trailing Ethernet bytes.
 */
export function tcpSackFrameV4(payload = 0, vlan = -1, padding = 0): Uint8Array {
  const e = ethernet(ETHERTYPE_IPV4, vlan);
  const ip = new Ipv4Repr();
  ip.identification = 0x9502;
  ip.dontFragment = true;
  ip.protocol = IP_PROTO_TCP;
  ip.src = 0xc6120302;
  ip.dst = 0xc6120301;
  const t = tcpWithOptions(payload);
  const segLen = t.headerLength + payload;
  const frame = new Uint8Array(e.headerLength + 20 + segLen + padding);
  let off = e.emit(frame);
  off += ip.emit(frame.subarray(off), segLen);
  const seg = frame.subarray(off, off + segLen);
  const hl = t.emit(seg);
  seg.set(t.payload, hl);
  writeTransportChecksum(seg, 16, pseudoHeaderSumV4(ip.src, ip.dst, IP_PROTO_TCP, segLen));
  return frame;
}

/** Ethernet/IPv6 with hop-by-hop + destination options, then TCP (timestamps + SACK). */
export function tcpSackFrameV6ExtHeaders(payload = 0): Uint8Array {
  const e = ethernet(ETHERTYPE_IPV6, -1);
  const ip = new Ipv6Repr();
  ip.trafficClass = 0xb9;
  ip.flowLabel = 0x12345;
  ip.hopLimit = 64;
  ip.src.set([0xfd, 0, 0, 0x18, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  ip.dst.set([0xfd, 0, 0, 0x18, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  ip.nextHeader = 0;
  ip.protocol = IP_PROTO_TCP;
  // HBH (router alert, PadN) -> destination options (PadN only) -> TCP.
  ip.extHeaders = new Uint8Array([60, 0, 5, 2, 0, 0, 1, 0, IP_PROTO_TCP, 0, 1, 4, 0, 0, 0, 0]);
  const t = tcpWithOptions(payload);
  const segLen = t.headerLength + payload;
  const frame = new Uint8Array(14 + ip.headerLength + segLen);
  let off = e.emit(frame);
  off += ip.emit(frame.subarray(off), segLen);
  const seg = frame.subarray(off, off + segLen);
  seg.set(t.payload, t.emit(seg));
  writeTransportChecksum(seg, 16, pseudoHeaderSumV6(ip.src, ip.dst, IP_PROTO_TCP, segLen));
  return frame;
}

/** Ethernet/IPv4/UDP padded to the 60-byte Ethernet minimum, with or without a checksum. */
export function paddedUdpFrameV4(withChecksum: boolean): Uint8Array {
  const e = ethernet(ETHERTYPE_IPV4, -1);
  const ip = new Ipv4Repr();
  ip.protocol = IP_PROTO_UDP;
  ip.src = 0xc6120001;
  ip.dst = 0xc6120002;
  ip.ttl = 1;
  const u = new UdpRepr();
  u.srcPort = 5353;
  u.dstPort = 5353;
  const frame = new Uint8Array(60);
  let off = e.emit(frame);
  off += ip.emit(frame.subarray(off), 12);
  const seg = frame.subarray(off, off + 12);
  u.emit(seg, 4);
  seg.set([0x71, 0x72, 0x73, 0x74], 8);
  if (withChecksum) writeTransportChecksum(seg, 6, pseudoHeaderSumV4(ip.src, ip.dst, 17, 12));
  frame.fill(0xcc, off + 12); // padding bytes need not be zero
  return frame;
}

/** Ethernet/IPv6/UDP; `zeroChecksum` leaves the (then invalid) zero checksum. */
export function udpFrameV6(zeroChecksum: boolean): Uint8Array {
  const e = ethernet(ETHERTYPE_IPV6, -1);
  const ip = new Ipv6Repr();
  ip.src[0] = ip.dst[0] = 0xfd;
  ip.src[15] = 1;
  ip.dst[15] = 2;
  ip.protocol = IP_PROTO_UDP;
  const u = new UdpRepr();
  u.srcPort = 1000;
  u.dstPort = 2000;
  const frame = new Uint8Array(14 + 40 + 8 + 3);
  let off = e.emit(frame);
  off += ip.emit(frame.subarray(off), 11);
  const seg = frame.subarray(off);
  u.emit(seg, 3);
  seg.set([1, 2, 3], 8);
  if (!zeroChecksum) writeTransportChecksum(seg, 6, pseudoHeaderSumV6(ip.src, ip.dst, 17, 11));
  return frame;
}

/** Ethernet/IPv6 neighbor solicitation with a source LLA and a DAD-style nonce option. */
export function nsFrame(): Uint8Array {
  const e = ethernet(ETHERTYPE_IPV6, -1);
  const ip = new Ipv6Repr();
  ip.hopLimit = 255;
  ip.src.set([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  ip.dst.set([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2]);
  ip.protocol = IP_PROTO_ICMPV6;
  const m = new Icmpv6Repr();
  m.type = ICMPV6_NEIGHBOR_SOLICIT;
  m.target.set([0xfd, 0, 0, 0x18, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  m.options = new Uint8Array([1, 1, 2, 0, 0, 0, 9, 1, 14, 1, 1, 2, 3, 4, 5, 6]);
  const frame = new Uint8Array(14 + 40 + m.length);
  let off = e.emit(frame);
  off += ip.emit(frame.subarray(off), m.length);
  const seg = frame.subarray(off);
  const n = m.emit(seg);
  writeTransportChecksum(seg, 2, pseudoHeaderSumV6(ip.src, ip.dst, IP_PROTO_ICMPV6, n));
  return frame;
}

/** Every synthetic frame above (all valid). */
export function syntheticFrames(): Uint8Array[] {
  return [
    tcpSackFrameV4(0),
    tcpSackFrameV4(100, 7),
    tcpSackFrameV6ExtHeaders(33),
    paddedUdpFrameV4(true),
    paddedUdpFrameV4(false),
    udpFrameV6(false),
    nsFrame(),
  ];
}

/**
 * A Uint8Array whose element reads at or past `length` throw, so a test proves the parser
 * checks lengths before reading (a plain typed array would quietly return undefined). Its
 * subarrays are guarded too.
 */
export function guarded(a: Uint8Array): Uint8Array {
  return new Proxy(a, {
    get(t, prop): unknown {
      if (typeof prop === "string" && prop.length > 0 && prop.length < 10 && /^\d+$/.test(prop)) {
        const i = Number(prop);
        if (i >= t.length) throw new RangeError(`read of index ${i} past length ${t.length}`);
        return t[i];
      }
      if (prop === "subarray") {
        return (s?: number, e?: number): Uint8Array => guarded(t.subarray(s, e));
      }
      const v = Reflect.get(t, prop, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}
