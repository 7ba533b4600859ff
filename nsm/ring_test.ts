import assert from "node:assert/strict";
import {
  CONSUMER_OFFSET,
  initRing,
  PRODUCER_OFFSET,
  RING_HEADER_SIZE,
  ringBytes,
  RingConfigError,
  RingConsumer,
  RingIndexError,
  RingProducer,
  SLOT_WORDS,
} from "./ring.ts";

function makeRing(capacity: number, start = 0): {
  buf: ArrayBuffer;
  p: RingProducer;
  c: RingConsumer;
  idx: Uint32Array;
} {
  const buf = new ArrayBuffer(ringBytes(capacity) + 64);
  initRing(buf, 64, capacity, start);
  return {
    buf,
    p: new RingProducer(buf, 64, capacity, "t"),
    c: new RingConsumer(buf, 64, capacity, "t"),
    idx: new Uint32Array(buf, 64, RING_HEADER_SIZE / 4),
  };
}

/** Pushes values [from, from+n) in one batch; returns how many fit. */
function push(p: RingProducer, from: number, n: number): number {
  const k = p.claim(n);
  for (let i = 0; i < k; i++) p.view.setUint32(p.slot(i), from + i, true);
  p.publish(k);
  return k;
}

/** Pops up to n values in one batch. */
function pop(c: RingConsumer, n: number): number[] {
  const k = c.available(n);
  const out: number[] = [];
  for (let i = 0; i < k; i++) out.push(c.view.getUint32(c.slot(i), true));
  c.release(k);
  return out;
}

Deno.test("ring keeps FIFO order across index wrap-around at 2^32", () => {
  const { p, c, idx } = makeRing(16, 0xffff_fff0);
  const seen: number[] = [];
  let next = 0;
  while (seen.length < 100) {
    next += push(p, next, 5);
    seen.push(...pop(c, 7));
  }
  assert.deepEqual(seen.slice(0, 100), Array.from({ length: 100 }, (_, i) => i));
  // The indices wrapped: they are small again, and equal once drained.
  seen.push(...pop(c, 16));
  assert.equal(p.index, (0xffff_fff0 + next) >>> 0);
  assert.ok(p.index < 0xffff_fff0);
  assert.equal(idx[PRODUCER_OFFSET / 4], p.index);
  assert.equal(idx[CONSUMER_OFFSET / 4], c.index);
  assert.equal(c.index, p.index);
});

Deno.test("ring keeps FIFO order and reports u32 indices across 2^31 (kept as int32 inside)", () => {
  const { p, c, idx } = makeRing(16, 0x7fff_fff0);
  const seen: number[] = [];
  let next = 0;
  while (seen.length < 100) {
    next += push(p, next, 5);
    seen.push(...pop(c, 7));
  }
  seen.push(...pop(c, 16));
  assert.deepEqual(seen, Array.from({ length: next }, (_, i) => i));
  assert.equal(p.index, 0x7fff_fff0 + next, "u32, past 2^31");
  assert.equal(idx[PRODUCER_OFFSET / 4], p.index);
  assert.equal(c.index, p.index);
  assert.equal(p.claim(16), 16, "all free again");
});

Deno.test("a full ring refuses more entries and never overwrites unread slots", () => {
  const { p, c } = makeRing(8);
  assert.equal(push(p, 0, 8), 8);
  assert.equal(p.claim(1), 0);
  assert.equal(push(p, 100, 3), 0);
  assert.equal(p.fullCount, 2);
  assert.deepEqual(pop(c, 3), [0, 1, 2]);
  assert.equal(push(p, 8, 5), 3, "only the 3 freed slots are handed out");
  // The consumer drains its cached batch first, then refreshes for the rest.
  assert.deepEqual([...pop(c, 100), ...pop(c, 100)], [3, 4, 5, 6, 7, 8, 9, 10]);
});

Deno.test("entries become visible only when the batch is published", () => {
  const { p, c } = makeRing(8);
  const k = p.claim(4);
  assert.equal(k, 4);
  for (let i = 0; i < k; i++) p.view.setUint32(p.slot(i), 40 + i, true);
  assert.equal(c.available(8), 0, "written but unpublished slots are invisible");
  p.publish(4);
  assert.equal(c.available(8), 4);
  assert.equal(c.available(2), 2, "available() is capped by want");
  assert.deepEqual(pop(c, 8), [40, 41, 42, 43]);
});

Deno.test("consumer reads the producer index only when its cached copy is empty", () => {
  const { p, c, idx } = makeRing(8);
  push(p, 0, 2);
  assert.equal(c.available(8), 2);
  push(p, 2, 3);
  assert.equal(c.available(8), 2, "cache not yet empty: no refresh");
  c.release(2);
  assert.equal(c.available(8), 3, "empty cache: refreshed");
  idx[PRODUCER_OFFSET / 4] = 1; // corrupt while the cache still holds entries
  assert.equal(c.available(8), 3);
  assert.equal(c.fault, null);
});

Deno.test("consumer detects a producer index that moves backwards ('producer-index-backwards')", () => {
  const { p, c, idx } = makeRing(8, 100);
  push(p, 0, 5);
  assert.equal(c.available(8), 5);
  c.release(2);
  c.release(3);
  idx[PRODUCER_OFFSET / 4] = 103; // behind what was already published (105)
  assert.equal(c.available(8), 0);
  assert.ok(c.fault instanceof RingIndexError);
  assert.equal(c.fault.reason, "producer-index-backwards");
  assert.equal(c.fault.seen, 103);
  idx[PRODUCER_OFFSET / 4] = 106;
  assert.equal(c.available(8), 0, "a faulted ring stays dead");
});

Deno.test("consumer detects a producer index beyond capacity ('producer-index-beyond-capacity')", () => {
  const { c, idx } = makeRing(8, 0xffff_fffe);
  idx[PRODUCER_OFFSET / 4] = (0xffff_fffe + 9) >>> 0; // 9 > 8 slots, across the wrap
  assert.equal(c.available(1), 0);
  assert.equal(c.fault?.reason, "producer-index-beyond-capacity");
});

Deno.test("consumer detects a producer index below its own consumer index", () => {
  const { c, idx } = makeRing(8, 50);
  idx[PRODUCER_OFFSET / 4] = 49;
  assert.equal(c.peekFill(), 0);
  assert.equal(c.fault?.reason, "producer-index-backwards");
});

Deno.test("producer detects a consumer index beyond the producer or moving backwards", () => {
  const a = makeRing(8);
  push(a.p, 0, 8);
  a.idx[CONSUMER_OFFSET / 4] = 9; // consumed more than was produced
  assert.equal(a.p.claim(1), 0);
  assert.equal(a.p.fault?.reason, "consumer-index-beyond-producer");

  const b = makeRing(8, 10);
  push(b.p, 0, 8);
  b.idx[CONSUMER_OFFSET / 4] = 14;
  assert.equal(b.p.claim(8), 4);
  b.idx[CONSUMER_OFFSET / 4] = 12; // backwards
  assert.equal(b.p.claim(8), 0);
  assert.equal(b.p.fault?.reason, "consumer-index-backwards");
});

Deno.test("ring geometry errors say what to change", () => {
  const buf = new ArrayBuffer(ringBytes(8));
  assert.throws(() => new RingProducer(buf, 0, 12), RingConfigError);
  assert.throws(() => new RingProducer(buf, 32, 8), /64-byte aligned/);
  assert.throws(() => new RingProducer(buf, 0, 16), /make the mapping larger/);
});

Deno.test("the batched word path (firstWord/contiguous) splits a batch at the wrap and matches slot()", () => {
  const { p, c } = makeRing(8, 0xffff_fff8);
  // Move both indices to slot 5 so a batch of 6 wraps after 3 slots.
  assert.equal(push(p, 0, 5), 5);
  assert.deepEqual(pop(c, 5), [0, 1, 2, 3, 4]);
  const k = p.claim(6);
  assert.equal(k, 6);
  const run = p.contiguous(k);
  assert.equal(run, 3);
  assert.equal(p.firstWord * 4, p.slot(0));
  let w = p.firstWord;
  for (let j = 0; j < run; j++, w += SLOT_WORDS) p.words[w] = 100 + j;
  w = RING_HEADER_SIZE / 4;
  for (let j = run; j < k; j++, w += SLOT_WORDS) p.words[w] = 100 + j;
  p.publish(k);
  // The per-slot path sees the same values, in order, across the wrap.
  const n = c.available(8);
  assert.equal(n, 6);
  assert.equal(c.contiguous(n), 3);
  assert.equal(c.firstWord * 4, c.slot(0));
  const seen: number[] = [];
  for (let j = 0; j < n; j++) seen.push(c.view.getUint32(c.slot(j), true));
  assert.deepEqual(seen, [100, 101, 102, 103, 104, 105]);
  assert.equal(c.words[c.firstWord + 2 * SLOT_WORDS], 102);
  c.release(n);
  assert.equal(c.contiguous(4), 4);
});
