import assert from "node:assert/strict";
import { AddResult, MAX_RANGES, Reassembly } from "./reassembly.ts";

function blocks(r: Reassembly, max: number, rcvNxt: number): number[][] {
  const out = new Uint32Array(8);
  const n = r.fillSack(out, max, rcvNxt);
  const res: number[][] = [];
  for (let i = 0; i < n; i++) res.push([out[2 * i]!, out[2 * i + 1]!]);
  return res;
}

Deno.test("Reassembly merges touching ranges and advance() extends RCV.NXT over them", () => {
  const r = new Reassembly();
  assert.equal(r.add(200, 300), AddResult.Stored);
  assert.equal(r.add(400, 500), AddResult.Stored);
  assert.equal(r.add(300, 400), AddResult.Stored);
  assert.equal(r.count, 1);
  assert.equal(r.advance(150), 150, "a gap remains below 200");
  assert.equal(r.advance(200), 500);
  assert.ok(r.empty);
});

Deno.test("Reassembly reports a full duplicate and notes it for D-SACK", () => {
  const r = new Reassembly();
  r.add(100, 200);
  assert.equal(r.add(120, 180), AddResult.Duplicate);
  assert.deepEqual(blocks(r, 4, 50), [[120, 180], [100, 200]]);
  assert.deepEqual(blocks(r, 4, 50), [[100, 200]], "the D-SACK block is reported once");
});

Deno.test("Reassembly SACK blocks are most recent first and limited to max", () => {
  const r = new Reassembly();
  for (let i = 0; i < 5; i++) r.add(1000 + i * 100, 1050 + i * 100);
  assert.deepEqual(blocks(r, 3, 0), [[1400, 1450], [1300, 1350], [1200, 1250]]);
  r.add(1000, 1060); // overlaps [1000, 1050): D-SACK of the overlap, then the grown block
  assert.deepEqual(blocks(r, 2, 0), [[1000, 1050], [1000, 1060]]);
});

Deno.test("Reassembly grows its range table past MAX_RANGES up to maxRanges, then refuses and counts", () => {
  const r = new Reassembly();
  r.maxRanges = 100;
  for (let i = 0; i < 100; i++) assert.equal(r.add(i * 10, i * 10 + 5), AddResult.Stored);
  assert.ok(100 > MAX_RANGES);
  assert.equal(r.count, 100);
  assert.equal(r.add(5000, 5001), AddResult.Full);
  assert.equal(r.refused, 1);
  // Filling every hole merges all 100 ranges into one that advance() consumes.
  for (let i = 0; i < 100; i++) r.add(i * 10 + 5, i * 10 + 10);
  assert.equal(r.advance(0), 1000);
  assert.ok(r.empty);
});

Deno.test("Reassembly works across 2^32", () => {
  const w = new Reassembly();
  w.add(0xffff_fff0, 0x10);
  assert.equal(w.advance(0xffff_ffe0), 0xffff_ffe0);
  assert.equal(w.advance(0xffff_fff0), 0x10);
});
