import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../../time.ts";
import { cleanPath, TcpPair } from "../../../tests/support/tcp_pair.ts";
import { AddressNotAvailable } from "./errors.ts";
import { seqAdd, seqGt } from "./seq.ts";
import type { TcpConfig } from "./config.ts";
import { TcpState } from "./tcb.ts";

/**
 * A's ephemeral range is two ports; each connection sends one byte, gets it echoed, and A
 * closes first, so its side of every finished connection sits in TIME-WAIT (2 MSL = 60 s).
 */
function pairWithTwoPorts(config: Partial<TcpConfig> = {}): {
  pair: TcpPair;
  exchange: (orClosed?: boolean) => { port: number; sndNxt: number; state: string };
} {
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND }), 11, {
    ephemeralLow: 40000,
    ephemeralHigh: 40001,
    ...config,
  });
  const l = pair.b.listen(null, 7, 16);
  // `orClosed`: CLOSED (no TIME-WAIT) also ends the exchange.
  const exchange = (orClosed = false): { port: number; sndNxt: number; state: string } => {
    const c = pair.a.connect(pair.addrB, 7, pair.now);
    const tcb = pair.a.tcbOf(c)!;
    const port = tcb.localPort;
    let s = -1;
    let echoed = false;
    let closed = false;
    let serverClosed = false;
    const buf = new Uint8Array(16);
    const ok = pair.run(pair.now + 5 * SECOND, () => {
      if (s < 0) {
        const id = pair.b.accept(l);
        if (id > 0) s = id;
      }
      if (s > 0 && !serverClosed) {
        if (pair.b.recv(s, buf, pair.now) > 0) pair.b.send(s, buf.subarray(0, 1), pair.now);
        // The client closed first (so its side ends in TIME-WAIT): close ours on its FIN.
        if (pair.b.state(s) === "CLOSE-WAIT") {
          pair.b.close(s, pair.now);
          serverClosed = true;
        }
      }
      if (!echoed && tcb.state === TcpState.Established) {
        if (pair.a.send(c, buf.subarray(0, 1), pair.now) > 0) echoed = true;
      }
      if (echoed && !closed && pair.a.recv(c, buf, pair.now) > 0) {
        pair.a.close(c, pair.now);
        closed = true;
      }
    }, () => tcb.state === TcpState.TimeWait || (orClosed && tcb.state === TcpState.Closed));
    assert.ok(ok, `connection from port ${port} reached TIME-WAIT (${tcb.stateName})`);
    return { port, sndNxt: tcb.sndNxt, state: tcb.stateName };
  };
  return { pair, exchange };
}

Deno.test("TcpStack.connect() takes over a TIME-WAIT port at least 1 s old when the ephemeral range is used up, with an ISN above the old SND.NXT", () => {
  const { pair, exchange } = pairWithTwoPorts();
  const first = exchange();
  const second = exchange();
  assert.notEqual(first.port, second.port);
  // Both ports in TIME-WAIT for less than a second: nothing to take.
  assert.throws(() => pair.a.connect(pair.addrB, 7, pair.now), AddressNotAvailable);
  pair.run(pair.now + 1100 * MILLISECOND, () => {}, () => false);
  const third = exchange();
  assert.ok(third.port === first.port || third.port === second.port);
  assert.equal(pair.a.counters.timeWaitReused, 1);
  const old = third.port === first.port ? first : second;
  assert.ok(seqGt(third.sndNxt, seqAdd(old.sndNxt, 65537)), "new incarnation starts above the old");
});

Deno.test("TcpStack.connect() does not take over TIME-WAIT ports when timeWaitReuse is off", () => {
  const { pair, exchange } = pairWithTwoPorts({ timeWaitReuse: false });
  exchange();
  exchange();
  pair.run(pair.now + 2 * SECOND, () => {}, () => false);
  assert.throws(() => pair.a.connect(pair.addrB, 7, pair.now), AddressNotAvailable);
  assert.equal(pair.a.counters.timeWaitReused, 0);
});

Deno.test("TcpStack keeps at most maxTimeWait connections in TIME-WAIT: the next one closes at once and is counted", () => {
  const { pair, exchange } = pairWithTwoPorts({ maxTimeWait: 1, timeWaitReuse: false });
  assert.equal(exchange(true).state, "TIME-WAIT");
  assert.equal(pair.a.counters.timeWait, 1);
  assert.equal(exchange(true).state, "CLOSED", "the second would exceed the bound");
  assert.equal(pair.a.counters.timeWaitOverflows, 1);
  assert.equal(pair.a.counters.timeWait, 1);
  // 2 MSL later the first one is gone and the count is back to 0.
  pair.run(pair.now + 61 * SECOND, () => {}, () => pair.a.counters.timeWait === 0);
  assert.equal(pair.a.counters.timeWait, 0);
  assert.equal(exchange(true).state, "TIME-WAIT", "room again");
});
