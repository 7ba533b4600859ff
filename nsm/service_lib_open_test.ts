// ServiceLib: CONNECT with NqeFlag.OPEN (SOCKET and CONNECT in one request).
import assert from "node:assert/strict";
import { MILLISECOND } from "../stacks/time.ts";
import { Errno, SockAddr } from "./backend.ts";
import { memoryWire } from "./memory_link.ts";
import { type Nqe, NqeEvent, NqeFlag, NqeOp } from "./nqe.ts";
import { RawGuest } from "./raw_guest.ts";
import { ServiceLib, type ServiceLibOptions } from "./service_lib.ts";
import { createTcpipHost, type TcpipHost } from "./stack_host.ts";

interface Lab {
  sl: ServiceLib;
  b: TcpipHost;
  g: RawGuest;
  step(): void;
  close(): void;
}

async function lab(options: ServiceLibOptions = {}): Promise<Lab> {
  const dir = await Deno.makeTempDir();
  const [la, lb] = memoryWire();
  const a = createTcpipHost(la, { ipv4: "198.18.0.1/24" });
  const b = createTcpipHost(lb, { ipv4: "198.18.0.2/24" });
  const sl = new ServiceLib(a.backend, {
    ctlPath: `${dir}/ctl.sock`,
    chunksPerHalf: 64,
    ringCapacity: 64,
    ...options,
  });
  await sl.listen();
  const g = await RawGuest.attach(sl.ctlPath);
  for (let i = 0; i < 200 && sl.stats.attached === 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  let now = 1;
  return {
    sl,
    b,
    g,
    step(): void {
      now += MILLISECOND;
      a.iface.poll(now);
      sl.poll(now);
      a.iface.poll(now);
      b.iface.poll(now);
    },
    close(): void {
      sl.close(now);
      g.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** Peer B listens on TCP `port` with its backend (no guest). */
function listenOnB(l: Lab, port: number): void {
  const pb = l.b.backend;
  const ls = pb.socket(2, 1, 0);
  const any = new SockAddr();
  any.family = 2;
  any.port = port;
  assert.equal(pb.bind(ls, any), 0);
  assert.equal(pb.listen(ls, 8), 0);
}

/** Submits CONNECT|OPEN (TCP over IPv4 to 198.18.0.2:port unless `fill` changes it). */
function openConnect(l: Lab, port: number, fill: (n: Nqe) => void = () => {}): number {
  return l.g.submit((n) => {
    n.op = NqeOp.CONNECT;
    n.flags = NqeFlag.OPEN;
    n.arg0 = 2;
    n.arg1 = 1;
    n.family = 2;
    n.addr.set([198, 18, 0, 2]);
    n.port = port;
    fill(n);
  });
}

/** Steps until request `id` completes (at most 50 steps); all completions seen meanwhile. */
function until(l: Lab, id: number): { done: Nqe | undefined; seen: Nqe[] } {
  const seen: Nqe[] = [];
  for (let i = 0; i < 50 && !seen.some((c) => c.requestId === id); i++) {
    l.step();
    seen.push(...l.g.completions());
  }
  return { done: seen.find((c) => c.requestId === id), seen };
}

Deno.test("ServiceLib CONNECT|OPEN opens and connects with one NQE: one completion naming the new socket, which then carries data", async () => {
  const l = await lab();
  try {
    listenOnB(l, 7001);
    const before = l.sl.stats.requests;
    const r = openConnect(l, 7001);
    const { done, seen } = until(l, r);
    assert.ok(done, "no completion");
    assert.equal(done.result, 0);
    assert.equal(done.op, NqeOp.CONNECT);
    assert.ok(done.socketId > 0, `socketId ${done.socketId}`);
    assert.equal(done.family, 2, "the completion carries the local address");
    assert.ok(done.port > 0);
    assert.equal(seen.length, 1, "one completion for the pipelined pair");
    assert.equal(l.sl.stats.requests - before, 1);
    assert.equal(l.sl.guests[0]!.sockets, 1);
    // The id is a real socket: a GETSOCKOPT on it answers (an unknown id would be -EBADF).
    const q = l.g.submit((n) => {
      n.op = NqeOp.GETSOCKOPT;
      n.socketId = done.socketId;
      n.arg0 = 1; // SOL_SOCKET
      n.arg1 = 4; // SO_ERROR
    });
    assert.equal(until(l, q).done!.result, 0);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib CONNECT|OPEN surfaces the open's errors (-EMFILE, -EAFNOSUPPORT, -EPROTONOSUPPORT) with socketId 0 and opens nothing", async () => {
  const l = await lab({ maxSocketsPerGuest: 1 });
  try {
    listenOnB(l, 7002);
    const af = openConnect(l, 7002, (n) => n.arg0 = 99);
    const proto = openConnect(l, 7002, (n) => n.arg2 = 99);
    l.step();
    const cs = l.g.completions();
    const c1 = cs.find((c) => c.requestId === af)!, c2 = cs.find((c) => c.requestId === proto)!;
    assert.equal(c1.result, -Errno.EAFNOSUPPORT);
    assert.equal(c1.socketId, 0);
    assert.equal(c2.result, -Errno.EPROTONOSUPPORT);
    assert.equal(c2.socketId, 0);
    assert.equal(l.sl.guests[0]!.sockets, 0);
    // The one socket allowed, then the limit.
    const first = until(l, openConnect(l, 7002)).done!;
    assert.equal(first.result, 0);
    const over = until(l, openConnect(l, 7002)).done!;
    assert.equal(over.result, -Errno.EMFILE);
    assert.equal(over.socketId, 0);
    assert.equal(l.sl.guests[0]!.counters["limit-sockets"], 1);
    assert.equal(l.sl.guests[0]!.sockets, 1);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib CONNECT|OPEN that is refused completes -ECONNREFUSED with socketId 0 and leaves no socket or buffer reservation", async () => {
  const l = await lab();
  try {
    const r = openConnect(l, 7003); // nobody listens: B answers RST
    const { done } = until(l, r);
    assert.ok(done, "no completion");
    assert.equal(done.result, -Errno.ECONNREFUSED);
    assert.equal(done.socketId, 0);
    const info = l.sl.guests[0]!;
    assert.equal(info.sockets, 0, "the socket opened for the CONNECT is closed");
    assert.equal(info.bufferBytes, 0);
    // A refused connect fails at once too when nothing routes there (no socket either).
    const unreach = until(l, openConnect(l, 7003, (n) => n.addr.set([198, 19, 0, 1]))).done!;
    assert.ok(unreach.result < 0 && unreach.result !== -Errno.EINPROGRESS, `${unreach.result}`);
    assert.equal(unreach.socketId, 0);
    assert.equal(l.sl.guests[0]!.sockets, 0);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib CONNECT|OPEN|NONBLOCK answers -EINPROGRESS naming the socket, then an EVENT with OUT", async () => {
  const l = await lab();
  try {
    listenOnB(l, 7004);
    const r = openConnect(l, 7004, (n) => n.flags |= NqeFlag.NONBLOCK);
    l.step();
    const c = l.g.completions().find((x) => x.requestId === r)!;
    assert.equal(c.result, -Errno.EINPROGRESS);
    assert.ok(c.socketId > 0);
    let ev: Nqe | undefined;
    for (let i = 0; i < 50 && ev === undefined; i++) {
      l.step();
      ev = l.g.receives().find((x) => x.op === NqeOp.EVENT && x.socketId === c.socketId);
    }
    assert.ok(ev, "no EVENT");
    assert.ok(ev.arg0 & NqeEvent.OUT);
    assert.equal(l.sl.guests[0]!.sockets, 1);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib rejects OPEN on other ops and on a CONNECT that names a socket (-EINVAL, bad-flags)", async () => {
  const l = await lab();
  try {
    const nop = l.g.submit((n) => {
      n.op = NqeOp.NOP;
      n.flags = NqeFlag.OPEN;
    });
    const sock = l.g.submit((n) => {
      n.op = NqeOp.SOCKET;
      n.flags = NqeFlag.OPEN;
      n.arg0 = 2;
      n.arg1 = 1;
    });
    const named = openConnect(l, 7005, (n) => n.socketId = 1);
    l.step();
    const cs = new Map(l.g.completions().map((c) => [c.requestId, c]));
    assert.equal(cs.get(nop)!.result, -Errno.EINVAL);
    assert.equal(cs.get(sock)!.result, -Errno.EINVAL);
    assert.equal(cs.get(named)!.result, -Errno.EINVAL);
    assert.equal(l.sl.guests[0]!.counters["bad-flags"], 3);
    assert.equal(l.sl.guests[0]!.sockets, 0);
  } finally {
    l.close();
  }
});
