import assert from "node:assert/strict";
import { SimLivelockError, SimTimeError, Simulator } from "./simulator.ts";
import type { SimNode } from "./simulator.ts";
import { NEVER } from "../stacks/time.ts";
import type { Instant } from "../stacks/time.ts";
import { pointToPoint } from "./topology.ts";
import { buildFrame, sendAt } from "./testing.ts";

/** A node that wants polls at a scripted list of instants and records when it was polled. */
class Timed implements SimNode {
  readonly polled: Instant[] = [];
  constructor(public plan: Instant[]) {}
  poll(now: Instant): void {
    this.polled.push(now);
    while (this.plan.length > 0 && this.plan[0]! <= now) this.plan.shift();
  }
  pollAt(): Instant {
    return this.plan[0] ?? NEVER;
  }
}

Deno.test("Simulator polls a node at exactly its pollAt() instants", () => {
  const sim = new Simulator();
  const n = new Timed([12_345, 20_000, 20_001, 1_000_000_007]);
  sim.addNode(n);
  sim.runUntil(2_000_000_000);
  assert.deepEqual(n.polled, [12_345, 20_000, 20_001, 1_000_000_007]);
  assert.equal(sim.now, 2_000_000_000);
  assert.equal(sim.queue.size, 0);
});

Deno.test("Simulator keeps one timer event per node however often pollAt() changes", () => {
  const sim = new Simulator();
  let next = 100;
  const node: SimNode = {
    poll(): void {},
    pollAt(): Instant {
      return next;
    },
  };
  const slot = sim.addNode(node);
  for (let i = 0; i < 1000; i++) {
    next = sim.now + 100 + (i % 7) * 10;
    sim.wake(node); // from outside a poll: moves the one event to now
    assert.equal(sim.queue.size, 1);
    sim.runUntil(sim.now + 1);
  }
  assert.equal(sim.queue.size, 1);
  assert.equal(slot.event.queued, true);
});

Deno.test("Simulator.wake() coalesces several wakes at one instant into one poll", () => {
  const sim = new Simulator();
  const n = new Timed([]);
  sim.addNode(n);
  sim.runUntil(50);
  sim.schedule(50, () => sim.wake(n)); // runs before the poll: coalesced with it
  sim.wake(n);
  sim.wake(n);
  sim.runUntil(60);
  assert.deepEqual(n.polled, [50]);
});

Deno.test("Simulator runs same-time events FIFO and schedule() rejects the past", () => {
  const sim = new Simulator();
  const order: string[] = [];
  sim.schedule(10, () => order.push("a"));
  sim.schedule(5, () => order.push("b"));
  sim.schedule(10, () => order.push("c"));
  sim.schedule(10, () => sim.schedule(10, () => order.push("e")));
  sim.schedule(10, () => order.push("d"));
  sim.runUntil(10);
  assert.deepEqual(order, ["b", "a", "c", "d", "e"]);
  assert.throws(() => sim.schedule(9, () => {}), SimTimeError);
});

Deno.test("Simulator.runUntilIdle() stops when idle or at the limit", () => {
  const sim = new Simulator();
  sim.schedule(100, () => {});
  assert.equal(sim.runUntilIdle(1_000), true);
  assert.equal(sim.now, 100);
  sim.schedule(5_000, () => {});
  assert.equal(sim.runUntilIdle(1_000), false);
  assert.equal(sim.now, 1_000);
});

Deno.test("Simulator.cancel() prevents a scheduled callback", () => {
  const sim = new Simulator();
  let ran = false;
  const ev = sim.schedule(10, () => (ran = true));
  assert.equal(sim.cancel(ev), true);
  sim.runUntil(20);
  assert.equal(ran, false);
});

Deno.test("Simulator throws SimLivelockError for a node that is always due now", () => {
  const sim = new Simulator();
  sim.addNode({ poll(): void {}, pollAt: (): Instant => sim.now });
  assert.throws(() => sim.runUntil(1), SimLivelockError);
});

Deno.test("A wake during the node's own poll polls it again at the same instant", () => {
  const sim = new Simulator();
  const polled: Instant[] = [];
  const node: SimNode = {
    poll(now: Instant): void {
      polled.push(now);
      if (polled.length === 1) sim.wake(node);
    },
    pollAt: (): Instant => (polled.length === 0 ? 7 : NEVER),
  };
  sim.addNode(node);
  sim.runUntil(100);
  assert.deepEqual(polled, [7, 7]);
});

Deno.test("addNode() wakes a node whose port already holds frames", () => {
  const sim = new Simulator();
  const { a, b } = pointToPoint(sim, { rateBps: 1e9, delay: 0 });
  sendAt(sim, a, 0, buildFrame());
  sim.runUntil(1_000);
  let got = 0;
  sim.addNode({
    poll: (): void => void b.receive(() => got++, 10),
    pollAt: (): Instant => NEVER,
  }, [b]);
  sim.runUntil(2_000);
  assert.equal(got, 1);
});

Deno.test("A repeated wake() keeps the pending poll's place among same-time events", () => {
  const sim = new Simulator();
  const order: string[] = [];
  const node: SimNode = { poll: (): void => void order.push("poll"), pollAt: (): Instant => NEVER };
  sim.addNode(node);
  sim.wake(node);
  sim.schedule(0, () => order.push("other"));
  sim.wake(node);
  sim.runUntil(10);
  assert.deepEqual(order, ["poll", "other"]);
});
