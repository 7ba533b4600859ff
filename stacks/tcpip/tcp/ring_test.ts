import assert from "node:assert/strict";
import { ByteRing } from "./ring.ts";

Deno.test("ByteRing allocates nothing until written and never beyond its capacity", () => {
  const r = new ByteRing(5000);
  assert.equal(r.allocated, 0);
  assert.equal(r.write(new Uint8Array(100)), 100);
  assert.ok(r.allocated >= 100 && r.allocated <= 5000);
  assert.equal(r.write(new Uint8Array(10_000)), 4900, "cut at the logical capacity");
  assert.equal(r.free, 0);
  assert.equal(r.allocated, 5000);
});

Deno.test("ByteRing keeps byte order across wrap-around and growth", () => {
  const r = new ByteRing(4096);
  const src = new Uint8Array(3000).map((_, i) => i & 0xff);
  let expect = 0;
  let written = 0;
  const out = new Uint8Array(1000);
  for (let round = 0; round < 20; round++) {
    written += r.write(src.subarray(written % 3000, Math.min(3000, (written % 3000) + 1700)));
    const n = r.read(out);
    for (let i = 0; i < n; i++) assert.equal(out[i], expect++ % 3000 & 0xff);
  }
});

Deno.test("ByteRing.writeAt stores out-of-order bytes that commit() later makes readable", () => {
  const r = new ByteRing(4096);
  r.write(new Uint8Array([1, 2]));
  assert.equal(r.writeAt(3, new Uint8Array([6, 7])), 2);
  assert.equal(r.length, 2, "out-of-order bytes are not queued");
  r.writeAt(0, new Uint8Array([3, 4, 5]));
  r.commit(5);
  const out = new Uint8Array(10);
  assert.equal(r.read(out), 7);
  assert.deepEqual(out.subarray(0, 7), new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
});

Deno.test("ByteRing.copyOut peeks at an offset without consuming", () => {
  const r = new ByteRing(100);
  r.write(new Uint8Array([10, 11, 12, 13]));
  const dst = new Uint8Array(4);
  r.copyOut(1, dst, 1, 3);
  assert.deepEqual(dst, new Uint8Array([0, 11, 12, 13]));
  assert.equal(r.length, 4);
  r.discard(3);
  assert.equal(r.length, 1);
  r.releaseIfEmpty();
  assert.ok(r.allocated > 0, "not released while bytes are queued");
  r.discard(1);
  r.releaseIfEmpty();
  assert.equal(r.allocated, 0);
});
