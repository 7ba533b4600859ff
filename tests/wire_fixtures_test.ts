/**
 * Real Linux traffic (tests/fixtures/*.pcap, captured by tests/fixtures/capture.ts) through the
 * wire layer: every frame must parse with all checksums verified, re-emit byte-identically from
 * the reprs, and agree field by field with what tshark decoded (tests/fixtures/*.expect.json).
 */
import assert from "node:assert/strict";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import {
  FrameParser,
  ICMPV4_CODE_FRAG_NEEDED,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REPLY,
  ICMPV4_ECHO_REQUEST,
  Icmpv4Repr,
  Icmpv4View,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_NEIGHBOR_ADVERT,
  ICMPV6_NEIGHBOR_SOLICIT,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_ROUTER_ADVERT,
  Icmpv6View,
  IP_PROTO_ICMP,
  IP_PROTO_ICMPV6,
  IP_PROTO_UDP,
  Ipv4View,
  Ipv6View,
  isIcmpv4Error,
  TcpView,
  UdpView,
} from "../stacks/tcpip/wire/mod.ts";
import { fixtureFrames, fixtureNames } from "./support/wire_frames.ts";

interface Expectation {
  file: string;
  fields: string[];
  frames: Record<string, string | null>[];
}

const FIXTURES = new URL("./fixtures/", import.meta.url);

function loadExpectation(name: string): Expectation {
  return JSON.parse(Deno.readTextFileSync(new URL(`${name}.expect.json`, FIXTURES)));
}

const hex4 = (n: number): string => "0x" + n.toString(16).padStart(4, "0");
const mac = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
const v4 = (n: number): string => IpAddress.fromV4(n).toString();
const v6 = (b: Uint8Array): string => IpAddress.fromBytes(b).toString();

/**
 * What tshark's first occurrence of a field would be, from our parse. tshark also decodes the
 * datagram quoted in ICMP errors, so transport fields fall back to the quoted headers (read
 * with the zero-copy views, since a quote is truncated and not a valid packet on its own).
 */
function actual(
  p: FrameParser,
  frame: Uint8Array,
  field: string,
  reassembled: Icmpv4Repr | null,
): string | null {
  const e = p.ethernet, ip4 = p.ipv4, ip6 = p.ipv6;
  const isV4 = p.l3 === "ipv4", isV6 = p.l3 === "ipv6";
  // The quoted IP packet of an ICMP error and its transport header, if any.
  let qProto = -1;
  let qL4: Uint8Array | null = null;
  if (p.l4 === "icmpv4" && isIcmpv4Error(p.icmpv4.type)) {
    const q = p.icmpv4.data;
    if (q.length >= 20) {
      const v = new Ipv4View().wrap(q);
      qProto = v.protocol;
      qL4 = q.subarray(v.headerLength);
    }
  } else if (p.l4 === "icmpv6" && p.icmpv6.quoted.length >= 40) {
    const q = p.icmpv6.quoted;
    qProto = new Ipv6View().wrap(q).nextHeader;
    qL4 = q.subarray(40);
  }
  const udpSrc = (): UdpView | null =>
    p.l4 === "udp"
      ? new UdpView().wrap(p.l3Payload)
      : qProto === IP_PROTO_UDP && qL4 !== null && qL4.length >= 8
      ? new UdpView().wrap(qL4)
      : null;
  const icmpEcho = (): { id: number; seq: number } | null => {
    const m = p.icmpv4;
    if (p.l4 === "icmpv4" && (m.type === ICMPV4_ECHO_REQUEST || m.type === ICMPV4_ECHO_REPLY)) {
      return { id: m.identifier, seq: m.sequence };
    }
    if (reassembled !== null) return { id: reassembled.identifier, seq: reassembled.sequence };
    if (qProto === IP_PROTO_ICMP && qL4 !== null && qL4.length >= 8) {
      const v = new Icmpv4View().wrap(qL4);
      return { id: v.rest >>> 16, seq: v.rest & 0xffff };
    }
    return null;
  };
  const icmp6Echo = (): { id: number; seq: number } | null => {
    const m = p.icmpv6;
    if (p.l4 === "icmpv6" && (m.type === ICMPV6_ECHO_REQUEST || m.type === ICMPV6_ECHO_REPLY)) {
      return { id: m.identifier, seq: m.sequence };
    }
    if (qProto === IP_PROTO_ICMPV6 && qL4 !== null && qL4.length >= 8) {
      const v = new Icmpv6View().wrap(qL4);
      return { id: v.rest >>> 16, seq: v.rest & 0xffff };
    }
    return null;
  };
  const tcp = p.l4 === "tcp" ? p.tcp : null;
  const icmp = p.l4 === "icmpv4" ? p.icmpv4 : reassembled;
  const icmp6 = p.l4 === "icmpv6" ? p.icmpv6 : null;
  switch (field) {
    case "frame.len":
      return String(frame.length);
    case "eth.src":
      return mac(e.src);
    case "eth.dst":
      return mac(e.dst);
    case "eth.type":
      return hex4(e.vlanPresent ? 0x8100 : e.ethertype);
    case "vlan.id":
      return e.vlanPresent ? String(e.vlanId) : null;
    case "vlan.etype":
      return e.vlanPresent ? hex4(e.ethertype) : null;
    case "arp.opcode":
      return p.l3 === "arp" ? String(p.arp.operation) : null;
    case "arp.src.hw_mac":
      return p.l3 === "arp" ? mac(p.arp.sha) : null;
    case "arp.src.proto_ipv4":
      return p.l3 === "arp" ? v4(p.arp.spa) : null;
    case "arp.dst.proto_ipv4":
      return p.l3 === "arp" ? v4(p.arp.tpa) : null;
    case "ip.src":
      return isV4 ? v4(ip4.src) : null;
    case "ip.dst":
      return isV4 ? v4(ip4.dst) : null;
    case "ip.proto":
      return isV4 ? String(ip4.protocol) : null;
    case "ip.ttl":
      return isV4 ? String(ip4.ttl) : null;
    case "ip.id":
      return isV4 ? hex4(ip4.identification) : null;
    case "ip.len":
      return isV4 ? String(ip4.totalLength) : null;
    case "ip.flags.df":
      return isV4 ? (ip4.dontFragment ? "1" : "0") : null;
    case "ip.flags.mf":
      return isV4 ? (ip4.moreFragments ? "1" : "0") : null;
    case "ip.frag_offset":
      return isV4 ? String(ip4.fragmentOffset / 8) : null;
    case "ip.checksum":
      return isV4 ? hex4(ip4.checksum) : null;
    case "icmp.type":
      return icmp ? String(icmp.type) : null;
    case "icmp.code":
      return icmp ? String(icmp.code) : null;
    case "icmp.checksum":
      return icmp ? hex4(icmp.checksum) : null;
    case "icmp.ident":
      return icmpEcho() ? String(icmpEcho()!.id) : null;
    case "icmp.seq":
      return icmpEcho() ? String(icmpEcho()!.seq) : null;
    case "icmp.mtu":
      return icmp && icmp.type === ICMPV4_DEST_UNREACHABLE && icmp.code === ICMPV4_CODE_FRAG_NEEDED
        ? String(icmp.nextHopMtu)
        : null;
    case "ipv6.src":
      return isV6 ? v6(ip6.src) : null;
    case "ipv6.dst":
      return isV6 ? v6(ip6.dst) : null;
    case "ipv6.nxt":
      return isV6 ? String(ip6.nextHeader) : null;
    case "ipv6.hlim":
      return isV6 ? String(ip6.hopLimit) : null;
    case "ipv6.plen":
      return isV6 ? String(ip6.payloadLength) : null;
    case "icmpv6.type":
      return icmp6 ? String(icmp6.type) : null;
    case "icmpv6.code":
      return icmp6 ? String(icmp6.code) : null;
    case "icmpv6.checksum":
      return icmp6 ? hex4(icmp6.checksum) : null;
    case "icmpv6.mtu":
      return icmp6 && icmp6.type === ICMPV6_PACKET_TOO_BIG ? String(icmp6.mtu) : null;
    case "icmpv6.echo.identifier":
      return icmp6Echo() ? hex4(icmp6Echo()!.id) : null;
    case "icmpv6.echo.sequence_number":
      return icmp6Echo() ? String(icmp6Echo()!.seq) : null;
    case "icmpv6.nd.ns.target_address":
      return icmp6 && icmp6.type === ICMPV6_NEIGHBOR_SOLICIT ? v6(icmp6.target) : null;
    case "icmpv6.nd.na.target_address":
      return icmp6 && icmp6.type === ICMPV6_NEIGHBOR_ADVERT ? v6(icmp6.target) : null;
    case "icmpv6.nd.ra.cur_hop_limit":
      return icmp6 && icmp6.type === ICMPV6_ROUTER_ADVERT ? String(icmp6.curHopLimit) : null;
    case "icmpv6.nd.ra.router_lifetime":
      return icmp6 && icmp6.type === ICMPV6_ROUTER_ADVERT ? String(icmp6.routerLifetime) : null;
    case "icmpv6.opt.linkaddr":
      if (!icmp6) return null;
      if (icmp6.sourceLlaPresent) return mac(icmp6.sourceLla);
      return icmp6.targetLlaPresent ? mac(icmp6.targetLla) : null;
    case "icmpv6.opt.prefix":
      return icmp6 && icmp6.prefixPresent ? v6(icmp6.prefix) : null;
    case "icmpv6.opt.mtu":
      return icmp6 && icmp6.mtuOptionPresent ? String(icmp6.mtuOption) : null;
    case "udp.srcport":
      return udpSrc() ? String(udpSrc()!.srcPort) : null;
    case "udp.dstport":
      return udpSrc() ? String(udpSrc()!.dstPort) : null;
    case "udp.length":
      return udpSrc() ? String(udpSrc()!.length) : null;
    case "udp.checksum":
      return udpSrc() ? hex4(udpSrc()!.checksum) : null;
    case "tcp.srcport":
      return tcp ? String(tcp.srcPort) : null;
    case "tcp.dstport":
      return tcp ? String(tcp.dstPort) : null;
    case "tcp.seq_raw":
      return tcp ? String(tcp.seq) : null;
    case "tcp.ack_raw":
      return tcp ? String(tcp.ack) : null;
    case "tcp.flags":
      return tcp ? hex4(tcp.flags) : null;
    case "tcp.window_size_value":
      return tcp ? String(tcp.window) : null;
    case "tcp.len":
      return tcp ? String(tcp.payload.length) : null;
    case "tcp.checksum":
      return tcp ? hex4(new TcpView().wrap(p.l3Payload).checksum) : null;
    case "tcp.options.mss_val":
      return tcp && tcp.mss > 0 ? String(tcp.mss) : null;
    case "tcp.options.wscale.shift":
      return tcp && tcp.windowScale >= 0 ? String(tcp.windowScale) : null;
    case "tcp.options.sack_perm":
      return tcp && tcp.sackPermitted ? "0402" : null;
    case "tcp.options.timestamp.tsval":
      return tcp && tcp.tsPresent ? String(tcp.tsVal) : null;
    case "tcp.options.timestamp.tsecr":
      return tcp && tcp.tsPresent ? String(tcp.tsEcr) : null;
    case "tcp.options.sack.count":
      return tcp && tcp.sackCount > 0 ? String(tcp.sackCount) : null;
    case "tcp.options.sack_le":
      return tcp && tcp.sackCount > 0 ? String(tcp.sackBlocks[0]) : null;
    case "tcp.options.sack_re":
      return tcp && tcp.sackCount > 0 ? String(tcp.sackBlocks[1]) : null;
    default:
      throw new Error(
        `no mapping for tshark field ${field}: add one to tests/wire_fixtures_test.ts`,
      );
  }
}

/** Minimal IPv4 reassembly for the field comparison (the stack has its own, bounded one). */
class Reassembler {
  private readonly parts = new Map<string, { off: number; data: Uint8Array }[]>();
  private readonly icmp = new Icmpv4Repr();

  /** Feeds the frame just parsed; returns the ICMP message once a datagram completes. */
  add(p: FrameParser): Icmpv4Repr | null {
    const ip = p.ipv4;
    if (p.l3 !== "ipv4" || !ip.isFragment) return null;
    const key = `${ip.src}-${ip.dst}-${ip.identification}-${ip.protocol}`;
    const list = this.parts.get(key) ?? [];
    list.push({ off: ip.fragmentOffset, data: ip.payload.slice() });
    this.parts.set(key, list);
    if (ip.moreFragments) return null;
    list.sort((a, b) => a.off - b.off);
    const last = list[list.length - 1]!;
    const whole = new Uint8Array(last.off + last.data.length);
    let covered = 0;
    for (const part of list) {
      assert.equal(part.off, covered, "fragments leave no hole");
      whole.set(part.data, part.off);
      covered = part.off + part.data.length;
    }
    this.parts.delete(key);
    assert.equal(ip.protocol, IP_PROTO_ICMP, "only ICMP is fragmented in the fixtures");
    assert.equal(this.icmp.parse(whole), undefined, "reassembled ICMP checksum verifies");
    return this.icmp;
  }
}

const names = fixtureNames();

Deno.test("fixture sets are present (capture.ts wrote pcaps with tshark expectations)", () => {
  assert.ok(names.length >= 5, `found ${names.join(", ")}`);
});

for (const name of names) {
  Deno.test(`${name}.pcap: every frame parses with checksums verified and re-emits byte-identically`, () => {
    const p = new FrameParser();
    const frames = fixtureFrames(name);
    assert.ok(frames.length > 0);
    const out = new Uint8Array(70000);
    frames.forEach((frame, i) => {
      assert.equal(p.parse(frame), undefined, `frame ${i} rejected`);
      assert.notEqual(p.l3, "none");
      const n = p.emit(out);
      assert.equal(n, frame.length, `frame ${i} re-emitted length`);
      assert.deepEqual(out.subarray(0, n), frame, `frame ${i} re-emitted bytes`);
    });
    assert.equal(p.accepted, frames.length);
    assert.equal(p.drops.total(), 0);
  });

  Deno.test(`${name}.pcap: parsed fields agree with tshark's decoding`, () => {
    const exp = loadExpectation(name);
    const frames = fixtureFrames(name);
    assert.equal(exp.frames.length, frames.length, "expectation and pcap frame counts");
    const p = new FrameParser();
    let compared = 0;
    const reassembler = new Reassembler();
    frames.forEach((frame, i) => {
      assert.equal(p.parse(frame), undefined);
      // tshark decodes ICMP on the last fragment from the reassembled datagram; so do we.
      const reassembled = reassembler.add(p);
      for (const field of exp.fields) {
        const want = exp.frames[i]![field] ?? null;
        assert.equal(actual(p, frame, field, reassembled), want, `frame ${i} field ${field}`);
        if (want !== null) compared++;
      }
    });
    assert.ok(compared > frames.length * 5, `only ${compared} non-null fields compared`);
  });
}

Deno.test("re-emitting a captured frame in place (same buffer) leaves it unchanged", () => {
  const frame = fixtureFrames("tcp_options")[3]!.slice();
  const copy = frame.slice();
  const p = new FrameParser();
  assert.equal(p.parse(frame), undefined);
  assert.equal(p.emit(frame), copy.length);
  assert.deepEqual(frame, copy);
});
