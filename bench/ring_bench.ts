/**
 * ByteRing reads of a receive stream (`readAligned`, as TCP's reader takes them), per
 * 1448-byte segment: a steady stream whose pieces recur every lap (kept views), and one whose
 * phase moves every lap (a short segment after every eight full ones, as an iperf3 sender's
 * write tails do at some rates), so that no piece comes again and each is copied by hand: 4
 * bytes at a time (segment sizes and the destination 4-aligned), or byte by byte into a
 * destination off the 4-byte grid.
 *
 *     deno bench -A bench/ring_bench.ts
 *
 * @module
 */

import { ByteRing } from "../stacks/tcpip/tcp/ring.ts";

const UNIT = 1448;

function stream(short: boolean, dstShift = 0): () => void {
  const r = new ByteRing(32 * UNIT);
  r.setUnit(UNIT);
  const seg = new Uint8Array(UNIT).fill(7);
  const tail = seg.subarray(0, 752);
  const dst = new Uint8Array(16 * UNIT + 4).subarray(dstShift, dstShift + 16 * UNIT);
  // One round: eight segments (and the short one) stored, then read out.
  return () => {
    for (let i = 0; i < 8; i++) r.write(seg);
    if (short) r.write(tail);
    while (r.length > 0) r.readAligned(dst);
  };
}

const steady = stream(false);
const moving = stream(true);
const unaligned = stream(true, 1);
for (let i = 0; i < 2000; i++) {
  steady();
  moving();
  unaligned();
}

Deno.bench("ByteRing: 8 segments stored and read, pieces recurring (kept views)", () => {
  steady();
});

Deno.bench(
  "ByteRing: 8 segments and a short one, the phase moving every lap (copied by hand)",
  () => {
    moving();
  },
);

Deno.bench(
  "ByteRing: the same into a destination 1 byte off 4-alignment (copied byte by byte)",
  () => {
    unaligned();
  },
);
