/**
 * CPU per element of the NQE ring's two access paths, producer and consumer in one thread (so
 * the number does not depend on how two processes are scheduled): `slot()` + DataView per
 * element against the run API (`words`, `firstWord`, `contiguous`). 1024 slots, batch 64,
 * 20 M elements, three alternating rounds.
 *
 * ```text
 * deno run -A bench/nqe_ring_inproc.ts
 * ```
 *
 * @module
 */
import {
  initRing,
  RING_HEADER_SIZE,
  ringBytes,
  RingConsumer,
  RingProducer,
  SLOT_WORDS,
} from "../nsm/ring.ts";
const cap = 1024, buf = new ArrayBuffer(ringBytes(cap) + 64);
initRing(buf, 64, cap);
const p = new RingProducer(buf, 64, cap), c = new RingConsumer(buf, 64, cap);
const N = 20_000_000, H = RING_HEADER_SIZE / 4;
function perSlot(): number {
  let bad = 0, sent = 0, got = 0;
  while (got < N) {
    const k = p.claim(64);
    for (let j = 0; j < k; j++) p.view.setUint32(p.slot(j), sent + j, true);
    p.publish(k);
    sent += k;
    const m = c.available(64);
    for (let j = 0; j < m; j++) if (c.view.getUint32(c.slot(j), true) !== ((got + j) >>> 0)) bad++;
    c.release(m);
    got += m;
  }
  return bad;
}
function words(): number {
  let bad = 0, sent = 0, got = 0;
  while (got < N) {
    const k = p.claim(64);
    const run = p.contiguous(k), pw = p.words;
    let w = p.firstWord;
    for (let j = 0; j < run; j++, w += SLOT_WORDS) pw[w] = sent + j;
    w = H;
    for (let j = run; j < k; j++, w += SLOT_WORDS) pw[w] = sent + j;
    p.publish(k);
    sent += k;
    const m = c.available(64);
    const r2 = c.contiguous(m), cw = c.words;
    w = c.firstWord;
    for (let j = 0; j < r2; j++, w += SLOT_WORDS) if (cw[w] !== ((got + j) >>> 0)) bad++;
    w = H;
    for (let j = r2; j < m; j++, w += SLOT_WORDS) if (cw[w] !== ((got + j) >>> 0)) bad++;
    c.release(m);
    got += m;
  }
  return bad;
}
for (let r = 0; r < 3; r++) {
  for (const [n, f] of [["per-slot", perSlot], ["words", words]] as const) {
    const t = performance.now();
    const b = f();
    const s = (performance.now() - t) / 1000;
    console.log(
      `${n}: ${(N / s / 1e6).toFixed(1)} M/s (${(s * 1e9 / N).toFixed(2)} ns/elem) bad=${b}`,
    );
  }
}
