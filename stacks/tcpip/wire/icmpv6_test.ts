import assert from "node:assert/strict";
import { pseudoHeaderSumV6, transportChecksumOk, writeTransportChecksum } from "./checksum.ts";
import {
  ICMPV6_ECHO_REQUEST,
  ICMPV6_NEIGHBOR_ADVERT,
  ICMPV6_NEIGHBOR_SOLICIT,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_ROUTER_ADVERT,
  ICMPV6_ROUTER_SOLICIT,
  ICMPV6_TIME_EXCEEDED,
  Icmpv6Repr,
  Icmpv6View,
} from "./icmpv6.ts";

const SRC = new Uint8Array([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const DST = new Uint8Array([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const MAC = new Uint8Array([2, 0, 0, 0, 2, 1]);
const TARGET = new Uint8Array([0xfd, 0, 0, 0x18, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

function emitted(m: Icmpv6Repr): Uint8Array {
  const buf = new Uint8Array(m.length);
  const n = m.emit(buf);
  assert.equal(n, buf.length);
  writeTransportChecksum(buf, 2, pseudoHeaderSumV6(SRC, DST, 58, n));
  return buf;
}

function reparsed(buf: Uint8Array): Icmpv6Repr {
  assert.ok(transportChecksumOk(buf, pseudoHeaderSumV6(SRC, DST, 58, buf.length)));
  const m = new Icmpv6Repr();
  assert.equal(m.parse(buf), undefined);
  return m;
}

Deno.test("Icmpv6Repr round-trips an echo request with data; the checksum covers the pseudo-header", () => {
  const m = new Icmpv6Repr();
  m.type = ICMPV6_ECHO_REQUEST;
  m.identifier = 0x2218;
  m.sequence = 2;
  m.data = new Uint8Array([0xaa, 0xbb]);
  const buf = emitted(m);
  const back = reparsed(buf);
  assert.equal(back.identifier, 0x2218);
  assert.equal(back.sequence, 2);
  assert.deepEqual(Array.from(back.data), [0xaa, 0xbb]);
  assert.equal(transportChecksumOk(buf, pseudoHeaderSumV6(DST, DST, 58, buf.length)), false);
});

Deno.test("Icmpv6Repr reads packet-too-big MTU and time-exceeded quotes", () => {
  const m = new Icmpv6Repr();
  m.type = ICMPV6_PACKET_TOO_BIG;
  m.mtu = 1280;
  m.data = new Uint8Array(48).fill(0x60, 0, 1);
  const back = reparsed(emitted(m));
  assert.equal(back.mtu, 1280);
  assert.equal(back.quoted.length, 48);
  m.type = ICMPV6_TIME_EXCEEDED;
  m.restOfHeader = 0;
  const te = reparsed(emitted(m));
  assert.equal(te.quoted[0], 0x60);
});

Deno.test("Icmpv6Repr round-trips a Router Advertisement with SLLA, MTU and prefix options", () => {
  const m = new Icmpv6Repr();
  m.type = ICMPV6_ROUTER_ADVERT;
  m.curHopLimit = 64;
  m.managedFlag = true;
  m.otherFlag = false;
  m.routerLifetime = 1800;
  m.reachableTime = 30000;
  m.retransTimer = 1000;
  m.sourceLlaPresent = true;
  m.sourceLla.set(MAC);
  m.mtuOptionPresent = true;
  m.mtuOption = 1500;
  m.prefixPresent = true;
  m.prefixLength = 64;
  m.prefixOnLink = true;
  m.prefixAutonomous = true;
  m.prefixValidLifetime = 86400;
  m.prefixPreferredLifetime = 14400;
  m.prefix.set(TARGET.subarray(0, 8));
  const buf = emitted(m);
  assert.equal(buf.length, 16 + 8 + 8 + 32);
  const r = reparsed(buf);
  assert.equal(r.curHopLimit, 64);
  assert.equal(r.managedFlag, true);
  assert.equal(r.otherFlag, false);
  assert.equal(r.routerLifetime, 1800);
  assert.equal(r.reachableTime, 30000);
  assert.equal(r.retransTimer, 1000);
  assert.deepEqual(r.sourceLla, MAC);
  assert.equal(r.mtuOption, 1500);
  assert.equal(r.prefixLength, 64);
  assert.equal(r.prefixOnLink && r.prefixAutonomous, true);
  assert.equal(r.prefixValidLifetime, 86400);
  assert.equal(r.prefixPreferredLifetime, 14400);
  assert.deepEqual(r.prefix.subarray(0, 8), TARGET.subarray(0, 8));
  // Re-emitting the parsed repr copies its raw options: identical bytes.
  assert.deepEqual(emitted(r), buf);
});

Deno.test("Icmpv6Repr round-trips RS, NS (source LLA) and NA (R/S/O flags, target LLA)", () => {
  const rs = new Icmpv6Repr();
  rs.type = ICMPV6_ROUTER_SOLICIT;
  rs.sourceLlaPresent = true;
  rs.sourceLla.set(MAC);
  assert.deepEqual(reparsed(emitted(rs)).sourceLla, MAC);

  const ns = new Icmpv6Repr();
  ns.type = ICMPV6_NEIGHBOR_SOLICIT;
  ns.target.set(TARGET);
  ns.sourceLlaPresent = true;
  ns.sourceLla.set(MAC);
  const nsBack = reparsed(emitted(ns));
  assert.ok(nsBack.targetEquals(TARGET));
  assert.equal(nsBack.sourceLlaPresent, true);
  assert.equal(nsBack.targetLlaPresent, false);

  const na = new Icmpv6Repr();
  na.type = ICMPV6_NEIGHBOR_ADVERT;
  na.routerFlag = false;
  na.solicitedFlag = true;
  na.overrideFlag = true;
  na.target.set(TARGET);
  na.targetLlaPresent = true;
  na.targetLla.set(MAC);
  const naBuf = emitted(na);
  assert.equal(naBuf[4], 0x60);
  const naBack = reparsed(naBuf);
  assert.equal(naBack.routerFlag, false);
  assert.equal(naBack.solicitedFlag, true);
  assert.equal(naBack.overrideFlag, true);
  assert.deepEqual(naBack.targetLla, MAC);
});

Deno.test("Icmpv6Repr skips unknown NDP options (e.g. the DAD nonce) by their length", () => {
  const ns = new Icmpv6Repr();
  ns.type = ICMPV6_NEIGHBOR_SOLICIT;
  ns.options = new Uint8Array([14, 1, 1, 2, 3, 4, 5, 6]);
  const back = reparsed(emitted(ns));
  assert.equal(back.sourceLlaPresent, false);
  assert.deepEqual(Array.from(back.options), [14, 1, 1, 2, 3, 4, 5, 6]);
});

function nsWithOptions(options: number[]): Uint8Array {
  const m = new Uint8Array(24 + options.length);
  m[0] = ICMPV6_NEIGHBOR_SOLICIT;
  m.set(options, 24);
  return m;
}

Deno.test("Icmpv6Repr.parse() rejects an NDP option of length 0 with reason 'bad-option'", () => {
  assert.equal(new Icmpv6Repr().parse(nsWithOptions([1, 0, 0, 0, 0, 0, 0, 0])), "bad-option");
});

Deno.test("Icmpv6Repr.parse() rejects an NDP option overrunning the message with 'bad-option'", () => {
  assert.equal(new Icmpv6Repr().parse(nsWithOptions([1, 2, 0, 0, 0, 0, 0, 0])), "bad-option");
  assert.equal(new Icmpv6Repr().parse(nsWithOptions([1])), "bad-option");
});

Deno.test("Icmpv6Repr.parse() rejects a wrong length for a known NDP option with 'bad-option'", () => {
  assert.equal(
    new Icmpv6Repr().parse(
      nsWithOptions(new Array(16).fill(0).map((_, i) => (i === 0 ? 1 : i === 1 ? 2 : 0))),
    ),
    "bad-option",
  );
});

Deno.test("Icmpv6Repr.parse() rejects messages shorter than their fixed part with 'truncated'", () => {
  assert.equal(new Icmpv6Repr().parse(new Uint8Array(7)), "truncated");
  assert.equal(new Icmpv6Repr().parse(nsWithOptions([]).subarray(0, 23)), "truncated");
  const ra = new Uint8Array(15);
  ra[0] = ICMPV6_ROUTER_ADVERT;
  assert.equal(new Icmpv6Repr().parse(ra), "truncated");
});

Deno.test("Icmpv6View reads fields at the view's byteOffset", () => {
  const big = new Uint8Array(20);
  big.set([128, 0, 0x12, 0x34, 0, 7, 0, 9], 3);
  const v = new Icmpv6View().wrap(big.subarray(3));
  assert.equal(v.type, 128);
  assert.equal(v.checksum, 0x1234);
  assert.equal(v.rest, 0x00070009);
});
