import assert from "node:assert/strict";
import { Simulator } from "./simulator.ts";
import type { SimNode } from "./simulator.ts";
import { dumbbell, pointToPoint } from "./topology.ts";
import type { SimPort } from "./port.ts";
import type { Prng } from "./prng.ts";
import { buildFrame, sendAt, Sink } from "./testing.ts";
import type { Instant } from "../stacks/time.ts";

/** Sends ECT(0) IPv4 frames to `dst` at random intervals (from its own forked stream). */
class Source implements SimNode {
  #next = 0;
  #sent = 0;
  readonly #frame: Uint8Array;
  constructor(
    readonly port: SimPort,
    dst: Uint8Array,
    readonly rng: Prng,
    readonly count: number,
  ) {
    this.#frame = buildFrame({ src: port.mac, dst, ethertype: 0x0800, ecn: 2, length: 1200 });
  }
  poll(now: Instant): void {
    while (this.#sent < this.count && this.#next <= now) {
      const buf = this.port.transmitBuffer(this.#frame.length);
      if (buf === null) break;
      buf.set(this.#frame);
      buf[40] = this.#sent & 0xff; // vary the payload per frame
      this.port.commit(buf.length);
      this.#sent++;
      this.#next = now + 1 + this.rng.nextInt(300_000);
    }
    this.port.flush();
  }
  pollAt(): Instant {
    return this.#sent < this.count ? this.#next : Number.POSITIVE_INFINITY;
  }
}

/** Runs an impaired 3-flow dumbbell and returns the SHA-256 of its delivery trace. */
async function traceHash(seed: number): Promise<string> {
  const sim = new Simulator({ seed });
  const db = dumbbell(sim, {
    n: 3,
    bottleneck: {
      rateBps: 100_000_000,
      delay: 5_000_000,
      queuePackets: 20,
      ecnK: 5,
      loss: 0.01,
      reorder: 0.02,
      duplicate: 0.01,
      corrupt: 0.01,
    },
    access: { rateBps: 1_000_000_000, delay: 10_000 },
  });
  const chunks: Uint8Array[] = [];
  const enc = new TextEncoder();
  sim.onDeliver = (now, port, frame) => {
    chunks.push(enc.encode(`${now} ${port.name} ${frame.length}\n`), frame.slice());
  };
  for (let i = 0; i < 3; i++) {
    const src = new Source(db.senders[i]!, db.receivers[i]!.mac, sim.forkRng(`app${i}`), 300);
    sim.addNode(src, [db.senders[i]!]);
    new Sink(sim, db.receivers[i]!, false);
  }
  sim.runUntil(2_000_000_000);
  const st = db.bottleneck.stats;
  assert.ok(st.droppedLoss > 0 && st.marked > 0, JSON.stringify(st.snapshot()));
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("Same seed gives a bit-identical delivery trace; a different seed does not", async () => {
  const a = await traceHash(1234);
  const b = await traceHash(1234);
  const c = await traceHash(1235);
  assert.equal(a, b);
  assert.notEqual(a, c);
});

Deno.test("dumbbell() delivers each sender's frames to its receiver across the bottleneck", () => {
  const sim = new Simulator();
  const db = dumbbell(sim, {
    n: 2,
    bottleneck: { rateBps: 10_000_000, delay: 1_000_000, queuePackets: 10 },
    access: (i) => ({ rateBps: 1_000_000_000, delay: 1_000 + i * 1_000 }),
  });
  const sinks = db.receivers.map((r) => new Sink(sim, r));
  const senderSinks = db.senders.map((s) => new Sink(sim, s));
  sendAt(
    sim,
    db.senders[0]!,
    0,
    buildFrame({ src: db.senders[0]!.mac, dst: db.receivers[0]!.mac }),
  );
  sendAt(
    sim,
    db.senders[1]!,
    0,
    buildFrame({ src: db.senders[1]!.mac, dst: db.receivers[1]!.mac }),
  );
  sendAt(sim, db.receivers[1]!, 0, buildFrame({ src: db.receivers[1]!.mac })); // broadcast (ARP)
  sim.runUntil(100_000_000);
  assert.deepEqual(sinks.map((s) => s.count), [2, 1]); // r0 also gets r1's broadcast
  assert.deepEqual(senderSinks.map((s) => s.count), [1, 1]);
  assert.equal(db.bottleneck.stats.framesOut, 2);
  assert.equal(db.bottleneckReverse.stats.framesOut, 1);
  // Sender 0: access 512 ns + 1 us, bottleneck 51200 ns + 1 ms, access 512 + 1 us.
  assert.equal(sinks[0]!.frames[1]!.time, 512 + 1_000 + 51_200 + 1_000_000 + 512 + 1_000);
});

Deno.test("Adding a link does not change another link's loss pattern", () => {
  function lostFrames(extraLink: boolean): number[] {
    const sim = new Simulator({ seed: 5 });
    if (extraLink) pointToPoint(sim, { rateBps: 1e9, delay: 0, names: ["x", "y"], loss: 0.5 });
    const { a, b } = pointToPoint(sim, { rateBps: 1e9, delay: 0, loss: 0.3 });
    const sink = new Sink(sim, b);
    for (let i = 0; i < 200; i++) sendAt(sim, a, i * 1_000, buildFrame({ seq: i }));
    sim.runUntil(1_000_000);
    const got = new Set(sink.frames.map((f) => new DataView(f.bytes.buffer).getUint32(14)));
    return Array.from({ length: 200 }, (_, i) => i).filter((i) => !got.has(i));
  }
  const base = lostFrames(false);
  assert.ok(base.length > 20);
  assert.deepEqual(lostFrames(true), base);
});
