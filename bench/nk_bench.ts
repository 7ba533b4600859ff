/**
 * NK device hot paths in one process (CPU cost per element, no cross-core traffic):
 * NQE encode/decode, ring batch push+pop at batch 1/8/64, data region borrow checks, and the
 * doorbell's `notify()` after a publish while the peer is awake (the per-batch cost every driver
 * loop pays).
 * Cross-process numbers (throughput, round trips, wake-up latency, idle CPU) come from
 * bench/nk_two_process.ts.
 *
 * Run: deno bench -A bench/nk_bench.ts
 *
 * @module
 */

import { DataRegion, dataRegionBytes } from "../nsm/data_region.ts";
import { decodeNqe, encodeCompletion, encodeNqe, Nqe, NqeOp } from "../nsm/nqe.ts";
import { initRing, ringBytes, RingConsumer, RingProducer } from "../nsm/ring.ts";
import { Doorbell } from "../nsm/wake.ts";

const PER_ITER = 1024;

const view = new DataView(new ArrayBuffer(64 * 64));
const a = new Nqe();
a.op = NqeOp.SENDTO;
a.socketId = 9;
a.arg2 = 123456789012;
a.family = 2;
a.addr.set([198, 18, 0, 1]);
const b = new Nqe();

Deno.bench(`encodeNqe x${PER_ITER}`, { group: "nqe", baseline: true }, () => {
  for (let i = 0; i < PER_ITER; i++) {
    a.requestId = i;
    encodeNqe(view, (i & 63) << 6, a);
  }
});

Deno.bench(`decodeNqe x${PER_ITER}`, { group: "nqe" }, () => {
  for (let i = 0; i < PER_ITER; i++) decodeNqe(view, (i & 63) << 6, b);
});

Deno.bench(`encodeCompletion x${PER_ITER}`, { group: "nqe" }, () => {
  for (let i = 0; i < PER_ITER; i++) encodeCompletion(view, (i & 63) << 6, a, i, 0);
});

function ringPair(cap: number): [RingProducer, RingConsumer] {
  const buf = new ArrayBuffer(ringBytes(cap));
  initRing(buf, 0, cap, 0xffff_ff00);
  return [new RingProducer(buf, 0, cap), new RingConsumer(buf, 0, cap)];
}

for (const batch of [1, 8, 64]) {
  const [p, c] = ringPair(1024);
  Deno.bench(`ring push+pop u32 x${PER_ITER}, batch ${batch}`, { group: "ring" }, () => {
    for (let done = 0; done < PER_ITER;) {
      const k = p.claim(batch);
      for (let j = 0; j < k; j++) p.view.setUint32(p.slot(j), done + j, true);
      p.publish(k);
      const m = c.available(batch);
      let s = 0;
      for (let j = 0; j < m; j++) s += c.view.getUint32(c.slot(j), true);
      c.release(m);
      done += m + (s & 0);
    }
  });
}

{
  const [p, c] = ringPair(1024);
  Deno.bench(`ring push+pop full NQE x${PER_ITER}, batch 64`, { group: "ring" }, () => {
    for (let done = 0; done < PER_ITER;) {
      const k = p.claim(64);
      for (let j = 0; j < k; j++) encodeNqe(p.view, p.slot(j), a);
      p.publish(k);
      const m = c.available(64);
      for (let j = 0; j < m; j++) decodeNqe(c.view, c.slot(j), b);
      c.release(m);
      done += m;
    }
  });
}

{
  // An external-like (non-shared) buffer as the NK mapping is; the peer's flag stays 0 (awake),
  // so notify() never touches the socket, which is therefore a stub.
  const [p] = ringPair(1024);
  const flags = new ArrayBuffer(512);
  const bell = new Doorbell(
    null as unknown as Deno.Conn,
    new Uint32Array(flags, 256, 1),
    new Uint32Array(flags, 384, 1),
  );
  Deno.bench(`publish(0) x${PER_ITER}`, { group: "notify", baseline: true }, () => {
    for (let i = 0; i < PER_ITER; i++) p.publish(0);
  });
  Deno.bench(`publish(0) + notify(), peer awake x${PER_ITER}`, { group: "notify" }, () => {
    for (let i = 0; i < PER_ITER; i++) {
      p.publish(0);
      bell.notify();
    }
  });
  Deno.bench(`publish(0) + notifyLazy(), peer awake x${PER_ITER}`, { group: "notify" }, () => {
    for (let i = 0; i < PER_ITER; i++) {
      p.publish(0);
      bell.notifyLazy();
    }
  });
}

const G = { chunkSize: 2048, chunksPerHalf: 1024 };
const buf = new ArrayBuffer(dataRegionBytes(G));
const guest = new DataRegion(buf, 0, G, "guest");
const nsm = new DataRegion(buf, 0, G, "nsm");
Deno.bench(`data region alloc+lend+borrow+giveBack+reclaim x${PER_ITER}`, { group: "data" }, () => {
  for (let i = 0; i < PER_ITER; i++) {
    const off = guest.alloc();
    guest.lend(off);
    nsm.borrow(off, 1460);
    nsm.giveBack(off);
    guest.reclaim(off);
  }
});
