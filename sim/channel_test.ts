import assert from "node:assert/strict";
import { Simulator } from "./simulator.ts";
import { pointToPoint } from "./topology.ts";
import type { PointToPoint, PointToPointParams } from "./topology.ts";
import { buildFrame, ipv4HeaderChecksum, sendAt, Sink } from "./testing.ts";
import type { SimNode } from "./simulator.ts";
import type { SimPort } from "./port.ts";
import { NEVER } from "../stacks/time.ts";
import type { Instant } from "../stacks/time.ts";

const GBIT = 1_000_000_000;

interface Fixture extends PointToPoint {
  sim: Simulator;
  sink: Sink;
}

function link(params: Partial<PointToPointParams> = {}, seed = 1): Fixture {
  const sim = new Simulator({ seed });
  const p2p = pointToPoint(sim, { rateBps: GBIT, delay: 10_000, ...params });
  const sink = new Sink(sim, p2p.b);
  return { sim, ...p2p, sink };
}

/** Sends `count` numbered frames of `length` bytes as fast as the backpressured port allows. */
class Blaster implements SimNode {
  sent = 0;
  constructor(readonly port: SimPort, readonly count: number, readonly length: number) {}
  poll(_now: Instant): void {
    while (this.sent < this.count) {
      const buf = this.port.transmitBuffer(this.length);
      if (buf === null) break;
      buf.fill(0);
      buf.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
      new DataView(buf.buffer, buf.byteOffset).setUint32(14, this.sent);
      this.port.commit(this.length);
      this.sent++;
    }
    this.port.flush();
  }
  pollAt(): Instant {
    return this.sent === 0 ? 0 : NEVER;
  }
}

function seqOf(f: Uint8Array): number {
  return new DataView(f.buffer, f.byteOffset).getUint32(14);
}

Deno.test("Channel delivers after exact serialization + propagation time, to the ns", () => {
  const { sim, a, sink } = link();
  sendAt(sim, a, 1_000, buildFrame({ length: 1514 }));
  sim.runUntil(1_000_000);
  // 1514 B * 8 / 1 Gbit/s = 12112 ns, + 10 us propagation.
  assert.deepEqual(sink.frames.map((f) => f.time), [1_000 + 12_112 + 10_000]);
});

Deno.test("Channel queues back-to-back frames and records their queueing delays", () => {
  const { sim, a, ab, sink } = link();
  for (let i = 0; i < 3; i++) sendAt(sim, a, 0, buildFrame({ length: 1514, seq: i }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sink.frames.map((f) => f.time), [22_112, 34_224, 46_336]);
  assert.deepEqual(sink.frames.map((f) => seqOf(f.bytes)), [0, 1, 2]);
  assert.deepEqual([...ab.stats.queueDelays()], [0, 12_112, 24_224]);
  assert.equal(ab.stats.busyTime, 3 * 12_112);
  assert.equal(ab.stats.maxQueuePackets, 2);
});

Deno.test("Channel carries sub-ns serialization remainders so back-to-back frames do not drift", () => {
  // 100 B at 3 Mbit/s = 266666.67 ns per frame.
  const { sim, a, sink } = link({ rateBps: 3_000_000, delay: 0 });
  for (let i = 0; i < 3; i++) sendAt(sim, a, 0, buildFrame({ length: 100 }));
  sim.runUntil(10_000_000);
  assert.deepEqual(sink.frames.map((f) => f.time), [266_666, 533_333, 800_000]);
});

Deno.test("Channel drop-tail in packet mode drops arrivals beyond queuePackets", () => {
  const { sim, a, ab, sink } = link({ queuePackets: 2 });
  for (let i = 0; i < 5; i++) sendAt(sim, a, 0, buildFrame({ length: 1000, seq: i }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sink.frames.map((f) => seqOf(f.bytes)), [0, 1, 2]);
  assert.equal(ab.stats.droppedQueue, 2);
  assert.equal(ab.stats.framesIn, 5);
  assert.equal(ab.stats.framesOut, 3);
});

Deno.test("Channel drop-tail in byte mode admits frames while queued bytes fit queueBytes", () => {
  const { sim, a, ab, sink } = link({ queueBytes: 3000 });
  for (let i = 0; i < 5; i++) sendAt(sim, a, 0, buildFrame({ length: 1000, seq: i }));
  sim.runUntil(1_000_000);
  assert.equal(sink.count, 4); // 1 on the wire + 3000 B queued
  assert.equal(ab.stats.droppedQueue, 1);

  const second = link({ queueBytes: 3000 });
  for (let i = 0; i < 5; i++) sendAt(second.sim, second.a, 0, buildFrame({ length: 1001 }));
  second.sim.runUntil(1_000_000);
  assert.equal(second.sink.count, 3); // 1 on the wire + 2002 B; a third 1001 B would exceed
  assert.equal(second.ab.stats.droppedQueue, 2);
});

Deno.test("Channel random loss of 10% over 20000 frames is within 5 binomial sd (seed 1)", () => {
  const { sim, a, ab, sink } = link({ loss: 0.1, backpressure: true, queuePackets: 64 });
  const n = 20_000;
  sim.addNode(new Blaster(a, n, 64), [a]);
  sim.runUntilIdle(10_000_000_000);
  const sd = Math.sqrt(n * 0.1 * 0.9); // ~42.4
  assert.ok(Math.abs(ab.stats.droppedLoss - 2000) < 5 * sd, `lost ${ab.stats.droppedLoss}`);
  assert.equal(sink.count + ab.stats.droppedLoss, n);
  assert.equal(ab.stats.droppedQueue, 0); // backpressure: the host never overflows its queue
});

Deno.test("Channel reorders, duplicates and corrupts frames and counts each", () => {
  const { sim, a, ab, sink } = link({
    reorder: 0.1,
    reorderDelay: 200_000,
    duplicate: 0.05,
    corrupt: 0.05,
    backpressure: true,
  });
  const n = 2_000;
  sim.addNode(new Blaster(a, n, 200), [a]);
  sim.runUntilIdle(10_000_000_000);
  const s = ab.stats;
  assert.ok(
    s.reordered > 100 && s.duplicated > 40 && s.corrupted > 40,
    JSON.stringify(s.snapshot()),
  );
  assert.equal(sink.count, n + s.duplicated);
  assert.equal(s.framesOut, n + s.duplicated);
  // Out-of-order arrivals exist: some frame arrives after a higher sequence number.
  let inversions = 0, maxSeen = -1, corruptedSeen = 0;
  for (const f of sink.frames) {
    const b = f.bytes;
    // Header (first 14 bytes) is never corrupted.
    assert.deepEqual([...b.subarray(0, 14)], [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
    let flipped = 0;
    for (let i = 18; i < b.length; i++) {
      let x = b[i]!;
      while (x !== 0) {
        flipped += x & 1;
        x >>>= 1;
      }
    }
    const seq = seqOf(b);
    if (flipped > 0 || seq >= n) corruptedSeen++;
    if (seq < maxSeen) inversions++;
    else maxSeen = seq;
  }
  assert.ok(inversions > 0);
  // Every corrupted frame (and its duplicate, if any) shows a flip; none beyond that.
  assert.ok(corruptedSeen >= s.corrupted && corruptedSeen <= 2 * s.corrupted);
});

Deno.test("Channel marks CE exactly when the queue exceeds K, only for ECT frames", () => {
  const { sim, a, ab, sink } = link({ ecnK: 2 });
  // All at once: frame 0 goes to the wire, frame i (i >= 1) finds i - 1 frames waiting, so
  // frames 4.. find more than K = 2. Frame 5 is not-ECT, frame 6 already CE, frame 7 ECT(1).
  const codepoints = [2, 2, 2, 2, 2, 0, 3, 1];
  for (const ecn of codepoints) {
    sendAt(sim, a, 0, buildFrame({ ethertype: 0x0800, ecn, length: 100 }));
  }
  sim.runUntil(1_000_000);
  const ecn = sink.frames.map((f) => f.bytes[15]! & 3);
  assert.deepEqual(ecn, [2, 2, 2, 2, 3, 0, 3, 3]);
  assert.equal(ab.stats.marked, 2);
  for (const f of sink.frames) {
    const h = f.bytes.subarray(14, 34);
    assert.equal((h[10]! << 8) | h[11]!, ipv4HeaderChecksum(h), "IPv4 checksum valid after CE");
  }
});

Deno.test("Channel never marks or ECN-drops not-ECT frames over K, but drop-tail still applies", () => {
  const { sim, a, ab, sink } = link({ ecnK: 1, queuePackets: 3 });
  for (let i = 0; i < 6; i++) {
    sendAt(sim, a, 0, buildFrame({ ethertype: 0x0800, ecn: 0, length: 100 }));
  }
  sim.runUntil(1_000_000);
  assert.equal(sink.count, 4);
  assert.equal(ab.stats.marked, 0);
  assert.equal(ab.stats.droppedQueue, 2);
  assert.ok(sink.frames.every((f) => (f.bytes[15]! & 3) === 0));
});

Deno.test("Channel marks ECT(1) IPv6 and 802.1Q-tagged IPv4 frames", () => {
  const { sim, a, ab, sink } = link({ ecnK: 0 });
  sendAt(sim, a, 0, buildFrame({ ethertype: 0x86dd, ecn: 1, length: 100 })); // on the wire
  sendAt(sim, a, 0, buildFrame({ ethertype: 0x86dd, ecn: 1, length: 100 })); // finds 0 waiting
  sendAt(sim, a, 0, buildFrame({ ethertype: 0x86dd, ecn: 1, length: 100 })); // finds 1
  sendAt(sim, a, 0, buildFrame({ ethertype: 0x0800, ecn: 1, length: 100, vlan: true }));
  sim.runUntil(1_000_000);
  assert.equal(ab.stats.marked, 2);
  const [f0, f1, f2, f3] = sink.frames.map((f) => f.bytes);
  assert.equal((f0![15]! >> 4) & 3, 1);
  assert.equal((f1![15]! >> 4) & 3, 1);
  assert.equal((f2![15]! >> 4) & 3, 3);
  assert.equal(f3![19]! & 3, 3);
  const h = f3!.subarray(18, 38);
  assert.equal((h[10]! << 8) | h[11]!, ipv4HeaderChecksum(h));
});

Deno.test("Channel counts frames and bytes in and out and utilization", () => {
  const { sim, a, ab, sink } = link({ backpressure: true });
  sim.addNode(new Blaster(a, 1000, 1514), [a]);
  sim.runUntil(12_112 * 500);
  assert.equal(ab.stats.busyTime, 12_112 * 500);
  assert.equal(ab.stats.utilization(sim.now), 1);
  sim.runUntilIdle(1e12);
  assert.equal(ab.stats.framesIn, 1000);
  assert.equal(ab.stats.bytesIn, 1_514_000);
  assert.equal(ab.stats.bytesOut, 1_514_000);
  assert.equal(sink.count, 1000);
});

Deno.test("Channel keeps the event queue small: only the head of the in-flight pipe is queued", () => {
  // 10 ms of 1 Gbit/s holds ~800 frames in flight.
  const { sim, a, sink } = link({ delay: 10_000_000, backpressure: true });
  sim.addNode(new Blaster(a, 5_000, 1514), [a]);
  let maxQueued = 0;
  for (let t = 1_000_000; t <= 80_000_000; t += 1_000_000) {
    sim.runUntil(t);
    maxQueued = Math.max(maxQueued, sim.queue.size);
  }
  assert.equal(sink.count, 5_000);
  assert.ok(maxQueued <= 4, `queue size ${maxQueued}`);
});

Deno.test("Channel.configure() lowering the delay mid-run never lets a frame overtake", () => {
  const { sim, a, ab, sink } = link({ delay: 100_000 });
  for (let i = 0; i < 4; i++) sendAt(sim, a, i * 1_000, buildFrame({ length: 100, seq: i }));
  sendAt(sim, a, 200_000, buildFrame({ length: 100, seq: 4 }));
  sim.schedule(1_500, () => ab.configure({ delay: 1_000 }));
  sim.runUntil(1_000_000);
  assert.deepEqual(sink.frames.map((f) => seqOf(f.bytes)), [0, 1, 2, 3, 4]);
  // Frame 0 (800 ns on the wire) keeps its 100 us; 1..3 would arrive at 2.8..4.8 us under the
  // new delay but wait behind it; a later frame gets the new delay.
  assert.deepEqual(sink.frames.map((f) => f.time), [100_800, 100_800, 100_800, 100_800, 201_800]);
});
