import assert from "node:assert/strict";
import { RecoveryEngine } from "./engine.ts";
import { type AckSample, RenoCc } from "./cc.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

const MSS = 1000;

/**
 * The RFC 6937 section 6 scenario: Reno with cwnd = 20 segments, the first segment of the
 * window lost, every following segment delivered and SACKed one per ACK. ssthresh = 10,
 * RecoverFS = 20, so PRR sends one segment per two ACKs while pipe > ssthresh, then PRR-SSRB
 * keeps pipe at ssthresh.
 */
function twentySegmentWindow(): RecoveryEngine {
  // Reno whose window does not grow, so the example's numbers stay exact.
  class FrozenReno extends RenoCc {
    override onAck(_s: AckSample): void {}
  }
  const cc = new FrozenReno();
  const e = new RecoveryEngine({ mss: MSS, tlp: false, cc });
  e.reset(0, 0);
  cc.cwnd = 20 * MSS;
  sendNew(e, 10, MSS, 0);
  for (let i = 1; i <= 10; i++) ackWith(e, ms(100), i * MSS);
  sendNew(e, 20, MSS, ms(100)); // [10000, 30000), no idle period (no restart window)
  assert.equal(e.sendQuota(), 0);
  return e;
}

Deno.test("PRR sends one segment per two ACKs while pipe > ssthresh (RFC 6937 example)", () => {
  const e = twentySegmentWindow();
  const base = 10 * MSS;
  ackWith(e, ms(1100), base, [base + 1000, base + 2000]);
  ackWith(e, ms(1101), base, [base + 1000, base + 3000]);
  assert.equal(e.state, "disorder");
  const r3 = ackWith(e, ms(1102), base, [base + 1000, base + 4000]);
  assert.equal(r3.enteredRecovery, true);
  assert.equal(e.cc.ssthresh, 10 * MSS);
  // The fast retransmit is always allowed (sndcnt = ceil(1*10/20) = 1 segment after rounding up).
  const rt = e.nextRetransmit()!;
  assert.equal(rt.seq, base);
  assert.ok(e.canSend(MSS, true));
  e.onSend(rt.seq, rt.len, ms(1102), true);
  assert.equal(e.sendQuota(), 0);
  assert.equal(e.inFlight, 17 * MSS);

  const quotas: number[] = [];
  const pipes: number[] = [];
  for (let k = 4; k <= 16; k++) {
    ackWith(e, ms(1100 + k), base, [base + 1000, base + (k + 1) * 1000]);
    const q = e.sendQuota();
    quotas.push(q / MSS);
    pipes.push(e.inFlight / MSS);
    if (q >= MSS) e.onSend(e.sndNxt, MSS, ms(1100 + k), false);
  }
  // ACK#: 4  5  6  7  8  9 10 11 12 13 14 15 16
  assert.deepEqual(quotas, [0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1]);
  // pipe after each ACK (before sending): proportional phase, then held at ssthresh - 1
  assert.deepEqual(pipes, [16, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 9, 9]);
  assert.equal(e.state, "recovery");
});

Deno.test("PRR-SSRB allows at most DeliveredData + 1 MSS per ACK when pipe < ssthresh", () => {
  const e = twentySegmentWindow();
  const base = 10 * MSS;
  // One ACK SACKs 12 segments at once (a stretch ACK): losses of segment 0 only.
  ackWith(e, ms(1100), base, [base + 1000, base + 4000]);
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, ms(1100), true);
  const r = ackWith(e, ms(1101), base, [base + 1000, base + 16000]);
  // pipe = 20 - 15 sacked - 1 lost + 1 retransmitted = 5 < ssthresh 10.
  assert.equal(e.inFlight, 5 * MSS);
  assert.equal(r.rate.ackedSacked, 12 * MSS);
  // limit = max(prr_delivered - prr_out, DeliveredData) + MSS = 14 - 1 + 1 = 14 segments;
  // sndcnt = min(ssthresh - pipe, limit) = 5 segments.
  assert.equal(e.sendQuota(), 5 * MSS);
});

Deno.test("fast recovery ends at the recovery point with cwnd = ssthresh", () => {
  const e = twentySegmentWindow();
  const base = 10 * MSS;
  ackWith(e, ms(1100), base, [base + 1000, base + 4000]);
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, ms(1100), true);
  const r = ackWith(e, ms(1200), base + 20 * MSS);
  assert.equal(r.exitedRecovery, true);
  assert.equal(e.state, "open");
  assert.equal(e.cc.ssthresh, 10 * MSS);
  assert.equal(e.cc.cwnd, 10 * MSS);
  assert.equal(e.info().recoveries, 1);
});

Deno.test("without SACK, three duplicate ACKs start NewReno recovery and a partial ACK retransmits", () => {
  const e = new RecoveryEngine({ mss: MSS, sack: false });
  e.reset(0, 0);
  sendNew(e, 10, MSS, 0);
  ackWith(e, ms(100), 0);
  ackWith(e, ms(101), 0);
  assert.equal(e.state, "disorder");
  const r = ackWith(e, ms(102), 0);
  assert.equal(r.dupAck, true);
  assert.equal(r.enteredRecovery, true);
  const rt = e.nextRetransmit()!;
  assert.equal(rt.seq, 0);
  e.onSend(rt.seq, rt.len, ms(102), true);
  // Partial ACK: segment 0 repaired, segment 4 was lost too.
  const p = ackWith(e, ms(200), 4000);
  assert.equal(p.exitedRecovery, false);
  assert.equal(e.nextRetransmit()!.seq, 4000);
});
