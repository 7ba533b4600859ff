import assert from "node:assert/strict";
import { MILLISECOND } from "../stacks/time.ts";
import { ensureBuilt, modulePath } from "./build.ts";
import type { WasmCc } from "./host.ts";
import { loadBuilt, MutableAckSample } from "./testing.ts";

// Slot word indexes of cc/src/cubic.ts.
const CWND = 0, SSTHRESH = 1, CNT = 4, LAST_MAX = 5, ORIGIN = 8, K = 9, EPOCH = 11, HS_STATE = 22;
const MSS = 1448;

async function cubicFlow(): Promise<WasmCc> {
  const { host, modules } = await loadBuilt(["cubic"]);
  const cc = host.createFlow(modules.get("cubic")!) as WasmCc;
  cc.init(MSS, 0);
  return cc;
}

function word(cc: WasmCc, i: number): number {
  return cc.stateView()![i]!;
}

Deno.test("cubic icbrt() is the exact floor cube root (checked against Math.cbrt and BigInt cubes)", async () => {
  await ensureBuilt();
  const { instance } = await WebAssembly.instantiate(await Deno.readFile(modulePath("cubic")), {});
  const cbrt = instance.exports.cc_test_cbrt as (a: number) => number;
  const cases = [
    0,
    1,
    7,
    8,
    26,
    27,
    63,
    64,
    65,
    999,
    1000,
    1001,
    2 ** 30,
    2 ** 40 - 1,
    2 ** 53 - 1,
  ];
  let x = 12345;
  for (let i = 0; i < 2000; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    cases.push(Math.floor((x / 2 ** 31) * 2 ** (1 + (i % 52))));
  }
  for (const a of cases) {
    const y = cbrt(a);
    const big = BigInt(a);
    assert.ok(BigInt(y) ** 3n <= big && big < BigInt(y + 1) ** 3n, `icbrt(${a}) = ${y}`);
    assert.ok(Math.abs(y - Math.cbrt(a)) < 1, `icbrt(${a}) = ${y} vs Math.cbrt ${Math.cbrt(a)}`);
  }
});

Deno.test("cubic loss reduces to 717/1024 (~0.7x) and fast convergence lowers W_max to cwnd*(1+beta)/2", async () => {
  const cc = await cubicFlow();
  cc.initFromState({
    cwnd: 100 * MSS,
    ssthresh: 90 * MSS,
    pacingRate: 0,
    srtt: -1,
    minRtt: -1,
    inFlight: 0,
    mss: MSS,
  }, 0);
  assert.equal(cc.cwnd, 100 * MSS);
  cc.onCongestion("loss", 0);
  assert.equal(cc.ssthresh, Math.floor((100 * 717) / 1024) * MSS);
  assert.equal(cc.ssthresh, 70 * MSS);
  assert.equal(cc.cwnd, 100 * MSS, "PRR in the engine brings the flight down, not the CC");
  assert.equal(word(cc, LAST_MAX), 100);
  cc.onRecoveryExit(0);
  assert.equal(cc.cwnd, 70 * MSS);
  cc.onCongestion("loss", 0);
  assert.equal(word(cc, LAST_MAX), Math.floor((70 * 1741) / 2048), "fast convergence");
  assert.equal(cc.ssthresh, Math.floor((70 * 717) / 1024) * MSS);
  cc.onCongestion("rto", 0);
  assert.equal(cc.cwnd, MSS);
});

/** Integer reference of the Linux curve for one ACK at `tUs` after the epoch (incl. delay_min). */
function refTarget(wmax: number, cwnd0: number, tUs: number): { k: number; target: number } {
  const factor = (1n << 40n) / 410n;
  const kBig = BigInt(Math.floor(Math.cbrt(Number(factor * BigInt(wmax - cwnd0)))));
  let k = kBig;
  while ((k + 1n) ** 3n <= factor * BigInt(wmax - cwnd0)) k++;
  while (k ** 3n > factor * BigInt(wmax - cwnd0)) k--;
  const t = (BigInt(Math.floor(tUs)) << 10n) / 1_000_000n;
  const offs = t < k ? k - t : t - k;
  const delta = (410n * offs * offs * offs) >> 40n;
  const target = t < k ? BigInt(wmax) - delta : BigInt(wmax) + delta;
  return { k: Number(k), target: Number(target) };
}

interface CurveRun {
  cc: WasmCc;
  epochUs: number;
  k: number;
  /** Runs ACK clocking (one ACK per packet, cwnd packets per RTT) until `untilSec`. */
  runTo(untilSec: number): number;
}

async function afterLoss(wmax: number, rtt: number): Promise<CurveRun> {
  const cc = await cubicFlow();
  cc.initFromState({
    cwnd: wmax * MSS,
    ssthresh: (wmax - 10) * MSS,
    pacingRate: 0,
    srtt: rtt,
    minRtt: rtt,
    inFlight: 0,
    mss: MSS,
  }, 0);
  cc.onCongestion("loss", 0);
  cc.onRecoveryExit(0);
  const s = new MutableAckSample();
  s.mss = MSS;
  let now = 1_000 * MILLISECOND;
  const ack = (): void => {
    s.now = now;
    s.ackedBytes = MSS;
    s.ackedPackets = 1;
    s.rtt = rtt;
    s.minRtt = rtt;
    s.priorInFlight = cc.cwnd;
    cc.onAck(s);
  };
  ack();
  const epochUs = now / 1000;
  assert.equal(word(cc, EPOCH), epochUs);
  return {
    cc,
    epochUs,
    k: word(cc, K),
    runTo(untilSec: number): number {
      for (;;) {
        now += Math.round(rtt / (cc.cwnd / MSS));
        ack();
        const t = (now / 1000 - epochUs) / 1e6;
        if (t >= untilSec) return t;
      }
    },
  };
}

Deno.test("cubic K and the first cnt match the Linux integer formulas", async () => {
  const rtt = 50 * MILLISECOND;
  const r = await afterLoss(100, rtt);
  const cwnd0 = Math.floor((100 * 717) / 1024);
  const ref0 = refTarget(100, cwnd0, 50_000);
  assert.equal(r.k, ref0.k);
  assert.ok(
    Math.abs(r.k / 1024 / Math.cbrt((100 - cwnd0) / 0.4) - 1) < 0.002,
    "K = cbrt((W_max - cwnd)/C)",
  );
  assert.equal(word(r.cc, ORIGIN), 100);
  assert.equal(
    word(r.cc, CNT),
    Math.floor(cwnd0 / (ref0.target - cwnd0)),
    "cnt = cwnd / (target - cwnd)",
  );
});

Deno.test("cubic cwnd follows C(t-K)^3 + W_max through the concave and convex regions", async () => {
  const rtt = 100 * MILLISECOND;
  const r = await afterLoss(2000, rtt);
  const kSec = r.k / 1024;
  for (const checkpoint of [3, 6, 9, 12, 14]) {
    const t = r.runTo(checkpoint);
    const cwnd = r.cc.cwnd / MSS;
    // Linux aims at W(t + delay_min); the window trails the target by about one RTT of ACKs.
    const w = (x: number): number => 0.4 * (x - kSec) ** 3 + 2000;
    const lo = Math.min(w(t), w(t - 0.1)) * 0.99 - 2;
    const hi = Math.max(w(t), w(t + 0.1)) * 1.01 + 2;
    assert.ok(
      cwnd >= lo && cwnd <= hi,
      `t=${t.toFixed(2)} s cwnd=${cwnd} W(t)=${w(t).toFixed(1)} [${lo.toFixed(1)}, ${
        hi.toFixed(1)
      }]`,
    );
  }
  assert.ok(r.cc.cwnd / MSS > 2000, "convex region beyond W_max once t > K");
});

Deno.test("cubic Reno-friendly region: at a small W_max and a short RTT cwnd grows like Reno with alpha ~ 8/15", async () => {
  const rtt = 50 * MILLISECOND;
  const r = await afterLoss(100, rtt);
  const t = r.runTo(4);
  const cwnd = r.cc.cwnd / MSS;
  const kSec = r.k / 1024;
  const cubic = 0.4 * (t + 0.05 - kSec) ** 3 + 100;
  // W_est grows one packet per cwnd*15/8 acked packets, i.e. 8/15 packet per RTT.
  const renoEst = 70 + (t / 0.05) * (8 / 15);
  assert.ok(cwnd > cubic + 5, `cwnd ${cwnd} above the cubic curve ${cubic.toFixed(1)}`);
  assert.ok(
    Math.abs(cwnd - renoEst) <= 0.1 * renoEst,
    `cwnd ${cwnd} vs Reno estimate ${renoEst.toFixed(1)}`,
  );
});

Deno.test("cubic HyStart++ leaves slow start for CSS on an RTT rise, grows 1/4 as fast there, and enters CA after 5 rounds", async () => {
  const cc = await cubicFlow();
  const s = new MutableAckSample();
  s.mss = MSS;
  let now = 0;
  let total = 0;
  const round = (rttMs: number): void => {
    const acks = Math.max(1, Math.floor(cc.cwnd / MSS / 2));
    const window = cc.cwnd;
    for (let i = 0; i < acks; i++) {
      now += (rttMs * MILLISECOND) / acks;
      total += 2 * MSS;
      s.now = now;
      s.ackedBytes = 2 * MSS;
      s.ackedPackets = 2;
      s.delivered = Math.min(window, total);
      s.interval = rttMs * MILLISECOND;
      s.rtt = rttMs * MILLISECOND;
      s.minRtt = 20 * MILLISECOND;
      s.priorInFlight = window;
      cc.onAck(s);
    }
  };
  for (let r = 0; r < 4; r++) round(20);
  assert.equal(word(cc, HS_STATE), 0, "still in slow start at a stable RTT");
  assert.equal(cc.ssthresh, Infinity);
  const before = cc.cwnd;
  // 30 >= 20 + max(4, min(20/8, 16)) ms. Rounds are delimited by delivered counts, so the first
  // round made only of 30 ms samples may start a little after the RTT rose.
  let rounds = 0;
  while (word(cc, HS_STATE) === 0 && rounds < 3) {
    round(30);
    rounds++;
  }
  assert.equal(word(cc, HS_STATE), 1, "conservative slow start");
  assert.ok(rounds <= 2, `CSS after ${rounds} rounds`);
  const cssStart = cc.cwnd;
  assert.ok(cssStart > before);
  round(30);
  const grownInCss = cc.cwnd - cssStart;
  const pkts = cssStart / MSS;
  assert.ok(
    grownInCss / MSS <= Math.ceil(pkts / 4) + 2,
    `CSS growth ${grownInCss / MSS} pkts of ${pkts}`,
  );
  assert.ok(grownInCss > 0);
  for (let r = 0; r < 5; r++) round(30);
  assert.equal(word(cc, HS_STATE), 2, "CSS_ROUNDS done");
  assert.ok(cc.ssthresh !== Infinity && cc.ssthresh <= cc.cwnd, "ssthresh set to cwnd at CA entry");
  assert.ok(word(cc, CNT) <= 20, "cnt <= 20 before the first loss (Linux)");
  assert.equal(word(cc, SSTHRESH) * MSS, cc.ssthresh);
  assert.equal(word(cc, CWND) * MSS, cc.cwnd);
});

Deno.test("cubic undo restores the window and ssthresh saved at a spurious reduction", async () => {
  const cc = await cubicFlow();
  cc.initFromState({
    cwnd: 80 * MSS,
    ssthresh: 60 * MSS,
    pacingRate: 0,
    srtt: -1,
    minRtt: -1,
    inFlight: 0,
    mss: MSS,
  }, 0);
  cc.onCongestion("loss", 0);
  cc.onRecoveryExit(0);
  assert.equal(cc.cwnd, Math.floor((80 * 717) / 1024) * MSS);
  cc.onUndo(0);
  assert.equal(cc.cwnd, 80 * MSS);
  assert.equal(cc.ssthresh, 60 * MSS);
});

Deno.test("cubic idle restart shifts the epoch by the idle time and clamps cwnd to the initial window", async () => {
  const rtt = 50 * MILLISECOND;
  const r = await afterLoss(2000, rtt);
  r.runTo(1);
  const epoch = word(r.cc, EPOCH);
  const lastAckUs = r.cc.stateView()![24]!;
  const idleUntil = lastAckUs * 1000 + 3 * SECOND_NS;
  r.cc.onIdleRestart(idleUntil);
  assert.equal(word(r.cc, EPOCH), epoch + 3e6, "epoch moved by the 3 s idle period");
  assert.equal(r.cc.cwnd, 10 * MSS, "restart window (RFC 5681 4.1)");
});

const SECOND_NS = 1e9;
