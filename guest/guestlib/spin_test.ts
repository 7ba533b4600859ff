import assert from "node:assert/strict";
import { AdaptiveSpin } from "./spin.ts";

Deno.test("AdaptiveSpin doubles the budget after a spin that found work, up to maxNs", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 50_000, initialNs: 10_000 });
  s.record(false, 0);
  assert.equal(s.budgetNs, 20_000);
  s.record(false, 0);
  s.record(false, 0);
  assert.equal(s.budgetNs, 50_000);
  assert.equal(s.hits, 3);
});

Deno.test("AdaptiveSpin falls to 0 after spins that ran out, so an idle guest sleeps at once", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 50_000, initialNs: 10_000 });
  for (let i = 0; i < 10; i++) s.record(true, 1e9); // long idle sleeps
  assert.equal(s.budgetNs, 0);
  assert.equal(s.misses, 3); // 10 -> 5 -> 2.5 -> 0 µs
  s.record(true, 5e9);
  assert.equal(s.budgetNs, 0);
});

Deno.test("AdaptiveSpin re-arms at minNs when a sleep at budget 0 was woken quickly", () => {
  const s = new AdaptiveSpin({ minNs: 2_000, maxNs: 50_000, initialNs: 0 });
  assert.equal(s.budgetNs, 0);
  s.record(true, 30_000);
  assert.equal(s.budgetNs, 2_000);
  s.record(false, 0);
  assert.equal(s.budgetNs, 4_000);
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
