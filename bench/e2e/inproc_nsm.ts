/**
 * Our NSM built in this process (as tests/nsm_guest_veth_test.ts does) on a veth lab, an
 * nkperf guest pushing to the peer's iperf3 for `--seconds`, then the XdpLink's and the loop's
 * counters (kicks per frame, frames per flush) that the NSM command does not print.
 *
 * ```text
 * sudo deno run -A bench/e2e/inproc_nsm.ts [--seconds 4] [-R] [--coalesce] [--half-window]
 *                                          [--tx-budget N] [--max-kicks N]
 *                                          [--kick inline|thread|auto] [--kick-spin-us N]
 *                                          [--attach auto|skb|native]
 * ```
 *
 * `--tx-budget`, `--max-kicks`, `--kick`, `--kick-spin-us` are XdpLinkOptions.txBudget,
 * maxKicksPerFlush, txKick, txKickSpinUs (for A/B runs; unset = the link's defaults).
 * `--attach native` attaches the XDP program as `deno task nsm` does on veth (the default
 * "auto" is generic/skb on veth, which earlier inproc numbers used).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { XdpLink } from "../../xdp/xdp_link.ts";
import { NsmRuntime } from "../../nsm/runtime.ts";
import type { Doorbell } from "../../nsm/wake.ts";
import { ServiceLib } from "../../nsm/service_lib.ts";
import { createTcpipHost } from "../../nsm/stack_host.ts";
import { monotonicNow } from "../../stacks/time.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** CPU ms (user + system, all threads: the NSM loop and the kick thread) of this process. */
function processCpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 (utime, stime) in clock ticks of 10 ms; f[0] is field 3.
  return (Number(f[11]) + Number(f[12])) * 10;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "4" },
    R: { type: "boolean", short: "R", default: false },
    coalesce: { type: "boolean", default: false },
    "half-window": { type: "boolean", default: false },
    rr: { type: "string" },
    "spin-us": { type: "string" },
    "tx-budget": { type: "string" },
    "max-kicks": { type: "string" },
    kick: { type: "string" },
    "kick-spin-us": { type: "string" },
    attach: { type: "string" },
  },
});
const lab = await Lab.up({ offloads: "off" });
const dir = await Deno.makeTempDir({ prefix: "inproc-nsm-" });
const link = XdpLink.open({
  ifname: lab.nsmIf,
  ...(values["tx-budget"] === undefined ? {} : { txBudget: Number(values["tx-budget"]) }),
  ...(values["max-kicks"] === undefined ? {} : { maxKicksPerFlush: Number(values["max-kicks"]) }),
  ...(values.kick === undefined ? {} : { txKick: values.kick as "inline" | "thread" | "auto" }),
  ...(values.attach === undefined
    ? {}
    : { attachMode: values.attach as "auto" | "skb" | "native" }),
  ...(values["kick-spin-us"] === undefined ? {} : { txKickSpinUs: Number(values["kick-spin-us"]) }),
});
console.log(`txBudget ${link.txBudget} txKick ${link.txKick} attach ${link.attachMode}`);
try {
  const tcp: Record<string, unknown> = {};
  if (values.coalesce) tcp.ackCoalescing = true;
  if (values["half-window"]) tcp.windowUpdateOnRead = "half-window";
  const host = createTcpipHost(link, { ipv4: "198.18.0.1/24", tcp });
  const sl = new ServiceLib(host.backend, { ctlPath: `${dir}/ctl.sock` });
  await sl.listen();
  const rt = new NsmRuntime(
    sl.wrapLink(link),
    host.iface,
    values["spin-us"] !== undefined ? { spinNs: Number(values["spin-us"]) * 1000 } : {},
  );
  rt.add(sl);
  const done = rt.run();
  const srv = values.rr !== undefined
    ? lab.spawnPeer([Deno.execPath(), "run", "-A", `${ROOT}bench/e2e/rr.ts`, "server"])
    : lab.spawnPeer(["iperf3", "-s", "-1", "-B", lab.peerV4]);
  await new Promise((r) => setTimeout(r, 1000));
  const s0 = structuredClone(link.stats());
  const cpu0 = processCpuMs();
  // The doorbell bytes the NSM wrote to wake the guest (sampled: a bell is gone after detach).
  const wakes = new Map<Doorbell, number>();
  const sampleWakes = (): void => {
    const bells: Doorbell[] = [];
    sl.liveBells(bells);
    for (const b of bells) wakes.set(b, b.wakesSent);
  };
  const sampler = setInterval(sampleWakes, 50);
  const client = values.rr !== undefined
    ? [`${ROOT}bench/e2e/rr.ts`, "client", "--net", "nk", "--ctl", sl.ctlPath, "--size", values.rr]
    : [`${ROOT}guest/guestlib/nkperf.ts`, "--ctl", sl.ctlPath, "-c", lab.peerV4, "-i", "0"];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...client, "-t", values.seconds, ...(values.R ? ["-R"] : [])]
      .map((a) => values.rr !== undefined && a === "-t" ? "--seconds" : a),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const cpuMs = processCpuMs() - cpu0;
  clearInterval(sampler);
  sampleWakes();
  let guestWakes = 0;
  for (const w of wakes.values()) guestWakes += w;
  const s1 = link.stats() as unknown as Record<string, number>;
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(s0)) if (typeof v === "number") d[k] = s1[k]! - v;
  console.log(
    new TextDecoder().decode(out.stdout).split("\n").filter((l) => /receiver|perSecond/.test(l))
      .join("\n"),
  );
  console.log(JSON.stringify(d));
  console.log(JSON.stringify({ ...rt.stats, guestWakes }));
  const frames = d.txPackets! + d.rxPackets!;
  console.log(
    `nsm cpu ${cpuMs} ms (this process: NSM loop + kick thread), ` +
      `${(cpuMs * 1000 / frames).toFixed(2)} us per frame (tx + rx ${frames})`,
  );
  if (Deno.env.get("E2E_DEBUG")) console.log(JSON.stringify(host.tcp.counters));
  if (values.rr !== undefined) srv.kill("SIGKILL");
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
