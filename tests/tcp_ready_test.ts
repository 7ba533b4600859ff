/**
 * The ready list as an NSM would use it: one server stack, 1000 client connections each sending
 * a request; the server never scans its sockets, it only drains the ready list (accepting on
 * the listener, reading and answering readable connections) and every client gets its answer.
 */
import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { READABLE, WOULD_BLOCK } from "../stacks/tcpip/tcp/stack.ts";
import { tcpPointToPoint } from "./support/tcp_sim_hosts.ts";

const N = 1000;

Deno.test("ready list: 1000 request/response connections served only from drainReady()", () => {
  const sim = new Simulator({ seed: 21 });
  const net = tcpPointToPoint(sim, { rateBps: 1_000_000_000, delay: MILLISECOND });
  const { a, b } = net;
  const l = b.tcp.listen(null, 7, N);
  b.tcp.setInterest(l, READABLE);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const buf = new Uint8Array(256);
  let served = 0;
  let wakeups = 0;
  b.app = (now) => {
    b.tcp.drainReady((id, ev) => {
      wakeups++;
      if (id === l) {
        for (let c = b.tcp.accept(l); c > 0; c = b.tcp.accept(l)) b.tcp.setInterest(c, READABLE);
        return;
      }
      if (!(ev & READABLE)) return;
      for (;;) {
        const n = b.tcp.recv(id, buf, now);
        if (n === WOULD_BLOCK) break;
        if (n === 0) {
          b.tcp.close(id, now);
          break;
        }
        const req = dec.decode(buf.subarray(0, n));
        b.tcp.send(id, enc.encode(`re:${req}`), now);
        served++;
      }
    });
  };
  const clients: number[] = [];
  const answers = new Map<number, string>();
  a.app = (now) => {
    while (clients.length < N) {
      const c = a.tcp.connect(net.b4, 7, now, { noDelay: true });
      clients.push(c);
      a.tcp.send(c, enc.encode(`q${clients.length - 1}`), now);
    }
    a.tcp.drainReady((id, ev) => {
      if (!(ev & READABLE)) return;
      const n = a.tcp.recv(id, buf, now);
      if (n > 0) answers.set(id, (answers.get(id) ?? "") + dec.decode(buf.subarray(0, n)));
    });
  };
  sim.wake(a);
  for (let t = 0; t < 20 * SECOND && answers.size < N; t += 10 * MILLISECOND) sim.runUntil(t);
  assert.equal(served, N);
  assert.equal(answers.size, N);
  clients.forEach((c, i) => assert.equal(answers.get(c), `re:q${i}`));
  assert.ok(wakeups < 4 * N, `${wakeups} server wakeups for ${N} requests`);
  assert.equal(b.tcp.lastInternalError, null);
});
