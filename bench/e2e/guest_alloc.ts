/**
 * Allocation sites and GCs of the GUEST during a bulk transfer: the NSM (`nsm/cli.ts --link
 * xdp:IF`) runs as a child process in a veth lab's namespace (bench/e2e/lab_nsm.ts), the nkperf
 * client runs in this process over GuestLib (`runClient` with `nkNet`) against the peer's
 * iperf3 for `--seconds`; `--reverse` makes the peer send (nkperf -R) so the guest's receive
 * path runs instead of its send path. The other way round from bench/e2e/nsm_alloc.ts.
 *
 * ```text
 * sudo deno run -A --unstable-net [--v8-flags=--no-turbo-inlining] bench/e2e/guest_alloc.ts
 *   [--seconds 5] [--skip 2] [--sample 3] [--top 30] [--reverse]
 * sudo deno run -A --unstable-net bench/e2e/guest_alloc.ts --gc [--seconds 10] [--reverse]
 *   [--guest-v8-flags=...]
 * ```
 *
 * Sampling (default): after `--skip` seconds of the test (connection set-up, slow start, JIT,
 * the Instants passing 2^31 ns), V8's sampling heap profiler (objects that died young
 * included) runs to the end of the test; prints the sampled bytes by site (innermost
 * `--sample` frames) per data chunk and per MB the guest sent (or received with `--reverse`),
 * counted by `NkClient.traffic()`, then the pump's turns, doorbell waits and sleeps per chunk
 * (a sleep through Deno's socket read allocates ~1.2 KB, one on the sleeper thread nothing).
 * Sampling is statistical: sites below ~1 B per chunk are noise.
 *
 * `--gc`: no sampling; the guest runs as the nkperf command (`guest/guestlib/nkperf.ts`) under
 * `--trace-gc` with the V8 flags of `deno task nkperf` (`--guest-v8-flags=` for V8's
 * defaults), and the tool prints the scavenges and mark-compacts of all its threads over the
 * whole run and after `--skip` seconds of process time, with nkperf's sender and receiver
 * lines.
 *
 * The lab, the NSM and iperf3 are removed on every exit path (errors, SIGINT, SIGTERM).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { LabNsm } from "./lab_nsm.ts";
import { guestFlags } from "./gc_nsm.ts";
import { runClient } from "../../guest/nkperf/client.ts";
import { client, closeAll, nkNet, type NkTraffic } from "../../guest/guestlib/mod.ts";
import { type HeapSampler, startHeapSampling, stopHeapSampling } from "../heap_sample.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

/** GC lines of a `--trace-gc` log, by kind, over all of it and from `fromMs` on. */
export interface GuestGcCounts {
  /** Scavenges (young-generation GCs) in the whole log. */
  scavenges: number;
  /** Mark-compacts in the whole log. */
  markCompacts: number;
  /** Scavenges stamped at or after `fromMs`. */
  scavengesAfter: number;
  /** Mark-compacts stamped at or after `fromMs`. */
  markCompactsAfter: number;
}

/** Counts the GC lines of V8's `--trace-gc` output `text` (stamps: ms since start). */
export function countTraceGc(text: string, fromMs: number): GuestGcCounts {
  const c = { scavenges: 0, markCompacts: 0, scavengesAfter: 0, markCompactsAfter: 0 };
  for (const l of text.split("\n")) {
    const m = /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: /.exec(l);
    if (m === null) continue;
    const late = Number(m[1]) >= fromMs;
    if (/Scavenge|Minor/.test(l)) {
      c.scavenges++;
      if (late) c.scavengesAfter++;
    } else if (/Mark-Compact|Mark-sweep/i.test(l)) {
      c.markCompacts++;
      if (late) c.markCompactsAfter++;
    }
  }
  return c;
}

/** Sampled sites as rows of bytes per chunk and per MB, largest first. */
export function formatSites(
  sites: Map<string, number>,
  top: number,
  chunks: number,
  bytes: number,
): string {
  let total = 0;
  for (const v of sites.values()) total += v;
  const mb = bytes / 1e6;
  const perChunk = (v: number): string => (chunks > 0 ? v / chunks : 0).toFixed(1);
  const perMb = (v: number): string => (mb > 0 ? v / mb : 0).toFixed(0);
  const lines = [
    `sampled ${total} B over ${chunks} chunks (${mb.toFixed(1)} MB): ` +
    `${perChunk(total)} B per chunk, ${perMb(total)} B per MB`,
    `${"B/chunk".padStart(8)} ${"B/MB".padStart(8)}  site (innermost first)`,
  ];
  const rows = [...sites].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, v] of rows) lines.push(`${perChunk(v).padStart(8)} ${perMb(v).padStart(8)}  ${k}`);
  return lines.join("\n");
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Everything one run started, for cleanup on any exit path. */
interface Running {
  lab: Lab | null;
  dir: string | null;
  nsm: LabNsm | null;
  kids: Deno.ChildProcess[];
}

async function cleanup(r: Running): Promise<void> {
  await closeAll().catch(() => {});
  await r.nsm?.kill();
  for (const k of r.kids.splice(0)) {
    try {
      k.kill("SIGKILL");
    } catch { /* gone */ }
    await k.status.catch(() => {});
  }
  await r.lab?.down();
  if (r.dir !== null) await Deno.remove(r.dir, { recursive: true }).catch(() => {});
}

function trafficOf(t: NkTraffic, reverse: boolean): { chunks: number; bytes: number } {
  return reverse
    ? { chunks: t.recvChunks, bytes: t.recvBytes }
    : { chunks: t.sendChunks, bytes: t.sendBytes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "5" },
      skip: { type: "string", default: "2" },
      sample: { type: "string", default: "3" },
      top: { type: "string", default: "30" },
      reverse: { type: "boolean", default: false },
      gc: { type: "boolean", default: false },
      "guest-v8-flags": { type: "string" },
    },
  });
  const seconds = Number(values.seconds);
  const skipMs = Number(values.skip) * 1000;
  const reverse = values.reverse;
  if (!(seconds > 0 && seconds <= 120)) throw new RangeError("--seconds must be in (0, 120]");
  if (!(skipMs >= 0 && skipMs < seconds * 1000)) {
    throw new RangeError("--skip must be >= 0 and shorter than --seconds");
  }
  const r: Running = { lab: null, dir: null, nsm: null, kids: [] };
  let exiting = false;
  const onSignal = (): void => {
    if (exiting) return;
    exiting = true;
    cleanup(r).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    r.lab = await Lab.up({ offloads: "off", nsmNamespace: true });
    const lab = r.lab;
    r.dir = await Deno.makeTempDir({ prefix: "guest-alloc-" });
    const ctl = `${r.dir}/ctl.sock`;
    r.kids.push(lab.spawnPeer(["iperf3", "-s", "-1", "-B", lab.peerV4]));
    r.nsm = await LabNsm.start(lab, { ctl, stderr: "null" });
    await delay(300); // iperf3 -s binds
    const what = reverse ? "received (-R)" : "sent";
    if (values.gc) {
      const guest = new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", ...guestFlags(values["guest-v8-flags"], true)],
          `${ROOT}guest/guestlib/nkperf.ts`,
          ...["--ctl", ctl, "-c", lab.peerV4, "-i", "0", "-t", String(seconds)],
          ...(reverse ? ["-R"] : []),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      r.kids.push(guest);
      const out = await guest.output();
      if (!out.success) throw new Error(`nkperf failed: ${dec.decode(out.stderr)}`);
      const text = dec.decode(out.stdout);
      const c = countTraceGc(text, skipMs);
      const summary = text.split("\n").filter((l) => /(sender|receiver)$/.test(l)).join("\n");
      console.log(summary);
      console.log(
        `guest ${what} for ${seconds} s: ${c.scavenges} scavenges, ${c.markCompacts} ` +
          `mark-compacts in all; ${c.scavengesAfter} scavenges, ${c.markCompactsAfter} ` +
          `mark-compacts after ${values.skip} s of process time`,
      );
      return;
    }
    const test = runClient({
      host: lab.peerV4,
      time: seconds,
      reverse,
      intervalSec: 0,
      net: nkNet({ ctl }),
    });
    test.catch(() => {}); // awaited below
    await delay(skipMs);
    const nk = await client(ctl);
    const depth = Number(values.sample);
    const t0 = trafficOf(nk.traffic(), reverse);
    const p0 = nk.traffic();
    let sampler: HeapSampler | null = null;
    if (depth > 0) sampler = startHeapSampling(64);
    const started = performance.now();
    const report = await test;
    const t1 = trafficOf(nk.traffic(), reverse);
    const p1 = nk.traffic();
    const sites = sampler !== null ? await stopHeapSampling(sampler, depth) : null;
    const secs = (performance.now() - started) / 1000;
    const chunks = t1.chunks - t0.chunks, bytes = t1.bytes - t0.bytes;
    if (sites !== null) console.log(formatSites(sites, Number(values.top), chunks, bytes));
    const end = report.end as { sum_received?: { bytes?: number } } | undefined;
    console.log(
      `guest ${what} ${chunks} chunks, ${(bytes / 1e6).toFixed(1)} MB in ${secs.toFixed(2)} s ` +
        `of sampling (${((end?.sum_received?.bytes ?? 0) / 1e6).toFixed(0)} MB in the test)`,
    );
    const per = (a: number, b: number): string => (chunks > 0 ? (b - a) / chunks : 0).toFixed(3);
    console.log(
      `per chunk: ${per(p0.pumpTurns, p1.pumpTurns)} pump turns, ` +
        `${per(p0.pumpWaits, p1.pumpWaits)} doorbell waits, ` +
        `${per(p0.pumpSleeps, p1.pumpSleeps)} sleeps (${
          per(p0.pumpThreadSleeps, p1.pumpThreadSleeps)
        } on the sleeper thread)`,
    );
  } finally {
    if (!exiting) {
      exiting = true;
      await cleanup(r);
    }
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) await main();
