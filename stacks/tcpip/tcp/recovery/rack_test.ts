import assert from "node:assert/strict";
import { SECOND } from "../../../time.ts";
import { RecoveryEngine } from "./engine.ts";
import type { RecoveryConfig } from "./api.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

const MSS = 1000;

/** An engine with one 100 ms RTT sample (srtt = min RTT = 100 ms, RTO 300 ms). */
function warm(extra: Partial<RecoveryConfig> = {}): RecoveryEngine {
  const e = new RecoveryEngine({ mss: MSS, ...extra });
  e.reset(0, 0);
  sendNew(e, 1, MSS, 0);
  ackWith(e, ms(100), 1000);
  assert.equal(e.srtt, ms(100));
  return e;
}

/** Sends `n` segments one millisecond apart starting at `t0` ms. */
function spaced(e: RecoveryEngine, n: number, t0: number): void {
  for (let i = 0; i < n; i++) e.onSend(e.sndNxt, MSS, ms(t0 + i), false);
}

Deno.test("RACK does not mark a segment lost before RTT + reo_wnd, and arms the reorder timer", () => {
  const e = warm();
  spaced(e, 10, 1000); // segment i = [1000+1000i, ...) sent at 1000+i ms
  const r = ackWith(e, ms(1101), 1000, [2000, 3000]); // segment 1 delivered, 0 not yet
  assert.equal(r.newlyLostBytes, 0);
  assert.equal(e.state, "disorder");
  assert.equal(e.info().reoWnd, ms(25)); // min RTT / 4
  // 1000 (sent) + 100 (RACK rtt) + 25 (reo_wnd) = 1125 ms
  assert.equal(e.pollAt(), ms(1125));
  assert.equal(e.onTimer(ms(1124), false), "none");
  assert.equal(e.nextRetransmit(), null);
});

Deno.test("RACK reordering timer marks the segment lost when reo_wnd expires", () => {
  const e = warm();
  spaced(e, 10, 1000);
  ackWith(e, ms(1101), 1000, [2000, 3000]);
  assert.equal(e.onTimer(ms(1125), false), "reorder");
  assert.equal(e.state, "recovery");
  const rt = e.nextRetransmit();
  assert.ok(rt !== null);
  assert.equal(rt.seq, 1000);
  assert.equal(rt.len, MSS);
  assert.ok(e.canSend(rt.len, true));
});

Deno.test("RACK marks a segment lost once a segment sent reo_wnd later is delivered", () => {
  const e = warm();
  spaced(e, 10, 1000);
  spaced(e, 1, 1024); // sent 24 ms after segment 0: within reo_wnd
  spaced(e, 1, 1025); // sent 25 ms after segment 0: exactly reo_wnd
  ackWith(e, ms(1101), 1000, [2000, 3000]);
  const r = ackWith(e, ms(1124), 1000, [2000, 3000, 11000, 12000]);
  assert.equal(r.newlyLostBytes, 0); // 1000 + 100 + 25 - 1124 > 0
  assert.equal(e.state, "disorder");
  const r2 = ackWith(e, ms(1125), 1000, [2000, 3000, 11000, 13000]);
  assert.ok(r2.newlyLostBytes >= 1000); // segment 0 (and others sent as early) now lost
  assert.equal(r2.enteredRecovery, true);
  assert.equal(e.nextRetransmit()!.seq, 1000);
});

Deno.test("RACK uses reo_wnd = 0 once DupThresh segments are SACKed without reordering", () => {
  const e = warm();
  spaced(e, 10, 1000);
  const r = ackWith(e, ms(1103), 1000, [2000, 5000]);
  assert.equal(r.newlyLostBytes, 1000);
  assert.equal(e.state, "recovery");
  assert.equal(e.info().reoWnd, 0);
});

Deno.test("RACK keeps a reordering window once reordering was seen", () => {
  const e = warm();
  spaced(e, 10, 1000);
  ackWith(e, ms(1102), 1000, [3000, 4000]); // segment 2 before segment 1
  const r = ackWith(e, ms(1103), 1000, [2000, 4000]); // segment 1 late: reordering
  assert.equal(e.info().reorderingSeen, true);
  assert.equal(r.newlyLostBytes, 0);
  const r2 = ackWith(e, ms(1104), 1000, [2000, 5000]); // 3 SACKed, but reordering seen
  assert.equal(r2.newlyLostBytes, 0);
  assert.equal(e.info().reoWnd, ms(25));
  // Newest delivered: segment 3, sent 1003, RACK rtt 101: 1000 + 101 + 25 = 1126 for segment 0.
  assert.equal(e.pollAt(), ms(1126));
  assert.equal(e.onTimer(ms(1126), false), "reorder");
  assert.equal(e.nextRetransmit()!.seq, 1000);
});

Deno.test("RACK marks a lost retransmission lost again", () => {
  const e = warm();
  spaced(e, 10, 1000);
  ackWith(e, ms(1103), 1000, [2000, 5000]);
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, ms(1103), true);
  assert.equal(e.nextRetransmit(), null);
  spaced(e, 1, 1110); // new data after the retransmission
  // Everything else is SACKed by 1210; the retransmission (sent at 1103) is not: lost again.
  const r = ackWith(e, ms(1210), 1000, [2000, 12000]);
  assert.equal(r.newlyLostBytes, 1000);
  assert.equal(e.nextRetransmit()!.seq, 1000);
});

Deno.test("a D-SACK widens RACK's reordering window", () => {
  const e = warm();
  sendNew(e, 4, MSS, ms(1000));
  ackWith(e, ms(1101), 5000);
  const r = ackWith(e, ms(1102), 5000, [1000, 2000]);
  assert.equal(r.dsack, true);
  spaced(e, 4, 1200);
  ackWith(e, ms(1301), 5000, [6000, 7000]);
  assert.equal(e.info().reoWnd, ms(50)); // 2 * min RTT / 4
});

Deno.test("TLP fires after PTO = 2*SRTT + 2 ms and probes with the last segment", () => {
  const e = warm();
  sendNew(e, 5, MSS, ms(1000));
  assert.equal(e.pollAt(), ms(1202)); // 2*100 ms + Linux's TCP_TIMEOUT_MIN for a multi-segment flight
  assert.equal(e.onTimer(ms(1201), false), "none");
  assert.equal(e.onTimer(ms(1202), false), "tlp");
  const p = e.nextRetransmit();
  assert.ok(p !== null);
  assert.equal(p.isProbe, true);
  assert.equal(p.seq, 5000);
  assert.equal(p.len, MSS);
  assert.ok(e.canSend(p.len, true));
  e.onSend(p.seq, p.len, ms(1202), true);
  assert.equal(e.nextRetransmit(), null);
  assert.equal(e.pollAt(), ms(1202) + e.rto); // only the RTO remains
  assert.equal(e.info().tlpCount, 1);
  assert.equal(e.info().retransSegs, 1);
});

Deno.test("TLP probes with new data when the core has some, even with cwnd full", () => {
  const e = warm();
  sendNew(e, 11, MSS, ms(1000)); // cwnd is 11000 after the warm-up ACK
  assert.equal(e.sendQuota(), 0);
  assert.equal(e.onTimer(ms(1202), true), "tlp");
  assert.equal(e.nextRetransmit(), null);
  assert.equal(e.sendQuota(), MSS);
  e.onSend(e.sndNxt, MSS, ms(1202), false);
  assert.equal(e.sendQuota(), 0);
  assert.equal(e.pollAt(), ms(1202) + e.rto);
});

Deno.test("TLP adds the delayed-ACK allowance with one segment in flight", () => {
  const e = warm({ minRto: SECOND });
  sendNew(e, 1, MSS, ms(1000));
  assert.equal(e.pollAt(), ms(1400)); // 2*100 + 200
  const m = warm({ minRto: SECOND });
  sendNew(m, 2, MSS, ms(1000));
  assert.equal(m.pollAt(), ms(1202)); // 2*100 + 2 with two segments
});

Deno.test("the PTO is capped at the RTO deadline and the probe goes out instead of the RTO", () => {
  const e = warm(); // RTO 300 ms < PTO 400 ms with one segment in flight
  sendNew(e, 1, MSS, ms(1000));
  assert.equal(e.pollAt(), ms(1300));
  assert.equal(e.onTimer(ms(1300), false), "tlp");
  assert.equal(e.cc.cwnd, 10 * MSS); // the idle restart window, no collapse
  const p = e.nextRetransmit()!;
  assert.equal(p.isProbe, true);
  e.onSend(p.seq, p.len, ms(1300), true);
  assert.equal(e.pollAt(), ms(1600));
  assert.equal(e.onTimer(ms(1600), false), "rto");
  assert.equal(e.cc.cwnd, MSS);
});

Deno.test("before any RTT sample no probe is armed: the RTO fires at 1 s (e.g. the SYN)", () => {
  const e = new RecoveryEngine({ mss: MSS });
  e.reset(0, 0);
  e.onSend(0, 1, 0, false); // SYN
  assert.equal(e.pollAt(), SECOND);
  assert.equal(e.onTimer(SECOND, false), "rto");
  const p = e.nextRetransmit()!;
  assert.equal(p.isProbe, false);
  assert.equal(p.len, 1);
  e.onSend(p.seq, p.len, SECOND, true);
  assert.equal(e.pollAt(), 3 * SECOND);
});

Deno.test("a TLP retransmission that repairs a loss reduces the window once", () => {
  const e = warm();
  sendNew(e, 5, MSS, ms(1000));
  e.onTimer(ms(1202), false);
  const p = e.nextRetransmit()!;
  e.onSend(p.seq, p.len, ms(1202), true);
  sendNew(e, 1, MSS, ms(1250));
  const before = e.cc.cwnd;
  ackWith(e, ms(1350), 7000); // beyond the probe's end: no D-SACK came for it
  assert.equal(e.cc.ssthresh, Math.floor(before / 2));
});

Deno.test("a D-SACK for the TLP retransmission avoids the window reduction", () => {
  const e = warm();
  sendNew(e, 5, MSS, ms(1000));
  e.onTimer(ms(1202), false);
  const p = e.nextRetransmit()!;
  e.onSend(p.seq, p.len, ms(1202), true);
  ackWith(e, ms(1203), 6000);
  ackWith(e, ms(1300), 6000, [5000, 6000]);
  sendNew(e, 1, MSS, ms(1300));
  ackWith(e, ms(1400), 7000);
  assert.equal(e.cc.ssthresh, Infinity);
});

Deno.test("a retransmission sent at the same instant after new data is the newer one", () => {
  const e = warm();
  spaced(e, 10, 1000);
  ackWith(e, ms(1101), 1000, [2000, 5000]); // segment 0 lost
  e.onSend(e.sndNxt, MSS, ms(1101), false); // new data first (11000) ...
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, ms(1101), true); // ... then the retransmission, same instant
  const r = ackWith(e, ms(1201), 1000, [2000, 5000, 11000, 12000]);
  assert.equal(r.newlyLostBytes, 6000); // segments 5..10 (sent at 1004..1009), not segment 0
  assert.equal(e.nextRetransmit()!.seq, 5000);
});

Deno.test("a reordering-timer loss during recovery may be retransmitted without waiting for an ACK", () => {
  const e = warm();
  spaced(e, 10, 1000);
  ackWith(e, ms(1102), 1000, [3000, 4000]);
  ackWith(e, ms(1103), 1000, [2000, 4000]); // segment 1 late: reordering seen
  ackWith(e, ms(1104), 1000, [2000, 5000]);
  assert.equal(e.onTimer(e.pollAt(), false), "reorder"); // segment 0 lost
  assert.equal(e.state, "recovery");
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, ms(1126), true);
  // Segment 4 (sent at 1004) is missing below SACKed segments 5..7 (newest sent at 1007).
  ackWith(e, ms(1130), 1000, [6000, 9000, 2000, 5000]);
  assert.equal(e.nextRetransmit(), null); // still inside the reordering window
  while (e.sendQuota() >= MSS) e.onSend(e.sndNxt, MSS, ms(1130), false);
  assert.equal(e.canSend(MSS, true), false);
  assert.equal(e.onTimer(e.pollAt(), false), "reorder");
  assert.equal(e.nextRetransmit()!.seq, 5000);
  assert.equal(e.canSend(MSS, true), true);
});
