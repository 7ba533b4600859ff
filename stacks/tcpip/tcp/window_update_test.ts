import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../../time.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../../../tests/support/tcp_pair.ts";
import type { TcpConfig } from "./config.ts";

/** 1 MB from A to B on a 1 Gbit/s, 1 ms path; returns [data segments A->B, segments B->A]. */
function transfer(config: Partial<TcpConfig>): [number, number, Endpoint] {
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND, rate: 125e6 }), 3, config);
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const data = payload(1_000_000, 5);
  const ea = new Endpoint(pair.a, c, data, 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), data.length);
  const ok = pair.run(20 * SECOND, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
  }, () => eb.eof);
  assert.ok(ok, "transfer finished");
  assert.deepEqual(eb.received, data);
  assert.equal(pair.a.lastInternalError, null);
  assert.equal(pair.b.lastInternalError, null);
  return [pair.sent[0]!, pair.sent[1]!, eb];
}

Deno.test('windowUpdateOnRead "every-mss" sends a window update after every read of a keeping-up reader (about one ACK per segment)', () => {
  const [toB, toA] = transfer({ windowUpdateOnRead: "every-mss" });
  assert.ok(toA > 0.9 * toB, `${toA} ACKs for ${toB} segments`);
});

Deno.test('windowUpdateOnRead "half-window" leaves the window to the ACK clock: about one ACK per two segments, same bytes', () => {
  const [toB, toA] = transfer({ windowUpdateOnRead: "half-window" });
  assert.ok(toA < 0.6 * toB, `${toA} ACKs for ${toB} segments`);
  assert.ok(toA > 0.4 * toB, `${toA} ACKs for ${toB} segments`);
});

Deno.test('windowUpdateOnRead "half-window" still reopens a closed window at once when the reader catches up', () => {
  // A small receive buffer and a reader that only starts late: the window closes, and the
  // first read must announce it (else the sender waits for a persist probe).
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND, rate: 125e6 }), 4, {
    windowUpdateOnRead: "half-window",
    socket: { receiveBufferSize: 16 * 1024 } as TcpConfig["socket"],
  });
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const data = payload(200_000, 6);
  const ea = new Endpoint(pair.a, c, data, 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), data.length);
  let reading = false;
  pair.run(SECOND, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
  }, () => eb.id > 0 && pair.now > 100 * MILLISECOND);
  const rcv = pair.b.tcbOf(eb.id)!.rcvRing;
  assert.ok(rcv.capacity === 16 * 1024 && rcv.free < 1448, `window closed: ${rcv.free} free`);
  const start = pair.now;
  reading = true;
  const ok = pair.run(start + 2 * SECOND, () => {
    ea.pump(pair.now);
    if (reading) eb.pump(pair.now);
  }, () => eb.eof);
  assert.ok(ok);
  assert.deepEqual(eb.received, data);
  // 200 kB through a 16 KiB window at 2 ms RTT: ~13 windows, far below one persist interval
  // (200 ms) each.
  assert.ok(pair.now - start < 200 * MILLISECOND, `took ${(pair.now - start) / 1e6} ms`);
});
