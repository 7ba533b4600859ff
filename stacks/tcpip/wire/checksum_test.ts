import assert from "node:assert/strict";
import {
  checksumRangeOk,
  foldChecksum,
  internetChecksum,
  onesComplementSum,
  onesComplementSumRange,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  transportChecksumOk,
  updateChecksum16,
  writeTransportChecksum,
} from "./checksum.ts";

/** Straightforward RFC 1071 reference: big-endian words, end-around carry on every add. */
function referenceSum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) | (i + 1 < data.length ? data[i + 1]! : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

Deno.test("onesComplementSum() matches the RFC 1071 section 3 example (sum 0xddf2)", () => {
  const data = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(onesComplementSum(data), 0xddf2);
  assert.equal(internetChecksum(data), 0x220d);
});

Deno.test("onesComplementSum() word path equals the reference for every alignment and length", () => {
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const big = new Uint8Array(4200);
  for (let i = 0; i < big.length; i++) big[i] = rnd();
  for (let off = 0; off < 8; off++) {
    for (const len of [0, 1, 2, 3, 31, 32, 33, 34, 35, 63, 64, 65, 100, 1499, 1500, 4000, 4191]) {
      const view = big.subarray(off, off + len);
      assert.equal(
        foldChecksum(onesComplementSum(view)),
        foldChecksum(referenceSum(view)),
        `off ${off} len ${len}`,
      );
    }
  }
});

Deno.test("onesComplementSum() of all-0xff words keeps end-around carries (never folds to 0)", () => {
  const data = new Uint8Array(65536).fill(0xff);
  assert.equal(onesComplementSum(data), 0xffff);
  assert.equal(internetChecksum(data), 0);
});

Deno.test("onesComplementSum() chains: sum(a ++ b) == sum(b, sum(a)) for even-length a", () => {
  const a = new Uint8Array(100).map((_, i) => i * 7);
  const b = new Uint8Array(61).map((_, i) => i * 13);
  const ab = new Uint8Array(161);
  ab.set(a);
  ab.set(b, 100);
  assert.equal(foldChecksum(onesComplementSum(b, onesComplementSum(a))), internetChecksum(ab));
});

Deno.test("onesComplementSum() never reads past the view (garbage around it changes nothing)", () => {
  const payload = new Uint8Array(77).map((_, i) => (i * 31) & 0xff);
  const want = onesComplementSum(payload);
  for (let off = 1; off < 6; off++) {
    const big = new Uint8Array(200).fill(0xa5);
    big.set(payload, off);
    assert.equal(onesComplementSum(big.subarray(off, off + 77)), want);
  }
});

Deno.test("updateChecksum16() reproduces the RFC 1624 section 4 example (eqn. 3 gives 0x0000)", () => {
  assert.equal(updateChecksum16(0xdd2f, 0x5555, 0x3285), 0x0000);
});

Deno.test("updateChecksum16() equals a full recomputation after a word changes", () => {
  const data = new Uint8Array([0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01]);
  const before = internetChecksum(data);
  data[8] = 0x3f; // TTL decrement: word 0x4001 -> 0x3f01
  assert.equal(updateChecksum16(before, 0x4001, 0x3f01), internetChecksum(data));
});

Deno.test("pseudoHeaderSumV4() sums addresses, protocol and length", () => {
  // 198.18.0.1 -> 198.18.0.2, TCP, 20 bytes: c612+0001+c612+0002+0006+0014
  const want = 0xc612 + 0x0001 + 0xc612 + 0x0002 + 6 + 20;
  assert.equal(pseudoHeaderSumV4(0xc6120001, 0xc6120002, 6, 20), (want & 0xffff) + (want >>> 16));
});

Deno.test("pseudoHeaderSumV6() sums both addresses, 32-bit length and next header", () => {
  const src = new Uint8Array(16);
  const dst = new Uint8Array(16);
  src[0] = 0xfd;
  src[15] = 1;
  dst[0] = 0xfd;
  dst[15] = 2;
  const want = 0xfd00 + 1 + 0xfd00 + 2 + 58 + 8;
  assert.equal(pseudoHeaderSumV6(src, dst, 58, 8), (want & 0xffff) + (want >>> 16));
});

Deno.test("writeTransportChecksum() writes a checksum that transportChecksumOk() accepts", () => {
  const seg = new Uint8Array(28).map((_, i) => i + 1);
  const ps = pseudoHeaderSumV4(0xc6120001, 0xc6120002, 17, seg.length);
  writeTransportChecksum(seg, 6, ps);
  assert.ok(transportChecksumOk(seg, ps));
  seg[10]! ^= 1;
  assert.equal(transportChecksumOk(seg, ps), false);
});

Deno.test("writeTransportChecksum() writes 0xffff for a UDP checksum that computes to zero", () => {
  // Header of zeros + a word chosen so that the sum is 0xffff -> checksum 0.
  const seg = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
  writeTransportChecksum(seg, 6, 0);
  assert.deepEqual([seg[6], seg[7]], [0xff, 0xff]);
  const tcpLike = new Uint8Array([0, 0, 0, 0, 0xff, 0xff]);
  writeTransportChecksum(tcpLike, 2, 0);
  assert.deepEqual([tcpLike[2], tcpLike[3]], [0, 0]);
});

Deno.test("onesComplementSumRange() equals onesComplementSum() of the subarray", () => {
  const big = new Uint8Array(3000).map((_, i) => (i * 151 + 7) & 0xff);
  for (const [s, e] of [[0, 0], [1, 2], [3, 40], [5, 1505], [14, 34], [17, 2999], [0, 3000]]) {
    assert.equal(onesComplementSumRange(big, s!, e!, 9), onesComplementSum(big.subarray(s, e), 9));
    const sub = big.subarray(3);
    assert.equal(
      onesComplementSumRange(sub, s!, Math.min(e!, sub.length)),
      onesComplementSum(sub.subarray(s, e)),
    );
  }
  assert.ok(checksumRangeOk(new Uint8Array([9, 0xff, 0xff, 9]), 1, 3, 0));
});
