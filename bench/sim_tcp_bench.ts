/**
 * `deno task sim` cost: wall time to simulate one virtual second of a dumbbell with one Reno
 * flow on real stacks (Interface + TcpStack per host, bytes verified), at 100 Mbit/s and
 * 1 Gbit/s. RTT 20 ms, buffer one BDP (so Reno keeps the link busy after its first loss),
 * started from an idle connection (ARP, handshake and slow start included).
 *
 * Run: deno bench -A bench/sim_tcp_bench.ts   (wall time of the first virtual second)
 *      deno run -A bench/sim_tcp_bench.ts     (first vs. third, saturated, virtual second)
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
  // `deno run`: per rate, one warm-up run, then a 3 s run timed per virtual second: the first
  // second includes the start (ARP, handshake, slow start), the third is the saturated steady
  // state.
  for (const [name, rate] of [["100 Mbit/s", 100e6], ["1 Gbit/s", 1e9]] as const) {
    simulate(params(rate), ccs);
    const marks: number[] = [performance.now()];
    const r = simulate({ ...params(rate), duration: 3 * SECOND }, ccs, {
      progress: () => marks.push(performance.now()),
    });
    const t = r.series.t_s;
    const tput = r.flows[0]!.series.throughput_bps;
    const secondUtil = (k: number): number => {
      const v = tput.filter((_, j) => t[j]! > k && t[j]! <= k + 1);
      return v.reduce((a, b) => a + b, 0) / v.length / rate / (1448 / 1514);
    };
    const line = [0, 2].map((k) => {
      const wall = (marks[k + 1]! - marks[k]!) / 1000;
      return `second ${k + 1}: ${wall.toFixed(2)} s wall (link ~${
        (secondUtil(k) * 100).toFixed(0)
      }% busy)`;
    });
    console.log(`${name}: ${line.join("; ")}; verified ${r.flows[0]!.verified}`);
  }
}
