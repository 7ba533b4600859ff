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
