import assert from "node:assert/strict";
import { SECOND } from "../../../time.ts";
import { seqAdd } from "../seq.ts";
import { RecoveryEngine } from "./engine.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

const MSS = 1000;

function engine(iss = 0, timestamps = false): RecoveryEngine {
  const e = new RecoveryEngine({ mss: MSS, timestamps, tlp: false });
  e.reset(iss, 0);
  return e;
}

Deno.test("SACK marks whole segments and removes them from pipe", () => {
  const e = engine();
  sendNew(e, 10, MSS, 0);
  const r = ackWith(e, ms(10), 0, [2000, 4000]);
  assert.equal(r.newlySackedBytes, 2000);
  assert.equal(e.info().sackedBytes, 2000);
  assert.equal(e.inFlight, 8000);
  assert.equal(e.state, "disorder");
});

Deno.test("overlapping SACK blocks in one ACK are counted once", () => {
  const e = engine();
  sendNew(e, 10, MSS, 0);
  const r = ackWith(e, ms(10), 0, [2000, 4000, 3000, 5000]);
  assert.equal(r.newlySackedBytes, 3000);
  assert.equal(e.info().sackedBytes, 3000);
  // The same blocks again (a repeated ACK) add nothing.
  const r2 = ackWith(e, ms(11), 0, [3000, 5000, 2000, 4000]);
  assert.equal(r2.newlySackedBytes, 0);
  assert.equal(e.info().sackedBytes, 3000);
});

Deno.test("SACK blocks in any order give the same scoreboard", () => {
  const a = engine();
  const b = engine();
  sendNew(a, 10, MSS, 0);
  sendNew(b, 10, MSS, 0);
  ackWith(a, ms(10), 0, [1000, 2000, 5000, 6000, 8000, 9000]);
  ackWith(b, ms(10), 0, [8000, 9000, 1000, 2000, 5000, 6000]);
  assert.equal(a.info().sackedBytes, 3000);
  assert.equal(b.info().sackedBytes, 3000);
  assert.equal(a.inFlight, b.inFlight);
});

Deno.test("SACK blocks below snd_una are ignored and a straddling block is clamped", () => {
  const e = engine();
  sendNew(e, 10, MSS, 0);
  ackWith(e, ms(10), 2000); // una = 2000
  // A stale ACK (ack below una) with a block entirely below una (not first: not a D-SACK).
  const r = ackWith(e, ms(12), 1000, [5000, 6000, 0, 1000]);
  assert.equal(r.dsack, false);
  assert.equal(r.newlyAckedBytes, 0);
  assert.equal(r.newlySackedBytes, 1000);
  assert.equal(e.sndUna, 2000);
  // A block that starts below una only counts from una on.
  const r2 = ackWith(e, ms(13), 2000, [7000, 8000, 1500, 3000]);
  assert.equal(r2.newlySackedBytes, 2000);
  assert.equal(e.info().sackedBytes, 3000);
});

Deno.test("a SACK block beyond snd_nxt is clamped to snd_nxt", () => {
  const e = engine();
  sendNew(e, 4, MSS, 0);
  const r = ackWith(e, ms(10), 0, [3000, 9000]);
  assert.equal(r.newlySackedBytes, 1000);
  const r2 = ackWith(e, ms(11), 0, [6000, 9000]);
  assert.equal(r2.newlySackedBytes, 0);
});

Deno.test("a SACK covering part of a segment splits its record; the rest stays in flight", () => {
  const e = engine();
  sendNew(e, 4, MSS, 0);
  const r = ackWith(e, ms(10), 0, [2500, 3000]);
  assert.equal(r.newlySackedBytes, 500);
  assert.equal(e.inFlight, 3500);
  // Later the rest of that segment and the next one arrive.
  const r2 = ackWith(e, ms(11), 0, [2000, 4000]);
  assert.equal(r2.newlySackedBytes, 1500);
  assert.equal(e.info().sackedBytes, 2000);
  // The cumulative ACK then covers everything exactly once.
  const r3 = ackWith(e, ms(12), 4000);
  assert.equal(r3.newlyAckedBytes, 4000);
  assert.equal(e.inFlight, 0);
  assert.equal(e.info().sackedBytes, 0);
});

Deno.test("a cumulative ACK inside a segment trims its record", () => {
  const e = engine();
  sendNew(e, 2, MSS, 0);
  const r = ackWith(e, ms(10), 500);
  assert.equal(r.newlyAckedBytes, 500);
  assert.equal(r.newlyAckedPackets, 0);
  assert.equal(e.inFlight, 1500);
  const r2 = ackWith(e, ms(11), 2000);
  assert.equal(r2.newlyAckedBytes, 1500);
  assert.equal(r2.newlyAckedPackets, 2);
});

Deno.test("the scoreboard works across the 2^32 wrap", () => {
  const iss = 0xffff_f000; // 4096 bytes below the wrap
  const e = engine(iss);
  sendNew(e, 8, MSS, 0); // [iss, iss+8000) crosses 0
  assert.equal(e.sndNxt, seqAdd(iss, 8000));
  // Block [iss+3000, iss+6000) straddles the wrap (iss+4096 == 0).
  const r = ackWith(e, ms(10), iss, [seqAdd(iss, 3000), seqAdd(iss, 6000)]);
  assert.equal(r.newlySackedBytes, 3000);
  // Partial block across the wrap point inside segment 4 ([iss+4000, iss+5000)).
  const r2 = ackWith(e, ms(11), iss, [seqAdd(iss, 1000), seqAdd(iss, 1500)]);
  assert.equal(r2.newlySackedBytes, 500);
  const r3 = ackWith(e, ms(12), seqAdd(iss, 4500));
  assert.equal(r3.newlyAckedBytes, 4500);
  assert.equal(e.sndUna, seqAdd(iss, 4500));
  assert.equal(e.info().sackedBytes, 1500);
  assert.equal(e.inFlight, 2000);
  const r4 = ackWith(e, ms(13), seqAdd(iss, 8000));
  assert.equal(r4.newlyAckedBytes, 3500);
  assert.equal(e.inFlight, 0);
});

Deno.test("an ACK for unsent data is ignored", () => {
  const e = engine();
  sendNew(e, 2, MSS, 0);
  const r = ackWith(e, ms(10), 5000);
  assert.equal(r.ignored, true);
  assert.equal(e.sndUna, 0);
});

Deno.test("D-SACK: first block below the cumulative ACK is detected", () => {
  const e = engine();
  sendNew(e, 4, MSS, 0);
  ackWith(e, ms(10), 2000);
  const r = ackWith(e, ms(11), 2000, [0, 1000]);
  assert.equal(r.dsack, true);
  assert.equal(r.newlySackedBytes, 0);
  assert.equal(e.info().dsacks, 1);
});

Deno.test("D-SACK: first block inside the second block is detected", () => {
  const e = engine();
  sendNew(e, 8, MSS, 0);
  const r = ackWith(e, ms(10), 0, [3000, 4000, 2000, 5000]);
  assert.equal(r.dsack, true);
  assert.equal(r.newlySackedBytes, 3000); // the second block still counts
  const r2 = ackWith(e, ms(11), 0, [6000, 7000, 2000, 5000]);
  assert.equal(r2.dsack, false);
  assert.equal(r2.newlySackedBytes, 1000);
});

/** 10 segments, segment 0 delayed: three SACKs make RACK declare it lost. */
function lossEpisode(timestamps: boolean): RecoveryEngine {
  const e = engine(0, timestamps);
  sendNew(e, 10, MSS, 0);
  const r = ackWith(e, ms(100), 0, [1000, 4000], timestamps ? ms(100) : -1);
  assert.equal(r.enteredRecovery, true);
  assert.equal(e.state, "recovery");
  assert.equal(e.cc.ssthresh, 5000);
  const rt = e.nextRetransmit();
  assert.ok(rt !== null);
  assert.equal(rt.seq, 0);
  assert.ok(e.canSend(rt.len, true));
  e.onSend(rt.seq, rt.len, ms(100), true);
  return e;
}

Deno.test("a D-SACK for the only retransmission undoes the reduction", () => {
  const e = lossEpisode(false);
  // The original segment 0 arrives late: the ACK jumps, then the copy is D-SACKed.
  const r1 = ackWith(e, ms(120), 10000);
  assert.equal(r1.exitedRecovery, true);
  assert.equal(e.cc.ssthresh, 5000);
  assert.ok(e.cc.cwnd <= 6000); // ssthresh, plus this ACK's congestion-avoidance growth
  const r2 = ackWith(e, ms(200), 10000, [0, 1000]);
  assert.equal(r2.dsack, true);
  assert.equal(r2.spuriousUndo, true);
  assert.equal(e.cc.cwnd, 10000);
  assert.equal(e.cc.ssthresh, Infinity);
  assert.equal(e.info().spuriousUndos, 1);
  assert.equal(e.info().reorderingSeen, true);
});

Deno.test("a D-SACK for data that was not retransmitted in the episode does not undo", () => {
  const e = lossEpisode(false);
  const r = ackWith(e, ms(150), 0, [7000, 8000, 6000, 9000]); // D-SACK of an original
  assert.equal(r.dsack, true);
  assert.equal(r.spuriousUndo, false);
  const r2 = ackWith(e, ms(200), 10000);
  assert.equal(r2.spuriousUndo, false);
  assert.equal(e.cc.ssthresh, 5000);
});

Deno.test("Eifel: an ACK echoing the original's timestamp after an RTO undoes it", () => {
  const e = engine(0, true);
  sendNew(e, 10, MSS, 0);
  assert.equal(e.onTimer(SECOND, false), "rto");
  assert.equal(e.cc.cwnd, MSS);
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, SECOND, true);
  // Echoed TSval was sent at 10 ms: the original was only delayed.
  const r = ackWith(e, SECOND + ms(50), 10000, [], SECOND + ms(40));
  assert.equal(r.spuriousUndo, true);
  assert.equal(e.state, "open");
  assert.ok(e.cc.cwnd >= 10000); // restored, then grown by this ACK in slow start
  assert.equal(e.cc.ssthresh, Infinity);
});

Deno.test("Eifel: an ACK echoing the retransmission's timestamp keeps the RTO response", () => {
  const e = engine(0, true);
  sendNew(e, 10, MSS, 0);
  e.onTimer(SECOND, false);
  const rt = e.nextRetransmit()!;
  e.onSend(rt.seq, rt.len, SECOND, true);
  const r = ackWith(e, SECOND + ms(50), 1000, [], ms(50));
  assert.equal(r.spuriousUndo, false);
  assert.equal(e.state, "loss");
  assert.equal(e.cc.ssthresh, 5000);
});

Deno.test("Eifel at the end of fast recovery undoes when the original filled the hole", () => {
  const e = lossEpisode(true);
  const r = ackWith(e, ms(130), 10000, [], ms(130)); // echo of the original sent at 0
  assert.equal(r.spuriousUndo, true);
  assert.ok(e.cc.cwnd >= 10000);
  assert.equal(e.cc.ssthresh, Infinity);
  assert.equal(e.state, "open");
});

Deno.test("retransmitting a higher range first does not hide a lower lost range", () => {
  const e = engine();
  sendNew(e, 10, MSS, 0);
  assert.equal(e.onTimer(e.pollAt(), false), "rto"); // everything lost
  e.onSend(5000, MSS, e.pollAt(), true); // the core chose a higher range first
  assert.equal(e.nextRetransmit()!.seq, 0);
});

Deno.test("a SACK block that once reached beyond snd_nxt still marks data sent later", () => {
  const e = engine();
  sendNew(e, 4, MSS, 0);
  ackWith(e, ms(10), 0, [2000, 6000]); // clamped to [2000, 4000)
  sendNew(e, 2, MSS, ms(11)); // [4000, 6000)
  const r = ackWith(e, ms(20), 0, [2000, 6000]);
  assert.equal(r.newlySackedBytes, 2000);
  assert.equal(e.info().sackedBytes, 4000);
});

Deno.test("a growing SACK block only adds its new records", () => {
  const e = engine();
  sendNew(e, 20, MSS, 0);
  let total = 0;
  for (let k = 2; k <= 20; k++) {
    total += ackWith(e, ms(10 + k), 0, [1000, k * 1000]).newlySackedBytes;
  }
  assert.equal(total, 19000);
  assert.equal(e.info().sackedBytes, 19000);
  assert.equal(e.audit(), null);
});
