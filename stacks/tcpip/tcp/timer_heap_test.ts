import assert from "node:assert/strict";
import { NEVER } from "../../time.ts";
import { type HeapEntry, TimerHeap } from "./timer_heap.ts";

Deno.test("TimerHeap yields entries in deadline order under updates and removals", () => {
  const h = new TimerHeap<HeapEntry & { id: number }>();
  const es = Array.from({ length: 200 }, (_, id) => ({ id, heapKey: NEVER, heapIndex: -1 }));
  let x = 7;
  const rnd = (): number => (x = (Math.imul(x, 48271) % 2147483647) >>> 0) % 10_000;
  for (const e of es) h.set(e, rnd());
  for (let i = 0; i < 100; i++) h.set(es[rnd() % 200]!, rnd());
  for (let i = 0; i < 50; i++) h.set(es[i * 3]!, NEVER);
  let last = -1;
  let n = 0;
  while (h.size > 0) {
    const e = h.peek()!;
    assert.ok(e.heapKey >= last);
    last = e.heapKey;
    h.remove(e);
    assert.equal(e.heapIndex, -1);
    n++;
  }
  assert.equal(n, 150);
  assert.equal(h.peekKey(), NEVER);
});

Deno.test("TimerHeap.setFrom() files, re-keys and removes (NEVER) exactly like set()", () => {
  const a = new TimerHeap<HeapEntry & { id: number }>();
  const b = new TimerHeap<HeapEntry & { id: number }>();
  const ea = Array.from({ length: 64 }, (_, id) => ({ id, heapKey: NEVER, heapIndex: -1 }));
  const eb = Array.from({ length: 64 }, (_, id) => ({ id, heapKey: NEVER, heapIndex: -1 }));
  const keys = new Float64Array(4);
  let x = 11;
  for (let i = 0; i < 500; i++) {
    x = (Math.imul(x, 48271) % 2147483647) >>> 0;
    const k = x % 7 === 0 ? NEVER : 3e9 + (x % 5000) * 1e6; // above 2^31 ns, like real time
    keys[i & 3] = k;
    a.set(ea[x % 64]!, k);
    b.setFrom(eb[x % 64]!, keys, i & 3);
  }
  assert.equal(b.size, a.size);
  while (a.size > 0) {
    assert.equal(b.peekKey(), a.peekKey());
    a.remove(a.peek()!);
    b.remove(b.peek()!);
  }
  assert.equal(b.size, 0);
});
