/**
 * User-space ring bookkeeping of the AF_XDP driver per batch, over ordinary memory (no root,
 * no kernel): what `XdpLink.receive()` does per RX batch (peek, read descriptors, release,
 * recycle into the fill ring) and per TX batch (reserve, write descriptors, submit, reclaim
 * completions). Divide by the batch size for the per-packet cost; the notes measured
 * 132 / 24.7 / 12.1 ns per packet at batch 1 / 8 / 64 for the same work.
 *
 * For packets per second on a real interface see bench/xdp_reflector.ts (needs root).
 *
 * @module
 */

import { ADDR_DESC_LEN, ConsumerRing, ProducerRing, XDP_DESC_LEN } from "../xdp/ring.ts";

const OFF = { producer: 0, consumer: 64, flags: 128, desc: 192 };
const SIZE = 2048;

function rxPair(): {
  rx: ConsumerRing;
  rxWords: Uint32Array;
  fill: ProducerRing;
  fillWords: Uint32Array;
} {
  const rxWords = new Uint32Array((OFF.desc + SIZE * XDP_DESC_LEN) / 4);
  const fillWords = new Uint32Array((OFF.desc + 2 * SIZE * ADDR_DESC_LEN) / 4);
  for (let i = 0; i < SIZE; i++) {
    rxWords[OFF.desc / 4 + i * 4] = i * 2048 + 256;
    rxWords[OFF.desc / 4 + i * 4 + 2] = 60;
  }
  return {
    rx: new ConsumerRing(rxWords, OFF, SIZE, XDP_DESC_LEN),
    rxWords,
    fill: new ProducerRing(fillWords, OFF, 2 * SIZE, ADDR_DESC_LEN),
    fillWords,
  };
}

for (const batch of [1, 8, 64]) {
  const { rx, rxWords, fill, fillWords } = rxPair();
  let sink = 0;
  Deno.bench(`RX batch of ${batch}: peek, read desc, release, recycle to fill`, {
    group: "rx",
    baseline: batch === 64,
  }, () => {
    // The "kernel": produce a batch on RX and consume the fill ring.
    rxWords[OFF.producer / 4] = (rxWords[OFF.producer / 4]! + batch) >>> 0;
    fillWords[OFF.consumer / 4] = fill.producerIndex;
    const n = rx.peek(batch);
    const start = rx.consumerIndex;
    const fstart = fill.producerIndex;
    fill.reserve(n);
    for (let i = 0; i < n; i++) {
      const addr = rx.addr(start + i);
      sink += rx.len(start + i);
      fill.setAddr(fstart + i, addr & ~2047);
    }
    rx.release(n);
    fill.submit();
  });
  void sink;
}

for (const batch of [1, 8, 64]) {
  const txWords = new Uint32Array((OFF.desc + SIZE * XDP_DESC_LEN) / 4);
  const compWords = new Uint32Array((OFF.desc + SIZE * ADDR_DESC_LEN) / 4);
  const tx = new ProducerRing(txWords, OFF, SIZE, XDP_DESC_LEN);
  const comp = new ConsumerRing(compWords, OFF, SIZE, ADDR_DESC_LEN);
  let sink = 0;
  Deno.bench(`TX batch of ${batch}: reserve, write desc, submit, reclaim completions`, {
    group: "tx",
    baseline: batch === 64,
  }, () => {
    const start = tx.producerIndex;
    const n = tx.reserve(batch);
    for (let i = 0; i < n; i++) tx.setDesc(start + i, (SIZE + ((start + i) & 2047)) * 2048, 60);
    tx.submit();
    // The "kernel": consume TX, complete the same number.
    txWords[OFF.consumer / 4] = tx.producerIndex;
    compWords[OFF.producer / 4] = (compWords[OFF.producer / 4]! + n) >>> 0;
    const c = comp.peek(SIZE);
    const cs = comp.consumerIndex;
    for (let i = 0; i < c; i++) sink += comp.addr(cs + i);
    comp.release(c);
  });
  void sink;
}
