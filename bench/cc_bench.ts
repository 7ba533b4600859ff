/**
 * Cost of one ACK through the congestion-control module ABI (write the event record, metered
 * call, output checks and read-back) for each module, against the built-in RenoCc.
 * One bench iteration = one ACK; every 1000 ACKs a loss episode keeps windows bounded.
 *
 *     deno bench -A bench/cc_bench.ts
 *
 * @module
 */

import { type CongestionControl, RenoCc } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { MILLISECOND } from "../stacks/time.ts";
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
