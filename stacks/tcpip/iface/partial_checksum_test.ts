/**
 * `LinkCapabilities.rxPartialChecksum`: on a veth-like link, TCP/UDP packets whose checksum
 * field holds exactly the folded pseudo-header sum (what Linux leaves for CHECKSUM_PARTIAL)
 * are accepted and counted; any other wrong checksum is still dropped; without the capability
 * partial checksums are dropped as bad-checksum.
 */
import assert from "node:assert/strict";
import { Interface } from "./interface.ts";
import { FakeLink } from "../../../tests/support/fake_link.ts";
import { IpAddress } from "../wire/address.ts";
import {
  foldChecksum,
  onesComplementSum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
} from "../wire/checksum.ts";
import { TcpStack } from "../tcp/stack.ts";

const OUR_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
const PEER_MAC = new Uint8Array([0x02, 0, 0, 0, 0, 0x02]);
const A4 = IpAddress.parse("198.18.0.1");
const B4 = IpAddress.parse("198.18.0.2");
const A6 = IpAddress.parse("fd00::1");
const B6 = IpAddress.parse("fd00::2");

type Csum = "full" | "partial" | "bad";

const v32 = (a: IpAddress): number => a.v4;

/** Ethernet + IP + transport header (UDP 8 / TCP SYN 20) + payload with the chosen checksum. */
function frame(version: 4 | 6, proto: 6 | 17, csum: Csum, payload = 32): Uint8Array {
  const th = proto === 17 ? 8 : 20;
  const tlen = th + payload;
  const ipLen = version === 4 ? 20 : 40;
  const f = new Uint8Array(14 + ipLen + tlen);
  const v = new DataView(f.buffer);
  f.set(OUR_MAC, 0);
  f.set(PEER_MAC, 6);
  v.setUint16(12, version === 4 ? 0x0800 : 0x86dd);
  const ip = 14;
  if (version === 4) {
    v.setUint8(ip, 0x45);
    v.setUint16(ip + 2, 20 + tlen);
    v.setUint16(ip + 6, 0x4000);
    v.setUint8(ip + 8, 64);
    v.setUint8(ip + 9, proto);
    v.setUint32(ip + 12, B4.v4);
    v.setUint32(ip + 16, A4.v4);
    v.setUint16(ip + 10, foldChecksum(onesComplementSum(f.subarray(ip, ip + 20))));
  } else {
    v.setUint32(ip, 0x60000000);
    v.setUint16(ip + 4, tlen);
    v.setUint8(ip + 6, proto);
    v.setUint8(ip + 7, 64);
    f.set(B6.bytes, ip + 8);
    f.set(A6.bytes, ip + 24);
  }
  const t = ip + ipLen;
  v.setUint16(t, 40000);
  v.setUint16(t + 2, 7);
  let field: number;
  if (proto === 17) {
    v.setUint16(t + 4, tlen);
    field = t + 6;
  } else {
    v.setUint32(t + 4, 1000); // seq
    v.setUint8(t + 12, 5 << 4);
    v.setUint8(t + 13, 0x02); // SYN
    v.setUint16(t + 14, 65535);
    field = t + 16;
  }
  for (let i = 0; i < payload && proto === 17; i++) f[t + th + i] = i & 0xff;
  if (proto === 6) f.fill(0, t + th); // a SYN carries no data: keep payload 0 for TCP
  const pseudo = version === 4
    ? pseudoHeaderSumV4(v32(B4), v32(A4), proto, tlen)
    : pseudoHeaderSumV6(B6.bytes, A6.bytes, proto, tlen);
  const partial = ~foldChecksum(pseudo) & 0xffff;
  const full = foldChecksum(onesComplementSum(f.subarray(t, t + tlen), pseudo));
  v.setUint16(field, csum === "full" ? full : csum === "partial" ? partial : (full ^ 0x5a5a));
  return f;
}

function setup(partial: boolean): { link: FakeLink; iface: Interface } {
  const link = new FakeLink({ name: "fake-veth", rxPartialChecksum: partial });
  const iface = new Interface(link, {
    ipv4: [{ address: A4, prefixLength: 24 }],
    ipv6: [{ address: A6, prefixLength: 64 }],
  });
  return { link, iface };
}

for (const version of [4, 6] as const) {
  Deno.test(`rxPartialChecksum link: IPv${version} UDP with a partial checksum is delivered and counted`, () => {
    const { link, iface } = setup(true);
    const sock = iface.createUdp().bind(null, 7);
    link.rx.push(frame(version, 17, "partial"), frame(version, 17, "full"));
    iface.poll(0);
    assert.equal(sock.stats.rxDatagrams, 2);
    assert.equal(iface.counters.partialChecksums, 1);
    assert.equal(iface.drops.get("bad-checksum"), 0);
  });

  Deno.test(`rxPartialChecksum link: IPv${version} UDP with a wrong checksum is still dropped as bad-checksum`, () => {
    const { link, iface } = setup(true);
    const sock = iface.createUdp().bind(null, 7);
    link.rx.push(frame(version, 17, "bad"));
    iface.poll(0);
    assert.equal(sock.stats.rxDatagrams, 0);
    assert.equal(iface.counters.partialChecksums, 0);
    assert.equal(iface.drops.get("bad-checksum"), 1);
  });

  Deno.test(`a link without rxPartialChecksum drops IPv${version} UDP with a partial checksum`, () => {
    const { link, iface } = setup(false);
    const sock = iface.createUdp().bind(null, 7);
    link.rx.push(frame(version, 17, "partial"));
    iface.poll(0);
    assert.equal(sock.stats.rxDatagrams, 0);
    assert.equal(iface.drops.get("bad-checksum"), 1);
  });

  Deno.test(`rxPartialChecksum link: an IPv${version} TCP SYN with a partial checksum is answered, a bad one is not`, () => {
    const { link, iface } = setup(true);
    let r = 1;
    const tcp = new TcpStack({ ip: iface, random: () => (r = (r * 1103515245 + 12345) >>> 0) });
    iface.register(tcp);
    tcp.listen(null, 7, 8);
    // Resolve the peer first so the SYN-ACK goes out at once (no ARP/NDP round).
    iface.neighbors.observe(version, version === 4 ? B4.bytes : B6.bytes, PEER_MAC, 0, true);
    link.rx.push(frame(version, 6, "bad"));
    iface.poll(0);
    assert.equal(tcp.counters.get("bad-checksum"), 1);
    const before = link.sent.length;
    link.rx.push(frame(version, 6, "partial"));
    iface.poll(0);
    assert.equal(iface.counters.partialChecksums, 1);
    const synAck = link.sent.slice(before).find((f) => {
      const t = 14 + (version === 4 ? 20 : 40);
      return f.length >= t + 20 && (f[t + 13]! & 0x12) === 0x12;
    });
    assert.ok(synAck !== undefined, "a SYN-ACK answered the partial-checksum SYN");
  });
}
