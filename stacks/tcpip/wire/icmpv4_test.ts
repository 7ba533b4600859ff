import assert from "node:assert/strict";
import {
  ICMPV4_CODE_FRAG_NEEDED,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_TIME_EXCEEDED,
  Icmpv4Repr,
  Icmpv4View,
} from "./icmpv4.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

// Echo request id 1 seq 1, no data: sum 0x0800 + 0x0001 + 0x0001 = 0x0802, checksum 0xf7fd.
const ECHO = hex("0800f7fd00010001");

Deno.test("Icmpv4Repr.parse() reads an echo request (hand-computed checksum 0xf7fd)", () => {
  const m = new Icmpv4Repr();
  assert.equal(m.parse(ECHO), undefined);
  assert.equal(m.type, ICMPV4_ECHO_REQUEST);
  assert.equal(m.code, 0);
  assert.equal(m.checksum, 0xf7fd);
  assert.equal(m.identifier, 1);
  assert.equal(m.sequence, 1);
  assert.equal(m.data.length, 0);
  assert.equal(m.quoted.length, 0);
});

Deno.test("Icmpv4Repr.emit() writes echo id/seq/data with a checksum parse() accepts", () => {
  const m = new Icmpv4Repr();
  m.type = ICMPV4_ECHO_REQUEST;
  m.identifier = 0xbeef;
  m.sequence = 0x1234;
  m.data = new Uint8Array([1, 2, 3]);
  const out = new Uint8Array(11);
  assert.equal(m.emit(out), 11);
  const back = new Icmpv4Repr();
  assert.equal(back.parse(out), undefined);
  assert.equal(back.identifier, 0xbeef);
  assert.equal(back.sequence, 0x1234);
  assert.deepEqual(Array.from(back.data), [1, 2, 3]);
  assert.deepEqual(
    out.subarray(0, 8),
    new Uint8Array([8, 0, out[2]!, out[3]!, 0xbe, 0xef, 0x12, 0x34]),
  );
});

Deno.test("Icmpv4Repr carries the next-hop MTU of fragmentation-needed and the quoted datagram", () => {
  const quote = new Uint8Array(28).fill(0x45, 0, 1);
  const m = new Icmpv4Repr();
  m.type = ICMPV4_DEST_UNREACHABLE;
  m.code = ICMPV4_CODE_FRAG_NEEDED;
  m.nextHopMtu = 1280;
  m.data = quote;
  const out = new Uint8Array(36);
  m.emit(out);
  assert.deepEqual(Array.from(out.subarray(4, 8)), [0, 0, 5, 0]);
  const back = new Icmpv4Repr();
  assert.equal(back.parse(out), undefined);
  assert.equal(back.nextHopMtu, 1280);
  assert.equal(back.quoted.length, 28);
  assert.equal(back.quoted[0], 0x45);
});

Deno.test("Icmpv4Repr accepts every destination-unreachable code and time exceeded", () => {
  for (let code = 0; code <= 15; code++) {
    const m = new Icmpv4Repr();
    m.type = ICMPV4_DEST_UNREACHABLE;
    m.code = code;
    const out = new Uint8Array(8);
    m.emit(out);
    const back = new Icmpv4Repr();
    assert.equal(back.parse(out), undefined);
    assert.equal(back.code, code);
  }
  const t = new Icmpv4Repr();
  t.type = ICMPV4_TIME_EXCEEDED;
  t.data = new Uint8Array(28);
  const out = new Uint8Array(36);
  t.emit(out);
  assert.equal(new Icmpv4Repr().parse(out), undefined);
});

Deno.test("Icmpv4Repr.parse() rejects a bad checksum with reason 'bad-checksum'", () => {
  const m = ECHO.slice();
  m[7] = 2;
  assert.equal(new Icmpv4Repr().parse(m), "bad-checksum");
});

Deno.test("Icmpv4Repr.parse() rejects fewer than 8 bytes with reason 'truncated'", () => {
  assert.equal(new Icmpv4Repr().parse(ECHO.subarray(0, 7)), "truncated");
});

Deno.test("Icmpv4View reads fields at the view's byteOffset", () => {
  const big = new Uint8Array(20);
  big.set(ECHO, 5);
  const v = new Icmpv4View().wrap(big.subarray(5));
  assert.equal(v.type, 8);
  assert.equal(v.checksum, 0xf7fd);
  assert.equal(v.rest, 0x00010001);
});
