/**
 * Allocation guard for the steady-state TCP data path: a bulk transfer between two stacks over
 * bench/steady_pair.ts's allocation-free link, measured in a child Deno with --expose-gc
 * (bench/gc_steady.ts). What remains per data segment (see bench/RESULTS.md, "Performance
 * work" and "Zero-GC work (session 2)"): mostly the bench loop's own boxed virtual times and
 * its link's packet views. The send ring's copies into packets reuse kept views (session 2),
 * and so does the reader of the receive ring, which reads whole segments (session 4).
 */

import assert from "node:assert/strict";
import { DEFAULT_STEADY, measureGcSteady } from "../bench/gc_steady.ts";

Deno.test("a steady 1 Gbit/s bulk transfer between two stacks allocates at most 320 B per data segment, with no internal error", async () => {
  const r = await measureGcSteady(2, DEFAULT_STEADY);
  assert.ok(r.segments > 150_000, `${r.segments} data segments in 2 virtual s at 1 Gbit/s`);
  assert.ok(r.bytesPerSegment >= 0, "allocation was measured");
  // 228 B since the receive ring is read in whole segments with kept views (556 before; 587
  // after the zero-GC work of session 2, 707-807 before that; bench/RESULTS.md).
  assert.ok(r.bytesPerSegment <= 320, `${r.bytesPerSegment.toFixed(1)} B per data segment`);
});

Deno.test("a steady transfer that loses 1 % of its data segments (SACK recovery all along) allocates at most 320 B per data segment", async () => {
  const r = await measureGcSteady(2, { ...DEFAULT_STEADY, dropEvery: 100 });
  assert.ok(r.segments > 140_000, `${r.segments} data segments`);
  assert.ok(r.lost > 1_000 && r.lost <= r.segments / 90, `${r.lost} lost`);
  // 255.5 B, 28 B above the loss-free transfer: all of it the bench link's own views and boxed
  // times for the extra ACKs (SACK options change their length); no site in the stacks
  // (bench/gc_steady.ts --child --heap-sample 4 --drop-every 20).
  assert.ok(r.bytesPerSegment > 0 && r.bytesPerSegment <= 320, `${r.bytesPerSegment} B`);
});

Deno.test("with receive batches (link polled every 50 us) and ACK coalescing the steady transfer allocates at most 120 B per data segment and sends one ACK per batch", async () => {
  const r = await measureGcSteady(2, { halfWindow: true, coalesce: true, pollUs: 50 });
  assert.ok(r.segments > 150_000, `${r.segments} data segments`);
  // 53 B with whole-segment reads of the receive ring (225 before; 414-463 before session 2).
  assert.ok(r.bytesPerSegment >= 0 && r.bytesPerSegment <= 120, `${r.bytesPerSegment} B`);
  // 2 s / 50 us = 40,000 polls; at most one ACK per poll that received data.
  assert.ok(r.acks <= 40_001, `${r.acks} ACKs`);
});

Deno.test("the steady transfer allocates no more per data segment when its sequence numbers are above 2^31 (no heap number per segment)", async () => {
  // Seed 1 runs the counted interval with RCV.NXT below 2^31, seed 2 above it: an unsigned
  // sequence number above 2^31 handed to a call that is not inlined becomes a heap number.
  const low = await measureGcSteady(1, { ...DEFAULT_STEADY, seed: 1 });
  const high = await measureGcSteady(1, { ...DEFAULT_STEADY, seed: 2 });
  assert.ok(low.rcvNxtStart < 2 ** 31, `seed 1: RCV.NXT ${low.rcvNxtStart}`);
  // Above 2^31 and far enough from 2^32 not to wrap within the interval (125 MB).
  assert.ok(
    high.rcvNxtStart >= 2 ** 31 && high.rcvNxtStart < 2 ** 32 - 2e8,
    `seed 2: RCV.NXT ${high.rcvNxtStart}`,
  );
  assert.ok(low.bytesPerSegment > 0 && high.bytesPerSegment > 0);
  // Was +16 B (one heap number per segment: #receiveData's seq) before seq crossed as int32.
  assert.ok(
    high.bytesPerSegment <= low.bytesPerSegment + 8,
    `${high.bytesPerSegment.toFixed(1)} B above 2^31, ${low.bytesPerSegment.toFixed(1)} B below`,
  );
});

Deno.test("RACK's reordering window is stored, not returned: an RTT that is not a multiple of 4 ns costs no heap number per ACK, even where calls are not inlined", async () => {
  // The NSM's larger functions leave calls inlined here out; a fractional reo_wnd returned
  // from one was boxed per ACK (16 B per segment here before it became a store).
  const v8Flags = "--max-inlined-bytecode-size=80";
  const even = await measureGcSteady(1, { ...DEFAULT_STEADY, delayNs: 50_000, v8Flags });
  const odd = await measureGcSteady(1, { ...DEFAULT_STEADY, delayNs: 50_001, v8Flags });
  assert.ok(even.bytesPerSegment > 0 && odd.bytesPerSegment > 0);
  assert.ok(
    odd.bytesPerSegment <= even.bytesPerSegment + 8,
    `${odd.bytesPerSegment.toFixed(1)} B with a 100,002 ns RTT, ${
      even.bytesPerSegment.toFixed(1)
    } B with 100,000 ns`,
  );
});
