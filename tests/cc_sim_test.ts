/**
 * Congestion-control modules (cc/dist/*.wasm, sandboxed and metered) driving the real TCP stack
 * on the simulated dumbbell (sim/experiment.ts): fairness, ECN-based utilisation with short
 * queues, and throughput under random loss. Each run is a few virtual seconds.
 */
import assert from "node:assert/strict";
import { ensureBuilt, modulePath } from "../cc/build.ts";
import { CcHost } from "../cc/host.ts";
import { handCc } from "../cc/wasm_builder.ts";
import { defaultParams, type ExperimentParams, runExperiment } from "../sim/experiment.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";

async function run(p: Partial<ExperimentParams>): ReturnType<typeof runExperiment> {
  await ensureBuilt();
  const r = await runExperiment({ ...defaultParams(), rateBps: 20e6, rtt: 20 * MILLISECOND, ...p });
  for (const f of r.flows) {
    assert.equal(f.error, null, `flow ${f.id} (${f.cc}): ${f.error}`);
    assert.ok(f.verified, `flow ${f.id} (${f.cc}) delivered corrupt or no data`);
  }
  return r;
}

Deno.test("two CUBIC (wasm) flows share a 20 Mbit/s bottleneck fairly (Jain > 0.95) and fill it", async () => {
  const r = await run({ flows: ["cubic", "cubic"], duration: 10 * SECOND, queuePackets: 50 });
  assert.equal(r.flows[0]!.cc_source, "cc/dist/cubic.wasm");
  assert.ok(r.jain > 0.95, `Jain ${r.jain}`);
  assert.ok(r.link.utilization > 0.9, `utilization ${r.link.utilization}`);
  assert.ok(r.link.dropped > 0, "CUBIC probes until the buffer overflows");
});

Deno.test("DCTCP (wasm) keeps a 20 Mbit/s bottleneck busy with a queue near the marking threshold and no drops", async () => {
  const k = 10;
  const r = await run({
    flows: ["dctcp", "dctcp"],
    duration: 5 * SECOND,
    queuePackets: 100,
    ecnK: k,
  });
  assert.ok(r.link.marked > 0, "CE marks seen, so ECN was negotiated");
  assert.equal(r.link.dropped, 0);
  assert.ok(r.link.utilization > 0.9, `utilization ${r.link.utilization}`);
  // K packets of 1500 bytes at 20 Mbit/s = 6 ms; allow twice that at p99.
  const kMs = (k * 1500 * 8) / 20e6 * 1e3;
  assert.ok(r.link.queue_delay_ms.p99 < 2 * kMs, `queue delay p99 ${r.link.queue_delay_ms.p99} ms`);
  assert.ok(r.jain > 0.95, `Jain ${r.jain}`);
});

Deno.test("BBR (wasm) keeps most of the bottleneck under 1% random loss where loss-based CUBIC collapses", async () => {
  const p = { duration: 10 * SECOND, rtt: 40 * MILLISECOND, queuePackets: 100, loss: 0.01 };
  const bbr = await run({ ...p, flows: ["bbr"] });
  const cubic = await run({ ...p, flows: ["cubic"] });
  const gB = bbr.flows[0]!.goodput_bps;
  const gC = cubic.flows[0]!.goodput_bps;
  assert.ok(gB > 0.8 * 20e6, `BBR goodput ${gB}`);
  assert.ok(gB > 2.5 * gC, `BBR ${gB} vs CUBIC ${gC}`);
  assert.ok(bbr.link.dropped_loss > 0);
});

Deno.test("a module that traps mid-transfer costs only its own flow its algorithm: the flow goes on as Reno, the CUBIC flow beside it is untouched", async () => {
  const host = new CcHost();
  await ensureBuilt();
  // Fixed 10-segment window that traps once 1.2 MB were delivered (the self-test delivers ~1 MB).
  const bad = host.loadBytes(handCc({ misbehave: { kind: "trap" }, afterDelivered: 1.2e6 }));
  host.register(bad, "sim-bad-trap");
  host.register(await host.loadFile(modulePath("cubic")), "sim-cubic");
  const r = await run({
    flows: ["sim-bad-trap", "sim-cubic"],
    duration: 6 * SECOND,
    queuePackets: 50,
  });
  assert.equal(host.counters.violations.trap, 1);
  assert.equal(host.counters.fallbacks, 1);
  assert.equal(bad.quarantined, true);
  const [a, b] = r.flows;
  assert.ok(a!.bytes_delivered > 2e6, `the failed flow kept delivering (${a!.bytes_delivered} B)`);
  assert.ok(b!.goodput_bps > 5e6, `CUBIC flow ${b!.goodput_bps} bit/s`);
  assert.ok(r.link.utilization > 0.9, `utilization ${r.link.utilization}`);
});
