import assert from "node:assert/strict";
import { SECOND } from "../../stacks/time.ts";
import { memoryNet, type NetConn } from "./net.ts";
import type { TestResults } from "./protocol.ts";
import {
  endJson,
  endLines,
  formatBytes,
  formatRate,
  intervalLines,
  IntervalMeter,
  type Json,
  StreamCounter,
} from "./report.ts";

Deno.test("formatBytes()/formatRate() print three significant digits like iperf3", () => {
  assert.equal(formatBytes(1266155520), "1.18 GBytes");
  assert.equal(formatBytes(57016320), "54.4 MBytes");
  assert.equal(formatBytes(932 * 1024 * 1024), " 932 MBytes");
  assert.equal(formatBytes(0), "0.00 Bytes");
  assert.equal(formatRate(10127917291), "10.1 Gbits/sec");
  assert.equal(formatRate(941e6), " 941 Mbits/sec");
  assert.equal(formatRate(9.69e9), "9.69 Gbits/sec");
});

function fakeConn(): NetConn {
  const a: Deno.NetAddr = { transport: "tcp", hostname: "198.18.0.1", port: 1 };
  return {
    read: () => Promise.resolve(null),
    write: (p) => Promise.resolve(p.length),
    close(): void {},
    localAddr: a,
    remoteAddr: a,
  };
} // deno-fmt-ignore

Deno.test("IntervalMeter.sample() reports the bytes since the last sample and their rate", () => {
  const s1 = new StreamCounter(1, fakeConn());
  const s3 = new StreamCounter(3, fakeConn());
  const m = new IntervalMeter([s1, s3], true, 10 * SECOND, memoryNet());
  s1.bytes = 125_000_000;
  s3.bytes = 25_000_000;
  const a = m.sample(11 * SECOND);
  s1.bytes += 62_500_000;
  const b = m.sample(11.5 * SECOND);
  const sa = a.streams as Json[];
  assert.deepEqual([sa[0]!.bytes, sa[1]!.bytes, (a.sum as Json).bytes], [125e6, 25e6, 150e6]);
  assert.equal(sa[0]!.bits_per_second, 1e9);
  assert.deepEqual([sa[0]!.start, sa[0]!.end], [0, 1]);
  const sb = b.streams as Json[];
  assert.deepEqual([sb[0]!.bytes, sb[1]!.bytes], [62.5e6, 0]);
  assert.equal(sb[0]!.bits_per_second, 1e9);
  assert.deepEqual([sb[0]!.start, sb[0]!.end], [1, 1.5]);
  assert.equal(sb[0]!.retransmits, undefined); // no tcpInfo on this net
  const lines = intervalLines(b);
  assert.equal(lines.length, 3);
  assert.equal(lines[0], "[  1]   1.00-1.50   sec  59.6 MBytes  1.00 Gbits/sec");
  assert.match(lines[2]!, /^\[SUM\]/);
});

const res = (bytes: number[], retr: number, has: number): TestResults => ({
  cpuTotal: 1,
  cpuUser: 0.5,
  cpuSystem: 0.5,
  senderHasRetransmits: has,
  congestion: undefined,
  streams: bytes.map((b, i) => ({
    id: i === 0 ? 1 : i + 2,
    bytes: b,
    retransmits: retr,
    startTime: 0,
    endTime: 2,
  })),
});

Deno.test("endJson() pairs local and peer streams by id into sender/receiver entries", () => {
  // Receiver side (server in normal mode): peer is the sender.
  const local = res([900, 400], -1, -1);
  const peer: TestResults = {
    ...res([1000, 500], 3, 1),
    streams: [...res([1000, 500], 3, 1).streams].reverse(),
  };
  const e = endJson({ isSender: false, local, peer, streams: [], haveTcpInfo: false });
  const st = e.streams as { sender: Json; receiver: Json }[];
  assert.deepEqual(st.map((s) => [s.sender.socket, s.sender.bytes, s.receiver.bytes]), [[
    1,
    1000,
    900,
  ], [3, 500, 400]]);
  assert.equal((e.sum_sent as Json).bytes, 1500);
  assert.equal((e.sum_received as Json).bytes, 1300);
  assert.equal((e.sum_sent as Json).retransmits, 6);
  assert.equal((e.sum_sent as Json).bits_per_second, 6000);
  assert.equal(st[0]!.sender.sender, false);
  assert.equal(st[0]!.sender.max_snd_cwnd, 0); // remote sender: unknown locally
  const text = endLines(e);
  assert.equal(text.filter((l) => l.endsWith("sender")).length, 3);
  assert.equal(text.filter((l) => l.endsWith("receiver")).length, 3);
  // A sender that cannot know retransmits (Deno sockets) leaves them out.
  const e2 = endJson({
    isSender: true,
    local: res([10], 0, 0),
    peer: res([10], -1, -1),
    streams: [],
    haveTcpInfo: false,
  });
  assert.equal((e2.sum_sent as Json).retransmits, undefined);
}); // deno-fmt-ignore
