import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { EgressScheduler } from "./sla.ts";
import { SlaSendQueue } from "./sla_queue.ts";

/** A fake socket: takes up to `room` bytes per call (Infinity = everything). */
class Sock {
  taken = 0;
  constructor(readonly name: string, public room = Infinity) {}
}

function sender(): (s: Sock, max: number) => number {
  return (s, max) => {
    const n = Math.min(max, s.room);
    s.taken += n;
    if (s.room !== Infinity) s.room -= n;
    return n;
  };
}

Deno.test("SlaSendQueue drains guests in the scheduler's 3:1 proportion and a guest's sockets round robin", () => {
  const sched = new EgressScheduler({
    linkRate: 1_000_000,
    linkBurst: 10_000,
    quantum: 3000,
    minGrant: 1000,
  }, 0);
  sched.setGuest(1, { weight: 3 }, 0);
  sched.setGuest(2, { weight: 1 }, 0);
  const q = new SlaSendQueue<Sock>(sched);
  const a1 = new Sock("a1"), a2 = new Sock("a2"), b1 = new Sock("b1");
  q.update(1, a1, 1e12, 0);
  q.update(1, a2, 1e12, 0);
  q.update(2, b1, 1e12, 0);
  assert.equal(q.queued, 3);
  const send = sender();
  let now = 0;
  for (let i = 0; i < 100_000 && now <= 2 * SECOND; i++) {
    if (q.drain(now, send, 64) === 0) now = q.nextAt(now);
  }
  const a = a1.taken + a2.taken;
  const b = b1.taken;
  assert.ok(Math.abs(a / b - 3) < 0.02, `a ${a} b ${b}`);
  assert.ok(Math.abs(a1.taken - a2.taken) <= 9000, `a1 ${a1.taken} a2 ${a2.taken}`);
  assert.equal(q.pending(1), 2e12 - a);
  assert.equal(sched.status(now).find((s) => s.guest === 1)!.backlog, 2e12 - a, "in sync");
});

Deno.test("SlaSendQueue takes a full socket out until update() and serves the guest's other socket", () => {
  const sched = new EgressScheduler({ quantum: 4000, minGrant: 1 }, 0);
  const q = new SlaSendQueue<Sock>(sched);
  const full = new Sock("full", 1500);
  const ok = new Sock("ok");
  q.update(1, full, 10_000, 0);
  q.update(1, ok, 10_000, 0);
  const send = sender();
  assert.equal(q.drain(0, send, 1), 1500, "the full socket took what it had room for");
  assert.equal(q.drain(0, send, 1), 2500, "then the other socket, for the rest of the deficit");
  assert.equal(q.drain(0, send, 1), 0, "the full socket took nothing and left the queue");
  assert.equal(q.queued, 1);
  assert.equal(q.pending(1), 7500);
  q.drain(0, send, 10);
  assert.equal(ok.taken, 10_000);
  assert.equal(q.queued, 0);
  assert.equal(q.drain(0, send), 0);
  full.room = Infinity;
  q.update(1, full, 8500, 0); // WRITABLE again
  q.drain(0, send, 10);
  assert.equal(full.taken, 10_000);
  assert.equal(q.pending(1), 0);
});

Deno.test("SlaSendQueue.update/remove/removeGuest keep the scheduler's backlog equal to the queue's", () => {
  const sched = new EgressScheduler({ minGrant: 1 }, 0);
  const q = new SlaSendQueue<Sock>(sched);
  const s1 = new Sock("1"), s2 = new Sock("2"), s3 = new Sock("3");
  q.update(1, s1, 100, 0);
  q.update(1, s2, 50, 0);
  q.update(2, s3, 70, 0);
  const backlog = (g: number): number => sched.status(0).find((s) => s.guest === g)!.backlog;
  assert.equal(backlog(1), 150);
  q.update(1, s1, 30, 0);
  assert.equal(backlog(1), 80);
  q.update(2, s2, 20, 0); // socket moved to guest 2 (not expected, but consistent)
  assert.equal(backlog(1), 30);
  assert.equal(backlog(2), 90);
  q.remove(s3, 0);
  assert.equal(backlog(2), 20);
  q.removeGuest(1, 0);
  assert.equal(backlog(1), 0);
  assert.equal(q.queued, 1);
  assert.equal(q.drain(MILLISECOND, sender()), 20);
});
