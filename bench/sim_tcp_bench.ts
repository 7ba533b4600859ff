/**
 * `deno task sim` cost: wall time to simulate one virtual second of a dumbbell with one Reno
 * flow on real stacks (Interface + TcpStack per host, bytes verified), at 100 Mbit/s and
 * 1 Gbit/s. RTT 20 ms, buffer one BDP (so Reno keeps the link busy after its first loss),
 * started from an idle connection (ARP, handshake and slow start included).
 *
 * Run: deno bench -A bench/sim_tcp_bench.ts   (wall time per virtual second)
 *      deno run -A bench/sim_tcp_bench.ts     (also frames, utilization, wall/virtual ratio)
 *
 * @module
 */

import { defaultParams, type ExperimentParams, resolveCcs, simulate } from "../sim/experiment.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";

const ccs = await resolveCcs(["reno"]);

function params(rateBps: number): ExperimentParams {
  const rtt = 20 * MILLISECOND;
  const bdpPackets = Math.ceil(((rateBps / 8) * (rtt / SECOND)) / 1514);
  return {
    ...defaultParams(),
    rateBps,
    rtt,
    queuePackets: bdpPackets,
    flows: ["reno"],
    duration: SECOND,
    interval: 100 * MILLISECOND,
  };
}

for (const [name, rate] of [["100 Mbit/s", 100e6], ["1 Gbit/s", 1e9]] as const) {
  Deno.bench({
    name: `1 virtual second, 1 reno flow, ${name} dumbbell (RTT 20 ms, BDP buffer)`,
    group: "sim-tcp",
    n: 5,
    warmup: 1,
    fn: () => {
      const r = simulate(params(rate), ccs);
      if (!r.flows[0]!.verified) throw new Error("flow failed verification");
    },
  });
}

if (import.meta.main) {
  // `deno run`: one report line per rate (after one warm-up run).
  for (const [name, rate] of [["100 Mbit/s", 100e6], ["1 Gbit/s", 1e9]] as const) {
    simulate(params(rate), ccs);
    const t0 = performance.now();
    const r = simulate(params(rate), ccs);
    const wall = (performance.now() - t0) / 1000;
    const frames = Math.round(r.link.utilization * rate / 8 / 1514);
    console.log(
      `${name}: ${wall.toFixed(2)} s wall per virtual s; utilization ${
        (r.link.utilization * 100).toFixed(1)
      }%, goodput ${(r.flows[0]!.goodput_bps / 1e6).toFixed(1)} Mbit/s, ~${frames} data ` +
        `frames (${(wall * 1e6 / frames).toFixed(1)} us wall each, ACKs included)`,
    );
  }
}
