/**
 * Cost of one ACK through the congestion-control module ABI (write the event record, metered
 * call, output checks and read-back) for each module, against the built-in RenoCc.
 * One bench iteration = one ACK; every 1000 ACKs a loss episode keeps windows bounded.
 *
 * Group "bulk": a whole 8 MB transfer between two real TcpStacks over the in-memory,
 * zero-delay link of tests/support/tcp_pair.ts (serialization at 1 TB/s, so the stacks, not the
 * link, set the speed), with the sender's algorithm built-in NewReno (baseline) vs cubic.wasm
 * and reno.wasm. Target: the Wasm algorithm within 5% of the built-in one. Deno.bench runs the
 * variants one after the other, so machine noise and JIT state differ between them; for the
 * comparison run the interleaved version (medians of 60 alternating runs, printed as ratios):
 *
 *     deno run -A bench/cc_bench.ts
 *
 *     deno bench -A bench/cc_bench.ts
 *
 * @module
 */

import { type CongestionControl, RenoCc } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import { cleanPath, Endpoint, payload, TcpPair } from "../tests/support/tcp_pair.ts";
import { ensureBuilt, haveClang, modulePath } from "../cc/build.ts";
import { CcHost, WasmCc } from "../cc/host.ts";
import { MutableAckSample } from "../cc/testing.ts";

await ensureBuilt();
const host = new CcHost();
const names = ["reno", "cubic", "dctcp", "bbr", ...((await haveClang()) ? ["aimd"] : [])];

function driver(cc: CongestionControl): () => void {
  cc.init(1448, 0);
  const s = new MutableAckSample();
  s.mss = 1448;
  s.ackedBytes = 2896;
  s.ackedPackets = 2;
  s.interval = 20 * MILLISECOND;
  s.rtt = 20 * MILLISECOND;
  s.minRtt = 20 * MILLISECOND;
  s.srtt = 21 * MILLISECOND;
  let total = 0;
  let n = 0;
  return () => {
    n++;
    total += 2896;
    s.now += 50_000;
    s.delivered = Math.min(total, cc.cwnd);
    s.inFlight = cc.cwnd;
    s.priorInFlight = cc.cwnd;
    s.rtt = 20 * MILLISECOND + (n & 1023) * 1000;
    s.ece = (n & 63) === 0;
    cc.onAck(s);
    if ((n % 1000) === 0) {
      cc.onCongestion("loss", s.now);
      cc.onRecoveryExit(s.now);
    }
  };
}

const flows: CongestionControl[] = [];

Deno.bench({
  name: "built-in RenoCc (TypeScript)",
  group: "ack",
  baseline: true,
  fn: driver(new RenoCc()),
});

for (const name of names) {
  const m = await host.loadFile(modulePath(name));
  const cc = host.createFlow(m);
  flows.push(cc);
  Deno.bench({ name: `${m.name}.wasm via ABI`, group: "ack", fn: driver(cc) });
}

Deno.bench({
  name: "check: no module fell back during the bench",
  group: "check",
  n: 1,
  warmup: 0,
  fn: () => {
    for (const f of flows) {
      if (!(f instanceof WasmCc) || f.fallback !== null) {
        throw new Error(`${f.name} fell back: ${(f as WasmCc).fallbackReason}`);
      }
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Bulk transfer on the real stack

const BULK = 8_000_000;
const bulkData = payload(BULK, 7);
host.register(await host.loadFile(modulePath("cubic")), "bench-cubic");
host.register(await host.loadFile(modulePath("reno")), "bench-reno-wasm");

function bulk(cc: string): () => void {
  return () => {
    const pair = new TcpPair(cleanPath({ delay: 0, rate: 1e12, maxQueue: SECOND }), 1);
    const l = pair.b.listen(null, 5001, 4);
    const c = pair.a.connect(pair.addrB, 5001, 0, { congestionControl: cc });
    const ea = new Endpoint(pair.a, c, bulkData, 0);
    const eb = new Endpoint(pair.b, -1, new Uint8Array(0), BULK);
    pair.run(60 * SECOND, () => {
      eb.acceptFrom(l);
      ea.pump(pair.now);
      eb.pump(pair.now);
    }, () => eb.got === BULK);
    if (eb.got !== BULK) throw new Error(`${cc}: only ${eb.got} of ${BULK} bytes arrived`);
    const used = pair.a.tcbOf(c)?.rec.cc;
    if (used !== undefined && used instanceof WasmCc && used.fallback !== null) {
      throw new Error(`${cc} fell back to Reno: ${used.fallbackReason}`);
    }
  };
}

// Warm the stack's code paths for every variant first, so the first bench does not pay the JIT.
for (let i = 0; i < 3; i++) for (const cc of ["reno", "bench-cubic", "bench-reno-wasm"]) bulk(cc)();

Deno.bench({
  name: "8 MB bulk, built-in NewReno",
  group: "bulk",
  baseline: true,
  n: 40,
  warmup: 10,
  fn: bulk("reno"),
});
Deno.bench({
  name: "8 MB bulk, cubic.wasm",
  group: "bulk",
  n: 40,
  warmup: 10,
  fn: bulk("bench-cubic"),
});
Deno.bench({
  name: "8 MB bulk, reno.wasm",
  group: "bulk",
  n: 40,
  warmup: 10,
  fn: bulk("bench-reno-wasm"),
});
Deno.bench({
  name: "8 MB bulk, built-in NewReno again (order check)",
  group: "bulk",
  n: 40,
  warmup: 10,
  fn: bulk("reno"),
});

/** `deno run`: interleaved medians, so every variant sees the same machine state. */
if (import.meta.main) {
  const variants = ["reno", "bench-cubic", "bench-reno-wasm"];
  const times: Record<string, number[]> = {};
  for (const v of variants) times[v] = [];
  for (let i = 0; i < 60; i++) {
    for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
      const t0 = performance.now();
      bulk(v)();
      times[v]!.push(performance.now() - t0);
    }
  }
  const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1]!;
  const base = median(times["reno"]!);
  for (const v of variants) {
    const m = median(times[v]!);
    console.log(
      `${v.padEnd(16)} median ${m.toFixed(2)} ms = ${(BULK / 1e3 / m).toFixed(0)} MB/s, ` +
        `${(m / base).toFixed(3)}x the built-in NewReno time`,
    );
  }
}
