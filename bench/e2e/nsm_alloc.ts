/**
 * Allocation sites and GCs of our NSM during a bulk send, in this process: the NSM (XdpLink +
 * stack + ServiceLib + NsmRuntime, as bench/e2e/inproc_nsm.ts builds it) on a veth lab, an
 * nkperf guest pushing to the peer's iperf3 for `--seconds` (`--reverse`: the peer sends, -R). With `--sample D` V8's sampling
 * heap profiler (dead objects included) runs over the guest's run and prints bytes per
 * transmitted frame by site (inner `D` frames); without it, run under
 * `--v8-flags=--trace-gc` and count the lines.
 *
 * ```text
 * sudo deno run -A [--v8-flags=--no-turbo-inlining] bench/e2e/nsm_alloc.ts [--seconds 5]
 *   [--skip 2] [--sample 3] [--spin-yield on|off] [--reverse] [--windows N]
 * ```
 *
 * `--windows N`: instead of one sample over the run, N windows of 0.5 s, each printed with the
 * connection's sequence numbers (RCV.NXT receiving, SND.UNA sending, in units of 2^30) and the
 * bytes sampled per frame with the top sites (inner `--sample` frames, default 1): what the
 * data path allocates can depend on where the stream is in the sequence space (a number above
 * 2^31 crossing a call that is not inlined is a heap number), and a transfer crosses 2^31
 * every few seconds.
 *
 * Optimized code attributes inlined callees' allocations to the outer function;
 * `--no-turbo-inlining` shows the inner sites (and over-counts boxed numbers that inlining
 * would have avoided).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { XdpLink } from "../../xdp/xdp_link.ts";
import { NsmRuntime } from "../../nsm/runtime.ts";
import { ServiceLib } from "../../nsm/service_lib.ts";
import { createTcpipHost } from "../../nsm/stack_host.ts";
import { monotonicNow } from "../../stacks/time.ts";
import { guestRunSummary } from "./lab_nsm.ts";
import { libc } from "../../stacks/sys/libc.ts";
import type { TcpStack } from "../../stacks/tcpip/tcp/stack.ts";
import type { Tcb } from "../../stacks/tcpip/tcp/tcb.ts";
import {
  formatHeapSites,
  type HeapSampler,
  startHeapSampling,
  stopHeapSampling,
} from "../heap_sample.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "3" },
    skip: { type: "string", default: "2" },
    sample: { type: "string", default: "0" },
    top: { type: "string", default: "40" },
    "spin-yield": { type: "string", default: "on" },
    reverse: { type: "boolean", default: false },
    windows: { type: "string", default: "0" },
  },
});
/** The connection that moved the most bytes (the transfer's; iperf3's control is small). */
function bulkTcb(tcp: TcpStack): Tcb | null {
  let best: Tcb | null = null;
  for (let id = 1; id < 65_536; id++) {
    const t = tcp.tcbOf(id);
    if (t === null) continue;
    if (best === null || t.bytesReceived + t.bytesSent > best.bytesReceived + best.bytesSent) {
      best = t;
    }
  }
  return best;
}

const lab = await Lab.up({ offloads: "off" });
const dir = await Deno.makeTempDir({ prefix: "nsm-alloc-" });
const link = XdpLink.open({ ifname: lab.nsmIf });
try {
  const host = createTcpipHost(link, { ipv4: "198.18.0.1/24", tcp: { ackCoalescing: true } });
  const sl = new ServiceLib(host.backend, { ctlPath: `${dir}/ctl.sock` });
  await sl.listen();
  // As nsm/cli.ts runs it: sched_yield(2) on every empty spinning pass (--spin-yield on).
  const sys = libc();
  const rt = new NsmRuntime(sl.wrapLink(link), host.iface, {
    ...(values["spin-yield"] === "on" ? { idle: () => void sys.sched_yield() } : {}),
  });
  rt.add(sl);
  const done = rt.run();
  const srv = lab.spawnPeer(["iperf3", "-s", "-1", "-B", lab.peerV4]);
  await new Promise((r) => setTimeout(r, 1000));
  const guest = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", `${ROOT}guest/guestlib/nkperf.ts`, "--ctl", sl.ctlPath, "-c", lab.peerV4],
      ...["-i", "0", "-t", values.seconds, ...(values.reverse ? ["-R"] : [])],
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Skip `--skip` seconds of the run (connection set-up, slow start, JIT) and, by default,
  // the moment the process's Instants pass 2^31 ns (~2.15 s after start): fields that held
  // small-integer times change representation then and the code using them deoptimizes once,
  // which is a start-up cost, not the steady state this measures.
  await new Promise((r) => setTimeout(r, Number(values.skip) * 1000));
  const tx0 = values.reverse ? link.stats().rxPackets : link.stats().txPackets;
  /** One sample over the guest's whole run (the default). */
  const sampleRun = async (): Promise<void> => {
    const depth = Number(values.sample);
    let sampler: HeapSampler | null = null;
    if (depth > 0) sampler = startHeapSampling(64);
    const t0 = performance.now();
    console.error(`@@mark start ${Math.round(t0)}`);
    const out = await guest.output();
    const t1 = performance.now();
    console.error(`@@mark end ${Math.round(t1)}`);
    const frames = (values.reverse ? link.stats().rxPackets : link.stats().txPackets) - tx0;
    if (sampler !== null) {
      console.log(
        formatHeapSites(await stopHeapSampling(sampler, depth), Number(values.top), frames),
      );
    }
    console.log(guestRunSummary(out.stdout, frames, values.reverse, t1 - t0));
  };
  const windows = Number(values.windows);
  if (windows > 0) {
    const frames = (): number => values.reverse ? link.stats().rxPackets : link.stats().txPackets;
    const pending = guest.output();
    for (let w = 0; w < windows; w++) {
      const tcb = bulkTcb(host.tcp);
      const seq = (): number =>
        tcb === null ? NaN : ((values.reverse ? tcb.rcvNxt : tcb.sndUna) >>> 0) / 2 ** 30;
      const s0 = seq(), f0 = frames();
      const s = startHeapSampling(64);
      await new Promise((r) => setTimeout(r, 500));
      const sites = await stopHeapSampling(s, Number(values.sample) || 1);
      const n = Math.max(1, frames() - f0);
      let all = 0;
      for (const b of sites.values()) all += b;
      const top = [...sites].sort((a, b) => b[1] - a[1]).slice(0, 3)
        .map(([k, b]) => `${(b / n).toFixed(2)} ${k}`).join(" | ");
      console.log(
        `window ${w}: seq ${s0.toFixed(2)} -> ${seq().toFixed(2)} x 2^30, ${n} frames, ` +
          `${(all / n).toFixed(2)} B/frame: ${top}`,
      );
    }
    await pending;
  } else {
    await sampleRun();
  }
  await srv.status;
  rt.stop();
  await done;
  sl.close(monotonicNow());
  host.iface.poll(monotonicNow());
} finally {
  link.close();
  await lab.down();
  await Deno.remove(dir, { recursive: true });
}
