import assert from "node:assert/strict";
import { Reassembler } from "./reassembly.ts";
import type { DropReason } from "../wire/drop.ts";
import { SECOND } from "../../time.ts";

const SRC = new Uint8Array([198, 18, 0, 1]);
const DST = new Uint8Array([198, 18, 0, 2]);
const HDR = new Uint8Array(20).fill(0x45);

function data(n: number, seed = 0): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < n; i++) d[i] = (i * 7 + seed) & 0xff;
  return d;
}

function setup(config = {}): { r: Reassembler; drops: DropReason[] } {
  const drops: DropReason[] = [];
  return { r: new Reassembler((d) => drops.push(d), config), drops };
}

Deno.test("Reassembler joins out-of-order fragments and returns header + payload", () => {
  const { r, drops } = setup();
  const whole = data(3000);
  const add = (off: number, len: number, more: boolean): Uint8Array | null =>
    r.add(4, SRC, DST, 17, 42, off, more, HDR, whole.subarray(off, off + len), 0);
  assert.equal(add(2960, 40, false), null);
  assert.equal(add(1480, 1480, true), null);
  const out = add(0, 1480, true);
  assert.ok(out !== null);
  assert.deepEqual([...out], [...whole]);
  assert.equal(r.lastPacket.length, 3020);
  assert.equal(r.lastPacket[0], 0x45);
  assert.equal(r.heldBytes, 0);
  assert.equal(r.inProgress, 0);
  assert.deepEqual(drops, []);
});

Deno.test("Reassembler keeps datagrams with different ids or protocols apart", () => {
  const { r } = setup();
  const a = data(16, 1), b = data(16, 2);
  r.add(4, SRC, DST, 17, 1, 0, true, HDR, a.subarray(0, 8), 0);
  r.add(4, SRC, DST, 6, 1, 0, true, HDR, b.subarray(0, 8), 0);
  const out = r.add(4, SRC, DST, 6, 1, 8, false, HDR, b.subarray(8), 0);
  assert.deepEqual([...out!], [...b]);
  assert.equal(r.inProgress, 1);
});

Deno.test("Reassembler drops the whole datagram on overlap, and its later fragments (RFC 5722)", () => {
  const { r, drops } = setup();
  const d = data(32);
  r.add(4, SRC, DST, 17, 7, 0, true, HDR, d.subarray(0, 16), 0);
  assert.equal(r.add(4, SRC, DST, 17, 7, 8, true, HDR, d.subarray(8, 24), 0), null);
  assert.deepEqual(drops, ["fragment-overlap"]);
  assert.equal(r.heldBytes, 0);
  assert.equal(r.add(4, SRC, DST, 17, 7, 16, false, HDR, d.subarray(16), 0), null);
  assert.deepEqual(drops, ["fragment-overlap", "fragment-overlap"]);
  r.poll(30 * SECOND);
  assert.equal(r.inProgress, 0);
  assert.deepEqual(drops.length, 2, "a dead datagram's timeout is not counted again");
});

Deno.test("Reassembler ignores an exact duplicate fragment and still completes", () => {
  const { r, drops } = setup();
  const d = data(24);
  r.add(4, SRC, DST, 17, 7, 0, true, HDR, d.subarray(0, 16), 0);
  r.add(4, SRC, DST, 17, 7, 0, true, HDR, d.subarray(0, 16), 0);
  assert.deepEqual(drops, ["fragment-duplicate"]);
  assert.ok(r.add(4, SRC, DST, 17, 7, 16, false, HDR, d.subarray(16), 0) !== null);
});

Deno.test("Reassembler rejects a non-final fragment whose length is not a multiple of 8", () => {
  const { r, drops } = setup();
  assert.equal(r.add(4, SRC, DST, 17, 1, 0, true, HDR, data(12), 0), null);
  assert.deepEqual(drops, ["bad-length"]);
  assert.equal(r.inProgress, 0);
});

Deno.test("Reassembler rejects fragments that would exceed 65535 bytes", () => {
  const { r, drops } = setup();
  assert.equal(r.add(4, SRC, DST, 17, 1, 65528, false, HDR, data(16), 0), null);
  assert.deepEqual(drops, ["fragment-too-big"]);
});

Deno.test("Reassembler times a datagram out after 30 s and counts it", () => {
  const { r, drops } = setup();
  r.add(4, SRC, DST, 17, 1, 0, true, HDR, data(8), 5 * SECOND);
  assert.equal(r.pollAt(), 35 * SECOND);
  r.poll(34 * SECOND);
  assert.equal(r.inProgress, 1);
  r.poll(35 * SECOND);
  assert.equal(r.inProgress, 0);
  assert.deepEqual(drops, ["fragment-timeout"]);
  assert.equal(r.stats.timedOut, 1);
});

Deno.test("Reassembler bounds the number of datagrams by evicting the oldest", () => {
  const { r, drops } = setup({ maxDatagrams: 2 });
  r.add(4, SRC, DST, 17, 1, 0, true, HDR, data(8), 0);
  r.add(4, SRC, DST, 17, 2, 0, true, HDR, data(8), 1);
  r.add(4, SRC, DST, 17, 3, 0, true, HDR, data(8), 2);
  assert.equal(r.inProgress, 2);
  assert.deepEqual(drops, ["reassembly-full"]);
  // Datagram 1 is gone: its last fragment starts a new, incomplete datagram.
  assert.equal(r.add(4, SRC, DST, 17, 1, 8, false, HDR, data(8), 3), null);
  // Datagram 3 survived.
  assert.ok(r.add(4, SRC, DST, 17, 3, 8, false, HDR, data(8), 3) !== null);
});

Deno.test("Reassembler bounds the bytes held", () => {
  const { r, drops } = setup({ maxBytes: 2000 });
  r.add(4, SRC, DST, 17, 1, 0, true, HDR, data(1480), 0);
  r.add(4, SRC, DST, 17, 2, 0, true, HDR, data(1480), 1);
  assert.ok(r.heldBytes <= 2000);
  assert.deepEqual(drops, ["reassembly-full"]);
  // A single fragment larger than the whole budget is refused.
  const { r: r2, drops: d2 } = setup({ maxBytes: 100 });
  assert.equal(r2.add(4, SRC, DST, 17, 1, 0, true, HDR, data(200), 0), null);
  assert.deepEqual(d2, ["reassembly-full"]);
});

Deno.test("Reassembler handles IPv6 keys (16-byte addresses)", () => {
  const { r } = setup();
  const s6 = new Uint8Array(16).fill(0xfd), d6 = new Uint8Array(16).fill(0xfe);
  const d = data(2000);
  const h6 = new Uint8Array(40).fill(0x60);
  r.add(6, s6, d6, 17, 0x12345678, 1232, false, h6, d.subarray(1232), 0);
  const out = r.add(6, s6, d6, 17, 0x12345678, 0, true, h6, d.subarray(0, 1232), 0);
  assert.deepEqual([...out!], [...d]);
  assert.equal(r.lastPacket.length, 2040);
});

Deno.test("Reassembler kills a datagram whose last fragment ends before data already held", () => {
  const { r, drops } = setup();
  r.add(4, SRC, DST, 17, 1, 16, true, HDR, data(16), 0);
  assert.equal(r.add(4, SRC, DST, 17, 1, 0, false, HDR, data(8), 0), null);
  assert.deepEqual(drops, ["fragment-overlap"]);
});
