/**
 * Presentation of an `ExperimentResult`: the table `deno task sim` prints, the stable JSON
 * text `--json` writes, and the SVG `--plot` draws (throughput, cwnd and bottleneck queue over
 * time, one line per flow).
 *
 * @module
 */

import type { ExperimentResult } from "./experiment.ts";
import { renderPlot } from "./plot.ts";
import type { PlotSeries } from "./plot.ts";
import { formatRate } from "./units.ts";

function pct(x: number): string {
  return `${Number((x * 100).toPrecision(4))}%`;
}

function ms(x: number): string {
  return `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
}

/** One line naming the setup, e.g. "20.0 Mbit/s, RTT 20 ms, queue 100 pkts, 2 s, seed 1". */
export function describeSetup(r: ExperimentResult): string {
  const rtts = [...new Set(r.flows.map((f) => f.base_rtt_ms))];
  const parts = [
    formatRate(r.link.rate_bps),
    rtts.length > 1 ? `RTT ${rtts.join("/")} ms` : `RTT ${r.link.rtt_ms} ms`,
    `queue ${r.link.queue_packets} pkts`,
  ];
  const p = r.params;
  if (p.loss > 0) parts.push(`loss ${pct(p.loss)}`);
  if (p.reorder > 0) parts.push(`reorder ${pct(p.reorder)} (+${p.reorder_delay_ms} ms)`);
  if (p.duplicate > 0) parts.push(`duplicate ${pct(p.duplicate)}`);
  if (p.corrupt > 0) parts.push(`corrupt ${pct(p.corrupt)}`);
  if (p.ecn_k !== null) parts.push(`ECN K=${p.ecn_k}`);
  if (p.stagger_s > 0) parts.push(`flows ${p.stagger_s} s apart`);
  if (p.pacing) parts.push("paced");
  parts.push(`${r.duration_s} s`, `seed ${r.seed}`);
  return parts.join(", ");
}

function pad(
  cells: readonly string[],
  widths: readonly number[],
  right: ReadonlySet<number>,
): string {
  return cells.map((c, i) => right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))
    .join("  ").trimEnd();
}

/** The human-readable summary: one row per flow, then the link and fairness. */
export function formatTable(r: ExperimentResult): string {
  const staggered = r.flows.some((f) => f.start_s > 0);
  const rtts = new Set(r.flows.map((f) => f.base_rtt_ms)).size > 1;
  const cols: [string, (f: ExperimentResult["flows"][number]) => string, boolean][] = [
    ["flow", (f) => String(f.id), false],
    ["cc", (f) => f.cc, false],
  ];
  if (staggered) cols.push(["start", (f) => `${f.start_s} s`, true]);
  if (rtts) cols.push(["base RTT", (f) => `${f.base_rtt_ms} ms`, true]);
  cols.push(
    ["goodput", (f) => formatRate(f.goodput_bps), true],
    ["retx", (f) => String(f.retransmits), true],
    ["RTT p50", (f) => ms(f.rtt_ms.p50), true],
    ["RTT p99", (f) => ms(f.rtt_ms.p99), true],
    ["cwnd max", (f) => f.cwnd_max_segments.toFixed(1), true],
    ["verified", (f) => f.verified ? "yes" : `NO${f.error === null ? "" : ` (${f.error})`}`, false],
  );
  const head = cols.map((c) => c[0]);
  const rows = r.flows.map((f) => cols.map((c) => c[1](f)));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  // The last column is free text; do not pad it.
  widths[widths.length - 1] = 0;
  const right = new Set(cols.flatMap((c, i) => (c[2] ? [i] : [])));
  const l = r.link;
  const lines = [
    `deno task sim: ${describeSetup(r)}`,
    "",
    pad(head, widths, right),
    ...rows.map((row) => pad(row, widths, right)),
    "",
    `link: utilization ${pct(l.utilization)}, queue delay p50 ${ms(l.queue_delay_ms.p50)} / ` +
    `p99 ${ms(l.queue_delay_ms.p99)}, max queue ${l.queue_max_packets} pkts`,
    `      dropped ${l.dropped} (buffer ${l.dropped_queue}, random ${l.dropped_loss}), ` +
    `marked ${l.marked}` +
    (l.corrupted + l.duplicated + l.reordered > 0
      ? `, corrupted ${l.corrupted}, duplicated ${l.duplicated}, reordered ${l.reordered}`
      : ""),
    `Jain's fairness index (goodput): ${r.jain.toFixed(4)} over ${r.flows.length} flow` +
    (r.flows.length === 1 ? "" : "s"),
  ];
  return lines.join("\n") + "\n";
}

/** JSON text: 2-space indentation, arrays of numbers on one line; same result, same bytes. */
export function toJson(r: ExperimentResult): string {
  const write = (v: unknown, indent: string): string => {
    if (Array.isArray(v)) {
      if (v.every((x) => typeof x !== "object" || x === null)) {
        return `[${v.map((x) => JSON.stringify(x)).join(", ")}]`;
      }
      const inner = indent + "  ";
      return `[\n${v.map((x) => inner + write(x, inner)).join(",\n")}\n${indent}]`;
    }
    if (v !== null && typeof v === "object") {
      const inner = indent + "  ";
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) return "{}";
      return `{\n${
        entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${write(x, inner)}`).join(",\n")
      }\n${indent}}`;
    }
    return JSON.stringify(v);
  };
  return write(r, "") + "\n";
}

/**
 * Samples in the trailing throughput average of the plot: about four worst-case RTTs (base RTT
 * plus a full buffer), so the per-round clumping of an ACK-clocked flow does not alias with
 * the sampling interval; at most a tenth of the run.
 */
export function smoothingSamples(r: ExperimentResult): number {
  const l = r.link;
  const maxRtt = l.rtt_ms / 1000 + (l.queue_packets * 1514 * 8) / l.rate_bps;
  const dt = r.series.interval_s;
  const k = Math.ceil((4 * maxRtt) / dt);
  return Math.max(1, Math.min(k, Math.floor(r.series.t_s.length / 10)));
}

/** Trailing mean over `k` samples (fewer at the start). */
function trailingMean(v: readonly number[], k: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    sum += v[i]!;
    if (i >= k) sum -= v[i - k]!;
    out.push(sum / Math.min(i + 1, k));
  }
  return out;
}

/** Above this many flows the plot draws one line per algorithm instead of one per flow. */
export const MAX_PLOTTED_FLOWS = 8;

/** The plot: throughput and cwnd per flow, and the bottleneck queue, over virtual time. */
export function renderSvg(r: ExperimentResult): string {
  const t = r.series.t_s;
  const k = smoothingSamples(r);
  let throughput: PlotSeries[];
  let cwnd: PlotSeries[];
  if (r.flows.length <= MAX_PLOTTED_FLOWS) {
    const label = (i: number): string => `flow ${i}: ${r.flows[i]!.cc}`;
    throughput = r.flows.map((f, i) => ({
      name: label(i),
      t,
      v: trailingMean(f.series.throughput_bps, k).map((x) => x / 1e6),
    }));
    cwnd = r.flows.map((f, i) => ({ name: label(i), t, v: f.series.cwnd_segments }));
  } else {
    // Too many lines to tell apart: one line per algorithm (total goodput, mean cwnd).
    const groups = new Map<string, ExperimentResult["flows"]>();
    for (const f of r.flows) groups.set(f.cc, [...(groups.get(f.cc) ?? []), f]);
    throughput = [];
    cwnd = [];
    for (const [cc, fs] of groups) {
      const sum = t.map((_, j) => fs.reduce((a, f) => a + f.series.throughput_bps[j]!, 0));
      const mean = t.map((_, j) =>
        fs.reduce((a, f) => a + f.series.cwnd_segments[j]!, 0) / fs.length
      );
      throughput.push({
        name: `${fs.length}x ${cc}, sum`,
        t,
        v: trailingMean(sum, k).map((x) => x / 1e6),
      });
      cwnd.push({ name: `${fs.length}x ${cc}, mean`, t, v: mean });
    }
  }
  const names = r.flows.map((f) => f.cc);
  const title = `${r.flows.length} flow${r.flows.length === 1 ? "" : "s"} (${
    summarizeNames(names)
  }): ${describeSetup(r)}`;
  const window = Number((k * r.series.interval_s * 1000).toPrecision(6));
  return renderPlot({
    title,
    xlabel: `time (s), samples every ${r.series.interval_s * 1000} ms`,
    width: Math.max(900, Math.min(1400, title.length * 8)),
    panels: [
      {
        ylabel: k === 1 ? "goodput (Mbit/s)" : `goodput (Mbit/s, ${window} ms mean)`,
        series: throughput,
      },
      { ylabel: "cwnd (segments)", series: cwnd },
      {
        ylabel: "bottleneck queue (packets)",
        series: [{ name: "queue", t, v: r.series.queue_packets }],
      },
    ],
  });
}

/** "reno, 2x cubic" style summary of flow names in first-seen order. */
function summarizeNames(names: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c === 1 ? n : `${c}x ${n}`)).join(", ");
}
