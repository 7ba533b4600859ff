/**
 * Heap bytes per ACK of the recovery engine in steady state at Instants above 2^30 ns (where
 * a time value that crosses a non-inlined call is a heap number): onAck + onSend + the
 * calls the Tcb's transmit loop makes (nextSendTime, nextRetransmit, sendQuota, pollAt), with
 * timestamps and pacing on, one segment acknowledged and one sent per ACK.
 *
 * ```text
 * deno run -A bench/engine_alloc.ts [--iters 2000000]
 * ```
 *
 * Prints bytes per iteration over windows without a GC (median), and scavenges seen.
 *
 * @module
 */

import { RecoveryEngine } from "../stacks/tcpip/tcp/recovery/mod.ts";
import { SECOND } from "../stacks/time.ts";

const MSS = 1448;
const WINDOW = 64;
const empty = new Uint32Array(8);
const i = Deno.args.indexOf("--iters");
const ITERS = i >= 0 ? Number(Deno.args[i + 1]) : 2_000_000;

const e = new RecoveryEngine({ mss: MSS, pacing: true, timestamps: true });
let now = 5 * SECOND + 0.5;
e.reset(0, now);
e.setNegotiated(true, true, false);
e.setMss(MSS);
const gap = 11_587; // ns between segments (1 Gbit/s)
for (let k = 0; k < WINDOW; k++) {
  e.onSend(e.sndNxt, MSS, now, false);
  now += gap;
}
let sink = 0;
function step(): void {
  now += gap;
  const ack = (e.sndUna + MSS) >>> 0;
  e.onAck(now, ack, empty, 0, WINDOW * gap, false);
  if (e.nextSendTime() > now) sink++;
  if (e.nextRetransmit() !== null) sink++;
  if (e.sendQuota() < MSS) (e.cc as { cwnd: number }).cwnd = 1 << 30;
  e.onSend(e.sndNxt, MSS, now, false);
  if (e.pollAt() < now) sink++;
}
for (let k = 0; k < 200_000; k++) step(); // JIT warm-up
const per: number[] = [];
const t0 = performance.now();
for (let w = 0; w < ITERS / 10_000; w++) {
  const h0 = Deno.memoryUsage().heapUsed;
  for (let k = 0; k < 10_000; k++) step();
  const h1 = Deno.memoryUsage().heapUsed;
  if (h1 >= h0) per.push((h1 - h0) / 10_000);
}
const ns = ((performance.now() - t0) * 1e6) / ITERS;
per.sort((a, b) => a - b);
console.log(
  `engine: ${per[per.length >> 1]?.toFixed(1)} B per ACK+send (median of ${per.length} ` +
    `GC-free windows), ${ns.toFixed(0)} ns per iteration (${sink} sink)`,
);
