/**
 * Garbage collections and allocation on the steady-state TCP data path.
 *
 * A bulk transfer between two TcpStacks over the zero-allocation link of bench/steady_pair.ts
 * (1 Gbit/s, 50 µs one way, default 256 KiB buffers, timestamps and SACK on): after a warm-up
 * (connection set up, windows open, JIT warm), it runs `--seconds` virtual seconds and counts
 * the garbage collections V8 reports (`--trace-gc` lines between two `gc()` marks), then measures
 * heap bytes allocated per data segment over a window with no GC in it.
 *
 *     deno run -A bench/gc_steady.ts [--seconds 10] [--json] [--half-window] [--coalesce]
 *                                    [--poll-us N] [--seed N] [--delay-ns N] [--v8 FLAGS]
 *                                    [--drop-every N]
 *
 * Allocation sites per data segment (V8's sampling heap profiler, inner `D` frames per site):
 *
 *     deno run -A [--v8-flags=--no-turbo-inlining] bench/gc_steady.ts --child --seconds 2 \
 *       --heap-sample D
 *
 * `--seed N` picks the stacks' random sources (and so the sequence numbers' range),
 * `--delay-ns N` the one-way delay, `--v8 FLAGS` more V8 flags for the child (e.g.
 * `--max-inlined-bytecode-size=80`, to see what a call boundary that the NSM's larger
 * functions do not inline would box). `--half-window` sets
 * `TcpConfig.windowUpdateOnRead: "half-window"` on both stacks (no window-update ACK after
 * every read: one ACK per two segments); `--coalesce` sets
 * `ackCoalescing: true` (one ACK per receive batch); `--poll-us N` polls the link every N µs
 * (batches, like interrupt moderation) instead of at every arrival.
 *
 * `--drop-every N` loses every N-th data segment on the way to the receiver (SACK recovery
 * all along: the loss path's allocation).
 *
 * The parent re-runs this file as a child with the V8 flags it needs (`--trace-gc`,
 * `--expose-gc`) and parses the child's output; `--json` prints one JSON object:
 * `{ seconds, segments, acks, lost, wallMs, nsPerSegment,
 *    gcs: { scavenge, markCompact, other, pauseMs }, bytesPerSegment, rcvNxtStart }`.
 * tests/tcp_gc_steady_test.ts uses it.
 *
 * @module
 */

import process from "node:process";
import { SECOND } from "../stacks/time.ts";
import { SteadyPair } from "./steady_pair.ts";
import { formatHeapSites, startHeapSampling, stopHeapSampling } from "./heap_sample.ts";

/** What one run measured. */
export interface GcSteadyResult {
  /** Virtual seconds of steady transfer counted. */
  seconds: number;
  /** Data segments A -> B in the counted interval. */
  segments: number;
  /** Segments B -> A (ACKs) in the counted interval. */
  acks: number;
  /** Wall time of the counted interval. */
  wallMs: number;
  /** The receiver's RCV.NXT (unsigned) when the counted interval began. */
  rcvNxtStart: number;
  /** Wall ns per data segment (both stacks' work, ACKs included). */
  nsPerSegment: number;
  /** CPU time of the process in the counted interval (all threads). */
  cpuMs: number;
  /** CPU ns per data segment (steadier than `nsPerSegment` under load). */
  cpuNsPerSegment: number;
  /** Garbage collections in the counted interval, by kind. */
  gcs: { scavenge: number; markCompact: number; other: number; pauseMs: number };
  /** Heap bytes allocated per data segment (window without GC), or -1 when not measured. */
  bytesPerSegment: number;
  /** Mean packets per poll that received any (over the whole run). */
  batch: number;
  /** Data segments the link lost in the counted interval (`dropEvery`). */
  lost: number;
}

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1]! : fallback;
}

/** Child: warm up, then the counted interval between markers, then the allocation window. */
async function child(seconds: number, opts: SteadyOptions): Promise<void> {
  const p = new SteadyPair({
    config: {
      windowUpdateOnRead: opts.halfWindow ? "half-window" : "every-mss",
      ackCoalescing: opts.coalesce,
    },
    pollInterval: opts.pollUs * 1000,
    seed: opts.seed ?? 1,
    delay: opts.delayNs ?? 50_000,
    dropEvery: opts.dropEvery ?? 0,
  });
  p.runUntil(2 * SECOND); // handshake, slow start, JIT warm-up
  if (p.server < 0 || p.received === 0) throw new Error("the transfer did not start");
  const sampleDepth = Number(arg("--heap-sample", "0"));
  if (sampleDepth > 0) {
    // Allocation sites instead of the GC count (run the child directly, see the module doc).
    const s = startHeapSampling(64);
    const seg0 = p.ab.packets;
    p.runUntil(p.now + seconds * SECOND);
    console.log(formatHeapSites(await stopHeapSampling(s, sampleDepth), 40, p.ab.packets - seg0));
    return;
  }
  // The receiver's RCV.NXT as the counted interval starts (the seed decides its range).
  const rcvNxtStart = p.b.tcbOf(p.server)!.rcvNxt >>> 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  // V8 prints --trace-gc lines through its own buffered stdout, so console.log markers do not
  // stay in order with them; explicit gc() calls (reason "testing") mark the interval instead.
  gc?.();
  const seg0 = p.ab.packets, ack0 = p.ba.packets, lost0 = p.ab.lost;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  p.runUntil(p.now + seconds * SECOND);
  const wall = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  // CPU time of the process (all threads; GC helpers included): steadier than the wall time
  // on a shared machine, where the thread is descheduled.
  const cpuMs = (c1.user + c1.system) / 1000;
  gc?.();
  const segments = p.ab.packets - seg0, acks = p.ba.packets - ack0, lost = p.ab.lost - lost0;
  let bytesPerSegment = -1;
  if (gc !== undefined) {
    // Short windows (about 400 segments) right after a full GC; a window that saw a scavenge
    // (the heap shrank) is discarded; the median of the rest is reported.
    const ok: number[] = [];
    for (let k = 0; k < 21; k++) {
      gc();
      const s0 = p.ab.packets;
      const h0 = Deno.memoryUsage().heapUsed;
      p.runUntil(p.now + SECOND / 200);
      const h1 = Deno.memoryUsage().heapUsed;
      const n = p.ab.packets - s0;
      if (h1 >= h0 && n > 0) ok.push((h1 - h0) / n);
    }
    ok.sort((x, y) => x - y);
    if (ok.length > 0) bytesPerSegment = ok[ok.length >> 1]!;
  }
  const sent = p.sent, got = p.received;
  if (got > sent || p.a.lastInternalError !== null || p.b.lastInternalError !== null) {
    throw new Error("transfer inconsistent or an internal error was recorded");
  }
  // stderr: V8's trace lines share stdout and are not line-synchronized with console.log.
  const batch = p.batches > 0 ? p.batched / p.batches : 0;
  console.error(
    "@@result " +
      JSON.stringify({
        seconds,
        segments,
        acks,
        wallMs: wall,
        cpuMs,
        bytesPerSegment,
        batch,
        rcvNxtStart,
        lost,
      }),
  );
}

/** Runs the measurement in a child Deno with the V8 flags it needs. */
/** Variants of the steady transfer (see the flags in the module doc). */
export interface SteadyOptions {
  /** `windowUpdateOnRead: "half-window"`. */
  halfWindow: boolean;
  /** `ackCoalescing: true`. */
  coalesce: boolean;
  /** Poll interval of the link in µs (0: every arrival on its own). */
  pollUs: number;
  /** `SteadyPairOptions.seed` (default 1). */
  seed?: number;
  /** One-way delay in ns (default 50,000). */
  delayNs?: number;
  /** `SteadyPairOptions.dropEvery`: lose every N-th data segment (default 0: none). */
  dropEvery?: number;
  /** More V8 flags for the child (e.g. `--max-inlined-bytecode-size=80`). */
  v8Flags?: string;
}

/** The default variant: RFC window updates, no coalescing, every arrival polled. */
export const DEFAULT_STEADY: SteadyOptions = { halfWindow: false, coalesce: false, pollUs: 0 };

export async function measureGcSteady(
  seconds: number,
  opts: SteadyOptions = DEFAULT_STEADY,
): Promise<GcSteadyResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `--v8-flags=--trace-gc,--expose-gc${opts.v8Flags ? `,${opts.v8Flags}` : ""}`,
      new URL(import.meta.url).pathname,
      "--child",
      "--seconds",
      String(seconds),
      ...(opts.halfWindow ? ["--half-window"] : []),
      ...(opts.coalesce ? ["--coalesce"] : []),
      "--poll-us",
      String(opts.pollUs),
      ...["--seed", String(opts.seed ?? 1), "--delay-ns", String(opts.delayNs ?? 50_000)],
      ...["--drop-every", String(opts.dropEvery ?? 0)],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`gc_steady child failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const lines = text.split("\n").filter((l) => /^\[\d+:0x[0-9a-f]+\]/.test(l));
  const res = new TextDecoder().decode(out.stderr).split("\n").find((l) =>
    l.startsWith("@@result ")
  );
  const b = lines.findIndex((l) => l.includes("testing"));
  const e = lines.findIndex((l, i) => i > b && l.includes("testing"));
  if (b < 0 || e < b || res === undefined) throw new Error(`unexpected child output:\n${text}`);
  const gcs = { scavenge: 0, markCompact: 0, other: 0, pauseMs: 0 };
  for (const l of lines.slice(b + 1, e)) {
    // "... MB, pooled: 0.0 MB, 0.27 / 0.00 ms ...": the main-thread pause comes first.
    const m = / ([0-9.]+) \/ [0-9.]+ ms/.exec(l);
    if (m !== null) gcs.pauseMs += Number(m[1]);
    if (l.includes("Scavenge")) gcs.scavenge++;
    else if (l.includes("Mark-Compact") || l.includes("Mark-sweep")) gcs.markCompact++;
    else gcs.other++;
  }
  const r = JSON.parse(res.slice("@@result ".length)) as Omit<GcSteadyResult, "gcs">;
  return {
    ...r,
    gcs,
    nsPerSegment: (r.wallMs * 1e6) / r.segments,
    cpuNsPerSegment: (r.cpuMs * 1e6) / r.segments,
  };
}

if (import.meta.main) {
  const seconds = Number(arg("--seconds", "10"));
  const opts: SteadyOptions = {
    halfWindow: Deno.args.includes("--half-window"),
    coalesce: Deno.args.includes("--coalesce"),
    pollUs: Number(arg("--poll-us", "0")),
    seed: Number(arg("--seed", "1")),
    delayNs: Number(arg("--delay-ns", "50000")),
    dropEvery: Number(arg("--drop-every", "0")),
    v8Flags: arg("--v8", ""),
  };
  if (Deno.args.includes("--child")) {
    await child(seconds, opts);
  } else {
    const r = await measureGcSteady(seconds, opts);
    if (Deno.args.includes("--json")) console.log(JSON.stringify(r));
    else {
      console.log(
        `${r.seconds} virtual s of 1 Gbit/s bulk between two stacks: ${r.segments} data segments, ` +
          `${r.acks} ACKs, ${r.wallMs.toFixed(0)} ms wall (${r.nsPerSegment.toFixed(0)} ns per ` +
          `data segment, both ends; CPU ${
            r.cpuNsPerSegment.toFixed(0)
          } ns)\nGCs: ${r.gcs.scavenge} scavenges, ${r.gcs.markCompact} ` +
          `mark-compacts, ${r.gcs.other} other; ${
            r.gcs.pauseMs.toFixed(1)
          } ms of pauses\nheap allocated per data segment: ${
            r.bytesPerSegment < 0 ? "n/a" : r.bytesPerSegment.toFixed(1) + " B"
          }; mean receive batch ${r.batch.toFixed(1)} packets`,
      );
    }
  }
}
