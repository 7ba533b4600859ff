import assert from "node:assert/strict";
import {
  PortInUseError,
  SocketClosedError,
  UdpLayer,
  UdpSendError,
  type UdpSocket,
} from "./udp.ts";
import type { IpOutput, IpReceiveInfo } from "./protocol.ts";
import { IpAddress } from "../wire/address.ts";
import { DropCounters } from "../wire/drop.ts";

const A4 = IpAddress.parse("198.18.0.1");
const B4 = IpAddress.parse("198.18.0.2");
const A6 = IpAddress.parse("fd00::1");
const B6 = IpAddress.parse("fd00::2");

/** An IpOutput that records packets instead of sending them. */
class FakeIp implements IpOutput {
  sent: { src: IpAddress; dst: IpAddress; segment: Uint8Array }[] = [];
  private cur: { src: IpAddress; dst: IpAddress; segment: Uint8Array } | null = null;
  routeless = false;
  constructor(readonly self: IpAddress[]) {}
  beginPacket(src: IpAddress, dst: IpAddress, _p: number, length: number): Uint8Array | null {
    if (this.routeless) return null;
    this.cur = { src, dst, segment: new Uint8Array(length) };
    return this.cur.segment;
  }
  commitPacket(): void {
    this.sent.push(this.cur!);
  }
  sourceFor(dst: IpAddress): IpAddress | null {
    return this.self.find((a) => a.version === dst.version) ?? null;
  }
  mtuFor(): number {
    return 1500;
  }
  isLocal(a: IpAddress): boolean {
    return this.self.some((s) => s.equals(a));
  }
}

function info(src: IpAddress, dst: IpAddress, packet = new Uint8Array(0)): IpReceiveInfo {
  return {
    version: src.version,
    src: src.bytes,
    dst: dst.bytes,
    ecn: 0,
    ttl: 64,
    packet,
    checksumVerified: false,
  };
}

/** Sends from `from` and delivers every recorded packet to `to`. */
function pump(fromIp: FakeIp, to: UdpLayer): void {
  for (const p of fromIp.sent.splice(0)) to.receive(info(p.src, p.dst), p.segment, 0);
}

Deno.test("UDP datagrams round-trip over IPv4 and IPv6 with valid checksums", () => {
  for (const [a, b] of [[A4, B4], [A6, B6]] as const) {
    const ipA = new FakeIp([a]), ipB = new FakeIp([b]);
    const la = new UdpLayer(ipA), lb = new UdpLayer(ipB);
    const sa = la.bind(null, 0);
    const sb = lb.bind(b, 7000);
    assert.ok(sa.localPort >= 49152);
    assert.ok(sa.sendTo(new TextEncoder().encode("hello"), b, 7000));
    assert.notEqual(ipA.sent[0]!.segment[6]! | ipA.sent[0]!.segment[7]!, 0, "checksum written");
    pump(ipA, lb);
    const buf = new Uint8Array(100);
    const r = sb.recvFrom(buf)!;
    assert.equal(new TextDecoder().decode(buf.subarray(0, r.length)), "hello");
    assert.ok(r.address.equals(a));
    assert.equal(r.port, sa.localPort);
    assert.equal(r.truncated, false);
    assert.equal(sb.recvFrom(buf), null);
    assert.equal(lb.drops.total(), 0);
  }
});

Deno.test("UDP drops a datagram with a corrupted checksum as 'bad-checksum'", () => {
  const ipA = new FakeIp([A4]);
  const la = new UdpLayer(ipA), lb = new UdpLayer(new FakeIp([B4]));
  const sb = lb.bind(null, 9);
  la.bind(null, 0).sendTo(new Uint8Array([1, 2, 3]), B4, 9);
  ipA.sent[0]!.segment[9]! ^= 0xff;
  pump(ipA, lb);
  assert.equal(sb.pending, 0);
  assert.equal(lb.drops.get("bad-checksum"), 1);
});

Deno.test("UDP accepts checksum 0 over IPv4 but not over IPv6", () => {
  const lb = new UdpLayer(new FakeIp([B4]));
  const sb = lb.bind(null, 9);
  const seg = new Uint8Array([0, 1, 0, 9, 0, 10, 0, 0, 0xaa, 0xbb]);
  lb.receive(info(A4, B4), seg, 0);
  assert.equal(sb.pending, 1);
  lb.receive(info(A6, B6), seg, 0);
  assert.equal(sb.pending, 1);
  assert.equal(lb.drops.get("bad-checksum"), 1);
});

Deno.test("UDP counts 'no-listener' and calls onNoListener for a closed port", () => {
  const drops = new DropCounters();
  const seen: IpReceiveInfo[] = [];
  const lb = new UdpLayer(new FakeIp([B4]), { drops, onNoListener: (i) => seen.push(i) });
  const ipA = new FakeIp([A4]);
  new UdpLayer(ipA).bind(null, 0).sendTo(new Uint8Array(4), B4, 4444);
  pump(ipA, lb);
  assert.equal(drops.get("no-listener"), 1);
  assert.equal(seen.length, 1);
});

Deno.test("UDP bounds the receive queue by datagrams and bytes and counts overflow", () => {
  const lb = new UdpLayer(new FakeIp([B4]));
  const sb = lb.bind(null, 9, { rxDatagrams: 2, rxBytes: 1000 });
  const ipA = new FakeIp([A4]);
  const sa = new UdpLayer(ipA).bind(null, 0);
  for (let i = 0; i < 3; i++) sa.sendTo(new Uint8Array(10).fill(i), B4, 9);
  pump(ipA, lb);
  assert.equal(sb.pending, 2);
  assert.equal(lb.drops.get("socket-queue-full"), 1);
  const buf = new Uint8Array(100);
  sb.recvFrom(buf);
  sb.recvFrom(buf);
  sa.sendTo(new Uint8Array(600), B4, 9);
  sa.sendTo(new Uint8Array(600), B4, 9);
  pump(ipA, lb);
  assert.equal(sb.pending, 1, "the second 600-byte datagram exceeds 1000 bytes");
  assert.equal(sb.stats.rxDropped, 2);
});

Deno.test("UDP receive ring wraps without corrupting datagrams", () => {
  const lb = new UdpLayer(new FakeIp([B4]));
  const sb = lb.bind(null, 9, { rxBytes: 100 });
  const ipA = new FakeIp([A4]);
  const sa = new UdpLayer(ipA).bind(null, 0);
  const buf = new Uint8Array(100);
  for (let round = 0; round < 10; round++) {
    const d = new Uint8Array(37).map((_, i) => (i * 3 + round) & 0xff);
    sa.sendTo(d, B4, 9);
    sa.sendTo(d, B4, 9);
    pump(ipA, lb);
    for (let k = 0; k < 2; k++) {
      const r = sb.recvFrom(buf)!;
      assert.deepEqual([...buf.subarray(0, r.length)], [...d]);
    }
  }
});

Deno.test("UDP recvFrom() truncates into a short buffer and reports it", () => {
  const lb = new UdpLayer(new FakeIp([B4]));
  const sb = lb.bind(null, 9);
  const ipA = new FakeIp([A4]);
  new UdpLayer(ipA).bind(null, 0).sendTo(new Uint8Array([1, 2, 3, 4, 5]), B4, 9);
  pump(ipA, lb);
  const r = sb.recvFrom(new Uint8Array(3))!;
  assert.equal(r.length, 3);
  assert.ok(r.truncated);
  assert.equal(sb.pending, 0);
});

Deno.test("UdpLayer.bind() throws PortInUseError for overlapping binds only", () => {
  const l = new UdpLayer(new FakeIp([A4]));
  l.bind(A4, 53);
  assert.throws(() => l.bind(A4, 53), PortInUseError);
  assert.throws(() => l.bind(null, 53), PortInUseError);
  l.bind(A6, 53); // a different address is fine
  const s = l.bind(null, 54);
  assert.throws(() => l.bind(B4, 54), PortInUseError);
  s.close();
  l.bind(B4, 54);
  assert.equal(l.socketCount, 3);
});

Deno.test("UDP delivers to the exact-address socket before the wildcard one", () => {
  const lb = new UdpLayer(new FakeIp([B4]));
  const exact = lb.bind(B4, 9);
  const other = lb.bind(B6, 9);
  const ipA = new FakeIp([A4]);
  new UdpLayer(ipA).bind(null, 0).sendTo(new Uint8Array(1), B4, 9);
  pump(ipA, lb);
  assert.equal(exact.pending, 1);
  assert.equal(other.pending, 0);
});

Deno.test("UdpSocket.sendTo() returns false without a route and throws for bad use", () => {
  const ip = new FakeIp([A4]);
  const l = new UdpLayer(ip);
  const s: UdpSocket = l.bind(A4, 0);
  ip.routeless = true;
  assert.equal(s.sendTo(new Uint8Array(1), B4, 9), false);
  assert.equal(s.stats.txFailed, 1);
  assert.throws(() => s.sendTo(new Uint8Array(1), B6, 9), UdpSendError);
  assert.throws(() => s.sendTo(new Uint8Array(1), B4, 0), UdpSendError);
  assert.throws(() => s.sendTo(new Uint8Array(70000), B4, 9), UdpSendError);
  s.close();
  assert.throws(() => s.sendTo(new Uint8Array(1), B4, 9), SocketClosedError);
});

Deno.test("UdpLayer.receive() drops truncated headers without throwing", () => {
  const l = new UdpLayer(new FakeIp([B4]));
  l.receive(info(A4, B4), new Uint8Array(5), 0);
  l.receive(info(A4, B4), new Uint8Array([0, 1, 0, 2, 0, 200, 0, 0]), 0);
  assert.equal(l.drops.get("truncated"), 1);
  assert.equal(l.drops.get("bad-length"), 1);
});

Deno.test("UdpLayer.icmpError() records the error on the sending socket", () => {
  const ip = new FakeIp([A4]);
  const l = new UdpLayer(ip);
  const s = l.bind(null, 5000);
  l.icmpError({
    version: 4,
    kind: "port-unreachable",
    type: 3,
    code: 3,
    mtu: 0,
    reporter: B4.bytes,
    src: A4.bytes,
    dst: B4.bytes,
    protocol: 17,
    srcPort: 5000,
    dstPort: 9,
    quoted: new Uint8Array(8),
  }, 0);
  assert.equal(s.stats.icmpErrors, 1);
  assert.equal(s.lastError!.kind, "port-unreachable");
  assert.ok(s.lastError!.from.equals(B4));
});
