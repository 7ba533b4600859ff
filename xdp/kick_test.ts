import assert from "node:assert/strict";
import { allowedCpus, kickUntilDrained } from "./kick.ts";
import { EAGAIN, EBUSY } from "./libc.ts";

/** A fake copy-mode TX ring: each kick consumes up to `budget` descriptors. */
function fakeRing(queued: number, budget: number, stallAfter = Infinity): {
  kick: () => number;
  unsent: () => number;
  kicksSeen: () => number;
} {
  let left = queued;
  let kicks = 0;
  return {
    kick: (): number => {
      kicks++;
      if (kicks > stallAfter) return EAGAIN; // e.g. the send buffer is full: no progress
      const n = Math.min(left, budget);
      left -= n;
      return left > 0 ? EAGAIN : 0;
    },
    unsent: (): number => left,
    kicksSeen: (): number => kicks,
  };
}

Deno.test("kickUntilDrained() re-kicks while the budget runs out until the ring is drained", () => {
  const r = fakeRing(100, 32);
  const c = { kicks: 0, kickBusy: 0 };
  assert.equal(kickUntilDrained(r.kick, r.unsent, 8, c), true);
  assert.equal(r.unsent(), 0);
  assert.equal(c.kicks, 4); // 32 + 32 + 32 + 4
  assert.equal(c.kickBusy, 3);
});

Deno.test("kickUntilDrained() stops after maxKicks with frames left", () => {
  const r = fakeRing(1000, 32);
  const c = { kicks: 0, kickBusy: 0 };
  assert.equal(kickUntilDrained(r.kick, r.unsent, 3, c), false);
  assert.equal(r.unsent(), 1000 - 96);
  assert.equal(c.kicks, 3);
});

Deno.test("kickUntilDrained() does not kick an empty ring", () => {
  const r = fakeRing(0, 32);
  const c = { kicks: 0, kickBusy: 0 };
  assert.equal(kickUntilDrained(r.kick, r.unsent, 8, c), true);
  assert.equal(r.kicksSeen(), 0);
  assert.equal(c.kicks, 0);
});

Deno.test("kickUntilDrained() gives up after a kick that consumed nothing", () => {
  const r = fakeRing(200, 32, 2);
  const c = { kicks: 0, kickBusy: 0 };
  assert.equal(kickUntilDrained(r.kick, r.unsent, 50, c), false);
  assert.equal(r.kicksSeen(), 3); // two that progressed, one that did not
  assert.equal(r.unsent(), 200 - 64);
});

Deno.test("kickUntilDrained() does not retry an errno other than EAGAIN", () => {
  let left = 10;
  const c = { kicks: 0, kickBusy: 0 };
  const kick = (): number => {
    left -= 1;
    return EBUSY;
  };
  assert.equal(kickUntilDrained(kick, () => left, 8, c), false);
  assert.equal(c.kicks, 1);
  assert.equal(c.kickBusy, 1);
});

Deno.test("allowedCpus() counts the CPUs of Cpus_allowed_list (ranges and single ids)", () => {
  assert.equal(allowedCpus("Name:\tdeno\nCpus_allowed_list:\t0-1\n"), 2);
  assert.equal(allowedCpus("Cpus_allowed_list:\t0\n"), 1);
  assert.equal(allowedCpus("Cpus_allowed_list:\t0-3,6,8-9\n"), 7);
});

Deno.test("allowedCpus() answers 1 (no kick thread) when the list is missing or malformed", () => {
  assert.equal(allowedCpus("Name:\tdeno\n"), 1);
  assert.equal(allowedCpus("Cpus_allowed_list:\t3-1\n"), 1);
  assert.equal(allowedCpus("Cpus_allowed_list:\tx\n"), 1);
});
