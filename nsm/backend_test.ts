import assert from "node:assert/strict";
import { IntMap } from "./backend.ts";

Deno.test("IntMap agrees with Map over random set/delete/get, through growth and wrap-around", () => {
  const m = new IntMap<number>(4);
  const ref = new Map<number, number>();
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let step = 0; step < 200_000; step++) {
    // Mostly a small key range (collisions, probe runs), sometimes large keys.
    const k = rnd(10) === 0 ? 2 ** 40 + rnd(256) : rnd(10) === 0 ? 2 ** 32 + rnd(300) : rnd(300);
    const op = rnd(3);
    if (op === 0) {
      m.set(k, step);
      ref.set(k, step);
    } else if (op === 1) {
      assert.equal(m.delete(k), ref.delete(k));
    } else {
      assert.equal(m.get(k), ref.get(k));
      assert.equal(m.has(k), ref.has(k));
    }
    assert.equal(m.size, ref.size);
  }
  assert.deepEqual(m.keys().sort((a, b) => a - b), [...ref.keys()].sort((a, b) => a - b));
  assert.deepEqual(m.values().sort((a, b) => a - b), [...ref.values()].sort((a, b) => a - b));
});

Deno.test("IntMap keeps its table when it empties (no shrink) and finds keys after deletes", () => {
  const m = new IntMap<string>();
  for (let round = 0; round < 1000; round++) {
    m.set(round + 1, "a");
    m.set(round + 2, "b");
    assert.equal(m.get(round + 1), "a");
    assert.equal(m.delete(round + 1), true);
    assert.equal(m.get(round + 2), "b");
    assert.equal(m.delete(round + 2), true);
    assert.equal(m.size, 0);
    assert.equal(m.get(round + 1), undefined);
  }
});

Deno.test("IntMap.set() rejects keys outside 0..2^53-1 with a RangeError", () => {
  const m = new IntMap<number>();
  assert.throws(() => m.set(-1, 1), RangeError);
  assert.throws(() => m.set(2 ** 53, 1), RangeError);
  assert.throws(() => m.set(1.5, 1), RangeError);
});
