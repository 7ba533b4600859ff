import assert from "node:assert/strict";
import { Interface, linkLocalFromMac, solicitedNode } from "./interface.ts";
import type { IcmpErrorInfo } from "./icmp.ts";
import { fakeInterface, FakeLink } from "../../../tests/support/fake_link.ts";
import { IpAddress } from "../wire/address.ts";
import { ArpRepr } from "../wire/arp.ts";
import { pseudoHeaderSumV6, writeTransportChecksum } from "../wire/checksum.ts";
import { EthernetRepr } from "../wire/ethernet.ts";
import { Icmpv4Repr } from "../wire/icmpv4.ts";
import { Icmpv6Repr } from "../wire/icmpv6.ts";
import { Ipv4Repr } from "../wire/ipv4.ts";
import { Ipv6Repr } from "../wire/ipv6.ts";
import { SECOND } from "../../time.ts";

const OUR_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
const PEER_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x02]);
const A4 = IpAddress.parse("198.18.0.1");
const B4 = IpAddress.parse("198.18.0.2");
const A6 = IpAddress.parse("fd00::1");
const B6 = IpAddress.parse("fd00::2");

const setup = fakeInterface;

function eth(dst: Uint8Array, ethertype: number, payload: Uint8Array): Uint8Array {
  const r = new EthernetRepr();
  r.dst.set(dst);
  r.src.set(PEER_MAC);
  r.ethertype = ethertype;
  const f = new Uint8Array(14 + payload.length);
  r.emit(f);
  f.set(payload, 14);
  return f;
}

function ipv4(src: IpAddress, dst: IpAddress, proto: number, body: Uint8Array): Uint8Array {
  const r = new Ipv4Repr();
  r.src = src.v4;
  r.dst = dst.v4;
  r.protocol = proto;
  const p = new Uint8Array(20 + body.length);
  r.emit(p, body.length);
  p.set(body, 20);
  return p;
}

function ipv6(src: IpAddress, dst: IpAddress, nh: number, body: Uint8Array, hop = 64): Uint8Array {
  const r = new Ipv6Repr();
  r.src.set(src.bytes);
  r.dst.set(dst.bytes);
  r.protocol = nh;
  r.hopLimit = hop;
  const p = new Uint8Array(40 + body.length);
  r.emit(p, body.length);
  p.set(body, 40);
  return p;
}

function icmp6(src: IpAddress, dst: IpAddress, m: Icmpv6Repr, hop = 255): Uint8Array {
  const body = new Uint8Array(2000);
  const n = m.emit(body);
  const msg = body.slice(0, n);
  writeTransportChecksum(msg, 2, pseudoHeaderSumV6(src.bytes, dst.bytes, 58, n));
  return ipv6(src, dst, 58, msg, hop);
}

function udp(srcPort: number, dstPort: number, n: number): Uint8Array {
  const u = new Uint8Array(8 + n);
  u[0] = srcPort >> 8;
  u[1] = srcPort & 0xff;
  u[2] = dstPort >> 8;
  u[3] = dstPort & 0xff;
  u[4] = (8 + n) >> 8;
  u[5] = (8 + n) & 0xff;
  return u; // checksum 0: none (IPv4 only)
}

/** Parses a sent frame into its layers. */
function parseSent(f: Uint8Array): { eth: EthernetRepr; ip6: Ipv6Repr; icmp6: Icmpv6Repr } {
  const e = new EthernetRepr();
  assert.equal(e.parse(f), undefined);
  const ip = new Ipv6Repr();
  const icmp = new Icmpv6Repr();
  if (e.ethertype === 0x86dd) {
    assert.equal(ip.parse(e.payload), undefined);
    if (ip.protocol === 58) assert.equal(icmp.parse(ip.payload), undefined);
  }
  return { eth: e, ip6: ip, icmp6: icmp };
}

Deno.test("linkLocalFromMac() builds the modified EUI-64 address", () => {
  const ll = linkLocalFromMac(new Uint8Array([0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e]));
  assert.equal(ll.toString(), "fe80::21b:21ff:fe3c:4d5e");
  const sn = solicitedNode(IpAddress.parse("fd00::12:3456").bytes);
  assert.equal(IpAddress.fromBytes(sn).toString(), "ff02::1:ff12:3456");
});

Deno.test("Interface drops malformed and foreign frames with named reasons and never throws", () => {
  const { link, iface } = setup();
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), "truncated"],
    [new Uint8Array(10), "truncated"],
    [eth(OUR_MAC, 0x88b5, new Uint8Array(40)), "unsupported-ethertype"],
    [eth(PEER_MAC, 0x0800, ipv4(B4, A4, 17, udp(1, 2, 4))), "not-for-us"],
    [eth(OUR_MAC, 0x0800, new Uint8Array(12)), "truncated"],
    [eth(OUR_MAC, 0x0806, new Uint8Array(28)), "bad-arp-format"],
    [eth(OUR_MAC, 0x86dd, new Uint8Array(40).fill(0x45)), "bad-version"],
    [
      eth(OUR_MAC, 0x0800, ipv4(B4, IpAddress.parse("198.18.0.77"), 17, udp(1, 2, 4))),
      "not-for-us",
    ],
    [
      eth(OUR_MAC, 0x0800, ipv4(IpAddress.parse("224.0.0.5"), A4, 17, udp(1, 2, 4))),
      "bad-source-address",
    ],
  ];
  const bad = eth(OUR_MAC, 0x0800, ipv4(B4, A4, 17, udp(1, 2, 4)));
  bad[14 + 10]! ^= 0xff; // IPv4 header checksum
  cases.push([bad, "bad-checksum"]);
  for (const [frame, reason] of cases) {
    const before = iface.drops.snapshot()[reason] ?? 0;
    link.rx.push(frame);
    iface.poll(0);
    assert.equal(iface.drops.snapshot()[reason], before + 1, `expected a '${reason}' drop`);
  }
});

Deno.test("Interface survives seeded random corruption of valid frames", () => {
  const { link, iface } = setup();
  iface.createUdp().bind(null, 7);
  const echo = new Icmpv4Repr();
  echo.type = 8;
  echo.data = new Uint8Array(32);
  const e4 = new Uint8Array(40);
  echo.emit(e4);
  const ns = new Icmpv6Repr();
  ns.type = 135;
  ns.target.set(A6.bytes);
  ns.sourceLlaPresent = true;
  ns.sourceLla.set(PEER_MAC);
  // IPv4 fragments (first and second) and an IPv6 fragment, to exercise reassembly.
  const frag4 = (offset: number, more: boolean): Uint8Array => {
    const r = new Ipv4Repr();
    r.src = B4.v4;
    r.dst = A4.v4;
    r.protocol = 17;
    r.identification = 77;
    r.fragmentOffset = offset;
    r.moreFragments = more;
    const p = new Uint8Array(20 + 64);
    r.emit(p, 64);
    return eth(OUR_MAC, 0x0800, p);
  };
  const frag6 = new Uint8Array(8 + 64);
  frag6[0] = 17;
  frag6[3] = 1; // offset 0, M set
  frag6[7] = 9;
  const seeds = [
    eth(OUR_MAC, 0x0800, ipv4(B4, A4, 1, e4)),
    eth(OUR_MAC, 0x0800, ipv4(B4, A4, 17, udp(5, 7, 30))),
    eth(OUR_MAC, 0x86dd, icmp6(B6, A6, ns)),
    frag4(0, true),
    frag4(64, false),
    eth(OUR_MAC, 0x86dd, ipv6(B6, A6, 44, frag6)),
  ];
  let x = 12345;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  for (let i = 0; i < 3000; i++) {
    const f = seeds[i % seeds.length]!.slice();
    for (let k = 0, m = 1 + rnd(4); k < m; k++) f[14 + rnd(f.length - 14)] = rnd(256);
    link.rx.push(rnd(5) === 0 ? f.subarray(0, rnd(f.length)) : f);
    iface.poll(i * 1000);
  }
  assert.ok(iface.drops.total() > 1000, "most corrupted frames are dropped and counted");
  assert.ok(iface.counters.fragments.rx > 0, "fragments reached reassembly");
  iface.poll(3000 * 1000 + 60 * SECOND);
  assert.equal(iface.reassembler.inProgress, 0, "incomplete datagrams time out");
});

Deno.test("an ARP request for another host is not answered and creates no entry", () => {
  const { link, iface } = setup();
  const r = new ArpRepr();
  r.operation = 1;
  r.sha.set(PEER_MAC);
  r.spa = B4.v4;
  r.tpa = IpAddress.parse("198.18.0.9").v4;
  const p = new Uint8Array(28);
  r.emit(p);
  link.rx.push(eth(new Uint8Array(6).fill(0xff), 0x0806, p));
  iface.poll(0);
  assert.equal(link.sent.length, 0);
  assert.equal(iface.neighbors.find(4, B4.bytes), null);
  assert.equal(iface.drops.get("not-for-us"), 1);
  // The same request for us is answered and teaches us the asker.
  r.tpa = A4.v4;
  r.emit(p);
  link.rx.push(eth(new Uint8Array(6).fill(0xff), 0x0806, p));
  iface.poll(1);
  assert.equal(link.sent.length, 1);
  const reply = new ArpRepr();
  assert.equal(reply.parse(link.sent[0]!.subarray(14)), undefined);
  assert.equal(reply.operation, 2);
  assert.equal(reply.spa, A4.v4);
  assert.deepEqual([...reply.sha], [...OUR_MAC]);
  assert.deepEqual([...link.sent[0]!.subarray(0, 6)], [...PEER_MAC]);
  assert.equal(iface.neighbors.find(4, B4.bytes)!.state, "stale");
});

Deno.test("a neighbor solicitation for our address gets a solicited NA with our MAC", () => {
  const { link, iface } = setup();
  const ns = new Icmpv6Repr();
  ns.type = 135;
  ns.target.set(A6.bytes);
  ns.sourceLlaPresent = true;
  ns.sourceLla.set(PEER_MAC);
  const sn = IpAddress.fromBytes(solicitedNode(A6.bytes));
  link.rx.push(eth(new Uint8Array([0x33, 0x33, 0xff, 0, 0, 1]), 0x86dd, icmp6(B6, sn, ns)));
  iface.poll(0);
  assert.equal(link.sent.length, 1);
  const { eth: e, ip6, icmp6: na } = parseSent(link.sent[0]!);
  assert.deepEqual([...e.dst], [...PEER_MAC]);
  assert.equal(ip6.hopLimit, 255);
  assert.ok(IpAddress.fromBytes(ip6.src).equals(A6));
  assert.ok(IpAddress.fromBytes(ip6.dst).equals(B6));
  assert.equal(na.type, 136);
  assert.ok(na.solicitedFlag && na.overrideFlag);
  assert.ok(na.targetLlaPresent);
  assert.deepEqual([...na.targetLla], [...OUR_MAC]);
  assert.equal(iface.neighbors.find(6, B6.bytes)!.state, "stale");
  // A DAD probe (from ::) is answered to all-nodes without the S flag.
  const dad = new Icmpv6Repr();
  dad.type = 135;
  dad.target.set(A6.bytes);
  link.rx.push(
    eth(new Uint8Array([0x33, 0x33, 0xff, 0, 0, 1]), 0x86dd, icmp6(IpAddress.parse("::"), sn, dad)),
  );
  iface.poll(1);
  const d = parseSent(link.sent[1]!);
  assert.equal(IpAddress.fromBytes(d.ip6.dst).toString(), "ff02::1");
  assert.equal(d.icmp6.solicitedFlag, false);
});

Deno.test("NDP messages with a hop limit below 255 are dropped as 'bad-ndp'", () => {
  const { link, iface } = setup();
  const ns = new Icmpv6Repr();
  ns.type = 135;
  ns.target.set(A6.bytes);
  link.rx.push(eth(OUR_MAC, 0x86dd, icmp6(B6, A6, ns, 64)));
  iface.poll(0);
  assert.equal(link.sent.length, 0);
  assert.equal(iface.drops.get("bad-ndp"), 1);
});

function routerAdvert(): Uint8Array {
  const ra = new Icmpv6Repr();
  ra.type = 134;
  ra.curHopLimit = 64;
  ra.routerLifetime = 1800;
  ra.sourceLlaPresent = true;
  ra.sourceLla.set(PEER_MAC);
  ra.mtuOptionPresent = true;
  ra.mtuOption = 1400;
  ra.prefixPresent = true;
  ra.prefixLength = 64;
  ra.prefixOnLink = true;
  ra.prefixValidLifetime = 3600;
  ra.prefixPreferredLifetime = 1800;
  ra.prefix.set(IpAddress.parse("fd01::").bytes);
  return eth(
    new Uint8Array([0x33, 0x33, 0, 0, 0, 1]),
    0x86dd,
    icmp6(IpAddress.parse("fe80::1"), IpAddress.parse("ff02::1"), ra),
  );
}

Deno.test("with acceptRa, a router advertisement installs a default router, prefix and MTU", () => {
  const { link, iface } = setup({ acceptRa: true });
  assert.equal(iface.sourceFor(IpAddress.parse("2001:db8::1")), null, "no route before");
  link.rx.push(routerAdvert());
  iface.poll(0);
  const def = iface.routes.lookup(IpAddress.parse("2001:db8::1").bytes, 0)!;
  assert.equal(def.gateway!.toString(), "fe80::1");
  assert.ok(iface.routes.isOnLink(IpAddress.parse("fd01::5").bytes, 0));
  assert.equal(iface.mtuFor(IpAddress.parse("fd01::5")), 1400);
  assert.equal(iface.ipv6Mtu, 1400);
  assert.ok(iface.neighbors.find(6, IpAddress.parse("fe80::1").bytes) !== null);
  // The router lifetime expires.
  iface.poll(1801 * SECOND);
  assert.equal(iface.routes.lookup(IpAddress.parse("2001:db8::1").bytes, 1801 * SECOND), null);
});

Deno.test("without acceptRa, router advertisements are ignored", () => {
  const { link, iface } = setup();
  link.rx.push(routerAdvert());
  iface.poll(0);
  assert.equal(iface.routes.lookup(IpAddress.parse("2001:db8::1").bytes, 0), null);
  assert.equal(iface.ipv6Mtu, 1500);
});

Deno.test("an ICMP frag-needed lowers the path MTU, is reported, and later sends fit it", () => {
  const { link, iface } = setup();
  const C = IpAddress.parse("198.18.0.50");
  iface.neighbors.confirm(4, C.bytes, PEER_MAC, 0, true);
  const seen: IcmpErrorInfo[] = [];
  iface.onIcmpError((e) => seen.push({ ...e }));
  const quoted = ipv4(A4, C, 17, udp(40000, 53, 1472)).subarray(0, 28);
  const m = new Icmpv4Repr();
  m.type = 3;
  m.code = 4;
  m.nextHopMtu = 1400;
  m.data = quoted;
  const msg = new Uint8Array(8 + quoted.length);
  m.emit(msg);
  link.rx.push(eth(OUR_MAC, 0x0800, ipv4(B4, A4, 1, msg)));
  iface.poll(0);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.kind, "frag-needed");
  assert.equal(seen[0]!.mtu, 1400);
  assert.equal(seen[0]!.srcPort, 40000);
  assert.equal(seen[0]!.dstPort, 53);
  assert.equal(iface.mtuFor(C), 1400);
  assert.equal(iface.mtuFor(B4), 1500, "only that destination");
  const s = iface.createUdp().bind(null, 40000);
  s.sendTo(new Uint8Array(1472), C, 53);
  assert.equal(link.sent.length, 2, "1500-byte datagram split for a 1400-byte path");
  assert.ok(link.sent.every((f) => f.length - 14 <= 1400));
});

Deno.test("an ICMPv6 packet too big lowers the path MTU (never below 1280)", () => {
  const { link, iface } = setup();
  const C = IpAddress.parse("fd00::50");
  const quoted = ipv6(A6, C, 17, udp(40000, 53, 100)).subarray(0, 48);
  const m = new Icmpv6Repr();
  m.type = 2;
  m.mtu = 1000;
  m.data = quoted;
  link.rx.push(eth(OUR_MAC, 0x86dd, icmp6(B6, A6, m, 64)));
  iface.poll(0);
  assert.equal(iface.mtuFor(C), 1280);
  assert.equal(iface.counters.icmpErrors.received, 1);
});

Deno.test("no ICMP error answers a datagram sent to a broadcast address", () => {
  const { link, iface } = setup();
  iface.createUdp();
  const bcast = IpAddress.parse("198.18.0.255");
  link.rx.push(eth(new Uint8Array(6).fill(0xff), 0x0800, ipv4(B4, bcast, 17, udp(1, 9, 4))));
  iface.poll(0);
  assert.equal(iface.drops.get("no-listener"), 1);
  assert.equal(link.sent.length, 0);
  assert.equal(iface.counters.icmpErrors.sent, 0);
});

Deno.test("a received ICMP error quoting a packet that is not ours is dropped unanswered", () => {
  const { link, iface } = setup();
  // An ICMP destination unreachable to us quoting something not ours: dropped, no answer.
  const m = new Icmpv4Repr();
  m.type = 3;
  m.code = 1;
  m.data = ipv4(B4, B4, 17, udp(1, 2, 0));
  const msg = new Uint8Array(8 + m.data.length);
  m.emit(msg);
  link.rx.push(eth(OUR_MAC, 0x0800, ipv4(B4, A4, 1, msg)));
  iface.poll(0);
  assert.equal(link.sent.length, 0);
  assert.equal(iface.drops.get("not-for-us"), 1);
});

Deno.test("Interface.register() refuses ICMP and duplicate protocols with a typed error", () => {
  const { iface } = setup();
  iface.createUdp();
  assert.throws(() => iface.createUdp(), { name: "InterfaceConfigError" });
  const h = { protocol: 1, receive(): void {}, poll(): void {}, pollAt: (): number => 0 };
  assert.throws(() => iface.register(h), { name: "InterfaceConfigError" });
});

Deno.test("Interface rejects a gateway outside its prefixes with a typed error", () => {
  assert.throws(() => setup({ gateway4: "198.19.0.1" }), { name: "InterfaceConfigError" });
  assert.throws(
    () => setup({ ipv4: [{ address: "fd00::1", prefixLength: 24 }] }),
    { name: "InterfaceConfigError" },
  );
});

Deno.test("Interface hands a handler the same payload view for a buffer the link lends again with the same range, and a new one when the range or buffer differs", () => {
  const { link, iface } = setup();
  const got: Uint8Array[] = [];
  iface.register({
    protocol: 253, // experimental (RFC 3692)
    receive(_info, payload): void {
      got.push(payload);
    },
    poll(): void {},
    pollAt: (): number => Number.POSITIVE_INFINITY,
  });
  const frame = eth(OUR_MAC, 0x0800, ipv4(B4, A4, 253, new Uint8Array([1, 2, 3, 4])));
  const other = eth(OUR_MAC, 0x0800, ipv4(B4, A4, 253, new Uint8Array([9, 9, 9])));
  link.rx.push(frame, frame, other);
  iface.poll(0);
  frame[14 + 20] = 7; // the link reuses its buffer for a new packet of the same length
  link.rx.push(frame);
  iface.poll(1);
  assert.equal(got.length, 4);
  assert.deepEqual([...got[0]!], [7, 2, 3, 4], "a view of the frame, not a copy");
  assert.equal(got[1], got[0], "same buffer, same range: the view is reused");
  assert.equal(got[3], got[0]);
  assert.notEqual(got[2], got[0], "another buffer: its own view");
  assert.deepEqual([...got[2]!], [9, 9, 9]);
});

Deno.test("Interface.beginPacket reuses the payload views of the last two lengths for a buffer the link lends again", () => {
  const { iface } = setup();
  const views: Uint8Array[] = [];
  for (const len of [1000, 40, 1000, 40, 1000, 600, 1000, 40]) {
    const v = iface.beginPacket(A4, B4, 17, len, 0);
    assert.ok(v !== null);
    assert.equal(v.length, len);
    views.push(v);
    iface.commitPacket();
  }
  // Two lengths alternating (full segments and ACKs): no new view after the first two.
  assert.equal(views[2], views[0]);
  assert.equal(views[3], views[1]);
  assert.equal(views[4], views[0]);
  assert.notEqual(views[5], views[0], "a third length gets a view of its own");
  assert.equal(views[6], views[4], "and the full-size view is still kept");
});

Deno.test("Interface.beginPacket never hands out a payload view of another buffer lent at the same offset", () => {
  // Two regions (distinct ArrayBuffers) whose frames sit at the same byte offset; each frame
  // is lent as one stable view, in turn, like a UMEM link's per-frame views.
  const regions = [new Uint8Array(4096), new Uint8Array(4096)];
  const frames = regions.map((r) => r.subarray(2048, 2048 + 14 + 20 + 100));
  let turn = 0;
  const link = new FakeLink();
  link.transmitBuffer = (): Uint8Array | null => frames[turn++ & 1]!;
  const iface = new Interface(link, { ipv4: [{ address: A4, prefixLength: 24 }] });
  iface.neighbors.confirm(4, B4.bytes, PEER_MAC, 0, true);
  for (let i = 0; i < 6; i++) {
    const lentTo = regions[turn & 1]!;
    const v = iface.beginPacket(A4, B4, 17, 100, 0)!;
    assert.equal(v.buffer, lentTo.buffer, `packet ${i}: a view into the buffer just lent`);
    assert.equal(v.byteOffset, 2048 + 14 + 20);
    iface.commitPacket();
  }
});

Deno.test("NDP without link-layer options uses the frame's source MAC (NA answer, NA learning)", () => {
  const { link, iface } = setup();
  // A unicast NS without a source LLA option: the NA goes back to the frame's source MAC.
  const ns = new Icmpv6Repr();
  ns.type = 135;
  ns.target.set(A6.bytes);
  link.rx.push(eth(OUR_MAC, 0x86dd, icmp6(B6, A6, ns)));
  iface.poll(0);
  assert.equal(link.sent.length, 1);
  assert.deepEqual([...parseSent(link.sent[0]!).eth.dst], [...PEER_MAC]);
  // A solicited NA without a target LLA option resolves the entry to the frame's source MAC.
  const C6 = IpAddress.parse("fd00::3");
  const s = iface.createUdp().bind(null, 5000);
  s.sendTo(new Uint8Array(4), C6, 9); // queued; an NS goes out
  const na = new Icmpv6Repr();
  na.type = 136;
  na.solicitedFlag = true;
  na.target.set(C6.bytes);
  link.rx.push(eth(OUR_MAC, 0x86dd, icmp6(C6, A6, na)));
  iface.poll(1);
  const e = iface.neighbors.find(6, C6.bytes);
  assert.ok(e !== null && e.state === "reachable");
  assert.deepEqual([...e.mac], [...PEER_MAC]);
  assert.deepEqual([...link.sent.at(-1)!.subarray(0, 6)], [...PEER_MAC], "queued datagram sent");
});
