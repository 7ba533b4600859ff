import assert from "node:assert/strict";
import {
  foldChecksum,
  onesComplementSumRangeScalar as onesComplementSumRange,
  pseudoHeaderSumV4,
  pseudoHeaderSumV4Bytes,
} from "./checksum.ts";
import {
  SIMD_CHECKSUM_AVAILABLE,
  SIMD_CHECKSUM_MODULE,
  simdArena,
  simdSumRange,
} from "./checksum_simd.ts";

/** Deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0) / 4294967296;
  };
}

Deno.test("the hand-assembled SIMD checksum module validates and instantiates here", () => {
  assert.equal(WebAssembly.validate(SIMD_CHECKSUM_MODULE as Uint8Array<ArrayBuffer>), true);
  assert.equal(SIMD_CHECKSUM_AVAILABLE, true);
});

Deno.test("simdSumRange() equals onesComplementSumRange() over 3000 random buffers, offsets and lengths (copied in)", () => {
  const r = rng(12345);
  const buf = new Uint8Array(20000);
  for (let t = 0; t < 3000; t++) {
    // Mix random bytes with runs of 0xff and 0x00 (carry-heavy and carry-free sums).
    const mode = t % 3;
    for (let i = 0; i < buf.length; i++) {
      buf[i] = mode === 0 ? (r() * 256) | 0 : mode === 1 ? (r() < 0.9 ? 0xff : 0) : 0;
    }
    const start = (r() * 200) | 0;
    const len = t < 200 ? t : (r() * (buf.length - start)) | 0;
    // Also through a view with its own byteOffset (honoured like the word path's alignment).
    const viewOff = (r() * 7) | 0;
    const view = buf.subarray(viewOff);
    const s = Math.min(start, view.length), e = Math.min(s + len, view.length);
    assert.equal(simdSumRange(view, s, e), onesComplementSumRange(view, s, e), `case ${t}`);
  }
});

Deno.test("simdSumRange() sums buffers inside its memory in place and matches the TypeScript sum", () => {
  const arena = simdArena(300_000);
  const r = rng(777);
  for (let i = 0; i < arena.length; i++) arena[i] = (r() * 256) | 0;
  for (let t = 0; t < 500; t++) {
    const s = (r() * 1000) | 0;
    const e = s + ((r() * 4000) | 0);
    assert.equal(simdSumRange(arena, s, e), onesComplementSumRange(arena, s, e), `case ${t}`);
  }
});

Deno.test("simdSumRange() does not overflow on 300 KB of 0xff (several 64 KiB calls, maximal lanes)", () => {
  const big = new Uint8Array(300_001).fill(0xff);
  assert.equal(simdSumRange(big, 0, big.length), onesComplementSumRange(big, 0, big.length));
  assert.equal(simdSumRange(big, 1, 262_145), onesComplementSumRange(big, 1, 262_145));
  const arena = simdArena(300_001).fill(0xff);
  assert.equal(simdSumRange(arena, 0, arena.length), onesComplementSumRange(big, 0, big.length));
});

Deno.test("foldChecksum() equals a reference end-around-carry fold at the 16/32-bit edges and for random sums up to 2^53", () => {
  const reference = (x: number): number => {
    while (x > 0xffff) x = (x % 65536) + Math.floor(x / 65536);
    return ~x & 0xffff;
  };
  const edges = [0, 1, 0xfffe, 0xffff, 0x10000, 0x1fffe, 0x1ffff, 0x7fffffff, 0x80000000];
  edges.push(0xfffffffe, 0xffffffff, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1);
  for (const x of edges) assert.equal(foldChecksum(x), reference(x), `sum ${x}`);
  const r = rng(99);
  for (let i = 0; i < 20000; i++) {
    const x = Math.floor(r() * 2 ** (1 + ((i % 53) | 0)));
    assert.equal(foldChecksum(x), reference(x), `sum ${x}`);
  }
});

Deno.test("pseudoHeaderSumV4Bytes() equals pseudoHeaderSumV4() of the same addresses as u32", () => {
  const r = rng(5);
  for (let i = 0; i < 2000; i++) {
    const a = new Uint8Array(4).map(() => (r() * 256) | 0);
    const b = new Uint8Array(4).map(() => (r() * 256) | 0);
    const len = (r() * 65536) | 0;
    const u32 = (x: Uint8Array): number =>
      ((x[0]! << 24) | (x[1]! << 16) | (x[2]! << 8) | x[3]!) >>> 0;
    assert.equal(pseudoHeaderSumV4Bytes(a, b, 6, len), pseudoHeaderSumV4(u32(a), u32(b), 6, len));
  }
});
