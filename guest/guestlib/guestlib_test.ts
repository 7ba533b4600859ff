import assert from "node:assert/strict";
import { monotonicNowInto } from "../../stacks/time.ts";
import { startMemoryNsm } from "../../nsm/memory_nsm.ts";
import {
  NkClient,
  RequestTable,
  type RxItem,
  RxQueue,
  Signal,
  SocketState,
  spinMaxFromEnv,
  spinUntilWork,
} from "./client.ts";
import { connectWith, NkDatagramConn, NkListener } from "./conn.ts";
import { nkNet } from "./mod.ts";
import { NqeOp } from "../../nsm/nqe.ts";

interface Env {
  a: NkClient;
  b: NkClient;
  ctlA: string;
  ctlB: string;
  done(): Promise<void>;
}

async function env(): Promise<Env> {
  const dir = await Deno.makeTempDir({ prefix: "guestlib-" });
  const ctlA = `${dir}/a.sock`, ctlB = `${dir}/b.sock`;
  const nsm = await startMemoryNsm(
    { ctl: ctlA, peerCtl: ctlB, mtu: 1500 },
    (l) => Deno.env.get("NSMLOG") && console.error(l),
  );
  const a = await NkClient.attach({ ctl: ctlA });
  const b = await NkClient.attach({ ctl: ctlB });
  return {
    a,
    b,
    ctlA,
    ctlB,
    async done(): Promise<void> {
      a.close();
      b.close();
      await nsm.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "GuestLib connect/listen behave like Deno.Conn/Listener: read, write, closeWrite EOF, addresses, async iteration",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8001 });
      await l.ready;
      assert.equal(l.addr.port, 8001);
      const server = (async () => {
        for await (const c of l) {
          // echo until EOF, then half-close
          const buf = new Uint8Array(1000);
          for (;;) {
            const n = await c.read(buf);
            if (n === null) break;
            await c.write(buf.subarray(0, n));
          }
          await c.closeWrite();
          c.close();
          return c.remoteAddr;
        }
      })();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8001 });
      assert.deepEqual(c.remoteAddr, { transport: "tcp", hostname: "198.18.0.2", port: 8001 });
      assert.equal(c.localAddr.hostname, "198.18.0.1");
      assert.ok(c.localAddr.port > 0);
      await c.write(new TextEncoder().encode("hello guestlib"));
      await c.closeWrite();
      const got: number[] = [];
      const buf = new Uint8Array(4);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        got.push(...buf.subarray(0, n));
      }
      assert.equal(new TextDecoder().decode(new Uint8Array(got)), "hello guestlib");
      // Waiting for the echo, the pump spun and gave the CPU away on its empty passes.
      assert.ok(e.a.spin.idlePasses > 0, `idle passes ${e.a.spin.idlePasses}`);
      const peer = (await server) as Deno.NetAddr;
      assert.equal(peer.hostname, "198.18.0.1");
      assert.equal(peer.port, c.localAddr.port);
      c.close();
      await assert.rejects(c.read(buf), Deno.errors.BadResource);
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "GuestLib maps errors to Deno.errors: ConnectionRefused, AddrInUse, and ConnectionReset when the peer guest dies",
  opts,
  async () => {
    const e = await env();
    try {
      await assert.rejects(
        connectWith(e.a, { hostname: "198.18.0.2", port: 9 }),
        Deno.errors.ConnectionRefused,
      );
      const l1 = new NkListener(Promise.resolve(e.b), { port: 8002 });
      await l1.ready;
      const other = await NkClient.attach({ ctl: e.ctlB });
      const l2 = new NkListener(Promise.resolve(other), { port: 8002 });
      await assert.rejects(l2.ready, Deno.errors.AddrInUse);
      await assert.rejects(l2.accept(), Deno.errors.AddrInUse);
      // The peer guest detaches: its sockets are reset, our read sees ConnectionReset.
      const l3 = new NkListener(Promise.resolve(other), { port: 8003 });
      await l3.ready;
      const accepted = l3.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8003 });
      await accepted;
      other.close();
      await assert.rejects(c.read(new Uint8Array(10)), Deno.errors.ConnectionReset);
      // SENDs complete without promises (NkClient.sendChunk): their failure still reaches
      // the writer, at the latest one write after the NSM answered one with an error.
      const block = new Uint8Array(4096);
      let writeError: unknown = null;
      for (let i = 0; i < 200 && writeError === null; i++) {
        try {
          await c.write(block);
          await new Promise((r) => setTimeout(r, 1));
        } catch (err) {
          writeError = err;
        }
      }
      assert.ok(
        writeError instanceof Deno.errors.ConnectionReset ||
          writeError instanceof Deno.errors.BrokenPipe,
        `write after the reset failed with ${writeError}`,
      );
      c.close();
      l1.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "GuestLib readable/writable streams carry 8 MB intact (pipeTo echo) and nkNet reports TCP info",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8004 });
      await l.ready;
      (async () => {
        const c = await l.accept();
        await c.readable.pipeTo(c.writable); // echo; closes when the stream ends
      })();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8004 });
      const data = new Uint8Array(8 << 20).map((_, i) => (i * 7) & 0xff);
      const writing = (async () => {
        const w = c.writable.getWriter();
        for (let off = 0; off < data.length; off += 100_000) {
          await w.write(data.subarray(off, off + 100_000));
        }
        w.releaseLock();
        await c.closeWrite();
      })();
      const back = new Uint8Array(data.length);
      let n = 0;
      for await (const chunk of c.readable) {
        back.set(chunk, n);
        n += chunk.length;
      }
      await writing;
      assert.equal(n, data.length);
      assert.deepEqual(back, data);
      const info = await c.tcpInfo();
      assert.ok(info.cwnd > 0);
      assert.ok(info.mss > 0);
      assert.ok(info.rttUs >= 0);
      const net = nkNet({ ctl: e.ctlA });
      net.tcpInfo!(c); // first call starts the fetch
      await new Promise((r) => setTimeout(r, 50));
      const s = net.tcpInfo!(c)!;
      assert.ok(s.sndCwnd > 0);
    } finally {
      await e.done();
    }
  },
);

Deno.test("GuestLib UDP: send and receive datagrams with source addresses", opts, async () => {
  const e = await env();
  try {
    const rx = new NkDatagramConn(Promise.resolve(e.b), { port: 5353 });
    await rx.ready;
    const tx = new NkDatagramConn(Promise.resolve(e.a), { port: 0 });
    await tx.ready;
    assert.ok(tx.addr.port > 0);
    const n = await tx.send(new Uint8Array([1, 2, 3, 4]), {
      transport: "udp",
      hostname: "198.18.0.2",
      port: 5353,
    });
    assert.equal(n, 4);
    const [d, from] = await rx.receive();
    assert.deepEqual([...d], [1, 2, 3, 4]);
    assert.equal((from as Deno.NetAddr).hostname, "198.18.0.1");
    assert.equal((from as Deno.NetAddr).port, tx.addr.port);
    rx.close();
    tx.close();
  } finally {
    await e.done();
  }
});

Deno.test(
  "GuestLib: one guest runs 1000 concurrent connections through one NK device",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8005 });
      await l.ready;
      const N = Number(Deno.env.get("NCONN") ?? 1000);
      const server = (async () => {
        const conns: Promise<void>[] = [];
        for (let i = 0; i < N; i++) {
          const c = await l.accept();
          conns.push((async () => {
            const b = new Uint8Array(16);
            const k = await c.read(b);
            await c.write(b.subarray(0, k ?? 0));
            c.close();
          })());
        }
        await Promise.all(conns);
      })();
      server.catch(() => {}); // a client failure below is the error to report
      const clients = await Promise.all(
        Array.from({ length: N }, () => connectWith(e.a, { hostname: "198.18.0.2", port: 8005 })),
      );
      const answers = await Promise.all(clients.map(async (c, i) => {
        const msg = new TextEncoder().encode(`#${i}`);
        await c.write(msg);
        const b = new Uint8Array(16);
        const k = await c.read(b);
        c.close();
        return new TextDecoder().decode(b.subarray(0, k ?? 0));
      }));
      await server;
      for (let i = 0; i < N; i++) assert.equal(answers[i], `#${i}`);
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "GuestLib: a guest that stops reading stalls only its own connection; another guest's 8 MB still flows",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8006 });
      await l.ready;
      const lazy = await NkClient.attach({ ctl: e.ctlA }); // never reads
      const lazyConn = await connectWith(lazy, { hostname: "198.18.0.2", port: 8006 });
      const toLazy = await l.accept();
      // The server pushes 32 MB at the lazy guest without waiting: writes pile up in flight.
      const big = new Uint8Array(1 << 20);
      let pushed = 0;
      const pusher = (async () => {
        try {
          for (let i = 0; i < 32; i++) {
            await toLazy.write(big);
            pushed += big.length;
          }
        } catch {
          // closed at the end of the test
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      const stuckAt = pushed;
      assert.ok(stuckAt < 32 << 20, "the lazy guest's connection is backpressured");
      // Meanwhile a second guest's transfer on the same NSM completes.
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8006 });
      const s = await l.accept();
      const data = new Uint8Array(8 << 20).map((_, i) => i & 0xff);
      const sending = (async () => {
        await s.write(data);
        await s.closeWrite();
      })();
      let n = 0;
      const buf = new Uint8Array(1 << 16);
      for (;;) {
        const k = await c.read(buf);
        if (k === null) break;
        for (let i = 0; i < k; i++) assert.equal(buf[i], (n + i) & 0xff);
        n += k;
      }
      await sending;
      assert.equal(n, data.length);
      assert.ok(pushed <= stuckAt + (2 << 20), "the lazy connection stayed stuck meanwhile");
      lazyConn.close();
      toLazy.close();
      c.close();
      s.close();
      lazy.close();
      await pusher;
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "NkClient.sendChunk() counts a SEND in flight until its completion, records the NSM's error in sendError and wakes drain waiters",
  opts,
  async () => {
    const e = await env();
    try {
      // A TCP socket that never connected: the NSM fails its SEND.
      const c = await e.a.request((n) => {
        n.op = NqeOp.SOCKET;
        n.arg0 = 2; // AF_INET
        n.arg1 = 1; // SOCK_STREAM
      });
      assert.ok(c.result > 0, `socket id ${c.result}`);
      const s = e.a.sock(c.result);
      const data = e.a.device.data;
      const chunk = await e.a.allocChunk();
      data.bytes.fill(0x61, chunk, chunk + 100);
      data.lend(chunk);
      assert.ok(e.a.sendChunk(s, chunk, 100));
      assert.equal(s.inFlight, 1);
      const drained = e.a.waitFor((w) => s.drainWaiters.push(w));
      await drained;
      assert.equal(s.inFlight, 0);
      assert.ok(s.sendError < 0, `sendError ${s.sendError}`);
    } finally {
      await e.done();
    }
  },
);

Deno.test("RequestTable files an id whose slot is taken on the side and takes each id back once", () => {
  const t = new RequestTable<string>(16);
  t.put(5, "a");
  t.put(5 + 16, "b"); // same slot
  t.put(6, "c");
  assert.equal(t.overflowed, 1);
  assert.equal(t.take(5 + 16), "b");
  assert.equal(t.take(5 + 16), null);
  assert.equal(t.take(5), "a");
  assert.equal(t.take(5), null);
  assert.equal(t.take(7), null);
  t.put(0xffff_ffff, "d"); // the largest request id
  const rest: string[] = [];
  t.clear((v) => rest.push(v));
  assert.deepEqual(rest.sort(), ["c", "d"]);
  assert.equal(t.take(6), null);
  assert.equal(t.take(0xffff_ffff), null);
});

Deno.test("Signal: wait() shares one promise until fire(); arm/disarm run once per promise", async () => {
  let armed = 0, disarmed = 0;
  const sig = new Signal(() => armed++, () => disarmed++);
  sig.fire(); // nothing waits: nothing happens
  assert.equal(disarmed, 0);
  const p1 = sig.wait();
  assert.equal(sig.wait(), p1);
  assert.ok(sig.armed);
  assert.equal(armed, 1);
  let woke = 0;
  p1.then(() => woke++);
  p1.then(() => woke++);
  sig.fire();
  await p1;
  assert.equal(woke, 2);
  assert.equal(disarmed, 1);
  assert.ok(!sig.armed);
  const p2 = sig.wait();
  assert.notEqual(p2, p1);
  assert.equal(armed, 2);
  sig.fire();
  await p2;
});

Deno.test("RxQueue keeps first-in first-out order across wrap-around and growth", () => {
  const q = new RxQueue();
  const item = (n: number): RxItem => ({
    offset: n,
    length: 1,
    pos: 0,
    family: 0,
    addr: null,
    port: 0,
  });
  let next = 0, expect = 0;
  for (let i = 0; i < 10; i++) q.push(item(next++));
  for (let i = 0; i < 7; i++) assert.equal(q.shift()!.offset, expect++);
  for (let i = 0; i < 40; i++) q.push(item(next++)); // wraps, then grows twice
  assert.equal(q.length, 43);
  assert.equal(q.peek()!.offset, expect);
  for (let i = 0; i < 20; i++) assert.equal(q.shift()!.offset, expect++);
  assert.deepEqual(
    q.takeAll().map((it) => it.offset),
    Array.from({ length: 23 }, (_, i) => i + 27),
  );
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
  assert.equal(q.peek(), undefined);
});

Deno.test("SocketState.wakeReaders() wakes readWaiters in order, empties the list, fires readable, and tells whether any waited", async () => {
  const s = new SocketState(1);
  const order: number[] = [];
  assert.equal(s.wakeReaders(), false); // the pump skips its idle turns then
  s.readWaiters.push(() => order.push(1), () => order.push(2));
  const p = s.readable.wait();
  assert.equal(s.wakeReaders(), true);
  await p;
  assert.deepEqual(order, [1, 2]);
  assert.equal(s.readWaiters.length, 0);
  assert.equal(s.wakeReaders(), false);
  const q = s.readable.wait(); // the signal alone counts too
  assert.equal(s.wakeReaders(), true);
  await q;
  assert.equal(s.wakeWriters(), false);
  s.roomWaiters.push(() => order.push(3));
  assert.equal(s.wakeWriters(), true);
  assert.deepEqual(order, [1, 2, 3]);
  assert.equal(s.roomWaiters.length, 0);
});

Deno.test("spinUntilWork() is true once the check is, false when the time runs out", () => {
  const clock = new Float64Array(2);
  monotonicNowInto(clock, 0);
  let calls = 0;
  assert.ok(spinUntilWork(() => ++calls === 100, clock, Infinity));
  assert.equal(calls, 100);
  calls = 0;
  assert.ok(!spinUntilWork(() => (calls++, false), clock, 0));
  assert.equal(calls, 64); // the clock is read every 64 checks
});

Deno.test(
  "NkClient.view() keeps a chunk's whole view, its pieces from the start by length, and the two most recent other pieces; views show the region's bytes",
  opts,
  async () => {
    const e = await env();
    try {
      const data = e.a.device.data;
      const size = data.chunkSize;
      const base = data.peerBase;
      data.bytes.fill(7, base, base + size);
      const whole = e.a.view(base, size);
      assert.equal(whole.length, size);
      assert.equal(whole.byteOffset, data.bytes.byteOffset + base);
      assert.ok(whole.every((b) => b === 7));
      // Pieces from the chunk's start: one view per length, however they alternate.
      const heads = [100, 50, 1448, 30].map((n) => e.a.view(base, n));
      for (const h of heads) assert.equal(e.a.view(base, h.length), h);
      assert.equal(heads[0]!.length, 100);
      // Pieces from elsewhere: the two most recent are kept...
      const piece = e.a.view(base + 10, 100);
      assert.equal(piece.byteOffset, data.bytes.byteOffset + base + 10);
      const other = e.a.view(base + 20, 50);
      assert.equal(e.a.view(base + 10, 100), piece);
      assert.equal(e.a.view(base + 20, 50), other);
      e.a.view(base + 30, 30); // ...and a third drops the older of the two (now `piece`)
      assert.equal(e.a.view(base + 20, 50), other);
      assert.notEqual(e.a.view(base + 10, 100), piece);
      assert.equal(e.a.view(base, size), whole); // the whole chunk's view is never dropped
      for (const h of heads) assert.equal(e.a.view(base, h.length), h);
      data.bytes[base] = 9; // a view, not a copy
      assert.equal(e.a.view(base, size)[0], 9);
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "NkConn.tryWrite() of one block again and again sends it as a byte stream, follows changes to the block, and takes other arrays",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8011 });
      await l.ready;
      const got: number[] = [];
      const server = (async () => {
        const c = await l.accept();
        const buf = new Uint8Array(50_000);
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          for (let i = 0; i < n; i++) got.push(buf[i]!);
        }
        c.close();
      })();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8011 });
      const size = e.a.device.data.chunkSize;
      const block = new Uint8Array(3 * size + 100).map((_, i) => (i * 13) & 0xff);
      const sent0 = e.a.traffic().sendBytes;
      const want: number[] = [];
      // Two and a half blocks through tryWrite from where each call stopped.
      let off = 0, total = 0;
      const goal = Math.floor(2.5 * block.length);
      while (total < goal) {
        const n = c.tryWrite(block, off, Math.min(block.length, off + goal - total));
        for (let i = off; i < off + n; i++) want.push(block[i]!);
        total += n;
        off = (off + n) % block.length;
        if (n === 0) await c.waitWritable();
      }
      block.fill(0xaa); // the cached views must show the new bytes
      await c.write(block);
      for (const b of block) want.push(b);
      const other = new Uint8Array(block.length).fill(0x55); // same length, another array
      await c.write(other);
      for (const b of other) want.push(b);
      assert.equal(c.tryWrite(block, 0, 0), 0);
      await c.closeWrite();
      await server;
      assert.equal(got.length, want.length);
      assert.deepEqual(got, want);
      assert.equal(e.a.traffic().sendBytes - sent0, want.length);
      c.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "NkConn.tryRead() is -1 until data arrives; reads of any size return the exact stream and count in traffic()",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8012 });
      await l.ready;
      const accepted = l.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8012 });
      const peer = await accepted;
      assert.equal(c.tryRead(new Uint8Array(10)), -1);
      const recv0 = e.a.traffic().recvBytes;
      const waiting = c.waitReadable();
      const data = new Uint8Array(300_000).map((_, i) => (i * 31 + 7) & 0xff);
      const writing = (async () => {
        await peer.write(data);
        await peer.closeWrite();
      })();
      await waiting;
      const back = new Uint8Array(data.length);
      let n = 0;
      const sizes = [1, 1000, 70_000, 5, 20_000];
      for (let k = 0;; k++) {
        const buf = new Uint8Array(sizes[k % sizes.length]!);
        const r = await c.read(buf);
        if (r === null) break;
        assert.ok(r > 0 && r <= buf.length, `read ${r} into ${buf.length}`);
        back.set(buf.subarray(0, r), n);
        n += r;
      }
      await writing;
      assert.equal(n, data.length);
      assert.deepEqual(back, data);
      assert.equal(e.a.traffic().recvBytes - recv0, data.length);
      assert.equal(c.tryRead(new Uint8Array(10)), null);
      c.close();
      peer.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "after the guest detaches, tryRead()/tryWrite() throw ConnectionReset and the waits resolve at once",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8013 });
      await l.ready;
      const accepted = l.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8013 });
      await accepted;
      e.a.close();
      await c.waitReadable();
      await c.waitWritable();
      assert.throws(() => c.tryRead(new Uint8Array(10)), Deno.errors.ConnectionReset);
      assert.throws(() => c.tryWrite(new Uint8Array(10)), Deno.errors.ConnectionReset);
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "NkConn.onWritable()/onReadable(): callbacks from the pump move 2 MB intact with tryWrite/tryRead; close() calls them once more and unregisters",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8014 });
      await l.ready;
      const accepted = l.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8014 });
      const peer = await accepted;
      const data = new Uint8Array(2 << 20).map((_, i) => (i * 11 + 3) & 0xff);
      // Reader: drains in its callback until end of stream.
      const back = new Uint8Array(data.length);
      let got = 0, readCalls = 0;
      const buf = new Uint8Array(40_000);
      const received = new Promise<void>((resolve) => {
        const pull = (): void => {
          readCalls++;
          for (;;) {
            const n = peer.tryRead(buf);
            if (n === -1) return;
            if (n === null) {
              peer.onReadable(null);
              resolve();
              return;
            }
            back.set(buf.subarray(0, n), got);
            got += n;
          }
        };
        peer.onReadable(pull);
      });
      // Writer: queues what fits in its callback, half-closes at the end.
      let off = 0, writeCalls = 0;
      const sent = new Promise<void>((resolve) => {
        const push = (): void => {
          writeCalls++;
          off += c.tryWrite(data, off, data.length);
          if (off === data.length) {
            c.onWritable(null);
            resolve();
          }
        };
        c.onWritable(push);
        push();
      });
      await sent;
      await c.closeWrite();
      await received;
      assert.equal(got, data.length);
      assert.deepEqual(back, data);
      assert.ok(writeCalls > 1, `${writeCalls} write callbacks`); // it had to wait for room
      assert.ok(readCalls > 1, `${readCalls} read callbacks`);
      // close() calls a registered callback once more (it then sees the closed connection).
      let afterClose = 0;
      c.onReadable(() => {
        afterClose++;
        assert.throws(() => c.tryRead(buf), Deno.errors.BadResource);
      });
      c.close();
      await new Promise((r) => setTimeout(r, 0));
      assert.equal(afterClose, 1);
      peer.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "a readable callback that detaches the guest ends the drain cleanly; the connection then reports ConnectionReset",
  opts,
  async () => {
    const e = await env();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8015 });
      await l.ready;
      const accepted = l.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8015 });
      const peer = await accepted;
      let calls = 0;
      const ended = new Promise<unknown>((resolve) => {
        c.onReadable(() => {
          calls++;
          if (calls === 1) {
            e.a.close(); // from inside the pump's drain
            return;
          }
          try {
            c.tryRead(new Uint8Array(10));
            resolve(null);
          } catch (err) {
            resolve(err);
          }
        });
      });
      await peer.write(new Uint8Array(1000));
      const err = await ended;
      assert.ok(err instanceof Deno.errors.ConnectionReset, String(err));
      assert.equal(calls, 2); // the data, then once more after the detach
      peer.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "NkClient.attach() takes the spin ceiling from options.spin, else from $NK_SPIN_MAX_US; a bad value is a RangeError",
  opts,
  async () => {
    const e = await env();
    const extra: NkClient[] = [];
    try {
      // A sleep of 500 µs: above the default 200 µs ceiling the budget halves, below a 1 ms
      // ceiling it grows to cover the wait (5/4 of it).
      e.a.spin.record(true, 500_000);
      assert.ok(e.a.spin.budgetNs <= 5_000, `budget ${e.a.spin.budgetNs}`); // halved, maybe again
      const wide = await NkClient.attach({ ctl: e.ctlA, spin: { maxNs: 1_000_000 } });
      extra.push(wide);
      wide.spin.record(true, 500_000);
      assert.equal(wide.spin.budgetNs, 625_000);
      Deno.env.set("NK_SPIN_MAX_US", "1000");
      try {
        assert.equal(spinMaxFromEnv(), 1_000_000);
        const fromEnv = await NkClient.attach({ ctl: e.ctlA });
        extra.push(fromEnv);
        fromEnv.spin.record(true, 500_000);
        assert.equal(fromEnv.spin.budgetNs, 625_000);
        Deno.env.set("NK_SPIN_MAX_US", "lots");
        assert.throws(() => spinMaxFromEnv(), RangeError);
        await assert.rejects(NkClient.attach({ ctl: e.ctlA }), RangeError);
      } finally {
        Deno.env.delete("NK_SPIN_MAX_US");
      }
      assert.equal(spinMaxFromEnv(), undefined);
    } finally {
      for (const c of extra) c.close();
      await e.done();
    }
  },
);
