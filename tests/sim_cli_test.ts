/**
 * `deno task sim` (sim/cli.ts): flag parsing and its errors, and whole runs writing the table,
 * the JSON file (and `--json -` on stdout in a subprocess) and the SVG.
 */
import assert from "node:assert/strict";
import { CliUsageError, main, parseArgs } from "../sim/cli.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { UnitParseError } from "../sim/units.ts";

Deno.test("parseArgs() gives the documented defaults", () => {
  const o = parseArgs([]);
  assert.equal(o.params.rateBps, 100e6);
  assert.equal(o.params.rtt, 20 * MILLISECOND);
  assert.equal(o.params.queuePackets, 100);
  assert.equal(o.params.loss, 0);
  assert.equal(o.params.ecnK, null);
  assert.deepEqual(o.params.flows, ["reno"]);
  assert.equal(o.params.duration, 30 * SECOND);
  assert.equal(o.params.seed, 1);
  assert.equal(o.params.stagger, 0);
  assert.equal(o.json, null);
  assert.equal(o.plot, null);
  assert.equal(o.help, false);
});

Deno.test("parseArgs() reads every flag, as --flag value and --flag=value", () => {
  const o = parseArgs([
    "--rate",
    "1gbit",
    "--rtt=40ms",
    "--queue",
    "250",
    "--loss",
    "0.5%",
    "--reorder",
    "1%",
    "--reorder-delay",
    "2ms",
    "--duplicate",
    "0.01",
    "--corrupt",
    "1%",
    "--ecn-k",
    "20",
    "--flows",
    "2xcubic,bbr",
    "--duration",
    "1.5s",
    "--seed",
    "7",
    "--interval",
    "10ms",
    "--stagger",
    "250ms",
    "--json",
    "-",
    "--plot",
    "out.svg",
    "--help",
  ]);
  const p = o.params;
  assert.equal(p.rateBps, 1e9);
  assert.equal(p.rtt, 40 * MILLISECOND);
  assert.equal(p.queuePackets, 250);
  assert.equal(p.loss, 0.005);
  assert.equal(p.reorder, 0.01);
  assert.equal(p.reorderDelay, 2 * MILLISECOND);
  assert.equal(p.duplicate, 0.01);
  assert.equal(p.corrupt, 0.01);
  assert.equal(p.ecnK, 20);
  assert.deepEqual(p.flows, ["cubic", "cubic", "bbr"]);
  assert.equal(p.duration, 1.5 * SECOND);
  assert.equal(p.seed, 7);
  assert.equal(p.interval, 10 * MILLISECOND);
  assert.equal(p.stagger, 250 * MILLISECOND);
  assert.equal(o.json, "-");
  assert.equal(o.plot, "out.svg");
  assert.equal(o.help, true);
});

Deno.test("parseArgs() --rtt with a list sets one RTT per flow, the smallest on the bottleneck", () => {
  const p = parseArgs(["--flows", "reno,reno", "--rtt", "80ms,20ms"]).params;
  assert.equal(p.rtt, 20 * MILLISECOND);
  assert.deepEqual(p.flowRtts, [80 * MILLISECOND, 20 * MILLISECOND]);
  assert.deepEqual(parseArgs(["--rtt", "30ms"]).params.flowRtts, []);
  assert.throws(() => parseArgs(["--rtt", "20ms,x"]), UnitParseError);
});

Deno.test("parseArgs() --pacing is a switch: bare, =on or =off", () => {
  assert.equal(parseArgs([]).params.tcp.pacing, undefined);
  assert.equal(parseArgs(["--pacing"]).params.tcp.pacing, true);
  assert.equal(parseArgs(["--pacing=off"]).params.tcp.pacing, false);
  assert.equal(parseArgs(["--pacing", "--rate", "1gbit"]).params.rateBps, 1e9);
  assert.throws(() => parseArgs(["--pacing=maybe"]), /--pacing or --pacing=off/);
});

Deno.test("parseArgs() rejects bad values with UnitParseError naming the flag and a good spelling", () => {
  const cases: [string[], RegExp][] = [
    [["--rate", "fast"], /--rate "fast" is not understood; write it like 100mbit/],
    [["--rtt", "20 parsecs"], /--rtt .* write it like 20ms/],
    [["--loss", "150%"], /--loss .* between 0% and 100%/],
    [["--queue", "0"], /--queue .*at least 1 packet/],
    [["--queue", "-5"], /--queue/],
    [["--ecn-k", "many"], /--ecn-k/],
    [["--duration", "0s"], /--duration .*more than zero/],
    [["--seed", "x"], /--seed/],
    [["--flows", "reno,,cubic"], /--flows .* 2xreno/],
  ];
  for (const [args, re] of cases) {
    assert.throws(() => parseArgs(args), (e: unknown) => {
      assert.ok(e instanceof UnitParseError, `${args.join(" ")}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("parseArgs() rejects unknown flags and missing values, pointing at --help", () => {
  for (const args of [["--rat", "1gbit"], ["--rate"], ["--rate", "--rtt", "1ms"], ["extra"]]) {
    assert.throws(() => parseArgs(args), (e: unknown) => {
      assert.ok(e instanceof CliUsageError, `${args.join(" ")}: ${e}`);
      assert.match(e.message, /run deno task sim --help/);
      return true;
    });
  }
});

async function capture(
  fn: () => Promise<number>,
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await fn();
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("main() prints the table and writes JSON and SVG files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sim_cli_test_" });
  try {
    const json = `${dir}/r.json`;
    const svg = `${dir}/r.svg`;
    const { code, out } = await capture(() =>
      main([
        "--rate=20mbit",
        "--flows=2xreno",
        "--duration=1s",
        "--json",
        json,
        "--plot",
        svg,
      ])
    );
    assert.equal(code, 0);
    assert.match(out, /^deno task sim: 20\.0 Mbit\/s, RTT 20 ms, queue 100 pkts, 1 s, seed 1/);
    assert.match(out, /flow +cc +goodput +retx +RTT p50 +RTT p99 +cwnd max +verified/);
    assert.match(out, /\n0 +reno +[0-9.]+ Mbit\/s .* yes\n1 +reno /);
    assert.match(out, /link: utilization [0-9.]+%, queue delay p50/);
    assert.match(out, /Jain's fairness index \(goodput\): [01]\.[0-9]{4} over 2 flows/);
    const r = JSON.parse(await Deno.readTextFile(json));
    assert.equal(r.flows.length, 2);
    assert.equal(r.duration_s, 1);
    const plot = await Deno.readTextFile(svg);
    assert.match(plot, /^<svg /);
    assert.match(plot, /2 flows \(2x reno\): 20\.0 Mbit\/s, RTT 20 ms/);
    for (
      const label of ["goodput (Mbit/s", "cwnd (segments)", "flow 0: reno", "flow 1: reno"]
    ) {
      assert.ok(plot.includes(label), label);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main() answers a bad flag or an unknown algorithm with exit status 2 and advice", async () => {
  const bad = await capture(() => main(["--rate", "fast"]));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /error: --rate "fast" is not understood/);
  const unknown = await capture(() => main(["--flows", "warp-drive", "--duration", "1s"]));
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /warp-drive: unknown congestion control; use one of/);
  const path = await capture(() => main(["--json", "/nonexistent-dir/r.json"]));
  assert.equal(path.code, 2);
  assert.match(
    path.err,
    /--json \/nonexistent-dir\/r.json: no directory \/nonexistent-dir; create it/,
  );
  const help = await capture(() => main(["--help"]));
  assert.equal(help.code, 0);
  assert.match(help.out, /--ecn-k 20/);
});

Deno.test("deno task sim --json - writes only JSON on stdout (table on stderr)", async () => {
  const cli = new URL("../sim/cli.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "--rate", "10mbit", "--duration", "500ms", "--json", "-"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, err);
  const j = JSON.parse(new TextDecoder().decode(r.stdout));
  assert.equal(j.flows[0].verified, true);
  assert.equal(j.link.rate_bps, 10e6);
  assert.match(err, /flow +cc +goodput/);
});

Deno.test("renderSvg() draws one line per algorithm when there are more than 8 flows", async () => {
  const { runExperiment, defaultParams } = await import("../sim/experiment.ts");
  const { renderSvg, MAX_PLOTTED_FLOWS } = await import("../sim/report.ts");
  const r = await runExperiment({
    ...defaultParams(),
    rateBps: 20e6,
    flows: Array(MAX_PLOTTED_FLOWS + 1).fill("reno"),
    duration: 500 * MILLISECOND,
  });
  const svg = renderSvg(r);
  assert.ok(svg.includes("9x reno, sum") && svg.includes("9x reno, mean"));
  assert.ok(!svg.includes("flow 0: reno"));
  // Two panels with one line each, plus the queue.
  assert.equal(svg.match(/<polyline /g)?.length, 3);
});
