import assert from "node:assert/strict";
import { internetChecksum } from "./checksum.ts";
import { Ipv4Repr, Ipv4View } from "./ipv4.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

// The classic worked example: 192.168.0.1 -> 192.168.0.199, UDP, total length 115, DF, TTL 64;
// the header checksum by hand is 0xb861.
const HEADER = hex("45000073000040004011b861c0a80001c0a800c7");

function packet(header: Uint8Array, payload: number, padding = 0): Uint8Array {
  const p = new Uint8Array(header.length + payload + padding);
  p.set(header);
  return p;
}

function withChecksum(h: Uint8Array): Uint8Array {
  h[10] = h[11] = 0;
  const c = internetChecksum(h);
  h[10] = c >>> 8;
  h[11] = c & 0xff;
  return h;
}

Deno.test("Ipv4Repr.parse() reads the worked-example header (checksum 0xb861 verifies)", () => {
  assert.equal(internetChecksum(HEADER), 0);
  const ip = new Ipv4Repr();
  assert.equal(ip.parse(packet(HEADER, 95)), undefined);
  assert.equal(ip.totalLength, 115);
  assert.equal(ip.dontFragment, true);
  assert.equal(ip.moreFragments, false);
  assert.equal(ip.fragmentOffset, 0);
  assert.equal(ip.ttl, 64);
  assert.equal(ip.protocol, 17);
  assert.equal(ip.checksum, 0xb861);
  assert.equal(ip.src, 0xc0a80001);
  assert.equal(ip.dst, 0xc0a800c7);
  assert.equal(ip.payload.length, 95);
  assert.equal(ip.options.length, 0);
});

Deno.test("Ipv4Repr.emit() reproduces the worked-example header, checksum included", () => {
  const ip = new Ipv4Repr();
  ip.parse(packet(HEADER, 95));
  const out = new Uint8Array(20);
  assert.equal(ip.emit(out, 95), 20);
  assert.deepEqual(out, HEADER);
});

Deno.test("Ipv4Repr.parse() bounds the payload by total length, ignoring Ethernet padding", () => {
  const h = withChecksum(hex("4500001c000000004001000001020304050607 08".replace(/ /g, "")));
  const ip = new Ipv4Repr();
  assert.equal(ip.parse(packet(h, 8, 18)), undefined);
  assert.equal(ip.payload.length, 8);
});

Deno.test("Ipv4Repr keeps options as a view and re-emits them (IHL 6, router alert)", () => {
  // IGMP-like: DSCP 48 (CS6), total 32, DF, TTL 1, protocol 2, router alert option 94 04 00 00.
  const p = new Uint8Array(32);
  p.set(hex("46c00020000040000102000 0c6120001e0000016940400 00".replace(/ /g, "")));
  withChecksum(p.subarray(0, 24));
  const ip = new Ipv4Repr();
  assert.equal(ip.parse(p), undefined);
  assert.equal(ip.headerLength, 24);
  assert.deepEqual(Array.from(ip.options), [0x94, 0x04, 0, 0]);
  assert.equal(ip.dscp, 48);
  assert.equal(ip.protocol, 2);
  assert.equal(ip.payload.length, 8);
  const out = new Uint8Array(24);
  ip.emit(out, 8);
  assert.deepEqual(out, p.subarray(0, 24));
});

Deno.test("Ipv4Repr reads fragment fields (MF, offset in bytes) and round-trips them", () => {
  const ip = new Ipv4Repr();
  ip.identification = 0x1234;
  ip.moreFragments = true;
  ip.fragmentOffset = 1480;
  ip.protocol = 1;
  ip.src = 1;
  ip.dst = 2;
  const buf = new Uint8Array(28);
  ip.emit(buf, 8);
  const back = new Ipv4Repr();
  assert.equal(back.parse(buf), undefined);
  assert.equal(back.isFragment, true);
  assert.equal(back.moreFragments, true);
  assert.equal(back.fragmentOffset, 1480);
  assert.equal(back.identification, 0x1234);
});

Deno.test("Ipv4Repr.parse() rejects IHL < 5 with reason 'bad-header-length'", () => {
  const p = packet(HEADER, 95);
  p[0] = 0x44;
  assert.equal(new Ipv4Repr().parse(p), "bad-header-length");
});

Deno.test("Ipv4Repr.parse() rejects a version other than 4 with reason 'bad-version'", () => {
  const p = packet(HEADER, 95);
  p[0] = 0x65;
  assert.equal(new Ipv4Repr().parse(p), "bad-version");
});

Deno.test("Ipv4Repr.parse() rejects a total length beyond the buffer with reason 'bad-length'", () => {
  assert.equal(new Ipv4Repr().parse(packet(HEADER, 94)), "bad-length");
});

Deno.test("Ipv4Repr.parse() rejects a total length below the header length with reason 'bad-length'", () => {
  const h = HEADER.slice();
  h[2] = 0;
  h[3] = 19;
  assert.equal(new Ipv4Repr().parse(packet(withChecksum(h), 95)), "bad-length");
});

Deno.test("Ipv4Repr.parse() rejects options beyond the buffer with reason 'truncated'", () => {
  const h = HEADER.slice();
  h[0] = 0x4f;
  assert.equal(new Ipv4Repr().parse(h), "truncated");
  assert.equal(new Ipv4Repr().parse(HEADER.subarray(0, 19)), "truncated");
});

Deno.test("Ipv4Repr.parse() rejects a wrong header checksum with reason 'bad-checksum'", () => {
  const p = packet(HEADER, 95);
  p[8] = 63;
  assert.equal(new Ipv4Repr().parse(p), "bad-checksum");
});

Deno.test("Ipv4View reads the header at the view's byteOffset", () => {
  const big = new Uint8Array(30);
  big.set(HEADER, 7);
  const v = new Ipv4View().wrap(big.subarray(7));
  assert.equal(v.version, 4);
  assert.equal(v.headerLength, 20);
  assert.equal(v.totalLength, 115);
  assert.equal(v.src, 0xc0a80001);
  assert.equal(v.flagsFragment, 0x4000);
});
