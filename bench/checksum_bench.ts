/**
 * One's complement sum: the TypeScript word loop (`onesComplementSumRange`) against the
 * hand-assembled WebAssembly SIMD module (stacks/tcpip/wire/checksum_simd.ts), copied in
 * (buffer outside the module's memory) and in place (buffer taken from `simdArena`), per size,
 * to find the crossover.
 *
 *     deno run -A bench/checksum_bench.ts     (table: median ns per call of 15 timed batches)
 *     deno bench -A bench/checksum_bench.ts   (Deno.bench at 64, 1500 and 65536 bytes)
 *
 * @module
 */

import { onesComplementSumRangeScalar as onesComplementSumRange } from "../stacks/tcpip/wire/checksum.ts";
import { simdArena, simdSumRange } from "../stacks/tcpip/wire/checksum_simd.ts";

const SIZES = [20, 40, 64, 128, 256, 512, 1024, 1500, 4096, 9000, 65536];
const js = new Uint8Array(70_000);
for (let i = 0; i < js.length; i++) js[i] = (i * 7919 + 13) & 0xff;
const arena = simdArena(70_000);
arena.set(js);
// Views of each size (start at offset 2: where a TCP segment starts after a 14-byte Ethernet
// header in a 4-aligned frame, i.e. a 2-aligned payload), made once.
const jsViews = SIZES.map((n) => js.subarray(2, 2 + n));
const arenaViews = SIZES.map((n) => arena.subarray(2, 2 + n));

let sink = 0;
type Fn = (v: Uint8Array) => number;
const variants: [string, Fn, Uint8Array[]][] = [
  ["typescript", (v) => onesComplementSumRange(v, 0, v.length), jsViews],
  ["wasm simd, copied in", (v) => simdSumRange(v, 0, v.length), jsViews],
  ["wasm simd, in place", (v) => simdSumRange(v, 0, v.length), arenaViews],
];

for (const n of [64, 1500, 65536]) {
  const k = SIZES.indexOf(n);
  for (const [name, fn, views] of variants) {
    Deno.bench({
      name: `${name}, ${n} B`,
      group: `${n} B`,
      baseline: name === "typescript",
      fn: () => {
        sink ^= fn(views[k]!);
      },
    });
  }
}

function time(fn: Fn, v: Uint8Array): number {
  const iters = Math.max(200, Math.floor(2_000_000 / (v.length + 64)));
  const runs: number[] = [];
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) sink ^= fn(v);
    runs.push(((performance.now() - t0) * 1e6) / iters);
  }
  runs.sort((a, b) => a - b);
  return runs[7]!;
}

if (import.meta.main) {
  // Warm every variant on every size first so the JIT state is the same for all.
  for (let w = 0; w < 3; w++) {
    for (const [, fn, views] of variants) for (const v of views) time(fn, v);
  }
  console.log("bytes  | " + variants.map(([n]) => n.padStart(22)).join(" | ") + " | best");
  for (let k = 0; k < SIZES.length; k++) {
    const t = variants.map(([, fn, views]) => time(fn, views[k]!));
    const best = variants[t.indexOf(Math.min(...t))]![0];
    const cell = (ns: number): string =>
      `${ns.toFixed(1)} ns ${(SIZES[k]! / ns).toFixed(1).padStart(5)} GB/s`.padStart(22);
    console.log(`${String(SIZES[k]).padStart(6)} | ${t.map(cell).join(" | ")} | ${best}`);
  }
  if (sink === 0.5) console.log(sink);
}
