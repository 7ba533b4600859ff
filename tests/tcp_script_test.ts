/**
 * Segment-level scripts against one TcpStack (packetdrill style): inject exact segments at
 * exact times and assert exactly what the stack sends back.
 */
import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { defaultSocketOptions, type TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import { COOKIE_PERIOD } from "../stacks/tcpip/tcp/isn.ts";
import { TcpScript, type TcpScriptOptions } from "../stacks/tcpip/tcp/script.ts";
import { ConnectionRefused, ConnectionReset, TimedOut } from "../stacks/tcpip/tcp/errors.ts";
import { WOULD_BLOCK, WRITABLE } from "../stacks/tcpip/tcp/stack.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import type { IcmpErrorInfo } from "../stacks/tcpip/iface/icmp.ts";
import { registerCc, RenoCc } from "../stacks/tcpip/tcp/recovery/mod.ts";

const ISS = 5000;
const PEER = 1000;

/** Plain config: no timestamps, no ECN, 64 KiB buffers (window scale 0) for readable numbers. */
function plain(extra: Partial<TcpConfig> = {}): Partial<TcpConfig> {
  return {
    timestamps: false,
    ecn: false,
    socket: { ...defaultSocketOptions(), receiveBufferSize: 65535, sendBufferSize: 65535 },
    ...extra,
  };
}

function script(extra: Partial<TcpConfig> = {}, o: TcpScriptOptions = {}): TcpScript {
  return new TcpScript({ iss: ISS, config: plain(extra), ...o });
}

/** Passive open to ESTABLISHED; returns the accepted socket id. */
function acceptOne(s: TcpScript, sackOk = true): number {
  const l = s.stack.listen(null, s.port, 16);
  s.inject({ flags: "S", seq: PEER, win: 65535, mss: 1460, sackOk });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1, win: 65535, mss: 1460, ws: -1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 65535 });
  s.expectNone();
  const c = s.stack.accept(l);
  assert.ok(c > 0, "accept() returns the established connection");
  assert.equal(s.stack.state(c), "ESTABLISHED");
  return c;
}

/** Active open to ESTABLISHED; returns the socket id. */
function connectOne(s: TcpScript, peerWin = 65535): number {
  const c = s.stack.connect(s.remote, s.port, s.now, { localPort: s.peerPort });
  // In these scripts the stack is the client: its port is `peerPort`, the server's `port`.
  s.expect({ flags: "S", seq: ISS, mss: 1460, sackOk: true });
  s.inject({
    flags: "S.",
    seq: PEER,
    ack: ISS + 1,
    win: peerWin,
    mss: 1460,
    sackOk: true,
    srcPort: s.port,
    dstPort: s.peerPort,
  });
  s.expect({ flags: ".", seq: ISS + 1, ack: PEER + 1 });
  assert.equal(s.stack.state(c), "ESTABLISHED");
  return c;
}

/** Injects from the server side of an active-open script. */
function fromServer(s: TcpScript, spec: Parameters<TcpScript["inject"]>[0]): void {
  s.inject({ srcPort: s.port, dstPort: s.peerPort, ...spec });
}

Deno.test("passive open negotiates MSS, SACK, timestamps and window scale in the SYN-ACK", () => {
  const s = new TcpScript({ iss: ISS });
  const l = s.stack.listen(null, 8080, 8);
  s.inject({ flags: "SEW", seq: PEER, win: 65535, mss: 1400, ws: 7, sackOk: true, ts: [100, 0] });
  const synack = s.expect({
    flags: "SE.",
    seq: ISS,
    ack: PEER + 1,
    mss: 1460,
    ws: 3,
    sackOk: true,
  });
  assert.equal(synack.ts![1], 100, "SYN-ACK echoes the SYN's TSval");
  assert.equal(synack.win, 65535, "the window in a SYN-ACK is never scaled");
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 512, ts: [101, synack.ts![0]] });
  s.expectNone();
  const c = s.stack.accept(l);
  const info = s.stack.info(c);
  assert.equal(info.state, "ESTABLISHED");
  assert.deepEqual(info.options, {
    timestamps: true,
    sack: true,
    wscale: 3,
    peerWscale: 7,
    ecn: true,
  });
  assert.equal(info.sndWnd, 512 << 7, "the peer's window is scaled after the handshake");
  assert.equal(info.mss, 1400 - 12, "send MSS = min(peer MSS, route MSS) - timestamp option");
  s.assertHealthy();
});

Deno.test("active open sends SYN with options and completes on SYN-ACK; peer without options gets 536 MSS", () => {
  const s = new TcpScript({ iss: ISS, config: { ecn: true } });
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  const syn = s.expect({ flags: "SEW", seq: ISS, ack: 0, mss: 1460, ws: 3, sackOk: true });
  assert.ok(syn.ts !== null && syn.ts[1] === 0, "SYN carries TSval and TSecr 0");
  assert.equal(s.stack.state(c), "SYN-SENT");
  // A SYN-ACK without any options: no scaling, no SACK, no timestamps, default MSS.
  s.inject({ flags: "S.", seq: PEER, ack: ISS + 1, win: 8000, srcPort: 80, dstPort: 40000 });
  s.expect({ flags: ".", seq: ISS + 1, ack: PEER + 1, ts: null, sack: [] });
  const info = s.stack.info(c);
  assert.equal(info.state, "ESTABLISHED");
  assert.equal(info.mss, 536);
  assert.deepEqual(info.options, {
    timestamps: false,
    sack: false,
    wscale: -1,
    peerWscale: -1,
    ecn: false,
  });
  assert.equal(info.sndWnd, 8000);
  s.assertHealthy();
});

Deno.test("simultaneous open: SYN in SYN-SENT gives SYN-ACK, both sides end ESTABLISHED", () => {
  const s = script();
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  s.expect({ flags: "S", seq: ISS });
  s.inject({ flags: "S", seq: PEER, win: 65535, mss: 1460, srcPort: 80, dstPort: 40000 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  assert.equal(s.stack.state(c), "SYN-RECEIVED");
  // The peer's SYN-ACK repeats its SYN: not acceptable in sequence space, so it is re-ACKed.
  s.inject({
    flags: "S.",
    seq: PEER,
    ack: ISS + 1,
    win: 65535,
    mss: 1460,
    srcPort: 80,
    dstPort: 40000,
  });
  s.expect({ flags: ".", seq: ISS + 1, ack: PEER + 1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 80, dstPort: 40000 });
  assert.equal(s.stack.state(c), "ESTABLISHED");
  s.expectNone();
  s.assertHealthy();
});

Deno.test("active close: FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED after 2*MSL", () => {
  const s = script({ msl: 1 * SECOND });
  const c = acceptOne(s);
  const tcb = s.stack.tcbOf(c)!;
  s.stack.shutdown(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1, ack: PEER + 1 });
  assert.equal(tcb.stateName, "FIN-WAIT-1");
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 2 });
  assert.equal(tcb.stateName, "FIN-WAIT-2");
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2 });
  s.expect({ flags: ".", seq: ISS + 2, ack: PEER + 2 });
  assert.equal(tcb.stateName, "TIME-WAIT");
  // A retransmitted FIN in TIME-WAIT is re-acknowledged.
  s.wait(500);
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2 });
  s.expect({ flags: ".", seq: ISS + 2, ack: PEER + 2 });
  s.wait(1999);
  assert.equal(tcb.stateName, "TIME-WAIT", "2*MSL restarted by the retransmitted FIN");
  s.wait(2);
  assert.equal(tcb.stateName, "CLOSED");
  assert.equal(s.stack.connectionCount, 0);
  s.expectNone();
  s.assertHealthy();
});

Deno.test("passive close: CLOSE-WAIT on FIN, LAST-ACK on close, CLOSED on the final ACK", () => {
  const s = script();
  const c = acceptOne(s);
  const tcb = s.stack.tcbOf(c)!;
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 1 });
  s.expect({ flags: ".", seq: ISS + 1, ack: PEER + 2 });
  assert.equal(tcb.stateName, "CLOSE-WAIT");
  assert.equal(s.stack.recv(c, new Uint8Array(10), s.now), 0, "recv() reports end of stream");
  s.stack.close(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1, ack: PEER + 2 });
  assert.equal(tcb.stateName, "LAST-ACK");
  s.inject({ flags: ".", seq: PEER + 2, ack: ISS + 2 });
  assert.equal(tcb.stateName, "CLOSED");
  assert.equal(s.stack.connectionCount, 0);
  s.expectNone();
});

Deno.test("simultaneous close: FIN-WAIT-1 -> CLOSING -> TIME-WAIT", () => {
  const s = script({ msl: SECOND });
  const c = acceptOne(s);
  const tcb = s.stack.tcbOf(c)!;
  s.stack.close(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1, ack: PEER + 1 });
  // The peer's FIN crosses ours: it does not acknowledge our FIN.
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 1 });
  s.expect({ flags: ".", seq: ISS + 2, ack: PEER + 2 });
  assert.equal(tcb.stateName, "CLOSING");
  s.inject({ flags: ".", seq: PEER + 2, ack: ISS + 2 });
  assert.equal(tcb.stateName, "TIME-WAIT");
  s.wait(2001);
  assert.equal(tcb.stateName, "CLOSED");
});

Deno.test("FIN-WAIT-1 takes FIN+ACK of our FIN straight to TIME-WAIT", () => {
  const s = script();
  const c = acceptOne(s);
  const tcb = s.stack.tcbOf(c)!;
  s.stack.close(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1 });
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2 });
  s.expect({ flags: ".", seq: ISS + 2, ack: PEER + 2 });
  assert.equal(tcb.stateName, "TIME-WAIT");
});

Deno.test("half-close: data keeps flowing to us after our FIN", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.shutdown(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 2 });
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 2, data: 100 });
  s.expect({ flags: ".", ack: PEER + 101 });
  const buf = new Uint8Array(200);
  assert.equal(s.stack.recv(c, buf, s.now), 100);
  assert.throws(() => s.stack.send(c, new Uint8Array(1), s.now), /shut down/);
});

Deno.test("RST for a closed port: SYN gets RST+ACK seq 0, ACK gets RST seq=SEG.ACK, RST gets nothing", () => {
  const s = script();
  s.inject({ flags: "S", seq: 77, data: 3 });
  s.expect({ flags: "R.", seq: 0, ack: 77 + 1 + 3, win: 0 });
  s.inject({ flags: ".", seq: 77, ack: 123456 });
  s.expect({ flags: "R", seq: 123456 });
  s.inject({ flags: "R", seq: 77 });
  s.inject({ flags: "R.", seq: 77, ack: 5 });
  s.expectNone();
  assert.equal(s.stack.counters.get("closed-port"), 4);
  assert.equal(s.stack.counters.resetsSent, 2);
});

Deno.test("listener answers a bare ACK with RST and ignores RST, SYN+FIN and SYN+RST", () => {
  const s = script();
  s.stack.listen(null, s.port, 4);
  s.inject({ flags: ".", seq: 10, ack: 999 });
  s.expect({ flags: "R", seq: 999 });
  s.inject({ flags: "R", seq: 10 });
  s.inject({ flags: "SF", seq: 10 });
  s.inject({ flags: "SR", seq: 10 });
  s.inject({ flags: "P", seq: 10, data: 5 });
  s.expectNone();
  assert.equal(s.stack.counters.get("listen-rst"), 1);
  assert.equal(s.stack.counters.get("syn-fin"), 1);
  assert.equal(s.stack.counters.get("syn-rst"), 1);
  assert.equal(s.stack.counters.get("listen-non-syn"), 1);
  assert.equal(s.stack.connectionCount, 0);
});

Deno.test("SYN-SENT: bad ACK gets RST, RST without ACK is ignored, RST with good ACK refuses", () => {
  const s = script();
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  s.expect({ flags: "S", seq: ISS });
  const srv = { srcPort: 80, dstPort: 40000 };
  s.inject({ ...srv, flags: "S.", seq: PEER, ack: ISS + 7 });
  s.expect({ flags: "R", seq: ISS + 7 });
  s.inject({ ...srv, flags: "R", seq: PEER });
  s.expectNone();
  assert.equal(s.stack.state(c), "SYN-SENT");
  s.inject({ ...srv, flags: "R.", seq: 0, ack: ISS + 1 });
  assert.equal(s.stack.state(c), "CLOSED");
  assert.ok(s.stack.error(c) instanceof ConnectionRefused);
  assert.throws(() => s.stack.send(c, new Uint8Array(1), s.now), ConnectionRefused);
  s.expectNone();
});

Deno.test("SYN-RECEIVED: unacceptable ACK gets RST; RST returns the half-open connection to LISTEN", () => {
  const s = script();
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1460 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 50 });
  s.expect({ flags: "R", seq: ISS + 50 });
  s.inject({ flags: "R", seq: PEER + 1 });
  s.expectNone();
  assert.equal(s.stack.connectionCount, 0);
  assert.equal(s.stack.accept(l), -1);
  // A retransmitted SYN in SYN-RECEIVED gets the SYN-ACK again.
  s.inject({ flags: "S", seq: PEER, mss: 1460 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  s.inject({ flags: "S", seq: PEER, mss: 1460 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
});

Deno.test("ESTABLISHED: exact RST resets; in-window RST and SYN get a challenge ACK; out-of-window RST is dropped", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: "R", seq: PEER + 100 });
  s.expect({ flags: ".", seq: ISS + 1, ack: PEER + 1 });
  s.inject({ flags: "S", seq: PEER + 5 });
  s.expect({ flags: ".", seq: ISS + 1, ack: PEER + 1 });
  s.inject({ flags: "R", seq: PEER + 1_000_000 });
  s.expectNone();
  assert.equal(s.stack.state(c), "ESTABLISHED");
  assert.equal(s.stack.counters.challengeAcks, 2);
  assert.equal(s.stack.counters.get("rst-out-of-window"), 1);
  s.inject({ flags: "R", seq: PEER + 1 });
  s.expectNone();
  assert.equal(s.stack.state(c), "CLOSED");
  assert.throws(() => s.stack.recv(c, new Uint8Array(4), s.now), ConnectionReset);
});

Deno.test("challenge ACKs are rate-limited stack-wide with a randomized budget (RFC 5961 7)", () => {
  const s = script({ challengeAckLimit: 4 });
  acceptOne(s);
  const budgets: number[] = [];
  for (let sec = 0; sec < 8; sec++) {
    for (let i = 0; i < 10; i++) s.inject({ flags: "R", seq: PEER + 10 + i });
    const sent = s.pending().length;
    assert.ok(sent >= 2 && sent <= 4, `budget ${sent} within [limit/2, limit]`);
    budgets.push(sent);
    while (s.pending().length > 0) s.expect({ flags: ".", ack: PEER + 1 });
    s.wait(1000);
  }
  assert.ok(new Set(budgets).size > 1, `the budget varies: ${budgets}`);
  assert.equal(
    s.stack.counters.get("challenge-ack-rate-limited"),
    80 - budgets.reduce((a, b) => a + b),
  );
});

Deno.test("ACK of unsent data and ACK older than the window get a challenge ACK and are dropped", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expect({ flags: "P.", seq: ISS + 1, data: 100 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 500 });
  s.expect({ flags: ".", seq: ISS + 101, ack: PEER + 1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS - 200_000 });
  s.expect({ flags: ".", seq: ISS + 101, ack: PEER + 1 });
  assert.equal(s.stack.counters.get("ack-unsent"), 1);
  assert.equal(s.stack.counters.get("ack-challenged"), 1);
  assert.equal(s.stack.tcbOf(c)!.sndUna, ISS + 1, "nothing was acknowledged");
});

Deno.test("abort() sends RST <SEQ=SND.NXT> and close() with unread data aborts", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.abort(c, s.now);
  s.expect({ flags: "R", seq: ISS + 1 });
  const s2 = script();
  const c2 = acceptOne(s2);
  s2.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10 });
  s2.expect({ flags: ".", ack: PEER + 11 });
  s2.stack.close(c2, s2.now);
  s2.expect({ flags: "R", seq: ISS + 1 });
});

Deno.test("segments with a bad checksum or a bad option length are dropped and counted", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10, badChecksum: true });
  s.expectNone();
  assert.equal(s.stack.counters.get("bad-checksum"), 1);
  const seg = s.build({ flags: ".", seq: PEER + 1, ack: ISS + 1, mss: 1460 }).slice();
  seg[21] = 7; // MSS option length 7: invalid
  s.stack.receive(
    {
      version: 4,
      src: s.remote.bytes,
      dst: s.local.bytes,
      ecn: 0,
      ttl: 64,
      packet: seg,
      checksumVerified: true,
    },
    seg,
    s.now,
  );
  assert.equal(s.stack.counters.get("bad-option"), 1);
  assert.equal(s.stack.state(c), "ESTABLISHED");
  s.expectNone();
});

Deno.test("PAWS drops a segment with an old TSval and re-ACKs it (RFC 7323 5.3)", () => {
  const s = new TcpScript({ iss: ISS, config: { ecn: false } });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1460, ts: [1000, 0] });
  const sa = s.take();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, ts: [1001, sa.ts![0]] });
  const c = s.stack.accept(l);
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, ts: [1002, sa.ts![0]], data: 10 });
  s.expect({ flags: ".", ack: PEER + 11 });
  s.inject({ flags: "P.", seq: PEER + 11, ack: ISS + 1, ts: [900, sa.ts![0]], data: 10 });
  const a = s.expect({ flags: ".", ack: PEER + 11 });
  assert.equal(a.ts![1], 1002, "TS.Recent still the newest valid TSval");
  assert.equal(s.stack.counters.get("paws"), 1);
  assert.equal(
    s.stack.recv(c, new Uint8Array(100), s.now),
    10,
    "the old segment's data was dropped",
  );
});

for (const base of [0x7fff_fff0, 0xffff_fff0]) {
  Deno.test(`PAWS and TS.Recent compare TSvals modulo 2^32 across ${base < 2 ** 31 ? "2^31" : "2^32"}`, () => {
    const ts = (d: number): number => (base + d) >>> 0;
    const s = new TcpScript({ iss: ISS, config: { ecn: false } });
    const l = s.stack.listen(null, s.port, 4);
    s.inject({ flags: "S", seq: PEER, mss: 1460, ts: [ts(0), 0] });
    const sa = s.take();
    s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, ts: [ts(1), sa.ts![0]] });
    const c = s.stack.accept(l);
    // Newer by 32 (across 2^31 or 2^32): accepted, and TS.Recent takes it.
    s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, ts: [ts(32), sa.ts![0]], data: 10 });
    const a1 = s.expect({ flags: ".", ack: PEER + 11 });
    assert.equal(a1.ts![1], ts(32));
    // Older than TS.Recent: dropped by PAWS and re-ACKed with TS.Recent.
    s.inject({ flags: "P.", seq: PEER + 11, ack: ISS + 1, ts: [ts(-100), sa.ts![0]], data: 10 });
    const a2 = s.expect({ flags: ".", ack: PEER + 11 });
    assert.equal(a2.ts![1], ts(32), "TS.Recent still the newest valid TSval");
    assert.equal(s.stack.counters.get("paws"), 1);
    assert.equal(s.stack.recv(c, new Uint8Array(100), s.now), 10);
  });
}

Deno.test("delayed ACK: quick ACKs first, then every second full segment or after 40 ms", () => {
  const s = script({ quickAckSegments: 2 });
  acceptOne(s);
  let seq = PEER + 1;
  const seg = (n: number): void => {
    s.inject({ flags: ".", seq, ack: ISS + 1, data: n });
    seq += n;
  };
  seg(1460);
  s.expect({ flags: ".", ack: seq });
  seg(1460);
  s.expect({ flags: ".", ack: seq });
  seg(1460); // quick ACKs used up: delayed
  s.expectNone();
  seg(1460); // second full segment: ACK now
  s.expect({ flags: ".", ack: seq });
  seg(100);
  s.expectNone();
  s.wait(39);
  s.expectNone();
  s.wait(1);
  const a = s.expect({ flags: ".", ack: seq });
  assert.equal(a.at, 40 * MILLISECOND);
});

Deno.test("out-of-order data is ACKed at once with SACK blocks, most recent first, and D-SACK for duplicates", () => {
  const s = script({ quickAckSegments: 0 });
  acceptOne(s);
  const b = PEER + 1;
  s.inject({ flags: ".", seq: b + 1000, ack: ISS + 1, data: 100 });
  s.expect({ flags: ".", ack: b, sack: [[b + 1000, b + 1100]] });
  s.inject({ flags: ".", seq: b + 2000, ack: ISS + 1, data: 100 });
  s.expect({ flags: ".", ack: b, sack: [[b + 2000, b + 2100], [b + 1000, b + 1100]] });
  s.inject({ flags: ".", seq: b + 1100, ack: ISS + 1, data: 50 });
  s.expect({ flags: ".", ack: b, sack: [[b + 1000, b + 1150], [b + 2000, b + 2100]] });
  // A duplicate of held out-of-order data: D-SACK first, then the block containing it.
  s.inject({ flags: ".", seq: b + 2000, ack: ISS + 1, data: 100 });
  s.expect({
    flags: ".",
    ack: b,
    sack: [[b + 2000, b + 2100], [b + 2000, b + 2100], [b + 1000, b + 1150]],
  });
  // Filling the hole acknowledges through the first range at once.
  s.inject({ flags: ".", seq: b, ack: ISS + 1, data: 1000 });
  s.expect({ flags: ".", ack: b + 1150, sack: [[b + 2000, b + 2100]] });
  // An old duplicate below RCV.NXT: D-SACK of it.
  s.inject({ flags: ".", seq: b, ack: ISS + 1, data: 100 });
  s.expect({ flags: ".", ack: b + 1150, sack: [[b, b + 100], [b + 2000, b + 2100]] });
});

Deno.test("Nagle holds a small segment while data is unacknowledged; NODELAY sends at once", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expect({ flags: "P.", seq: ISS + 1, data: 100 });
  s.stack.send(c, new Uint8Array(50), s.now);
  s.expectNone();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 101 });
  s.expect({ flags: "P.", seq: ISS + 101, data: 50 });
  s.stack.setOption(c, "noDelay", true, s.now);
  s.stack.send(c, new Uint8Array(30), s.now);
  s.expect({ flags: "P.", seq: ISS + 151, data: 30 });
});

Deno.test("zero window: persist probes back off exponentially and stop when the window opens", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 0 });
  s.stack.send(c, new Uint8Array(3000), s.now);
  s.expectNone();
  const gaps: number[] = [];
  let last = s.now;
  for (let i = 0; i < 5; i++) {
    s.advanceTo(s.stack.pollAt());
    const p = s.expect({ flags: ".", seq: ISS, ack: PEER + 1, data: 0 });
    gaps.push((p.at - last) / MILLISECOND);
    last = p.at;
    s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 0 });
    s.expectNone();
  }
  for (let i = 1; i < gaps.length; i++) assert.equal(gaps[i], gaps[i - 1]! * 2, `gaps ${gaps}`);
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 65535 });
  s.expect({ flags: ".", seq: ISS + 1, data: 1460 });
  s.expect({ flags: ".", seq: ISS + 1461, data: 1460 });
  s.expectNone(); // Nagle: the 80-byte tail waits for the ACK
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 2921, win: 65535 });
  s.expect({ flags: "P.", seq: ISS + 2921, data: 80 });
});

Deno.test("keepalive: probes after idle, every interval, then TimedOut after the count", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.setOption(c, "keepIdle", 10 * SECOND, s.now);
  s.stack.setOption(c, "keepInterval", SECOND, s.now);
  s.stack.setOption(c, "keepCount", 3, s.now);
  s.stack.setOption(c, "keepAlive", true, s.now);
  s.wait(9_999);
  s.expectNone();
  s.wait(1);
  s.expect({ flags: ".", seq: ISS, ack: PEER + 1, data: 0 });
  // An answer resets the count.
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 });
  s.wait(10_000);
  s.expect({ flags: ".", seq: ISS });
  s.wait(1000);
  s.expect({ flags: ".", seq: ISS });
  s.wait(1000);
  s.expect({ flags: ".", seq: ISS });
  assert.equal(s.stack.state(c), "ESTABLISHED");
  s.wait(1000);
  assert.equal(s.stack.state(c), "CLOSED");
  assert.ok(s.stack.error(c) instanceof TimedOut);
  s.expectNone();
});

Deno.test("SYN cookies: a full SYN queue answers with a cookie and the ACK completes the connection", () => {
  const s = new TcpScript({ iss: ISS, config: { synQueueMax: 1, ecn: false } });
  const l = s.stack.listen(null, s.port, 8);
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 40001 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  s.inject({ flags: "S", seq: 7000, mss: 1460, ws: 2, sackOk: true, ts: [55, 0], srcPort: 40002 });
  const ck = s.expect({ flags: "S.", ack: 7001, ws: 3, sackOk: true });
  assert.notEqual(ck.seq, ISS, "the cookie is not the normal ISS");
  assert.equal(s.stack.connectionCount, 1, "no state kept for the cookie SYN");
  assert.equal(s.stack.counters.cookiesSent, 1);
  // A forged ACK fails the check and is reset.
  s.inject({ flags: ".", seq: 7001, ack: ck.seq + 2, ts: [56, ck.ts![0]], srcPort: 40002 });
  s.expect({ flags: "R", seq: ck.seq + 2 });
  s.inject({ flags: ".", seq: 7001, ack: ck.seq + 1, ts: [56, ck.ts![0]], srcPort: 40002 });
  s.expectNone();
  const c = s.stack.accept(l);
  assert.ok(c > 0);
  const info = s.stack.info(c);
  assert.equal(info.state, "ESTABLISHED");
  assert.equal(info.options.peerWscale, 2, "window scale recovered from the echoed TSval");
  assert.equal(info.options.sack, true);
  assert.equal(s.stack.counters.cookiesAccepted, 1);
  s.stack.send(c, new Uint8Array(10), s.now);
  s.expect({ flags: "P.", seq: ck.seq + 1, ack: 7001, dstPort: 40002 });
  // The window offered in the cookie SYN-ACK is open: data is accepted at once.
  s.inject({
    flags: "P.",
    seq: 7001,
    ack: ck.seq + 11,
    ts: [57, ck.ts![0]],
    data: 100,
    srcPort: 40002,
  });
  s.expect({ flags: ".", ack: 7101, dstPort: 40002 });
  assert.equal(s.stack.recv(c, new Uint8Array(200), s.now), 100);
});

Deno.test("sequence numbers wrap around 2^32 on both sides", () => {
  const iss = 0xffff_fff0;
  const s = new TcpScript({ iss, config: plain() });
  const l = s.stack.listen(null, s.port, 4);
  const peer = 0xffff_ff00;
  s.inject({ flags: "S", seq: peer, mss: 1460 });
  s.expect({ flags: "S.", seq: iss, ack: peer + 1 });
  s.inject({ flags: ".", seq: peer + 1, ack: iss + 1 });
  const c = s.stack.accept(l);
  s.inject({ flags: "P.", seq: peer + 1, ack: iss + 1, data: 1000 });
  s.expect({ flags: ".", ack: (peer + 1001) >>> 0 });
  s.stack.setOption(c, "noDelay", true, s.now);
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expect({ flags: "P.", seq: iss + 1, data: 100 });
  s.inject({ flags: ".", seq: (peer + 1001) >>> 0, ack: (iss + 101) >>> 0 });
  assert.equal(s.stack.tcbOf(c)!.sndUna, (iss + 101) >>> 0);
  s.stack.send(c, new Uint8Array(10), s.now);
  s.expect({ flags: "P.", seq: (iss + 101) >>> 0, data: 10 });
  assert.equal(s.stack.recv(c, new Uint8Array(2000), s.now), 1000);
  s.assertHealthy();
});

Deno.test("data for a socket after close/abort gets RST from the closed port", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.abort(c, s.now);
  s.expect({ flags: "R", seq: ISS + 1 });
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10 });
  s.expect({ flags: "R", seq: ISS + 1 });
});

Deno.test("TIME-WAIT is reopened by a SYN with a newer timestamp (RFC 6191) and not by an old one", () => {
  const s = new TcpScript({ iss: ISS, config: { ecn: false, msl: 30 * SECOND } });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1460, ts: [10, 0] });
  const sa = s.take();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, ts: [11, sa.ts![0]] });
  const c = s.stack.accept(l);
  s.stack.close(c, s.now);
  s.take(); // FIN
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2, ts: [12, sa.ts![0]] });
  s.take(); // ACK
  assert.equal(s.stack.tcbOf(c)?.stateName ?? "TIME-WAIT", "TIME-WAIT");
  s.wait(1000);
  // Old TSval: the SYN is treated as a segment of the old connection (challenge ACK).
  s.inject({ flags: "S", seq: PEER + 5000, mss: 1460, ts: [5, 0] });
  s.expect({ flags: "." });
  s.inject({ flags: "S", seq: PEER + 5000, mss: 1460, ts: [5000, 0] });
  const sa2 = s.expect({ flags: "S.", ack: PEER + 5001 });
  assert.ok(sa2.seq !== ISS || true);
  assert.equal(s.stack.connectionCount, 1);
});

Deno.test("ECN: CE on data makes every ACK carry ECE until the peer sends CWR; data is ECT(0)", () => {
  const s = new TcpScript({ iss: ISS, config: { timestamps: false, ecn: true } });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "SEW", seq: PEER, mss: 1460 });
  s.expect({ flags: "SE.", seq: ISS });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 });
  const c = s.stack.accept(l);
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10, ecn: 3 });
  s.expect({ flags: "E.", ack: PEER + 11 });
  s.stack.setOption(c, "noDelay", true, s.now);
  s.stack.send(c, new Uint8Array(10), s.now);
  s.expect({ flags: "PE.", seq: ISS + 1, ecn: 2 });
  s.inject({ flags: "PW.", seq: PEER + 11, ack: ISS + 11, data: 10, ecn: 2 });
  s.wait(100);
  const a = s.take();
  assert.equal(a.flags, ".", "CWR ended the echo");
});

Deno.test("recv() returns WOULD_BLOCK without data and the ready list reports READABLE once", () => {
  const s = script();
  const c = acceptOne(s);
  const buf = new Uint8Array(100);
  assert.equal(s.stack.recv(c, buf, s.now), WOULD_BLOCK);
  const seen: [number, number][] = [];
  s.stack.drainReady((id, ev) => seen.push([id, ev]));
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 20 });
  seen.length = 0;
  s.stack.drainReady((id, ev) => seen.push([id, ev]));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]![0], c);
  assert.ok((seen[0]![1] & 1) !== 0, "READABLE");
  assert.equal(s.stack.drainReady(() => {}), 0, "drained");
});

Deno.test("listen() on a port in use throws AddressInUse with advice", () => {
  const s = script();
  s.stack.listen(null, 80, 4);
  assert.throws(() => s.stack.listen(IpAddress.parse("198.18.0.1"), 80, 4), /already in use/);
});

Deno.test("client: full-sized segments up to the initial window, ACKs free the send buffer", () => {
  const s = script();
  const c = connectOne(s);
  const tcb = s.stack.tcbOf(c)!;
  assert.equal(s.stack.send(c, new Uint8Array(20_000), s.now), 20_000);
  for (let i = 0; i < 10; i++) s.expect({ flags: ".", seq: ISS + 1 + i * 1460, data: 1460 });
  s.expectNone(); // initial window of 10 segments (RFC 6928)
  fromServer(s, { flags: ".", seq: PEER + 1, ack: ISS + 1 + 2920 });
  assert.equal(tcb.sndUna, ISS + 1 + 2920);
  assert.equal(tcb.sndRing.length, 20_000 - 2920, "acknowledged bytes left the send ring");
  assert.ok(s.pending().length >= 2, "the ACK clocked out more segments");
  s.assertHealthy();
});

Deno.test("connect() to a silent peer retransmits the SYN with backoff, then fails with TimedOut", () => {
  const s = script({ synRetries: 2 });
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  s.expect({ flags: "S", seq: ISS });
  s.wait(60_000);
  const r1 = s.expect({ flags: "S", seq: ISS });
  const r2 = s.expect({ flags: "S", seq: ISS });
  s.expectNone();
  assert.equal(r1.at, 1 * SECOND, "first retransmission after the initial RTO of 1 s");
  assert.equal(r2.at, 3 * SECOND, "then the RTO doubles");
  assert.equal(s.stack.state(c), "CLOSED");
  assert.ok(s.stack.error(c) instanceof TimedOut);
  assert.match(s.stack.error(c)!.message, /check reachability/);
});

Deno.test("SYN-ACK is retransmitted on timeout and a silent half-open connection is dropped", () => {
  const s = script({ synAckRetries: 1 });
  s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1460 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  s.wait(30_000);
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1 });
  s.expectNone();
  assert.equal(s.stack.connectionCount, 0, "given up silently (back to LISTEN)");
});

Deno.test("unacknowledged data is retransmitted with backoff until maxRetries, then TimedOut", () => {
  const s = script({ maxRetries: 3 });
  const c = acceptOne(s);
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expect({ flags: "P.", seq: ISS + 1, data: 100 });
  s.wait(120_000);
  const retx = s.pending();
  assert.ok(retx.length >= 3, `retransmissions: ${retx.length}`);
  for (const r of retx) assert.equal(r.seq, ISS + 1);
  for (let i = 2; i < retx.length; i++) {
    const g1 = retx[i - 1]!.at - retx[i - 2]!.at;
    const g2 = retx[i]!.at - retx[i - 1]!.at;
    assert.ok(g2 >= 2 * g1 - MILLISECOND, `backoff ${g1} -> ${g2}`);
  }
  assert.equal(s.stack.state(c), "CLOSED");
  assert.ok(s.stack.error(c) instanceof TimedOut);
});

Deno.test("IPv6: passive open and data over fd00:: addresses, MSS from the IPv6 MTU", () => {
  const s = new TcpScript({
    iss: ISS,
    config: plain(),
    local: IpAddress.parse("fd00::1"),
    remote: IpAddress.parse("fd00::2"),
  });
  const l = s.stack.listen(IpAddress.parse("fd00::1"), s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1440 });
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1, mss: 1440 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 });
  const c = s.stack.accept(l);
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10 });
  s.expect({ flags: ".", ack: PEER + 11 });
  assert.equal(s.stack.remoteAddress(c).address.toString(), "fd00::2");
  assert.equal(s.stack.info(c).mss, 1440);
});

Deno.test("MSS is clamped to the route MTU (RFC 9293 3.7.1)", () => {
  const s = script();
  s.ip.mtu = 1280;
  s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 8960 });
  s.expect({ flags: "S.", mss: 1240 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 });
  const c = s.stack.accept(1);
  s.stack.send(c, new Uint8Array(3000), s.now);
  s.expect({ flags: ".", data: 1240 });
});

Deno.test("a full accept queue drops new SYNs; accept() frees room", () => {
  const s = script();
  const l = s.stack.listen(null, s.port, 1);
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 50001 });
  s.take();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 50001 });
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 50002 });
  s.expectNone();
  assert.equal(s.stack.counters.get("accept-queue-full"), 1);
  assert.ok(s.stack.accept(l) > 0);
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 50002 });
  s.expect({ flags: "S.", dstPort: 50002 });
});

Deno.test("DCTCP-style receiver echoes CE exactly, flushing the delayed ACK on each CE change", () => {
  class AccurateEceCc extends RenoCc {
    override readonly name: string = "test-accurate-ece";
    override readonly wantsAccurateEce: boolean = true;
  }
  registerCc("test-accurate-ece", () => new AccurateEceCc());
  const s = new TcpScript({
    iss: ISS,
    config: {
      ...plain({ quickAckSegments: 0 }),
      ecn: true,
      socket: {
        ...defaultSocketOptions(),
        receiveBufferSize: 65535,
        congestionControl: "test-accurate-ece",
      },
    },
  });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "SEW", seq: PEER, mss: 1460 });
  s.expect({ flags: "SE." });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 });
  s.stack.accept(l);
  let seq = PEER + 1;
  const seg = (ecn: number): void => {
    s.inject({ flags: ".", seq, ack: ISS + 1, data: 100, ecn });
    seq += 100;
  };
  seg(2);
  s.expectNone();
  seg(3); // CE starts: ACK the earlier data with ECE=0 at once, then this one with ECE=1
  s.expect({ flags: ".", ack: seq - 100 });
  s.expect({ flags: "E.", ack: seq });
  seg(3);
  s.expectNone(); // no change: ordinary delayed ACK
  seg(2); // CE ends: flush with ECE=1, then ECE=0
  s.expect({ flags: "E.", ack: seq - 100 });
  s.expect({ flags: ".", ack: seq });
});

Deno.test("receiver SWS avoidance: a closed window reopens only once the reader frees a real amount", () => {
  const s = new TcpScript({
    iss: ISS,
    config: plain({ quickAckSegments: 100 }),
  });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1000 });
  s.take();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 });
  const c = s.stack.accept(l);
  // Fill the 65535-byte buffer exactly.
  let seq = PEER + 1;
  while (seq < PEER + 1 + 65535) {
    const n = Math.min(1000, PEER + 1 + 65535 - seq);
    s.inject({ flags: ".", seq, ack: ISS + 1, data: n });
    seq += n;
  }
  const acks = s.pending();
  const final = acks[acks.length - 1]!;
  assert.equal(final.ack, seq);
  assert.equal(final.win, 0, "buffer full: zero window");
  while (s.pending().length > 0) s.take();
  // Reading 500 bytes (< MSS) must not announce a tiny window.
  s.stack.recv(c, new Uint8Array(500), s.now);
  s.expectNone();
  // Reading past one MSS announces the window at once.
  s.stack.recv(c, new Uint8Array(1000), s.now);
  const upd = s.expect({ flags: ".", ack: seq });
  assert.equal(upd.win, 1500);
});

Deno.test("garbage aimed at one connection never disturbs another (seeded fuzz)", () => {
  const s = script();
  const l = s.stack.listen(null, s.port, 8);
  // Victim: srcPort 40000. Bystander: srcPort 40001.
  for (const p of [40000, 40001]) {
    s.inject({ flags: "S", seq: PEER, mss: 1460, sackOk: true, srcPort: p });
    s.take();
    s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: p });
  }
  const victim = s.stack.accept(l);
  const bystander = s.stack.accept(l);
  let x = 12345;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  const flagSets = ["S", "SF", "SR", "R", "R.", "F", ".", "P.", "F.", "SFRP.", "", "U.", "EW."];
  for (let i = 0; i < 3000; i++) {
    const seqBase = [PEER + 1, PEER + 1 + rnd(70000), rnd(2 ** 32), PEER - rnd(1000)][rnd(4)]!;
    const ackBase = [ISS + 1, ISS + rnd(3), rnd(2 ** 32), ISS - rnd(100000)][rnd(4)]!;
    s.inject({
      flags: flagSets[rnd(flagSets.length)]!,
      seq: seqBase,
      ack: ackBase,
      win: rnd(65536),
      data: rnd(3) === 0 ? rnd(1500) : 0,
      ...(rnd(5) === 0 ? { sack: [[rnd(2 ** 32), rnd(2 ** 32)]] as [number, number][] } : {}),
      ...(rnd(7) === 0 ? { ts: [rnd(2 ** 32), rnd(2 ** 32)] as [number, number] } : {}),
      srcPort: 40000,
    });
    if (i % 100 === 0) s.wait(rnd(2000));
  }
  s.assertHealthy();
  assert.ok(s.stack.counters.totalDrops() > 0);
  void victim;
  // The bystander still moves data both ways, exactly.
  while (s.pending().length > 0) s.take();
  assert.equal(s.stack.state(bystander), "ESTABLISHED");
  s.stack.setOption(bystander, "noDelay", true, s.now);
  s.stack.send(bystander, new Uint8Array([1, 2, 3]), s.now);
  const out = s.pending().filter((c) => c.dstPort === 40001);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.data, new Uint8Array([1, 2, 3]));
  assert.equal(out[0]!.seq, ISS + 1);
  s.inject({
    flags: "P.",
    seq: PEER + 1,
    ack: ISS + 4,
    data: new Uint8Array([9, 8]),
    srcPort: 40001,
  });
  const buf = new Uint8Array(8);
  assert.equal(s.stack.recv(bystander, buf, s.now), 2);
  assert.deepEqual(buf.subarray(0, 2), new Uint8Array([9, 8]));
});

Deno.test("pacing: with the engine pacing, a window's worth of data leaves spaced out, not as one burst", () => {
  const s = script({ pacing: true });
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  s.expect({ flags: "S" });
  s.wait(10); // a 10 ms RTT for the pacer to work from
  s.inject({ flags: "S.", seq: PEER, ack: ISS + 1, mss: 1460, srcPort: 80, dstPort: 40000 });
  s.expect({ flags: "." });
  s.stack.send(c, new Uint8Array(14_600), s.now);
  const t0 = s.now;
  s.wait(50);
  const segs = s.pending();
  assert.equal(segs.reduce((n, x) => n + x.data.length, 0), 14_600, "everything left in time");
  const atStart = segs.filter((x) => x.at === t0).length;
  assert.ok(atStart <= 3, `${atStart} segments left at once`);
  assert.ok(segs[segs.length - 1]!.at > t0, "the rest was spread over time");
  const info = s.stack.info(c);
  assert.ok(info.pacingRate > 0, "TCP_INFO reports the pacing rate");
});

Deno.test("close paths from the handshake: close in SYN-SENT deletes, shutdown in SYN-RECEIVED sends FIN once established", () => {
  const s = script();
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  s.expect({ flags: "S" });
  s.stack.close(c, s.now);
  s.expectNone();
  assert.equal(s.stack.connectionCount, 0);
  // Simultaneous open, then shutdown in SYN-RECEIVED.
  const c2 = s.stack.connect(s.remote, 80, s.now, { localPort: 40001 });
  s.expect({ flags: "S" });
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 80, dstPort: 40001 });
  s.expect({ flags: "S.", ack: PEER + 1 });
  s.stack.shutdown(c2, s.now);
  s.expectNone();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 80, dstPort: 40001 });
  s.expect({ flags: "F.", seq: ISS + 1, ack: PEER + 1 });
  assert.equal(s.stack.state(c2), "FIN-WAIT-1");
});

Deno.test("RST in LAST-ACK, CLOSING and TIME-WAIT closes without an error; active SYN-RECEIVED RST refuses", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 1 });
  s.take();
  s.stack.shutdown(c, s.now);
  s.take();
  assert.equal(s.stack.state(c), "LAST-ACK");
  s.inject({ flags: "R", seq: PEER + 2 });
  assert.equal(s.stack.state(c), "CLOSED");
  assert.equal(s.stack.error(c), null);

  const t = script();
  const d = acceptOne(t);
  t.stack.shutdown(d, t.now);
  t.take();
  t.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2 });
  t.take();
  assert.equal(t.stack.state(d), "TIME-WAIT");
  t.inject({ flags: "R", seq: PEER + 2 });
  assert.equal(t.stack.state(d), "CLOSED");
  assert.equal(t.stack.connectionCount, 0);

  const u = script();
  const e = u.stack.connect(u.remote, 80, 0, { localPort: 40000 });
  u.take();
  u.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 80, dstPort: 40000 });
  u.take();
  u.inject({ flags: "R", seq: PEER + 1, srcPort: 80, dstPort: 40000 });
  assert.ok(u.stack.error(e) instanceof ConnectionRefused);
});

Deno.test("when the IP layer has no buffer, the segment is retried shortly instead of being lost", () => {
  const s = script();
  const c = acceptOne(s);
  s.ip.refuse = true;
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expectNone();
  assert.ok(s.stack.counters.outputFailures > 0);
  s.ip.refuse = false;
  s.wait(1);
  s.expect({ flags: "P.", seq: ISS + 1, data: 100 });
});

Deno.test("LINGER: 0 aborts on close; > 0 aborts an orphan whose FIN is still unacknowledged when it runs out", () => {
  const s = script();
  const c = acceptOne(s);
  s.stack.setOption(c, "linger", 0, s.now);
  s.stack.close(c, s.now);
  s.expect({ flags: "R", seq: ISS + 1 });

  const t = script();
  const d = acceptOne(t);
  t.stack.setOption(d, "linger", 2, t.now);
  t.stack.send(d, new Uint8Array(100), t.now);
  t.stack.close(d, t.now);
  t.expect({ flags: "P.", seq: ISS + 1, data: 100 });
  t.expect({ flags: "F.", seq: ISS + 101 });
  t.wait(2000);
  const rst = t.pending().find((x) => x.flags === "R");
  assert.ok(rst !== undefined, "RST after the linger time");
  assert.equal(t.stack.connectionCount, 0);
});

Deno.test("REUSEADDR lets connect() take over a TIME-WAIT 4-tuple with an ISN above the old one", () => {
  const s = script({ msl: 30 * SECOND });
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  s.take();
  s.inject({ flags: "S.", seq: PEER, ack: ISS + 1, mss: 1460, srcPort: 80, dstPort: 40000 });
  s.take();
  s.stack.close(c, s.now);
  s.take();
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2, srcPort: 80, dstPort: 40000 });
  s.take();
  assert.equal(s.stack.connectionCount, 1, "TIME-WAIT holds the 4-tuple");
  assert.throws(() => s.stack.connect(s.remote, 80, s.now, { localPort: 40000 }), /in use/);
  s.stack.connect(s.remote, 80, s.now, { localPort: 40000, reuseAddress: true });
  const syn = s.expect({ flags: "S" });
  assert.ok(syn.seq - (ISS + 2) >= 65536, `new ISS ${syn.seq} is above the old SND.NXT`);
});

Deno.test("an unknown congestion control name is refused with advice; a registered one is used", () => {
  const s = script();
  assert.throws(
    () => s.stack.connect(s.remote, 80, 0, { congestionControl: "nope" }),
    /unknown congestion control "nope".*registerCc/,
  );
  const c = s.stack.connect(s.remote, 80, 0, { congestionControl: "reno" });
  assert.equal(s.stack.tcbOf(c)!.rec.cc.name, "reno");
  assert.throws(
    () => s.stack.setOption(c, "congestionControl", "nope", 0),
    /unknown congestion control "nope"/,
  );
});

Deno.test("TCP_CONGESTION on a live connection swaps the algorithm from the current window and releases the old one", () => {
  const released: string[] = [];
  class Tagged extends RenoCc {
    constructor(override readonly name: string) {
      super();
    }
    release(): void {
      released.push(this.name);
    }
  }
  registerCc("test-swap-a", () => new Tagged("test-swap-a"));
  registerCc("test-swap-b", () => new Tagged("test-swap-b"));
  const s = script();
  const c = s.stack.connect(s.remote, 80, 0, { congestionControl: "test-swap-a" });
  s.expect({ flags: "S" });
  const tcb = s.stack.tcbOf(c)!;
  const before = tcb.rec.cc.cwnd;
  s.stack.setOption(c, "congestionControl", "test-swap-b", 0);
  assert.equal(tcb.rec.cc.name, "test-swap-b");
  assert.equal(tcb.rec.cc.cwnd, before, "continues from the old window (initFromState)");
  assert.deepEqual(released, ["test-swap-a"]);
  assert.equal(s.stack.getOptions(c).congestionControl, "test-swap-b");
  s.stack.abort(c, 0);
  assert.deepEqual(released, ["test-swap-a", "test-swap-b"], "freeing the TCB releases the CC");
});

Deno.test("ICMP: packet-too-big shrinks the MSS; port unreachable refuses a connect in SYN-SENT", () => {
  const s = script();
  const c = connectOne(s);
  const icmp = (kind: IcmpErrorInfo["kind"], mtu: number, dport: number): IcmpErrorInfo => ({
    version: 4,
    kind,
    type: 3,
    code: 4,
    mtu,
    reporter: s.remote.bytes,
    src: s.local.bytes,
    dst: s.remote.bytes,
    protocol: 6,
    srcPort: 40000,
    dstPort: dport,
    quoted: new Uint8Array(8),
  });
  s.stack.icmpError(icmp("frag-needed", 1000, s.port), s.now);
  assert.equal(s.stack.info(c).mss, 1000 - 40, "IP and TCP headers (no timestamps here)");
  s.stack.icmpError(icmp("port-unreachable", 0, s.port), s.now);
  assert.equal(s.stack.state(c), "ESTABLISHED", "a soft error once established (RFC 5461)");
  const d = s.stack.connect(s.remote, 81, s.now, { localPort: 40000 });
  s.stack.icmpError(icmp("port-unreachable", 0, 81), s.now);
  assert.equal(s.stack.state(d), "CLOSED");
  assert.ok(s.stack.error(d) instanceof ConnectionRefused);
});

Deno.test("WRITABLE drops when the send buffer fills and returns only once a real amount is free", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 0 }); // peer window closed
  assert.ok(s.stack.events(c) & WRITABLE);
  assert.equal(s.stack.send(c, new Uint8Array(70_000), s.now), 65535);
  assert.equal(s.stack.events(c) & WRITABLE, 0);
  while (s.pending().length > 0) s.take();
  // The peer acknowledges nothing but opens its window; we send, and ACKs free little by little.
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 65535 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 + 1460, win: 65535 });
  assert.equal(s.stack.events(c) & WRITABLE, 0, "1460 bytes free is not worth a wakeup");
  const tcb = s.stack.tcbOf(c)!;
  s.inject({ flags: ".", seq: PEER + 1, ack: tcb.sndNxt, win: 65535 });
  s.inject({ flags: ".", seq: PEER + 1, ack: tcb.sndNxt, win: 65535 });
  assert.ok(tcb.sndRing.free * 2 >= tcb.sndRing.length, "half of the queued amount is free");
  assert.ok(s.stack.events(c) & WRITABLE);
  let woke = 0;
  s.stack.drainReady((id, ev) => {
    if (id === c && (ev & WRITABLE)) woke++;
  });
  assert.equal(woke, 1);
});

Deno.test("SACK option carries 4 blocks without timestamps and 3 with them (40-byte option space)", () => {
  for (const ts of [false, true]) {
    const s = new TcpScript({ iss: ISS, config: plain({ timestamps: ts, quickAckSegments: 0 }) });
    const l = s.stack.listen(null, s.port, 4);
    s.inject({ flags: "S", seq: PEER, mss: 1460, sackOk: true, ...(ts ? { ts: [1, 0] } : {}) });
    const sa = s.take();
    const tsOpt = (v: number): { ts?: [number, number] } => ts ? { ts: [v, sa.ts![0]] } : {};
    s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, ...tsOpt(2) });
    s.stack.accept(l);
    for (let i = 1; i <= 5; i++) {
      s.inject({ flags: ".", seq: PEER + 1 + i * 1000, ack: ISS + 1, data: 100, ...tsOpt(2 + i) });
    }
    const last = s.pending().at(-1)!;
    assert.equal(last.sack.length, ts ? 3 : 4, `timestamps ${ts}`);
    assert.deepEqual(last.sack[0], [PEER + 1 + 5000, PEER + 1 + 5100], "most recent first");
  }
});

Deno.test("random raw segments (valid checksums) never raise an internal error in any state", () => {
  const s = script({ synQueueMax: 4 });
  s.stack.listen(null, s.port, 8);
  const c = s.stack.connect(s.remote, 80, 0, { localPort: 40000 });
  void c;
  let x = 99;
  const rnd = (n: number): number => {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x297a2d39) >>> 0;
    return x % n;
  };
  const seg = new Uint8Array(120);
  for (let i = 0; i < 20_000; i++) {
    const len = 20 + rnd(100);
    for (let k = 0; k < len; k++) seg[k] = rnd(256);
    // Aim most segments at live ports so they reach listeners and connections.
    const port = [s.port, 40000, rnd(65536)][rnd(3)]!;
    seg[2] = port >> 8;
    seg[3] = port & 0xff;
    if (rnd(2) === 0) {
      seg[0] = 80 >> 8;
      seg[1] = 80 & 0xff;
    }
    seg[12] = (5 + rnd(11)) << 4 | (seg[12]! & 0x0f);
    s.stack.receive(
      {
        version: 4,
        src: s.remote.bytes,
        dst: s.local.bytes,
        ecn: rnd(4),
        ttl: 64,
        packet: seg,
        checksumVerified: true,
      },
      seg.subarray(0, len),
      s.now,
    );
    if (i % 500 === 0) s.wait(rnd(3000));
  }
  s.assertHealthy();
  assert.ok(s.stack.counters.segmentsIn === 20_000);
  assert.ok(s.stack.counters.totalDrops() > 1000);
});

Deno.test("ACKs answering stale pure ACKs are limited to one per 500 ms per connection", () => {
  const s = script();
  acceptOne(s);
  for (let i = 0; i < 20; i++) s.inject({ flags: ".", seq: PEER + 1 + 200_000, ack: ISS + 1 });
  assert.equal(s.pending().length, 1);
  s.take();
  s.wait(500);
  s.inject({ flags: ".", seq: PEER + 1 + 200_000, ack: ISS + 1 });
  s.expect({ flags: ".", ack: PEER + 1 });
  // Data outside the window is always answered (the peer may need the ACK to recover).
  s.inject({ flags: ".", seq: PEER + 1 - 100, ack: ISS + 1, data: 50 });
  s.expect({ flags: ".", ack: PEER + 1 });
  assert.equal(s.stack.counters.get("oow-ack-rate-limited"), 19);
});

Deno.test("reopening a TIME-WAIT 4-tuple releases the old orphaned socket", () => {
  const s = new TcpScript({ iss: ISS, config: { ecn: false } });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1460, ts: [10, 0] });
  const sa = s.take();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, ts: [11, sa.ts![0]] });
  const c = s.stack.accept(l);
  s.stack.close(c, s.now);
  s.take();
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2, ts: [12, sa.ts![0]] });
  s.take();
  const old = s.stack.tcbOf(c)!;
  assert.equal(old.stateName, "TIME-WAIT");
  s.inject({ flags: "S", seq: PEER + 9000, mss: 1460, ts: [5000, 0] });
  s.expect({ flags: "S.", ack: PEER + 9001 });
  assert.equal(old.stateName, "CLOSED");
  assert.equal(s.stack.tcbOf(c), null, "the closed socket record is gone");
  assert.equal(s.stack.connectionCount, 1, "only the new incarnation");
});

Deno.test("sender SWS avoidance: a small offered window is not filled at once, only after the override timeout", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, win: 500 });
  s.stack.send(c, new Uint8Array(3000), s.now);
  s.expectNone(); // 500 bytes < MSS and < half the largest window ever offered
  s.advanceTo(s.stack.pollAt());
  const seg = s.expect({ flags: ".", seq: ISS + 1, data: 500 });
  assert.ok(seg.at >= 200 * MILLISECOND, `override after ${seg.at / MILLISECOND} ms`);
  // A window opening to a full MSS is used at once.
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 501, win: 1460 });
  s.expect({ flags: ".", seq: ISS + 501, data: 1460 });
});

// ---------------------------------------------------------------------------------------------
// Listener overload: accept-queue overflow, SYN cookies, stray ACKs (burst findings)

/**
 * Backlog 2 (so the SYN queue holds 2): connections from 50001 and 50003 fill the accept
 * queue while the one from 50002 is still in SYN-RECEIVED.
 */
function fullAcceptQueue(extra: Partial<TcpConfig> = {}): { s: TcpScript; l: number } {
  const s = script(extra);
  const l = s.stack.listen(null, s.port, 2);
  for (const p of [50001, 50002]) {
    s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: p });
    s.expect({ flags: "S.", seq: ISS, dstPort: p });
  }
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 50001 });
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 50003 });
  s.expect({ flags: "S.", seq: ISS, dstPort: 50003 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 50003 });
  s.expectNone();
  return { s, l };
}

Deno.test("accept queue full: the final ACK is dropped silently, the SYN-ACK retransmission re-elicits it and the connection completes once accept() made room", () => {
  const { s, l } = fullAcceptQueue();
  // The client believes it is established and sends its ACK and data: no RST.
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 50002 });
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10, srcPort: 50002 });
  s.expectNone();
  assert.equal(s.stack.counters.get("accept-queue-full"), 2);
  assert.equal(s.stack.counters.resetsSent, 0);
  assert.equal(s.stack.connectionCount, 3, "the half-open connection is kept in SYN-RECEIVED");
  assert.ok(s.stack.accept(l) > 0);
  // The SYN-ACK timer (initial RTO 1 s) retransmits; the client's answer now completes it.
  s.wait(1000);
  s.expect({ flags: "S.", seq: ISS, ack: PEER + 1, dstPort: 50002 });
  s.inject({ flags: "P.", seq: PEER + 1, ack: ISS + 1, data: 10, srcPort: 50002 });
  s.expect({ flags: ".", ack: PEER + 11, dstPort: 50002 });
  assert.ok(s.stack.accept(l) > 0);
  const c = s.stack.accept(l);
  assert.ok(c > 0);
  assert.equal(s.stack.remoteAddress(c).port, 50002);
  assert.equal(s.stack.recv(c, new Uint8Array(64), s.now), 10);
  assert.equal(s.stack.counters.resetsSent, 0);
  s.assertHealthy();
});

Deno.test("accept queue full: an unacceptable ACK for a SYN-RECEIVED connection still gets its RST", () => {
  const { s } = fullAcceptQueue();
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 77, srcPort: 50002 });
  s.expect({ flags: "R", seq: ISS + 77, dstPort: 50002 });
  assert.equal(s.stack.counters.get("syn-received-bad-ack"), 1);
  assert.equal(s.stack.counters.get("accept-queue-full"), 0);
});

Deno.test("accept queue full: a half-open connection whose ACKs keep being dropped is given up silently after synAckRetries", () => {
  const { s } = fullAcceptQueue({ synAckRetries: 2 });
  for (let i = 0; i < 2; i++) {
    s.advanceTo(s.stack.pollAt());
    s.expect({ flags: "S.", dstPort: 50002 });
    s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, srcPort: 50002 });
  }
  s.advanceTo(s.stack.pollAt());
  s.expectNone();
  assert.equal(s.stack.connectionCount, 2, "only the queued connections are left");
  assert.equal(s.stack.counters.get("accept-queue-full"), 2);
  assert.equal(s.stack.counters.resetsSent, 0);
});

Deno.test("listener without recent cookies: a stray ACK gets RST <SEQ=SEG.ACK>, counted once as 'listen-ack' and never as 'bad-cookie'", () => {
  const s = script();
  s.stack.listen(null, s.port, 8);
  s.inject({ flags: ".", seq: 10, ack: 999 });
  s.expect({ flags: "R", seq: 999 });
  assert.equal(s.stack.counters.get("listen-ack"), 1);
  assert.equal(s.stack.counters.get("bad-cookie"), 0);
  assert.equal(s.stack.counters.totalDrops(), 1);
});

Deno.test("a peer's ACK after our LAST-ACK closed (its TIME-WAIT answering a FIN retransmission) gets RST from the listener as 'listen-ack' (RFC 9293 3.10.7.2)", () => {
  const s = script();
  const c = acceptOne(s);
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 1 });
  s.expect({ flags: ".", ack: PEER + 2 });
  s.stack.close(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1 });
  s.inject({ flags: ".", seq: PEER + 2, ack: ISS + 2 });
  assert.equal(s.stack.connectionCount, 0);
  s.inject({ flags: ".", seq: PEER + 2, ack: ISS + 2 }); // the duplicate, from TIME-WAIT
  s.expect({ flags: "R", seq: ISS + 2 });
  assert.deepEqual(s.stack.counters.snapshot(), { "listen-ack": 1 });
});

Deno.test("TIME-WAIT is looked up before the listener: an old ACK for it is answered by the connection, not reset", () => {
  const s = script({ msl: 10 * SECOND });
  const c = acceptOne(s);
  s.stack.close(c, s.now);
  s.expect({ flags: "F.", seq: ISS + 1 });
  s.inject({ flags: "F.", seq: PEER + 1, ack: ISS + 2 });
  s.expect({ flags: ".", seq: ISS + 2, ack: PEER + 2 });
  s.wait(600);
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1 }); // old: before the FIN
  s.expect({ flags: ".", seq: ISS + 2, ack: PEER + 2 });
  assert.equal(s.stack.counters.resetsSent, 0);
  assert.equal(s.stack.counters.get("listen-ack"), 0);
  assert.equal(s.stack.counters.get("out-of-window"), 1);
});

/** A listener whose SYN queue is 0 long: every SYN is answered with a cookie. */
function cookieScript(backlog = 8): { s: TcpScript; l: number } {
  const s = new TcpScript({ iss: ISS, config: { synQueueMax: 0, ecn: false, timestamps: false } });
  return { s, l: s.stack.listen(null, s.port, backlog) };
}

Deno.test("SYN cookies: a forged ACK gets RST and is counted once, as 'bad-cookie'", () => {
  const { s } = cookieScript();
  s.inject({ flags: "S", seq: 7000, mss: 1460, srcPort: 40002 });
  const ck = s.expect({ flags: "S.", ack: 7001 });
  s.inject({ flags: ".", seq: 7001, ack: ck.seq + 2, srcPort: 40002 });
  s.expect({ flags: "R", seq: ck.seq + 2 });
  assert.deepEqual(s.stack.counters.snapshot(), { "bad-cookie": 1 });
});

Deno.test("SYN cookies are valid for the current and the previous period only", () => {
  const { s, l } = cookieScript();
  s.advanceTo(COOKIE_PERIOD - SECOND); // late in period 0
  s.inject({ flags: "S", seq: 7000, mss: 1460, srcPort: 40002 });
  const a = s.expect({ flags: "S.", ack: 7001 });
  s.inject({ flags: "S", seq: 9000, mss: 1460, srcPort: 40003 });
  const b = s.expect({ flags: "S.", ack: 9001 });
  s.advanceTo(COOKIE_PERIOD + SECOND); // period 1: the cookie of period 0 still holds
  s.inject({ flags: ".", seq: 7001, ack: a.seq + 1, srcPort: 40002 });
  s.expectNone();
  assert.ok(s.stack.accept(l) > 0);
  assert.equal(s.stack.counters.cookiesAccepted, 1);
  // Period 2: expired. (A cookie went out within two periods, so it is checked, and fails.)
  s.inject({ flags: "S", seq: 3000, mss: 1460, srcPort: 40004 });
  s.take(); // a fresh cookie keeps the listener in cookie mode
  s.advanceTo(2 * COOKIE_PERIOD + SECOND);
  s.inject({ flags: ".", seq: 9001, ack: b.seq + 1, srcPort: 40003 });
  s.expect({ flags: "R", seq: b.seq + 1 });
  assert.equal(s.stack.counters.get("bad-cookie"), 1);
  assert.equal(s.stack.counters.cookiesAccepted, 1);
});

Deno.test("SYN cookies with a full accept queue: a valid ACK is dropped (not reset), a later segment of the flight is dropped silently, the retransmission from ISN+1 completes", () => {
  const { s, l } = cookieScript(1);
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 40001 });
  const ck1 = s.expect({ flags: "S.", ack: PEER + 1 });
  s.inject({ flags: ".", seq: PEER + 1, ack: ck1.seq + 1, srcPort: 40001 }); // queue now full
  s.inject({ flags: "S", seq: 7000, mss: 1460, srcPort: 40002 });
  // A SYN while the queue is full is dropped (the client retries), so send it with room:
  s.expectNone();
  assert.equal(s.stack.counters.get("accept-queue-full"), 1);
  const first = s.stack.accept(l);
  assert.ok(first > 0);
  s.inject({ flags: "S", seq: 7000, mss: 1460, srcPort: 40002 });
  const ck = s.expect({ flags: "S.", ack: 7001 });
  s.inject({ flags: "S", seq: 8000, mss: 1460, srcPort: 40003 });
  const ck3 = s.expect({ flags: "S.", ack: 8001 });
  s.inject({ flags: ".", seq: 8001, ack: ck3.seq + 1, srcPort: 40003 }); // fills the queue
  // The client's handshake ACK and first segment: valid cookie, no room -> dropped.
  s.inject({ flags: ".", seq: 7001, ack: ck.seq + 1, srcPort: 40002 });
  s.inject({ flags: "P.", seq: 7001, ack: ck.seq + 1, data: 100, srcPort: 40002 });
  // Its second segment cannot carry a checkable cookie but provably follows one: dropped.
  s.inject({ flags: "P.", seq: 7101, ack: ck.seq + 1, data: 100, srcPort: 40002 });
  s.expectNone();
  assert.equal(s.stack.counters.resetsSent, 0);
  assert.equal(s.stack.counters.get("accept-queue-full"), 3);
  assert.equal(s.stack.counters.get("cookie-later-segment"), 1);
  assert.equal(s.stack.counters.get("bad-cookie"), 0);
  assert.ok(s.stack.accept(l) > 0);
  // The retransmission from SND.UNA completes the cookie handshake.
  s.inject({ flags: "P.", seq: 7001, ack: ck.seq + 1, data: 200, srcPort: 40002 });
  s.expect({ flags: ".", ack: 7201, dstPort: 40002 });
  const c = s.stack.accept(l);
  assert.ok(c > 0);
  assert.equal(s.stack.recv(c, new Uint8Array(512), s.now), 200);
  s.assertHealthy();
});

Deno.test("SYN cookies: a later segment of a cookie handshake whose first segments were lost (the client's tail-loss probe) is dropped as 'cookie-later-segment', not reset; the retransmission from ISN+1 completes with every byte", () => {
  const { s, l } = cookieScript();
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 40002 });
  const ck = s.expect({ flags: "S.", ack: PEER + 1 });
  // The handshake ACK and segments at ISN+1 and +1461 were lost; the probe (last segment,
  // with FIN) arrives at the listener first. It cannot carry a checkable cookie.
  s.wait(5);
  s.inject({ flags: "FP.", seq: PEER + 1 + 2920, ack: ck.seq + 1, data: 80, srcPort: 40002 });
  s.expectNone();
  assert.equal(s.stack.counters.resetsSent, 0);
  assert.deepEqual(s.stack.counters.snapshot(), { "cookie-later-segment": 1 });
  assert.equal(s.stack.connectionCount, 0, "still no state for it");
  // The client's RTO retransmits from SND.UNA = ISN+1: the cookie checks, the rest follows.
  s.wait(200);
  s.inject({ flags: "P.", seq: PEER + 1, ack: ck.seq + 1, data: 1460, srcPort: 40002 });
  s.expect({ flags: ".", ack: PEER + 1 + 1460, dstPort: 40002 });
  assert.equal(s.stack.counters.cookiesAccepted, 1);
  s.inject({ flags: "P.", seq: PEER + 1461, ack: ck.seq + 1, data: 1460, srcPort: 40002 });
  s.expect({ flags: ".", ack: PEER + 1 + 2920, dstPort: 40002 }); // every second segment
  s.inject({ flags: "FP.", seq: PEER + 2921, ack: ck.seq + 1, data: 80, srcPort: 40002 });
  s.expect({ flags: ".", ack: PEER + 1 + 3000 + 1, dstPort: 40002 });
  const c = s.stack.accept(l);
  assert.ok(c > 0);
  const buf = new Uint8Array(4096);
  assert.equal(s.stack.recv(c, buf, s.now), 3000);
  assert.equal(s.stack.recv(c, buf, s.now), 0, "then the FIN");
  assert.equal(s.stack.counters.resetsSent, 0);
  s.assertHealthy();
});

Deno.test("SYN cookies: an ACK that does not follow a cookie we issued still gets RST as 'bad-cookie' (ISN+1 with a wrong ACK, beyond the SYN-ACK's 64 KB window, another port)", () => {
  const { s } = cookieScript();
  s.inject({ flags: "S", seq: PEER, mss: 1460, srcPort: 40002 });
  const ck = s.expect({ flags: "S.", ack: PEER + 1 });
  s.inject({ flags: "P.", seq: PEER + 1, ack: ck.seq + 2, data: 100, srcPort: 40002 });
  s.expect({ flags: "R", seq: ck.seq + 2, dstPort: 40002 });
  // 65536 bytes past ISN+1 is the farthest a client can send before the server speaks.
  s.inject({ flags: "P.", seq: PEER + 1 + 65537, ack: ck.seq + 1, data: 100, srcPort: 40002 });
  s.expect({ flags: "R", seq: ck.seq + 1, dstPort: 40002 });
  s.inject({ flags: "P.", seq: PEER + 1 + 100, ack: ck.seq + 1, data: 100, srcPort: 40003 });
  s.expect({ flags: "R", seq: ck.seq + 1, dstPort: 40003 });
  assert.deepEqual(s.stack.counters.snapshot(), { "bad-cookie": 3 });
  assert.equal(s.stack.counters.resetsSent, 3);
  assert.equal(s.stack.connectionCount, 0);
});

Deno.test("SYN cookie connections start without an RTT sample (SRTT was seeded with 0)", () => {
  const { s, l } = cookieScript();
  s.inject({ flags: "S", seq: 7000, mss: 1460, srcPort: 40002 });
  const ck = s.expect({ flags: "S.", ack: 7001 });
  s.wait(30);
  s.inject({ flags: ".", seq: 7001, ack: ck.seq + 1, srcPort: 40002 });
  const c = s.stack.accept(l);
  assert.equal(s.stack.info(c).srtt, -1);
  // Without a sample the RTO stays at its initial 1 s (a 0 sample made it the 200 ms floor).
  assert.equal(s.stack.info(c).rto, SECOND);
  s.stack.send(c, new Uint8Array(100), s.now);
  s.expect({ flags: "P.", data: 100 });
  s.wait(900);
  s.expectNone();
  s.wait(200);
  s.expect({ flags: "P.", data: 100 });
  assert.equal(s.stack.counters.retransmits, 1);
});

Deno.test("RTT samples come from send times, not millisecond timestamps: a 0.3 ms path gets SRTT 0.3 ms and no tail-loss probe right behind a flight", () => {
  const s = new TcpScript({ iss: ISS, config: { ecn: false } });
  const l = s.stack.listen(null, s.port, 4);
  s.inject({ flags: "S", seq: PEER, mss: 1460, sackOk: true, ts: [10, 0] });
  const sa = s.expect({ flags: "S.", sackOk: true });
  s.advanceTo(300_000); // 0.3 ms: the same millisecond tick, a 0 ms timestamp RTT
  s.inject({ flags: ".", seq: PEER + 1, ack: ISS + 1, ts: [10, sa.ts![0]] });
  const c = s.stack.accept(l);
  assert.equal(s.stack.info(c).srtt, 300_000);
  s.stack.setOption(c, "noDelay", true, s.now);
  const sentAt = s.now;
  s.stack.send(c, new Uint8Array(3000), s.now);
  assert.equal(s.pending().length, 3);
  s.take();
  s.take();
  s.take();
  // With SRTT 0 the probe (PTO = 2*SRTT for a multi-segment flight) left at once.
  s.advanceTo(sentAt + 2 * 300_000 - 1);
  s.expectNone();
  s.advanceTo(sentAt + 300 * MILLISECOND);
  const probe = s.take();
  assert.ok(probe.at >= sentAt + 600_000, `probe after ${(probe.at - sentAt) / 1000} us`);
  s.assertHealthy();
});
