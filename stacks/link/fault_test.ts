import assert from "node:assert/strict";
import { FaultInjector, FaultSpecError } from "./fault.ts";
import type { FaultInjectorOptions } from "./fault.ts";
import type { Link } from "./link.ts";
import { pointToPoint, Prng, Simulator } from "../../sim/mod.ts";
import type { SimNode } from "../../sim/mod.ts";
import { NEVER } from "../time.ts";
import type { Instant } from "../time.ts";

const N = 2_000;
const LEN = 200;

/** Sends N numbered frames, 4 per poll every 10 us, through `link`. */
class Burster implements SimNode {
  sent = 0;
  #next = 0;
  constructor(readonly link: Link) {}
  poll(now: Instant): void {
    for (let k = 0; k < 4 && this.sent < N; k++) {
      const b = this.link.transmitBuffer(LEN);
      if (b === null) break;
      b.fill(0xaa);
      b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
      new DataView(b.buffer, b.byteOffset).setUint32(14, this.sent);
      this.link.commit(LEN);
      this.sent++;
    }
    this.link.flush();
    this.#next = now + 10_000;
  }
  pollAt(): Instant {
    return this.sent < N ? this.#next : NEVER;
  }
}

/** Receives everything from `link` (polled every 50 us too, so held frames drain). */
class Collector implements SimNode {
  readonly seqs: number[] = [];
  damaged = 0;
  #next = 0;
  readonly #onFrame = (f: Uint8Array): void => {
    this.seqs.push(new DataView(f.buffer, f.byteOffset).getUint32(14));
    let bad = f.length !== LEN;
    for (let i = 18; i < f.length && !bad; i++) bad = f[i] !== 0xaa;
    if (f[12] !== 0x88 || f[13] !== 0xb5) bad = true;
    if (bad) this.damaged++;
  };
  constructor(readonly link: Link) {}
  poll(now: Instant): void {
    this.link.receive(this.#onFrame, 16);
    this.#next = now + 50_000;
  }
  pollAt(): Instant {
    return this.#next;
  }
}

interface Run {
  seqs: number[];
  damaged: number;
  injector: FaultInjector;
}

function run(side: "rx" | "tx", spec: FaultInjectorOptions["rx"], seed = 1): Run {
  const sim = new Simulator();
  const { a, b } = pointToPoint(sim, { rateBps: 1e9, delay: 1_000, queuePackets: 10_000 });
  const opts: FaultInjectorOptions = { rng: new Prng(seed) };
  if (side === "rx") opts.rx = spec!;
  else opts.tx = spec!;
  const injector = new FaultInjector(side === "rx" ? b : a, opts);
  const sender = new Burster(side === "tx" ? injector : a);
  const collector = new Collector(side === "rx" ? injector : b);
  sim.addNode(sender, [a]);
  sim.addNode(collector, [b]);
  sim.runUntil(1_000_000_000);
  return { seqs: collector.seqs, damaged: collector.damaged, injector };
}

function inversions(seqs: number[]): number {
  let n = 0, max = -1;
  for (const s of seqs) {
    if (s < max) n++;
    else max = s;
  }
  return n;
}

for (const side of ["rx", "tx"] as const) {
  const statsOf = (r: Run) => side === "rx" ? r.injector.rxStats : r.injector.txStats;

  Deno.test(`FaultInjector ${side}: drops about p of frames (5 sd) and counts them`, () => {
    const r = run(side, { drop: 0.3 });
    const s = statsOf(r);
    assert.equal(s.frames, N);
    assert.ok(Math.abs(s.dropped - 0.3 * N) < 5 * Math.sqrt(N * 0.21), `dropped ${s.dropped}`);
    assert.equal(r.seqs.length, N - s.dropped);
    assert.equal(new Set(r.seqs).size, r.seqs.length);
  });

  Deno.test(`FaultInjector ${side}: duplicates are delivered and counted`, () => {
    const r = run(side, { duplicate: 0.1 });
    const s = statsOf(r);
    assert.ok(s.duplicated > 100, `duplicated ${s.duplicated}`);
    assert.equal(r.seqs.length, N + s.duplicated);
    assert.equal(new Set(r.seqs).size, N);
  });

  Deno.test(`FaultInjector ${side}: corruption flips payload bits only, counted exactly`, () => {
    const r = run(side, { corrupt: 0.1, corruptSkip: 18 });
    const s = statsOf(r);
    assert.ok(s.corrupted > 100);
    assert.equal(r.damaged, s.corrupted);
    assert.equal(r.seqs.length, N);
  });

  Deno.test(`FaultInjector ${side}: reordering delays frames without losing any`, () => {
    const r = run(side, { reorder: 0.1 });
    const s = statsOf(r);
    assert.ok(s.reordered > 50, `reordered ${s.reordered}`);
    assert.ok(inversions(r.seqs) > 50);
    assert.deepEqual([...r.seqs].sort((x, y) => x - y), Array.from({ length: N }, (_, i) => i));
  });
}

Deno.test("FaultInjector with the same seed injects the same faults", () => {
  const spec = { drop: 0.05, duplicate: 0.05, reorder: 0.05, corrupt: 0.05 };
  assert.deepEqual(run("rx", spec, 7).seqs, run("rx", spec, 7).seqs);
  assert.notDeepEqual(run("rx", spec, 7).seqs, run("rx", spec, 8).seqs);
});

Deno.test("FaultInjector rejects probabilities outside [0, 1] with FaultSpecError", () => {
  const sim = new Simulator();
  const { a } = pointToPoint(sim, { rateBps: 1e9, delay: 0 });
  assert.throws(
    () => new FaultInjector(a, { rng: new Prng(1), rx: { drop: 1.5 } }),
    FaultSpecError,
  );
});
