import assert from "node:assert/strict";
import { RenoCc } from "./cc.ts";
import { RecoveryEngine } from "./engine.ts";
import { ackWith, ms, sendNew } from "./testing.ts";

const MSS = 1448;

function engine(cc: RenoCc): RecoveryEngine {
  const e = new RecoveryEngine({ mss: MSS, cc, tlp: false });
  e.reset(0x7fff_0000, 0); // crosses 2^31 within the test's flight
  e.setPeerWindow(1 << 24);
  return e;
}

Deno.test("RecoveryEngine.sendQuota() rounds a fractional congestion allowance down to whole segments", () => {
  const cc = new RenoCc();
  const e = engine(cc);
  sendNew(e, 2, MSS, ms(1));
  cc.cwnd = 5 * MSS + 700.5; // pipe 2 MSS: allowance 3 MSS + 700.5
  assert.equal(e.sendQuota(), 3 * MSS);
  cc.cwnd = 2 * MSS + 700.5; // less than one segment of room
  assert.equal(e.sendQuota(), 0);
  assert.equal(e.canSend(700, false), true);
  assert.equal(e.canSend(701, false), false);
});

Deno.test("RecoveryEngine.nextRetransmit() is null with nothing lost and names the first lost record after loss", () => {
  const cc = new RenoCc();
  cc.init(MSS, 0);
  const e = engine(cc);
  const first = sendNew(e, 8, MSS, ms(1));
  assert.equal(e.nextRetransmit(), null);
  // Segment 0 is lost: SACKs for 1..4 (DupThresh 3 with RACK's reo_wnd 0) mark it.
  ackWith(e, ms(30), first, [(first + MSS) >>> 0, (first + 5 * MSS) >>> 0]);
  const rt = e.nextRetransmit();
  assert.notEqual(rt, null);
  assert.equal(rt!.seq, first >>> 0);
  assert.equal(rt!.len, MSS);
  e.onSend(rt!.seq, rt!.len, ms(31), true);
  assert.equal(e.nextRetransmit(), null);
  assert.equal(e.audit(), null);
});
