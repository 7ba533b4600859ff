import assert from "node:assert/strict";
import { internetChecksum } from "./checksum.ts";
import { emitIpv4Header, IPV4_FLAG_DF, IPV4_FLAG_MF, Ipv4Repr, Ipv4View } from "./ipv4.ts";

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

Deno.test("emitIpv4Header() writes the worked-example header with checksum 0xb861", () => {
  const buf = new Uint8Array(24).fill(0xee);
  const ck = emitIpv4Header(buf, 2, 0, 115, 0, IPV4_FLAG_DF, 64, 17, 0xc0a80001, 0xc0a800c7);
  assert.equal(ck, 0xb861);
  assert.deepEqual(buf.subarray(2, 22), HEADER);
  assert.equal(buf[1], 0xee, "nothing written before the offset");
  assert.equal(buf[22], 0xee, "nothing written after the header");
});

Deno.test("emitIpv4Header() checksums verify over random fields (int32 or u32 addresses)", () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    // xorshift32: the low bits of a power-of-two LCG would repeat with a short period.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const buf = new Uint8Array(20);
  const ip = new Ipv4Repr();
  for (let i = 0; i < 2000; i++) {
    const src = rnd(0x100000000), dst = rnd(0x100000000);
    const tos = rnd(256), total = 20 + rnd(65516), id = rnd(65536), ttl = rnd(256);
    const ff = [0, IPV4_FLAG_DF, IPV4_FLAG_MF | rnd(0x2000)][rnd(3)]!;
    const ck = emitIpv4Header(buf, 0, tos, total, id, ff, ttl, rnd(256), src | 0, dst);
    assert.equal(internetChecksum(buf), 0, `case ${i}`);
    assert.equal(ck, (buf[10]! << 8) | buf[11]!);
    const p = new Uint8Array(total);
    p.set(buf);
    assert.equal(ip.parse(p), undefined);
    assert.equal(ip.src, src);
    assert.equal(ip.dst, dst);
    assert.equal(ip.identification, id);
    assert.equal(ip.ttl, ttl);
    assert.equal(ip.totalLength, total);
  }
});

Deno.test("Ipv4Repr.emit() computes the checksum from the fields, options included", () => {
  let seed = 99;
  const rnd = (n: number): number => {
    // xorshift32: the low bits of a power-of-two LCG would repeat with a short period.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const ip = new Ipv4Repr();
  for (let i = 0; i < 1000; i++) {
    ip.reset();
    ip.dscp = rnd(64);
    ip.ecn = rnd(4);
    ip.identification = rnd(65536);
    ip.dontFragment = rnd(2) === 1;
    ip.moreFragments = rnd(2) === 1;
    ip.reservedFlag = rnd(4) === 0;
    ip.fragmentOffset = rnd(0x2000) * 8;
    ip.ttl = rnd(256);
    ip.protocol = rnd(256);
    ip.src = rnd(0x100000000);
    ip.dst = rnd(0x100000000);
    const opts = new Uint8Array(rnd(41)).map(() => rnd(256));
    ip.options = opts;
    const buf = new Uint8Array(80).fill(0xaa);
    const hl = ip.emit(buf, 0);
    assert.equal(hl, 20 + ((opts.length + 3) & ~3));
    assert.equal(internetChecksum(buf.subarray(0, hl)), 0, `case ${i}`);
    assert.equal(ip.checksum, (buf[10]! << 8) | buf[11]!);
    for (let k = 20 + opts.length; k < hl; k++) assert.equal(buf[k], 0, "option padding zeroed");
  }
});

Deno.test("Ipv4Repr.parse() accepts exactly the headers whose bytes checksum to zero (options too)", () => {
  let seed = 7;
  const rnd = (n: number): number => {
    // xorshift32: the low bits of a power-of-two LCG would repeat with a short period.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const ip = new Ipv4Repr();
  let accepted = 0, rejected = 0;
  for (let i = 0; i < 4000; i++) {
    const hl = 20 + 4 * rnd(11);
    const p = new Uint8Array(hl + 8).map(() => rnd(256));
    p[0] = 0x40 | (hl >>> 2);
    p[2] = 0;
    p[3] = hl + rnd(9);
    // Half the cases get a correct checksum, then maybe one flipped bit anywhere in the header.
    if (rnd(2) === 0) withChecksum(p.subarray(0, hl));
    if (rnd(2) === 0) {
      const bit = rnd(hl * 8);
      if (bit >= 32) p[bit >>> 3] = p[bit >>> 3]! ^ (1 << (bit & 7)); // not version/IHL/length
    }
    const ok = internetChecksum(p.subarray(0, hl)) === 0;
    assert.equal(ip.parse(p), ok ? undefined : "bad-checksum", `case ${i}`);
    if (ok) {
      accepted++;
      assert.equal(ip.checksum, (p[10]! << 8) | p[11]!);
      assert.equal(ip.src, ((p[12]! << 24) | (p[13]! << 16) | (p[14]! << 8) | p[15]!) >>> 0);
      assert.equal(ip.options.length, hl - 20);
    } else rejected++;
  }
  assert.ok(accepted > 1000 && rejected > 1000, `${accepted} accepted, ${rejected} rejected`);
});
