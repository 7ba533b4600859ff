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

function episode(window: number): () => void {
  const e = new RecoveryEngine({ mss: MSS, capacity: window * 2 });
  e.reset(0, 0);
  let now = 0;
  const sack = new Uint32Array(8);
  return () => {
    (e.cc as { cwnd: number }).cwnd = 1 << 30;
    now += 1_000_000_000; // idle between episodes
    const base = e.sndUna;
    for (let i = 0; i < window; i++) e.onSend(e.sndNxt, MSS, now + i * 1000, false);
    const t = now + 50_000_000;
    for (let k = 1; k < window; k++) {
      sack[0] = (base + MSS) >>> 0;
      sack[1] = (base + (k + 1) * MSS) >>> 0;
      e.onAck(t + k * 1000, base, sack, 1, -1, false);
      const rt = e.nextRetransmit();
      if (rt !== null) e.onSend(rt.seq, rt.len, t + k * 1000, true);
    }
    e.onAck(t + 60_000_000, e.sndNxt, empty, 0, -1, false);
    if (e.inFlight !== 0) throw new Error("episode did not complete");
  };
}

const ep64 = episode(64);
const ep1024 = episode(1024);

Deno.bench("SACK loss episode: 64 segments, 1 lost, 64 ACKs", { group: "episode" }, () => {
  ep64();
});

Deno.bench("SACK loss episode: 1024 segments, 1 lost, 1024 ACKs", { group: "episode" }, () => {
  ep1024();
});
