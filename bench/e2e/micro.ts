/**
 * The NQE-path targets of issue 8, measured side by side (see README.md here):
 *
 * 1. the NQE queue set between two processes (bench/nk_two_process.ts phase A, both sides
 *    spinning) against a C SPSC ring with the same 64-byte elements (bench/c/spsc_ring.c,
 *    compiled here with gcc or clang into a temporary directory), as a ratio. Both on equal
 *    terms: producer and consumer pinned to CPUs 0 and 1, both under `nice -n -20` when run as
 *    root (on a shared machine a preempted spinning side stalls the other for a time slice),
 *    `RING_RUNS` C runs alternating with one phase-A run of `RING_RUNS` timed rounds, 3 times
 *    (2 with --quick); best and median of all runs or rounds of each. Phase A's first round
 *    (V8's JIT warm-up included) is reported apart, as `nqe_ring_cold_rounds`;
 * 2. no-op socket operations through ServiceLib, pipelined (bench/servicelib_two_process.ts A),
 *    and the raw NOP round trip on the rings alone (nk_two_process C, D);
 * 3. wake-up from idle (nk_two_process E, F);
 * 4. garbage collections in the NSM (our stack on AF_XDP) and in the nkperf guest over a bulk
 *    transfer of `--gc-seconds` (default 10; V8 `--trace-gc` lines counted by kind).
 *
 * ```text
 * sudo deno run -A --unstable-net bench/e2e/micro.ts [--quick] [--json FILE] [--gc-seconds S]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { gcNsmRun } from "./gc_nsm.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

async function sh(cmd: string[], ms = 120_000): Promise<string> {
  const p = new Deno.Command(cmd[0]!, { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .spawn();
  const t = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const o = await p.output();
  clearTimeout(t);
  const s = dec.decode(o.stdout) + dec.decode(o.stderr);
  if (o.code !== 0) throw new Error(`${cmd.join(" ")}: exit ${o.code}\n${s.slice(0, 600)}`);
  return s;
}

function num1(re: RegExp, s: string): string {
  const m = re.exec(s);
  if (m === null) throw new Error(`no ${re} in:\n${s}`);
  return m[1]!.trim();
}

function num(re: RegExp, s: string): number {
  const m = re.exec(s);
  if (m === null) throw new Error(`no ${re} in:\n${s}`);
  return Number(m[1]);
}

/** Runs of each ring; the NQE ring's are warm rounds after one cold round. */
const RING_RUNS = 5;
/** Priority prefix for both rings' processes (root only: raising priority needs it). */
const PRIO = Deno.uid() === 0 ? ["nice", "-n", "-20"] : [];

interface RingResult {
  /** C ring, M elements/s: best and median over all its runs. */
  c: number;
  cMedian: number;
  /** NQE ring (phase A), M elements/s: best and median over all warm rounds; cold rounds. */
  nqe: number;
  nqeMedian: number;
  nqeCold: number[];
  compiler: string;
}

/**
 * Builds the C ring, then alternates `pairs` times: `RING_RUNS` C runs, one phase-A run of
 * `RING_RUNS` warm rounds. Alternating spreads a shared machine's bursts of load over both.
 */
async function rings(n: number, scale: number, pairs: number): Promise<RingResult> {
  const dir = await Deno.makeTempDir({ prefix: "spsc-" });
  try {
    const bin = `${dir}/spsc_ring`;
    let compiler = "";
    for (const cc of ["gcc", "clang"]) {
      try {
        await sh([cc, "-O2", "-o", bin, `${ROOT}bench/c/spsc_ring.c`]);
        compiler = (await sh([cc, "--version"])).split("\n")[0]!;
        break;
      } catch { /* try the next */ }
    }
    if (compiler === "") throw new Error("neither gcc nor clang could build bench/c/spsc_ring.c");
    const c: number[] = [];
    const nqe: number[] = [];
    const nqeCold: number[] = [];
    for (let p = 0; p < pairs; p++) {
      for (let i = 0; i < RING_RUNS; i++) {
        const out = await sh([...PRIO, bin, String(n), "0", "1"]);
        if (!/ok=1/.test(out)) throw new Error(`C ring failed its check: ${out}`);
        c.push(num(/mops=([\d.]+)/, out));
      }
      const out = await sh([
        ...PRIO,
        ...[Deno.execPath(), "run", "-A", `${ROOT}bench/nk_two_process.ts`, String(scale)],
        ...["--spin", "--pin", "--only-a", "--rounds", String(RING_RUNS), "--list"],
      ], 300_000);
      if (!/ok=true/.test(out)) throw new Error(`NQE ring failed its check: ${out}`);
      nqe.push(...num1(/rounds: ([\d. ]+)/, out).split(" ").map(Number));
      nqeCold.push(num(/cold first round ([\d.]+)/, out));
    }
    c.sort((a, b) => a - b);
    nqe.sort((a, b) => a - b);
    return {
      c: c.at(-1)!,
      cMedian: c[c.length >> 1]!,
      nqe: nqe.at(-1)!,
      nqeMedian: nqe[nqe.length >> 1]!,
      nqeCold,
      compiler,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Our NSM on AF_XDP with --trace-gc; nkperf (also traced) sends for `seconds` (gc_nsm.ts). */
async function gcRun(seconds: number): Promise<Record<string, unknown>> {
  const r = await gcNsmRun(seconds, { traceGuest: true });
  return {
    seconds,
    gbps: r.gbps,
    nsm: { scavenge: r.scavenges, markCompact: r.markCompacts, other: r.otherGcs },
    nsmWholeRun: r.nsmWholeRun,
    guest: r.guest,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "string" },
      "gc-seconds": { type: "string" },
      "no-gc": { type: "boolean", default: false },
    },
  });
  const quick = values.quick;
  const scale = quick ? 0.2 : 1;
  const out: Record<string, unknown> = {};

  const r = await rings(Math.round(20_000_000 * scale), scale, quick ? 2 : 3);
  const nk = await sh([
    ...[Deno.execPath(), "run", "-A", `${ROOT}bench/nk_two_process.ts`, String(scale), "--spin"],
    ...["--rounds", "1"],
  ], 300_000);
  const nkSleep = await sh([
    ...[Deno.execPath(), "run", "-A", `${ROOT}bench/nk_two_process.ts`, String(scale / 4)],
  ], 300_000);
  out.queue = {
    unit: "M elements/s",
    c_spsc: r.c,
    nqe_ring: r.nqe,
    ratio: Number((r.nqe / r.c).toFixed(3)),
    c_spsc_median: r.cMedian,
    nqe_ring_median: r.nqeMedian,
    ratio_of_medians: Number((r.nqeMedian / r.cMedian).toFixed(3)),
    nqe_ring_cold_rounds: r.nqeCold,
    nqe_encoded: num(/B encoded [^\n]*?([\d.]+) M NQE\/s/, nk),
    compiler: r.compiler,
  };
  const sl = await sh([
    ...[Deno.execPath(), "run", "-A", `${ROOT}bench/servicelib_two_process.ts`, "10"],
  ], 120_000);
  out.nop = {
    unit: "M ops/s",
    servicelib_pipelined: num(/A\. pipelined NOP: ([\d.]+) M/, sl),
    rings_only_pipelined: num(/C NOP round trip pipelined[^\n]*?([\d.]+) M ops/, nk),
    servicelib_rtt_median_us: num(/B\. NOP round trip: median ([\d.]+) us/, sl),
    rings_pingpong_us: num(/D NOP ping-pong[^\n]*\(([\d.]+) us each\)/, nk),
  };
  out.wake = {
    unit: "us",
    nsm_spins_median: num(/E wake-up[^\n]*median ([\d.]+) us/, nkSleep),
    nsm_spins_p90: num(/E wake-up[^\n]*p90 ([\d.]+) us/, nkSleep),
    both_sleep_median: num(/F wake-up[^\n]*median ([\d.]+) us/, nkSleep),
    both_sleep_p90: num(/F wake-up[^\n]*p90 ([\d.]+) us/, nkSleep),
  };
  if (!values["no-gc"]) {
    out.gc = await gcRun(Number(values["gc-seconds"] ?? (quick ? 3 : 10)));
  }
  console.log(JSON.stringify(out, null, 2));
  if (values.json !== undefined) await Deno.writeTextFile(values.json, JSON.stringify(out) + "\n");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
