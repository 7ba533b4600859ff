import assert from "node:assert/strict";
import { RecoveryEngine } from "./engine.ts";
import { type AckSample, type CcState, type CcSwapState, registerCc, RenoCc } from "./cc.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

const MSS = 1000;

/** Reno that records the optional hooks the engine calls. */
class Recording extends RenoCc {
  readonly calls: string[] = [];
  swapState: CcSwapState | null = null;
  constructor(override readonly name: string = "recording") {
    super();
  }
  override initFromState(s: CcSwapState, now: number): void {
    this.swapState = s;
    this.calls.push("initFromState");
    super.initFromState(s, now);
  }
  override onStateChange(state: CcState, _now: number): void {
    this.calls.push(`state:${state}`);
  }
  release(): void {
    this.calls.push("release");
  }
  setEcnNegotiated(on: boolean): void {
    this.calls.push(`ecn:${on}`);
  }
}

/** An engine with 20 segments acked (cwnd grown) and 10 more in flight. */
function running(cc: RenoCc): RecoveryEngine {
  const e = new RecoveryEngine({ mss: MSS, cc, tlp: false });
  e.reset(0, 0);
  e.setNegotiated(true, false, true);
  sendNew(e, 10, MSS, 0);
  for (let i = 1; i <= 10; i++) ackWith(e, ms(100), i * MSS);
  sendNew(e, 10, MSS, ms(100));
  return e;
}

Deno.test("setCc continues from the old window and the engine's estimators, then releases the old instance", () => {
  const old = new Recording("old");
  const e = running(old);
  const cwnd = old.cwnd;
  const next = new Recording("next");
  e.setCc(next, ms(150));
  assert.equal(e.cc, next);
  assert.deepEqual(old.calls.slice(-1), ["release"]);
  const s = next.swapState!;
  assert.equal(s.cwnd, cwnd);
  assert.equal(s.ssthresh, Infinity);
  assert.equal(s.inFlight, 10 * MSS);
  assert.equal(s.mss, MSS);
  assert.equal(s.minRtt, ms(100));
  assert.equal(s.srtt, e.srtt);
  assert.equal(s.totalDelivered, 10 * MSS, "10 segments delivered");
  assert.deepEqual(next.calls, ["initFromState", "ecn:true"], "open: no state change sent");
  assert.equal(next.cwnd, cwnd);
});

Deno.test("setCc during fast recovery tells the new algorithm the state; PRR keeps working", () => {
  const e = running(new RenoCc());
  const base = 10 * MSS;
  ackWith(e, ms(200), base, [base + 1000, base + 4000]); // 3 SACKed above a hole: recovery
  assert.equal(e.state, "recovery");
  const next = new Recording();
  e.setCc(next, ms(201));
  assert.deepEqual(next.calls, ["initFromState", "ecn:true", "state:recovery"]);
  const rt = e.nextRetransmit();
  assert.ok(rt !== null && rt.seq === base, "the lost segment is still offered");
  assert.ok(e.canSend(rt.len, true));
});

Deno.test("setCc by name uses the registry; an algorithm without initFromState restarts from init()", () => {
  let inits = 0;
  class Plain extends RenoCc {
    override readonly name: string = "test-plain";
    override init(mss: number, now: number): void {
      inits++;
      super.init(mss, now);
    }
  }
  // The class inherits RenoCc.initFromState; hide it to model an algorithm without the hook.
  registerCc("test-plain", () => {
    const p = new Plain();
    Object.defineProperty(p, "initFromState", { value: undefined });
    return p;
  });
  const e = running(new RenoCc());
  e.setCc("test-plain", ms(150));
  assert.equal(e.cc.name, "test-plain");
  assert.equal(inits, 1);
  assert.equal(e.cc.cwnd, 10 * MSS, "initial window");
});

Deno.test("the ECN outcome reaches the algorithm: false after reset(), then what the handshake said", () => {
  const cc = new Recording();
  const e = new RecoveryEngine({ mss: MSS, cc });
  e.reset(0, 0);
  e.setNegotiated(true, true, true);
  e.reset(0, ms(1));
  e.setNegotiated(true, true, false);
  assert.deepEqual(cc.calls.filter((c) => c.startsWith("ecn")), [
    "ecn:false",
    "ecn:false",
    "ecn:true",
    "ecn:false",
    "ecn:false",
  ]);
});

Deno.test("dispose() releases the algorithm and drops the observer", () => {
  const cc = new Recording();
  const e = running(cc);
  e.onAckSample = () => {};
  e.dispose();
  assert.deepEqual(cc.calls.slice(-1), ["release"]);
  assert.equal(e.onAckSample, null);
});

Deno.test("onAckSample sees every delivering ACK after the CC, with exact delivered counters and per-segment ackedPackets", () => {
  const e = running(new RenoCc());
  const seen: { total: number; prior: number; delivered: number; pkts: number; cwnd: number }[] =
    [];
  e.onAckSample = (s: AckSample, cc) => {
    seen.push({
      total: s.totalDelivered,
      prior: s.priorDelivered,
      delivered: s.delivered,
      pkts: s.ackedPackets,
      cwnd: cc.cwnd,
    });
  };
  const base = 10 * MSS;
  ackWith(e, ms(200), base + 1000); // one segment
  ackWith(e, ms(201), base + 1000, [base + 2000, base + 4000]); // two SACKed
  ackWith(e, ms(202), base + 4000); // fills [11000, 12000) and covers the SACKed [12000, 14000)
  assert.equal(seen.length, 3);
  assert.deepEqual(seen.map((x) => x.total), [11 * MSS, 13 * MSS, 14 * MSS]);
  for (const x of seen) assert.equal(x.total - x.prior, x.delivered, "total - prior = delivered");
  assert.deepEqual(
    seen.map((x) => x.pkts),
    [1, 2, 1],
    "segments SACKed earlier are not counted again by the cumulative ACK",
  );
  assert.equal(seen[2]!.cwnd, e.cc.cwnd, "the observer runs after cc.onAck");
});
