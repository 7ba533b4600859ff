/**
 * Child of tests/guest_bulk_sleep_test.ts: an nkperf client on GuestLib (`ctl`) sends to
 * `host` for `seconds` (with `reverse`, receives from it: nkperf -R); from 1 s in, for 1.5 s,
 * it measures the JS-heap bytes the process allocates per chunk sent (received) (started with --expose-gc and a 64 MB young generation, so that no
 * GC runs in the interval: the test checks the --trace-gc lines stamped between MARK0 and
 * MARK1, which carry the interval's ends in ms since the isolate started) and
 * the pump's sleeps, then prints one JSON line.
 *
 * ```
 * deno run -A --v8-flags=--expose-gc,--trace-gc,--min-semi-space-size=64,--max-semi-space-size=64 \
 *   tests/support/guest_bulk_child.ts CTL HOST SECONDS [reverse]
 * ```
 *
 * @module
 */

import { runClient } from "../../guest/nkperf/client.ts";
import { client, closeAll, nkNet } from "../../guest/guestlib/mod.ts";

const [ctl, host, seconds, direction] = Deno.args as [string, string, string, string?];
const reverse = direction === "reverse";
const gc = (globalThis as unknown as { gc: () => void }).gc;
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const test = runClient({
  host,
  time: Number(seconds),
  reverse,
  intervalSec: 0,
  net: nkNet({ ctl }),
});
test.catch(() => {}); // awaited below
await delay(1000);
const nk = await client(ctl);
gc();
console.log(`MARK0 ${performance.now()}`);
const h0 = Deno.memoryUsage().heapUsed;
const t0 = nk.traffic();
await delay(1500);
const h1 = Deno.memoryUsage().heapUsed;
const t1 = nk.traffic();
console.log(`MARK1 ${performance.now()}`);
await test;
await closeAll();
const chunks = reverse ? t1.recvChunks - t0.recvChunks : t1.sendChunks - t0.sendChunks;
console.log(JSON.stringify({
  chunks,
  bytesPerChunk: (h1 - h0) / Math.max(1, chunks),
  sleeps: t1.pumpSleeps - t0.pumpSleeps,
  threadSleeps: t1.pumpThreadSleeps - t0.pumpThreadSleeps,
}));
