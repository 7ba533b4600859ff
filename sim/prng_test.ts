import assert from "node:assert/strict";
import { Prng } from "./prng.ts";

Deno.test("Prng.nextU32() matches the xoshiro128** reference sequence for state 1,2,3,4", () => {
  const r = new Prng([1, 2, 3, 4]);
  assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()], [
    11520,
    0,
    5927040,
    70819200,
  ]);
});

Deno.test("Prng with the same seed yields the same stream; different seeds differ", () => {
  const a = new Prng(42), b = new Prng(42), c = new Prng(43);
  const xa = Array.from({ length: 16 }, () => a.nextU32());
  const xb = Array.from({ length: 16 }, () => b.nextU32());
  const xc = Array.from({ length: 16 }, () => c.nextU32());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
});

Deno.test("Prng.next() stays in [0, 1) with a mean near 1/2", () => {
  const r = new Prng(7);
  let sum = 0;
  for (let i = 0; i < 100_000; i++) {
    const x = r.next();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  // sd of the mean = sqrt(1/12/1e5) ~ 0.00091; allow 5 sd.
  assert.ok(Math.abs(sum / 100_000 - 0.5) < 0.0046, `mean ${sum / 100_000}`);
});

Deno.test("Prng.fork(label) depends only on seed and label, not on draws or other forks", () => {
  const a = new Prng(9);
  const fa = a.fork("link:x");
  const b = new Prng(9);
  for (let i = 0; i < 100; i++) b.nextU32();
  b.fork("link:other");
  const fb = b.fork("link:x");
  assert.equal(fa.nextU32(), fb.nextU32());
  assert.notEqual(new Prng(9).fork("link:x").nextU32(), new Prng(9).fork("link:y").nextU32());
  assert.notEqual(new Prng(9).fork("l").nextU32(), new Prng(10).fork("l").nextU32());
});

Deno.test("Prng.chance() honours 0 and 1 and nextInt() stays in range", () => {
  const r = new Prng(3);
  for (let i = 0; i < 1000; i++) {
    assert.equal(r.chance(0), false);
    assert.equal(r.chance(1), true);
    const k = r.nextInt(6);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 6);
  }
});
