import assert from "node:assert/strict";
import type { IpOutput, IpReceiveInfo } from "../iface/protocol.ts";
import { IpAddress } from "../wire/address.ts";
import { read32, write32 } from "../wire/bytes.ts";
import { TCP_ACK } from "../wire/tcp.ts";
import { TcpStack } from "./stack.ts";
import { MILLISECOND, SECOND } from "../../time.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../../../tests/support/tcp_pair.ts";
import { passiveOpen, RIG_LOCAL } from "../../../tests/support/tcp_rig.ts";

const LOCAL = RIG_LOCAL;
const MSS = 1460; // the peer and we both announce 1460: full-sized segments

/** Records every segment the stack sends (ACK numbers of the pure ACKs). */
class RecordingIp implements IpOutput {
  readonly buf = new Uint8Array(65536);
  readonly acks: number[] = [];
  #len = 0;
  beginPacket(_s: IpAddress, _d: IpAddress, _p: number, length: number): Uint8Array | null {
    this.#len = length;
    return this.buf.subarray(0, length);
  }
  commitPacket(): void {
    if (this.#len <= 60) this.acks.push(read32(this.buf, 8)); // header only: a pure ACK
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

/** An established passive connection (no timestamps) and a builder of peer segments. */
function rig(ackCoalescing: boolean): {
  stack: TcpStack;
  ip: RecordingIp;
  data: (seq: number) => Uint8Array;
  info: IpReceiveInfo;
} {
  const ip = new RecordingIp();
  const { stack, info, build } = passiveOpen(ip, 7, { ackCoalescing, quickAckSegments: 0 });
  ip.acks.length = 0;
  const template = build(TCP_ACK, 1001, 5001, MSS);
  return {
    stack,
    ip,
    info,
    data: (seq) => {
      const seg = template.slice();
      write32(seg, 4, seq);
      return seg;
    },
  };
}

/** Delivers `n` in-order full segments at one instant (one receive batch). */
function batch(
  stack: TcpStack,
  info: IpReceiveInfo,
  data: (s: number) => Uint8Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) stack.receive(info, data(1001 + i * MSS), 1000);
}

Deno.test("without ackCoalescing a batch of 10 in-order segments is ACKed every second segment (5 ACKs during the batch)", () => {
  const { stack, ip, data, info } = rig(false);
  batch(stack, info, data, 10);
  assert.deepEqual(ip.acks, [1, 2, 3, 4, 5].map((k) => 1001 + 2 * k * MSS));
});

Deno.test("with ackCoalescing a batch of 10 in-order segments gets one ACK, of all of them, at the next poll", () => {
  const { stack, ip, data, info } = rig(true);
  batch(stack, info, data, 10);
  assert.deepEqual(ip.acks, [], "nothing during the batch");
  assert.ok(stack.pollAt() <= 1000, "the stack asks to be polled at once");
  stack.poll(1000);
  assert.deepEqual(ip.acks, [1001 + 10 * MSS]);
  assert.ok(stack.pollAt() > 1000, "nothing left due");
  stack.poll(1000);
  assert.equal(ip.acks.length, 1, "no second ACK");
});

Deno.test("with ackCoalescing an out-of-order segment is still ACKed at once (duplicate ACK for loss detection)", () => {
  const { stack, ip, data, info } = rig(true);
  batch(stack, info, data, 3); // 1 ACK owed, deferred
  stack.receive(info, data(1001 + 5 * MSS), 1000); // hole at segments 3..4
  assert.deepEqual(ip.acks, [1001 + 3 * MSS], "immediate ACK at the hole");
  stack.poll(1000);
  assert.equal(ip.acks.length, 1, "the deferred ACK was carried by the immediate one");
});

Deno.test("ackCoalescing with half-window updates moves 2 MB intact over a path with 1% loss and reordering", () => {
  const pair = new TcpPair(
    cleanPath({ delay: MILLISECOND, rate: 125e6, loss: 0.01, reorder: 0.01 }),
    11,
    { ackCoalescing: true, windowUpdateOnRead: "half-window" },
  );
  const l = pair.b.listen(null, 5001, 4);
  const c = pair.a.connect(pair.addrB, 5001, 0);
  const bytes = payload(2_000_000, 9);
  const ea = new Endpoint(pair.a, c, bytes, 0);
  const eb = new Endpoint(pair.b, -1, new Uint8Array(0), bytes.length);
  const ok = pair.run(60 * SECOND, () => {
    eb.acceptFrom(l);
    ea.pump(pair.now);
    eb.pump(pair.now);
  }, () => eb.eof);
  assert.ok(ok, "finished");
  assert.ok(pair.droppedData > 0, "the path did drop data");
  assert.deepEqual(eb.received, bytes);
  assert.equal(pair.a.lastInternalError, null);
  assert.equal(pair.b.lastInternalError, null);
});
