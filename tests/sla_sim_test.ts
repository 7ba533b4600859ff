/**
 * Per-guest SLAs on real TCP flows: one NSM host (one Interface + TcpStack) carries two
 * guests' bulk connections to a receiver across a simulated 20 Mbit/s, 20 ms bottleneck. The
 * `EgressScheduler` gates every byte the "guests" hand to the stack (as the ServiceLib's SEND
 * path will), with the link rate set below the bottleneck's payload capacity so the sold link,
 * not TCP's own dynamics, decides the shares. Goodput is what the receiving application read,
 * measured after a 2 s warm-up.
 */

import assert from "node:assert/strict";
import { type Instant, MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { dumbbell } from "../sim/topology.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { TcpHost } from "./support/tcp_sim_hosts.ts";
import { EgressScheduler, type GuestSla, NO_GUEST } from "../nsm/sla.ts";
import { ControlHandler } from "../nsm/control_proto.ts";
import { SlaSendQueue } from "../nsm/sla_queue.ts";

/** The NSM host: TcpHost whose pollAt also wakes it when the scheduler has bytes to grant. */
class NsmHost extends TcpHost {
  sched: EgressScheduler | null = null;
  #last: Instant = 0;
  override poll(now: Instant): void {
    this.#last = now;
    super.poll(now);
  }
  override pollAt(): Instant {
    const t = super.pollAt();
    if (this.sched === null) return t;
    return Math.min(t, this.sched.nextAt(this.#last));
  }
}

interface Outcome {
  /** Goodput per guest over [warmup, end], bytes/s. */
  goodput: number[];
  /** Bytes the scheduler granted per guest. */
  granted: number[];
}

const BOTTLENECK_BPS = 20_000_000;
const WARMUP = 2 * SECOND;
const END = 12 * SECOND;
const BIG = 1 << 30;

/** Runs two guests' bulk flows; `slas` null runs them without any scheduler (the control). */
function run(
  linkRate: number,
  slas: [GuestSla, GuestSla] | null,
  change?: { at: number; apply: (sched: EgressScheduler, now: number) => void },
  viaQueue = false,
  idleGuest = false,
): Outcome {
  const sim = new Simulator({ seed: 11 });
  const db = dumbbell(sim, {
    n: 1,
    bottleneck: { rateBps: BOTTLENECK_BPS, delay: 10 * MILLISECOND, queuePackets: 100 },
    access: { rateBps: 10 * BOTTLENECK_BPS, delay: 0, queuePackets: 10_000 },
  });
  const nsm = new NsmHost(db.senders[0]!, "198.18.1.1", "fd00:1::1", 1);
  const rx = new TcpHost(db.receivers[0]!, "198.18.1.2", "fd00:1::2", 2);
  sim.addNode(nsm, [db.senders[0]!]);
  sim.addNode(rx, [db.receivers[0]!]);
  const ports = [5001, 5002];
  const listeners = ports.map((p) => rx.tcp.listen(null, p, 8));
  const conns: number[] = [];
  const got = [0, 0];
  const atWarmup = [0, 0];
  const scratch = new Uint8Array(65536);
  rx.app = (now) => {
    for (let g = 0; g < 2; g++) {
      if (conns[g] === undefined) {
        const c = rx.tcp.accept(listeners[g]!);
        if (c >= 0) conns[g] = c;
      }
      const c = conns[g];
      if (c === undefined) continue;
      for (;;) {
        const n = rx.tcp.recv(c, scratch, now);
        if (n <= 0) break;
        got[g]! += n;
      }
    }
  };
  const sched = slas === null
    ? null
    : new EgressScheduler({ linkRate, linkBurst: 32 * 1024, minGrant: 1448 }, 0);
  if (sched !== null) {
    // A third guest attached with the default SLA (weight 1) that never sends.
    if (idleGuest) sched.setGuest(3, {}, 0);
    sched.setGuest(1, slas![0], 0);
    sched.setGuest(2, slas![1], 0);
  }
  nsm.sched = sched;
  const data = new Uint8Array(65536).fill(0x5a);
  const socks = ports.map((p) => nsm.tcp.connect(IpAddress.parse("198.18.1.2"), p, 0));
  const handles = socks.map((id) => ({ id }));
  const queue = sched !== null && viaQueue ? new SlaSendQueue<{ id: number }>(sched) : null;
  let drainNow = 0;
  const sendFn = (h: { id: number }, max: number): number =>
    nsm.tcp.send(h.id, data.subarray(0, Math.min(max, data.length)), drainNow);
  nsm.app = (now) => {
    for (let g = 0; g < 2; g++) if (nsm.tcp.state(socks[g]!) !== "ESTABLISHED") return;
    if (sched === null) {
      for (const s of socks) while (nsm.tcp.send(s, data, now) > 0) { /* fill */ }
      return;
    }
    if (queue !== null) {
      // The ServiceLib's way: sockets with parked bytes, drained in the scheduler's order.
      for (let g = 0; g < 2; g++) queue.update(g + 1, handles[g]!, BIG, now);
      drainNow = now;
      queue.drain(now, sendFn, 10_000);
      return;
    }
    // Guests always have data; the stack takes what its send buffer has room for.
    for (let g = 0; g < 2; g++) sched.setBacklog(g + 1, BIG, now);
    for (let i = 0; i < 10_000; i++) {
      const g = sched.next(now);
      if (g === NO_GUEST) break;
      const n = nsm.tcp.send(
        socks[g - 1]!,
        data.subarray(0, Math.min(sched.grant, data.length)),
        now,
      );
      if (n === 0) {
        sched.setBacklog(g, 0, now); // send buffer full: the guest waits for WRITABLE
        continue;
      }
      sched.consume(g, n, now);
    }
  };
  const start = change === undefined ? WARMUP : change.at + WARMUP;
  if (change !== undefined) {
    sim.runUntil(change.at);
    change.apply(sched!, sim.now);
    sim.wake(nsm);
  }
  sim.runUntil(start);
  atWarmup[0] = got[0]!;
  atWarmup[1] = got[1]!;
  sim.runUntil(END);
  const secs = (END - start) / SECOND;
  assert.equal(nsm.tcp.counters.internalErrors, 0);
  return {
    goodput: got.map((b, i) => (b - atWarmup[i]!) / secs),
    granted: sched === null ? [0, 0] : [sched.sent(1), sched.sent(2)],
  };
}

// Payload capacity of the bottleneck: 1448 of every 1514 frame bytes (TCP timestamps on).
const CAPACITY = (BOTTLENECK_BPS / 8) * (1448 / 1514);
const LINK = Math.round(CAPACITY * 0.92);

Deno.test("SLA: without a scheduler two bulk TCP flows share the bottleneck about evenly (control)", () => {
  const r = run(0, null);
  const ratio = r.goodput[0]! / r.goodput[1]!;
  assert.ok(ratio > 0.6 && ratio < 1.6, `ratio ${ratio}`);
});

Deno.test("SLA: guaranteed shares 3:1 split a saturated link 3:1 within 5% over real TCP flows", () => {
  const r = run(LINK, [{ minRate: Math.round(LINK * 0.75) }, { minRate: Math.round(LINK * 0.25) }]);
  const [a, b] = r.goodput as [number, number];
  const ratio = a / b;
  assert.ok(Math.abs(ratio - 3) <= 0.15, `ratio ${ratio.toFixed(3)} (a ${a}, b ${b})`);
  // The scheduler, not the bottleneck, is the limit: together they get the sold rate (±5%).
  assert.ok(Math.abs((a + b) / LINK - 1) <= 0.05, `total ${a + b} of ${LINK}`);
});

Deno.test("SLA: the same 3:1 split within 5% when the ServiceLib adapter SlaSendQueue drives the sends", () => {
  const r = run(
    LINK,
    [{ minRate: Math.round(LINK * 0.75) }, { minRate: Math.round(LINK * 0.25) }],
    undefined,
    true,
  );
  const [a, b] = r.goodput as [number, number];
  assert.ok(Math.abs(a / b - 3) <= 0.15, `ratio ${(a / b).toFixed(3)} (a ${a}, b ${b})`);
  assert.ok(Math.abs((a + b) / LINK - 1) <= 0.05, `total ${a + b} of ${LINK}`);
});

Deno.test("SLA: the 3:1 split holds with a third guest attached at the default weight 1 but idle", () => {
  // The ops test saw 1.1 vs 166 and then 149 vs 26 Mbit/s here: the idle guest's weight 1
  // against guarantees in bytes/s put both guaranteed guests at the quantum cap (equal quanta,
  // turns of many seconds).
  const r = run(
    LINK,
    [{ minRate: Math.round(LINK * 0.75) }, { minRate: Math.round(LINK * 0.25) }],
    undefined,
    true,
    true,
  );
  const [a, b] = r.goodput as [number, number];
  assert.ok(Math.abs(a / b - 3) <= 0.15, `ratio ${(a / b).toFixed(3)} (a ${a}, b ${b})`);
  assert.ok(Math.abs((a + b) / LINK - 1) <= 0.05, `total ${a + b} of ${LINK}`);
});

Deno.test("SLA: a guest limited to 4 Mbit/s gets 4 Mbit/s within 3% and the other guest the rest", () => {
  const limit = 500_000; // bytes/s
  const r = run(LINK, [{}, { rate: limit, burst: 16 * 1024 }]);
  const [a, b] = r.goodput as [number, number];
  assert.ok(Math.abs(b / limit - 1) <= 0.03, `limited guest ${b} B/s vs ${limit}`);
  assert.ok(Math.abs(a / (LINK - limit) - 1) <= 0.05, `other guest ${a} B/s vs ${LINK - limit}`);
});

Deno.test("SLA: a limit changed at run time through ctl's sla.set holds the guest to the new rate within 3%", () => {
  let warnings: string[] | null = null;
  const r = run(LINK, [{}, { rate: 500_000, burst: 16 * 1024 }], {
    at: 5 * SECOND,
    apply: (sched, now) => {
      // What the control server runs for `ctl sla set 2 rate=2mbit` (synchronously here, at
      // this virtual instant).
      const h = new ControlHandler({ stacks: [], sla: sched, clock: () => now });
      warnings = h.slaSet({ guest: 2, spec: "rate=2mbit" }).warnings;
    },
  });
  assert.deepEqual(warnings, []);
  const [a, b] = r.goodput as [number, number];
  assert.ok(Math.abs(b / 250_000 - 1) <= 0.03, `limited guest after the change: ${b} B/s`);
  assert.ok(Math.abs(a / (LINK - 250_000) - 1) <= 0.05, `other guest ${a} B/s`);
});
