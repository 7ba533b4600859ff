/**
 * Three nodes: host A - router - host B, the second link with a 1280-byte MTU. Gateways,
 * forwarding, TTL expiry, unreachable networks, and path MTU discovery from the router's
 * frag-needed / packet-too-big, all in virtual time.
 */
import assert from "node:assert/strict";
import { Simulator } from "../sim/simulator.ts";
import { pointToPoint } from "../sim/topology.ts";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { IcmpErrorInfo } from "../stacks/tcpip/iface/icmp.ts";
import { Router } from "../stacks/tcpip/iface/router.ts";
import type { UdpLayer, UdpSocket } from "../stacks/tcpip/iface/udp.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { MILLISECOND, NEVER } from "../stacks/time.ts";

const A4 = IpAddress.parse("198.18.1.1");
const B4 = IpAddress.parse("198.18.2.1");
const A6 = IpAddress.parse("fd00:1::1");
const B6 = IpAddress.parse("fd00:2::1");

interface Net {
  sim: Simulator;
  a: Interface;
  b: Interface;
  router: Router;
  ua: UdpLayer;
  ub: UdpLayer;
  errorsAtA: string[];
}

function net(ttl = 64): Net {
  const sim = new Simulator({ seed: 3 });
  const left = pointToPoint(sim, {
    rateBps: 1e9,
    delay: MILLISECOND,
    names: ["a", "r1"],
  });
  const right = pointToPoint(sim, {
    rateBps: 1e9,
    delay: MILLISECOND,
    names: ["r2", "b"],
    mtu: 1280,
  });
  const a = new Interface(left.a, {
    ipv4: [{ address: A4, prefixLength: 24 }],
    ipv6: [{ address: A6, prefixLength: 64 }],
    gateway4: "198.18.1.254",
    gateway6: "fd00:1::fe",
    ttl,
  });
  const r1 = new Interface(left.b, {
    ipv4: [{ address: "198.18.1.254", prefixLength: 24 }],
    ipv6: [{ address: "fd00:1::fe", prefixLength: 64 }],
  });
  const r2 = new Interface(right.a, {
    ipv4: [{ address: "198.18.2.254", prefixLength: 24 }],
    ipv6: [{ address: "fd00:2::fe", prefixLength: 64 }],
  });
  const b = new Interface(right.b, {
    ipv4: [{ address: B4, prefixLength: 24 }],
    ipv6: [{ address: B6, prefixLength: 64 }],
    gateway4: "198.18.2.254",
    gateway6: "fd00:2::fe",
  });
  const router = new Router([r1, r2]);
  sim.addNode(a, [left.a]);
  sim.addNode(router, [left.b, right.a]);
  sim.addNode(b, [right.b]);
  const errorsAtA: string[] = [];
  a.onIcmpError((e: IcmpErrorInfo) =>
    errorsAtA.push(`${e.version}:${e.kind}:${e.mtu}:${IpAddress.fromBytes(e.reporter)}`)
  );
  return { sim, a, b, router, ua: a.createUdp(), ub: b.createUdp(), errorsAtA };
}

function run(n: Net, ms: number): void {
  n.sim.wake(n.a);
  n.sim.wake(n.b);
  n.sim.runUntil(n.sim.now + ms * MILLISECOND);
}

function recv(s: UdpSocket): number[] {
  const out: number[] = [];
  const buf = new Uint8Array(70000);
  for (let r = s.recvFrom(buf); r !== null; r = s.recvFrom(buf)) out.push(r.length);
  return out;
}

Deno.test("hosts behind a router ping each other through their gateways (IPv4 and IPv6)", () => {
  const n = net();
  for (const dst of [B4, B6]) {
    n.a.ping(dst, 1, 1, new Uint8Array(32), n.sim.now);
    run(n, 50);
    n.a.ping(dst, 1, 2, new Uint8Array(32), n.sim.now);
    run(n, 50);
    n.a.takeEchoReply();
    const r = n.a.takeEchoReply()!;
    assert.ok(r.from.equals(dst));
    assert.equal(r.seq, 2);
    // Four hops of 1 ms plus serialization: a bit over 4 ms.
    assert.ok(r.rtt > 4 * MILLISECOND && r.rtt < 4.01 * MILLISECOND, `rtt ${r.rtt}`);
  }
  assert.equal(n.router.counters.forwarded, 8, "2 pings x 2 directions x 2 families");
  assert.equal(n.a.drops.total() + n.b.drops.total(), 0);
});

Deno.test("the router re-fragments IPv4 for the 1280-byte link and B reassembles", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  const sb = n.ub.bind(null, 7);
  sa.sendTo(new Uint8Array(3000).fill(7), B4, 7);
  run(n, 50);
  assert.deepEqual(recv(sb), [3000]);
  assert.equal(n.a.counters.fragments.tx, 3);
  assert.ok(n.b.counters.fragments.rx > 3, "fragments of fragments");
  assert.equal(n.b.reassembler.inProgress, 0);
});

Deno.test("IPv6 path MTU discovery: packet too big from the router, then source fragments fit", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  const sb = n.ub.bind(null, 7);
  sa.sendTo(new Uint8Array(2000), B6, 7);
  run(n, 50);
  assert.deepEqual(recv(sb), [], "the first datagram is lost: its first fragment was too big");
  assert.deepEqual(n.errorsAtA, ["6:packet-too-big:1280:fd00:1::fe"]);
  assert.equal(n.a.mtuFor(B6), 1280);
  sa.sendTo(new Uint8Array(2000), B6, 7);
  run(n, 50);
  assert.deepEqual(recv(sb), [2000]);
});

Deno.test("IPv4 path MTU discovery: a DF packet too big gets frag-needed, reported to the transport", () => {
  const n = net();
  const seen: string[] = [];
  n.a.register({
    protocol: 6,
    receive(): void {},
    poll(): void {},
    pollAt: () => NEVER,
    icmpError: (e) => seen.push(`${e.kind}:${e.mtu}`),
  });
  const send = (): void => {
    const buf = n.a.beginPacket(A4, B4, 6, 1400, 0)!;
    buf.fill(0);
    n.a.commitPacket();
  };
  send(); // queued behind ARP for the gateway, then forwarded with DF set
  run(n, 50);
  assert.deepEqual(seen, ["frag-needed:1280"]);
  assert.equal(n.a.mtuFor(B4), 1280);
  assert.equal(n.router.counters.tooBig, 1);
});

Deno.test("a TTL of 1 expires at the router with ICMP time exceeded (both families)", () => {
  const n = net(1);
  const sa = n.ua.bind(null, 0);
  sa.sendTo(new Uint8Array(10), B4, 7);
  sa.sendTo(new Uint8Array(10), B6, 7);
  run(n, 50);
  assert.deepEqual(n.errorsAtA.sort(), [
    "4:time-exceeded:0:198.18.1.254",
    "6:time-exceeded:0:fd00:1::fe",
  ]);
  assert.equal(n.router.counters.ttlExpired, 2);
  assert.equal(sa.stats.icmpErrors, 2);
});

Deno.test("a destination the router cannot reach gets ICMP unreachable", () => {
  const n = net();
  const sa = n.ua.bind(null, 0);
  sa.sendTo(new Uint8Array(10), IpAddress.parse("198.19.9.9"), 7);
  sa.sendTo(new Uint8Array(10), IpAddress.parse("fd09::9"), 7);
  run(n, 50);
  assert.deepEqual(n.errorsAtA.sort(), [
    "4:unreachable:0:198.18.1.254",
    "6:unreachable:0:fd00:1::fe",
  ]);
  assert.equal(n.router.counters.noRoute, 2);
});
