import assert from "node:assert/strict";
import { MILLISECOND } from "../stacks/time.ts";
import { Errno, type SockAddr, type SocketBackend, SockLevel, SockOpt } from "./backend.ts";
import { memoryWire } from "./memory_link.ts";
import { Nqe, NqeEvent, NqeFlag, NqeOp } from "./nqe.ts";
import { RawGuest } from "./raw_guest.ts";
import { ServiceLib, type ServiceLibOptions } from "./service_lib.ts";
import { createTcpipHost, type TcpipHost } from "./stack_host.ts";

interface Lab {
  sl: ServiceLib;
  a: TcpipHost;
  b: TcpipHost;
  t: { now: number };
  dir: string;
  step(n?: number): void;
  attach(): Promise<RawGuest>;
  close(): void;
}

async function lab(
  options: ServiceLibOptions = {},
  wrap: (b: SocketBackend) => SocketBackend = (b) => b,
): Promise<Lab> {
  const dir = await Deno.makeTempDir();
  const [la, lb] = memoryWire();
  const a = createTcpipHost(la, { ipv4: "198.18.0.1/24" });
  const b = createTcpipHost(lb, { ipv4: "198.18.0.2/24" });
  const sl = new ServiceLib(wrap(a.backend), {
    ctlPath: `${dir}/ctl.sock`,
    chunksPerHalf: 64,
    ringCapacity: 64,
    ...options,
  });
  await sl.listen();
  const t = { now: 1 };
  const guests: RawGuest[] = [];
  return {
    sl,
    a,
    b,
    t,
    dir,
    step(n = 1): void {
      for (let i = 0; i < n; i++) {
        t.now += MILLISECOND;
        a.iface.poll(t.now);
        sl.poll(t.now);
        a.iface.poll(t.now);
        b.iface.poll(t.now);
      }
    },
    async attach(): Promise<RawGuest> {
      const before = sl.stats.attached;
      const g = await RawGuest.attach(sl.ctlPath);
      for (let i = 0; i < 200 && sl.stats.attached === before; i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      guests.push(g);
      return g;
    },
    close(): void {
      sl.close(t.now);
      for (const g of guests) g.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

function one(g: RawGuest, reqId: number): Nqe {
  const c = g.completions().find((x) => x.requestId === reqId);
  assert.ok(c, `no completion for request ${reqId}`);
  return c;
}

function socket(l: Lab, g: RawGuest, type = 1): number {
  const r = g.submit((n) => {
    n.op = NqeOp.SOCKET;
    n.arg0 = 2;
    n.arg1 = type;
  });
  l.step();
  const c = one(g, r);
  assert.ok(c.result > 0, `SOCKET failed: ${c.result}`);
  return c.result;
}

/** Peer B listens on TCP `port` with its backend directly (no guest); `any` is reused by accept. */
async function listenOnB(
  l: Lab,
  port: number,
): Promise<{ pb: Lab["b"]["backend"]; ls: number; any: SockAddr }> {
  const pb = l.b.backend;
  const ls = pb.socket(2, 1, 0);
  const any = new (await import("./backend.ts")).SockAddr();
  any.family = 2;
  any.port = port;
  pb.bind(ls, any);
  pb.listen(ls, 8);
  return { pb, ls, any };
}

/** A blocking CONNECT of socket `s` to 198.18.0.2:`port`; its completion, if one came in 50 steps. */
function connectToB(l: Lab, g: RawGuest, s: number, port: number): Nqe | undefined {
  const conn = g.submit((n) => {
    n.op = NqeOp.CONNECT;
    n.socketId = s;
    n.family = 2;
    n.addr.set([198, 18, 0, 2]);
    n.port = port;
  });
  let c: Nqe | undefined;
  for (let i = 0; i < 50 && c === undefined; i++) {
    l.step();
    c = g.completions().find((x) => x.requestId === conn);
  }
  return c;
}

Deno.test("ServiceLib answers NOP and SOCKET, and rejects unknown ops, bad flags, reserved byte and wrong queue set", async () => {
  const l = await lab();
  try {
    const g = await l.attach();
    const nop = g.submit((n) => n.op = NqeOp.NOP);
    const bad = g.submit((n) => n.op = 99);
    const wrongRing = g.submit((n) => n.op = NqeOp.SEND); // SEND belongs on the send ring
    const notify = g.submit((n) => n.op = NqeOp.EVENT); // NSM->guest only
    const flags = g.submit((n) => {
      n.op = NqeOp.NOP;
      n.flags = 0x40;
    });
    const reserved = g.submit((n) => n.op = NqeOp.NOP, false, 7);
    const qs = g.submit((n) => {
      n.op = NqeOp.NOP;
      n.queueSet = 3;
    });
    const jobOnSend = g.submit((n) => n.op = NqeOp.SOCKET, true);
    l.step();
    const cs = new Map(g.completions().map((c) => [c.requestId, c]));
    assert.equal(cs.get(nop)!.result, 0);
    assert.ok(cs.get(nop)!.flags & NqeFlag.COMPLETION);
    assert.equal(cs.get(bad)!.result, -Errno.ENOSYS);
    assert.equal(cs.get(wrongRing)!.result, -Errno.ENOSYS);
    assert.equal(cs.get(notify)!.result, -Errno.ENOSYS);
    assert.equal(cs.get(flags)!.result, -Errno.EINVAL);
    assert.equal(cs.get(reserved)!.result, -Errno.EINVAL);
    assert.equal(cs.get(qs)!.result, -Errno.EINVAL);
    assert.equal(cs.get(jobOnSend)!.result, -Errno.ENOSYS);
    const c = l.sl.guests[0]!.counters;
    assert.equal(c["bad-op"], 4);
    assert.equal(c["bad-flags"], 2);
    assert.equal(c["bad-queue-set"], 1);
    assert.equal(socket(l, g), 1);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib's slot-to-slot NOP completion echoes socket, request id and data range, zeroes the rest, and is counted", async () => {
  const l = await lab();
  try {
    const g = await l.attach();
    const before = { req: l.sl.stats.requests, comp: l.sl.stats.completions };
    const id = g.submit((n) => {
      n.op = NqeOp.NOP;
      n.socketId = 5;
      n.dataOffset = 77;
      n.dataLength = 9;
      n.arg0 = 3;
      n.arg2 = 1234;
      n.port = 80;
      n.family = 2;
      n.aux = 6;
    });
    l.step();
    const cs = g.completions();
    assert.equal(cs.length, 1);
    const c = cs[0]!;
    assert.equal(c.op, NqeOp.NOP);
    assert.equal(c.flags, NqeFlag.COMPLETION);
    assert.equal(c.requestId, id);
    assert.equal(c.socketId, 5);
    assert.equal(c.result, 0);
    assert.equal(c.dataOffset, 77);
    assert.equal(c.dataLength, 9);
    assert.deepEqual([c.arg0, c.arg1, c.arg2, c.port, c.family, c.aux], [0, 0, 0, 0, 0, 0]);
    assert.ok(c.addr.every((b) => b === 0));
    assert.equal(l.sl.stats.requests - before.req, 1);
    assert.equal(l.sl.stats.completions - before.comp, 1);
    assert.equal(l.sl.guests[0]!.counters.nqes, 1);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib gives each guest its own socket-id namespace: another guest's id is -EBADF and stays open", async () => {
  const l = await lab();
  try {
    const g1 = await l.attach();
    const g2 = await l.attach();
    const s1a = socket(l, g1);
    const s1b = socket(l, g1);
    const s2 = socket(l, g2);
    assert.equal(s1a, 1);
    assert.equal(s1b, 2);
    assert.equal(s2, 1); // same number, different socket
    const r = g2.submit((n) => {
      n.op = NqeOp.CLOSE;
      n.socketId = s1b; // guest 1's id, unknown to guest 2
    });
    l.step();
    assert.equal(one(g2, r).result, -Errno.EBADF);
    // Guest 1's socket 2 is untouched: binding it works.
    const b = g1.submit((n) => {
      n.op = NqeOp.BIND;
      n.socketId = s1b;
      n.family = 2;
      n.port = 4000;
    });
    l.step();
    assert.equal(one(g1, b).result, 0);
    assert.equal(l.sl.guests.find((x) => x.id === g2.id)!.counters["bad-socket"], 1);
    assert.equal(l.sl.guests.find((x) => x.id === g1.id)!.counters["bad-socket"], 0);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib enforces per-guest socket (-EMFILE) and buffer (-ENOBUFS) limits without affecting other guests", async () => {
  const l = await lab({ maxSocketsPerGuest: 3, maxBufferBytesPerGuest: 5 * 256 * 1024 });
  try {
    const g1 = await l.attach();
    const g2 = await l.attach();
    for (let i = 0; i < 2; i++) socket(l, g1);
    const r = g1.submit((n) => {
      n.op = NqeOp.SOCKET;
      n.arg0 = 2;
      n.arg1 = 1;
    });
    l.step();
    // Each socket reserves SO_RCVBUF + SO_SNDBUF (2 x 256 KiB here): the third exceeds 1.25 MiB.
    assert.equal(one(g1, r).result, -Errno.ENOBUFS);
    const s = g1.submit((n) => {
      n.op = NqeOp.SETSOCKOPT;
      n.socketId = 1;
      n.arg0 = SockLevel.SOL_SOCKET;
      n.arg1 = SockOpt.SO_RCVBUF;
      n.arg2 = 64 * 1024 * 1024;
    });
    l.step();
    assert.equal(one(g1, s).result, -Errno.ENOBUFS);
    assert.equal(socket(l, g2), 1); // guest 2 is not limited by guest 1's use
    assert.equal(socket(l, g2), 2);
    const info = l.sl.guests.find((x) => x.id === g1.id)!;
    assert.equal(info.counters["limit-memory"], 2);
    const l2 = await lab({ maxSocketsPerGuest: 2 });
    try {
      const g = await l2.attach();
      socket(l2, g);
      socket(l2, g);
      const r3 = g.submit((n) => {
        n.op = NqeOp.SOCKET;
        n.arg0 = 2;
        n.arg1 = 1;
      });
      l2.step();
      assert.equal(one(g, r3).result, -Errno.EMFILE);
    } finally {
      l2.close();
    }
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib answers -EFAULT for data references outside the region, in the NSM half, or crossing a chunk", async () => {
  const l = await lab();
  try {
    const g = await l.attach();
    const s = socket(l, g, 2);
    const chunk = g.dev.data.alloc();
    g.dev.data.lend(chunk);
    const half = g.dev.data.peerBase; // start of the NSM half
    const cases = [
      [0x7fff_0000, 10],
      [half, 10],
      [chunk + 10, g.dev.data.chunkSize],
    ];
    const ids = cases.map(([off, len]) =>
      g.submit((n) => {
        n.op = NqeOp.SENDTO;
        n.socketId = s;
        n.dataOffset = off!;
        n.dataLength = len!;
        n.family = 2;
        n.addr.set([198, 18, 0, 2]);
        n.port = 9;
      }, true)
    );
    const credit = g.submit((n) => {
      n.op = NqeOp.RECV_CREDIT;
      n.socketId = s;
      n.dataOffset = chunk; // a guest chunk: the NSM never lent it
      n.arg0 = 1;
    });
    l.step();
    const cs = new Map(g.completions().map((c) => [c.requestId, c]));
    for (const id of ids) {
      assert.equal(cs.get(id)!.result, -Errno.EFAULT);
      assert.equal(cs.get(id)!.flags & NqeFlag.CHUNK_RETURNED, 0);
    }
    assert.equal(cs.get(credit)!.result, -Errno.EFAULT);
    assert.equal(l.sl.guests[0]!.counters["bad-data"], 4);
    // A valid SENDTO still works afterwards.
    g.dev.data.bytes.set([1, 2, 3], chunk);
    const ok = g.submit((n) => {
      n.op = NqeOp.SENDTO;
      n.socketId = s;
      n.dataOffset = chunk;
      n.dataLength = 3;
      n.family = 2;
      n.addr.set([198, 18, 0, 2]);
      n.port = 9;
    }, true);
    l.step();
    const c = one(g, ok);
    assert.equal(c.result, 3);
    assert.ok(c.flags & NqeFlag.CHUNK_RETURNED);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib disconnects a guest whose ring index jumps and resets its sockets; the other guest keeps working", async () => {
  const l = await lab();
  try {
    const g1 = await l.attach();
    const g2 = await l.attach();
    socket(l, g1);
    socket(l, g2);
    const path = l.sl.guests.find((x) => x.id === g1.id)!.device;
    await Deno.stat(path);
    g1.corruptIndex("job", g1.qs.job.index + 1000); // beyond the ring's capacity
    l.step(2);
    assert.equal(l.sl.guests.length, 1);
    assert.equal(l.sl.guests[0]!.id, g2.id);
    assert.equal(l.sl.stats.detached["ring-fault"], 1);
    assert.equal(l.sl.stats.rejected["ring-fault"], 1);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound); // device freed
    assert.equal(l.a.backend.socketCount, 1); // only guest 2's socket is left
    const r = g2.submit((n) => n.op = NqeOp.NOP);
    l.step();
    assert.equal(one(g2, r).result, 0);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib disconnects a guest that never drains its completion ring after stallNs, not before", async () => {
  const l = await lab({ stallNs: 50 * MILLISECOND });
  try {
    const g = await l.attach();
    const other = await l.attach();
    // 64-slot completion ring: 200 NOPs overfill it; the guest never reads completions.
    let sent = 0;
    for (let round = 0; round < 10; round++) {
      while (g.submit((n) => n.op = NqeOp.NOP) > 0) sent++;
      l.step();
    }
    assert.ok(sent > 64);
    assert.equal(l.sl.guests.length, 2, "not disconnected before the stall timeout");
    l.step(60);
    assert.equal(l.sl.guests.length, 1);
    assert.equal(l.sl.stats.detached["stalled"], 1);
    const r = other.submit((n) => n.op = NqeOp.NOP);
    l.step();
    assert.equal(one(other, r).result, 0);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib TCP through NQEs: connect, send, RECV chunks with stream offsets, credit backpressure per socket, EOF event", async () => {
  const l = await lab({ defaultRcvBuf: 64 * 1024 });
  try {
    const g = await l.attach();
    // Peer B listens with the backend directly.
    const { pb, ls, any } = await listenOnB(l, 5001);
    const s = socket(l, g);
    const c = connectToB(l, g, s, 5001);
    assert.ok(c);
    assert.equal(c.result, 0);
    assert.equal(c.family, 2); // local address extension
    assert.deepEqual([...c.addr.subarray(0, 4)], [198, 18, 0, 1]);
    const peer = pb.accept(ls, any);
    assert.ok(peer > 0);
    // Peer sends 200 KiB; the guest never returns credit: delivery stops at 64 KiB, or less
    // than 4 KiB short of it (no read into a sliver of credit: see the test below).
    const big = new Uint8Array(200 * 1024).map((_, i) => i & 0xff);
    let off = 0;
    const got: Nqe[] = [];
    for (let i = 0; i < 300; i++) {
      if (off < big.length) off += Math.max(0, pb.send(peer, big.subarray(off), false, l.t.now));
      l.step();
      got.push(...g.receives());
    }
    const delivered = got.filter((x) => x.op === NqeOp.RECV).reduce((a, x) => a + x.dataLength, 0);
    assert.ok(delivered <= 64 * 1024 && delivered > 60 * 1024, `${delivered} B delivered`);
    // Stream offsets are contiguous.
    let expect = 0;
    for (const r of got.filter((x) => x.op === NqeOp.RECV)) {
      assert.equal(r.arg2, expect);
      expect += r.dataLength;
      const bytes = g.dev.data.bytes.subarray(r.dataOffset, r.dataOffset + r.dataLength);
      assert.equal(bytes[0], r.arg2 & 0xff);
    }
    // Return everything: the rest flows, then FIN -> EVENT RDHUP.
    pb.shutdown(peer, 1, l.t.now);
    let total = delivered;
    let rdhup = false;
    let pending = got.filter((x) => x.op === NqeOp.RECV);
    for (let i = 0; i < 400 && !rdhup; i++) {
      for (const r of pending) {
        g.dev.data.borrow(r.dataOffset, r.dataLength);
        g.dev.data.giveBack(r.dataOffset);
        g.submit((n) => {
          n.op = NqeOp.RECV_CREDIT;
          n.socketId = s;
          n.dataOffset = r.dataOffset;
          n.arg0 = r.dataLength;
        });
      }
      if (off < big.length) off += Math.max(0, pb.send(peer, big.subarray(off), false, l.t.now));
      l.step();
      pending = [];
      for (const r of g.receives()) {
        if (r.op === NqeOp.RECV) {
          total += r.dataLength;
          pending.push(r);
        } else if (r.op === NqeOp.EVENT && (r.arg0 & NqeEvent.RDHUP)) rdhup = true;
      }
    }
    assert.equal(total, big.length);
    assert.ok(rdhup);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib delivers into the whole chunk's view and limits the read to the guest's credit (one kept view per chunk)", async () => {
  // Every stream recv the backend sees: [dst.length, max].
  const calls: [number, number][] = [];
  const recorder = (b: SocketBackend): SocketBackend =>
    new Proxy(b, {
      get(t, p): unknown {
        const v = Reflect.get(t, p, t);
        if (p !== "recv") return typeof v === "function" ? v.bind(t) : v;
        return (id: number, dst: Uint8Array, now: number, max?: number): number => {
          calls.push([dst.length, max ?? dst.length]);
          return t.recv(id, dst, now, max);
        };
      },
    });
  // 40 KiB of credit: the reads that reach it are cut short by the guest's credit.
  const l = await lab({ defaultRcvBuf: 40 * 1024 }, recorder);
  try {
    const g = await l.attach();
    const cs = g.dev.data.chunkSize;
    const { pb, ls, any } = await listenOnB(l, 5002);
    const s = socket(l, g);
    assert.equal(connectToB(l, g, s, 5002)?.result, 0);
    const peer = pb.accept(ls, any);
    const big = new Uint8Array(100 * 1024);
    let off = 0, delivered = 0;
    for (let i = 0; i < 200; i++) {
      if (off < big.length) off += Math.max(0, pb.send(peer, big.subarray(off), false, l.t.now));
      l.step();
      for (const r of g.receives()) if (r.op === NqeOp.RECV) delivered += r.dataLength;
    }
    assert.ok(delivered <= 40 * 1024 && delivered > 36 * 1024, `credit-limited: ${delivered}`);
    assert.ok(calls.length > 0);
    assert.ok(calls.every(([len]) => len === cs), `dst lengths ${calls.map((c) => c[0])}`);
    // The last reads were cut by the remaining credit, through max, not through a shorter view.
    assert.ok(calls.some(([, max]) => max < cs), `max ${calls.map((c) => c[1])}`);
    // Less than 4 KiB of credit is left while the guest holds what it got: nothing is read
    // into it (a read shorter than a few segments could not end where a segment ends).
    const reads = calls.length;
    for (let i = 0; i < 50; i++) {
      if (off < big.length) off += Math.max(0, pb.send(peer, big.subarray(off), false, l.t.now));
      l.step();
      for (const r of g.receives()) if (r.op === NqeOp.RECV) delivered += r.dataLength;
    }
    assert.ok(delivered > 36 * 1024 && delivered <= 40 * 1024, `no sliver read: ${delivered}`);
    assert.equal(calls.length, reads, "no recv into a sliver of credit");
    assert.ok(calls.every(([, max]) => max >= 4096), `max ${calls.map((c) => c[1])}`);
    // Credit back (the guest consumed 8 KiB): delivery goes on.
    g.submit((n) => {
      n.op = NqeOp.RECV_CREDIT;
      n.socketId = s;
      n.dataOffset = 0xffff_ffff;
      n.arg0 = 8192;
    });
    for (let i = 0; i < 50; i++) {
      l.step();
      for (const r of g.receives()) if (r.op === NqeOp.RECV) delivered += r.dataLength;
    }
    assert.ok(delivered > 40 * 1024, `delivery resumed: ${delivered}`);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib: a refused blocking CONNECT completes with -ECONNREFUSED; a guest that closes its control socket loses its sockets", async () => {
  const l = await lab();
  try {
    const g = await l.attach();
    const s = socket(l, g);
    const c = connectToB(l, g, s, 9);
    assert.equal(c?.result, -Errno.ECONNREFUSED);
    socket(l, g);
    assert.equal(l.a.backend.socketCount, 2);
    g.ctl.close();
    for (let i = 0; i < 100 && l.sl.guests.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
      l.step();
    }
    assert.equal(l.sl.guests.length, 0);
    assert.equal(l.a.backend.socketCount, 0);
    assert.equal(l.sl.stats.detached["control-closed"], 1);
  } finally {
    l.close();
  }
});

Deno.test("ServiceLib: a NONBLOCK CONNECT answers -EINPROGRESS, then an EVENT with OUT (or ERR + result -ECONNREFUSED)", async () => {
  const l = await lab();
  try {
    const g = await l.attach();
    await listenOnB(l, 5002);
    const results: Record<number, { c?: Nqe | undefined; ev?: Nqe | undefined }> = {};
    for (const port of [5002, 9]) {
      const s = socket(l, g);
      const r = g.submit((n) => {
        n.op = NqeOp.CONNECT;
        n.flags = NqeFlag.NONBLOCK;
        n.socketId = s;
        n.family = 2;
        n.addr.set([198, 18, 0, 2]);
        n.port = port;
      });
      const res: { c?: Nqe | undefined; ev?: Nqe | undefined } = {};
      for (let i = 0; i < 50 && res.ev === undefined; i++) {
        l.step();
        res.c ??= g.completions().find((x) => x.requestId === r);
        res.ev = g.receives().find((x) => x.op === NqeOp.EVENT && x.socketId === s);
      }
      results[port] = res;
    }
    assert.equal(results[5002]!.c!.result, -Errno.EINPROGRESS);
    assert.equal(results[5002]!.ev!.arg0, NqeEvent.OUT);
    assert.equal(results[9]!.c!.result, -Errno.EINPROGRESS);
    assert.ok(results[9]!.ev!.arg0 & NqeEvent.ERR);
    assert.equal(results[9]!.ev!.result, -Errno.ECONNREFUSED);
  } finally {
    l.close();
  }
});

/**
 * Streams `count` one-chunk SENDs (`len` bytes each, byte k of SEND i = (i + k) & 0xff) from a
 * guest to peer B, which reads slowly; returns what the backend's send() was handed each
 * time and the bytes B received, in order.
 */
async function streamChunks(
  sndBuf: number,
  count: number,
  len: number,
): Promise<{ handed: number[]; received: Uint8Array; taken: number[] }> {
  const l = await lab({ defaultRcvBuf: 64 * 1024 });
  try {
    const g = await l.attach();
    const { pb, ls, any } = await listenOnB(l, 5002);
    const s = socket(l, g);
    setopt(l, g, s, SockLevel.SOL_SOCKET, SockOpt.SO_SNDBUF, sndBuf);
    assert.equal(connectToB(l, g, s, 5002)?.result, 0);
    const peer = pb.accept(ls, any);
    assert.ok(peer > 0);
    const handed: number[] = [];
    const backend = l.a.backend;
    const send = backend.send.bind(backend);
    backend.send = (id, data, more, now) => {
      handed.push(data.length);
      return send(id, data, more, now);
    };
    const data = g.dev.data;
    const expected = new Uint8Array(count * len);
    const got = new Uint8Array(count * len);
    const taken: number[] = [];
    let sent = 0, rcvd = 0;
    const buf = new Uint8Array(3000);
    for (let step = 0; step < 5000 && (taken.length < count || rcvd < got.length); step++) {
      while (sent < count) {
        const off = data.alloc();
        if (off < 0) break;
        for (let k = 0; k < len; k++) {
          data.bytes[off + k] = expected[sent * len + k] = (sent + k) & 0xff;
        }
        data.lend(off);
        g.submit((n) => {
          n.op = NqeOp.SEND;
          n.socketId = s;
          n.dataOffset = off;
          n.dataLength = len;
        }, true);
        sent++;
      }
      l.step();
      for (const c of g.completions()) {
        if (c.flags & NqeFlag.CHUNK_RETURNED) data.reclaim(c.dataOffset);
        taken.push(c.result);
      }
      // B reads at most 3000 bytes a step: the guest's socket buffer fills and drains.
      const n = pb.recv(peer, buf, l.t.now);
      if (n > 0) {
        got.set(buf.subarray(0, n), rcvd);
        rcvd += n;
      }
    }
    assert.deepEqual(got, expected);
    return { handed, received: got, taken };
  } finally {
    l.close();
  }
}

function setopt(
  l: Lab,
  g: RawGuest,
  s: number,
  level: number,
  name: number,
  value: number,
): void {
  const r = g.submit((n) => {
    n.op = NqeOp.SETSOCKOPT;
    n.socketId = s;
    n.arg0 = level;
    n.arg1 = name;
    n.arg2 = value;
  });
  l.step();
  assert.equal(one(g, r).result, 0);
}

Deno.test("ServiceLib hands a stream SEND to the backend whole, waiting for room rather than splitting it", async () => {
  const { handed, taken } = await streamChunks(64 * 1024, 200, 2048);
  assert.equal(taken.length, 200);
  assert.ok(taken.every((t) => t === 2048), `results ${taken.filter((t) => t !== 2048)}`);
  // Every call got a whole SEND; none got a part (a part needs a fresh view of the chunk).
  assert.ok(handed.length >= 200);
  assert.deepEqual(handed.filter((n) => n !== 2048), []);
});

Deno.test("ServiceLib still splits a SEND when the socket buffer is under three chunks (no stall)", async () => {
  const { handed, taken } = await streamChunks(3000, 40, 2048);
  assert.equal(taken.length, 40);
  assert.ok(taken.every((t) => t === 2048));
  assert.ok(handed.some((n) => n < 2048), "a buffer of 3000 bytes takes SENDs in parts");
});
