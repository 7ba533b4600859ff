import assert from "node:assert/strict";
import { MILLISECOND, NEVER, SECOND } from "../../../time.ts";
import { RecoveryEngine } from "./engine.ts";
import { RtoEstimator } from "./rtt.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

function estimator(): RtoEstimator {
  return new RtoEstimator(SECOND, 200 * MILLISECOND, 120 * SECOND, MILLISECOND);
}

Deno.test("RtoEstimator starts at 1 s and applies RFC 6298 smoothing to samples", () => {
  const e = estimator();
  assert.equal(e.rto, SECOND);
  e.sample(ms(100));
  assert.equal(e.srtt, ms(100));
  assert.equal(e.rttvar, ms(50));
  assert.equal(e.rto, ms(300)); // 100 + 4*50
  e.sample(ms(100));
  assert.equal(e.rttvar, ms(37.5));
  assert.equal(e.rto, ms(250));
  e.sample(ms(200));
  // rttvar = 0.75*37.5 + 0.25*100 = 53.125; srtt = 87.5 + 25 = 112.5
  assert.equal(e.srtt, ms(112.5));
  assert.equal(e.rttvar, ms(53.125));
  assert.equal(e.rto, ms(112.5 + 4 * 53.125));
});

Deno.test("RtoEstimator clamps to the 200 ms minimum and the 120 s maximum", () => {
  const e = estimator();
  e.sample(ms(10));
  assert.equal(e.rto, ms(200));
  const big = estimator();
  big.sample(100 * SECOND);
  assert.equal(big.rto, 120 * SECOND);
});

Deno.test("RTO backoff doubles from 1 s and is capped at 120 s", () => {
  const e = new RecoveryEngine({ mss: 1000, tlp: false });
  e.reset(0, 0);
  sendNew(e, 1, 1000, 0);
  const seen: number[] = [];
  let now = 0;
  for (let i = 0; i < 9; i++) {
    const at = e.pollAt();
    seen.push((at - now) / SECOND);
    now = at;
    assert.equal(e.onTimer(now, false), "rto");
    const r = e.nextRetransmit();
    assert.ok(r !== null);
    assert.equal(r.seq, 0);
    e.onSend(r.seq, r.len, now, true);
  }
  assert.deepEqual(seen, [1, 2, 4, 8, 16, 32, 64, 120, 120]);
  assert.equal(e.state, "loss");
  assert.equal(e.info().rtoCount, 9);
});

Deno.test("onTimer() before the deadline does nothing and an empty flight arms no timer", () => {
  const e = new RecoveryEngine({ mss: 1000 });
  e.reset(0, 0);
  assert.equal(e.pollAt(), NEVER);
  sendNew(e, 1, 1000, 0);
  assert.equal(e.onTimer(SECOND - 1, false), "none");
  ackWith(e, ms(50), 1000);
  assert.equal(e.pollAt(), NEVER);
});

Deno.test("a new ACK clears the backoff and restarts the RTO from the estimator", () => {
  const e = new RecoveryEngine({ mss: 1000, tlp: false });
  e.reset(0, 0);
  sendNew(e, 2, 1000, 0);
  e.onTimer(SECOND, false);
  e.onSend(0, 1000, SECOND, true);
  assert.equal(e.rto, 2 * SECOND);
  const r = ackWith(e, SECOND + ms(100), 1000);
  assert.equal(r.rttSample, -1); // Karn: the acked segment was retransmitted
  assert.equal(e.rto, SECOND);
  assert.equal(e.pollAt(), SECOND + ms(100) + SECOND);
});

Deno.test("Karn's rule: no RTT sample from a retransmitted segment, samples resume after", () => {
  const e = new RecoveryEngine({ mss: 1000, tlp: false });
  e.reset(0, 0);
  sendNew(e, 1, 1000, 0);
  e.onTimer(SECOND, false);
  e.onSend(0, 1000, SECOND, true);
  const r1 = ackWith(e, SECOND + ms(30), 1000);
  assert.equal(r1.rttSample, -1);
  assert.equal(e.srtt, -1);
  sendNew(e, 1, 1000, 2 * SECOND);
  const r2 = ackWith(e, 2 * SECOND + ms(80), 2000);
  assert.equal(r2.rttSample, ms(80));
  assert.equal(e.srtt, ms(80));
});

Deno.test("with timestamps the echoed RTT is used even for retransmitted data", () => {
  const e = new RecoveryEngine({ mss: 1000, timestamps: true, tlp: false });
  e.reset(0, 0);
  sendNew(e, 1, 1000, 0);
  e.onTimer(SECOND, false);
  e.onSend(0, 1000, SECOND, true);
  const r = ackWith(e, SECOND + ms(40), 1000, [], ms(40));
  assert.equal(r.rttSample, ms(40));
  assert.equal(e.srtt, ms(40));
});

Deno.test("minRto is configurable", () => {
  const e = new RecoveryEngine({ mss: 1000, minRto: SECOND });
  e.reset(0, 0);
  sendNew(e, 1, 1000, 0);
  ackWith(e, ms(10), 1000);
  assert.equal(e.rto, SECOND);
});

Deno.test("after an RTO the window slow-starts from one segment while still in loss state", () => {
  const e = new RecoveryEngine({ mss: 1000, tlp: false });
  e.reset(0, 0);
  sendNew(e, 10, 1000, 0);
  assert.equal(e.onTimer(SECOND, false), "rto");
  assert.equal(e.cc.cwnd, 1000);
  const rt = e.nextRetransmit()!;
  assert.ok(e.canSend(rt.len, true));
  e.onSend(rt.seq, rt.len, SECOND, true);
  assert.equal(e.canSend(1000, true), false);
  ackWith(e, SECOND + ms(100), 1000);
  assert.equal(e.state, "loss");
  assert.equal(e.cc.cwnd, 2000);
  // Two more lost segments may now go.
  for (let i = 0; i < 2; i++) {
    const r = e.nextRetransmit()!;
    assert.ok(e.canSend(r.len, true));
    e.onSend(r.seq, r.len, SECOND + ms(100), true);
  }
  assert.equal(e.canSend(1000, true), false);
});

Deno.test("RtoEstimator min RTT expires after its window so a longer path is learned", () => {
  const e = estimator();
  e.sample(ms(10), 0);
  e.sample(ms(50), 100 * SECOND);
  assert.equal(e.minRtt, ms(10));
  e.sample(ms(50), 301 * SECOND);
  assert.equal(e.minRtt, ms(50));
  e.noteMin(ms(40), 302 * SECOND);
  assert.equal(e.minRtt, ms(40));
});

Deno.test("retransmitting the oldest segment restarts the RTO; other retransmissions do not", () => {
  const e = new RecoveryEngine({ mss: 1000, tlp: false });
  e.reset(0, 0);
  sendNew(e, 10, 1000, 0);
  ackWith(e, ms(100), 0, [1000, 4000]); // segment 0 lost: fast retransmit
  assert.equal(e.pollAt(), SECOND); // RTO from the first send, no sample yet
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, ms(100), true);
  assert.equal(e.pollAt(), ms(100) + SECOND);
  e.onSend(5000, 1000, ms(150), true);
  assert.equal(e.pollAt(), ms(100) + SECOND);
});
