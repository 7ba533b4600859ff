import assert from "node:assert/strict";
import {
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  transportChecksumOk,
  writeTransportChecksum,
} from "./checksum.ts";
import { UdpRepr, UdpView } from "./udp.ts";

function datagram(payload: number[]): Uint8Array {
  const u = new UdpRepr();
  u.srcPort = 53;
  u.dstPort = 40000;
  const buf = new Uint8Array(8 + payload.length);
  u.emit(buf, payload.length);
  buf.set(payload, 8);
  return buf;
}

Deno.test("UdpRepr.parse() reads ports, length, checksum and a payload bounded by length", () => {
  const d = datagram([1, 2, 3, 4]);
  const padded = new Uint8Array(20);
  padded.set(d);
  const u = new UdpRepr();
  assert.equal(u.parse(padded), undefined);
  assert.equal(u.srcPort, 53);
  assert.equal(u.dstPort, 40000);
  assert.equal(u.length, 12);
  assert.equal(u.checksum, 0);
  assert.deepEqual(Array.from(u.payload), [1, 2, 3, 4]);
});

Deno.test("UDP checksum over the IPv4 pseudo-header: hand-computed value and verification", () => {
  const d = datagram([0x61, 0x62]); // "ab"
  const ps = pseudoHeaderSumV4(0xc6120001, 0xc6120002, 17, d.length);
  writeTransportChecksum(d, 6, ps);
  // By hand: c612+0001+c612+0002+0011+000a (pseudo) + 0035+9c40+000a (header) + 6162 = 0x2_8a23
  // -> fold 0x8a25 -> checksum ~0x8a25 = 0x75da.
  assert.equal(new UdpView().wrap(d).checksum, 0x75da);
  assert.ok(transportChecksumOk(d, ps));
  d[9]! ^= 0x01;
  assert.equal(transportChecksumOk(d, ps), false);
});

Deno.test("UDP checksum over the IPv6 pseudo-header verifies after writeTransportChecksum", () => {
  const src = new Uint8Array(16), dst = new Uint8Array(16);
  src[0] = dst[0] = 0xfd;
  src[15] = 1;
  dst[15] = 2;
  const d = datagram([9, 9, 9]);
  const ps = pseudoHeaderSumV6(src, dst, 17, d.length);
  writeTransportChecksum(d, 6, ps);
  assert.notEqual(new UdpView().wrap(d).checksum, 0);
  assert.ok(transportChecksumOk(d, ps));
});

Deno.test("UdpRepr.parse() rejects length < 8 with reason 'bad-length'", () => {
  const d = datagram([1]);
  d[5] = 7;
  assert.equal(new UdpRepr().parse(d), "bad-length");
});

Deno.test("UdpRepr.parse() rejects a length beyond the buffer with reason 'bad-length'", () => {
  const d = datagram([1, 2]);
  assert.equal(new UdpRepr().parse(d.subarray(0, 9)), "bad-length");
});

Deno.test("UdpRepr.parse() rejects fewer than 8 bytes with reason 'truncated'", () => {
  assert.equal(new UdpRepr().parse(new Uint8Array(7)), "truncated");
});
