/**
 * The NSM command (`nsm/cli.ts`'s `main`) with V8's sampling heap profiler over a window of its
 * run, for bench/e2e/gc_nsm.ts `--sample`: where the process an operator runs, in a namespace
 * of its own, allocates. `$NK_HEAP_SAMPLE` = `FROM,TO,FILE[,DEPTH]`: sampling runs from FROM to
 * TO seconds after start (or until the CLI returns), then the sites (inner DEPTH frames,
 * default 4), in bytes per second sampled, go to FILE. Arguments are the CLI's.
 *
 * @module
 */

import { main } from "../../nsm/cli.ts";
import {
  formatHeapSites,
  type HeapSampler,
  startHeapSampling,
  stopHeapSampling,
} from "../heap_sample.ts";

const [from, to, file, depth] = (Deno.env.get("NK_HEAP_SAMPLE") ?? "").split(",");
if (file === undefined || !(Number(to) > Number(from))) {
  throw new Error("NK_HEAP_SAMPLE=FROM,TO,FILE[,DEPTH] (seconds after start, output file)");
}
let sampler: HeapSampler | null = null;
let startedAt = 0;

async function finish(): Promise<void> {
  const s = sampler;
  if (s === null) return;
  sampler = null;
  const secs = (performance.now() - startedAt) / 1000;
  const sites = await stopHeapSampling(s, Number(depth ?? 4));
  await Deno.writeTextFile(
    file!,
    `over ${secs.toFixed(1)} s: ${formatHeapSites(sites, 30, secs)}\n`,
  );
}

const startTimer = setTimeout(() => {
  startedAt = performance.now();
  sampler = startHeapSampling(128);
  setTimeout(finish, (Number(to) - Number(from)) * 1000);
}, Number(from) * 1000);
const code = await main(Deno.args);
clearTimeout(startTimer);
await finish();
Deno.exit(code);
