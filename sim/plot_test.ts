import assert from "node:assert/strict";
import { niceStep, renderPlot } from "./plot.ts";

Deno.test("niceStep() picks 1/2/5 steps", () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(95, 5), 20);
  assert.equal(niceStep(0.3, 3), 0.1);
  assert.equal(niceStep(700, 8), 100);
});

Deno.test("renderPlot() draws one polyline per series, a legend, markers and escaped labels", () => {
  const svg = renderPlot({
    title: "cubic vs <bbr>",
    xlabel: "time (s)",
    panels: [
      { ylabel: "cwnd (segments)", series: [{ name: "flow 0", t: [0, 1, 2], v: [10, 20, 40] }] },
      {
        ylabel: "throughput (Mbit/s)",
        series: [
          { name: "flow 0", t: [0, 1], v: [1, 2] },
          { name: "flow 1", t: [0, 1], v: [3, NaN] },
        ],
      },
    ],
    markers: [{ t: 1.5, label: "cc: bbr" }],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<polyline/g)?.length, 3);
  assert.match(svg, /cubic vs &lt;bbr&gt;/);
  assert.match(svg, /cc: bbr/);
  assert.match(svg, /cwnd \(segments\)/);
  // NaN points are skipped rather than emitted as "NaN" coordinates.
  assert.doesNotMatch(svg, /NaN/);
  // The largest cwnd (40) sits on the top edge of the first panel (y = 50).
  assert.match(svg, /points="[^"]*,50\.0"/);
});
