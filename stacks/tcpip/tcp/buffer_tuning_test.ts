import assert from "node:assert/strict";
import { type Duration, MILLISECOND, SECOND } from "../../time.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../../../tests/support/tcp_pair.ts";
import type { TcpConfig } from "./config.ts";
import { TCP_SYN, TcpRepr } from "../wire/tcp.ts";

const KIB = 1024;
const MIB = 1024 * 1024;

interface Outcome {
  /** Simulated time the transfer took. */
  took: Duration;
  /** The receiver's and the sender's buffer capacities at the end. */
  rcvCapacity: number;
  sndCapacity: number;
}

/**
 * 8 MB from A to B over 1 Gbit/s with a 20 ms round trip (a 2.5 MB path), both stacks with
 * `config`; `setup` may set socket options on A's socket and B's listener before the handshake.
 */
function transfer(
  config: Partial<TcpConfig>,
  setup: (pair: TcpPair, client: number, listener: number) => void = () => {},
): Outcome {
  const pair = new TcpPair(cleanPath({ delay: 10 * MILLISECOND, rate: 125e6 }), 11, config);
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  setup(pair, c, l);
  const data = payload(8 * 1_000_000, 12);
  const ea = new Endpoint(pair.a, c, data, 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), data.length);
  const ok = pair.run(60 * SECOND, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
  }, () => eb.got === data.length);
  assert.ok(ok, "transfer finished");
  assert.deepEqual(eb.received, data);
  assert.equal(pair.a.lastInternalError, null);
  assert.equal(pair.b.lastInternalError, null);
  return {
    took: pair.now,
    rcvCapacity: pair.b.tcbOf(eb.id)!.rcvRing.capacity,
    sndCapacity: pair.a.tcbOf(c)!.sndRing.capacity,
  };
}

const AUTO = { sendBufferMax: 4 * MIB, receiveBufferMax: 4 * MIB };

Deno.test("buffer auto-tuning grows 256 KiB buffers on a 20 ms path: 8 MB takes a fraction of the fixed buffers' time", () => {
  const fixed = transfer({});
  const auto = transfer(AUTO);
  // Fixed: 256 KiB per 20 ms round trip (~13 MB/s): over 600 ms for 8 MB.
  assert.ok(fixed.took > 600 * MILLISECOND, `fixed buffers took ${fixed.took / 1e6} ms`);
  assert.equal(fixed.rcvCapacity, 256 * KIB);
  assert.equal(fixed.sndCapacity, 256 * KIB);
  assert.ok(auto.took < fixed.took / 2, `auto ${auto.took / 1e6} ms, fixed ${fixed.took / 1e6} ms`);
  assert.ok(auto.rcvCapacity > 1 * MIB, `receive buffer grew to ${auto.rcvCapacity}`);
  assert.ok(auto.sndCapacity > 1 * MIB, `send buffer grew to ${auto.sndCapacity}`);
  assert.ok(auto.rcvCapacity <= 4 * MIB && auto.sndCapacity <= 4 * MIB, "within the ceilings");
});

Deno.test("SO_RCVBUF and SO_SNDBUF set on a socket keep its buffers fixed under auto-tuning", () => {
  const out = transfer(AUTO, (pair, client, listener) => {
    assert.equal(pair.b.getOptions(listener).receiveBufferAuto, true, "tuned by default");
    pair.b.setOption(listener, "receiveBufferSize", 256 * KIB, 0);
    pair.a.setOption(client, "sendBufferSize", 256 * KIB, 0);
    assert.equal(pair.b.getOptions(listener).receiveBufferAuto, false, "SO_RCVBUF locks it");
    assert.equal(pair.a.getOptions(client).sendBufferAuto, false, "SO_SNDBUF locks it");
  });
  assert.equal(out.rcvCapacity, 256 * KIB);
  assert.equal(out.sndCapacity, 256 * KIB);
});

Deno.test("a receiver that may grow offers the window scale of receiveBufferMax in its SYN", () => {
  const scaleOf = (config: Partial<TcpConfig>): number => {
    const pair = new TcpPair(cleanPath(), 1, config);
    let scale = -1;
    const repr = new TcpRepr();
    pair.tap = (side, bytes): void => {
      if (side === 0 && repr.parse(bytes) === undefined && (repr.flags & TCP_SYN) !== 0) {
        scale = repr.windowScale;
      }
    };
    pair.b.listen(null, 5001, 4);
    pair.a.connect(pair.addrB, 5001, 0);
    pair.run(SECOND, () => {}, () => scale >= 0);
    return scale;
  };
  assert.equal(scaleOf({}), 3, "256 KiB: shift 3");
  assert.equal(scaleOf(AUTO), 7, "up to 4 MiB: shift 7");
});

Deno.test("bufferTuningBudget bounds the growth of all connections together, and finished connections give theirs back", () => {
  const pair = new TcpPair(cleanPath({ delay: 10 * MILLISECOND, rate: 125e6 }), 13, {
    ...AUTO,
    bufferTuningBudget: 1 * MIB,
  });
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const data = payload(4_000_000, 14);
  const ea = new Endpoint(pair.a, c, data, 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), data.length);
  const app = (): void => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
  };
  // Mid-transfer (the sender then closes, and both ends leave ESTABLISHED).
  assert.ok(pair.run(60 * SECOND, app, () => eb.got >= 3_000_000));
  assert.equal(pair.a.bufferGrowth, 1 * MIB, "the sender used the whole budget");
  assert.equal(pair.b.bufferGrowth, 1 * MIB, "so did the receiver");
  assert.equal(pair.a.tcbOf(c)!.sndRing.capacity, 256 * KIB + 1 * MIB);
  assert.equal(pair.b.tcbOf(eb.id)!.rcvRing.capacity, 256 * KIB + 1 * MIB);
  assert.ok(pair.run(60 * SECOND, app, () => eb.eof));
  assert.deepEqual(eb.received, data);
  pair.run(pair.now + SECOND, app, () => pair.a.bufferGrowth === 0);
  assert.equal(pair.a.bufferGrowth, 0, "given back in TIME-WAIT or CLOSED");
  assert.equal(pair.b.bufferGrowth, 0);
});
