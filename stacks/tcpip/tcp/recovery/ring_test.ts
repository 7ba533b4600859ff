import assert from "node:assert/strict";
import { F_LOST, F_SACKED, SegmentRing } from "./ring.ts";

function starts(r: SegmentRing): number[] {
  const out: number[] = [];
  for (let i = 0; i < r.count; i++) out.push(r.start(r.slot(i)));
  return out;
}

Deno.test("SegmentRing.find() locates the record containing a sequence number across the wrap", () => {
  const r = new SegmentRing(8);
  const una = 0xffff_fc00;
  for (let i = 0; i < 4; i++) r.push((una + i * 500) >>> 0, 500, 0);
  assert.equal(r.find(una, una), 0);
  assert.equal(r.find(una, (una + 999) >>> 0), 1);
  assert.equal(r.find(una, (una + 1024) >>> 0), 2); // past the wrap: sequence 0
  assert.equal(r.find(una, (una + 1999) >>> 0), 3);
  assert.equal(r.find(una, (una + 2000) >>> 0), -1);
  assert.equal(r.find(una, (una - 1) >>> 0), -1);
});

Deno.test("SegmentRing.split() keeps order and flags, and grows when full", () => {
  const r = new SegmentRing(8);
  for (let i = 0; i < 8; i++) r.push(i * 1000, 1000, i);
  r.popFront();
  r.popFront();
  r.push(8000, 1000, 8);
  r.push(9000, 1000, 9); // the ring has wrapped physically
  r.a[r.oFlags + r.slot(2)] = F_LOST | F_SACKED;
  r.split(2, 300); // record [4000,5000) -> [4000,4300) [4300,5000)
  assert.equal(r.capacity, 16);
  assert.deepEqual(starts(r), [2000, 3000, 4000, 4300, 5000, 6000, 7000, 8000, 9000]);
  assert.equal(r.len(r.slot(2)), 300);
  assert.equal(r.len(r.slot(3)), 700);
  assert.equal(r.flags(r.slot(3)), F_LOST | F_SACKED);
  assert.equal(r.a[r.oLast + r.slot(3)], 4);
  assert.equal(r.find(2000, 4299), 2);
  assert.equal(r.find(2000, 4300), 3);
});

Deno.test("SegmentRing.shrink() releases a grown array only when empty", () => {
  const r = new SegmentRing(8);
  for (let i = 0; i < 40; i++) r.push(i * 10, 10, 0);
  assert.equal(r.capacity, 64);
  r.shrink(8);
  assert.equal(r.capacity, 64); // still holds records
  while (r.count > 0) r.popFront();
  r.shrink(8);
  assert.equal(r.capacity, 8);
  r.push(5, 10, 0);
  assert.equal(r.find(5, 9), 0);
});
