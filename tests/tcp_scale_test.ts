/**
 * Scale: 10,000 concurrent established connections in one stack over the simulator, each
 * usable afterwards; reports the heap cost per idle connection.
 */
import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { WOULD_BLOCK } from "../stacks/tcpip/tcp/stack.ts";
import { tcpPointToPoint } from "./support/tcp_sim_hosts.ts";

const N = 10_000;

Deno.test("scale: 10,000 concurrent connections reach ESTABLISHED in one stack and each still works", () => {
  const sim = new Simulator({ seed: 9 });
  const net = tcpPointToPoint(sim, {
    rateBps: 1_000_000_000,
    delay: MILLISECOND,
    queuePackets: 4000,
  });
  const { a, b } = net;
  const heap0 = Deno.memoryUsage().heapUsed;
  const l = b.tcp.listen(null, 80, N);
  const clients: number[] = [];
  const servers: number[] = [];
  let opened = 0;
  a.app = (now) => {
    // 500 new connections per poll, so the SYN queue and the wire see bursts.
    for (let i = 0; i < 500 && opened < N; i++, opened++) {
      clients.push(a.tcp.connect(net.b4, 80, now));
    }
  };
  b.app = () => {
    for (let id = b.tcp.accept(l); id > 0; id = b.tcp.accept(l)) servers.push(id);
  };
  sim.wake(a);
  for (let t = 0; t < 30 * SECOND && servers.length < N; t += 10 * MILLISECOND) {
    sim.runUntil(t);
    if (opened < N) sim.wake(a);
  }
  assert.equal(servers.length, N, `accepted ${servers.length} of ${N}`);
  assert.equal(b.tcp.connectionCount, N);
  assert.equal(a.tcp.connectionCount, N);
  for (const c of clients) assert.equal(a.tcp.state(c), "ESTABLISHED");
  b.tcp.trimIdle();
  a.tcp.trimIdle();
  const heap1 = Deno.memoryUsage().heapUsed;
  const perConn = (heap1 - heap0) / (2 * N);
  console.log(
    `10,000 connections: ${(sim.now / SECOND).toFixed(2)} s virtual; heap grew ${
      ((heap1 - heap0) / 1e6).toFixed(1)
    } MB for ${2 * N} endpoints = ~${Math.round(perConn)} B per idle connection ` +
      `(no forced GC; see bench/tcp_memory.ts for the exact figure); cookies sent ${b.tcp.counters.cookiesSent}`,
  );
  // Loose bound (no forced GC here): eagerly allocated socket buffers would cost > 100 KB.
  assert.ok(perConn < 32_000, `${Math.round(perConn)} B per idle connection`);
  // Every connection still carries data: a sample of 100 echoes one message.
  const msg = new TextEncoder().encode("ping");
  const buf = new Uint8Array(16);
  const sample = clients.filter((_, i) => i % 100 === 0);
  for (const c of sample) assert.equal(a.tcp.send(c, msg, sim.now), 4);
  sim.wake(a);
  sim.runUntil(sim.now + 200 * MILLISECOND);
  let got = 0;
  for (const s of servers) {
    const n = b.tcp.recv(s, buf, sim.now);
    if (n !== WOULD_BLOCK) {
      assert.equal(n, 4);
      got++;
    }
  }
  assert.equal(got, sample.length);
  assert.equal(a.tcp.lastInternalError, null, String(a.tcp.lastInternalError));
  assert.equal(b.tcp.lastInternalError, null, String(b.tcp.lastInternalError));
});
