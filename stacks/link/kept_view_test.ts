import assert from "node:assert/strict";
import { keptView, keptViews } from "./kept_view.ts";

Deno.test("keptView() hands the same view for the same range of the same memory, two ranges per slot, the older dropped for a third", () => {
  const mem = new Uint8Array(4096);
  const cache = keptViews(4);
  const a = keptView(cache, 1, mem, 100, 200);
  assert.deepEqual([a.byteOffset, a.length], [100, 100]);
  assert.equal(keptView(cache, 1, mem, 100, 200), a, "kept");
  const b = keptView(cache, 1, mem, 100, 150);
  assert.notEqual(b, a);
  assert.equal(keptView(cache, 1, mem, 100, 200), a, "both lengths kept in one slot");
  assert.equal(keptView(cache, 1, mem, 100, 150), b);
  keptView(cache, 1, mem, 100, 120); // a third range: the least recent (a) goes
  assert.equal(keptView(cache, 1, mem, 100, 150), b);
  assert.notEqual(keptView(cache, 1, mem, 100, 200), a, "made anew");
  // Same offsets of other memory are not the same range.
  const other = new Uint8Array(4096);
  const c = keptView(cache, 1, other, 100, 150);
  assert.equal(c.buffer, other.buffer);
  // Views over a byteOffset: the range is the source's.
  const sub = mem.subarray(1000);
  const d = keptView(cache, 2, sub, 10, 20);
  assert.deepEqual([d.byteOffset, d.length], [1010, 10]);
});
