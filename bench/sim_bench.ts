/**
 * Simulator hot path: one virtual second of a saturated 1 Gbit/s link. A sender node keeps
 * its backpressured port's channel full of 1500-byte frames; a receiver node drains and counts.
 * About 83k frames and ~330k events per iteration; the target is well under 1 s of wall time.
 *
 * Run: deno bench -A bench/sim_bench.ts
 *
 * @module
 */

import { dumbbell, pointToPoint, Simulator } from "../sim/mod.ts";
import type { SimNode, SimPort } from "../sim/mod.ts";
import { NEVER, SECOND } from "../stacks/time.ts";
import type { Instant } from "../stacks/time.ts";

const FRAME = 1500;
const HEADER = new Uint8Array([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);

/** Fills the port until it pushes back; woken again when the channel has room. */
class Saturator implements SimNode {
  sent = 0;
  readonly #header = HEADER.slice();
  constructor(readonly port: SimPort, dst?: Uint8Array) {
    if (dst !== undefined) this.#header.set(dst, 0);
    this.#header.set(port.mac, 6);
  }
  poll(_now: Instant): void {
    const port = this.port;
    for (;;) {
      const buf = port.transmitBuffer(FRAME);
      if (buf === null) break;
      buf.set(this.#header);
      port.commit(FRAME);
      this.sent++;
    }
    port.flush();
  }
  pollAt(): Instant {
    return this.sent === 0 ? 0 : NEVER;
  }
}

/** Drains and counts. */
class Counter implements SimNode {
  frames = 0;
  bytes = 0;
  readonly #onFrame = (f: Uint8Array): void => {
    this.frames++;
    this.bytes += f.length;
  };
  constructor(readonly port: SimPort) {}
  poll(_now: Instant): void {
    this.port.receive(this.#onFrame, Number.POSITIVE_INFINITY);
  }
  pollAt(): Instant {
    return NEVER;
  }
}

/** Runs one virtual second; returns frames received. */
export function saturatedSecond(): { frames: number; events: number } {
  const sim = new Simulator({ seed: 1 });
  const { a, b } = pointToPoint(sim, {
    rateBps: 1_000_000_000,
    delay: 10_000,
    queuePackets: 100,
    backpressure: true,
  });
  const tx = new Saturator(a);
  const rx = new Counter(b);
  sim.addNode(tx, [a]);
  sim.addNode(rx, [b]);
  sim.runUntil(SECOND);
  return { frames: rx.frames, events: sim.eventsProcessed };
}

const check = saturatedSecond();
// 1 s / 12 us per 1500-byte frame = 83333 frames (minus the first 10 us of propagation).
if (check.frames < 83_000) throw new Error(`link not saturated: ${check.frames} frames`);

Deno.bench({
  name: "sim: 1 virtual second of a saturated 1 Gbit/s link (83k x 1500 B frames)",
  fn(): void {
    saturatedSecond();
  },
});

/** Four saturating senders through a dumbbell: switch forwarding plus a drop-tail bottleneck. */
export function dumbbellSecond(): { frames: number; drops: number } {
  const sim = new Simulator({ seed: 1 });
  const db = dumbbell(sim, {
    n: 4,
    bottleneck: { rateBps: 1_000_000_000, delay: 1_000_000, queuePackets: 100, ecnK: 20 },
    access: { rateBps: 1_000_000_000, delay: 10_000, queuePackets: 100 },
    backpressure: true,
  });
  const counters: Counter[] = [];
  for (let i = 0; i < 4; i++) {
    sim.addNode(new Saturator(db.senders[i]!, db.receivers[i]!.mac), [db.senders[i]!]);
    const c = new Counter(db.receivers[i]!);
    sim.addNode(c, [db.receivers[i]!]);
    counters.push(c);
  }
  sim.runUntil(SECOND);
  return {
    frames: counters.reduce((n, c) => n + c.frames, 0),
    drops: db.bottleneck.stats.droppedQueue,
  };
}

Deno.bench({
  name: "sim: 1 virtual second, 4 senders through a 1 Gbit/s dumbbell (switches, drop-tail)",
  fn(): void {
    dumbbellSecond();
  },
});
