/**
 * ServiceLib costs in one process (guest and NSM share the thread; no wake-ups): a raw guest
 * writes a batch of NQEs, `ServiceLib.poll` serves them, the guest takes the completions.
 * Per-NQE time = reported time / batch.
 *
 * `deno bench -A bench/servicelib_bench.ts`
 *
 * @module
 */

import { memoryWire } from "../nsm/memory_link.ts";
import { encodeNqe, Nqe, NqeOp } from "../nsm/nqe.ts";
import { RawGuest } from "../nsm/raw_guest.ts";
import { ServiceLib } from "../nsm/service_lib.ts";
import { createTcpipHost } from "../nsm/stack_host.ts";
import { SockLevel, SockOpt } from "../nsm/backend.ts";

const dir = await Deno.makeTempDir();
const [la, lb] = memoryWire();
const a = createTcpipHost(la, { ipv4: "198.18.0.1/24" });
createTcpipHost(lb, { ipv4: "198.18.0.2/24" });
const sl = new ServiceLib(a.backend, { ctlPath: `${dir}/ctl.sock`, batch: 64 });
await sl.listen();
const g = await RawGuest.attach(sl.ctlPath);
while (sl.guests.length === 0) await new Promise((r) => setTimeout(r, 5));
let now = 1;

function roundTrip(batch: number, fill: (i: number) => Parameters<RawGuest["submit"]>[0]): void {
  for (let i = 0; i < batch; i++) g.submit(fill(i));
  let got = 0;
  while (got < batch) {
    sl.poll(now += 1000);
    got += g.completions().length;
  }
}

const nop = (): Parameters<RawGuest["submit"]>[0] => (n) => n.op = NqeOp.NOP;

// Guest side kept minimal so the time is ServiceLib's: pre-encoded NOPs written with one
// publish per batch, completions released without decoding.
const tmpl = new Nqe();
tmpl.op = NqeOp.NOP;
function nopBatch(batch: number): void {
  const job = g.qs.job;
  const k = job.claim(batch);
  for (let i = 0; i < k; i++) encodeNqe(job.view, job.slot(i), tmpl);
  job.publish(k);
  let got = 0;
  const comp = g.qs.completion;
  while (got < k) {
    sl.poll(now += 1000);
    const n = comp.available(1024);
    comp.release(n);
    got += n;
  }
}

Deno.bench("NOP x256 pre-encoded, batch publish (ServiceLib cost per 256 NQEs)", () => {
  nopBatch(256);
});

Deno.bench("NOP x64 through ServiceLib (guest ring -> poll -> completion)", () => {
  roundTrip(64, nop);
});

Deno.bench("NOP x1 through ServiceLib", () => {
  roundTrip(1, nop);
});

// One UDP socket for option calls.
g.submit((n) => {
  n.op = NqeOp.SOCKET;
  n.arg0 = 2;
  n.arg1 = 1;
});
sl.poll(now += 1000);
const sid = g.completions()[0]!.result;

Deno.bench("GETSOCKOPT SO_RCVBUF x64", () => {
  roundTrip(64, () => (n) => {
    n.op = NqeOp.GETSOCKOPT;
    n.socketId = sid;
    n.arg0 = SockLevel.SOL_SOCKET;
    n.arg1 = SockOpt.SO_RCVBUF;
  });
});

Deno.bench("SOCKET + CLOSE x32 (64 NQEs)", () => {
  for (let i = 0; i < 32; i++) {
    g.submit((n) => {
      n.op = NqeOp.SOCKET;
      n.arg0 = 2;
      n.arg1 = 1;
    });
  }
  const ids: number[] = [];
  while (ids.length < 32) {
    sl.poll(now += 1000);
    for (const c of g.completions()) ids.push(c.result);
  }
  roundTrip(32, (i) => (n) => {
    n.op = NqeOp.CLOSE;
    n.socketId = ids[i]!;
  });
});

globalThis.addEventListener("unload", () => {
  sl.close(now);
  g.close();
  Deno.removeSync(dir, { recursive: true });
});
