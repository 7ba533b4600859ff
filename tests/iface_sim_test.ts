/**
 * Two interfaces on the simulator: resolution, ping, UDP, ICMP errors, fragmentation, and
 * queuing behind neighbour resolution, all in virtual time.
 */
import assert from "node:assert/strict";
import { Simulator } from "../sim/simulator.ts";
import { dumbbell, pointToPoint } from "../sim/topology.ts";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { IcmpErrorInfo } from "../stacks/tcpip/iface/icmp.ts";
import type { UdpLayer, UdpSocket } from "../stacks/tcpip/iface/udp.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";

const A4 = IpAddress.parse("198.18.0.1");
const B4 = IpAddress.parse("198.18.0.2");
const A6 = IpAddress.parse("fd00::1");
const B6 = IpAddress.parse("fd00::2");
const RATE = 1_000_000_000;
const DELAY = MILLISECOND;

/** Serialization time of a frame of `bytes` at RATE. */
const ser = (bytes: number): number => (bytes * 8 * SECOND) / RATE;

interface Net {
  sim: Simulator;
  ia: Interface;
  ib: Interface;
  ua: UdpLayer;
  ub: UdpLayer;
}

function net(extraA: Partial<ConstructorParameters<typeof Interface>[1]> = {}): Net {
  const sim = new Simulator({ seed: 7 });
  const { a, b } = pointToPoint(sim, { rateBps: RATE, delay: DELAY });
  const ia = new Interface(a, {
    ipv4: [{ address: A4, prefixLength: 24 }],
    ipv6: [{ address: A6, prefixLength: 64 }],
    ...extraA,
  });
  const ib = new Interface(b, {
    ipv4: [{ address: B4, prefixLength: 24 }],
    ipv6: [{ address: B6, prefixLength: 64 }],
  });
  sim.addNode(ia, [a]);
  sim.addNode(ib, [b]);
  return { sim, ia, ib, ua: ia.createUdp(), ub: ib.createUdp() };
}

function run(n: Net, ms: number): void {
  n.sim.wake(n.ia);
  n.sim.wake(n.ib);
  n.sim.runUntil(n.sim.now + ms * MILLISECOND);
}

function drain(s: UdpSocket): { text: string; from: string; port: number }[] {
  const out = [];
  const buf = new Uint8Array(70000);
  for (let r = s.recvFrom(buf); r !== null; r = s.recvFrom(buf)) {
    out.push({
      text: new TextDecoder().decode(buf.subarray(0, r.length)),
      from: r.address.toString(),
      port: r.port,
    });
  }
  return out;
}

Deno.test("ARP and NDP resolve the peer, and the asker learns the answerer's MAC", () => {
  const n = net();
  n.ia.ping(B4, 1, 1, new Uint8Array(8), n.sim.now);
  n.ia.ping(B6, 1, 1, new Uint8Array(8), n.sim.now);
  run(n, 50);
  const e4 = n.ia.neighbors.find(4, B4.bytes)!;
  assert.equal(e4.state, "reachable");
  assert.deepEqual([...e4.mac], [...n.ib.mac]);
  const e6 = n.ia.neighbors.find(6, B6.bytes)!;
  assert.equal(e6.state, "reachable");
  assert.deepEqual([...e6.mac], [...n.ib.mac]);
  // The answerer learned the asker from the request (STALE: not confirmed, RFC 4861 7.2.3).
  assert.equal(n.ib.neighbors.find(4, A4.bytes)!.state, "stale");
  assert.equal(n.ib.neighbors.find(6, A6.bytes)!.state, "stale");
  assert.equal(n.ia.counters.arp.tx, 1);
  assert.equal(n.ia.counters.ndp.tx, 1);
  assert.equal(n.ib.counters.ndp.tx, 1, "one solicited NA");
  assert.equal(n.ia.drops.total() + n.ib.drops.total(), 0);
});

Deno.test("ping over IPv4 and IPv6 reports the RTT of virtual time exactly", () => {
  const n = net();
  for (const [dst, hdr] of [[B4, 14 + 20 + 8], [B6, 14 + 40 + 8]] as const) {
    n.ia.ping(dst, 9, 1, new Uint8Array(56), n.sim.now);
    run(n, 100);
    const first = n.ia.takeEchoReply()!;
    assert.ok(first.from.equals(dst));
    assert.equal(first.seq, 1);
    const resolve = dst.version === 4 ? 2 * ser(42) : 2 * ser(14 + 40 + 32);
    assert.equal(first.rtt, 4 * DELAY + resolve + 2 * ser(hdr + 56), "includes resolution");
    n.ia.ping(dst, 9, 2, new Uint8Array(56), n.sim.now);
    run(n, 100);
    const second = n.ia.takeEchoReply()!;
    assert.equal(second.seq, 2);
    assert.equal(second.length, 56);
    assert.equal(second.rtt, 2 * DELAY + 2 * ser(hdr + 56));
    assert.equal(n.ia.takeEchoReply(), null);
  }
});

Deno.test("UDP datagrams flow both ways over IPv4 and IPv6", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  const sb = n.ub.bind(null, 5353);
  sa.sendTo(new TextEncoder().encode("hello v4"), B4, 5353);
  sa.sendTo(new TextEncoder().encode("hello v6"), B6, 5353);
  run(n, 50);
  const got = drain(sb);
  assert.deepEqual(got.map((g) => g.text).sort(), ["hello v4", "hello v6"]);
  for (const g of got) {
    sb.sendTo(new TextEncoder().encode(`re: ${g.text}`), IpAddress.parse(g.from), g.port);
  }
  run(n, 50);
  const back = drain(sa);
  assert.deepEqual(back.map((g) => g.text).sort(), ["re: hello v4", "re: hello v6"]);
  assert.deepEqual(back.map((g) => g.from).sort(), ["198.18.0.2", "fd00::2"]);
  assert.equal(n.ua.counters.rx, 2);
  assert.equal(n.ub.counters.rx, 2);
});

Deno.test("a closed UDP port answers with a port unreachable that reaches the sender", () => {
  const n = net();
  const errors: string[] = [];
  n.ia.onIcmpError((e: IcmpErrorInfo) => errors.push(`${e.version}:${e.kind}:${e.dstPort}`));
  const sa = n.ua.bind(null, 40000);
  sa.sendTo(new Uint8Array(10), B4, 9999);
  sa.sendTo(new Uint8Array(10), B6, 9999);
  run(n, 50);
  assert.deepEqual(errors.sort(), ["4:port-unreachable:9999", "6:port-unreachable:9999"]);
  assert.equal(sa.stats.icmpErrors, 2);
  assert.equal(sa.lastError!.kind, "port-unreachable");
  assert.equal(n.ib.drops.get("no-listener"), 2);
  assert.equal(n.ib.counters.icmpErrors.sent, 2);
});

Deno.test("port unreachable messages are rate-limited by a token bucket", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  // Resolve first so all 30 datagrams arrive back to back.
  sa.sendTo(new Uint8Array(1), B4, 1);
  run(n, 50);
  const before = n.ib.counters.icmpErrors.sent;
  for (let i = 0; i < 30; i++) sa.sendTo(new Uint8Array(1), B4, 9999);
  run(n, 50);
  const sent = n.ib.counters.icmpErrors.sent - before;
  assert.equal(sent, 9, "burst of 10, one already spent");
  assert.equal(n.ib.counters.icmpErrors.rateLimited, 21);
  assert.equal(n.ib.drops.get("icmp-rate-limited"), 21);
  assert.equal(sa.stats.icmpErrors, 10);
  // A second later the bucket has refilled (10/s).
  n.sim.runUntil(n.sim.now + SECOND);
  for (let i = 0; i < 30; i++) sa.sendTo(new Uint8Array(1), B4, 9999);
  run(n, 50);
  assert.equal(n.ib.counters.icmpErrors.sent - before, 19);
});

Deno.test("a datagram to an unregistered protocol gets protocol unreachable (v4) / parameter problem (v6)", () => {
  const n = net();
  const kinds: string[] = [];
  n.ia.onIcmpError((e) => kinds.push(`${e.version}:${e.kind}:${e.protocol}`));
  for (const dst of [B4, B6]) {
    const src = n.ia.sourceFor(dst)!;
    const buf = n.ia.beginPacket(src, dst, 200, 16, 0)!;
    buf.fill(0xab);
    n.ia.commitPacket();
  }
  run(n, 50);
  assert.deepEqual(kinds.sort(), ["4:protocol-unreachable:200", "6:protocol-unreachable:200"]);
  assert.equal(n.ib.drops.get("unsupported-protocol"), 2);
});

Deno.test("a 3000-byte UDP datagram is fragmented by the sender and reassembled (IPv4 and IPv6)", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  const sb = n.ub.bind(null, 7);
  const big = new Uint8Array(3000).map((_, i) => (i * 13) & 0xff);
  for (const dst of [B4, B6]) {
    assert.ok(sa.sendTo(big, dst, 7));
    run(n, 50);
    const buf = new Uint8Array(5000);
    const r = sb.recvFrom(buf)!;
    assert.equal(r.length, 3000);
    assert.deepEqual(buf.subarray(0, 3000), big);
  }
  // 3008 bytes of UDP: IPv4 fragments carry 1480 bytes -> 3; IPv6 1448 -> 3.
  assert.equal(n.ia.counters.fragments.tx, 6);
  assert.equal(n.ib.counters.fragments.rx, 6);
  assert.equal(n.ib.counters.fragments.reassembled, 2);
  assert.equal(n.ib.reassembler.inProgress, 0);
  assert.equal(n.ib.drops.total(), 0);
});

Deno.test("packets sent while resolving wait in the queue and leave in order once resolved", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  const sb = n.ub.bind(null, 7);
  for (let i = 0; i < 5; i++) sa.sendTo(new TextEncoder().encode(`m${i}`), B4, 7);
  assert.equal(n.ia.neighbors.queuedPackets, 5);
  assert.equal(n.ia.counters.arp.tx, 1, "one request for five packets");
  run(n, 50);
  assert.deepEqual(drain(sb).map((d) => d.text), ["m0", "m1", "m2", "m3", "m4"]);
  assert.equal(n.ia.neighbors.queuedPackets, 0);
});

Deno.test("a neighbour that never answers: 3 requests a second apart, then the queue is dropped and counted", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  const ghost4 = IpAddress.parse("198.18.0.99");
  const ghost6 = IpAddress.parse("fd00::99");
  for (let i = 0; i < 4; i++) sa.sendTo(new Uint8Array(20), ghost4, 7);
  for (let i = 0; i < 2; i++) sa.sendTo(new Uint8Array(20), ghost6, 7);
  run(n, 10);
  assert.equal(n.ia.neighbors.queuedPackets, 6);
  n.sim.runUntil(n.sim.now + 10 * SECOND);
  assert.equal(n.ia.counters.arp.tx, 3);
  assert.equal(n.ia.counters.ndp.tx, 3);
  assert.equal(n.ia.drops.get("neighbor-unreachable"), 6);
  assert.equal(n.ia.neighbors.queuedPackets, 0);
  assert.equal(n.ia.neighbors.find(4, ghost4.bytes), null);
  assert.equal(n.ia.neighbors.stats.failed, 2);
  // And nothing is left scheduled: the interface goes idle.
  assert.equal(n.ia.pollAt(), Number.POSITIVE_INFINITY);
});

Deno.test("off-link destinations go to the gateway's MAC", () => {
  const n = net({ gateway4: B4, gateway6: B6 });
  const sa = n.ua.bind(null, 0);
  sa.sendTo(new Uint8Array(4), IpAddress.parse("198.19.5.5"), 7);
  sa.sendTo(new Uint8Array(4), IpAddress.parse("fd01::5"), 7);
  run(n, 50);
  // The gateway (a host here, not a router) received both and dropped them as not its own.
  assert.equal(n.ib.drops.get("not-for-us"), 2);
  assert.equal(n.ia.neighbors.find(4, B4.bytes)!.state, "reachable");
  assert.equal(n.ia.neighbors.find(6, B6.bytes)!.state, "reachable");
  assert.equal(n.ia.sourceFor(IpAddress.parse("198.19.5.5"))!.toString(), "198.18.0.1");
  assert.equal(n.ia.sourceFor(IpAddress.parse("fd01::5"))!.toString(), "fd00::1");
});

Deno.test("without a route, sends fail and are counted as 'no-route'", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  assert.equal(sa.sendTo(new Uint8Array(4), IpAddress.parse("198.19.5.5"), 7), false);
  assert.equal(n.ia.ping(IpAddress.parse("fd01::5"), 1, 1, new Uint8Array(0), 0), false);
  assert.equal(n.ia.drops.get("no-route"), 1 + 1);
});

Deno.test("on a dumbbell (two switches), ARP broadcasts and NDP multicasts are flooded and resolve", () => {
  const sim = new Simulator({ seed: 11 });
  const d = dumbbell(sim, {
    n: 2,
    bottleneck: { rateBps: 100_000_000, delay: 5 * MILLISECOND },
    access: { rateBps: RATE, delay: 100_000 },
  });
  const hosts: Interface[] = [];
  const ports = [...d.senders, ...d.receivers];
  ports.forEach((p, i) => {
    const iface = new Interface(p, {
      ipv4: [{ address: `198.18.0.${10 + i}`, prefixLength: 24 }],
      ipv6: [{ address: `fd00::${10 + i}`, prefixLength: 64 }],
    });
    sim.addNode(iface, [p]);
    hosts.push(iface);
  });
  // Sender i pings receiver i over both families.
  for (let i = 0; i < 2; i++) {
    hosts[i]!.ping(IpAddress.parse(`198.18.0.${12 + i}`), i, 1, new Uint8Array(16), 0);
    hosts[i]!.ping(IpAddress.parse(`fd00::${12 + i}`), i, 1, new Uint8Array(16), 0);
    sim.wake(hosts[i]!);
  }
  sim.runUntil(200 * MILLISECOND);
  for (let i = 0; i < 2; i++) {
    const got = [hosts[i]!.takeEchoReply(), hosts[i]!.takeEchoReply()];
    assert.ok(got.every((r) => r !== null), `sender ${i} got both replies`);
    // Bottleneck crossed four times (request, reply, and the resolution exchange), 5 ms each.
    assert.ok(got.every((r) => r!.rtt > 20 * MILLISECOND && r!.rtt < 21 * MILLISECOND));
  }
  // The other hosts saw the flooded requests but did not answer them.
  assert.equal(hosts[3]!.counters.arp.tx + hosts[2]!.counters.arp.tx, 2);
  assert.ok(hosts[1]!.drops.get("not-for-us") > 0);
});
