import assert from "node:assert/strict";
import { FramePool } from "./frame.ts";

Deno.test("SimFrame.setLength() alternating between two lengths reuses the same two view objects", () => {
  const pool = new FramePool(1518);
  const f = pool.acquire();
  f.setLength(1514);
  const big = f.view;
  f.setLength(66);
  const small = f.view;
  assert.equal(big.length, 1514);
  assert.equal(small.length, 66);
  for (let i = 0; i < 10; i++) {
    f.setLength(1514);
    assert.equal(f.view, big);
    f.setLength(66);
    assert.equal(f.view, small);
  }
  f.setLength(100); // a third length makes a new view and keeps the last one
  assert.equal(f.view.length, 100);
  f.setLength(66);
  assert.equal(f.view, small);
});

Deno.test("FramePool carves frames from shared slabs without overlap, each of the pool's capacity", () => {
  const pool = new FramePool(1518);
  const frames = Array.from({ length: 130 }, () => pool.acquire());
  const buffers = new Set(frames.map((f) => f.buf.buffer));
  assert.ok(buffers.size <= 3, `${buffers.size} buffers for 130 frames`);
  for (const f of frames) assert.equal(f.buf.length, 1518);
  // Writing every frame's whole buffer with its index leaves every other frame intact.
  frames.forEach((f, i) => f.buf.fill(i & 0xff));
  frames.forEach((f, i) => assert.ok(f.buf.every((b) => b === (i & 0xff)), `frame ${i}`));
  assert.equal(pool.allocated, 130);
  for (const f of frames) pool.release(f);
  assert.equal(pool.acquire(), frames[129], "the free list is reused before new frames");
});
