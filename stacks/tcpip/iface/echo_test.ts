import assert from "node:assert/strict";
import { EchoTracker } from "./echo.ts";
import { IpAddress } from "../wire/address.ts";
import { MILLISECOND } from "../../time.ts";

const FROM = IpAddress.parse("198.18.0.2");

Deno.test("EchoTracker computes the RTT of a matching reply from the injected clock", () => {
  const t = new EchoTracker();
  t.sent(4, 7, 1, 10 * MILLISECOND);
  t.sent(4, 7, 2, 20 * MILLISECOND);
  assert.ok(t.received(4, 7, 2, 56, FROM.bytes, 23 * MILLISECOND));
  const r = t.take()!;
  assert.equal(r.seq, 2);
  assert.equal(r.rtt, 3 * MILLISECOND);
  assert.equal(r.length, 56);
  assert.ok(r.from.equals(FROM));
  assert.equal(t.take(), null);
  assert.equal(t.pending, 1);
});

Deno.test("EchoTracker counts unmatched and duplicate replies without queuing them", () => {
  const t = new EchoTracker();
  t.sent(4, 7, 1, 0);
  assert.equal(t.received(6, 7, 1, 0, FROM.bytes, 1), false, "family must match");
  assert.ok(t.received(4, 7, 1, 0, FROM.bytes, 1));
  assert.equal(t.received(4, 7, 1, 0, FROM.bytes, 2), false, "duplicate");
  assert.equal(t.unmatched, 2);
});

Deno.test("EchoTracker bounds outstanding requests and unread replies", () => {
  const t = new EchoTracker(2, 1);
  t.sent(4, 1, 1, 0);
  t.sent(4, 1, 2, 0);
  t.sent(4, 1, 3, 0);
  assert.equal(t.pending, 2);
  assert.equal(t.received(4, 1, 1, 0, FROM.bytes, 1), false, "forgotten");
  t.received(4, 1, 2, 0, FROM.bytes, 1);
  t.received(4, 1, 3, 0, FROM.bytes, 1);
  assert.equal(t.overflowed, 1);
  assert.equal(t.take()!.seq, 3);
});
