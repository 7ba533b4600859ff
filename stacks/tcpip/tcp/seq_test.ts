import assert from "node:assert/strict";
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqMax, seqMin } from "./seq.ts";

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
