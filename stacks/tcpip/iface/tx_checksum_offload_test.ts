/**
 * Transmit checksum offload (`LinkCapabilities.txChecksumOffload` + `Link.commitPartial`): TCP
 * segments that go straight into a device buffer leave their checksum partial for the device,
 * packets built in the scratch buffer (neighbour not yet resolved) are still summed by the
 * stack, and a peer receives correct checksums either way.
 */
import assert from "node:assert/strict";
import { Interface } from "./interface.ts";
import { FakeLink } from "../../../tests/support/fake_link.ts";
import { TcpStack } from "../tcp/stack.ts";
import { IpAddress } from "../wire/address.ts";
import { Endpoint, payload } from "../../../tests/support/tcp_pair.ts";
import { SECOND } from "../../time.ts";

interface Host {
  link: FakeLink;
  iface: Interface;
  tcp: TcpStack;
}

function host(link: FakeLink, v4: string, v6: string, offloadConfig?: boolean): Host {
  const iface = new Interface(link, {
    ipv4: [{ address: v4, prefixLength: 24 }],
    ipv6: [{ address: v6, prefixLength: 64 }],
    ...(offloadConfig === undefined ? {} : { txChecksumOffload: offloadConfig }),
  });
  let seed = v4.length * 7919;
  const tcp = new TcpStack({
    ip: iface,
    random: () => (seed = (seed * 1103515245 + 12345) >>> 0),
  });
  iface.register(tcp);
  return { link, iface, tcp };
}

/** 300 kB from A to B over IPv4 or IPv6; returns the two hosts after the transfer. */
function transfer(
  family: 4 | 6,
  aOffload: boolean,
  aCompletes = true,
  offloadConfig?: boolean,
  wholeFrames = false,
): { a: Host; b: Host; ok: boolean; received: Uint8Array; sent: Uint8Array } {
  const la = new FakeLink({
    name: "a",
    mac: new Uint8Array([2, 0, 0, 0, 0, 1]),
    txChecksumOffload: aOffload,
    completesChecksums: aCompletes,
    wholeFrames,
  });
  const lb = new FakeLink({ name: "b", mac: new Uint8Array([2, 0, 0, 0, 0, 2]) });
  la.peer = lb;
  lb.peer = la;
  const a = host(la, "198.18.0.1", "fd00::1", offloadConfig);
  const b = host(lb, "198.18.0.2", "fd00::2");
  const l = b.tcp.listen(null, 5001, 4);
  const dst = IpAddress.parse(family === 4 ? "198.18.0.2" : "fd00::2");
  let now = 0;
  const c = a.tcp.connect(dst, 5001, now);
  const data = payload(300_000, 3);
  const ea = new Endpoint(a.tcp, c, data, 0);
  const eb = new Endpoint(b.tcp, -1, new Uint8Array(0), data.length);
  let ok = false;
  for (let i = 0; i < 20_000 && now < 10 * SECOND; i++) {
    a.iface.poll(now);
    b.iface.poll(now);
    eb.acceptFrom(l);
    ea.pump(now);
    eb.pump(now);
    if (eb.eof) {
      ok = true;
      break;
    }
    now += 50_000; // 50 µs per turn of the wire
  }
  return { a, b, ok, received: eb.received, sent: data };
}

for (const family of [4, 6] as const) {
  Deno.test(`Interface leaves IPv${family} TCP checksums to a link with transmit offload (commitPartial at the TCP header, field 16) and the peer accepts every segment`, () => {
    const { a, b, ok, received, sent } = transfer(family, true);
    assert.ok(ok, "transfer finished");
    assert.deepEqual(received, sent);
    const c = a.iface.counters;
    assert.ok(c.txPartialChecksums > 150, `offloaded ${c.txPartialChecksums}`);
    assert.equal(c.txPartialChecksums, a.link.partials.length);
    const l4 = 14 + (family === 4 ? 20 : 40);
    for (const [, start, off] of a.link.partials) {
      assert.equal(start, l4);
      assert.equal(off, 16);
    }
    // Before the neighbour answered, the SYN went through the scratch buffer: summed here.
    assert.ok(a.link.fullCommits >= 1, `${a.link.fullCommits} frames committed whole`);
    assert.equal(b.tcp.counters.get("bad-checksum"), 0);
  });
}

Deno.test("Interface with transmit offload writes only the pseudo-header sum: a device that does not complete it gets every offloaded segment dropped by the peer", () => {
  const { a, b, ok } = transfer(4, true, false);
  assert.equal(ok, false, "no transfer through a device that leaves checksums partial");
  assert.ok(a.iface.counters.txPartialChecksums > 0);
  assert.ok((b.tcp.counters.get("bad-checksum")) > 0, "the peer dropped them as bad-checksum");
});

Deno.test("Interface computes TCP checksums itself on a link without offload, or when txChecksumOffload is false", () => {
  for (const [offload, config] of [[false, undefined], [true, false]] as const) {
    const { a, ok, received, sent } = transfer(4, offload, true, config);
    assert.ok(ok);
    assert.deepEqual(received, sent);
    assert.equal(a.iface.counters.txPartialChecksums, 0);
    assert.equal(a.link.partials.length, 0);
  }
});

for (const family of [4, 6] as const) {
  for (const offload of [false, true]) {
    Deno.test(`TCP over a link that lends whole frames (Link.transmitFrame) sends the same IPv${family} frames as over one lending exact buffers${offload ? ", with checksum offload" : ""}`, () => {
      const whole = transfer(family, offload, true, undefined, true);
      const exact = transfer(family, offload, true, undefined, false);
      assert.ok(whole.ok && exact.ok, "both transfers finished");
      assert.deepEqual(whole.received, whole.sent);
      // Data segments went through beginPacketAt into the lent frame (ARP/ND and the first
      // packets before the neighbour is known go through the scratch buffer).
      assert.ok(whole.a.link.framesLent > 200, `${whole.a.link.framesLent} frames lent whole`);
      assert.equal(exact.a.link.framesLent, 0);
      assert.equal(whole.a.link.sent.length, exact.a.link.sent.length);
      assert.deepEqual(whole.a.link.sent, exact.a.link.sent);
    });
  }
}
