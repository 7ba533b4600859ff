import assert from "node:assert/strict";
import { AdaptiveSpin } from "./spin.ts";

Deno.test("AdaptiveSpin keeps its budget after a spin that found work", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 200_000, initialNs: 10_000 });
  s.record(false, 0);
  s.record(false, 0);
  assert.equal(s.budgetNs, 10_000);
  assert.equal(s.hits, 2);
});

Deno.test("AdaptiveSpin falls to 0 after waits longer than maxNs, so an idle guest sleeps at once", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 200_000, initialNs: 10_000 });
  for (let i = 0; i < 10; i++) s.record(true, 1e9); // long idle sleeps
  assert.equal(s.budgetNs, 0);
  assert.equal(s.misses, 3); // 10 -> 5 -> 2.5 -> 0 µs
  s.record(true, 5e9);
  assert.equal(s.budgetNs, 0);
});

Deno.test("AdaptiveSpin grows to cover answers that come every ~80 µs, then catches them", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 200_000, initialNs: 0 });
  // Request/response: each answer arrives 80 µs after the guest starts waiting.
  const answerAt = 80_000;
  let sleeps = 0;
  for (let i = 0; i < 20; i++) {
    if (s.budgetNs >= answerAt) s.record(false, 0);
    else {
      sleeps++;
      s.record(true, answerAt + 20_000); // the doorbell wake-up adds ~20 µs
    }
  }
  assert.equal(sleeps, 1, "one sleep teaches the budget");
  assert.equal(s.budgetNs, 125_000);
  assert.equal(s.hits, 19);
});

Deno.test("AdaptiveSpin never grows beyond maxNs, nor below minNs when it grows", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 50_000, initialNs: 40_000 });
  s.record(true, 49_000);
  assert.equal(s.budgetNs, 50_000);
  const z = new AdaptiveSpin({ minNs: 2_000, maxNs: 50_000, initialNs: 0 });
  z.record(true, 100);
  assert.equal(z.budgetNs, 2_000);
});

Deno.test("AdaptiveSpin.idle() counts empty passes and runs the idle option (the guest's CPU yield)", () => {
  let yields = 0;
  const s = new AdaptiveSpin({ idle: () => yields++ });
  s.idle();
  s.idle();
  assert.equal(s.idlePasses, 2);
  assert.equal(yields, 2);
  const quiet = new AdaptiveSpin();
  quiet.idle();
  assert.equal(quiet.idlePasses, 1, "counted without an idle option");
});

Deno.test("AdaptiveSpin keeps its budget in whole nanoseconds (a fractional one was a heap number per store)", () => {
  const s = new AdaptiveSpin({ minNs: 1_001, maxNs: 200_001, initialNs: 3_333 });
  // Long waits drop the budget to 0; then a wait sets it to 5/4 of itself (6,253.75 from 5,003).
  for (const w of [300_000, 300_000, 5_003, 7_777, 12_345, 250_000, 5_555, 999_999, 33]) {
    s.record(true, w);
    assert.ok(Number.isInteger(s.budgetNs), `${s.budgetNs} after a wait of ${w}`);
  }
});
