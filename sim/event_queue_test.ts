import assert from "node:assert/strict";
import { EventQueue, SimEvent } from "./event_queue.ts";
import { Prng } from "./prng.ts";

function ev(tag: number): SimEvent & { tag: number } {
  return Object.assign(new SimEvent(), { tag });
}

Deno.test("EventQueue pops by time, and equal times in insertion order (FIFO)", () => {
  const q = new EventQueue();
  const times = [5, 1, 5, 3, 1, 5, 0];
  const evs = times.map((_, i) => ev(i));
  evs.forEach((e, i) => q.schedule(e, times[i]!));
  const out: number[] = [];
  for (let e = q.pop(); e !== undefined; e = q.pop()) {
    out.push((e as SimEvent & { tag: number }).tag);
  }
  assert.deepEqual(out, [6, 1, 4, 3, 0, 2, 5]);
  assert.equal(q.size, 0);
  assert.equal(q.peekTime(), Number.POSITIVE_INFINITY);
});

Deno.test("EventQueue.schedule() of a queued event moves it instead of duplicating it", () => {
  const q = new EventQueue();
  const a = ev(1), b = ev(2);
  q.schedule(a, 10);
  q.schedule(b, 20);
  q.schedule(a, 30);
  assert.equal(q.size, 2);
  assert.equal(q.pop(), b);
  assert.equal(q.pop(), a);
  assert.equal(a.queued, false);
});

Deno.test("EventQueue.cancel() removes an event from anywhere in the heap", () => {
  const q = new EventQueue();
  const r = new Prng(1);
  const evs = Array.from({ length: 200 }, (_, i) => ev(i));
  for (const e of evs) q.schedule(e, r.nextInt(50));
  const cancelled = new Set<number>();
  for (let i = 0; i < 200; i += 3) {
    assert.equal(q.cancel(evs[i]!), true);
    cancelled.add(i);
  }
  assert.equal(q.cancel(evs[0]!), false);
  let last = -1, lastSeq = -1, n = 0;
  for (let e = q.pop(); e !== undefined; e = q.pop()) {
    const tag = (e as SimEvent & { tag: number }).tag;
    assert.ok(!cancelled.has(tag));
    assert.ok(e.time > last || (e.time === last && e.seq > lastSeq));
    last = e.time;
    lastSeq = e.seq;
    n++;
  }
  assert.equal(n, 200 - cancelled.size);
});
