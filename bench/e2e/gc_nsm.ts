/**
 * Garbage collections of the NSM process (`nsm/cli.ts --link xdp:IF`, the command an operator
 * runs, under `--trace-gc`) while an nkperf guest pushes a bulk transfer through it to the
 * peer's iperf3 for `--seconds`: the same measurement as bench/e2e/micro.ts's "NSM GCs during
 * the bulk transfer", without the ring and NOP benchmarks before it, repeated `--runs` times.
 *
 * ```text
 * sudo deno run -A --unstable-net bench/e2e/gc_nsm.ts [--seconds 10] [--runs 1] [--json]
 *   [--nsm-v8-flags=--max-semi-space-size=16,...] [--guest-v8-flags=...] [--trace-guest]
 *   [--reverse] [--warmup S] [--show-gc] [--sample]
 * ```
 *
 * The guest (nkperf on GuestLib) runs with the V8 flags of `deno task nkperf`
 * (`GUEST_V8_FLAGS`, a 16 MB young generation); `--guest-v8-flags=` runs it with V8's defaults.
 * `--warmup S`: the guest runs S seconds longer and the first S are not counted (the steady
 * state, without startup and JIT garbage). `--show-gc`: the counted window's GC lines.
 * `--sample`: the NSM's allocation sites over that window, in bytes per second, from V8's
 * sampling heap profiler in the NSM process itself (bench/e2e/nsm_sample_child.ts).
 *
 * `--reverse`: the guest receives (nkperf -R, the peer's iperf3 sends). Prints per run: Gbit/s
 * (iperf3's receiver), scavenges and mark-compacts of the NSM within the
 * guest's run, scavenges per Gbit sent, and the main-thread pause time of those GCs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { LabNsm } from "./lab_nsm.ts";
import { GUEST_V8_FLAGS } from "../../guest/guestlib/heap.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

/** One run's result. */
export interface GcNsmResult {
  /** Seconds the guest sent. */
  seconds: number;
  /** iperf3 receiver rate. */
  gbps: number;
  /** NSM scavenges (young-generation GCs) within the guest's run. */
  scavenges: number;
  /** NSM mark-compacts within the guest's run. */
  markCompacts: number;
  /** Other NSM GC lines within the guest's run. */
  otherGcs: number;
  /** Main-thread pause of those GCs, ms. */
  pauseMs: number;
  /** Scavenges per Gbit sent. */
  scavengesPerGbit: number;
  /** Seconds into the guest's run at which each scavenge started. */
  scavengeAt: number[];
  /** With `traceGuest`: the NSM's GCs over its whole life (start-up included). */
  nsmWholeRun?: GcCounts;
  /** With `traceGuest`: the nkperf guest's main-thread GCs over its whole run. */
  guest?: GcCounts;
  /**
   * With `traceGuest`: the guest's main-thread GCs in its last `seconds` (+0.3 s for the
   * results exchange), i.e. after the warm-up, by its own clock.
   */
  guestCounted?: GcCounts;
  /** With `traceGuest`: GCs of the guest's helper threads (the sleeper), whole run. */
  guestHelpers?: GcCounts;
  /** NSM helper threads' GCs (the kick thread), whole run; they pause only that thread. */
  nsmHelpers: GcCounts;
}

/** GC lines of one process by kind. */
export interface GcCounts {
  scavenge: number;
  markCompact: number;
  other: number;
}

/**
 * Counts `--trace-gc` lines stamped within [fromMs, toMs] of the isolate's start, of the main
 * isolate (`which` "main": the one whose GC line comes first, as the main thread's isolate
 * starts and collects before any worker exists) or of the others ("helpers": the AF_XDP kick
 * thread, the sleeper thread; their pauses stop only their own thread, and their stamps count
 * from their own start).
 */
function countGcs(
  text: string,
  fromMs = 0,
  toMs = Infinity,
  which: "main" | "helpers" = "main",
): {
  scavenges: number;
  markCompacts: number;
  others: number;
  pauseMs: number;
  scavengeAt: number[];
} {
  let scavenges = 0, markCompacts = 0, others = 0, pauseMs = 0;
  const scavengeAt: number[] = [];
  let main: string | null = null;
  for (const l of text.split("\n")) {
    const m = /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: /.exec(l);
    if (m === null) continue;
    const isolate = m[1]!, ms = Number(m[2]);
    main ??= isolate;
    if ((isolate === main) !== (which === "main")) continue;
    if (ms < fromMs || ms > toMs) continue;
    const p = / ([0-9.]+) \/ [0-9.]+ ms/.exec(l);
    if (p !== null) pauseMs += Number(p[1]);
    if (/Scavenge|Minor/.test(l)) {
      scavenges++;
      scavengeAt.push(Number(((ms - fromMs) / 1000).toFixed(2)));
    } else if (/Mark-Compact|Mark-sweep/i.test(l)) markCompacts++;
    else others++;
  }
  return { scavenges, markCompacts, others, pauseMs, scavengeAt };
}

/**
 * `deno run` arguments of a guest: its V8 flags (a comma-separated list; default those of
 * `deno task nkperf`, `GUEST_V8_FLAGS`; "" for V8's defaults) and, with `trace`, --trace-gc.
 */
export function guestFlags(flags: string | undefined, trace: boolean): string[] {
  const list = [
    ...(flags ?? GUEST_V8_FLAGS.slice("--v8-flags=".length)).split(","),
    ...(trace ? ["--trace-gc"] : []),
  ].filter((f) => f !== "");
  return list.length > 0 ? [`--v8-flags=${list.join(",")}`] : [];
}

function kinds(c: ReturnType<typeof countGcs>): GcCounts {
  return { scavenge: c.scavenges, markCompact: c.markCompacts, other: c.others };
}

/**
 * One NSM + guest + iperf3 run on a fresh veth lab. `traceGuest`: the guest runs under
 * `--trace-gc` too, and the result carries its counts and the NSM's over its whole life.
 */
export async function gcNsmRun(
  seconds: number,
  options: {
    traceGuest?: boolean;
    nsmV8Flags?: string;
    /**
     * The guest's V8 flags (a comma-separated list); default those of `deno task nkperf`
     * (`GUEST_V8_FLAGS`), "" for V8's defaults.
     */
    guestV8Flags?: string;
    reverse?: boolean;
    /** Seconds of the guest's run before the counted window (JIT and startup garbage). */
    warmup?: number;
    /** Prints the NSM's `--trace-gc` lines of the counted window on stderr. */
    showGc?: boolean;
    /**
     * Samples the NSM's allocations over the counted window (bench/e2e/nsm_sample_child.ts)
     * and prints the sites in bytes per second on stderr.
     */
    sample?: boolean;
  } = {},
): Promise<GcNsmResult> {
  const lab = await Lab.up({ offloads: "off", nsmNamespace: true });
  const dir = await Deno.makeTempDir({ prefix: "gc-nsm-" });
  const kids: Deno.ChildProcess[] = [];
  let running: LabNsm | null = null;
  try {
    const iperf = lab.spawnPeer(["iperf3", "-s", "-1", "-J", "-B", lab.peerV4]);
    kids.push(iperf);
    const ctl = `${dir}/ctl.sock`;
    const sampleFile = `${dir}/sites.txt`;
    if (options.sample) {
      // The guest starts ~1 s after the NSM: the window is the counted part, 0.5 s inside.
      const from = 1.5 + (options.warmup ?? 0);
      Deno.env.set("NK_HEAP_SAMPLE", `${from},${from + seconds - 1},${sampleFile}`);
    }
    const nsm = await LabNsm.start(lab, {
      ctl,
      denoFlags: [`--v8-flags=--trace-gc${options.nsmV8Flags ? `,${options.nsmV8Flags}` : ""}`],
      stderr: "null",
      ...(options.sample ? { script: `${ROOT}bench/e2e/nsm_sample_child.ts` } : {}),
    });
    Deno.env.delete("NK_HEAP_SAMPLE");
    running = nsm;
    const spawned = nsm.spawnedAt;
    // --trace-gc stamps are ms since the NSM's start (~ our spawn time).
    const from = performance.now() - spawned + (options.warmup ?? 0) * 1000;
    const guestStart = performance.now();
    const guest = await new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "-A", ...guestFlags(options.guestV8Flags, options.traceGuest === true)],
        ...[`${ROOT}guest/guestlib/nkperf.ts`, "--ctl", ctl, "-c", lab.peerV4],
        ...["-i", "0", "-t", String(seconds + (options.warmup ?? 0))],
        ...(options.reverse ? ["-R"] : []),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const to = performance.now() - spawned;
    const guestWall = performance.now() - guestStart;
    if (!guest.success) throw new Error(`nkperf failed: ${dec.decode(guest.stderr)}`);
    const json = JSON.parse(dec.decode((await iperf.output()).stdout));
    const out = await nsm.stop();
    if (options.sample) {
      console.error(await Deno.readTextFile(sampleFile).catch(() => "(no sample written)"));
    }
    const g = countGcs(out, from, to);
    if (options.showGc) {
      for (const l of out.split("\n")) {
        const m = /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: /.exec(l);
        if (m !== null && Number(m[1]) >= from && Number(m[1]) <= to) console.error(l);
      }
    }
    // With -R the peer sends: its iperf3 reports what it sent (its receive sum is empty).
    const sum = options.reverse ? json.end.sum_sent : json.end.sum_received;
    const gbps = sum.bits_per_second / 1e9;
    return {
      seconds,
      gbps: Number(gbps.toFixed(3)),
      scavenges: g.scavenges,
      markCompacts: g.markCompacts,
      otherGcs: g.others,
      pauseMs: Number(g.pauseMs.toFixed(1)),
      scavengesPerGbit: Number((g.scavenges / (gbps * seconds)).toFixed(3)),
      scavengeAt: g.scavengeAt,
      nsmHelpers: kinds(countGcs(out, 0, Infinity, "helpers")),
      ...(options.traceGuest
        ? {
          nsmWholeRun: kinds(countGcs(out)),
          // --trace-gc writes into the guest's stdout (the rate came from the iperf3 server).
          guest: kinds(countGcs(dec.decode(guest.stdout))),
          guestCounted: kinds(
            countGcs(dec.decode(guest.stdout), guestWall - 1000 * seconds - 300, guestWall),
          ),
          guestHelpers: kinds(countGcs(dec.decode(guest.stdout), 0, Infinity, "helpers")),
        }
        : {}),
    };
  } finally {
    await running?.kill();
    for (const k of kids) {
      try {
        k.kill("SIGKILL");
      } catch { /* gone */ }
      await k.status.catch(() => {});
    }
    await lab.down();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "10" },
      runs: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      "nsm-v8-flags": { type: "string", default: "" },
      "guest-v8-flags": { type: "string" },
      "trace-guest": { type: "boolean", default: false },
      reverse: { type: "boolean", default: false },
      warmup: { type: "string", default: "0" },
      "show-gc": { type: "boolean", default: false },
      sample: { type: "boolean", default: false },
    },
  });
  for (let i = 0; i < Number(values.runs); i++) {
    const r = await gcNsmRun(Number(values.seconds), {
      nsmV8Flags: values["nsm-v8-flags"],
      ...(values["guest-v8-flags"] !== undefined ? { guestV8Flags: values["guest-v8-flags"] } : {}),
      traceGuest: values["trace-guest"],
      reverse: values.reverse,
      warmup: Number(values.warmup),
      showGc: values["show-gc"],
      sample: values.sample,
    });
    if (values.json) console.log(JSON.stringify(r));
    else {
      console.log(
        `${r.seconds} s at ${r.gbps} Gbit/s: ${r.scavenges} scavenges, ${r.markCompacts} ` +
          `mark-compacts (${r.pauseMs} ms of pauses), ${r.scavengesPerGbit} scavenges per Gbit; ` +
          `scavenges at ${r.scavengeAt.join(" ")} s` +
          `; NSM helper threads (whole run): ${JSON.stringify(r.nsmHelpers)}` +
          (r.guest
            ? `; guest main thread: ${JSON.stringify(r.guestCounted)} counted, ${
              JSON.stringify(r.guest)
            } whole run; guest helpers: ${JSON.stringify(r.guestHelpers)}`
            : ""),
      );
    }
  }
}
