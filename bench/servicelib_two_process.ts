/**
 * ServiceLib across processes: an NSM process (`nsm/memory_nsm.ts`: two stacks on a memory
 * wire, a ServiceLib each) and guests in other processes.
 *
 * A. NOP NQEs per second, pipelined (this process is a raw guest keeping the job ring full).
 * B. NOP round trip, batch 1 (median / p90 over 20 000, both sides busy-polling).
 * C. guest -> NSM stack -> wire -> NSM stack -> guest bytes/s: nkcat pushes `MB` megabytes
 *    from a guest of stack A to a guest of stack B (wall time from connect to the last byte).
 *
 * `deno run -A bench/servicelib_two_process.ts [MB]` (default 200)
 *
 * @module
 */

import { encodeNqe, Nqe, NqeOp } from "../nsm/nqe.ts";
import { RawGuest } from "../nsm/raw_guest.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MB = Number(Deno.args[0] ?? 200);
const dir = await Deno.makeTempDir({ prefix: "sl-bench-" });
const ctlA = `${dir}/a.sock`, ctlB = `${dir}/b.sock`;
const nsm = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", `${ROOT}nsm/memory_nsm.ts`, "--ctl", ctlA, "--peer-ctl", ctlB],
  stdout: "piped",
  stderr: "null",
}).spawn();
const rd = nsm.stdout.getReader();
let out = "";
while (!out.includes("ready")) out += new TextDecoder().decode((await rd.read()).value);

// A. pipelined NOPs.
const g = await RawGuest.attach(ctlA);
const tmpl = new Nqe();
tmpl.op = NqeOp.NOP;
const job = g.qs.job, comp = g.qs.completion;
let done = 0, sent = 0;
const t0 = performance.now();
while (performance.now() - t0 < 2000) {
  const k = job.claim(256);
  sent += k;
  for (let i = 0; i < k; i++) encodeNqe(job.view, job.slot(i), tmpl);
  if (k > 0) {
    job.publish(k);
    g.dev.bell.notify();
  }
  const n = comp.available(4096);
  if (n > 0) {
    comp.release(n);
    g.dev.bell.notify();
    done += n;
  } else await g.dev.bell.wait(() => comp.peekFill() > 0, 50_000, 100);
}
const secsA = (performance.now() - t0) / 1000;
while (done < sent) {
  const n = comp.available(4096);
  comp.release(n);
  done += n;
  if (n === 0) await g.dev.bell.wait(() => comp.peekFill() > 0, 50_000, 100);
}
console.log(
  `A. pipelined NOP: ${(done / secsA / 1e6).toFixed(2)} M NQE/s (${done} in ${secsA.toFixed(1)} s)`,
);

// B. ping-pong.
const lat: number[] = [];
for (let i = 0; i < 20_000; i++) {
  const s = performance.now();
  if (job.claim(1) !== 1) throw new Error("job ring full: a completion went missing");
  encodeNqe(job.view, job.slot(0), tmpl);
  job.publish(1);
  g.dev.bell.notify();
  while (comp.available(1) === 0) {
    if (performance.now() - s > 1) await g.dev.bell.wait(() => comp.peekFill() > 0, 0, 100);
  }
  comp.release(1);
  lat.push((performance.now() - s) * 1000);
}
lat.sort((x, y) => x - y);
console.log(
  `B. NOP round trip: median ${lat[lat.length >> 1]!.toFixed(1)} us, p90 ${
    lat[Math.floor(lat.length * 0.9)]!.toFixed(1)
  } us`,
);
g.close();

// C. bytes through two guests and both stacks.
const cat = (args: string[]): Deno.ChildProcess =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}guest/nkcat/cli.ts`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
const l = cat(["--ctl", ctlB, "--listen", "9000"]);
l.stdin.close();
await new Promise((r) => setTimeout(r, 1500));
const block = new Uint8Array(1 << 20).fill(7);
const tc = performance.now();
const c = cat(["--ctl", ctlA, "198.18.0.2", "9000"]);
c.stdout.cancel();
const feed = (async () => {
  const w = c.stdin.getWriter();
  for (let i = 0; i < MB; i++) await w.write(block);
  await w.close();
})();
let got = 0;
for await (const b of l.stdout) got += b.length;
const secsC = (performance.now() - tc) / 1000;
await feed;
await c.status;
await l.status;
console.log(
  `C. nkcat guest A -> guest B: ${got / 1e6} MB in ${secsC.toFixed(2)} s = ${
    (got / 1e6 / secsC).toFixed(0)
  } MB/s (${(got * 8 / 1e9 / secsC).toFixed(2)} Gbit/s, includes process start-up)`,
);

nsm.kill("SIGTERM");
await nsm.status;
await Deno.remove(dir, { recursive: true });
