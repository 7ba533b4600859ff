import assert from "node:assert/strict";
import {
  decodeNqe,
  encodeCompletion,
  encodeNqe,
  Nqe,
  NQE_ADDR,
  NQE_ARG2,
  NQE_AUX,
  NQE_FAMILY,
  NQE_OP_COUNT,
  NQE_PORT,
  NQE_REQUEST,
  NQE_RESULT,
  NQE_SIZE,
  NqeFamily,
  NqeFlag,
  NqeOp,
  nqeOpName,
} from "./nqe.ts";

function sample(): Nqe {
  const n = new Nqe();
  n.op = NqeOp.SENDTO;
  n.flags = NqeFlag.MORE | NqeFlag.NONBLOCK;
  n.queueSet = 0xbeef;
  n.socketId = 0xfedc_ba98;
  n.requestId = 0x1234_5678;
  n.result = -111;
  n.dataOffset = 0x8000_0040;
  n.dataLength = 1472;
  n.arg0 = 0xffff_ffff;
  n.arg1 = 7;
  n.arg2 = Number.MAX_SAFE_INTEGER;
  n.addr.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  n.port = 443;
  n.family = NqeFamily.INET6;
  n.aux = 3;
  return n;
}

Deno.test("encodeNqe/decodeNqe round-trip every field, including a 53-bit arg2 and negative result", () => {
  const buf = new DataView(new ArrayBuffer(256));
  const a = sample();
  encodeNqe(buf, 64, a);
  const b = decodeNqe(buf, 64, new Nqe());
  assert.deepEqual({ ...b, addr: [...b.addr] }, { ...a, addr: [...a.addr] });
  assert.equal(new Uint8Array(buf.buffer, 0, 64).every((x) => x === 0), true, "stays in its slot");
  assert.equal(new Uint8Array(buf.buffer, 128).every((x) => x === 0), true);
});

Deno.test("NQE fields sit at the documented little-endian offsets", () => {
  const dv = new DataView(new ArrayBuffer(NQE_SIZE));
  encodeNqe(dv, 0, sample());
  const u8 = new Uint8Array(dv.buffer);
  assert.equal(u8[0], NqeOp.SENDTO);
  assert.equal(u8[1], 0x05);
  assert.deepEqual([...u8.subarray(2, 4)], [0xef, 0xbe]);
  assert.equal(dv.getUint32(NQE_REQUEST, true), 0x1234_5678);
  assert.equal(dv.getInt32(NQE_RESULT, true), -111);
  assert.equal(dv.getUint32(NQE_ARG2, true), 0xffff_ffff);
  assert.equal(dv.getUint32(NQE_ARG2 + 4, true), 0x1f_ffff);
  assert.equal(u8[NQE_ADDR], 0xfd);
  assert.equal(u8[NQE_ADDR + 15], 1);
  assert.equal(dv.getUint16(NQE_PORT, true), 443);
  assert.equal(u8[NQE_FAMILY], 10);
  assert.equal(dv.getUint32(NQE_AUX, true), 3);
});

Deno.test("decodeNqe keeps arg2 an exact integer when a peer sets all 64 bits", () => {
  const dv = new DataView(new ArrayBuffer(NQE_SIZE));
  dv.setUint32(NQE_ARG2, 0xffff_ffff, true);
  dv.setUint32(NQE_ARG2 + 4, 0xffff_ffff, true);
  const n = decodeNqe(dv, 0, new Nqe());
  assert.equal(n.arg2, Number.MAX_SAFE_INTEGER);
  assert.ok(Number.isSafeInteger(n.arg2));
});

Deno.test("encodeCompletion echoes the request identity, sets COMPLETION and zeroes the rest", () => {
  const dv = new DataView(new ArrayBuffer(NQE_SIZE));
  new Uint8Array(dv.buffer).fill(0xaa); // stale slot contents must not leak through
  const req = sample();
  encodeCompletion(dv, 0, req, 1472, NqeFlag.CHUNK_RETURNED);
  const c = decodeNqe(dv, 0, new Nqe());
  assert.equal(c.op, NqeOp.SENDTO);
  assert.equal(c.flags, NqeFlag.CHUNK_RETURNED | NqeFlag.COMPLETION);
  assert.equal(c.queueSet, req.queueSet);
  assert.equal(c.socketId, req.socketId);
  assert.equal(c.requestId, req.requestId);
  assert.equal(c.result, 1472);
  assert.equal(c.dataOffset, req.dataOffset);
  assert.equal(c.dataLength, req.dataLength);
  assert.equal(c.arg0 + c.arg1 + c.arg2 + c.port + c.family + c.aux, 0);
  assert.ok(c.addr.every((x) => x === 0));
});

Deno.test("every op code has a name and the count matches the table", () => {
  const codes = Object.values(NqeOp).sort((a, b) => a - b);
  assert.deepEqual(codes, Array.from({ length: NQE_OP_COUNT }, (_, i) => i));
  assert.equal(nqeOpName(NqeOp.RECV_CREDIT), "recv-credit");
  assert.equal(nqeOpName(200), "op-200");
});

Deno.test("Nqe.clear() zeroes a reused request", () => {
  const n = sample().clear();
  assert.equal(n.op + n.socketId + n.arg2 + n.result + n.port, 0);
  assert.ok(n.addr.every((x) => x === 0));
});

Deno.test("encodeNqe writes op/flags/queueSet and port/family as packed words: fields cut to their widths, the reserved byte 0", () => {
  const buf = new DataView(new ArrayBuffer(64));
  new Uint8Array(buf.buffer).fill(0xff);
  const n = new Nqe();
  n.op = 0x1ff; // cut to 0xff like setUint8 did
  n.flags = 0x102;
  n.queueSet = 0x1_0005;
  n.port = 0x1_0050;
  n.family = NqeFamily.INET;
  encodeNqe(buf, 0, n);
  const b = new Uint8Array(buf.buffer);
  assert.deepEqual([...b.subarray(0, 4)], [0xff, 0x02, 0x05, 0x00]);
  assert.deepEqual([...b.subarray(NQE_PORT, NQE_PORT + 4)], [0x50, 0x00, NqeFamily.INET, 0]);
  const d = decodeNqe(buf, 0, new Nqe());
  assert.deepEqual([d.op, d.flags, d.queueSet, d.port, d.family], [0xff, 2, 5, 0x50, 2]);
  // A hostile reserved byte does not leak into family or port.
  b[NQE_PORT + 3] = 0xaa;
  const h = decodeNqe(buf, 0, new Nqe());
  assert.deepEqual([h.port, h.family], [0x50, 2]);
});
