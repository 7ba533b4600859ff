import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import {
  autoInterval,
  CcSelectionError,
  defaultParams,
  type ExperimentParams,
  type ExperimentResult,
  FlowPattern,
  parseFlows,
  PATTERN_PERIOD,
  resolveCcs,
  runExperiment,
} from "./experiment.ts";
import { toJson } from "./report.ts";
import { registerCc, RenoCc } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { UnitParseError } from "./units.ts";
import { ensureBuilt } from "../cc/build.ts";

/** The test bed: 20 Mbit/s, 20 ms, 100 packets (60 ms of buffer, ~3x the BDP), 2 s. */
function small(extra: Partial<ExperimentParams> = {}): ExperimentParams {
  return {
    ...defaultParams(),
    rateBps: 20e6,
    duration: 2 * SECOND,
    flows: ["reno", "reno"],
    ...extra,
  };
}

const cache = new Map<string, Promise<ExperimentResult>>();
/** Runs (once per distinct parameter set) so several tests can share a run. */
function run(p: ExperimentParams): Promise<ExperimentResult> {
  const key = JSON.stringify(p);
  let r = cache.get(key);
  if (r === undefined) cache.set(key, r = runExperiment(p));
  return r;
}

function keys(o: object): string[] {
  return Object.keys(o).sort();
}

Deno.test("runExperiment() 2x reno at 20 Mbit/s for 2 s: documented JSON shape, every byte verified", async () => {
  const r = await run(small());
  for (const k of ["seed", "duration_s", "link", "flows", "jain"]) assert.ok(k in r, k);
  assert.equal(r.seed, 1);
  assert.equal(r.duration_s, 2);
  for (const k of ["rate_bps", "rtt_ms", "utilization", "queue_delay_ms", "dropped", "marked"]) {
    assert.ok(k in r.link, `link.${k}`);
  }
  assert.deepEqual(keys(r.link.queue_delay_ms), ["p50", "p99"]);
  assert.equal(r.link.rate_bps, 20e6);
  assert.equal(r.link.rtt_ms, 20);
  assert.equal(r.flows.length, 2);
  for (const [i, f] of r.flows.entries()) {
    for (
      const k of [
        "id",
        "cc",
        "goodput_bps",
        "bytes_delivered",
        "verified",
        "retransmits",
        "rtt_ms",
        "cwnd_max_segments",
      ]
    ) assert.ok(k in f, `flows[${i}].${k}`);
    assert.equal(f.id, i);
    assert.equal(f.cc, "reno");
    assert.equal(f.verified, true, String(f.error));
    assert.equal(f.error, null);
    assert.ok(f.bytes_delivered > 100_000, `flow ${i} delivered ${f.bytes_delivered}`);
    // goodput is bytes_delivered over the run (6 significant digits).
    const expect = (f.bytes_delivered * 8) / r.duration_s;
    assert.ok(Math.abs(f.goodput_bps - expect) <= expect * 1e-5);
    // Base RTT 20 ms; the RTT can never be below it nor above base + full buffer + slack.
    assert.ok(f.rtt_ms.p50 >= 20 && f.rtt_ms.p99 >= f.rtt_ms.p50, JSON.stringify(f.rtt_ms));
    assert.ok(f.rtt_ms.p99 < 20 + 61 + 5, JSON.stringify(f.rtt_ms));
    assert.ok(f.rtt_samples > 100);
    assert.ok(f.cwnd_max_segments >= 10, "at least the initial window");
    assert.equal(f.series.throughput_bps.length, r.series.t_s.length);
    assert.equal(f.series.cwnd_segments.length, r.series.t_s.length);
  }
  assert.ok(r.series.t_s.length >= 10);
});

Deno.test("runExperiment() keeps a 20 Mbit/s bottleneck with a 3x-BDP buffer above 85% busy", async () => {
  // Why 85%: the buffer (100 packets = 60 ms) is about three times the BDP (20 ms = 33
  // packets), so after Reno halves its window the queue still covers the pipe and the link
  // never idles in congestion avoidance. Only the start is idle: ARP, handshake and the first
  // slow-start RTTs take ~5 RTTs (~0.1 s = 5% of 2 s). The goodput cannot exceed the payload
  // share of the wire: 1448 payload bytes per 1514-byte frame.
  const r = await run(small());
  assert.ok(r.link.utilization > 0.85, `utilization ${r.link.utilization}`);
  assert.ok(r.link.utilization <= 1);
  const total = r.flows.reduce((s, f) => s + f.goodput_bps, 0);
  assert.ok(total <= 20e6 * (1448 / 1514), `goodput ${total}`);
  assert.ok(total >= 0.8 * 20e6 * (1448 / 1514), `goodput ${total}`);
  assert.ok(r.link.dropped_queue > 0, "Reno fills a drop-tail buffer");
  assert.equal(r.link.dropped_loss, 0);
  assert.equal(r.link.marked, 0, "no marking without --ecn-k");
  assert.equal(r.link.dropped_elsewhere, 0, "only the bottleneck queues");
});

Deno.test("runExperiment() computes Jain's index from the flows' goodputs", async () => {
  for (const flows of [["reno", "reno"], ["reno", "reno", "reno"]]) {
    const r = await run(small({ flows, duration: SECOND }));
    const x = r.flows.map((f) => f.goodput_bps);
    const sum = x.reduce((a, b) => a + b, 0);
    const sumSq = x.reduce((a, b) => a + b * b, 0);
    const jain = (sum * sum) / (x.length * sumSq);
    assert.ok(Math.abs(r.jain - jain) < 1e-5, `${r.jain} vs ${jain}`);
    assert.ok(r.jain > 1 / x.length && r.jain <= 1);
  }
});

Deno.test("runExperiment() with the same seed gives the same JSON byte for byte", async () => {
  const p = small({ loss: 0.01, reorder: 0.01, duplicate: 0.01, corrupt: 0.01, duration: SECOND });
  const a = toJson(await runExperiment(p));
  const b = toJson(await runExperiment(p));
  assert.equal(a, b);
});

Deno.test("runExperiment() with another seed differs when there is loss", async () => {
  const a = await run(small({ loss: 0.01, duration: SECOND }));
  const b = await run(small({ loss: 0.01, duration: SECOND, seed: 2 }));
  assert.notEqual(toJson(a), toJson(b));
  assert.notEqual(a.link.dropped_loss, 0);
  assert.ok(b.flows.every((f) => f.verified));
});

Deno.test("--loss drops frames at random, which costs retransmissions and goodput", async () => {
  const clean = await run(small({ flows: ["reno"] }));
  const lossy = await run(small({ flows: ["reno"], loss: 0.02 }));
  assert.equal(clean.link.dropped_loss, 0);
  assert.ok(lossy.link.dropped_loss > 0);
  assert.equal(lossy.link.dropped, lossy.link.dropped_queue + lossy.link.dropped_loss);
  // Nearly every lost frame is data and must be sent again (a few may be the handshake's).
  const f = lossy.flows[0]!;
  assert.ok(f.retransmits >= lossy.link.dropped_loss / 2, `${f.retransmits} retransmits`);
  // 2% loss keeps Reno's window far below what the 20 Mbit/s x 20 ms path needs.
  assert.ok(f.goodput_bps < 0.6 * clean.flows[0]!.goodput_bps);
  assert.ok(lossy.link.utilization < clean.link.utilization);
  assert.ok(f.verified);
});

Deno.test("--ecn-k marks instead of dropping: marks counted, shorter queue, no buffer drops", async () => {
  const tail = await run(small());
  const ecn = await run(small({ ecnK: 10 }));
  assert.equal(tail.link.marked, 0);
  assert.ok(ecn.link.marked > 0);
  // Reno halves on the first marks, long before the 100-packet buffer fills.
  assert.equal(ecn.link.dropped_queue, 0);
  assert.ok(ecn.link.queue_delay_ms.p50 < tail.link.queue_delay_ms.p50);
  assert.ok(ecn.flows.every((f) => f.verified && f.retransmits === 0));
});

Deno.test("--reorder, --duplicate and --corrupt are applied and the bytes still verify", async () => {
  const r = await run(small({ reorder: 0.01, duplicate: 0.01, corrupt: 0.01, duration: SECOND }));
  assert.ok(r.link.reordered > 0 && r.link.duplicated > 0 && r.link.corrupted > 0);
  const badChecksum = r.flows.reduce((s, f) => s + (f.receiver_discards["bad-checksum"] ?? 0), 0);
  assert.ok(badChecksum > 0, "corrupted data frames are discarded by the receiver's checksum");
  assert.ok(r.flows.every((f) => f.verified), JSON.stringify(r.flows.map((f) => f.error)));
});

Deno.test("FlowPattern.check() finds the first wrong byte, a shifted window, another flow's bytes", () => {
  const p = new FlowPattern(1, 0);
  const good = p.from(12345).slice(0, 5000);
  assert.equal(p.check(12345, good), -1);
  // Across the period boundary the stream continues seamlessly.
  const wrap = PATTERN_PERIOD - 100;
  assert.equal(p.check(wrap, p.from(wrap).slice(0, 300)), -1);
  const bad = good.slice();
  bad[777] = bad[777]! ^ 1;
  assert.equal(p.check(12345, bad), 12345 + 777);
  assert.notEqual(p.check(12346, good), -1, "a window one byte off");
  assert.notEqual(p.check(12345 + 1448, good), -1, "a window one segment off");
  assert.notEqual(new FlowPattern(1, 1).check(12345, good), -1, "another flow");
  assert.notEqual(new FlowPattern(2, 0).check(12345, good), -1, "another seed");
});

Deno.test("parseFlows() expands Nx counts and rejects empty entries with UnitParseError", () => {
  assert.deepEqual(parseFlows("cubic,bbr"), ["cubic", "bbr"]);
  assert.deepEqual(parseFlows("2xcubic, bbr"), ["cubic", "cubic", "bbr"]);
  assert.deepEqual(parseFlows("./x.wasm"), ["./x.wasm"]);
  assert.throws(() => parseFlows("reno,,cubic"), UnitParseError);
  assert.throws(() => parseFlows("0xreno"), UnitParseError);
  assert.throws(() => parseFlows("1000xreno"), /at most 250/);
});

Deno.test("resolveCcs() rejects an unknown name and a missing file with advice", async () => {
  await assert.rejects(resolveCcs(["no-such-cc"]), (e: unknown) => {
    assert.ok(e instanceof CcSelectionError);
    assert.match(e.message, /unknown congestion control; use one of .*reno/);
    return true;
  });
  await assert.rejects(resolveCcs(["/nonexistent/x.wasm"]), /no file at \/nonexistent\/x.wasm/);
});

/** A fixed window of 20 segments: the reported window must be exactly that. */
class FixedWindowCc extends RenoCc {
  override readonly name: string = "fixed20";
  override init(mss: number, now: number): void {
    super.init(mss, now);
    this.cwnd = 20 * mss;
  }
  override setMss(mss: number): void {
    this.cwnd = 20 * mss;
  }
  override onAck(): void {}
  override onCongestion(): void {}
  override onRecoveryExit(): void {}
  override onIdleRestart(): void {}
}

Deno.test("runExperiment() runs an algorithm registered with registerCc() and reports its window", async () => {
  registerCc("fixed20", () => new FixedWindowCc());
  const r = await runExperiment(small({ flows: ["fixed20"], duration: SECOND }));
  const f = r.flows[0]!;
  assert.equal(f.cc, "fixed20");
  assert.equal(f.cc_source, "registered");
  assert.equal(f.cwnd_max_segments, 20);
  assert.ok(f.series.cwnd_segments.every((c) => c === 20), String(f.series.cwnd_segments));
  // 20 segments per 20 ms RTT is ~11.6 Mbit/s of payload: below the link, so no queue.
  assert.equal(r.link.dropped, 0);
  assert.ok(f.goodput_bps < 12e6 && f.goodput_bps > 8e6, String(f.goodput_bps));
  // At worst a whole window waits in the queue: 20 x 0.6 ms on top of the 20 ms base.
  assert.ok(f.rtt_ms.p50 < 25 && f.rtt_ms.p99 < 20 + 12 + 1, JSON.stringify(f.rtt_ms));
  assert.ok(f.verified);
});

Deno.test({
  name: "runExperiment() runs WebAssembly algorithms by name and by .wasm path",
  fn: async () => {
    await ensureBuilt();
    const path = new URL("../cc/dist/cubic.wasm", import.meta.url).pathname;
    const r = await runExperiment(small({ flows: ["cubic", path], duration: SECOND }));
    assert.deepEqual(r.flows.map((f) => f.cc), ["cubic", "cubic"]);
    assert.equal(r.flows[0]!.cc_source, "cc/dist/cubic.wasm");
    assert.equal(r.flows[1]!.cc_source, path);
    assert.ok(r.flows.every((f) => f.verified && f.bytes_delivered > 0));
  },
});

Deno.test("autoInterval() covers at least two RTTs and about 200 samples of long runs", () => {
  assert.equal(autoInterval(2 * SECOND, 20 * MILLISECOND), 50 * MILLISECOND);
  assert.equal(autoInterval(60 * SECOND, 20 * MILLISECOND), 200 * MILLISECOND);
  assert.equal(autoInterval(30 * SECOND, 200 * MILLISECOND), 500 * MILLISECOND);
  assert.equal(autoInterval(100 * MILLISECOND, 20 * MILLISECOND), 10 * MILLISECOND);
});

Deno.test("--stagger starts flow i at i x stagger and counts its goodput from then", async () => {
  const r = await run(small({ stagger: SECOND }));
  const [a, b] = r.flows;
  assert.equal(a!.start_s, 0);
  assert.equal(b!.start_s, 1);
  assert.equal(r.params.stagger_s, 1);
  const t = r.series.t_s;
  for (let k = 0; k < t.length; k++) {
    if (t[k]! <= 1) assert.equal(b!.series.throughput_bps[k], 0, `t=${t[k]}`);
  }
  assert.ok(b!.bytes_delivered > 0 && b!.verified);
  const expect = (b!.bytes_delivered * 8) / 1; // active for the last 1 s of 2 s
  assert.ok(Math.abs(b!.goodput_bps - expect) <= expect * 1e-5);
  await assert.rejects(runExperiment(small({ stagger: 2 * SECOND })), /lower --stagger/);
});

Deno.test("a flow that delivers nothing is not verified and says so", async () => {
  const r = await run(small({ flows: ["reno"], loss: 1, duration: SECOND }));
  const f = r.flows[0]!;
  assert.equal(f.verified, false);
  assert.equal(f.bytes_delivered, 0);
  assert.equal(f.error, "no bytes delivered");
  assert.equal(f.rtt_samples, 0);
  assert.deepEqual(f.rtt_ms, { p50: 0, p99: 0 });
});

Deno.test("the receiver's byte check catches corruption that the TCP checksum cannot see", async () => {
  // Swapping two 16-bit words of a TCP payload keeps the one's-complement checksum valid, so
  // the stack accepts the segment; only the end-to-end comparison can notice.
  let swapped = -1;
  const r = await runExperiment(small({ duration: SECOND }), {
    setup: ({ sim, dumbbell }) => {
      const target = dumbbell.receivers[0]!;
      sim.onDeliver = (_now, port, frame) => {
        if (port !== target || swapped >= 0 || frame.length < 1000) return;
        const tcp = 14 + 20; // Ethernet + IPv4 without options
        const a = tcp + 100, b = tcp + 300; // even offsets from the TCP header
        if (frame[a] === frame[b] && frame[a + 1] === frame[b + 1]) return;
        const w = [frame[a]!, frame[a + 1]!];
        frame[a] = frame[b]!;
        frame[a + 1] = frame[b + 1]!;
        frame[b] = w[0]!;
        frame[b + 1] = w[1]!;
        swapped = 1;
      };
    },
  });
  assert.equal(swapped, 1);
  const [bad, good] = r.flows;
  assert.equal(bad!.verified, false);
  assert.match(String(bad!.error), /^payload mismatch at stream offset [0-9]+$/);
  assert.equal(good!.verified, true);
  assert.equal(bad!.receiver_discards["bad-checksum"], undefined, "the stack saw nothing wrong");
});

Deno.test("ExperimentHooks.setup can script a scenario: halving the bottleneck rate mid-run", async () => {
  const p = small({ flows: ["reno"], duration: 4 * SECOND, interval: 100 * MILLISECOND });
  const r = await runExperiment(p, {
    setup: ({ sim, dumbbell }) => {
      sim.schedule(2 * SECOND, () => dumbbell.bottleneck.configure({ rateBps: 10e6 }));
    },
  });
  const tput = r.flows[0]!.series.throughput_bps;
  const mean = (from: number, to: number): number => {
    const v = tput.filter((_, k) => r.series.t_s[k]! > from && r.series.t_s[k]! <= to);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  assert.ok(mean(1, 2) > 16e6, `before ${mean(1, 2)}`);
  assert.ok(mean(2.5, 4) < 10e6 && mean(2.5, 4) > 8e6, `after ${mean(2.5, 4)}`);
  assert.ok(r.flows[0]!.verified);
});

Deno.test("per-flow RTTs: each flow sees its own base RTT; a bad list is refused", async () => {
  const r = await run(small({ flowRtts: [20 * MILLISECOND, 60 * MILLISECOND], ecnK: 5 }));
  const [a, b] = r.flows;
  assert.equal(a!.base_rtt_ms, 20);
  assert.equal(b!.base_rtt_ms, 60);
  assert.equal(r.link.rtt_ms, 20);
  // ECN keeps the queue short, so the samples sit just above each flow's base RTT.
  assert.ok(a!.rtt_ms.p50 >= 20 && a!.rtt_ms.p50 < 30, JSON.stringify(a!.rtt_ms));
  assert.ok(b!.rtt_ms.p50 >= 60 && b!.rtt_ms.p50 < 70, JSON.stringify(b!.rtt_ms));
  assert.ok(a!.verified && b!.verified);
  await assert.rejects(
    runExperiment(small({ flowRtts: [20 * MILLISECOND] })),
    /1 RTTs for 2 flows/,
  );
  await assert.rejects(
    runExperiment(small({ rtt: 30 * MILLISECOND, flowRtts: [20 * MILLISECOND, 40 * MILLISECOND] })),
    /cannot be below the bottleneck/,
  );
});

Deno.test({
  name: "runs with a WebAssembly algorithm repeat exactly in one process (fresh module each run)",
  fn: async () => {
    await ensureBuilt();
    const p = small({ flows: ["reno", "cubic"], queuePackets: 50, duration: SECOND });
    const a = toJson(await runExperiment(p));
    const b = toJson(await runExperiment(p));
    assert.equal(a, b);
  },
});

Deno.test("tcp.pacing spreads a window over the RTT: a fixed 20-segment window queues less", async () => {
  registerCc("fixed20", () => new FixedWindowCc());
  const base = small({ flows: ["fixed20"], duration: SECOND });
  const bursty = await runExperiment(base);
  const paced = await runExperiment({ ...base, tcp: { pacing: true } });
  assert.equal(paced.params.pacing, true);
  assert.equal(bursty.params.pacing, false);
  assert.ok(
    paced.link.queue_delay_ms.p99 < bursty.link.queue_delay_ms.p99,
    `${paced.link.queue_delay_ms.p99} vs ${bursty.link.queue_delay_ms.p99}`,
  );
  assert.ok(paced.flows[0]!.verified);
});
