/**
 * TCP-only bulk transfers between two stacks over a fake impaired path (tests/support/tcp_pair.ts):
 * SHA-256 of what arrived must equal what was sent, within a bounded virtual time.
 */
import assert from "node:assert/strict";
import { SECOND } from "../stacks/time.ts";
import {
  cleanPath,
  Endpoint,
  type PathParams,
  payload,
  sha256,
  TcpPair,
} from "./support/tcp_pair.ts";

async function transfer(
  path: PathParams,
  seed: number,
  aToB: number,
  bToA: number,
  limit = 120 * SECOND,
): Promise<{ pair: TcpPair; time: number }> {
  const pair = new TcpPair(path, seed);
  const l = pair.b.listen(null, 5001, 8);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const dataA = payload(aToB, seed + 1);
  const dataB = payload(bToA, seed + 2);
  const ea = new Endpoint(pair.a, c, dataA, bToA);
  const eb = new Endpoint(pair.b, -1, dataB, aToB);
  const ok = pair.run(limit, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
  }, () => ea.finished && eb.finished);
  assert.equal(ea.error, null, String(ea.error));
  assert.equal(eb.error, null, String(eb.error));
  assert.equal(pair.a.lastInternalError, null, String(pair.a.lastInternalError));
  assert.equal(pair.b.lastInternalError, null, String(pair.b.lastInternalError));
  assert.ok(
    ok,
    `transfer did not finish in ${
      limit / SECOND
    }s: a got ${ea.got}/${bToA}, b got ${eb.got}/${aToB}`,
  );
  assert.equal(eb.got, aToB);
  assert.equal(ea.got, bToA);
  assert.equal(await sha256(eb.received), await sha256(dataA));
  assert.equal(await sha256(ea.received), await sha256(dataB));
  return { pair, time: pair.now };
}

Deno.test("pair: 2 MB one way over a clean path arrives intact", async () => {
  const { time } = await transfer(cleanPath(), 1, 2_000_000, 0);
  assert.ok(time < 5 * SECOND, `took ${time / SECOND}s`);
});

Deno.test("pair: 2 MB both ways at once over a clean path", async () => {
  await transfer(cleanPath(), 2, 2_000_000, 2_000_000);
});

Deno.test("pair: 2 MB each way with 1% loss, retransmitting what was lost", async () => {
  const { pair, time } = await transfer(cleanPath({ loss: 0.01 }), 3, 2_000_000, 2_000_000);
  assert.ok(pair.droppedData > 0 && pair.a.counters.retransmits > 0);
  assert.ok(time < 20 * SECOND, `took ${time / SECOND}s`);
});

Deno.test("pair: 2 MB each way with 5% loss", async () => {
  const { time } = await transfer(cleanPath({ loss: 0.05 }), 4, 2_000_000, 2_000_000);
  assert.ok(time < 60 * SECOND, `took ${time / SECOND}s`);
});

Deno.test("pair: 2 MB each way with reordering, duplication and corruption", async () => {
  const { pair } = await transfer(
    cleanPath({ reorder: 0.05, duplicate: 0.02, corrupt: 0.01 }),
    5,
    2_000_000,
    2_000_000,
  );
  assert.ok(pair.a.counters.get("bad-checksum") + pair.b.counters.get("bad-checksum") > 0);
});

Deno.test("pair: TCP_INFO after a transfer reports RTT, window, bytes and delivery rate", () => {
  const pair = new TcpPair(cleanPath(), 11);
  const l = pair.b.listen(null, 5001, 8);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const ea = new Endpoint(pair.a, c, payload(1_000_000, 1), 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), 1_000_000);
  let infoA = pair.a.info(c);
  pair.run(30 * SECOND, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
    if (pair.a.state(c) !== "CLOSED") infoA = pair.a.info(c);
  }, () => eb.got === 1_000_000);
  const infoB = pair.b.info(eb.id);
  assert.equal(infoB.bytesReceived, 1_000_000);
  assert.ok(infoA.bytesSent >= 1_000_000);
  assert.ok(infoA.bytesAcked >= 900_000, `acked ${infoA.bytesAcked}`);
  // 5 ms each way plus serialization: the smoothed RTT is a little over 10 ms.
  assert.ok(infoA.srtt > 10e6 && infoA.srtt < 30e6, `srtt ${infoA.srtt}`);
  assert.ok(infoA.rto >= 200e6);
  assert.ok(infoA.cwnd > 14_600, "slow start grew the window");
  assert.ok(infoA.deliveryRate > 1e6, `delivery rate ${infoA.deliveryRate}`);
  assert.equal(infoA.retransmits, 0);
  assert.equal(infoA.options.sack && infoA.options.timestamps, true);
});

Deno.test("pair: 200 connections opened, used and closed leave no sockets, timers or table entries", () => {
  const msl = 2 * SECOND;
  const pair = new TcpPair(cleanPath({ loss: 0.02 }), 12, { msl });
  const l = pair.b.listen(null, 7, 256);
  const clients: Endpoint[] = [];
  const servers: Endpoint[] = [];
  for (let i = 0; i < 200; i++) {
    const c = pair.a.connect(pair.addrB, 7, 0);
    clients.push(new Endpoint(pair.a, c, payload(3000 + i, i), 100));
  }
  const done = (): boolean =>
    servers.length === 200 && clients.every((e) => e.finished) && servers.every((e) => e.finished);
  const ok = pair.run(120 * SECOND, () => {
    for (let id = pair.b.accept(l); id > 0; id = pair.b.accept(l)) {
      servers.push(new Endpoint(pair.b, id, payload(100, 7), 3000 + 200));
    }
    for (const e of clients) e.pump(pair.now);
    for (const e of servers) e.pump(pair.now);
  }, done);
  assert.ok(ok, "all exchanges finished");
  for (const e of [...clients, ...servers]) e.stack.close(e.id, pair.now);
  pair.run(pair.now + 4 * msl, () => {}, () => false);
  for (const st of [pair.a, pair.b]) {
    assert.equal(st.connectionCount, 0);
    assert.equal(st.timerCount, 0);
    assert.equal(st.lastInternalError, null);
  }
  assert.equal(pair.a.socketCount, 0);
  assert.equal(pair.b.socketCount, 1, "only the listener");
});
