import assert from "node:assert/strict";
import { MonitorIntervalError, QueueMonitor } from "./monitor.ts";
import { Simulator } from "./simulator.ts";
import { pointToPoint } from "./topology.ts";
import { buildFrame, sendAt, Sink } from "./testing.ts";

Deno.test("QueueMonitor samples queue length and delivered bytes at a fixed interval", () => {
  const sim = new Simulator();
  const { a, b, ab } = pointToPoint(sim, { rateBps: 1e9, delay: 0 });
  new Sink(sim, b, false);
  // 10 frames of 1000 B at t=0: 8 us each; at t=1 us, 9 wait; each 8 us one fewer.
  for (let i = 0; i < 10; i++) sendAt(sim, a, 0, buildFrame({ length: 1000 }));
  const mon = new QueueMonitor(sim, ab, 8_000, 1_000);
  sim.runUntil(100_000);
  mon.stop();
  assert.equal(mon.length, 13); // 1, 9, ..., 97 us
  assert.deepEqual([...mon.times.subarray(0, 3)], [1_000, 9_000, 17_000]);
  assert.deepEqual([...mon.queuePackets], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0]);
  assert.equal(mon.queueBytes[0], 9_000);
  assert.deepEqual([...mon.deliveredBytes.subarray(0, 3)], [0, 1_000, 2_000]);
  assert.equal(sim.queue.size, 0);
  assert.throws(() => new QueueMonitor(sim, ab, 0), MonitorIntervalError);
});
