/**
 * What `deno task demo` prints and draws, shared by its two stories (the live lab through the
 * NSM, and the simulated network): one interval line per sample (throughput, cwnd, RTT,
 * retransmits, congestion control in use), a progress indicator, a summary per algorithm, and
 * an SVG of throughput, cwnd and RTT over time with the live swaps marked.
 *
 * @module
 */

import { renderPlot } from "./plot.ts";

/** One interval of the transfer. */
export interface DemoSample {
  /** End of the interval, seconds since the transfer started. */
  readonly t: number;
  /** Goodput over the interval (bytes acknowledged), Mbit/s. */
  readonly mbps: number;
  /** Congestion window at the end of the interval, bytes. */
  readonly cwndBytes: number;
  /** Smoothed RTT, ms (null before a sample). */
  readonly rttMs: number | null;
  /** Retransmitted segments in the interval. */
  readonly retransmits: number;
  /** Congestion control in use at the end of the interval. */
  readonly cc: string;
}

/** A live congestion-control swap. */
export interface DemoSwap {
  /** When, seconds since the transfer started. */
  readonly t: number;
  /** The algorithm before. */
  readonly from: string;
  /** The algorithm after. */
  readonly to: string;
}

/** Per-algorithm averages over the samples taken while it was in use. */
export interface DemoPhase {
  /** Algorithm. */
  readonly cc: string;
  /** Seconds it ran. */
  readonly seconds: number;
  /** Mean goodput, Mbit/s. */
  readonly mbps: number;
  /** Mean cwnd, bytes. */
  readonly cwndBytes: number;
  /** Mean smoothed RTT, ms (null without samples). */
  readonly rttMs: number | null;
  /** Retransmitted segments. */
  readonly retransmits: number;
}

/** One line from consecutive finer samples: mean throughput, last cwnd/RTT/cc, summed retransmits. */
export function secondOf(fine: readonly DemoSample[]): DemoSample {
  const last = fine[fine.length - 1]!;
  let mb = 0, retr = 0;
  for (const s of fine) {
    mb += s.mbps;
    retr += s.retransmits;
  }
  return { ...last, mbps: mb / fine.length, retransmits: retr };
}

/** Human size: 1.23 MB, 456 KB, 789 B (decimal units, like iperf3's rates). */
export function fmtBytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${Math.round(n)} B`;
}

/** Column header matching `formatSample`. */
export const SAMPLE_HEADER = "  time   cc        throughput       cwnd        rtt   retr";

/** One interval line. */
export function formatSample(s: DemoSample): string {
  const rtt = s.rttMs === null ? "-" : `${s.rttMs.toFixed(2)} ms`;
  return `${s.t.toFixed(1).padStart(5)} s  ${s.cc.padEnd(6)} ${
    s.mbps.toFixed(1).padStart(9)
  } Mbit/s ${fmtBytes(s.cwndBytes).padStart(10)} ${rtt.padStart(10)} ${
    String(s.retransmits).padStart(6)
  }`;
}

/** A one-line progress indicator (for a terminal; redraw with "\r"). */
export function progressBar(t: number, total: number, width = 30): string {
  const f = total > 0 ? Math.max(0, Math.min(1, t / total)) : 1;
  const done = Math.round(f * width);
  return `[${"#".repeat(done)}${".".repeat(width - done)}] ${t.toFixed(0)}/${total.toFixed(0)} s`;
}

/** Averages per algorithm, in the order they ran. */
export function phases(samples: readonly DemoSample[]): DemoPhase[] {
  const out: DemoPhase[] = [];
  let i = 0;
  let prevT = 0;
  while (i < samples.length) {
    const cc = samples[i]!.cc;
    let j = i, mb = 0, cw = 0, rtt = 0, rttN = 0, retr = 0, secs = 0;
    for (; j < samples.length && samples[j]!.cc === cc; j++) {
      const s = samples[j]!;
      const dt = s.t - prevT;
      prevT = s.t;
      secs += dt;
      mb += s.mbps * dt;
      cw += s.cwndBytes;
      if (s.rttMs !== null) {
        rtt += s.rttMs;
        rttN++;
      }
      retr += s.retransmits;
    }
    const n = j - i;
    out.push({
      cc,
      seconds: secs,
      mbps: secs > 0 ? mb / secs : 0,
      cwndBytes: cw / n,
      rttMs: rttN > 0 ? rtt / rttN : null,
      retransmits: retr,
    });
    i = j;
  }
  return out;
}

/** Summary lines: one per algorithm plus the total. */
export function summaryLines(samples: readonly DemoSample[], totalBytes: number): string[] {
  const lines = ["summary:"];
  for (const p of phases(samples)) {
    lines.push(
      `  ${p.cc.padEnd(6)} ${p.seconds.toFixed(1).padStart(5)} s  ${
        p.mbps.toFixed(1).padStart(8)
      } Mbit/s average  cwnd ${fmtBytes(p.cwndBytes).padStart(9)}  rtt ${
        p.rttMs === null ? "-" : `${p.rttMs.toFixed(2)} ms`
      }  ${p.retransmits} retransmits`,
    );
  }
  const secs = samples.length > 0 ? samples[samples.length - 1]!.t : 0;
  lines.push(
    `  total  ${fmtBytes(totalBytes)} in ${secs.toFixed(1)} s = ${
      secs > 0 ? (totalBytes * 8 / secs / 1e6).toFixed(1) : "0"
    } Mbit/s, one connection, never dropped`,
  );
  return lines;
}

/**
 * The SVG: throughput, cwnd and RTT panels over time, one colour per algorithm (each line
 * starts where the previous one ended, so the run reads as one curve changing colour), and a
 * dashed marker at every swap.
 */
export function demoPlot(
  samples: readonly DemoSample[],
  swaps: readonly DemoSwap[],
  title: string,
): string {
  const order: string[] = [];
  for (const s of samples) if (!order.includes(s.cc)) order.push(s.cc);
  const series = (pick: (s: DemoSample) => number): { name: string; t: number[]; v: number[] }[] =>
    order.map((cc) => {
      const t: number[] = [], v: number[] = [];
      samples.forEach((s, i) => {
        // The first sample of the next algorithm joins the line (no gap at the swap).
        const joins = s.cc !== cc && i > 0 && samples[i - 1]!.cc === cc;
        if (s.cc === cc || joins) {
          t.push(s.t);
          v.push(pick(s));
        }
      });
      return { name: cc, t, v };
    });
  const cwndMb = samples.some((s) => s.cwndBytes >= 2e6);
  return renderPlot({
    title,
    xlabel: "time since the transfer started (s)",
    panels: [
      { ylabel: "throughput (Mbit/s)", series: series((s) => s.mbps) },
      cwndMb
        ? { ylabel: "cwnd (MB)", series: series((s) => s.cwndBytes / 1e6) }
        : { ylabel: "cwnd (KB)", series: series((s) => s.cwndBytes / 1000) },
      { ylabel: "smoothed RTT (ms)", series: series((s) => s.rttMs ?? NaN) },
    ],
    markers: swaps.map((w) => ({ t: w.t, label: `swap to ${w.to}` })),
  });
}
