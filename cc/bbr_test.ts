import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import type { WasmCc } from "./host.ts";
import { loadBuilt, MutableAckSample } from "./testing.ts";

// Slot word indexes of cc/src/bbr.ts.
const W = {
  cwnd: 0,
  ssthresh: 1,
  pacing: 3,
  mode: 4,
  rttCnt: 5,
  packetConservation: 8,
  priorCwnd: 11,
  minRtt: 12,
  minRttStamp: 13,
  probeRttDone: 14,
  fullBwReached: 19,
  cycleIdx: 20,
  pacingGain: 22,
  cwndGain: 23,
  bwT0: 26,
  bwV0: 27,
} as const;
const STARTUP = 0, DRAIN = 1, PROBE_BW = 2, PROBE_RTT = 3;
const MSS = 1448;

/** Drives a BBR flow with explicit rate samples, one ACK per packet. */
class Driver {
  readonly s = new MutableAckSample();
  now = 1 * SECOND;
  /** cwnd before the last ACK. */
  prevCwnd = 0;
  constructor(readonly cc: WasmCc) {
    this.s.mss = MSS;
  }
  word(i: number): number {
    return this.cc.stateView()![i]!;
  }
  /**
   * One round: `k` ACKs spread over `rtt`, each a sample of `bw` packets/µs over a window of k
   * packets (so each call is exactly one BBR round once the first has started).
   */
  round(
    k: number,
    bw: number,
    rtt: number,
    opts: { inFlightPkts?: number; appLimited?: boolean; stopWhen?: () => boolean } = {},
  ): void {
    const s = this.s;
    for (let i = 0; i < k; i++) {
      this.now += Math.round(rtt / k);
      s.now = this.now;
      s.ackedBytes = MSS;
      s.ackedPackets = 1;
      s.delivered = k * MSS;
      s.interval = Math.round((k / bw) * 1000);
      s.rtt = rtt;
      s.minRtt = rtt;
      s.srtt = rtt;
      const infl = (opts.inFlightPkts ?? this.cc.cwnd / MSS) * MSS;
      s.inFlight = infl;
      s.priorInFlight = infl + MSS;
      s.isAppLimited = opts.appLimited ?? false;
      this.prevCwnd = this.cc.cwnd;
      this.cc.onAck(s);
      if (opts.stopWhen?.() === true) return;
    }
  }
  mode(): number {
    return this.word(W.mode);
  }
}

async function bbrDriver(): Promise<Driver> {
  const { host, modules } = await loadBuilt(["bbr"]);
  const cc = host.createFlow(modules.get("bbr")!) as WasmCc;
  cc.init(MSS, 0);
  return new Driver(cc);
}

// 10 Mbit/s ~ 0.863 packets/ms; 40 ms RTT -> BDP ~ 34.5 packets.
const BW = 10e6 / 8 / MSS / 1e6; // packets per µs
const RTT = 40 * MILLISECOND;

/** Runs startup until PROBE_BW; returns the rounds it took. */
function toProbeBw(d: Driver): number {
  let rounds = 0;
  while (d.mode() !== PROBE_BW && rounds < 40) {
    // Until the pipe is full the delivery rate grows with the window; then it is capped.
    const cwndPkts = d.cc.cwnd / MSS;
    const bw = Math.min(BW, cwndPkts / (RTT / 1000));
    d.round(20, bw, RTT, d.mode() === DRAIN ? { inFlightPkts: 30 } : {});
    rounds++;
  }
  return rounds;
}

Deno.test("bbr starts in STARTUP with gains 2.885 and paces from the initial window over the first RTT", async () => {
  const d = await bbrDriver();
  assert.equal(d.mode(), STARTUP);
  assert.equal(d.cc.cwnd, 10 * MSS);
  assert.equal(d.word(W.pacingGain), 2.885);
  assert.equal(d.word(W.cwndGain), 2.885);
  assert.equal(d.cc.wantsEcn, false);
  // No RTT yet: 10 packets per 1 ms * 2.885 * 0.99.
  assert.ok(Math.abs(d.cc.pacingRate - (10 * MSS / 1e-3) * 2.885 * 0.99) < 1);
});

Deno.test("bbr leaves STARTUP after 3 rounds without 25% bandwidth growth, drains, then cycles in PROBE_BW", async () => {
  const d = await bbrDriver();
  const rounds = toProbeBw(d);
  assert.equal(d.mode(), PROBE_BW, `after ${rounds} rounds`);
  assert.equal(d.word(W.fullBwReached), 1);
  assert.ok(Math.abs(d.word(W.bwV0) / BW - 1) < 1e-9, "max filter holds the bottleneck rate");
  assert.notEqual(d.cc.ssthresh, Infinity, "ssthresh set when entering DRAIN");
  // PROBE_BW never starts in the 3/4 phase: the first phase index is one of 2..7 or 0.
  assert.notEqual(d.word(W.cycleIdx), 1);
  // Phases advance once per min RTT at gain 1; collect the gains of 16 phases.
  const seen: number[] = [];
  let last = d.word(W.cycleIdx);
  for (let i = 0; i < 400 && seen.length < 16; i++) {
    // In flight = cwnd, so the 5/4 phase reaches its 1.25 x BDP target.
    d.round(5, BW, RTT);
    const idx = d.word(W.cycleIdx);
    if (idx !== last) {
      seen.push(d.word(W.pacingGain));
      last = idx;
    }
  }
  assert.equal(seen.length, 16);
  const i0 = seen.indexOf(1.25);
  assert.ok(i0 >= 0);
  assert.deepEqual(seen.slice(i0, i0 + 8), [1.25, 0.75, 1, 1, 1, 1, 1, 1]);
});

/** cwnd target of Linux BBR for `extra` packets of ACK-aggregation allowance. */
function expectedCwnd(d: Driver, extra: number): number {
  const bdp = Math.ceil(BW * (RTT / 1000) * 2 - 1e-9);
  // Send quantum at ~1.2 MB/s is floor(rate/1024/MSS) clamped to [2, 127].
  const quantum = Math.min(Math.max(Math.floor(d.cc.pacingRate / 1024 / MSS), 2), 127);
  let target = bdp + extra + 3 * quantum;
  target = Math.floor((target + 1) / 2) * 2;
  if (d.word(W.cycleIdx) === 0) target += 2;
  return target;
}

Deno.test("bbr paces at 99% of gain x max bw and sets cwnd to 2 x BDP plus the quantization allowance", async () => {
  const d = await bbrDriver();
  toProbeBw(d);
  // Ten steady rounds retire the start-up ACK-aggregation samples (two 5-round windows); ACKs
  // arriving slower than the model leave an allowance of one packet (the ACK itself).
  for (let r = 0; r < 11; r++) d.round(20, BW, RTT, { inFlightPkts: 30 });
  const gain = d.word(W.pacingGain);
  const bwBytes = BW * MSS * 1e6;
  assert.ok(Math.abs(d.cc.pacingRate / (bwBytes * gain * 0.99) - 1) < 1e-9);
  assert.equal(d.cc.cwnd / MSS, expectedCwnd(d, 1));
});

Deno.test("bbr adds the ACK-aggregation allowance when ACKs arrive in bursts beyond the bandwidth model", async () => {
  const d = await bbrDriver();
  toProbeBw(d);
  for (let r = 0; r < 11; r++) d.round(20, BW, RTT, { inFlightPkts: 30 });
  const smooth = d.cc.cwnd / MSS;
  // Now 12 ACKs arrive back to back every RTT/2 (aggregated by a Wi-Fi-like link).
  const s = d.s;
  for (let r = 0; r < 4; r++) {
    for (let burst = 0; burst < 2; burst++) {
      d.now += RTT / 2;
      for (let i = 0; i < 12; i++) {
        s.now = d.now;
        s.ackedBytes = MSS;
        s.ackedPackets = 1;
        s.delivered = 24 * MSS;
        s.interval = Math.round((24 / BW) * 1000);
        s.rtt = RTT;
        s.inFlight = 30 * MSS;
        s.priorInFlight = 31 * MSS;
        s.isAppLimited = false;
        d.cc.onAck(s);
      }
    }
  }
  const aggregated = d.cc.cwnd / MSS;
  assert.ok(aggregated >= smooth + 8, `cwnd ${smooth} -> ${aggregated} packets`);
  assert.ok(aggregated <= expectedCwnd(d, 12), "allowance at most one burst");
});

Deno.test("bbr max-bandwidth filter forgets a peak after 10 rounds", async () => {
  const d = await bbrDriver();
  toProbeBw(d);
  d.round(10, BW * 2, RTT, { inFlightPkts: 30 });
  assert.ok(Math.abs(d.word(W.bwV0) / (BW * 2) - 1) < 1e-9, "peak taken");
  const peakRound = d.word(W.bwT0);
  for (let r = 0; r < 9; r++) d.round(10, BW, RTT, { inFlightPkts: 30 });
  assert.ok(d.word(W.rttCnt) - peakRound <= 10);
  assert.ok(Math.abs(d.word(W.bwV0) / (BW * 2) - 1) < 1e-9, "still within 10 rounds");
  for (let r = 0; r < 3; r++) d.round(10, BW, RTT, { inFlightPkts: 30 });
  assert.ok(Math.abs(d.word(W.bwV0) / BW - 1) < 1e-9, "peak expired");
  // App-limited samples below the estimate do not lower it.
  d.round(10, BW / 4, RTT, { inFlightPkts: 30, appLimited: true });
  assert.ok(Math.abs(d.word(W.bwV0) / BW - 1) < 1e-9);
});

Deno.test("bbr enters PROBE_RTT when min RTT is 10 s old, holds cwnd 4 for 200 ms and a round, then restores", async () => {
  const d = await bbrDriver();
  toProbeBw(d);
  const stamp = d.word(W.minRttStamp);
  // Higher RTTs never refresh the 40 ms minimum.
  while (d.mode() !== PROBE_RTT) {
    d.round(10, BW, RTT + 10 * MILLISECOND, {
      inFlightPkts: 30,
      stopWhen: () => d.mode() === PROBE_RTT,
    });
    assert.ok(d.now / 1000 <= stamp + 10.2e6, "entered within the 10 s window (+ one round)");
  }
  assert.ok(d.now / 1000 > stamp + 10e6, "not before 10 s");
  assert.equal(d.cc.cwnd, 4 * MSS, "cwnd capped at 4 packets");
  const cwndBefore = d.prevCwnd;
  assert.equal(d.word(W.priorCwnd) * MSS, cwndBefore, "cwnd saved for the exit");
  // While more than 4 packets are in flight the 200 ms have not started.
  d.round(5, BW, RTT, { inFlightPkts: 10 });
  assert.equal(d.word(W.probeRttDone), -1);
  const t0 = d.now + RTT / 4;
  d.round(4, BW, RTT, { inFlightPkts: 4 });
  const done = d.word(W.probeRttDone);
  assert.ok(done > 0);
  assert.ok(
    Math.abs(done - (t0 / 1000 + 200e3)) < 1e-6,
    "done at first ack with in-flight <= 4 + 200 ms",
  );
  while (d.mode() === PROBE_RTT) {
    assert.equal(d.cc.cwnd, 4 * MSS);
    d.round(4, BW, RTT, { inFlightPkts: 4, stopWhen: () => d.mode() !== PROBE_RTT });
  }
  const exitedAt = d.now / 1000;
  assert.ok(exitedAt > done, "stayed at least 200 ms");
  assert.ok(exitedAt <= done + 2 * (RTT / 1000), "left within a round after 200 ms");
  assert.equal(d.mode(), PROBE_BW);
  assert.ok(
    d.cc.cwnd >= cwndBefore - 2 * MSS,
    `cwnd restored (${d.cc.cwnd / MSS} vs ${cwndBefore / MSS})`,
  );
  assert.equal(d.word(W.minRttStamp), exitedAt, "min RTT stamp refreshed");
});

Deno.test("bbr uses packet conservation in the first recovery round and restores cwnd when recovery ends", async () => {
  const d = await bbrDriver();
  toProbeBw(d);
  const cwnd = d.cc.cwnd;
  d.cc.onCongestion("loss", d.now);
  d.cc.onStateChange("recovery", d.now);
  assert.equal(d.word(W.priorCwnd) * MSS, cwnd);
  const s = d.s;
  s.ackedBytes = MSS;
  s.ackedPackets = 1;
  s.inFlight = 12 * MSS;
  s.losses = 3 * MSS;
  s.now = d.now += 1000;
  d.cc.onAck(s);
  assert.equal(d.word(W.packetConservation), 1);
  assert.equal(d.cc.cwnd, 13 * MSS, "cwnd = in flight + acked");
  s.losses = 0;
  s.inFlight = 11 * MSS;
  d.cc.onAck(s);
  assert.equal(d.cc.cwnd, 13 * MSS, "max(cwnd, in flight + acked) while conserving");
  d.cc.onRecoveryExit(d.now);
  d.cc.onStateChange("open", d.now);
  d.cc.onAck(s);
  assert.ok(d.cc.cwnd >= cwnd, "prior cwnd restored at recovery exit");
});

Deno.test("bbr: a new flow's round counting starts from its own delivered count (0), not from the last event another flow of the instance wrote", async () => {
  const { host, modules } = await loadBuilt(["bbr"]);
  const m = modules.get("bbr")!;
  const a = host.createFlow(m) as WasmCc;
  a.init(MSS, 0);
  const s = new MutableAckSample();
  s.mss = MSS;
  s.ackedBytes = MSS;
  s.ackedPackets = 1;
  s.totalDelivered = 50e6; // flow a is deep into a transfer
  s.priorDelivered = 50e6 - 100 * MSS;
  a.onAck(s);
  const b = host.createFlow(m) as WasmCc;
  b.init(MSS, 0);
  const nextRttDelivered = b.stateView()![6]!;
  assert.equal(nextRttDelivered, 0, "flow b's first round ends at its own delivered count");
  a.release();
  b.release();
});
