import assert from "node:assert/strict";
import { COOKIE_MAX_OFFSET, COOKIE_PERIOD, IsnGenerator, KeyedHash, SynCookies } from "./isn.ts";

const A = new Uint8Array([198, 18, 0, 1]);
const B = new Uint8Array([198, 18, 0, 2]);

Deno.test("KeyedHash matches the HalfSipHash-2-4 structure: key- and input-sensitive, stable", () => {
  const h = new KeyedHash(1, 2);
  const x = h.begin().word(42).end();
  assert.equal(h.begin().word(42).end(), x);
  assert.notEqual(h.begin().word(43).end(), x);
  assert.notEqual(new KeyedHash(1, 3).begin().word(42).end(), x);
});

Deno.test("IsnGenerator: different 4-tuples get unrelated ISNs; one tuple advances with the clock", () => {
  const g = new IsnGenerator(new Uint32Array([1, 2, 3, 4]));
  const a = g.isn(A, 1000, B, 80, 0);
  const b = g.isn(A, 1001, B, 80, 0);
  assert.notEqual(a, b);
  assert.equal(g.isn(A, 1000, B, 80, 4000 * 1000), (a + 1000) >>> 0, "RFC 6528: +1 per 4 us");
  const other = new IsnGenerator(new Uint32Array([5, 6, 7, 8]));
  assert.notEqual(other.isn(A, 1000, B, 80, 0), a, "the secret matters");
});

Deno.test("SynCookies round-trip the MSS, reject forgeries and expire after two periods", () => {
  const c = new SynCookies(9, 10);
  const cookie = c.make(A, 80, B, 40000, 12345, 1460, 0);
  assert.equal(c.check(A, 80, B, 40000, 12345, cookie, 0), 1460);
  assert.equal(c.check(A, 80, B, 40000, 12345, cookie, COOKIE_PERIOD), 1460);
  assert.equal(c.check(A, 80, B, 40000, 12345, cookie, 2 * COOKIE_PERIOD), 0, "expired");
  assert.equal(c.check(A, 80, B, 40001, 12345, cookie, 0), 0, "other tuple");
  assert.equal(c.check(A, 80, B, 40000, 12346, cookie, 0), 0, "other client ISN");
  assert.equal(c.check(A, 80, B, 40000, 12345, cookie ^ 1, 0), 0, "tampered");
  assert.equal(c.check(A, 80, B, 40000, 1, c.make(A, 80, B, 40000, 1, 1000, 0), 0), 536);
});

Deno.test("SynCookies.laterOffset() recognises a later segment of a cookie handshake (seq = ISN + 1 + k, 1 <= k <= 65536) without the client ISN, and nothing else", () => {
  const c = new SynCookies(9, 10);
  const isn = 0xfffff000; // the offsets wrap past 2^32
  const cookie = c.make(A, 80, B, 40000, isn, 1460, 0);
  for (const k of [1, 1448, 2896, COOKIE_MAX_OFFSET]) {
    const seqMinusOne = (isn + k) >>> 0;
    assert.equal(c.check(A, 80, B, 40000, seqMinusOne, cookie, 0), 0, "not checkable");
    assert.equal(c.laterOffset(A, 80, B, 40000, seqMinusOne, cookie, 0), k);
    assert.equal(c.laterOffset(A, 80, B, 40000, seqMinusOne, cookie, COOKIE_PERIOD), k);
  }
  assert.equal(c.laterOffset(A, 80, B, 40000, isn, cookie, 0), 0, "the first segment checks");
  assert.equal(c.laterOffset(A, 80, B, 40000, (isn + COOKIE_MAX_OFFSET + 1) >>> 0, cookie, 0), 0);
  assert.equal(c.laterOffset(A, 80, B, 40000, (isn - 1) >>> 0, cookie, 0), 0, "before the ISN");
  assert.equal(c.laterOffset(A, 80, B, 40001, (isn + 100) >>> 0, cookie, 0), 0, "other tuple");
  assert.equal(
    c.laterOffset(A, 80, B, 40000, (isn + 100) >>> 0, cookie, 2 * COOKIE_PERIOD),
    0,
    "expired",
  );
  // Many tuples: MACs whose low 24 bits are below k borrow from the top byte (t, MSS index).
  for (let port = 30000; port < 32000; port++) {
    const ck = c.make(A, 80, B, port, 777, 1460, COOKIE_PERIOD + 5);
    for (const k of [1, 40000, COOKIE_MAX_OFFSET]) {
      assert.equal(c.laterOffset(A, 80, B, port, 777 + k, ck, COOKIE_PERIOD + 5), k);
    }
  }
  // Arbitrary ACKs (e.g. for connections long gone) pass with probability about 2^-12.
  let s = 12345;
  let passed = 0;
  for (let i = 0; i < 40_000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const ack = s;
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    if (c.laterOffset(A, 80, B, 40000, s, ack, 0) !== 0) passed++;
  }
  assert.ok(passed < 40, `${passed} of 40000 random ACKs passed`);
});
