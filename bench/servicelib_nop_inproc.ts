/**
 * NOP cost through ServiceLib without two processes: a RawGuest and a ServiceLib in one thread
 * (the guest encodes up to 512 NOPs, `ServiceLib.poll` serves them, the guest drains the
 * completions), so the number is CPU per NOP, not the scheduling of two spinners on a shared
 * machine (bench/servicelib_two_process.ts A is that). Optional argument: another checkout's
 * root, for A/B runs against an older tree.
 *
 * ```text
 * deno run -A bench/servicelib_nop_inproc.ts [ROOT] [--v8-flags=--trace-gc]
 * ```
 *
 * @module
 */
const ROOT = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
const { memoryWire } = await import(`${ROOT}/nsm/memory_link.ts`);
const { Nqe, NqeOp, encodeNqe } = await import(`${ROOT}/nsm/nqe.ts`);
const { RawGuest } = await import(`${ROOT}/nsm/raw_guest.ts`);
const { ServiceLib } = await import(`${ROOT}/nsm/service_lib.ts`);
const { createTcpipHost } = await import(`${ROOT}/nsm/stack_host.ts`);
const dir = await Deno.makeTempDir();
const [la] = memoryWire();
const a = createTcpipHost(la, { ipv4: "198.18.0.1/24" });
const sl = new ServiceLib(a.backend, { ctlPath: `${dir}/ctl.sock`, ringCapacity: 1024 });
await sl.listen();
const g = await RawGuest.attach(sl.ctlPath);
for (let i = 0; i < 200 && sl.stats.attached === 0; i++) await new Promise((r) => setTimeout(r, 5));
const tmpl = new Nqe();
tmpl.op = NqeOp.NOP;
const job = g.qs.job, comp = g.qs.completion;
let now = 1;
function round(n: number): number {
  let done = 0, sent = 0;
  while (done < n) {
    const k = job.claim(512);
    for (let i = 0; i < k; i++) encodeNqe(job.view, job.slot(i), tmpl);
    job.publish(k);
    sent += k;
    now += 1000;
    sl.poll(now);
    const m = comp.available(4096);
    comp.release(m);
    done += m;
  }
  return done;
}
round(200_000);
const N = 3_000_000;
for (let r = 0; r < 3; r++) {
  const t = performance.now();
  const d = round(N);
  const s = (performance.now() - t) / 1000;
  console.log(
    `inproc NOP: ${(d / s / 1e6).toFixed(2)} M/s (${
      (s * 1e9 / d).toFixed(0)
    } ns/NOP incl. guest encode)`,
  );
}
g.close();
sl.close(now);
await Deno.remove(dir, { recursive: true });
Deno.exit(0);
