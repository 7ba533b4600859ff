/**
 * Connection bursts against one listener: 1000-2000 clients of one TcpStack connect at once
 * to an echo service on another (tests/support/tcp_pair.ts), with listen backlogs of 128 and
 * 4096, SYN cookies engaged once the SYN queue (bounded by the backlog) is full, and an accept
 * loop that keeps up or does not. Each client sends a request, half-closes, reads the echo
 * to EOF and closes; the server echoes and closes on EOF.
 */
import assert from "node:assert/strict";
import { type Instant, MILLISECOND, SECOND } from "../stacks/time.ts";
import type { TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import { type TcpStack, WOULD_BLOCK } from "../stacks/tcpip/tcp/stack.ts";
import { cleanPath, TcpPair } from "./support/tcp_pair.ts";

interface BurstOptions {
  /** Connections opened at once. */
  n: number;
  /** Listen backlog. */
  backlog: number;
  /** Request bytes per connection (echoed back). */
  size: number;
  /** Accept-loop period (0: after every simulation step, i.e. it keeps up). */
  acceptEvery: Instant;
  /** Connections taken per accept-loop run. */
  acceptBatch: number;
  /** Virtual time limit. */
  until: Instant;
  /** Stack settings (both sides). */
  config?: Partial<TcpConfig>;
}

interface BurstResult {
  client: TcpStack;
  server: TcpStack;
  /** Clients that read their whole echo and EOF. */
  finished: number;
  /** Client socket errors by name. */
  errors: Record<string, number>;
  /** Connections accepted by the server. */
  accepted: number;
  /** Client ids still open at the end. */
  open: number[];
  /** Largest accept-queue length seen by the accept loop. */
  maxQueued: number;
}

function burst(o: BurstOptions): BurstResult {
  // veth-like: 50 us one way, 80 Gbit/s, so the burst itself queues little.
  const pair = new TcpPair(cleanPath({ delay: 50_000, rate: 1e10 }), 11, o.config ?? {});
  const client = pair.a, server = pair.b;
  const l = server.listen(null, 7, o.backlog);
  const request = new Uint8Array(o.size).map((_, i) => i & 0xff);
  const buf = new Uint8Array(65536);
  const clients = new Map<number, { sent: boolean; got: number }>();
  const servers = new Set<number>();
  const errors: Record<string, number> = {};
  let opened = false;
  let finished = 0;
  let accepted = 0;
  let maxQueued = 0;
  let nextAccept = 0;
  const fail = (e: unknown): void => {
    const k = e instanceof Error ? e.name : String(e);
    errors[k] = (errors[k] ?? 0) + 1;
  };
  const app = (): void => {
    const now = pair.now;
    if (!opened) {
      opened = true;
      for (let i = 0; i < o.n; i++) {
        clients.set(client.connect(pair.addrB, 7, now), { sent: false, got: 0 });
      }
    }
    if (now >= nextAccept) {
      nextAccept = now + o.acceptEvery;
      let queued = 0;
      for (let k = 0; k < o.acceptBatch; k++) {
        const id = server.accept(l);
        if (id < 0) break;
        queued++;
        servers.add(id);
        accepted++;
      }
      if (queued > maxQueued) maxQueued = queued;
    }
    for (const id of servers) {
      try {
        for (;;) {
          const r = server.recv(id, buf, now);
          if (r === WOULD_BLOCK) break;
          if (r === 0) {
            server.close(id, now);
            servers.delete(id);
            break;
          }
          assert.equal(server.send(id, buf.subarray(0, r), now), r);
        }
      } catch (e) {
        fail(e);
        servers.delete(id);
        server.abort(id, now);
      }
    }
    for (const [id, c] of clients) {
      try {
        const err = client.error(id);
        if (err !== null) throw err;
        if (!c.sent) {
          if (client.state(id) !== "ESTABLISHED") continue;
          assert.equal(client.send(id, request, now), o.size);
          client.shutdown(id, now);
          c.sent = true;
        }
        for (;;) {
          const r = client.recv(id, buf, now);
          if (r === WOULD_BLOCK) break;
          if (r === 0) {
            assert.equal(c.got, o.size, "the whole request comes back");
            client.close(id, now);
            clients.delete(id);
            finished++;
            break;
          }
          c.got += r;
        }
      } catch (e) {
        fail(e);
        clients.delete(id);
        client.abort(id, now);
      }
    }
  };
  const done = (): boolean =>
    opened && clients.size === 0 && client.connectionCount === 0 && server.connectionCount === 0;
  // The accept loop runs on its own clock too, not only when a packet arrives.
  const tick = o.acceptEvery > 0 ? o.acceptEvery : 10 * MILLISECOND;
  for (let t = 0; t <= o.until && !done(); t += tick) pair.run(t, app, done);
  assert.equal(client.lastInternalError, null, String(client.lastInternalError));
  assert.equal(server.lastInternalError, null, String(server.lastInternalError));
  return { client, server, finished, errors, accepted, open: [...clients.keys()], maxQueued };
}

/** Drop reasons other than `allowed` (every drop is counted under some reason). */
function unexpectedDrops(s: TcpStack, allowed: string[]): Record<string, number> {
  return Object.fromEntries(
    Object.entries(s.counters.snapshot()).filter(([k]) => !allowed.includes(k)),
  );
}

for (const backlog of [128, 4096]) {
  Deno.test(`burst: 2000 connects at a backlog of ${backlog} with the accept loop keeping up all echo, with no RST, retransmission or failure on either side`, () => {
    const r = burst({
      n: 2000,
      backlog,
      size: 1000,
      acceptEvery: 0,
      acceptBatch: Infinity,
      until: 120 * SECOND,
      // The NSM's setting: the SYN queue is then bounded by the backlog alone.
      config: { synQueueMax: 4096 },
    });
    assert.deepEqual(r.errors, {});
    assert.equal(r.finished, 2000);
    assert.equal(r.accepted, 2000);
    assert.equal(r.server.counters.resetsSent, 0);
    assert.equal(r.client.counters.resetsSent, 0);
    assert.equal(r.server.counters.retransmits, 0);
    assert.equal(r.client.counters.retransmits, 0);
    assert.deepEqual(r.server.counters.snapshot(), {});
    assert.deepEqual(r.client.counters.snapshot(), {});
    if (backlog === 128) {
      // The SYN queue (bounded by the backlog) overflowed: the rest were served by cookies.
      assert.equal(r.server.counters.cookiesSent, 2000 - 128);
      assert.equal(r.server.counters.cookiesAccepted, 2000 - 128);
    } else assert.equal(r.server.counters.cookiesSent, 0);
    assert.equal(r.server.connectionCount, 0);
    assert.equal(r.client.connectionCount, 0, "TIME-WAIT ran out");
  });
}

Deno.test("burst: 200 connects of 4 KB echoes over a 0.1 ms path retransmit nothing and send no RST (no tail-loss probe right behind each flight)", () => {
  const r = burst({
    n: 200,
    backlog: 4096,
    size: 4096,
    acceptEvery: 0,
    acceptBatch: Infinity,
    until: 120 * SECOND,
    config: { synQueueMax: 4096 },
  });
  assert.deepEqual(r.errors, {});
  assert.equal(r.finished, 200);
  // Millisecond timestamp RTTs made SRTT 0 here: one probe per flight on each side, and the
  // server's probed FIN drew the client's TIME-WAIT ACK after the server had closed: RST.
  assert.equal(r.server.counters.retransmits, 0);
  assert.equal(r.client.counters.retransmits, 0);
  assert.equal(r.server.counters.resetsSent, 0);
  assert.deepEqual(r.server.counters.snapshot(), {});
});

Deno.test("burst: 2000 connects of 4 KB echoes at a backlog of 4096 all complete without a retransmission or RST on either side (the tail-loss probe waits 2*SRTT + 2 ms behind a multi-segment flight)", () => {
  const r = burst({
    n: 2000,
    backlog: 4096,
    size: 4096,
    acceptEvery: 0,
    acceptBatch: Infinity,
    until: 120 * SECOND,
    config: { synQueueMax: 4096 },
  });
  assert.deepEqual(r.errors, {});
  assert.equal(r.finished, 2000);
  const s = r.server.counters;
  console.log(
    `2000 x 4 KB echo: server rtx ${s.retransmits}, RST ${s.resetsSent}; client rtx ${r.client.counters.retransmits}; server drops ${
      JSON.stringify(s.snapshot())
    }`,
  );
  // Was 715 server retransmissions (0.36 per connection: probes fired because the burst's data
  // queued behind a handshake-sized SRTT, PTO = 2*SRTT had no floor) answered by 715 client
  // ACKs after close that drew the listener's RST, and 1774 client retransmissions.
  assert.equal(s.retransmits, 0);
  assert.equal(r.client.counters.retransmits, 0);
  assert.equal(s.resetsSent, 0);
  assert.equal(r.client.counters.resetsSent, 0);
  assert.deepEqual(s.snapshot(), {});
});

Deno.test("burst: 1000 connects at a backlog of 128 with the accept loop running once per millisecond: overflow drops only, no RST, every connection completes", () => {
  const r = burst({
    n: 1000,
    backlog: 128,
    size: 4096,
    acceptEvery: MILLISECOND,
    acceptBatch: Infinity,
    until: 300 * SECOND,
  });
  assert.deepEqual(r.errors, {});
  assert.equal(r.finished, 1000);
  assert.equal(r.server.counters.resetsSent, 0, "no connection was reset for the overflow");
  assert.equal(r.client.counters.resetsSent, 0);
  assert.ok(r.maxQueued <= 128, `accept queue held ${r.maxQueued}`);
  assert.ok(r.server.counters.get("accept-queue-full") > 0, "the queue did overflow");
  assert.deepEqual(
    unexpectedDrops(r.server, ["accept-queue-full", "cookie-later-segment", "out-of-window"]),
    {},
  );
});

Deno.test("burst: 2000 connects at a backlog of 128 with an accept loop that does not keep up (16 per 10 ms): clients retry with backoff, nobody is reset, accepted connections complete", () => {
  const r = burst({
    n: 2000,
    backlog: 128,
    size: 1000,
    acceptEvery: 10 * MILLISECOND,
    acceptBatch: 16,
    until: 20 * SECOND,
  });
  assert.deepEqual(r.errors, {}, "no client failed within 20 s");
  assert.equal(r.server.counters.resetsSent, 0);
  assert.equal(r.client.counters.resetsSent, 0);
  assert.ok(r.finished >= 128, `${r.finished} finished`);
  assert.equal(r.finished + r.open.length, 2000);
  assert.equal(r.accepted, r.finished, "every accepted connection was served to the end");
  // The rest are established on the client side and retransmitting with backoff, not reset.
  let maxRtx = 0;
  for (const id of r.open) {
    assert.ok(["ESTABLISHED", "FIN-WAIT-1"].includes(r.client.state(id)), r.client.state(id));
    maxRtx = Math.max(maxRtx, r.client.info(id).retransmits);
  }
  // RTO from 200 ms doubling: at most 7 timeouts fit in 20 s, each resending the request
  // and the FIN segment, plus one tail-loss probe.
  assert.ok(maxRtx <= 15, `a client retransmitted ${maxRtx} segments`);
  // Dropped at the listener, each under its reason: full queue, or a later segment of a
  // cookie connection whose first one could not be queued.
  assert.deepEqual(unexpectedDrops(r.server, ["accept-queue-full", "cookie-later-segment"]), {});
  assert.ok(r.server.counters.get("accept-queue-full") > 0);
});

Deno.test("burst: 2000 connects at a backlog of 4096 with a slow accept loop (100 per 100 ms): the queue absorbs the burst, no drop, no RST, all complete", () => {
  const r = burst({
    n: 2000,
    backlog: 4096,
    size: 1000,
    acceptEvery: 100 * MILLISECOND,
    acceptBatch: 100,
    until: 120 * SECOND,
    config: { synQueueMax: 4096 },
  });
  assert.deepEqual(r.errors, {});
  assert.equal(r.finished, 2000);
  assert.equal(r.server.counters.resetsSent, 0);
  assert.equal(r.client.counters.resetsSent, 0);
  assert.deepEqual(r.server.counters.snapshot(), {});
  assert.equal(r.server.counters.cookiesSent, 0);
});
