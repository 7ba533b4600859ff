import assert from "node:assert/strict";
import { RecoveryEngine } from "./engine.ts";
import { ackWith, ms } from "./testing.ts";

const MSS = 1000;

/**
 * A steady flow: one segment every `gapMs`, each acknowledged exactly `rttMs` after it was
 * sent. Returns the delivery rates of the samples taken after the first `warm` ACKs.
 */
function steadyFlow(
  gapMs: number,
  rttMs: number,
  count: number,
  appLimitedFrom = Infinity,
): { rates: number[]; appLimited: boolean[] } {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  const rates: number[] = [];
  const appLimited: boolean[] = [];
  // Event list: sends at i*gap, acks at i*gap + rtt; acks first when simultaneous.
  let nextSend = 0;
  let nextAck = 0;
  while (nextAck < count) {
    const tSend = nextSend * gapMs;
    const tAck = nextAck * gapMs + rttMs;
    if (nextSend < count && tSend < tAck) {
      e.onSend(e.sndNxt, MSS, ms(tSend), false);
      if (nextSend + 1 >= appLimitedFrom) e.onAppLimited();
      nextSend++;
    } else {
      const r = ackWith(e, ms(tAck), (nextAck + 1) * MSS);
      rates.push(r.rate.deliveryRate);
      appLimited.push(r.rate.isAppLimited);
      nextAck++;
    }
  }
  return { rates, appLimited };
}

Deno.test("the delivery rate of a steady flow equals its send rate", () => {
  // 1000 bytes every 10 ms = 100 kB/s, RTT 100 ms (10 segments in flight).
  const { rates } = steadyFlow(10, 100, 40);
  for (const r of rates.slice(12)) assert.equal(Math.round(r), 100_000);
});

Deno.test("the rate sample reports delivered bytes, interval and RTT", () => {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  for (let i = 0; i < 4; i++) e.onSend(e.sndNxt, MSS, ms(i * 10), false);
  const r1 = ackWith(e, ms(100), 1000);
  assert.equal(r1.rate.delivered, 1000);
  assert.equal(r1.rate.interval, ms(100)); // ack elapsed since the flight started
  assert.equal(r1.rate.rtt, ms(100));
  assert.equal(r1.rate.priorInFlight, 4000);
  const r2 = ackWith(e, ms(130), 3000); // two segments at once
  assert.equal(r2.rate.ackedSacked, 2000);
  assert.equal(r2.rate.delivered, 3000);
  assert.equal(r2.rate.rtt, ms(110));
});

Deno.test("samples of data sent while app-limited are marked app-limited until it is delivered", () => {
  // The application runs dry after segment 20.
  const { appLimited } = steadyFlow(10, 100, 40, 20);
  assert.equal(appLimited.slice(0, 20).some((v) => v), false);
  assert.equal(appLimited.slice(21).every((v) => v), true);
});

Deno.test("an ACK that delivers nothing gives an invalid rate sample", () => {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  e.onSend(0, MSS, 0, false);
  const r = ackWith(e, ms(50), 0);
  assert.equal(r.rate.interval, -1);
  assert.equal(r.rate.deliveryRate, 0);
});

Deno.test("ECE on an ACK counts the delivered bytes as CE-marked", () => {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  e.setNegotiated(true, false, true);
  assert.equal(e.sendEct, true);
  e.onSend(0, MSS, 0, false);
  e.onSend(1000, MSS, 0, false);
  const r = ackWith(e, ms(50), 2000, [], -1, true);
  assert.equal(r.rate.deliveredCe, 2000);
  assert.equal(e.takeCwr(), true);
  assert.equal(e.takeCwr(), false);
  assert.equal(e.cc.ssthresh, 5000);
});

Deno.test("info() reports the last delivery rate", () => {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  e.onSend(0, MSS, 0, false);
  ackWith(e, ms(100), 1000);
  assert.equal(Math.round(e.info().deliveryRate), 10_000);
  assert.equal(e.info().bytesAcked, 1000);
  assert.equal(e.info().bytesSent, 1000);
});

Deno.test("ECN echoes reduce the window at most once per window of data", () => {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  e.setNegotiated(true, false, true);
  for (let i = 0; i < 10; i++) e.onSend(e.sndNxt, MSS, 0, false);
  ackWith(e, ms(50), 1000, [], -1, true);
  assert.equal(e.cc.cwnd, 5000);
  assert.equal(e.takeCwr(), true);
  ackWith(e, ms(51), 2000, [], -1, true); // same window: no second halving
  assert.equal(e.cc.ssthresh, 5000);
  assert.equal(e.takeCwr(), false);
  for (let i = 0; i < 2; i++) e.onSend(e.sndNxt, MSS, ms(52), false);
  ackWith(e, ms(100), 10000, [], -1, false); // the window that saw the echo is acknowledged
  ackWith(e, ms(110), 11000, [], -1, true); // a new window: a new reduction
  assert.ok(e.cc.ssthresh < 5000);
  assert.equal(e.takeCwr(), true);
});

Deno.test("ECE is ignored when ECN was not negotiated", () => {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  e.onSend(0, MSS, 0, false);
  ackWith(e, ms(50), 1000, [], -1, true);
  assert.equal(e.cc.ssthresh, Infinity);
  assert.equal(e.sendEct, false);
});
