import assert from "node:assert/strict";
import {
  completeChecksum,
  TX_METADATA_LEN,
  validChecksumRequest,
  writeChecksumRequest,
  XDP_TXMD_FLAGS_CHECKSUM,
} from "./tx_metadata.ts";

/** RFC 1071 checksum of `b`, complemented (0 when `b` already carries a valid checksum). */
function verify(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length % 2 === 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

Deno.test("writeChecksumRequest() lays out struct xsk_tx_metadata 24 bytes before the data", () => {
  const umem = new Uint8Array(4096).fill(0xee); // stale bytes a previous request left
  const data = 2048 + TX_METADATA_LEN;
  writeChecksumRequest(umem, data, 34, 6);
  const v = new DataView(umem.buffer);
  const m = data - 24;
  assert.equal(TX_METADATA_LEN, 24);
  assert.equal(v.getBigUint64(m, true), BigInt(XDP_TXMD_FLAGS_CHECKSUM)); // flags, upper bits 0
  assert.equal(v.getUint16(m + 8, true), 34); // request.csum_start
  assert.equal(v.getUint16(m + 10, true), 6); // request.csum_offset
  // Nothing outside flags/csum_start/csum_offset is touched (launch_time is unused).
  assert.equal(umem[m - 1], 0xee);
  assert.equal(umem[m + 12], 0xee);
  assert.equal(umem[data], 0xee);
  writeChecksumRequest(umem, data, 0x1234, 0x0102);
  assert.equal(v.getUint16(m + 8, true), 0x1234);
  assert.equal(v.getUint16(m + 10, true), 0x0102);
});

Deno.test("validChecksumRequest() refuses a field that ends past the first buffer, like the kernel", () => {
  assert.equal(validChecksumRequest(42, 34, 6), true); // UDP field at 40..41
  assert.equal(validChecksumRequest(41, 34, 6), false);
  assert.equal(validChecksumRequest(54, 34, 16), true); // TCP field at 50..51
  assert.equal(validChecksumRequest(51, 34, 16), false);
  assert.equal(validChecksumRequest(100, -1, 6), false);
  assert.equal(validChecksumRequest(0x20000, 0x10000, 0), false); // u16 fields
});

Deno.test("completeChecksum() turns a pseudo-header seed into the full checksum (odd length too)", () => {
  for (const len of [1, 2, 7, 1472, 8000]) {
    // UDP header + payload at offset 10 of a "frame"; the pseudo-header is summed separately.
    const frame = new Uint8Array(10 + 8 + len);
    for (let i = 10; i < frame.length; i++) frame[i] = (i * 31 + len) & 0xff;
    frame[16] = frame[17] = 0;
    const pseudo = new Uint8Array([198, 18, 0, 1, 198, 18, 0, 2, 0, 17, 0, 0]);
    new DataView(pseudo.buffer).setUint16(10, 8 + len);
    const seed = ~verify(pseudo) & 0xffff; // folded, not complemented
    frame[16] = seed >>> 8;
    frame[17] = seed & 0xff;
    completeChecksum(frame, 10, 6);
    const whole = new Uint8Array(12 + 8 + len);
    whole.set(pseudo);
    whole.set(frame.subarray(10), 12);
    assert.equal(verify(whole), 0, `length ${len}: checksum verifies`);
  }
});

Deno.test("completeChecksum() stores a zero result as 0xffff (CSUM_MANGLED_0)", () => {
  // Sum of the region is 0xffff, so the complement is 0.
  const frame = new Uint8Array([0xff, 0x00, 0x00, 0xff]);
  completeChecksum(frame, 0, 2);
  assert.deepEqual([...frame], [0xff, 0x00, 0xff, 0xff]);
});
