/**
 * Recovery-engine speed: cost of one ACK in steady state (one segment acknowledged, one new
 * segment sent, 64 segments in flight), with and without timestamps/pacing, and one whole
 * SACK loss episode (64-segment window, one loss, RACK detection, retransmission, recovery).
 *
 * Run: `deno bench -A bench/recovery_bench.ts`. The steady-state numbers are ns per
 * onAck + onSend pair.
 *
 * @module
 */
import { RecoveryEngine } from "../stacks/tcpip/tcp/recovery/mod.ts";

const MSS = 1448;
const WINDOW = 64;
const empty = new Uint32Array(8);

function steady(pacing: boolean, timestamps: boolean): () => void {
  const e = new RecoveryEngine({ mss: MSS, pacing, timestamps });
  e.reset(0, 0);
  e.setNegotiated(true, timestamps, false);
  e.setMss(MSS);
  // A window large enough that cwnd never limits the loop.
  (e.cc as { cwnd: number }).cwnd = 1 << 30;
  let now = 0;
  const gap = 10_000; // 10 us between segments
  for (let i = 0; i < WINDOW; i++) {
    e.onSend(e.sndNxt, MSS, now, false);
    now += gap;
  }
  return () => {
    now += gap;
    const ack = (e.sndUna + MSS) >>> 0;
    e.onAck(now, ack, empty, 0, timestamps ? WINDOW * gap : -1, false);
    e.onSend(e.sndNxt, MSS, now, false);
  };
}

const plain = steady(false, false);
const tsPaced = steady(true, true);

Deno.bench("onAck+onSend steady state, 64 in flight", { group: "steady", baseline: true }, () => {
  plain();
});

Deno.bench("onAck+onSend steady state, timestamps + pacing", { group: "steady" }, () => {
  tsPaced();
});

const lossEngine = new RecoveryEngine({ mss: MSS });
lossEngine.reset(0, 0);
let lossNow = 0;
const sack = new Uint32Array(8);

Deno.bench("SACK loss episode: 64 segments, 1 lost, ~64 ACKs", { group: "episode" }, () => {
  const e = lossEngine;
  (e.cc as { cwnd: number }).cwnd = 1 << 30;
  lossNow += 1_000_000_000; // idle between episodes
  const base = e.sndUna;
  for (let i = 0; i < WINDOW; i++) e.onSend(e.sndNxt, MSS, lossNow + i * 1000, false);
  const t = lossNow + 50_000_000;
  for (let k = 1; k < WINDOW; k++) {
    sack[0] = (base + MSS) >>> 0;
    sack[1] = (base + (k + 1) * MSS) >>> 0;
    e.onAck(t + k * 1000, base, sack, 1, -1, false);
    const rt = e.nextRetransmit();
    if (rt !== null) e.onSend(rt.seq, rt.len, t + k * 1000, true);
  }
  e.onAck(t + 60_000_000, e.sndNxt, empty, 0, -1, false);
  if (e.inFlight !== 0) throw new Error("episode did not complete");
});
