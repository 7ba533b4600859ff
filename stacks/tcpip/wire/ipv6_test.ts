import assert from "node:assert/strict";
import { emitIpv6Header, Ipv6Repr, Ipv6View } from "./ipv6.ts";

function fixed(nextHeader: number, payloadLength: number, extra = 0): Uint8Array {
  const p = new Uint8Array(40 + payloadLength + extra);
  p[0] = 0x6b; // version 6, traffic class 0xb8 (DSCP 46 EF, ECN 0)... high nibble
  p[1] = 0x81; // ... low nibble 8; flow label 0x1abcd
  p[2] = 0xab;
  p[3] = 0xcd;
  p[4] = payloadLength >>> 8;
  p[5] = payloadLength & 0xff;
  p[6] = nextHeader;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = 1;
  p[24] = 0xfd;
  p[39] = 2;
  return p;
}

Deno.test("Ipv6Repr.parse() reads the fixed header: traffic class, ECN, flow label, addresses", () => {
  const p = fixed(17, 8);
  const ip = new Ipv6Repr();
  assert.equal(ip.parse(p), undefined);
  assert.equal(ip.trafficClass, 0xb8);
  assert.equal(ip.dscp, 46);
  assert.equal(ip.ecn, 0);
  assert.equal(ip.flowLabel, 0x1abcd);
  assert.equal(ip.payloadLength, 8);
  assert.equal(ip.hopLimit, 64);
  assert.equal(ip.protocol, 17);
  assert.equal(ip.upperOffset, 40);
  assert.equal(ip.src[0], 0xfd);
  assert.equal(ip.dst[15], 2);
  assert.equal(ip.payload.length, 8);
  const out = new Uint8Array(40);
  assert.equal(ip.emit(out, 8), 40);
  assert.deepEqual(out, p.subarray(0, 40));
});

Deno.test("Ipv6Repr walks hop-by-hop, destination options and fragment headers to UDP", () => {
  // HBH (8 bytes, router alert) -> dest opts (16 bytes) -> fragment (8) -> UDP (8)
  const p = fixed(0, 8 + 16 + 8 + 8);
  p.set([60, 0, 5, 2, 0, 0, 1, 0], 40);
  p.set([44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 48);
  p.set([17, 0, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef], 64); // offset 185*8, M=1
  const ip = new Ipv6Repr();
  assert.equal(ip.parse(p), undefined);
  assert.equal(ip.nextHeader, 0);
  assert.equal(ip.protocol, 17);
  assert.equal(ip.upperOffset, 72);
  assert.equal(ip.extHeaders.length, 32);
  assert.equal(ip.fragmentPresent, true);
  assert.equal(ip.fragmentOffset, 1480);
  assert.equal(ip.moreFragments, true);
  assert.equal(ip.fragmentId, 0xdeadbeef);
  assert.equal(ip.payload.length, 8);
  const out = new Uint8Array(72);
  assert.equal(ip.emit(out, 8), 72);
  assert.deepEqual(out, p.subarray(0, 72));
});

Deno.test("Ipv6Repr accepts an AH that is a multiple of 8 bytes and rejects one that is not", () => {
  const ok = fixed(51, 16 + 8);
  ok.set([17, 2], 40); // (2 + 2) * 4 = 16
  const ip = new Ipv6Repr();
  assert.equal(ip.parse(ok), undefined);
  assert.equal(ip.protocol, 17);
  assert.equal(ip.upperOffset, 56);
  const bad = fixed(51, 12 + 8);
  bad.set([17, 1], 40); // 12 bytes
  assert.equal(new Ipv6Repr().parse(bad), "bad-extension-header");
});

Deno.test("Ipv6Repr stops the walk at ESP and at No Next Header", () => {
  const ip = new Ipv6Repr();
  assert.equal(ip.parse(fixed(50, 16)), undefined);
  assert.equal(ip.protocol, 50);
  assert.equal(ip.payload.length, 16);
  const nnh = fixed(60, 8);
  nnh.set([59, 0], 40);
  assert.equal(ip.parse(nnh), undefined);
  assert.equal(ip.protocol, 59);
  assert.equal(ip.payload.length, 0);
});

Deno.test("Ipv6Repr.parse() rejects hop-by-hop after the first header with 'bad-extension-header'", () => {
  const p = fixed(60, 16);
  p.set([0, 0], 40);
  p.set([17, 0], 48);
  assert.equal(new Ipv6Repr().parse(p), "bad-extension-header");
});

Deno.test("Ipv6Repr.parse() rejects an extension header beyond the payload with 'truncated'", () => {
  const p = fixed(60, 8, 16);
  p.set([17, 1], 40); // claims 16 bytes, the payload length has 8
  assert.equal(new Ipv6Repr().parse(p), "truncated");
  assert.equal(new Ipv6Repr().parse(fixed(44, 4)), "truncated");
});

Deno.test("Ipv6Repr.parse() rejects a payload length beyond the buffer with 'bad-length'", () => {
  const p = fixed(17, 8);
  assert.equal(new Ipv6Repr().parse(p.subarray(0, 47)), "bad-length");
});

Deno.test("Ipv6Repr.parse() rejects a short header with 'truncated' and version != 6 with 'bad-version'", () => {
  assert.equal(new Ipv6Repr().parse(new Uint8Array(39)), "truncated");
  const p = fixed(17, 0);
  p[0] = 0x4b;
  assert.equal(new Ipv6Repr().parse(p), "bad-version");
});

Deno.test("Ipv6Repr.parse() ignores bytes after the payload length (Ethernet padding)", () => {
  const ip = new Ipv6Repr();
  assert.equal(ip.parse(fixed(17, 8, 10)), undefined);
  assert.equal(ip.payload.length, 8);
});

Deno.test("Ipv6View reads the header at the view's byteOffset", () => {
  const big = new Uint8Array(60);
  big.set(fixed(58, 0), 3);
  const v = new Ipv6View().wrap(big.subarray(3));
  assert.equal(v.version, 6);
  assert.equal(v.trafficClass, 0xb8);
  assert.equal(v.flowLabel, 0x1abcd);
  assert.equal(v.nextHeader, 58);
  assert.equal(v.src[0], 0xfd);
});

Deno.test("emitIpv6Header() writes the same bytes as Ipv6Repr.emit() at an offset", () => {
  const r = new Ipv6Repr();
  r.trafficClass = 0xb9;
  r.flowLabel = 0x1abcd;
  r.hopLimit = 17;
  r.protocol = 6;
  r.src.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  r.dst.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
  const want = new Uint8Array(40);
  r.emit(want, 1234);
  const buf = new Uint8Array(46).fill(0xee);
  emitIpv6Header(buf, 3, 0xb9, 0x1abcd, 1234, 6, 17, r.src, r.dst);
  assert.deepEqual(buf.subarray(3, 43), want);
  assert.equal(buf[2], 0xee);
  assert.equal(buf[43], 0xee);
});
