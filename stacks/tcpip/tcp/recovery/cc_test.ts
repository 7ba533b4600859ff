import assert from "node:assert/strict";
import type { AckSample, CongestionControl } from "./cc.ts";
import { createCc, initialWindow, registerCc, RenoCc, UnknownCcWarning } from "./cc.ts";

function sample(ackedBytes: number, over: Partial<AckSample> = {}): AckSample {
  return {
    ackedBytes,
    ackedPackets: 1,
    delivered: ackedBytes,
    deliveredCe: 0,
    interval: -1,
    rtt: -1,
    minRtt: -1,
    srtt: -1,
    inFlight: 0,
    priorInFlight: 100_000,
    losses: 0,
    isAppLimited: false,
    isCwndLimited: true,
    ece: false,
    inRecovery: false,
    now: 0,
    mss: 1000,
    totalDelivered: ackedBytes,
    priorDelivered: 0,
    ...over,
  };
}

Deno.test("RenoCc starts at the RFC 6928 initial window", () => {
  const cc = new RenoCc();
  cc.init(1460, 0);
  assert.equal(cc.cwnd, 14600);
  assert.equal(cc.ssthresh, Infinity);
  assert.equal(initialWindow(1000), 10000);
  assert.equal(initialWindow(9000), 18000);
});

Deno.test("RenoCc slow start grows by acked bytes but at most 2*MSS per ACK (ABC L=2)", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  cc.onAck(sample(1000));
  assert.equal(cc.cwnd, 11000);
  cc.onAck(sample(5000));
  assert.equal(cc.cwnd, 13000);
});

Deno.test("RenoCc congestion avoidance adds one MSS per cwnd of acked bytes", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  cc.onCongestion("loss", 0); // ssthresh 5000
  cc.onRecoveryExit(0); // cwnd 5000
  assert.equal(cc.cwnd, 5000);
  for (let i = 0; i < 4; i++) cc.onAck(sample(1000));
  assert.equal(cc.cwnd, 5000);
  cc.onAck(sample(1000));
  assert.equal(cc.cwnd, 6000);
  for (let i = 0; i < 6; i++) cc.onAck(sample(1000));
  assert.equal(cc.cwnd, 7000);
});

Deno.test("RenoCc halves on loss at recovery exit, collapses on RTO, halves at once on ECN", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  cc.onAck(sample(2000)); // 12000
  cc.onCongestion("loss", 0);
  assert.equal(cc.ssthresh, 6000);
  assert.equal(cc.cwnd, 12000); // PRR in the engine does the reduction
  cc.onAck(sample(1000, { inRecovery: true }));
  assert.equal(cc.cwnd, 12000);
  cc.onRecoveryExit(0);
  assert.equal(cc.cwnd, 6000);
  cc.onCongestion("rto", 0);
  assert.equal(cc.cwnd, 1000);
  assert.equal(cc.ssthresh, 3000);
  cc.onRecoveryExit(0); // after an RTO, slow start continues from 1 MSS
  assert.equal(cc.cwnd, 1000);
  const e = new RenoCc();
  e.init(1000, 0);
  e.onCongestion("ecn", 0);
  assert.equal(e.cwnd, 5000);
  assert.equal(e.ssthresh, 5000);
  assert.equal(cc.ssthresh >= 2000, true);
});

Deno.test("RenoCc ssthresh never drops below 2*MSS", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  cc.onCongestion("rto", 0);
  cc.onCongestion("rto", 0);
  assert.equal(cc.ssthresh, 2000);
});

Deno.test("RenoCc onUndo restores the window saved at the reduction", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  cc.onCongestion("rto", 0);
  assert.equal(cc.cwnd, 1000);
  cc.onUndo(0);
  assert.equal(cc.cwnd, 10000);
  assert.equal(cc.ssthresh, Infinity);
});

Deno.test("RenoCc does not grow while app-limited with a mostly empty window", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  cc.onAck(sample(1000, { isAppLimited: true, priorInFlight: 1000 }));
  assert.equal(cc.cwnd, 10000);
});

Deno.test("RenoCc grows neither in slow start nor in congestion avoidance when the sample is not cwnd-limited", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  for (let i = 0; i < 10; i++) cc.onAck(sample(2000, { isCwndLimited: false }));
  assert.equal(cc.cwnd, 10000);
  cc.onCongestion("ecn", 0); // ssthresh = cwnd = 5000: congestion avoidance
  for (let i = 0; i < 20; i++) cc.onAck(sample(1000, { isCwndLimited: false }));
  assert.equal(cc.cwnd, 5000);
  for (let i = 0; i < 5; i++) cc.onAck(sample(1000));
  assert.equal(cc.cwnd, 6000);
});

Deno.test("RenoCc idle restart caps cwnd at the initial window", () => {
  const cc = new RenoCc();
  cc.init(1000, 0);
  for (let i = 0; i < 10; i++) cc.onAck(sample(2000));
  assert.equal(cc.cwnd, 30000);
  cc.onIdleRestart(0);
  assert.equal(cc.cwnd, 10000);
});

Deno.test("createCc() gives Reno plus a typed warning for an unknown name", () => {
  const ok = createCc("reno");
  assert.equal(ok.cc.name, "reno");
  assert.equal(ok.warning, null);
  const bad = createCc("cubic-typo");
  assert.equal(bad.cc.name, "reno");
  assert.ok(bad.warning instanceof UnknownCcWarning);
  assert.equal(bad.warning.requested, "cubic-typo");
  assert.match(bad.warning.message, /registerCc/);
});

Deno.test("registerCc() makes a custom algorithm available by name", () => {
  class Fixed extends RenoCc {
    override readonly name: string = "fixed-test";
  }
  registerCc("fixed-test", (): CongestionControl => new Fixed());
  const r = createCc("fixed-test");
  assert.equal(r.cc.name, "fixed-test");
  assert.equal(r.warning, null);
});
