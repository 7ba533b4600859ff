import assert from "node:assert/strict";
import { NeighborCache, type NeighborDropReason, type NeighborSink } from "./neighbor.ts";
import { SECOND } from "../../time.ts";

class RecordingSink implements NeighborSink {
  solicits: { target: string; unicast: boolean; at: number }[] = [];
  sent: { bytes: number[]; mac: number[] }[] = [];
  drops: NeighborDropReason[] = [];
  solicit(_v: 4 | 6, target: Uint8Array, unicast: Uint8Array | null, now: number): void {
    this.solicits.push({ target: target.join("."), unicast: unicast !== null, at: now });
  }
  transmitQueued(_v: 4 | 6, packet: Uint8Array, mac: Uint8Array): void {
    this.sent.push({ bytes: [...packet], mac: [...mac] });
  }
  drop(reason: NeighborDropReason): void {
    this.drops.push(reason);
  }
}

const A = new Uint8Array([198, 18, 0, 2]);
const B = new Uint8Array([198, 18, 0, 3]);
const MAC = new Uint8Array([2, 0, 0, 0, 0, 2]);

Deno.test("NeighborCache.enqueue() solicits once, queues, and flushes in order on confirm", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink);
  assert.equal(c.lookup(4, A, 0), null);
  assert.ok(c.enqueue(4, A, new Uint8Array([1]), 0));
  assert.ok(c.enqueue(4, A, new Uint8Array([2, 2]), 10));
  assert.equal(sink.solicits.length, 1, "the second packet must not send another request");
  assert.equal(sink.solicits[0]!.unicast, false);
  assert.equal(c.find(4, A)!.state, "incomplete");
  c.confirm(4, A, MAC, 100);
  assert.deepEqual(sink.sent.map((s) => s.bytes), [[1], [2, 2]]);
  assert.deepEqual(sink.sent[0]!.mac, [...MAC]);
  assert.equal(c.find(4, A)!.state, "reachable");
  assert.deepEqual([...c.lookup(4, A, 200)!], [...MAC]);
  assert.equal(c.queuedPackets, 0);
});

Deno.test("NeighborCache retransmits once per retransInterval, then fails and counts the queue", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { retransInterval: SECOND, maxProbes: 3 });
  c.enqueue(4, A, new Uint8Array([1]), 0);
  c.enqueue(4, A, new Uint8Array([2]), 0);
  assert.equal(c.pollAt(), SECOND);
  c.poll(SECOND / 2);
  assert.equal(sink.solicits.length, 1, "no request before the interval elapsed");
  c.poll(SECOND);
  c.poll(SECOND + 1);
  assert.equal(sink.solicits.length, 2);
  c.poll(2 * SECOND);
  assert.equal(sink.solicits.length, 3);
  c.poll(3 * SECOND);
  assert.equal(sink.solicits.length, 3, "maxProbes reached: fail instead of a 4th request");
  assert.equal(c.find(4, A), null);
  assert.deepEqual(sink.drops, ["neighbor-unreachable", "neighbor-unreachable"]);
  assert.equal(c.stats.failed, 1);
  assert.equal(c.queuedPackets, 0);
});

Deno.test("NeighborCache drops the oldest queued packet when the entry queue is full", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { queuePerEntry: 2 });
  for (let i = 1; i <= 3; i++) c.enqueue(4, A, new Uint8Array([i]), 0);
  assert.deepEqual(sink.drops, ["neighbor-queue-full"]);
  c.confirm(4, A, MAC, 1);
  assert.deepEqual(sink.sent.map((s) => s.bytes[0]), [2, 3]);
});

Deno.test("NeighborCache bounds the shared pool across entries", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { poolSlots: 2, queuePerEntry: 4 });
  c.enqueue(4, A, new Uint8Array([1]), 0);
  c.enqueue(4, A, new Uint8Array([2]), 0);
  // Pool is full and B has nothing queued to sacrifice: the new packet is dropped.
  assert.equal(c.enqueue(4, B, new Uint8Array([3]), 0), false);
  assert.deepEqual(sink.drops, ["neighbor-queue-full"]);
  // A has packets: its oldest makes room.
  assert.ok(c.enqueue(4, A, new Uint8Array([4]), 0));
  c.confirm(4, A, MAC, 1);
  assert.deepEqual(sink.sent.map((s) => s.bytes[0]), [2, 4]);
});

Deno.test("NeighborCache ages REACHABLE to STALE, probes unicast after DELAY, deletes on no answer", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, {
    reachableTime: 10 * SECOND,
    maxProbes: 2,
    delayFirstProbe: 5 * SECOND,
  });
  c.confirm(4, A, MAC, 0, true);
  assert.equal(c.pollAt(), 10 * SECOND);
  c.poll(10 * SECOND);
  assert.equal(c.find(4, A)!.state, "stale");
  assert.ok(c.lookup(4, A, 11 * SECOND) !== null, "a STALE entry is still usable");
  assert.equal(sink.solicits.length, 0, "DELAY first");
  assert.equal(c.pollAt(), 16 * SECOND);
  c.poll(16 * SECOND);
  assert.equal(sink.solicits.length, 1);
  assert.equal(sink.solicits[0]!.unicast, true);
  c.lookup(4, A, 16 * SECOND + 1);
  c.poll(16 * SECOND + 2);
  assert.equal(sink.solicits.length, 1, "probes are rate-limited");
  c.poll(17 * SECOND);
  assert.equal(sink.solicits.length, 2);
  c.poll(18 * SECOND);
  assert.equal(c.find(4, A), null);
});

Deno.test("NeighborCache.confirmReachable() cancels the DELAY probe", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { delayFirstProbe: 5 * SECOND });
  c.observe(4, A, MAC, 0, true);
  c.lookup(4, A, 1);
  c.confirmReachable(4, A, 2);
  c.poll(10 * SECOND);
  assert.equal(sink.solicits.length, 0);
  assert.equal(c.find(4, A)!.state, "reachable");
});

Deno.test("NeighborCache deletes an unused STALE entry after staleTimeout", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { staleTimeout: 5 * SECOND });
  c.observe(4, A, MAC, 0, true);
  assert.equal(c.find(4, A)!.state, "stale");
  assert.equal(c.pollAt(), 5 * SECOND);
  c.poll(5 * SECOND);
  assert.equal(c.size, 0);
});

Deno.test("NeighborCache.observe() does not create entries unless asked and marks changes STALE", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink);
  c.observe(4, A, MAC, 0, false);
  assert.equal(c.size, 0);
  c.confirm(4, A, MAC, 0, true);
  c.observe(4, A, MAC, 1, false);
  assert.equal(c.find(4, A)!.state, "reachable", "same MAC keeps REACHABLE");
  c.observe(4, A, new Uint8Array([2, 0, 0, 0, 0, 9]), 2, false);
  assert.equal(c.find(4, A)!.state, "stale");
  assert.equal(c.find(4, A)!.mac[5], 9);
});

Deno.test("NeighborCache evicts the least recently used entry when the table is full", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { maxEntries: 2 });
  c.confirm(4, A, MAC, 0, true);
  c.confirm(4, B, MAC, 5, true);
  c.lookup(4, A, 10); // A is now more recent than B
  const C = new Uint8Array([198, 18, 0, 4]);
  c.confirm(4, C, MAC, 20, true);
  assert.equal(c.size, 2);
  assert.equal(c.find(4, B), null);
  assert.ok(c.find(4, A) !== null);
  assert.equal(c.stats.evicted, 1);
});

Deno.test("NeighborCache keeps IPv4 and IPv6 keys apart and finds colliding chains", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { maxEntries: 300 });
  const v6 = new Uint8Array(16);
  v6[0] = 0xfd;
  for (let i = 0; i < 300; i++) {
    v6[15] = i & 0xff;
    v6[14] = i >> 8;
    c.confirm(6, v6, MAC, i, true);
  }
  assert.equal(c.size, 300);
  v6[15] = 7;
  v6[14] = 0;
  assert.ok(c.find(6, v6) !== null);
  assert.equal(c.find(4, A), null);
  c.remove(6, v6);
  assert.equal(c.find(6, v6), null);
  v6[15] = 8;
  assert.ok(c.find(6, v6) !== null);
});

Deno.test("NeighborCache refuses packets larger than a pool slot", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { slotSize: 100 });
  assert.equal(c.enqueue(4, A, new Uint8Array(101), 0), false);
  assert.deepEqual(sink.drops, ["neighbor-packet-too-big"]);
});

Deno.test("NeighborCache keeps its bounds and bookkeeping under random operations", () => {
  const sink = new RecordingSink();
  const c = new NeighborCache(sink, { maxEntries: 8, poolSlots: 10, queuePerEntry: 3 });
  let x = 99;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  let now = 0, rejected = 0;
  for (let i = 0; i < 5000; i++) {
    now += rnd(300) * 1_000_000;
    const addr = new Uint8Array([198, 18, 1, rnd(20)]);
    switch (rnd(6)) {
      case 0:
      case 1:
        if (!c.enqueue(4, addr, new Uint8Array(1 + rnd(50)), now)) rejected++;
        break;
      case 2:
        c.confirm(4, addr, MAC, now, rnd(2) === 0);
        break;
      case 3:
        c.observe(4, addr, MAC, now, rnd(2) === 0);
        break;
      case 4:
        c.lookup(4, addr, now);
        break;
      default:
        c.poll(now);
    }
    assert.ok(c.size <= 8);
    assert.ok(c.queuedPackets <= 10);
    let queued = 0, live = 0;
    c.forEach((e) => {
      live++;
      queued += e.queueCount;
      assert.equal(c.find(4, e.addressView()), e, "every live entry is findable");
      if (e.queueCount > 0) assert.equal(e.state, "incomplete", "only resolving entries queue");
    });
    assert.equal(live, c.size);
    assert.equal(queued, c.queuedPackets);
  }
  // Every queued packet was sent, dropped (counted), or is still waiting.
  assert.equal(c.stats.queued, c.stats.flushed + (sink.drops.length - rejected) + c.queuedPackets);
});

Deno.test("NeighborCache.generation changes when a mapping changes, not on refreshes or lookups", () => {
  const c = new NeighborCache(new RecordingSink(), { reachableTime: SECOND });
  let g = c.generation;
  const changed = (what: string): void => {
    assert.notEqual(c.generation, g, what);
    g = c.generation;
  };
  c.confirm(4, A, MAC, 0, true);
  changed("new entry");
  c.confirm(4, A, MAC, SECOND);
  c.observe(4, A, MAC, SECOND, false);
  c.confirmReachable(4, A, SECOND);
  const e = c.lookupEntry(4, A, SECOND);
  assert.ok(e !== null);
  c.touch(e, SECOND);
  c.poll(3 * SECOND); // REACHABLE -> STALE
  assert.equal(c.generation, g, "same MAC, reachability bookkeeping and lookups leave it");
  c.observe(4, A, new Uint8Array([2, 0, 0, 0, 0, 9]), 3 * SECOND, false);
  changed("MAC learned from an unconfirmed mapping");
  c.confirm(4, A, MAC, 3 * SECOND);
  changed("MAC changed by a confirmation");
  c.enqueue(4, B, new Uint8Array(20), 3 * SECOND);
  changed("INCOMPLETE entry created");
  c.confirm(4, B, MAC, 3 * SECOND);
  changed("INCOMPLETE entry resolved (same MAC bytes as a recycled entry may hold)");
  assert.ok(c.remove(4, A));
  changed("removed");
});

Deno.test("NeighborCache.touch() starts the DELAY of a STALE entry like lookup()", () => {
  const c = new NeighborCache(new RecordingSink(), {
    reachableTime: SECOND,
    delayFirstProbe: SECOND,
  });
  c.confirm(4, A, MAC, 0, true);
  const e = c.lookupEntry(4, A, 0)!;
  c.poll(2 * SECOND);
  assert.equal(e.state, "stale");
  c.touch(e, 2 * SECOND);
  assert.equal(e.lastUsed, 2 * SECOND);
  assert.equal(e.delayUntil, 3 * SECOND);
});
