import assert from "node:assert/strict";
import { RenoCc } from "./cc.ts";
import { RecoveryEngine } from "./engine.ts";
import { ackWith, ms } from "./testing.ts";

// Congestion-window validation (AckSample.isCwndLimited, Linux tcp_is_cwnd_limited): a scripted
// loss-free path of one RTT (100 ms) where every segment is ACKed on its own.

const MSS = 1000;

interface Flow {
  e: RecoveryEngine;
  flags: boolean[];
  /** Virtual clock: rounds follow each other without idle gaps (no RFC 5681 idle restart). */
  t: number;
}

function flow(): Flow {
  const e = new RecoveryEngine({ mss: MSS, tlp: false });
  e.reset(0, 0);
  const f: Flow = { e, flags: [], t: ms(100) };
  e.onAckSample = (s) => {
    f.flags.push(s.isCwndLimited);
  };
  return f;
}

/**
 * Runs `rounds` round trips: each round the transmit loop of recovery_api.md sends what
 * `sendQuota()` (cwnd AND peer window `rwnd`) allows of `appBytes` per round (Infinity: bulk),
 * then every segment is ACKed one RTT later with the peer window advertised again.
 */
function run(f: Flow, rounds: number, rwnd: number, appBytes = Infinity): void {
  const e = f.e;
  e.setPeerWindow(rwnd);
  let t = f.t;
  for (let r = 0; r < rounds; r++) {
    let app = appBytes;
    const sent: number[] = [];
    for (;;) {
      const len = Math.min(MSS, e.sendQuota(), app);
      if (len <= 0) {
        if (app <= 0) e.onAppLimited();
        break;
      }
      e.onSend(e.sndNxt, len, t, false);
      app -= len;
      sent.push(e.sndNxt);
    }
    t += ms(100);
    for (const end of sent) {
      ackWith(e, t, end);
      e.setPeerWindow(rwnd);
    }
    t += ms(1);
  }
  f.t = t;
}

Deno.test("a flow limited by the receiver's window (4 segments, cwnd 10) never grows cwnd in slow start", () => {
  const f = flow();
  run(f, 50, 4 * MSS);
  assert.equal(f.e.cc.cwnd, 10 * MSS);
  assert.ok(f.flags.length === 200 && f.flags.every((v) => !v), "no sample is cwnd-limited");
});

Deno.test("slow start under a receiver window grows cwnd to twice the largest flight, then stops", () => {
  // rwnd 8 segments: cwnd < 2 x 8 segments counts as limited (slow start may double what was
  // used, as Linux), so cwnd grows from 10 to exactly 16 segments and stays there.
  const f = flow();
  run(f, 50, 8 * MSS);
  assert.equal(f.e.cc.cwnd, 16 * MSS);
});

Deno.test("a receiver-window-limited flow in congestion avoidance does not grow cwnd", () => {
  const f = flow();
  const cc = f.e.cc as RenoCc;
  cc.ssthresh = 10 * MSS; // cwnd 10 segments = ssthresh: congestion avoidance
  run(f, 100, 8 * MSS);
  assert.equal(cc.cwnd, 10 * MSS);
  assert.ok(f.flags.every((v) => !v));
});

Deno.test("an app-limited flow (3 segments per RTT) grows cwnd neither in slow start nor in congestion avoidance", () => {
  const f = flow();
  run(f, 50, 1 << 30, 3 * MSS);
  assert.equal(f.e.cc.cwnd, 10 * MSS);
  const cc = f.e.cc as RenoCc;
  cc.ssthresh = 10 * MSS;
  run(f, 100, 1 << 30, 8 * MSS);
  assert.equal(cc.cwnd, 10 * MSS);
  assert.ok(f.flags.every((v) => !v));
});

Deno.test("a cwnd-limited bulk flow grows: slow start doubles per RTT, congestion avoidance adds one MSS per RTT", () => {
  const f = flow();
  run(f, 3, 1 << 30);
  assert.equal(f.e.cc.cwnd, 80 * MSS); // 10 -> 20 -> 40 -> 80 segments
  assert.ok(f.flags.every((v) => v));
  const cc = f.e.cc as RenoCc;
  cc.ssthresh = cc.cwnd; // congestion avoidance from 80 segments
  run(f, 10, 1 << 30);
  assert.equal(cc.cwnd, 90 * MSS);
  assert.ok(f.flags.every((v) => v));
});

Deno.test("the mark follows the flow: receiver-limited rounds freeze cwnd, a larger window resumes growth", () => {
  const f = flow();
  const cc = f.e.cc as RenoCc;
  cc.ssthresh = 10 * MSS;
  run(f, 30, 5 * MSS);
  assert.equal(cc.cwnd, 10 * MSS);
  run(f, 10, 1 << 30);
  // The first round after the window opened still carries the last (unmarked) window's
  // verdict for its first ACKs, then each round adds one MSS.
  assert.ok(cc.cwnd >= 18 * MSS && cc.cwnd <= 20 * MSS, `cwnd ${cc.cwnd}`);
});
