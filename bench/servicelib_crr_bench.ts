/**
 * The NSM's per-connection cost in one process (TCP_CRR as bench:e2e's `conn_rate`): a lean
 * raw guest (rings written directly, one reused Nqe) sends SOCKET, CONNECT, SEND (1 byte),
 * RECV_CREDIT, CLOSE through a ServiceLib on our stack (host A); host B, a second stack on an
 * in-memory wire, accepts, echoes the byte and closes. No wake-ups, no AF_XDP: the time is
 * ServiceLib + TcpipBackend + both stacks. Time per iteration = one connection.
 *
 * `deno bench -A bench/servicelib_crr_bench.ts`
 * `deno run -A bench/servicelib_crr_bench.ts [--conns N] [--heap DEPTH]` prints µs per
 * connection; `--heap` instead samples allocations (V8's sampling heap profiler, dead objects
 * included) and prints bytes per connection by site (inner DEPTH frames).
 *
 * @module
 */

import { memoryWire } from "../nsm/memory_link.ts";
import { decodeNqe, encodeNqe, Nqe, NqeFlag, NqeOp } from "../nsm/nqe.ts";
import { RawGuest } from "../nsm/raw_guest.ts";
import { ServiceLib } from "../nsm/service_lib.ts";
import { createTcpipHost } from "../nsm/stack_host.ts";
import { SockType } from "../nsm/backend.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { MILLISECOND } from "../stacks/time.ts";
import { formatHeapSites, startHeapSampling, stopHeapSampling } from "./heap_sample.ts";

const dir = await Deno.makeTempDir();
const [la, lb] = memoryWire();
const a = createTcpipHost(la, { ipv4: "198.18.0.1/24" });
const b = createTcpipHost(lb, { ipv4: "198.18.0.2/24" });
const sl = new ServiceLib(a.backend, { ctlPath: `${dir}/ctl.sock`, batch: 64 });
await sl.listen();
const g = await RawGuest.attach(sl.ctlPath);
while (sl.guests.length === 0) await new Promise((r) => setTimeout(r, 5));
const listener = b.tcp.listen(IpAddress.parse("198.18.0.2"), 7100, 1024, {});
let now = 1;
const PEER = new Uint8Array([198, 18, 0, 2]);
const req = new Nqe();
const got = new Nqe();
const rxBuf = new Uint8Array(64);
const data = g.dev.data;
const { job, send, completion, receive } = g.qs;
let nextReq = 1;
/** Server side: accepted connections not closed yet. */
const served = new Set<number>();

function submit(onSend: boolean): void {
  const ring = onSend ? send : job;
  if (ring.claim(1) === 0) throw new Error("ring full");
  req.requestId = nextReq++;
  encodeNqe(ring.view, ring.slot(0), req);
  ring.publish(1);
}

/** One pass of everything: both stacks, the ServiceLib, the echo server. */
function pass(): void {
  now += 20 * 1000; // 20 µs per pass
  a.iface.poll(now);
  sl.poll(now);
  la.flush();
  b.iface.poll(now);
  for (;;) {
    const c = b.tcp.accept(listener);
    if (c < 0) break;
    served.add(c);
  }
  for (const c of served) {
    const n = b.tcp.recv(c, rxBuf, now);
    if (n > 0) b.tcp.send(c, rxBuf.subarray(0, n), now);
    else if (n === 0) {
      b.tcp.close(c, now);
      served.delete(c);
    }
  }
  lb.flush();
}

/** Runs passes until a completion arrives; returns it in `got`. */
function complete(): Nqe {
  for (let i = 0; i < 10_000; i++) {
    if (completion.available(1) > 0) {
      decodeNqe(completion.view, completion.slot(0), got);
      completion.release(1);
      return got;
    }
    pass();
  }
  throw new Error("no completion");
}

/** One TCP_CRR transaction through the ServiceLib. */
function connection(): void {
  req.clear();
  req.op = NqeOp.SOCKET;
  req.arg0 = 2;
  req.arg1 = SockType.STREAM;
  submit(false);
  const sid = complete().result;
  if (sid <= 0) throw new Error(`SOCKET ${sid}`);
  req.clear();
  req.op = NqeOp.CONNECT;
  req.socketId = sid;
  req.family = 2;
  req.addr.set(PEER);
  req.port = 7100;
  submit(false);
  if (complete().result !== 0) throw new Error(`CONNECT ${got.result}`);
  const chunk = data.alloc();
  data.bytes[chunk] = 0x61;
  data.lend(chunk);
  req.clear();
  req.op = NqeOp.SEND;
  req.socketId = sid;
  req.dataOffset = chunk;
  req.dataLength = 1;
  submit(true);
  const s = complete();
  if (s.result !== 1 || !(s.flags & NqeFlag.CHUNK_RETURNED)) throw new Error(`SEND ${s.result}`);
  if (data.reclaim(chunk) !== null) throw new Error("reclaim");
  // The echo: one RECV on the receive ring.
  for (let i = 0;; i++) {
    if (i > 10_000) throw new Error("no RECV");
    if (receive.available(1) > 0) {
      decodeNqe(receive.view, receive.slot(0), got);
      receive.release(1);
      if (got.op === NqeOp.RECV) break;
      continue;
    }
    pass();
  }
  if (data.borrow(got.dataOffset, got.dataLength) !== null) throw new Error("borrow");
  data.giveBack(got.dataOffset);
  req.clear();
  req.op = NqeOp.RECV_CREDIT;
  req.socketId = sid;
  req.dataOffset = got.dataOffset;
  req.arg0 = got.dataLength;
  submit(false);
  req.clear();
  req.op = NqeOp.CLOSE;
  req.socketId = sid;
  submit(false);
  complete();
  // Let the FIN exchange finish (not timed apart: it is part of a connection's cost).
  for (let i = 0; i < 4; i++) pass();
  // Drain stray notifications (EOF events of the closed socket).
  const n = receive.available(1024);
  if (n > 0) receive.release(n);
}

// Warm-up (JIT, pools).
for (let i = 0; i < 2000; i++) connection();

if (import.meta.main && !Deno.args.includes("--bench")) {
  const i = Deno.args.indexOf("--conns");
  const conns = i >= 0 ? Number(Deno.args[i + 1]) : 20_000;
  const h = Deno.args.indexOf("--heap");
  if (h >= 0) {
    const depth = Number(Deno.args[h + 1] ?? "2");
    const sampler = startHeapSampling(64);
    for (let k = 0; k < conns; k++) connection();
    console.log(formatHeapSites(await stopHeapSampling(sampler, depth), 40, conns));
    Deno.exit(0);
  }
  const t0 = performance.now();
  for (let k = 0; k < conns; k++) connection();
  const us = (performance.now() - t0) * 1000 / conns;
  console.log(
    JSON.stringify({ conns, usPerConn: Number(us.toFixed(2)), simulatedMs: now / MILLISECOND }),
  );
  sl.close(now);
  g.close();
  Deno.removeSync(dir, { recursive: true });
  Deno.exit(0);
}

Deno.bench("TCP_CRR through ServiceLib + both stacks (one connection)", () => {
  connection();
});

globalThis.addEventListener("unload", () => {
  sl.close(now);
  g.close();
  Deno.removeSync(dir, { recursive: true });
});
