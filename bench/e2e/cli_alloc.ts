/**
 * Allocation sites of the NSM program itself (`nsm/cli.ts`'s `main`, as `deno task nsm` runs it:
 * control server, services, the runtime's idle hook) during a bulk transfer, in this process:
 * the CLI serves a veth lab's NSM end, an nkperf guest sends to (or with `--reverse` receives
 * from) the peer's iperf3, and V8's sampling heap profiler (dead objects included) runs over
 * the guest's run after `--skip` seconds. Prints bytes per frame by site (inner `--sample`
 * frames). bench/e2e/nsm_alloc.ts builds the same pieces by hand; this one catches what only
 * the program adds.
 *
 * ```text
 * sudo deno run -A --unstable-net --v8-flags=--min-semi-space-size=32 bench/e2e/cli_alloc.ts
 *   [--seconds 6] [--skip 2] [--sample 3] [--top 30] [--reverse] [-- CLI FLAGS...]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { main } from "../../nsm/cli.ts";
import { guestRunSummary } from "./lab_nsm.ts";
import {
  formatHeapSites,
  type HeapSampler,
  startHeapSampling,
  stopHeapSampling,
} from "../heap_sample.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "6" },
    skip: { type: "string", default: "2" },
    sample: { type: "string", default: "3" },
    top: { type: "string", default: "30" },
    reverse: { type: "boolean", default: false },
  },
});

/** Counters of the lab's NSM end from sysfs (the CLI owns the link object). */
async function packets(ifname: string, dir: "rx" | "tx"): Promise<number> {
  return Number(await Deno.readTextFile(`/sys/class/net/${ifname}/statistics/${dir}_packets`));
}

const lab = await Lab.up({ offloads: "off" });
const dir = await Deno.makeTempDir({ prefix: "cli-alloc-" });
const ctl = `${dir}/ctl.sock`;
let served: Promise<number> | null = null;
try {
  served = main([
    ...["--link", `xdp:${lab.nsmIf}`, "--ip", `${lab.nsmV4}/24`, "--ctl", ctl],
    ...positionals,
  ]);
  for (let i = 0; i < 300; i++) {
    if (await Deno.stat(ctl).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const srv = lab.spawnPeer(["iperf3", "-s", "-1", "-B", lab.peerV4]);
  await new Promise((r) => setTimeout(r, 1000));
  const guest = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", `${ROOT}guest/guestlib/nkperf.ts`, "--ctl", ctl, "-c", lab.peerV4],
      ...["-i", "0", "-t", values.seconds, ...(values.reverse ? ["-R"] : [])],
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await new Promise((r) => setTimeout(r, Number(values.skip) * 1000));
  // veth counts the NSM end's frames: what we send is its tx, what the peer sends its rx.
  const dirn = values.reverse ? "rx" : "tx";
  const f0 = await packets(lab.nsmIf, dirn);
  const sampler: HeapSampler = startHeapSampling(64);
  const t0 = performance.now();
  const out = await guest.output();
  const t1 = performance.now();
  const frames = (await packets(lab.nsmIf, dirn)) - f0;
  const sites = await stopHeapSampling(sampler, Number(values.sample));
  console.log(formatHeapSites(sites, Number(values.top), frames));
  console.log(guestRunSummary(out.stdout, frames, values.reverse, t1 - t0));
  await srv.status;
} finally {
  // The CLI stops on SIGTERM (its own handler), then returns from main().
  if (served !== null) {
    Deno.kill(Deno.pid, "SIGTERM");
    await served.catch(() => 1);
  }
  await lab.down();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
