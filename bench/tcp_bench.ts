/**
 * TCP core speed:
 * - receive path: one in-order 1448-byte data segment into an established connection
 *   (parse, demux, sequence checks, ring write, delayed-ACK bookkeeping, an ACK every second
 *   segment) plus the application's read, per iteration;
 * - send path: the application writes 1448 bytes and the ACK of the previous segment arrives
 *   (engine onAck, send-ring free, one segment emitted with checksum), per iteration;
 * - a 4 MB bulk transfer between two stacks over the fake path (tests/support/tcp_pair.ts).
 *
 * Run: `deno bench -A bench/tcp_bench.ts`.
 *
 * @module
 */

import { MILLISECOND, SECOND } from "../stacks/time.ts";
import type { IpOutput, IpReceiveInfo } from "../stacks/tcpip/iface/protocol.ts";
import { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { write32 } from "../stacks/tcpip/wire/bytes.ts";
import { TCP_ACK } from "../stacks/tcpip/wire/tcp.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../tests/support/tcp_pair.ts";
import { passiveOpen, RIG_LOCAL } from "../tests/support/tcp_rig.ts";

const LOCAL = RIG_LOCAL;
const MSS = 1448;

/** Discards output into one reused buffer. */
class NullIp implements IpOutput {
  readonly buf = new Uint8Array(65536);
  packets = 0;
  beginPacket(
    _s: IpAddress,
    _d: IpAddress,
    _p: number,
    length: number,
    _e: number,
  ): Uint8Array | null {
    return this.buf.subarray(0, length);
  }
  commitPacket(): void {
    this.packets++;
  }
  sourceFor(): IpAddress {
    return LOCAL;
  }
  mtuFor(): number {
    return 1500;
  }
  isLocal(a: IpAddress): boolean {
    return a.equals(LOCAL);
  }
}

interface Rig {
  stack: TcpStack;
  id: number;
  seg: Uint8Array;
  info: IpReceiveInfo;
  ip: NullIp;
}

/** An established connection (passive open, no timestamps) and a segment template. */
function rig(dataLen: number): Rig {
  const ip = new NullIp();
  const { stack, id, info, build } = passiveOpen(ip, 1);
  return { stack, id, seg: build(TCP_ACK, 1001, 5001, dataLen), info, ip };
}

{
  const { stack, id, seg, info } = rig(MSS);
  let seq = 1001;
  const dst = new Uint8Array(65536);
  let now = 0;
  Deno.bench("tcp receive: one in-order 1448-byte segment + app read", () => {
    write32(seg, 4, seq);
    stack.receive(info, seg, now);
    seq = (seq + MSS) >>> 0;
    now += 10_000;
    stack.recv(id, dst, now);
    if (stack.pollAt() <= now) stack.poll(now);
  });
}

{
  const { stack, id, seg, info } = rig(0);
  const data = new Uint8Array(MSS);
  let acked = 5001;
  let now = 0;
  stack.setOption(id, "noDelay", true, 0);
  stack.send(id, data, now); // one segment in flight from here on
  Deno.bench("tcp send: app write of 1448 bytes + ACK of the previous segment", () => {
    now += 10_000;
    acked = (acked + MSS) >>> 0;
    write32(seg, 8, acked);
    stack.send(id, data, now);
    stack.receive(info, seg, now);
    if (stack.pollAt() <= now) stack.poll(now);
  });
}

Deno.bench("tcp bulk: 4 MB over the fake 100 Mbit/s path (two stacks)", { n: 5 }, () => {
  const pair = new TcpPair(cleanPath({ delay: MILLISECOND }), 1);
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const ea = new Endpoint(pair.a, c, payload(4_000_000, 1), 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), 4_000_000);
  pair.run(30 * SECOND, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
  }, () => eb.got === 4_000_000);
});

// Connection setup rate: each iteration opens, accepts, exchanges one byte each way, and closes
// 100 connections between two stacks over a zero-delay 10 Gbit/s path; divide 100 by the time
// per iteration for connections per second (both ends' work on one core).
Deno.bench("tcp setup: 100 x (connect, accept, 1 B each way, close) between two stacks", () => {
  const pair = new TcpPair(cleanPath({ delay: 0, rate: 1.25e9 }), 7);
  const l = pair.b.listen(null, 5001, 128);
  const one = new Uint8Array([42]);
  const got = new Uint8Array(16);
  for (let i = 0; i < 100; i++) {
    const c = pair.a.connect(pair.addrB, 5001, pair.now);
    let s = -1, stage = 0;
    const ok = pair.run(pair.now + SECOND, () => {
      if (s < 0) s = pair.b.accept(l);
      if (stage === 0 && pair.a.send(c, one, pair.now) === 1) stage = 1;
      if (stage === 1 && s >= 0 && pair.b.recv(s, got, pair.now) === 1) {
        pair.b.send(s, one, pair.now);
        stage = 2;
      }
      if (stage === 2 && pair.a.recv(c, got, pair.now) === 1) {
        pair.a.close(c, pair.now);
        pair.b.close(s, pair.now);
        stage = 3;
      }
    }, () => stage === 3);
    if (!ok) throw new Error(`connection ${i} did not complete`);
  }
});
