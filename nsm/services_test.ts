import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { Simulator } from "../sim/simulator.ts";
import { WOULD_BLOCK } from "../stacks/tcpip/tcp/stack.ts";
import { tcpPointToPoint } from "../tests/support/tcp_sim_hosts.ts";
import { Services } from "./services.ts";

interface Client {
  id: number;
  total: number;
  sent: number;
  received: number;
  mismatch: boolean;
  eof: boolean;
  shut: boolean;
}

const byteAt = (conn: number, i: number): number => (i * 7 + conn * 13) & 0xff;

/**
 * Runs `conns` echo clients of `size` bytes each (all at once) and `discards` discard clients
 * against a `Services` host in the simulator; returns the clients and the services.
 */
function run(conns: number, size: number, discards: number, discardSize: number): {
  clients: Client[];
  services: Services;
  serverErrors: unknown;
} {
  const sim = new Simulator({ seed: 5 });
  const net = tcpPointToPoint(sim, { rateBps: 1_000_000_000, delay: 100_000 });
  const { a, b } = net;
  const services = new Services(b.tcp, b.iface.createUdp());
  services.serve("echo", 7);
  services.serve("discard", 9);
  b.app = (now) => {
    services.poll(now);
  };
  const clients: Client[] = [];
  const out = new Uint8Array(16 * 1024);
  const inb = new Uint8Array(16 * 1024);
  let started = false;
  a.app = (now) => {
    if (!started) {
      started = true;
      for (let i = 0; i < conns + discards; i++) {
        const echo = i < conns;
        const id = a.tcp.connect(net.b4, echo ? 7 : 9, now, { noDelay: true });
        clients.push({
          id,
          total: echo ? size : discardSize,
          sent: 0,
          received: echo ? 0 : -1,
          mismatch: false,
          eof: false,
          shut: false,
        });
      }
    }
    for (const c of clients) {
      if (c.eof) continue;
      const st = a.tcp.state(c.id);
      if (st === "SYN-SENT") continue;
      while (c.sent < c.total) {
        const n = Math.min(out.length, c.total - c.sent);
        for (let k = 0; k < n; k++) out[k] = byteAt(c.id, c.sent + k);
        const took = a.tcp.send(c.id, out.subarray(0, n), now);
        c.sent += took;
        if (took < n) break;
      }
      if (c.sent === c.total && !c.shut) {
        a.tcp.shutdown(c.id, now);
        c.shut = true;
      }
      for (;;) {
        const n = a.tcp.recv(c.id, inb, now);
        if (n === WOULD_BLOCK) break;
        if (n === 0) {
          c.eof = true;
          a.tcp.close(c.id, now);
          break;
        }
        for (let k = 0; k < n; k++) {
          if (inb[k] !== byteAt(c.id, c.received + k)) c.mismatch = true;
        }
        c.received += n;
      }
    }
  };
  sim.wake(a);
  let t = 0;
  while (t < 60 * SECOND && (clients.length === 0 || clients.some((c) => !c.eof))) {
    t += 10 * MILLISECOND;
    sim.runUntil(t);
    sim.wake(a);
  }
  return { clients, services, serverErrors: b.tcp.lastInternalError };
}

Deno.test("Services: 1000 simultaneous TCP echo connections get their bytes back, served from drainReady", () => {
  const { clients, services, serverErrors } = run(1000, 3000, 0, 0);
  assert.equal(clients.length, 1000);
  for (const c of clients) {
    assert.ok(c.eof, `connection ${c.id} finished`);
    assert.equal(c.received, 3000, `connection ${c.id} got everything back`);
    assert.equal(c.mismatch, false);
  }
  assert.equal(services.stats.accepted, 1000);
  assert.equal(services.stats.closed, 1000);
  assert.equal(services.stats.failed, 0);
  assert.equal(services.connections, 0);
  assert.equal(serverErrors, null);
});

Deno.test("Services: a 4 MB echo stream exercises back-pressure (parked bytes) and comes back intact; discard swallows 4 MB and closes", () => {
  const { clients, services } = run(1, 4_000_000, 1, 4_000_000);
  const [echo, discard] = clients;
  assert.equal(echo!.received, 4_000_000);
  assert.equal(echo!.mismatch, false);
  assert.ok(discard!.eof, "discard closed after our FIN");
  assert.equal(services.stats.tcpBytesIn, 8_000_000);
  assert.equal(services.stats.tcpBytesOut, 4_000_000);
  assert.ok(services.stats.parked > 0, "the send buffer filled at least once");
  assert.equal(services.stats.failed, 0);
});
