import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../../time.ts";
import { cleanPath, TcpPair } from "../../../tests/support/tcp_pair.ts";
import { TcpState } from "./tcb.ts";

const DELAY = MILLISECOND; // one-way path delay

/** A pair with A connected to B's listener on port 7; returns the two socket ids. */
function connected(): { pair: TcpPair; c: number; s: number } {
  const pair = new TcpPair(cleanPath({ delay: DELAY }), 5);
  const l = pair.b.listen(null, 7, 4);
  const c = pair.a.connect(pair.addrB, 7, pair.now);
  let s = -1;
  pair.run(pair.now + SECOND, () => {
    if (s < 0) s = pair.b.accept(l);
  }, () => s > 0 && pair.a.tcbOf(c)!.state === TcpState.Established);
  assert.ok(s > 0);
  return { pair, c, s };
}

Deno.test("TCP acknowledges the answer to a request it just sent with its next segment: connect, 1-byte request, echo, close takes 5 segments from the client, as on Linux", () => {
  const { pair, c, s } = connected();
  const sentBefore = pair.sent[0]!; // SYN + handshake ACK
  assert.equal(sentBefore, 2);
  const buf = new Uint8Array(8);
  pair.a.send(c, buf.subarray(0, 1), pair.now); // the request, right after the handshake
  let echoed = false, closed = false, serverClosed = false;
  const tcb = pair.a.tcbOf(c)!;
  const ok = pair.run(pair.now + SECOND, () => {
    if (!echoed && pair.b.recv(s, buf, pair.now) > 0) {
      pair.b.send(s, buf.subarray(0, 1), pair.now);
      echoed = true;
    }
    if (!closed && pair.a.recv(c, buf, pair.now) > 0) {
      pair.a.close(c, pair.now); // the FIN carries the echo's ACK
      closed = true;
    }
    if (!serverClosed && pair.b.state(s) === "CLOSE-WAIT") {
      pair.b.close(s, pair.now);
      serverClosed = true;
    }
  }, () => tcb.state === TcpState.TimeWait);
  assert.ok(ok, `client reached TIME-WAIT (${tcb.stateName})`);
  // SYN, ACK, request, FIN (+ ACK of the echo), ACK of the server's FIN.
  assert.equal(pair.sent[0], 5, `client segments ${pair.sent[0]}`);
});

Deno.test("TCP leaves the request/response mode when a delayed ACK had to go out alone: the next data is acknowledged at once again", () => {
  const { pair, c, s } = connected();
  const buf = new Uint8Array(8);
  // An exchange: A's request right after the handshake, B's answer.
  pair.a.send(c, buf.subarray(0, 1), pair.now);
  pair.run(pair.now + SECOND, () => {}, () => pair.b.recv(s, buf, pair.now) > 0);
  pair.b.send(s, buf.subarray(0, 1), pair.now);
  const before = pair.sent[0]!;
  // A says nothing: its ACK of the answer waits for the 40 ms delayed-ACK timer.
  pair.run(pair.now + 20 * MILLISECOND, () => {}, () => false);
  assert.equal(pair.sent[0], before, "no ACK within 20 ms (the answer waits for a reply)");
  pair.run(pair.now + 40 * MILLISECOND, () => {}, () => false);
  assert.equal(pair.sent[0], before + 1, "the delayed ACK went out alone");
  // B sends again: A is no longer in request/response mode and ACKs within the path delay.
  pair.b.send(s, buf.subarray(0, 1), pair.now);
  const t0 = pair.now;
  pair.run(pair.now + SECOND, () => {}, () => pair.sent[0]! > before + 1);
  assert.ok(pair.now - t0 <= 3 * DELAY, `ACKed after ${(pair.now - t0) / MILLISECOND} ms`);
  void c;
});
