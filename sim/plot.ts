/**
 * A dependency-free SVG line chart: stacked panels sharing one time axis, one line per series,
 * optional vertical markers (events such as a congestion-control swap). Used by `deno task sim`
 * and the demo so that a plot reads without explanation: titled panels, labelled axes with
 * units, a legend, and nice tick values.
 *
 * @module
 */

/** One line. */
export interface PlotSeries {
  /** Legend label. */
  readonly name: string;
  /** X values (seconds), ascending. */
  readonly t: readonly number[];
  /** Y values, same length as `t`. */
  readonly v: readonly number[];
}

/** One panel (one y axis). */
export interface PlotPanel {
  /** Y-axis label with its unit, e.g. "cwnd (segments)". */
  readonly ylabel: string;
  /** Lines drawn in this panel. */
  readonly series: readonly PlotSeries[];
}

/** A vertical marker across every panel. */
export interface PlotMarker {
  /** X position (seconds). */
  readonly t: number;
  /** Label shown at the top. */
  readonly label: string;
}

/** What to draw. */
export interface PlotSpec {
  /** Title above the panels. */
  readonly title: string;
  /** X-axis label, e.g. "time (s)". */
  readonly xlabel: string;
  /** Panels from top to bottom. */
  readonly panels: readonly PlotPanel[];
  /** Vertical markers. */
  readonly markers?: readonly PlotMarker[];
  /** Overall width in pixels (default 900). */
  readonly width?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
const PANEL_HEIGHT = 220;
const MARGIN = { left: 80, right: 170, top: 50, gap: 40, bottom: 50 };

/** Round tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0)) return 1;
  const raw = span / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const frac = raw / pow;
  return (frac <= 1 ? 1 : frac <= 2 ? 2 : frac <= 5 ? 5 : 10) * pow;
}

function escapeXml(s: string): string {
  return s.replace(
    /[<>&"]/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!,
  );
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(6)));
}

/** Renders the chart as a standalone SVG document. */
export function renderPlot(spec: PlotSpec): string {
  const width = spec.width ?? 900;
  const plotW = width - MARGIN.left - MARGIN.right;
  const height = MARGIN.top + spec.panels.length * (PANEL_HEIGHT + MARGIN.gap) - MARGIN.gap +
    MARGIN.bottom;
  let tMax = 0;
  for (const p of spec.panels) {
    for (const s of p.series) for (const t of s.t) tMax = Math.max(tMax, t);
  }
  for (const m of spec.markers ?? []) tMax = Math.max(tMax, m.t);
  if (tMax === 0) tMax = 1;
  const x = (t: number): number => MARGIN.left + (t / tMax) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16">${
      escapeXml(spec.title)
    }</text>`,
  ];
  const xStep = niceStep(tMax, 8);
  spec.panels.forEach((panel, i) => {
    const top = MARGIN.top + i * (PANEL_HEIGHT + MARGIN.gap);
    const bottom = top + PANEL_HEIGHT;
    let vMax = 0;
    for (const s of panel.series) {
      for (const v of s.v) if (Number.isFinite(v)) vMax = Math.max(vMax, v);
    }
    const yStep = niceStep(vMax === 0 ? 1 : vMax, 5);
    const yTop = Math.max(yStep, Math.ceil(vMax / yStep) * yStep);
    const y = (v: number): number => bottom - (v / yTop) * PANEL_HEIGHT;
    out.push(`<g class="panel">`);
    for (let v = 0; v <= yTop + yStep / 2; v += yStep) {
      out.push(
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(v)}" y2="${
          y(v)
        }" stroke="#e5e5e5"/>`,
        `<text x="${MARGIN.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
      );
    }
    for (let t = 0; t <= tMax + xStep / 2; t += xStep) {
      out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${bottom}" stroke="#f0f0f0"/>`);
      out.push(`<text x="${x(t)}" y="${bottom + 16}" text-anchor="middle">${fmt(t)}</text>`);
    }
    out.push(
      `<rect x="${MARGIN.left}" y="${top}" width="${plotW}" height="${PANEL_HEIGHT}" fill="none" stroke="#333"/>`,
      `<text transform="translate(${MARGIN.left - 56},${(top + bottom) / 2}) rotate(-90)" ` +
        `text-anchor="middle">${escapeXml(panel.ylabel)}</text>`,
    );
    panel.series.forEach((s, k) => {
      const color = COLORS[k % COLORS.length]!;
      const pts: string[] = [];
      for (let j = 0; j < s.t.length; j++) {
        const v = s.v[j]!;
        if (Number.isFinite(v)) pts.push(`${x(s.t[j]!).toFixed(1)},${y(v).toFixed(1)}`);
      }
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(" ")}"/>`,
        `<line x1="${MARGIN.left + plotW + 12}" x2="${MARGIN.left + plotW + 32}" ` +
          `y1="${top + 14 + k * 18}" y2="${
            top + 14 + k * 18
          }" stroke="${color}" stroke-width="3"/>`,
        `<text x="${MARGIN.left + plotW + 38}" y="${top + 18 + k * 18}">${
          escapeXml(s.name)
        }</text>`,
      );
    });
    out.push(`</g>`);
  });
  const lastBottom = MARGIN.top + spec.panels.length * (PANEL_HEIGHT + MARGIN.gap) - MARGIN.gap;
  for (const m of spec.markers ?? []) {
    out.push(
      `<line x1="${x(m.t)}" x2="${x(m.t)}" y1="${MARGIN.top}" y2="${lastBottom}" stroke="#555" ` +
        `stroke-dasharray="4 3"/>`,
      `<text x="${x(m.t) + 3}" y="${MARGIN.top - 6}" fill="#555">${escapeXml(m.label)}</text>`,
    );
  }
  out.push(
    `<text x="${MARGIN.left + plotW / 2}" y="${lastBottom + 34}" text-anchor="middle">` +
      `${escapeXml(spec.xlabel)}</text>`,
    `</svg>`,
  );
  return out.join("\n") + "\n";
}
