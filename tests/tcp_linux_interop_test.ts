/**
 * Interop with Linux: the client half of a real Linux<->Linux capture (tests/fixtures/
 * tcp_options.pcap) is replayed into our TcpStack playing the server, with the two segments
 * the Linux server had dropped left out. Our ACK numbers, SACK blocks (most recent first) and
 * echoed timestamps must equal what the Linux server sent at the same points.
 */
import assert from "node:assert/strict";
import { loadFixture } from "./support/fixtures.ts";
import { type Captured, TcpScript } from "../stacks/tcpip/tcp/script.ts";
import { TcpRepr } from "../stacks/tcpip/wire/tcp.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { defaultSocketOptions } from "../stacks/tcpip/tcp/config.ts";

interface Frame {
  at: number;
  ip: Uint8Array;
  seg: Uint8Array;
  repr: TcpRepr;
  fromClient: boolean;
}

function frames(): Frame[] {
  const fx = loadFixture("tcp_options");
  const out: Frame[] = [];
  let t0 = -1;
  let client = -1;
  for (const rec of fx.records) {
    const f = rec.data;
    const ip = f.subarray(14, 14 + ((f[16]! << 8) | f[17]!));
    const seg = ip.subarray((ip[0]! & 15) * 4);
    const repr = new TcpRepr();
    assert.equal(repr.parse(seg), undefined);
    const at = rec.seconds * 1e9 + rec.nanoseconds;
    if (t0 < 0) {
      t0 = at;
      client = repr.srcPort; // the first frame is the client's SYN
    }
    out.push({ at: at - t0, ip, seg, repr, fromClient: repr.srcPort === client });
  }
  return out;
}

Deno.test("replaying a Linux client: our ACKs, SACK blocks and TS echoes match the Linux server's", () => {
  const fs = frames();
  const syn = fs[0]!;
  const synAck = fs[1]!;
  const s = new TcpScript({
    iss: synAck.repr.seq, // same ISS as the Linux server, so the client's ACK numbers fit
    local: IpAddress.fromBytes(syn.ip.subarray(16, 20)),
    remote: IpAddress.fromBytes(syn.ip.subarray(12, 16)),
    port: syn.repr.dstPort,
    peerPort: syn.repr.srcPort,
    config: {
      ecn: false,
      // A 32 MiB buffer gives window scale 10, as Linux offered (storage grows lazily).
      socket: { ...defaultSocketOptions(), receiveBufferSize: 32 << 20 },
    },
  });
  const l = s.stack.listen(null, syn.repr.dstPort, 4);
  // The Linux server dropped the first copies of these two client segments (nft).
  const seen = new Set<number>();
  const dropOnce = new Set([fs[5]!.repr.seq, fs[7]!.repr.seq]);
  let conn = -1;
  let closed = false;
  const reply = fs.find((f) => !f.fromClient && f.repr.payload.length > 0)!;
  const ours: Captured[] = [];
  const linux: TcpRepr[] = [];
  for (const f of fs) {
    if (!f.fromClient) {
      linux.push(f.repr);
      continue;
    }
    if (f.repr.payload.length > 0 && dropOnce.has(f.repr.seq) && !seen.has(f.repr.seq)) {
      seen.add(f.repr.seq);
      continue;
    }
    s.advanceTo(f.at);
    s.stack.receive(
      {
        version: 4,
        src: f.ip.subarray(12, 16),
        dst: f.ip.subarray(16, 20),
        ecn: f.ip[1]! & 3,
        ttl: f.ip[8]!,
        packet: f.ip,
        checksumVerified: false, // Linux's checksums must verify with ours
      },
      f.seg,
      s.now,
    );
    if (conn < 0) conn = s.stack.accept(l);
    if (conn > 0 && !closed && s.stack.tcbOf(conn)?.rcvEof) {
      closed = true;
      // The Linux server's application answered 4 bytes and closed after reading EOF.
      const buf = new Uint8Array(1024);
      while (s.stack.recv(conn, buf, s.now) > 0);
      s.stack.send(conn, reply.repr.payload, s.now);
      s.stack.close(conn, s.now);
    }
    while (s.pending().length > 0) ours.push(s.take());
  }
  s.assertHealthy();
  assert.equal(s.stack.counters.totalDrops(), 0, JSON.stringify(s.stack.counters.snapshot()));
  // SYN-ACK: same options as Linux's except the window value.
  const [sa] = ours;
  assert.equal(sa!.flags, "S.");
  assert.equal(sa!.ack, synAck.repr.ack);
  assert.equal(sa!.mss, synAck.repr.mss);
  assert.equal(sa!.ws, synAck.repr.windowScale);
  assert.equal(sa!.sackOk, synAck.repr.sackPermitted);
  assert.equal(sa!.ts![1], synAck.repr.tsEcr);
  // Pure ACKs: the sequence of (ack, SACK blocks, TSecr) equals Linux's.
  const key = (ack: number, sack: number[][], ecr: number): string =>
    `${ack} ${sack.map(([a, b]) => `${a}-${b}`).join(",")} ecr ${ecr}`;
  const ourAcks = ours.filter((c) => c.flags === "." && c.data.length === 0).map((c) =>
    key(c.ack, c.sack, c.ts![1])
  );
  const linuxAcks = linux.filter((r) => r.flags === 0x10 && r.payload.length === 0).map((r) => {
    const sack: number[][] = [];
    for (let i = 0; i < r.sackCount; i++) {
      sack.push([r.sackBlocks[2 * i]!, r.sackBlocks[2 * i + 1]!]);
    }
    return key(r.ack, sack, r.tsEcr);
  });
  // Linux delayed its ACK of the client's FIN into the reply; we ACK the FIN at once, so our
  // list may hold one more ACK at the end.
  assert.ok(linuxAcks.length >= 5 && linuxAcks.some((k) => k.includes(",")), "two-block SACK seen");
  assert.deepEqual(ourAcks.slice(0, linuxAcks.length), linuxAcks);
  // Then the 4-byte reply and our FIN, at Linux's sequence numbers; the client's last ACK
  // acknowledged our FIN, so the connection is fully closed.
  const data = ours.find((c) => c.data.length === 4)!;
  assert.equal(data.seq, reply.repr.seq);
  assert.deepEqual(data.data, reply.repr.payload);
  const fin = ours.find((c) => c.flags.includes("F"))!;
  const linuxFin = linux.find((r) => (r.flags & 1) !== 0)!;
  assert.equal(fin.seq, linuxFin.seq);
  assert.equal(s.stack.connectionCount, 0, "LAST-ACK ended by the client's final ACK");
});
