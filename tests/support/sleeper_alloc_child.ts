/**
 * Child of nsm/sleeper_test.ts: JS-heap bytes per sleep of a `Sleeper` hop (sleep(0) and its
 * onWake), against a promise-based hop (a zero timer, what any await-based wait costs at
 * least), in a process started with --expose-gc and a young generation large enough that no
 * GC runs inside a measured interval. Prints one JSON line.
 *
 * @module
 */

import { Sleeper } from "../../nsm/sleeper.ts";

const N = 20_000;
const gc = (globalThis as unknown as { gc: () => void }).gc;

function heap(): number {
  return Deno.memoryUsage().heapUsed;
}

let left = 0;
let done: () => void = () => {};
const sleeper = await Sleeper.start(() => {
  if (--left > 0) sleeper.sleep(0);
  else done();
});
sleeper.setFds([]);

async function sleeperHops(n: number): Promise<void> {
  left = n;
  const end = new Promise<void>((r) => done = r);
  sleeper.sleep(0);
  await end;
}

async function timerHops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

await sleeperHops(2_000); // warm-up: JIT, the worker's first sleeps
await timerHops(200);
gc();
let h0 = heap();
await sleeperHops(N);
const sleeperBytes = (heap() - h0) / N;
gc();
h0 = heap();
await timerHops(2_000);
const timerBytes = (heap() - h0) / 2_000;
await sleeper.close();
console.log(JSON.stringify({ sleeperBytes, timerBytes, sleeps: sleeper.sleeps }));
