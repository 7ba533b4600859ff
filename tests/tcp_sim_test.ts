/**
 * Full-stack TCP over the simulated network: Interface + TcpStack on both ends of a
 * pointToPoint link with channel impairments. Every transfer is checked by SHA-256 and must
 * finish within a bounded virtual time.
 */
import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import type { ChannelParams } from "../sim/channel.ts";
import type { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { Endpoint, payload, sha256 } from "./support/tcp_pair.ts";
import { tcpPointToPoint } from "./support/tcp_sim_hosts.ts";

const MB10 = 10 * 1024 * 1024;

interface Result {
  time: number;
  retransmits: number;
  drops: Record<string, number>;
  /** Frames the a->b channel marked CE. */
  marked: number;
  /** Frames the a->b channel dropped from its queue. */
  queueDrops: number;
}

async function simTransfer(
  channel: ChannelParams,
  seed: number,
  aToB: number,
  bToA: number,
  limit: number,
  v6 = false,
): Promise<Result> {
  const sim = new Simulator({ seed });
  const net = tcpPointToPoint(sim, channel);
  const { a, b } = net;
  const dst: IpAddress = v6 ? net.b6 : net.b4;
  const l = b.tcp.listen(null, 5001, 16);
  const dataA = payload(aToB, seed * 3 + 1);
  const dataB = payload(bToA, seed * 3 + 2);
  const ea = new Endpoint(a.tcp, -1, dataA, bToA);
  const eb = new Endpoint(b.tcp, -1, dataB, aToB);
  a.app = (now) => {
    if (ea.id < 0) ea.id = a.tcp.connect(dst, 5001, now);
    ea.pump(now);
  };
  b.app = (now) => {
    eb.acceptFrom(l);
    eb.pump(now);
  };
  sim.wake(a);
  let t = 0;
  while (!(ea.finished && eb.finished) && t < limit) {
    t += 100 * MILLISECOND;
    sim.runUntil(t);
  }
  for (const [name, e] of [["a", ea], ["b", eb]] as const) {
    assert.equal(e.error, null, `${name}: ${e.error}`);
  }
  assert.equal(a.tcp.lastInternalError, null, String(a.tcp.lastInternalError));
  assert.equal(b.tcp.lastInternalError, null, String(b.tcp.lastInternalError));
  assert.ok(
    ea.finished && eb.finished,
    `not finished after ${limit / SECOND} s: b got ${eb.got}/${aToB}, a got ${ea.got}/${bToA}`,
  );
  assert.equal(await sha256(eb.received), await sha256(dataA), "a -> b bytes differ");
  assert.equal(await sha256(ea.received), await sha256(dataB), "b -> a bytes differ");
  const drops = { ...a.tcp.counters.snapshot() };
  for (const [k, v] of Object.entries(b.tcp.counters.snapshot())) drops[k] = (drops[k] ?? 0) + v;
  return {
    time: sim.now,
    retransmits: a.tcp.counters.retransmits + b.tcp.counters.retransmits,
    drops,
    marked: net.ab.stats.marked,
    queueDrops: net.ab.stats.droppedQueue,
  };
}

const link = (extra: Partial<ChannelParams> = {}): ChannelParams => ({
  rateBps: 100_000_000,
  delay: 5 * MILLISECOND,
  queuePackets: 200,
  ...extra,
});

function report(name: string, r: Result): void {
  console.log(
    `${name}: ${(r.time / SECOND).toFixed(2)} s virtual, ${r.retransmits} retransmits, ` +
      `${r.marked} CE marks, ${r.queueDrops} queue drops, TCP drops ${JSON.stringify(r.drops)}`,
  );
}

Deno.test("sim: 10 MB a->b over a clean 100 Mbit/s link arrives intact", async () => {
  const r = await simTransfer(link(), 1, MB10, 0, 10 * SECOND);
  report("clean a->b", r);
  assert.equal(r.retransmits, 0);
});

Deno.test("sim: 10 MB b->a over IPv6 arrives intact", async () => {
  const r = await simTransfer(link(), 2, 0, MB10, 10 * SECOND, true);
  report("clean b->a v6", r);
});

Deno.test("sim: 10 MB both ways at once with 0% loss", async () => {
  const r = await simTransfer(link(), 3, MB10, MB10, 20 * SECOND);
  report("both ways 0%", r);
});

Deno.test("sim: 10 MB both ways at once with 1% loss", async () => {
  const r = await simTransfer(link({ loss: 0.01 }), 4, MB10, MB10, 60 * SECOND);
  report("both ways 1%", r);
  assert.ok(r.retransmits > 0);
});

Deno.test("sim: 10 MB both ways at once with 5% loss", async () => {
  const r = await simTransfer(link({ loss: 0.05 }), 5, MB10, MB10, 180 * SECOND);
  report("both ways 5%", r);
  assert.ok(r.retransmits > 0);
});

Deno.test("sim: 10 MB both ways with reordering, duplication and corruption", async () => {
  const r = await simTransfer(
    link({ reorder: 0.02, reorderDelay: 2 * MILLISECOND, duplicate: 0.01, corrupt: 0.005 }),
    6,
    MB10,
    MB10,
    60 * SECOND,
  );
  report("reorder+dup+corrupt", r);
});

Deno.test("sim: ECN end to end: a marking queue slows the sender without loss", async () => {
  const r = await simTransfer(link({ queuePackets: 100, ecnK: 20 }), 7, MB10, 0, 10 * SECOND);
  report("ecn", r);
  assert.ok(r.marked > 0, "the queue marked CE");
  assert.equal(r.queueDrops, 0, "ECN kept the queue from overflowing");
  assert.equal(r.retransmits, 0);
});
