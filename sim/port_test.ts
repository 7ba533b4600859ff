import assert from "node:assert/strict";
import { Simulator } from "./simulator.ts";
import { FrameTooLargeError, SimPort } from "./port.ts";
import { pointToPoint } from "./topology.ts";
import { buildFrame, sendAt, Sink } from "./testing.ts";
import { transmitCopy } from "../stacks/link/link.ts";

Deno.test("SimPort MACs are deterministic per name, unicast and locally administered", () => {
  const mac = (name: string): number[] => [...new SimPort(new Simulator(), { name }).mac];
  assert.deepEqual(mac("h1"), mac("h1"));
  assert.notDeepEqual(mac("h1"), mac("h2"));
  assert.equal(mac("h1")[0]! & 0x03, 0x02);
});

Deno.test("SimPort reuses pooled frame buffers: a steady state allocates no new frames", () => {
  const sim = new Simulator();
  const { a, b } = pointToPoint(sim, { rateBps: 1e9, delay: 1_000 });
  const sink = new Sink(sim, b, false);
  for (let i = 0; i < 1000; i++) sendAt(sim, a, i * 20_000, buildFrame({ length: 1514 }));
  sim.runUntil(100 * 20_000);
  const pool = sim.framePool(1518);
  const allocated = pool.allocated;
  sim.runUntil(2_000_000_000);
  assert.equal(sink.count, 1000);
  assert.equal(pool.allocated, allocated);
  assert.ok(allocated <= 3, `allocated ${allocated}`);
  assert.equal(pool.free, allocated);
});

Deno.test("SimPort.transmitBuffer() throws FrameTooLargeError above MTU + 18", () => {
  const p = new SimPort(new Simulator(), { name: "p", mtu: 1500 });
  assert.ok(p.transmitBuffer(1518) !== null);
  assert.throws(() => p.transmitBuffer(1519), FrameTooLargeError);
});

Deno.test("SimPort drops and counts arrivals beyond its receive queue", () => {
  const sim = new Simulator();
  const { a, b } = pointToPoint(sim, { rateBps: 1e9, delay: 0, rxQueueFrames: 4 });
  for (let i = 0; i < 10; i++) sendAt(sim, a, 0, buildFrame());
  sim.runUntil(1_000_000); // nobody drains b
  assert.equal(b.rxQueued, 4);
  assert.equal(b.stats.rxDroppedQueue, 6);
  const seen: number[] = [];
  assert.equal(b.receive((f) => seen.push(f.length), 3), 3);
  assert.equal(b.receive((f) => seen.push(f.length), 10), 1);
  assert.deepEqual(seen, [64, 64, 64, 64]);
});

Deno.test("A backpressured SimPort refuses frames when the channel queue is full and wakes later", () => {
  const sim = new Simulator();
  const { a } = pointToPoint(sim, { rateBps: 1e9, delay: 0, queuePackets: 2, backpressure: true });
  let polls = 0;
  const node = { poll: (): void => void polls++, pollAt: (): number => Number.POSITIVE_INFINITY };
  sim.addNode(node, [a]);
  const f = buildFrame({ length: 1000 });
  // Committed-but-unflushed frames count: one for the idle wire + 2 queued.
  assert.ok(transmitCopy(a, f));
  assert.ok(transmitCopy(a, f));
  assert.ok(transmitCopy(a, f));
  assert.equal(transmitCopy(a, f), false);
  a.flush();
  assert.equal(a.transmitBuffer(1000), null);
  assert.equal(a.blocked, true);
  sim.runUntil(8_000); // first frame leaves the wire, a queued one starts: room for one
  assert.equal(polls, 1);
  assert.ok(a.transmitBuffer(1000) !== null);
});
