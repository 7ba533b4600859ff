import assert from "node:assert/strict";
import { Fifo } from "./fifo.ts";

Deno.test("Fifo keeps first-in first-out order across wrap-around and growth", () => {
  const q = new Fifo<number>(4);
  const out: number[] = [];
  let next = 0;
  // Interleave pushes and shifts so the head wraps, then outgrow the ring while wrapped.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 3 + (round % 5); i++) q.push(next++);
    for (let i = 0; i < 3; i++) out.push(q.shift()!);
  }
  while (q.length > 0) out.push(q.shift()!);
  assert.deepEqual(out, Array.from({ length: next }, (_, i) => i));
  assert.equal(q.shift(), undefined);
  assert.equal(q.peek(), undefined);
});

Deno.test("Fifo.at() and peek() index from the head; clear() empties and the queue is reusable", () => {
  const q = new Fifo<string>(2);
  q.push("a");
  q.push("b");
  q.shift();
  q.push("c");
  q.push("d"); // grows while the head is at slot 1
  assert.equal(q.length, 3);
  assert.equal(q.peek(), "b");
  assert.deepEqual([q.at(0), q.at(1), q.at(2), q.at(3), q.at(-1)], [
    "b",
    "c",
    "d",
    undefined,
    undefined,
  ]);
  q.clear();
  assert.equal(q.length, 0);
  q.push("e");
  assert.equal(q.shift(), "e");
});
