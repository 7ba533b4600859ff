import assert from "node:assert/strict";
import { jainIndex, percentile, TimeSeries } from "./metrics.ts";

Deno.test("percentile() uses nearest rank", () => {
  const xs = [15, 20, 35, 40, 50];
  assert.equal(percentile(xs, 5), 15);
  assert.equal(percentile(xs, 30), 20);
  assert.equal(percentile(xs, 40), 20);
  assert.equal(percentile(xs, 50), 35);
  assert.equal(percentile(xs, 100), 50);
  assert.equal(percentile([], 50), 0);
});

Deno.test("jainIndex() is 1 for equal shares and 1/n for one hog", () => {
  assert.equal(jainIndex([5, 5, 5, 5]), 1);
  assert.equal(jainIndex([8, 0, 0, 0]), 0.25);
  assert.ok(Math.abs(jainIndex([1, 2]) - 0.9) < 1e-12);
});

Deno.test("TimeSeries keeps samples in order and reports the max", () => {
  const s = new TimeSeries();
  s.push(0.1, 3);
  s.push(0.2, 7);
  assert.deepEqual(s.t, [0.1, 0.2]);
  assert.equal(s.max(), 7);
});
