import assert from "node:assert/strict";
import { RenoCc } from "../stacks/tcpip/tcp/recovery/cc.ts";
import type { WasmCc } from "./host.ts";
import { loadBuilt, MutableAckSample } from "./testing.ts";

// Slot word indexes of cc/src/dctcp.ts.
const ALPHA = 6;
const MSS = 1448;

async function dctcpFlow(): Promise<WasmCc> {
  const { host, modules } = await loadBuilt(["dctcp"]);
  const cc = host.createFlow(modules.get("dctcp")!) as WasmCc;
  cc.init(MSS, 0);
  return cc;
}

const alphaOf = (cc: WasmCc): number => cc.stateView()![ALPHA]!;

/** Feeds ACKs of one MSS with a constant in-flight; `marked(i)` says which carry ECE. */
function feed(
  cc: WasmCc,
  s: MutableAckSample,
  n: number,
  inFlight: number,
  marked: (i: number) => boolean,
): void {
  for (let i = 0; i < n; i++) {
    s.ackedBytes = MSS;
    s.ackedPackets = 1;
    s.inFlight = inFlight;
    s.priorInFlight = inFlight + MSS;
    s.ece = marked(i);
    s.now += 1000;
    cc.onAck(s);
  }
}

Deno.test("dctcp asks for ECN and the accurate ECE receiver", async () => {
  const cc = await dctcpFlow();
  assert.equal(cc.wantsEcn, true);
  assert.equal(cc.wantsAccurateEce, true);
  assert.equal(alphaOf(cc), 1024, "alpha starts at 1 (RFC 8257 3.3)");
});

Deno.test("dctcp: the first ECN echo with alpha = 1 halves cwnd", async () => {
  const cc = await dctcpFlow();
  const s = new MutableAckSample();
  feed(cc, s, 4, 20 * MSS, (i) => i === 3);
  const cwnd = cc.cwnd;
  assert.equal(cwnd, 14480 + 4 * MSS);
  cc.onCongestion("ecn", s.now);
  assert.equal(cc.cwnd, cwnd - Math.floor((cwnd * 1024) / 2048));
  assert.equal(cc.cwnd, cwnd / 2);
  assert.equal(cc.ssthresh, cc.cwnd);
});

Deno.test("dctcp: the SYN's ACK (nothing in flight) opens no observation window, so alpha is still 1 for the first data", async () => {
  const cc = await dctcpFlow();
  const s = new MutableAckSample();
  feed(cc, s, 1, 0, () => false); // the handshake: 1 byte delivered, nothing left in flight
  feed(cc, s, 1, 10 * MSS, () => false); // first data ACK: opens the window
  assert.equal(alphaOf(cc), 1024);
  feed(cc, s, 9, 10 * MSS, () => false);
  assert.equal(alphaOf(cc), 1024, "the first data window is still running");
  feed(cc, s, 1, 10 * MSS, () => false);
  assert.equal(alphaOf(cc), 1024 - 64, "decayed once, at the end of the first data window");
});

Deno.test("dctcp alpha follows the fixed-point EWMA with g = 1/16 once per observation window", async () => {
  const cc = await dctcpFlow();
  const s = new MutableAckSample();
  const inFlight = 10 * MSS;
  // Reference: the same window bookkeeping and integer update.
  let alpha = 1024;
  let total = 0;
  let end = -1;
  let acked = 0;
  let marked = 0;
  const fractions = [0, 0.5, 0.5, 1, 0.1, 0, 0, 0.3];
  for (const f of fractions) {
    const n = 10;
    const mark = (i: number): boolean => i < Math.round(f * n);
    feed(cc, s, n, inFlight, mark);
    for (let i = 0; i < n; i++) {
      total += MSS;
      acked += MSS;
      if (mark(i)) marked += MSS;
      if (end < 0) end = total + inFlight;
      else if (total >= end) {
        let dec = alpha >> 4;
        if (dec === 0) dec = alpha;
        alpha = Math.min(alpha - dec + Math.floor((marked * 64) / Math.max(acked, 1)), 1024);
        acked = 0;
        marked = 0;
        end = total + inFlight;
      }
    }
    assert.equal(alphaOf(cc), alpha, `after a window with ${f * 100}% marked`);
  }
  assert.notEqual(alpha, 1024, "the reference moved");
});

Deno.test("dctcp alpha converges to the marked fraction and reaches 0 without marks", async () => {
  const cc = await dctcpFlow();
  const s = new MutableAckSample();
  for (let w = 0; w < 200; w++) feed(cc, s, 10, 10 * MSS, (i) => i < 3); // 30% marked
  const a = alphaOf(cc) / 1024;
  assert.ok(Math.abs(a - 0.3) < 0.02, `alpha ${a}`);
  for (let w = 0; w < 200; w++) feed(cc, s, 10, 10 * MSS, () => false);
  assert.equal(alphaOf(cc), 0);
  // alpha = 0: an echo still sets ssthresh but does not shrink cwnd below itself.
  const cwnd = cc.cwnd;
  cc.onCongestion("ecn", s.now);
  assert.equal(cc.cwnd, cwnd);
});

Deno.test("dctcp reduces at most once per window of data for ECN echoes", async () => {
  const cc = await dctcpFlow();
  const s = new MutableAckSample();
  feed(cc, s, 2, 20 * MSS, () => true);
  cc.onCongestion("ecn", s.now);
  const after1 = cc.cwnd;
  feed(cc, s, 5, 20 * MSS, () => true);
  cc.onCongestion("ecn", s.now);
  assert.equal(cc.ssthresh, after1, "second echo in the same window ignored");
  feed(cc, s, 25, 20 * MSS, () => true); // the window (20 MSS in flight) is now delivered
  const before = cc.cwnd;
  cc.onCongestion("ecn", s.now);
  assert.ok(cc.cwnd < before, "a new window allows a new reduction");
});

Deno.test("dctcp treats loss like Reno (halving) whatever alpha is", async () => {
  const cc = await dctcpFlow();
  const s = new MutableAckSample();
  for (let w = 0; w < 100; w++) feed(cc, s, 10, 10 * MSS, () => false);
  assert.equal(alphaOf(cc), 0);
  const cwnd = cc.cwnd;
  cc.onCongestion("loss", s.now);
  assert.equal(cc.ssthresh, Math.max(Math.floor(cwnd / 2), 2 * MSS));
  cc.onRecoveryExit(s.now);
  assert.equal(cc.cwnd, cc.ssthresh);
});

Deno.test("dctcp without ECN negotiated behaves exactly like Reno, ECN echoes included", async () => {
  const cc = await dctcpFlow();
  cc.setEcnNegotiated(false);
  const r = new RenoCc();
  r.init(MSS, 0);
  const s = new MutableAckSample();
  for (let i = 0; i < 200; i++) {
    s.ackedBytes = MSS;
    s.ackedPackets = 1;
    s.ece = i % 7 === 0;
    s.inFlight = r.cwnd;
    s.priorInFlight = r.cwnd;
    cc.onAck(s);
    r.onAck(s);
    if (i === 50 || i === 120) {
      cc.onCongestion("ecn", 0);
      r.onCongestion("ecn", 0);
    }
    assert.equal(cc.cwnd, r.cwnd);
    assert.equal(cc.ssthresh, r.ssthresh);
  }
  assert.equal(alphaOf(cc), 1024, "alpha untouched without ECN");
});
