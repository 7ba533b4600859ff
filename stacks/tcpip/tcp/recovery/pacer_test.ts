import assert from "node:assert/strict";
import { Pacer } from "./pacer.ts";
import { RecoveryEngine } from "./engine.ts";
import { RenoCc } from "./cc.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

Deno.test("Pacer lets a burst of credit + one segment go, then spaces by len/rate", () => {
  const p = new Pacer();
  p.configure(1_000_000, 1000); // 1 MB/s: 1000 bytes per ms; one extra segment of credit
  const times: number[] = [];
  let now = 0;
  for (let i = 0; i < 6; i++) {
    const t = p.nextSendTime();
    if (t > now) now = t;
    times.push(now / 1e6);
    p.onSend(1000, now);
  }
  assert.deepEqual(times, [0, 0, 1, 2, 3, 4]);
});

Deno.test("Pacer does not bank idle time beyond its credit", () => {
  const p = new Pacer();
  p.configure(1_000_000, 1000);
  p.onSend(1000, 0);
  p.onSend(1000, 0);
  // Idle for 100 ms: still only two segments back-to-back.
  p.onSend(1000, ms(100));
  assert.ok(p.nextSendTime() <= ms(100));
  p.onSend(1000, ms(100));
  assert.equal(p.nextSendTime(), ms(101));
});

Deno.test("Pacer with rate 0 never delays", () => {
  const p = new Pacer();
  p.onSend(1000, 0);
  assert.equal(p.nextSendTime(), Number.NEGATIVE_INFINITY);
});

Deno.test("engine pacing: 2x cwnd/srtt in slow start, 1.2x in congestion avoidance", () => {
  const e = new RecoveryEngine({ mss: 1000, pacing: true, tlp: false });
  e.reset(0, 0);
  assert.equal(e.nextSendTime(), Number.NEGATIVE_INFINITY); // no RTT yet: no pacing
  sendNew(e, 10, 1000, 0); // a full initial window: cwnd-limited, so the ACKs grow cwnd
  ackWith(e, ms(100), 1000);
  // cwnd 11000 bytes, srtt 100 ms: 2 * 110 kB/s
  assert.equal(Math.round(e.info().pacingRate), 220_000);
  (e.cc as RenoCc).ssthresh = 12000; // cwnd >= ssthresh/2: congestion avoidance ratio
  ackWith(e, ms(100), 2000);
  assert.equal(e.cc.cwnd, 12000);
  assert.equal(Math.round(e.info().pacingRate), Math.round((1.2 * 12000) / 0.1));
});

Deno.test("engine nextSendTime() spaces segments at the pacing rate", () => {
  const e = new RecoveryEngine({ mss: 1000, pacing: true, tlp: false, pacingBurstSegments: 1 });
  e.reset(0, 0);
  sendNew(e, 1, 1000, 0);
  // One segment of a 10000-byte cwnd is not cwnd-limited: cwnd stays 10000, so 2 * 100 kB/s:
  // 1000 bytes every 1/200 s.
  ackWith(e, ms(100), 1000);
  assert.equal(e.cc.cwnd, 10000);
  e.onSend(e.sndNxt, 1000, ms(100), false);
  const gap = e.nextSendTime() - ms(100);
  assert.equal(Math.round(gap), Math.round(1e9 / 200));
});

Deno.test("RecoveryEngine.pacedAfter/nextSendTimeInto/pollAtInto agree with nextSendTime/pollAt", () => {
  const e = new RecoveryEngine({ mss: 1000, pacing: true, cc: new RenoCc() });
  const t0 = 5_000_000_000; // above 2^31 ns, where the *Into forms matter
  e.reset(0xfff0_0000, t0);
  const out = new Float64Array(2);
  e.nextSendTimeInto(out, 1);
  assert.equal(out[1], e.nextSendTime());
  assert.equal(e.pacedAfter(t0), false, "not pacing before an RTT sample");
  sendNew(e, 4, 1000, t0);
  ackWith(e, t0 + ms(1), (e.sndUna + 1000) >>> 0);
  sendNew(e, 8, 1000, t0 + ms(1));
  const next = e.nextSendTime();
  assert.ok(next > t0 + ms(1), "pacing holds the next segment back");
  assert.equal(e.pacedAfter(t0 + ms(1)), true);
  assert.equal(e.pacedAfter(next), false);
  e.nextSendTimeInto(out, 0);
  assert.equal(out[0], next);
  e.pollAtInto(out, 1);
  assert.equal(out[1], e.pollAt());
  assert.ok(out[1]! > t0 && out[1]! < Number.POSITIVE_INFINITY);
});
