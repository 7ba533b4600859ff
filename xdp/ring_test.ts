import assert from "node:assert/strict";
import {
  ADDR_DESC_LEN,
  ConsumerRing,
  ProducerRing,
  RingLayoutError,
  type RingOffsets,
  XDP_DESC_LEN,
  XDP_RING_NEED_WAKEUP,
} from "./ring.ts";

// Same layout idea as the kernel's: producer, consumer, flags on their own lines, then descs.
const OFF: RingOffsets = { producer: 0, consumer: 64, flags: 128, desc: 192 };

function mapping(size: number, descLen: number): Uint32Array {
  return new Uint32Array((OFF.desc + size * descLen) / 4);
}

function setIndices(words: Uint32Array, prod: number, cons: number): void {
  words[OFF.producer / 4] = prod;
  words[OFF.consumer / 4] = cons;
}

Deno.test("ProducerRing reserves at most size - outstanding slots and publishes once on submit", () => {
  const w = mapping(8, ADDR_DESC_LEN);
  const r = new ProducerRing(w, OFF, 8, ADDR_DESC_LEN);
  assert.equal(r.reserve(5), 5);
  assert.equal(w[0], 0, "not published before submit");
  assert.equal(r.pending, 5);
  r.submit();
  assert.equal(w[0], 5);
  assert.equal(r.reserve(10), 3, "only 3 of 8 slots left while the consumer is at 0");
  r.submit();
  assert.equal(r.reserve(1), 0);
  w[OFF.consumer / 4] = 2; // kernel consumed 2
  assert.equal(r.reserve(4), 2, "free() re-reads the consumer when the cache looks full");
});

Deno.test("ProducerRing index arithmetic wraps at 2^32 and masks slots", () => {
  const w = mapping(4, ADDR_DESC_LEN);
  const start = 0xffff_fffe;
  setIndices(w, start, start);
  const r = new ProducerRing(w, OFF, 4, ADDR_DESC_LEN);
  const first = r.producerIndex;
  assert.equal(r.reserve(4), 4);
  for (let i = 0; i < 4; i++) r.setAddr(first + i, 0x1000 * (i + 1));
  r.submit();
  assert.equal(w[0], 2, "producer wrapped past 2^32 to 2");
  // Slots: 0xfffffffe & 3 = 2, 0xffffffff & 3 = 3, 0 & 3 = 0, 1 & 3 = 1.
  const desc = (slot: number): number => w[OFF.desc / 4 + slot * 2]!;
  assert.deepEqual([desc(2), desc(3), desc(0), desc(1)], [0x1000, 0x2000, 0x3000, 0x4000]);
  assert.equal(r.free(1), 0);
  w[OFF.consumer / 4] = 1; // consumer also wrapped: 3 consumed
  assert.equal(r.free(1), 3);
});

Deno.test("ConsumerRing peeks across the 2^32 wrap and releases with one store", () => {
  const w = mapping(8, XDP_DESC_LEN);
  setIndices(w, 0xffff_fffd, 0xffff_fffd);
  const c = new ConsumerRing(w, OFF, 8, XDP_DESC_LEN);
  assert.equal(c.peek(64), 0);
  // Kernel produces 5 descriptors across the wrap.
  for (let i = 0; i < 5; i++) {
    const slot = ((0xffff_fffd + i) >>> 0) & 7;
    const base = OFF.desc / 4 + slot * 4;
    w[base] = 0x800 * i;
    w[base + 1] = i === 4 ? 1 : 0; // high word: addr >= 2^32 for the last one
    w[base + 2] = 60 + i;
  }
  w[0] = (0xffff_fffd + 5) >>> 0;
  assert.equal(c.peek(3), 3, "capped at max");
  assert.equal(c.peek(64), 5);
  const s = c.consumerIndex;
  assert.equal(c.len(s + 4), 64);
  assert.equal(c.addr(s + 4), 0x1_0000_0000 + 0x2000);
  c.release(5);
  assert.equal(w[OFF.consumer / 4], 2);
  assert.equal(c.peek(64), 0);
});

Deno.test("needsWakeup() reads XDP_RING_NEED_WAKEUP from the flags word", () => {
  const w = mapping(4, XDP_DESC_LEN);
  const r = new ProducerRing(w, OFF, 4, XDP_DESC_LEN);
  assert.equal(r.needsWakeup(), false);
  w[OFF.flags / 4] = XDP_RING_NEED_WAKEUP;
  assert.equal(r.needsWakeup(), true);
});

Deno.test("ring constructors reject non-power-of-two sizes and short mappings", () => {
  assert.throws(() => new ProducerRing(mapping(8, 8), OFF, 6, ADDR_DESC_LEN), RingLayoutError);
  assert.throws(() => new ConsumerRing(mapping(4, 16), OFF, 8, XDP_DESC_LEN), RingLayoutError);
});

Deno.test("ProducerRing and ConsumerRing keep indices past 2^31 as int32 (small integers for V8) with the kernel's u32 bits", () => {
  const w = mapping(8, XDP_DESC_LEN);
  setIndices(w, 0x7fff_fffe, 0x7fff_fffe);
  const p = new ProducerRing(w, OFF, 8, XDP_DESC_LEN);
  const c = new ConsumerRing(w, OFF, 8, XDP_DESC_LEN);
  for (let round = 0; round < 3; round++) {
    assert.equal(p.reserve(3), 3);
    p.submit();
    assert.equal(c.peek(8), 3);
    c.release(3);
    for (const i of [p.producerIndex, c.consumerIndex]) {
      assert.equal(i, i | 0, `index ${i} is an int32`);
    }
  }
  // 0x7ffffffe + 9 = 0x80000007 in the shared words, read back as u32 by the kernel.
  assert.equal(w[OFF.producer / 4], 0x8000_0007);
  assert.equal(w[OFF.consumer / 4], 0x8000_0007);
  assert.equal(p.free(8), 8);
});
