import assert from "node:assert/strict";
import { pseudoHeaderSumV4, transportChecksumOk, writeTransportChecksum } from "./checksum.ts";
import { TCP_ACK, TCP_SYN, TcpRepr, TcpView } from "./tcp.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

// A Linux SYN from tests/fixtures/tcp_options.pcap (IPv4 198.18.3.1 -> 198.18.3.2):
// MSS 100, SACK-permitted, timestamps, NOP, window scale 10; checksum 0x7241.
const SYN = hex(
  "c1ca138913c9757a00000000a002ffdc72410000020400640402080a0313e75c000000000103030a",
);
// An ACK from the same capture: NOP,NOP,TS then NOP,NOP,SACK with two blocks; checksum 0x1809.
const SACK_ACK = hex(
  "1389c1caeaaa4ea513c975d3d0100040180900000101080aac561d3c0313e75c0101051213c976db13c9773313c9762b13c97683",
);
const SRC = 0xc6120301, DST = 0xc6120302;

function header(dataOffsetWords: number, options: number[], payload = 0): Uint8Array {
  const b = new Uint8Array(Math.max(20 + options.length, dataOffsetWords * 4) + payload);
  b[12] = dataOffsetWords << 4;
  b[13] = TCP_ACK;
  b.set(options, 20);
  return b;
}

Deno.test("TcpRepr.parse() reads a Linux SYN with MSS, SACK-permitted, timestamps and window scale", () => {
  const t = new TcpRepr();
  assert.equal(t.parse(SYN), undefined);
  assert.equal(t.srcPort, 49610);
  assert.equal(t.dstPort, 5001);
  assert.equal(t.seq, 0x13c9757a);
  assert.equal(t.ack, 0);
  assert.equal(t.flags, TCP_SYN);
  assert.equal(t.window, 65500);
  assert.equal(t.mss, 100);
  assert.equal(t.sackPermitted, true);
  assert.equal(t.tsPresent, true);
  assert.equal(t.tsVal, 0x0313e75c);
  assert.equal(t.tsEcr, 0);
  assert.equal(t.windowScale, 10);
  assert.equal(t.sackCount, 0);
  assert.equal(t.payload.length, 0);
  assert.ok(transportChecksumOk(SYN, pseudoHeaderSumV4(SRC, DST, 6, SYN.length)));
});

Deno.test("TcpRepr.emit() re-creates the Linux SYN byte for byte, checksum included", () => {
  const t = new TcpRepr();
  t.parse(SYN);
  const out = new Uint8Array(SYN.length);
  assert.equal(t.emit(out), 40);
  writeTransportChecksum(out, 16, pseudoHeaderSumV4(SRC, DST, 6, out.length));
  assert.deepEqual(out, SYN);
});

Deno.test("TcpRepr parses and re-emits NOP,NOP,TS + NOP,NOP,SACK(2 blocks) like Linux", () => {
  const t = new TcpRepr();
  assert.equal(t.parse(SACK_ACK), undefined);
  assert.equal(t.flags, TCP_ACK);
  assert.equal(t.sackCount, 2);
  assert.deepEqual(Array.from(t.sackBlocks.subarray(0, 4)), [
    331970267,
    331970355,
    0x13c9762b,
    0x13c97683,
  ]);
  assert.equal(t.tsVal, 2891324732);
  assert.equal(t.tsEcr, 51636060);
  assert.equal(t.headerLength, 52);
  const out = new Uint8Array(SACK_ACK.length);
  t.emit(out);
  writeTransportChecksum(out, 16, pseudoHeaderSumV4(DST, SRC, 6, out.length));
  assert.deepEqual(out, SACK_ACK);
});

Deno.test("TcpRepr.emit() lays out a SYN without timestamps as MSS, NOP,NOP,SACK-perm, NOP,WS", () => {
  const t = new TcpRepr();
  t.flags = TCP_SYN;
  t.mss = 1460;
  t.sackPermitted = true;
  t.windowScale = 7;
  const out = new Uint8Array(60);
  const n = t.emit(out);
  assert.equal(n, 32);
  assert.deepEqual(Array.from(out.subarray(20, 32)), [2, 4, 5, 180, 1, 1, 4, 2, 1, 3, 3, 7]);
  const back = new TcpRepr();
  assert.equal(back.parse(out.subarray(0, n)), undefined);
  assert.equal(back.mss, 1460);
  assert.equal(back.sackPermitted, true);
  assert.equal(back.windowScale, 7);
  assert.equal(back.tsPresent, false);
});

Deno.test("TcpRepr round-trips ports, numbers, flags, window, urgent and payload", () => {
  const t = new TcpRepr();
  t.srcPort = 1;
  t.dstPort = 65535;
  t.seq = 0xffffffff;
  t.ack = 0x80000000;
  t.flags = 0x1ff;
  t.window = 1234;
  t.urgent = 7;
  t.tsPresent = true;
  t.tsVal = 5;
  t.tsEcr = 6;
  const buf = new Uint8Array(100);
  const n = t.emit(buf);
  buf.set([9, 8, 7], n);
  const back = new TcpRepr();
  assert.equal(back.parse(buf.subarray(0, n + 3)), undefined);
  for (const k of ["srcPort", "dstPort", "seq", "ack", "flags", "window", "urgent"] as const) {
    assert.equal(back[k], t[k], k);
  }
  assert.deepEqual(Array.from(back.payload), [9, 8, 7]);
});

Deno.test("TcpRepr.parse() caps window scale at 14 (RFC 7323 2.3)", () => {
  const t = new TcpRepr();
  assert.equal(t.parse(header(6, [1, 3, 3, 15])), undefined);
  assert.equal(t.windowScale, 14);
});

Deno.test("TcpRepr.parse() skips unknown options by length and stops at EOL", () => {
  const t = new TcpRepr();
  // kind 30 (MPTCP-like) len 4, then MSS; then EOL followed by junk that is not parsed.
  assert.equal(
    t.parse(header(8, [30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0xb4, 0, 0xff, 0xff, 0xff])),
    undefined,
  );
  assert.equal(t.mss, 1460);
});

Deno.test("TcpRepr.parse() rejects data offset < 5 with reason 'bad-header-length'", () => {
  assert.equal(new TcpRepr().parse(header(4, [], 4)), "bad-header-length");
});

Deno.test("TcpRepr.parse() rejects a data offset beyond the segment with reason 'bad-header-length'", () => {
  const b = header(5, [0, 0, 0, 0]);
  b[12] = 6 << 4;
  assert.equal(new TcpRepr().parse(b.subarray(0, 23)), "bad-header-length");
});

Deno.test("TcpRepr.parse() rejects a segment shorter than 20 bytes with reason 'truncated'", () => {
  assert.equal(new TcpRepr().parse(SYN.subarray(0, 19)), "truncated");
});

Deno.test("TcpRepr.parse() rejects option length 0 or 1 with reason 'bad-option'", () => {
  assert.equal(new TcpRepr().parse(header(6, [30, 0, 0, 0])), "bad-option");
  assert.equal(new TcpRepr().parse(header(6, [30, 1, 0, 0])), "bad-option");
});

Deno.test("TcpRepr.parse() rejects an option overrunning the header with reason 'bad-option'", () => {
  assert.equal(new TcpRepr().parse(header(6, [1, 1, 8, 10])), "bad-option");
  // Length byte itself past the header: the last option byte is a kind with no length.
  assert.equal(new TcpRepr().parse(header(6, [1, 1, 1, 2])), "bad-option");
});

Deno.test("TcpRepr.parse() rejects wrong lengths for known options with reason 'bad-option'", () => {
  assert.equal(new TcpRepr().parse(header(6, [2, 3, 5, 1])), "bad-option"); // MSS len 3
  assert.equal(new TcpRepr().parse(header(6, [3, 4, 5, 1])), "bad-option"); // WS len 4
  assert.equal(new TcpRepr().parse(header(6, [4, 3, 0, 1])), "bad-option"); // SACK-perm len 3
  assert.equal(new TcpRepr().parse(header(8, [5, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), "bad-option");
  assert.equal(new TcpRepr().parse(header(8, [8, 8, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])), "bad-option");
});

Deno.test("TcpView reads fields at the view's byteOffset", () => {
  const big = new Uint8Array(SYN.length + 5);
  big.set(SYN, 5);
  const v = new TcpView().wrap(big.subarray(5));
  assert.equal(v.srcPort, 49610);
  assert.equal(v.headerLength, 40);
  assert.equal(v.checksum, 0x7241);
  assert.equal(v.flags, TCP_SYN);
});

Deno.test("TcpRepr.reset() clears options so emit writes a bare 20-byte header", () => {
  const t = new TcpRepr();
  t.parse(SYN);
  t.reset();
  assert.equal(t.headerLength, 20);
  assert.equal(t.windowScale, -1);
  assert.equal(t.payload.length, 0);
});
