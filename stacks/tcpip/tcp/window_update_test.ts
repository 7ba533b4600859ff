import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../../time.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../../../tests/support/tcp_pair.ts";
import type { TcpConfig } from "./config.ts";
import { TCP_SYN, TcpRepr } from "../wire/tcp.ts";
import { type Tcb, TcpState } from "./tcb.ts";

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

/** Reads what B's socket `b` has into `chunk`, checking it against `data` from `at` on. */
function readChecked(
  pair: TcpPair,
  b: number,
  chunk: Uint8Array,
  data: Uint8Array,
  at: number,
): number {
  const n = pair.b.recv(b, chunk, pair.now);
  for (let i = 0; i < n; i++) if (chunk[i] !== data[at + i]) assert.fail(`byte ${at + i}`);
  return n;
}

Deno.test("a receiver behind its sender puts the window's right edge on a segment boundary, and the sender sends whole segments", () => {
  // A reader slower than the path (16 KiB every 0.5 ms, ~33 MB/s on 125 MB/s) keeps the
  // sender at the window's edge. Had the edge fallen inside a segment, a sender that fills
  // the window (Linux does) would send a short segment, and every later segment would be off
  // the receive ring's unit grid (its reads then need a new view each).
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND, rate: 125e6 }), 7, {});
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const data = payload(3_000_000, 8);
  const ea = new Endpoint(pair.a, c, data, 0);
  let b = -1, got = 0, nextRead = 0;
  const chunk = new Uint8Array(16 * 1024);
  const sizes = new Map<number, number>();
  const repr = new TcpRepr();
  let wscale = 0;
  const edges: number[] = []; // B's window right edges (sequence numbers)
  pair.tap = (from, seg) => {
    assert.equal(repr.parse(seg), undefined);
    if (from === 0) {
      if (repr.payloadLength > 0) {
        sizes.set(repr.payloadLength, (sizes.get(repr.payloadLength) ?? 0) + 1);
      }
    } else if (repr.flags & TCP_SYN) wscale = repr.windowScale;
    else if (repr.window > 0) edges.push(repr.ack + (repr.window << wscale));
  };
  const read = (): number => {
    const n = readChecked(pair, b, chunk, data, got);
    if (n > 0) got += n;
    return n;
  };
  // Until the sender is done (its FIN arrived): after that no event remains to run the reader.
  const ok = pair.run(30 * SECOND, () => {
    if (b < 0) b = pair.b.accept(l);
    ea.pump(pair.now);
    // Reads are due every 0.5 ms; the pair has no timer of its own, so a due read also runs
    // when the next event lies beyond it (else a closed window would wait forever).
    if (b > 0 && (pair.now >= nextRead || pair.nextEvent() > nextRead)) {
      nextRead = pair.now + MILLISECOND / 2;
      read();
    }
  }, () => b > 0 && pair.b.state(b) === "CLOSE-WAIT");
  assert.ok(ok, `the sender finished (${got} bytes read)`);
  while (read() > 0);
  assert.equal(got, data.length);
  const mss = pair.a.tcbOf(c)!.mss;
  let short = 0;
  for (const [len, n] of sizes) if (len !== mss) short += n;
  const full = sizes.get(mss) ?? 0;
  assert.ok(full > 1500, `${full} full segments`);
  // The stream's end and a few window updates that open less than a segment may cut one.
  assert.ok(short <= 5, `short segments: ${JSON.stringify([...sizes])}`);
  // Edges on the ring's unit grid for nearly all windows (the first ones and small ones are
  // not aligned).
  assert.ok(edges.length > 1000, `${edges.length} windows`);
  const start = pair.a.tcbOf(c)!.iss + 1; // the stream's first byte
  const residues = new Map<number, number>();
  for (const e of edges.slice(100)) {
    const r = ((e - start) >>> 0) % mss;
    residues.set(r, (residues.get(r) ?? 0) + 1);
  }
  // The stream's full segments are on that grid too (the ring grew while reads ended on
  // it): the edges sit at whole segments from the stream's start.
  const onGrid = residues.get(0) ?? 0;
  assert.ok(
    onGrid >= 0.95 * (edges.length - 100),
    `${onGrid} of ${edges.length - 100} edges at whole segments: ${JSON.stringify([...residues])}`,
  );
});

Deno.test("a lagging reader at window scale 7 never has the window's edge creep past its buffer (RFC 7323 Appendix F): no segment is cut for want of room", () => {
  // Reads of 16 KiB every 5 ms against a 125 MB/s sender: most ACKs carry an open window that
  // is not a multiple of 128 bytes. Rounded up on each of them, the edge crept past the ring.
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND, rate: 125e6 }), 9, {
    receiveBufferMax: 4 * 1024 * 1024,
  });
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const data = payload(2_000_000, 10);
  const ea = new Endpoint(pair.a, c, data, 0);
  let b = -1, got = 0, nextRead = 0;
  const chunk = new Uint8Array(16 * 1024);
  pair.run(60 * SECOND, () => {
    if (b < 0) b = pair.b.accept(l);
    ea.pump(pair.now);
    if (b > 0 && (pair.now >= nextRead || pair.nextEvent() > nextRead)) {
      nextRead = pair.now + 5 * MILLISECOND;
      got += Math.max(0, readChecked(pair, b, chunk, data, got));
    }
  }, () => b > 0 && pair.b.state(b) === "CLOSE-WAIT");
  for (let n = 1; n > 0; got += Math.max(0, n)) n = readChecked(pair, b, chunk, data, got);
  assert.equal(got, data.length);
  assert.equal(pair.b.counters.get("no-buffer"), 0, JSON.stringify(pair.b.counters.snapshot()));
  assert.equal(pair.b.lastInternalError, null);
});

Deno.test("a receive queue drained by its reader starts the next segment on the unit grid again, after a short segment", () => {
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND, rate: 125e6 }), 9, {});
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const short = payload(1000, 10);
  let b = -1, got = 0, sent = false;
  const buf = new Uint8Array(64 * 1024);
  const ok = pair.run(5 * SECOND, () => {
    if (b < 0) b = pair.b.accept(l);
    if (!sent && pair.a.state(c) === "ESTABLISHED") sent = pair.a.send(c, short, pair.now) > 0;
    if (b > 0) {
      const n = pair.b.recv(b, buf, pair.now);
      if (n > 0) got += n;
    }
  }, () => got === short.length);
  assert.ok(ok, `${got} bytes read`);
  const ring = pair.b.tcbOf(b)!.rcvRing;
  assert.equal(ring.length, 0);
  assert.equal(ring.toUnitBoundary(0), ring.unit, "the next byte lands on a unit boundary");
});

Deno.test("a connection gives its ring storage back when it reaches TIME-WAIT or CLOSED, not 2 MSL later", () => {
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND, rate: 125e6 }), 11, {});
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const data = payload(5000, 12);
  let b = -1, got = 0, sent = 0, closedA = false, closedB = false;
  const buf = new Uint8Array(8192);
  const tcbA = pair.a.tcbOf(c)!; // kept: the socket id is gone after close()
  const held: { b: Tcb | null } = { b: null };
  const ok = pair.run(5 * SECOND, () => {
    if (b < 0 && (b = pair.b.accept(l)) > 0) held.b = pair.b.tcbOf(b);
    if (sent < data.length && tcbA.state === TcpState.Established) {
      sent += pair.a.send(c, data.subarray(sent), pair.now);
    }
    if (sent === data.length && !closedA) {
      pair.a.close(c, pair.now); // active close: A ends in TIME-WAIT
      closedA = true;
    }
    if (b > 0 && !closedB) {
      const n = pair.b.recv(b, buf, pair.now);
      if (n > 0) got += n;
      if (n === 0) {
        pair.b.close(b, pair.now); // EOF read: B's FIN, then CLOSED on A's ACK
        closedB = true;
      }
    }
  }, () => tcbA.state === TcpState.TimeWait && held.b?.state === TcpState.Closed);
  assert.ok(ok, `A ${tcbA.state}, B ${held.b?.state}`);
  const tcbB = held.b!;
  assert.equal(got, data.length);
  assert.equal(tcbA.sndRing.allocated + tcbA.rcvRing.allocated, 0, "TIME-WAIT holds none");
  assert.equal(tcbB.sndRing.allocated + tcbB.rcvRing.allocated, 0, "CLOSED holds none");
});
