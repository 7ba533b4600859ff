/**
 * `KernelBackend` against kernel peers in the same process. Run ONLY inside the network
 * namespace that tests/nsm_kernel_backend_test.ts creates (198.18.0.1 and 198.18.0.2, fd00::1
 * and fd00::2 on a veth pair; 198.18.0.77 is in the subnet but nobody answers for it):
 *
 * ```
 * ip netns exec NS deno test -A --unstable-net tests/support/kernel_backend_cases.ts
 * ```
 *
 * The name does not end in `_test.ts`, so a plain `deno test` never runs it outside the
 * namespace.
 *
 * @module
 */

import assert from "node:assert/strict";
import net from "node:net";
import { KernelBackend, parseHostInto } from "../../nsm/backend_kernel.ts";
import { Errno, Family, SockAddr, SockLevel, SockOpt, SockType } from "../../nsm/backend.ts";
import { NqeEvent } from "../../nsm/nqe.ts";

const A4 = "198.18.0.1", B4 = "198.18.0.2", NOBODY4 = "198.18.0.77";
const A6 = "fd00::1", B6 = "fd00::2";

if (Deno.env.get("NK_KERNEL_NETNS") !== "1") {
  throw new Error(
    "kernel_backend_cases.ts runs only inside the namespace of tests/nsm_kernel_backend_test.ts",
  );
}

function addr(host: string, port: number): SockAddr {
  const a = new SockAddr();
  if (host.includes(":")) {
    a.family = Family.INET6;
    const words = host === A6 ? [0xfd00, 0, 0, 0, 0, 0, 0, 1] : [0xfd00, 0, 0, 0, 0, 0, 0, 2];
    for (let i = 0; i < 8; i++) {
      a.addr[2 * i] = words[i]! >> 8;
      a.addr[2 * i + 1] = words[i]! & 0xff;
    }
    a.port = port;
    return a;
  }
  return a.setV4(host.split(".").map(Number), port);
}

/** Collects drainReady reports in order. */
class Harness {
  readonly b: KernelBackend;
  readonly log: { id: number; ev: number }[] = [];
  constructor(opts: ConstructorParameters<typeof KernelBackend>[0] = {}) {
    this.b = new KernelBackend(opts);
  }
  drain(): void {
    this.b.drainReady((id, ev) => this.log.push({ id, ev }));
  }
  /** Runs the event loop until `pred` holds (bounded). */
  async until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      this.drain();
      if (pred()) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await this.b.wait(Math.max(1, Math.min(50, end - Date.now())));
    }
  }
  evOf(id: number): number[] {
    return this.log.filter((e) => e.id === id).map((e) => e.ev);
  }
  dispose(): void {
    this.b.dispose(0);
    assert.equal(this.b.stats.internalErrors, 0, String(this.b.lastInternalError));
  }
}

/** Connects stream socket `id` to listener `l` on B4, accepts, and waits until `id` is writable. */
async function connectTo(h: Harness, l: Deno.Listener, id: number): Promise<Deno.Conn> {
  h.b.connect(id, addr(B4, (l.addr as Deno.NetAddr).port), 0);
  const pc = await l.accept();
  await h.until("connected", () => (h.b.events(id) & NqeEvent.OUT) !== 0);
  return pc;
}

async function readAll(c: Deno.Conn, max = 1 << 30): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  const buf = new Uint8Array(65536);
  for (;;) {
    const r = await c.read(buf);
    if (r === null) break;
    parts.push(buf.slice(0, r));
    n += r;
    if (n >= max) break;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function pattern(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function recvAll(h: Harness, id: number, into: number[]): number {
  const buf = new Uint8Array(8192);
  for (;;) {
    const n = h.b.recv(id, buf, 0);
    if (n <= 0) return n;
    for (let i = 0; i < n; i++) into.push(buf[i]!);
  }
}

for (const [fam, local, peer] of [["IPv4", A4, B4], ["IPv6", A6, B6]] as const) {
  const domain = fam === "IPv4" ? Family.INET : Family.INET6;

  Deno.test(`KernelBackend ${fam}: connect reports OUT, then data both ways, half-close and EOF in order`, async () => {
    const h = new Harness();
    const l = Deno.listen({ hostname: peer, port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    try {
      const id = h.b.socket(domain, SockType.STREAM, 0);
      assert.ok(id > 0);
      assert.equal(h.b.connect(id, addr(peer, port), 0), -Errno.EINPROGRESS);
      assert.equal(h.b.connect(id, addr(peer, port), 0), -Errno.EALREADY);
      assert.equal(h.b.getsockopt(id, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_STATE), 2);
      const acceptP = l.accept();
      await h.until("connected", () => (h.b.events(id) & NqeEvent.OUT) !== 0);
      const first = h.evOf(id)[0]!;
      assert.equal(first & NqeEvent.OUT, NqeEvent.OUT, "the first report is OUT (connected)");
      assert.equal(first & (NqeEvent.IN | NqeEvent.ERR), 0);
      assert.equal(h.b.getsockopt(id, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), 0);
      assert.equal(h.b.getsockopt(id, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_STATE), 1);
      const pc = await acceptP;
      const la = new SockAddr(), ra = new SockAddr();
      assert.equal(h.b.localAddr(id, la), 0);
      assert.equal(h.b.remoteAddr(id, ra), 0);
      assert.equal(ra.port, port);
      assert.equal(la.port, (pc.remoteAddr as Deno.NetAddr).port);
      assert.equal(la.family, domain);

      // backend -> peer
      const up = pattern(100_000, 1);
      let off = 0;
      while (off < up.length) {
        const n = h.b.send(id, up.subarray(off), false, 0);
        if (n === -Errno.EAGAIN) {
          await h.b.wait(10);
          continue;
        }
        assert.ok(n > 0, `send ${n}`);
        off += n;
      }
      assert.equal(h.b.shutdown(id, 1, 0), 0);
      assert.equal(h.b.send(id, up.subarray(0, 1), false, 0), -Errno.EPIPE);
      const got = await readAll(pc);
      assert.deepEqual(got, up, "peer received exactly what was sent, then EOF");

      // peer -> backend, then FIN
      const down = pattern(50_000, 2);
      await pc.write(down);
      await pc.closeWrite();
      const rx: number[] = [];
      let last = -Errno.EAGAIN;
      await h.until("EOF", () => {
        last = recvAll(h, id, rx);
        return last === 0;
      });
      assert.equal(rx.length, down.length);
      assert.deepEqual(new Uint8Array(rx), down, "data arrives before EOF, intact");
      const evs = h.evOf(id);
      const rdhupAt = evs.findIndex((e) => (e & NqeEvent.RDHUP) !== 0);
      assert.ok(rdhupAt >= 0, "RDHUP reported");
      assert.ok(evs.slice(0, rdhupAt + 1).some((e) => e & NqeEvent.IN), "IN no later than RDHUP");
      assert.ok(h.b.events(id) & NqeEvent.HUP, "HUP once both directions are shut");
      const c = h.b.counters(id)!;
      assert.equal(c.bytesSent, up.length);
      assert.equal(c.bytesReceived, down.length);
      assert.equal(h.b.close(id, 0), 0);
      assert.equal(h.b.close(id, 0), -Errno.EBADF);
      pc.close();
    } finally {
      l.close();
      h.dispose();
    }
  });

  Deno.test(`KernelBackend ${fam}: listen/accept reports IN on the listener and the peer address`, async () => {
    const h = new Harness();
    try {
      const lid = h.b.socket(domain, SockType.STREAM, 0);
      assert.equal(h.b.bind(lid, addr(local, 0)), 0);
      const la = new SockAddr();
      assert.equal(h.b.localAddr(lid, la), 0);
      assert.ok(la.port > 0, "bind resolved the ephemeral port");
      assert.equal(h.b.listen(lid, 8), 0);
      assert.equal(h.b.getsockopt(lid, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_STATE), 10);
      const peerAddr = new SockAddr();
      assert.equal(h.b.accept(lid, peerAddr), -Errno.EAGAIN);
      const conns = await Promise.all([
        Deno.connect({ hostname: local, port: la.port }),
        Deno.connect({ hostname: local, port: la.port }),
      ]);
      await h.until("listener IN", () => (h.b.events(lid) & NqeEvent.IN) !== 0);
      assert.ok(h.evOf(lid).some((e) => e & NqeEvent.IN));
      const ids: number[] = [];
      await h.until("two accepted", () => {
        const n = h.b.accept(lid, peerAddr);
        if (n > 0) {
          ids.push(n);
          assert.equal(peerAddr.family, domain);
          assert.ok(
            conns.some((c) => (c.localAddr as Deno.NetAddr).port === peerAddr.port),
            "peer port is a connecting socket's",
          );
        }
        return ids.length === 2;
      });
      assert.equal(h.b.accept(lid, peerAddr), -Errno.EAGAIN);
      assert.equal(h.b.events(lid) & NqeEvent.IN, 0);
      // Echo one message through each accepted socket.
      for (let i = 0; i < 2; i++) {
        const ra = new SockAddr();
        h.b.remoteAddr(ids[i]!, ra);
        const c = conns.find((c) => (c.localAddr as Deno.NetAddr).port === ra.port)!;
        await c.write(new TextEncoder().encode(`hello ${i}`));
        const buf = new Uint8Array(64);
        let n = -Errno.EAGAIN;
        // At most `max` (3) bytes into the larger buffer first, then the rest.
        await h.until("data", () => (n = h.b.recv(ids[i]!, buf, 0, 3)) > 0);
        assert.equal(n, 3);
        const rest = h.b.recv(ids[i]!, buf.subarray(3), 0);
        assert.ok(rest > 0, `rest ${rest}`);
        n += rest;
        assert.equal(new TextDecoder().decode(buf.subarray(0, n)), `hello ${i}`);
        assert.equal(h.b.send(ids[i]!, buf.subarray(0, n), false, 0), n);
        const back = new Uint8Array(64);
        const m = await c.read(back);
        assert.equal(new TextDecoder().decode(back.subarray(0, m!)), `hello ${i}`);
        c.close();
      }
      assert.equal(h.b.close(lid, 0), 0);
      // Deno drops the listening socket once its cancelled accept() has unwound.
      for (let i = 0; i < 5; i++) await h.b.wait(5);
      await assert.rejects(
        Deno.connect({ hostname: local, port: la.port }),
        Deno.errors.ConnectionRefused,
      );
    } finally {
      h.dispose();
    }
  });

  Deno.test(`KernelBackend ${fam}: a refused connect reports ERR|HUP and SO_ERROR ECONNREFUSED once`, async () => {
    const h = new Harness();
    try {
      const probe = Deno.listen({ hostname: peer, port: 0 });
      const port = (probe.addr as Deno.NetAddr).port;
      probe.close(); // nobody listens there now
      const id = h.b.socket(domain, SockType.STREAM, 6);
      assert.equal(h.b.connect(id, addr(peer, port), 0), -Errno.EINPROGRESS);
      await h.until("refused", () => h.b.events(id) !== 0);
      assert.equal(h.b.events(id), NqeEvent.ERR | NqeEvent.HUP);
      assert.equal(h.b.getsockopt(id, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), Errno.ECONNREFUSED);
      assert.equal(h.b.getsockopt(id, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), 0);
      assert.equal(h.b.send(id, new Uint8Array(1), false, 0), -Errno.EPIPE);
      assert.equal(h.b.stats.connectFailed, 1);
    } finally {
      h.dispose();
    }
  });
}

Deno.test("KernelBackend: a peer's reset shows as ERR|HUP, recv -ECONNRESET once, then send -EPIPE", async () => {
  const h = new Harness();
  try {
    const lid = h.b.socket(Family.INET, SockType.STREAM, 0);
    h.b.bind(lid, addr(A4, 0));
    h.b.listen(lid, 4);
    const la = new SockAddr();
    h.b.localAddr(lid, la);
    // node:net can reset (SO_LINGER 0); Deno.Conn cannot, and its close() sends FIN first.
    const peer = net.connect(la.port, A4);
    await new Promise((r) => peer.once("connect", r));
    let id = -1;
    await h.until("accepted", () => (id = h.b.accept(lid, new SockAddr())) > 0);
    peer.resetAndDestroy();
    await h.until("reset", () => (h.b.events(id) & NqeEvent.ERR) !== 0);
    assert.ok(h.b.events(id) & NqeEvent.HUP);
    assert.ok(h.evOf(id).some((e) => e & NqeEvent.ERR), "the reset was reported by drainReady");
    assert.equal(h.b.recv(id, new Uint8Array(10), 0), -Errno.ECONNRESET);
    assert.equal(h.b.recv(id, new Uint8Array(10), 0), 0);
    assert.equal(h.b.send(id, new Uint8Array(10), false, 0), -Errno.EPIPE);
    assert.equal(h.b.getsockopt(id, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_STATE), 7);
  } finally {
    h.dispose();
  }
});

Deno.test("KernelBackend: bind reports EADDRINUSE, EADDRNOTAVAIL, EINVAL and listen on UDP EOPNOTSUPP", () => {
  const h = new Harness();
  const l = Deno.listen({ hostname: A4, port: 0 });
  try {
    const port = (l.addr as Deno.NetAddr).port;
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    assert.equal(h.b.bind(id, addr(A4, port)), -Errno.EADDRINUSE);
    assert.equal(h.b.bind(id, new SockAddr().setV4([198, 18, 0, 9], 0)), -Errno.EADDRNOTAVAIL);
    assert.equal(h.b.bind(id, addr(A4, 0)), 0);
    assert.equal(h.b.bind(id, addr(A4, 0)), -Errno.EINVAL, "already bound");
    const v6 = h.b.socket(Family.INET6, SockType.STREAM, 0);
    assert.equal(h.b.bind(v6, addr(A4, 0)), -Errno.EAFNOSUPPORT);
    const u = h.b.socket(Family.INET, SockType.DGRAM, 0);
    assert.equal(h.b.listen(u, 1), -Errno.EOPNOTSUPP);
    const u2 = h.b.socket(Family.INET, SockType.DGRAM, 17);
    assert.equal(h.b.bind(u, addr(A4, 0)), 0);
    const ua = new SockAddr();
    h.b.localAddr(u, ua);
    assert.equal(h.b.bind(u2, addr(A4, ua.port)), -Errno.EADDRINUSE);
    assert.equal(h.b.socket(99, SockType.STREAM, 0), -Errno.EAFNOSUPPORT);
    assert.equal(h.b.socket(Family.INET, 5, 0), -Errno.EPROTONOSUPPORT);
    assert.equal(h.b.socket(Family.INET, SockType.STREAM, 17), -Errno.EPROTONOSUPPORT);
    assert.equal(h.b.recv(12345, new Uint8Array(1), 0), -Errno.EBADF);
  } finally {
    l.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: connect to an address nobody answers for ends in EHOSTUNREACH", async () => {
  const h = new Harness();
  try {
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    assert.equal(h.b.connect(id, addr(NOBODY4, 80), 0), -Errno.EINPROGRESS);
    await h.until("unreachable", () => h.b.events(id) !== 0, 15_000);
    assert.equal(h.b.events(id), NqeEvent.ERR | NqeEvent.HUP);
    assert.equal(h.b.getsockopt(id, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), Errno.EHOSTUNREACH);
  } finally {
    h.dispose();
  }
});

for (const [fam, local, peer] of [["IPv4", A4, B4], ["IPv6", A6, B6]] as const) {
  const domain = fam === "IPv4" ? Family.INET : Family.INET6;
  Deno.test(`KernelBackend ${fam} UDP: sendTo/recvFrom with addresses, truncation, EMSGSIZE, connected peer`, async () => {
    const h = new Harness();
    const pd = Deno.listenDatagram({ hostname: peer, port: 0, transport: "udp" });
    const pport = (pd.addr as Deno.NetAddr).port;
    try {
      const id = h.b.socket(domain, SockType.DGRAM, 0);
      assert.equal(h.b.events(id), 0, "no readiness before bind");
      assert.equal(h.b.send(id, new Uint8Array(4), false, 0), -Errno.EDESTADDRREQ);
      assert.equal(h.b.bind(id, addr(local, 0)), 0);
      assert.equal(h.b.events(id), NqeEvent.OUT);
      const la = new SockAddr();
      h.b.localAddr(id, la);
      // peer -> backend
      await pd.send(pattern(1000, 3), { transport: "udp", hostname: local, port: la.port });
      await h.until("datagram", () => (h.b.events(id) & NqeEvent.IN) !== 0);
      const src = new SockAddr();
      const small = new Uint8Array(100);
      assert.equal(h.b.recvFrom(id, small, src), 1000, "original length of a truncated datagram");
      assert.deepEqual(small, pattern(1000, 3).subarray(0, 100));
      assert.equal(src.port, pport);
      assert.equal(src.family, domain);
      assert.equal(h.b.recvFrom(id, small, src), -Errno.EAGAIN);
      // backend -> peer
      const msg = new TextEncoder().encode("to the peer");
      assert.equal(h.b.sendTo(id, msg, addr(peer, pport), 0), msg.length);
      const [data, from] = await pd.receive();
      assert.equal(new TextDecoder().decode(data), "to the peer");
      assert.equal((from as Deno.NetAddr).port, la.port);
      assert.equal(h.b.sendTo(id, new Uint8Array(70_000), addr(peer, pport), 0), -Errno.EMSGSIZE);
      // Connected: send without an address; datagrams from others are filtered.
      assert.equal(h.b.connect(id, addr(peer, pport), 0), 0);
      assert.equal(h.b.send(id, msg, false, 0), msg.length);
      assert.equal(new TextDecoder().decode((await pd.receive())[0]), "to the peer");
      const other = Deno.listenDatagram({ hostname: peer, port: 0, transport: "udp" });
      await other.send(new Uint8Array([1]), { transport: "udp", hostname: local, port: la.port });
      await pd.send(new Uint8Array([2, 2]), { transport: "udp", hostname: local, port: la.port });
      await h.until("connected datagram", () => (h.b.events(id) & NqeEvent.IN) !== 0);
      assert.equal(h.b.recvFrom(id, small, src), 2, "only the connected peer's datagram");
      other.close();
      assert.equal(h.b.close(id, 0), 0);
    } finally {
      pd.close();
      h.dispose();
    }
  });
}

Deno.test("KernelBackend: a UDP socket drops datagrams beyond its queue and counts them", async () => {
  const h = new Harness({ udpQueue: 4 });
  const pd = Deno.listenDatagram({ hostname: B4, port: 0, transport: "udp" });
  try {
    const id = h.b.socket(Family.INET, SockType.DGRAM, 0);
    h.b.bind(id, addr(A4, 0));
    const la = new SockAddr();
    h.b.localAddr(id, la);
    for (let i = 0; i < 10; i++) {
      await pd.send(new Uint8Array([i]), { transport: "udp", hostname: A4, port: la.port });
    }
    await h.until("10 seen", () => h.b.counters(id)!.datagramsReceived === 10);
    assert.equal(h.b.counters(id)!.datagramsDropped, 6);
    const src = new SockAddr(), one = new Uint8Array(1);
    const got: number[] = [];
    while (h.b.recvFrom(id, one, src) === 1) got.push(one[0]!);
    assert.deepEqual(got, [0, 1, 2, 3], "the first four, in order");
  } finally {
    pd.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: a peer that stops reading fills the send ring, OUT drops, and returns when it reads", async () => {
  const sndBuf = 64 * 1024;
  const h = new Harness({ sndBuf });
  const l = Deno.listen({ hostname: B4, port: 0 });
  try {
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    const pc = await connectTo(h, l, id);
    const chunk = pattern(16384, 9);
    let taken = 0;
    // Fill until the ring stays full (the kernel's buffers fill first, then ours).
    await h.until("send ring full", () => {
      for (;;) {
        const n = h.b.send(id, chunk, false, 0);
        if (n < 0) {
          assert.equal(n, -Errno.EAGAIN);
          return h.b.counters(id)!.bytesSent + sndBuf === taken;
        }
        taken += n;
        assert.ok(taken < 64 * 1024 * 1024, "bounded: kernel buffers + our ring");
      }
    }, 10_000);
    assert.equal(h.b.events(id) & NqeEvent.OUT, 0, "not writable while the peer does not read");
    h.log.length = 0;
    const readP = readAll(pc, taken);
    await h.until("OUT again", () => h.evOf(id).some((e) => e & NqeEvent.OUT));
    const got = await readP;
    assert.equal(got.length, taken, "every byte taken reaches the peer");
    pc.close();
  } finally {
    l.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: a guest that stops receiving stops reading the kernel (bounded receive ring)", async () => {
  const rcvBuf = 32 * 1024;
  const h = new Harness({ rcvBuf });
  const l = Deno.listen({ hostname: B4, port: 0 });
  try {
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    const pc = await connectTo(h, l, id);
    const total = 32 * 1024 * 1024;
    let written = 0;
    const writer = (async () => {
      const c = pattern(65536, 4);
      while (written < total) {
        written += await pc.write(c.subarray(0, Math.min(c.length, total - written)));
      }
    })();
    await h.until("receive ring full", () => h.b.counters(id)!.bytesReceived >= rcvBuf);
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 20; i++) await h.b.wait(5);
    assert.equal(h.b.counters(id)!.bytesReceived, rcvBuf, "stops reading at the ring size");
    assert.ok(written < total, "the peer's writes block: the kernel window closed");
    // Reading drains everything.
    const buf = new Uint8Array(65536);
    let got = 0;
    await h.until("all received", () => {
      for (;;) {
        const n = h.b.recv(id, buf, 0);
        if (n <= 0) break;
        got += n;
      }
      return got === total;
    }, 20_000);
    await writer;
    pc.close();
  } finally {
    l.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: close() still delivers queued bytes, then FIN; abort() discards them", async () => {
  const h = new Harness();
  const l = Deno.listen({ hostname: B4, port: 0 });
  try {
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    const pc = await connectTo(h, l, id);
    const data = pattern(200_000, 5);
    let off = 0;
    while (off < data.length) {
      const n = h.b.send(id, data.subarray(off), false, 0);
      if (n < 0) break;
      off += n;
    }
    assert.ok(off > 0);
    assert.equal(h.b.close(id, 0), 0);
    assert.equal(h.b.events(id), 0, "a closed id has no readiness");
    const got = await readAll(pc);
    assert.deepEqual(got, data.subarray(0, off));
    pc.close();

    const id2 = h.b.socket(Family.INET, SockType.STREAM, 0);
    const pc2 = await connectTo(h, l, id2);
    assert.equal(h.b.abort(id2, 0), 0);
    assert.equal(h.b.send(id2, data, false, 0), -Errno.EBADF);
    assert.equal((await readAll(pc2)).length, 0, "the peer sees the end (FIN: Deno cannot RST)");
    pc2.close();
  } finally {
    l.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: options Deno exposes work, the rest answer ENOPROTOOPT", async () => {
  const h = new Harness();
  const l = Deno.listen({ hostname: B4, port: 0 });
  try {
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    const TCP = SockLevel.IPPROTO_TCP, SOL = SockLevel.SOL_SOCKET;
    assert.equal(h.b.setsockopt(id, TCP, SockOpt.TCP_NODELAY, 1, 0), 0);
    assert.equal(h.b.setsockopt(id, SOL, SockOpt.SO_RCVBUF, 100_000, 0), 0);
    assert.equal(h.b.getsockopt(id, SOL, SockOpt.SO_RCVBUF), 100_000);
    const pc = await connectTo(h, l, id);
    assert.equal(h.b.getsockopt(id, TCP, SockOpt.TCP_NODELAY), 1);
    assert.equal(h.b.setsockopt(id, SOL, SockOpt.SO_KEEPALIVE, 1, 0), 0);
    assert.equal(h.b.getsockopt(id, SOL, SockOpt.SO_KEEPALIVE), 1);
    assert.equal(h.b.setsockopt(id, SOL, SockOpt.SO_RCVBUF, 8192, 0), 0, "live: our ring's limit");
    assert.equal(h.b.getsockopt(id, SOL, SockOpt.SO_RCVBUF), 8192);
    assert.equal(h.b.setsockopt(id, SOL, SockOpt.SO_SNDBUF, 1, 0), 0);
    assert.equal(h.b.getsockopt(id, SOL, SockOpt.SO_SNDBUF), 4096, "clamped to the minimum");
    assert.equal(h.b.setsockopt(id, TCP, SockOpt.TCP_KEEPIDLE, 10, 0), -Errno.ENOPROTOOPT);
    assert.equal(h.b.setsockopt(id, TCP, SockOpt.TCP_KEEPINTVL, 10, 0), -Errno.ENOPROTOOPT);
    assert.equal(h.b.setsockopt(id, SOL, SockOpt.SO_LINGER, 1, 0), -Errno.ENOPROTOOPT);
    assert.equal(h.b.setsockopt(id, TCP, 13, /* TCP_CONGESTION */ 1, 0), -Errno.ENOPROTOOPT);
    assert.equal(h.b.getsockopt(id, TCP, SockOpt.TCP_INFO_CWND), -Errno.ENOPROTOOPT);
    assert.equal(h.b.getsockopt(id, TCP, SockOpt.TCP_INFO_RTT_US), -Errno.ENOPROTOOPT);
    assert.equal(h.b.getsockopt(id, TCP, SockOpt.TCP_INFO_STATE), 1);
    assert.equal(h.b.tcpInfo(id)!.state, 1);
    assert.equal(h.b.setsockopt(id, TCP, SockOpt.TCP_NODELAY, -1, 0), -Errno.EINVAL);
    pc.close();
  } finally {
    l.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: 1000 connections at once through one listener, each echoed intact", async () => {
  const h = new Harness();
  try {
    const lid = h.b.socket(Family.INET, SockType.STREAM, 0);
    assert.equal(h.b.bind(lid, addr(A4, 0)), 0);
    assert.equal(h.b.listen(lid, 4096), 0);
    const la = new SockAddr();
    h.b.localAddr(lid, la);
    const N = 1000;
    const conns = await Promise.all(
      Array.from({ length: N }, () => Deno.connect({ hostname: A4, port: la.port })),
    );
    const ids = new Set<number>();
    const peer = new SockAddr();
    await h.until("all accepted", () => {
      for (;;) {
        const id = h.b.accept(lid, peer);
        if (id < 0) break;
        ids.add(id);
      }
      return ids.size === N;
    }, 20_000);
    // Every client sends its index; the backend echoes what it reads.
    await Promise.all(conns.map((c, i) => c.write(new TextEncoder().encode(`#${i}.`))));
    const buf = new Uint8Array(64);
    let echoed = 0;
    const pending = new Set(ids);
    await h.until("all echoed", () => {
      for (const id of pending) {
        const n = h.b.recv(id, buf, 0);
        if (n > 0) {
          assert.equal(h.b.send(id, buf.subarray(0, n), false, 0), n);
          echoed++;
          pending.delete(id);
        }
      }
      return pending.size === 0;
    }, 20_000);
    assert.equal(echoed, N);
    const back = await Promise.all(conns.map(async (c) => {
      const b = new Uint8Array(64);
      const n = await c.read(b);
      return new TextDecoder().decode(b.subarray(0, n!));
    }));
    back.forEach((s, i) => assert.equal(s, `#${i}.`));
    for (const c of conns) c.close();
    for (const id of ids) assert.equal(h.b.close(id, 0), 0);
    assert.equal(h.b.socketCount, 1, "only the listener is left");
  } finally {
    h.dispose();
  }
});

Deno.test("KernelBackend: a bound socket connects from its address and port (node:net) and abort() resets it", async () => {
  const h = new Harness();
  const l = Deno.listen({ hostname: B4, port: 0 });
  try {
    const probe = Deno.listen({ hostname: A4, port: 0 });
    const myPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    assert.equal(h.b.setsockopt(id, SockLevel.IPPROTO_TCP, SockOpt.TCP_NODELAY, 1, 0), 0);
    assert.equal(h.b.bind(id, addr(A4, myPort)), 0);
    assert.equal(h.b.connect(id, addr(B4, (l.addr as Deno.NetAddr).port), 0), -Errno.EINPROGRESS);
    const pc = await l.accept();
    assert.equal((pc.remoteAddr as Deno.NetAddr).hostname, A4);
    assert.equal((pc.remoteAddr as Deno.NetAddr).port, myPort, "the bound port");
    await h.until("connected", () => (h.b.events(id) & NqeEvent.OUT) !== 0);
    assert.equal(h.b.stats.boundConnects, 1);
    const la = new SockAddr();
    h.b.localAddr(id, la);
    assert.equal(la.port, myPort);
    // Data both ways through the node:net adapter.
    const up = pattern(300_000, 11);
    let off = 0;
    const got = (async () => {
      const parts: number[] = [];
      const b = new Uint8Array(65536);
      while (parts.length < up.length) {
        const n = await pc.read(b);
        if (n === null) break;
        for (let i = 0; i < n; i++) parts.push(b[i]!);
      }
      return new Uint8Array(parts);
    })();
    await h.until("all sent", () => {
      for (;;) {
        const n = h.b.send(id, up.subarray(off), false, 0);
        if (n <= 0) break;
        off += n;
      }
      return off === up.length;
    });
    assert.deepEqual(await got, up);
    await pc.write(new TextEncoder().encode("back"));
    const buf = new Uint8Array(16);
    let n = -1;
    await h.until("reply", () => (n = h.b.recv(id, buf, 0)) > 0);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n)), "back");
    // abort() on a node:net connection sends a RST.
    assert.equal(h.b.abort(id, 0), 0);
    assert.equal(h.b.stats.resetsSent, 1);
    await assert.rejects(pc.read(buf), Deno.errors.ConnectionReset);
    pc.close();
  } finally {
    l.close();
    h.dispose();
  }
});

Deno.test("KernelBackend: a bound connect that is refused reports ERR and ECONNREFUSED", async () => {
  const h = new Harness();
  try {
    const probe = Deno.listen({ hostname: B4, port: 0 });
    const closedPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const id = h.b.socket(Family.INET, SockType.STREAM, 0);
    assert.equal(h.b.bind(id, addr(A4, 0)), 0);
    assert.equal(h.b.connect(id, addr(B4, closedPort), 0), -Errno.EINPROGRESS);
    await h.until("refused", () => h.b.events(id) !== 0);
    assert.equal(h.b.events(id), NqeEvent.ERR | NqeEvent.HUP);
    assert.equal(h.b.getsockopt(id, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), Errno.ECONNREFUSED);
  } finally {
    h.dispose();
  }
});

Deno.test("KernelBackend: an IPv6 link-local peer is reached with the scope id (interface index)", async () => {
  const h = new Harness();
  const ifs = Deno.networkInterfaces();
  const ll = ifs.find((i) =>
    i.name === "nkk1" && i.family === "IPv6" && i.address.startsWith("fe80")
  );
  assert.ok(ll !== undefined && ll.scopeid !== null, "nkk1 has a link-local address");
  // A fresh link-local address is tentative (DAD) for a moment: retry until it is usable.
  let l: Deno.TcpListener | null = null;
  for (let i = 0; l === null; i++) {
    try {
      l = Deno.listen({ hostname: `${ll.address}%${ll.scopeid}`, port: 0 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrNotAvailable) || i > 100) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    const to = new SockAddr();
    assert.ok(parseHostInto(ll.address, (l.addr as Deno.NetAddr).port, to));
    const id = h.b.socket(Family.INET6, SockType.STREAM, 0);
    const bad = h.b.socket(Family.INET6, SockType.STREAM, 0);
    assert.equal(h.b.connect(bad, to, 0), -Errno.EINPROGRESS);
    to.scopeId = ll.scopeid;
    assert.equal(h.b.connect(id, to, 0), -Errno.EINPROGRESS);
    const pc = await l.accept();
    await h.until("connected", () => (h.b.events(id) & NqeEvent.OUT) !== 0);
    const ra = new SockAddr();
    h.b.remoteAddr(id, ra);
    assert.equal(ra.scopeId, ll.scopeid, "the scope id stays on the socket's addresses");
    await h.until("scope-less connect failed", () => h.b.events(bad) !== 0);
    assert.equal(h.b.events(bad) & NqeEvent.ERR, NqeEvent.ERR, "without a scope id: an error");
    assert.ok(h.b.getsockopt(bad, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR) > 0);
    pc.close();
  } finally {
    l.close();
    h.dispose();
  }
});
