/**
 * The interface's per-destination transmit cache must never send with stale state: each test
 * fills the cache with a first send, changes what it depends on (neighbour MAC, route, gateway,
 * path MTU, IPv6 link MTU, expiries), and checks the next send follows the change. Without the
 * generation bump (or the expiry bound) behind each, the second send would reuse the cached
 * MAC / next hop / MTU and the test fails.
 */

import assert from "node:assert/strict";
import { Interface } from "./interface.ts";
import { fakeInterface } from "../../../tests/support/fake_link.ts";
import { IpAddress } from "../wire/address.ts";
import { ARP_REPLY, ARP_REQUEST, ArpRepr } from "../wire/arp.ts";
import { internetChecksum, pseudoHeaderSumV6, writeTransportChecksum } from "../wire/checksum.ts";
import { EthernetRepr } from "../wire/ethernet.ts";
import { Icmpv4Repr } from "../wire/icmpv4.ts";
import { Icmpv6Repr } from "../wire/icmpv6.ts";
import { Ipv4Repr } from "../wire/ipv4.ts";
import { Ipv6Repr } from "../wire/ipv6.ts";
import { SECOND } from "../../time.ts";

const OUR_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
const MAC_1 = new Uint8Array([0x02, 0, 0, 0, 0, 0x11]);
const MAC_2 = new Uint8Array([0x02, 0, 0, 0, 0, 0x22]);
const A4 = IpAddress.parse("198.18.0.1");
const B4 = IpAddress.parse("198.18.0.2");
const GW1 = IpAddress.parse("198.18.0.254");
const GW2 = IpAddress.parse("198.18.0.253");
const FAR4 = IpAddress.parse("198.19.7.7");
const A6 = IpAddress.parse("fd00::1");
const B6 = IpAddress.parse("fd00::2");

const setup = fakeInterface;

/** Sends one TCP-protocol packet with a `length`-byte payload; returns false when refused. */
function send(iface: Interface, src: IpAddress, dst: IpAddress, length = 100): boolean {
  const buf = iface.beginPacket(src, dst, 6, length, 0);
  if (buf === null) return false;
  buf.fill(0x5a);
  iface.commitPacket();
  return true;
}

function frameDst(f: Uint8Array): number[] {
  return [...f.subarray(0, 6)];
}

function eth(src: Uint8Array, ethertype: number, payload: Uint8Array): Uint8Array {
  const r = new EthernetRepr();
  r.dst.set(OUR_MAC);
  r.src.set(src);
  r.ethertype = ethertype;
  const f = new Uint8Array(14 + payload.length);
  r.emit(f);
  f.set(payload, 14);
  return f;
}

function arp(op: number, senderMac: Uint8Array, sender: IpAddress): Uint8Array {
  const a = new ArpRepr();
  a.operation = op;
  a.sha.set(senderMac);
  a.spa = sender.v4;
  a.tpa = A4.v4;
  const body = new Uint8Array(28);
  a.emit(body);
  return eth(senderMac, 0x0806, body);
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

/** An ICMP frag-needed from `reporter` quoting the first 28 bytes of `sentFrame`'s packet. */
function fragNeeded(reporter: IpAddress, sentFrame: Uint8Array, mtu: number): Uint8Array {
  const m = new Icmpv4Repr();
  m.type = 3;
  m.code = 4;
  m.nextHopMtu = mtu;
  m.data = sentFrame.slice(14, 14 + 28);
  const msg = new Uint8Array(8 + 28);
  m.emit(msg);
  return eth(MAC_1, 0x0800, ipv4(reporter, A4, 1, msg));
}

Deno.test("tx cache: a neighbour's new MAC from an ARP update is used by the next send", () => {
  const { link, iface } = setup();
  iface.neighbors.confirm(4, B4.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, B4) && send(iface, A4, B4));
  assert.deepEqual(frameDst(link.sent[1]!), [...MAC_1]);
  // B announces a new MAC (an ARP request from B): the entry is updated (STALE, new MAC).
  link.rx.push(arp(ARP_REQUEST, MAC_2, B4));
  iface.poll(SECOND);
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4));
  assert.deepEqual(frameDst(link.sent[0]!), [...MAC_2], "sent to the new MAC, not the cached one");
  // And an ARP reply changing it back.
  link.rx.push(arp(ARP_REPLY, MAC_1, B4));
  iface.poll(2 * SECOND);
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4));
  assert.deepEqual(frameDst(link.sent[0]!), [...MAC_1]);
});

Deno.test("tx cache: a removed neighbour entry makes the next send resolve again (ARP)", () => {
  const { link, iface } = setup();
  iface.neighbors.confirm(4, B4.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, B4));
  assert.equal(link.sent.length, 1);
  iface.neighbors.remove(4, B4.bytes);
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4), "queued behind resolution");
  assert.equal(link.sent.length, 1, "only the ARP request goes out");
  assert.equal(link.sent[0]![12], 0x08);
  assert.equal(link.sent[0]![13], 0x06, "an ARP frame, not the cached data frame");
  assert.equal(iface.neighbors.queuedPackets, 1);
});

Deno.test("tx cache: a neighbour entry that expires in poll() is not used afterwards", () => {
  const { link, iface } = setup({ neighbor: { reachableTime: SECOND, staleTimeout: 2 * SECOND } });
  iface.neighbors.confirm(4, B4.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, B4));
  // Unused: REACHABLE -> STALE at 1 s, deleted at 1 s + 2 s.
  iface.poll(SECOND);
  iface.poll(4 * SECOND);
  assert.equal(iface.neighbors.find(4, B4.bytes), null, "entry expired");
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4));
  assert.equal(link.sent.length, 1);
  assert.equal(link.sent[0]![13], 0x06, "ARP request, not a frame to the expired MAC");
});

Deno.test("tx cache: sends through the cache still start STALE -> DELAY -> unicast probe", () => {
  const { link, iface } = setup({ neighbor: { reachableTime: SECOND, delayFirstProbe: SECOND } });
  iface.neighbors.confirm(4, B4.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, B4), "fills the cache while REACHABLE");
  iface.poll(2 * SECOND); // now STALE; no bump for that
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4), "through the cache");
  assert.equal(iface.neighbors.find(4, B4.bytes)!.delayUntil, 3 * SECOND, "DELAY started");
  iface.poll(3 * SECOND);
  const probe = link.sent.find((f) => f[12] === 0x08 && f[13] === 0x06);
  assert.ok(probe !== undefined, "a reachability probe went out");
  assert.deepEqual(frameDst(probe), [...MAC_1], "unicast to the cached MAC");
});

Deno.test("tx cache: a removed route makes the next send fail with 'no-route'", () => {
  const { link, iface } = setup({ gateway4: GW1 });
  iface.neighbors.confirm(4, GW1.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, FAR4));
  assert.deepEqual(frameDst(link.sent[0]!), [...MAC_1]);
  assert.equal(iface.routes.remove(IpAddress.parse("0.0.0.0"), 0), 1);
  link.sent.length = 0;
  assert.equal(send(iface, A4, FAR4), false, "no route any more");
  assert.equal(link.sent.length, 0);
  assert.equal(iface.drops.get("no-route"), 1);
});

Deno.test("tx cache: a changed gateway is used by the next send", () => {
  const { link, iface } = setup({ gateway4: GW1 });
  iface.neighbors.confirm(4, GW1.bytes, MAC_1, 0, true);
  iface.neighbors.confirm(4, GW2.bytes, MAC_2, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, FAR4));
  assert.deepEqual(frameDst(link.sent[0]!), [...MAC_1]);
  // Replaces the default route (same prefix, length and origin).
  iface.routes.add(IpAddress.parse("0.0.0.0"), 0, GW2, { origin: "gateway" });
  link.sent.length = 0;
  assert.ok(send(iface, A4, FAR4));
  assert.deepEqual(frameDst(link.sent[0]!), [...MAC_2], "to the new gateway's MAC");
  // A more specific route added later wins too.
  iface.routes.add(IpAddress.parse("198.19.7.0"), 24, GW1);
  link.sent.length = 0;
  assert.ok(send(iface, A4, FAR4));
  assert.deepEqual(frameDst(link.sent[0]!), [...MAC_1]);
});

Deno.test("tx cache: a route that expires is not used even before poll() removes it", () => {
  const { link, iface } = setup();
  iface.neighbors.confirm(4, GW1.bytes, MAC_1, 0, true);
  iface.neighbors.confirm(4, B4.bytes, MAC_2, 0, true);
  iface.routes.add(IpAddress.parse("198.19.0.0"), 16, GW1, { expiresAt: 10 * SECOND });
  iface.poll(0);
  assert.ok(send(iface, A4, FAR4) && send(iface, A4, FAR4));
  assert.equal(link.sent.length, 2);
  // ping() advances the interface's clock without a poll, so expire() has not run.
  assert.ok(iface.ping(B4, 1, 1, new Uint8Array(8), 11 * SECOND));
  assert.equal(link.sent.length, 3);
  assert.equal(send(iface, A4, FAR4), false, "the expired route is not used");
  assert.equal(link.sent.length, 3);
  assert.equal(iface.drops.get("no-route"), 1);
});

Deno.test("tx cache: a path MTU lowered by ICMP frag-needed applies to the next send", () => {
  const { link, iface } = setup();
  iface.neighbors.confirm(4, B4.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A4, B4, 1480) && send(iface, A4, B4, 1480));
  assert.equal(link.sent.length, 2);
  assert.equal(link.sent[1]!.length, 1514, "full-sized frame through the cache");
  link.rx.push(fragNeeded(B4, link.sent[1]!, 1000));
  iface.poll(SECOND);
  assert.equal(iface.mtuFor(B4), 1000);
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4, 1480));
  assert.ok(link.sent.length >= 2, "fragmented to the new path MTU");
  assert.ok(link.sent.every((f) => f.length - 14 <= 1000), "no frame above the path MTU");
  // A small packet now fills the cache at MTU 1000; a second frag-needed lowers it again.
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4, 900) && send(iface, A4, B4, 900));
  assert.equal(link.sent.length, 2);
  link.rx.push(fragNeeded(B4, link.sent[1]!, 600));
  iface.poll(2 * SECOND);
  link.sent.length = 0;
  assert.ok(send(iface, A4, B4, 900));
  assert.ok(link.sent.length >= 2 && link.sent.every((f) => f.length - 14 <= 600));
});

// A cached MTU below the real one only sends packets that fit both, so this guards the lookup
// path's behaviour after a cache fill rather than the cache's expiry bound.
Deno.test("tx cache: a learned path MTU that expires is not used even before poll() drops it", () => {
  const { link, iface } = setup({ pmtu: { lifetime: 10 * SECOND } });
  iface.neighbors.confirm(4, B4.bytes, MAC_1, 0, true);
  iface.poll(0);
  iface.routes.learnPmtu(B4.bytes, 1000, 1500, 0);
  // Fill the cache at MTU 1000 with a small echo request.
  assert.ok(iface.ping(B4, 1, 1, new Uint8Array(8), SECOND));
  assert.ok(iface.ping(B4, 1, 2, new Uint8Array(8), 2 * SECOND));
  link.sent.length = 0;
  // After the lifetime the PMTU is 1500 again: a 1400-byte echo goes out whole.
  assert.ok(iface.ping(B4, 1, 3, new Uint8Array(1400), 11 * SECOND));
  assert.equal(link.sent.length, 1, "not fragmented to the expired path MTU");
});

Deno.test("tx cache: an IPv6 link MTU lowered by a router advertisement applies to the next send", () => {
  const { link, iface } = setup({ acceptRa: true });
  iface.neighbors.confirm(6, B6.bytes, MAC_1, 0, true);
  iface.poll(0);
  assert.ok(send(iface, A6, B6, 1400) && send(iface, A6, B6, 1400));
  assert.equal(link.sent.length, 2);
  assert.equal(link.sent[1]!.length, 14 + 40 + 1400);
  // RA from fe80::1 with an MTU option of 1280.
  const ra = new Icmpv6Repr();
  ra.type = 134;
  ra.routerLifetime = 0;
  ra.mtuOptionPresent = true;
  ra.mtuOption = 1280;
  const body = new Uint8Array(2000);
  const n = ra.emit(body);
  const msg = body.slice(0, n);
  const router = IpAddress.parse("fe80::1"), allNodes = IpAddress.parse("ff02::1");
  writeTransportChecksum(msg, 2, pseudoHeaderSumV6(router.bytes, allNodes.bytes, 58, n));
  const ip = new Ipv6Repr();
  ip.src.set(router.bytes);
  ip.dst.set(allNodes.bytes);
  ip.protocol = 58;
  ip.hopLimit = 255;
  const p = new Uint8Array(40 + n);
  ip.emit(p, n);
  p.set(msg, 40);
  const f = eth(MAC_2, 0x86dd, p);
  f.set([0x33, 0x33, 0, 0, 0, 1], 0);
  link.rx.push(f);
  iface.poll(SECOND);
  assert.equal(iface.ipv6Mtu, 1280);
  link.sent.length = 0;
  assert.ok(send(iface, A6, B6, 1400));
  assert.ok(link.sent.length >= 2, "fragmented to the new link MTU");
  assert.ok(link.sent.every((fr) => fr.length - 14 <= 1280));
});

Deno.test("tx cache: headers written through the cache equal the lookup path's", () => {
  // Two interfaces: one sends each packet once (lookup path fills), the other sends it twice.
  for (const [src, dst] of [[A4, B4], [A6, B6]] as const) {
    const { link, iface } = setup();
    iface.neighbors.confirm(dst.version, dst.bytes, MAC_1, 0, true);
    iface.poll(0);
    for (let i = 0; i < 3; i++) {
      const buf = iface.beginPacket(src, dst, 6, 40, i & 3)!;
      buf.fill(i);
      iface.commitPacket();
    }
    const [first, second, third] = link.sent as [Uint8Array, Uint8Array, Uint8Array];
    assert.equal(second.length, first.length);
    assert.deepEqual(second.subarray(0, 14), first.subarray(0, 14), "same Ethernet header");
    if (dst.version === 4) {
      // Only the identification, ECN and checksum may differ; the checksum must verify.
      for (const f of [first, second, third]) {
        assert.equal(internetChecksum(f.subarray(14, 34)), 0);
      }
      const a = first.slice(14, 34), b = second.slice(14, 34);
      for (const h of [a, b]) {
        h[1] =
          h[4] =
          h[5] =
          h[10] =
          h[11] =
            0;
      }
      assert.deepEqual(b, a);
      assert.equal(second[15], 1, "ECN of the second packet");
      assert.equal(((second[18]! << 8) | second[19]!) - ((first[18]! << 8) | first[19]!), 1);
      assert.equal(first[20]! & 0x40, 0x40, "DF on TCP");
      assert.equal(second[20]! & 0x40, 0x40, "DF on TCP through the cache");
    } else {
      const a = first.slice(14, 54), b = second.slice(14, 54);
      assert.equal(b[1], 0x10, "ECN 1 in the traffic class");
      a[1] = b[1] = 0;
      assert.deepEqual(b, a);
    }
  }
});
