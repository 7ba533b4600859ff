import assert from "node:assert/strict";
import {
  seqAdd,
  seqAdd32,
  seqDiff,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLt,
  seqMax,
  seqMin,
} from "./seq.ts";

Deno.test("seq compare treats 0 as after 0xffffffff across the wrap", () => {
  assert.equal(seqLt(0xffff_ffff, 0), true);
  assert.equal(seqGt(0, 0xffff_ffff), true);
  assert.equal(seqDiff(5, 0xffff_fffb), 10);
  assert.equal(seqAdd(0xffff_fff0, 0x20), 0x10);
  assert.equal(seqMax(0xffff_fff0, 3), 3);
  assert.equal(seqMin(0xffff_fff0, 3), 0xffff_fff0);
});

Deno.test("seq compare is reflexive where it should be and strict where it should be", () => {
  assert.equal(seqLe(7, 7), true);
  assert.equal(seqGe(7, 7), true);
  assert.equal(seqLt(7, 7), false);
  assert.equal(seqGt(7, 7), false);
});

Deno.test("seqInRange() is half-open and wrap-safe", () => {
  assert.equal(seqInRange(0xffff_ffff, 0xffff_fff0, 0x10), true);
  assert.equal(seqInRange(0x10, 0xffff_fff0, 0x10), false);
  assert.equal(seqInRange(0xffff_fff0, 0xffff_fff0, 0x10), true);
  assert.equal(seqInRange(5, 5, 5), false);
});

Deno.test("seqAdd32 gives the signed 32-bit form of seqAdd, and the comparisons take either form", () => {
  assert.equal(seqAdd32(0x7fff_fff0, 0x20), 0x8000_0010 | 0);
  assert.equal(seqAdd32(0x7fff_fff0, 0x20) >>> 0, seqAdd(0x7fff_fff0, 0x20));
  assert.equal(seqAdd32(0xffff_fff0, 0x20), 0x10);
  const hi = 0x9000_0000; // unsigned, above 2^31
  const hi32 = hi | 0; // the same sequence number, signed
  assert.ok(hi32 < 0);
  assert.equal(seqDiff(hi32, hi), 0);
  assert.equal(seqDiff(seqAdd32(hi32, 100), hi), 100);
  assert.ok(seqLt(hi32, seqAdd(hi, 1)) && seqGt(seqAdd32(hi, 1), hi) && seqLe(hi, hi32));
  assert.ok(seqInRange(hi32, hi, seqAdd(hi, 1)) && seqGe(hi32, hi));
});
