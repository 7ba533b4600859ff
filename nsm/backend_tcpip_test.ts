import assert from "node:assert/strict";
import { MILLISECOND } from "../stacks/time.ts";
import { Errno, SockAddr, SockLevel, SockOpt } from "./backend.ts";
import { memoryWire } from "./memory_link.ts";
import { createTcpipHost, type TcpipHost } from "./stack_host.ts";
import { NqeEvent } from "./nqe.ts";

function pair(): [TcpipHost, TcpipHost] {
  const [la, lb] = memoryWire();
  return [
    createTcpipHost(la, { ipv4: "198.18.0.1/24" }),
    createTcpipHost(lb, { ipv4: "198.18.0.2/24" }),
  ];
}

/** Runs both interfaces for `steps` rounds of 1 ms simulated time. */
function run(a: TcpipHost, b: TcpipHost, t: { now: number }, steps = 20): void {
  for (let i = 0; i < steps; i++) {
    t.now += MILLISECOND;
    a.iface.poll(t.now);
    b.iface.poll(t.now);
  }
}

function v4(a: number[], port: number): SockAddr {
  return new SockAddr().setV4(a, port);
}

Deno.test("TcpipBackend: connect/accept/send/recv/shutdown with -errno results and NqeEvent readiness", () => {
  const [a, b] = pair();
  const t = { now: 0 };
  const ls = b.backend.socket(2, 1, 0);
  assert.ok(ls > 0);
  assert.equal(b.backend.bind(ls, v4([0, 0, 0, 0], 5000)), 0);
  assert.equal(b.backend.listen(ls, 16), 0);
  const peer = new SockAddr();
  assert.equal(b.backend.accept(ls, peer), -Errno.EAGAIN);
  const c = a.backend.socket(2, 1, 0);
  assert.equal(a.backend.connect(c, v4([198, 18, 0, 2], 5000), t.now), -Errno.EINPROGRESS);
  run(a, b, t);
  const readyA: [number, number][] = [];
  a.backend.drainReady((id, ev) => readyA.push([id, ev]));
  assert.ok(readyA.some(([id, ev]) => id === c && (ev & NqeEvent.OUT) !== 0));
  const readyB: number[] = [];
  b.backend.drainReady((id) => readyB.push(id));
  assert.ok(readyB.includes(ls));
  const s = b.backend.accept(ls, peer);
  assert.ok(s > 0);
  assert.equal(peer.family, 2);
  assert.deepEqual([...peer.addr.subarray(0, 4)], [198, 18, 0, 1]);
  assert.equal(a.backend.send(c, new TextEncoder().encode("hello"), false, t.now), 5);
  assert.equal(a.backend.shutdown(c, 1, t.now), 0);
  run(a, b, t);
  const buf = new Uint8Array(100);
  assert.equal(b.backend.recv(s, buf, t.now, 2), 2, "at most max bytes into a larger dst");
  assert.equal(b.backend.recv(s, buf.subarray(2), t.now), 3);
  assert.equal(new TextDecoder().decode(buf.subarray(0, 5)), "hello");
  assert.equal(b.backend.recv(s, buf, t.now), 0);
  assert.ok(b.backend.events(s) & NqeEvent.RDHUP);
  assert.equal(a.backend.send(c, buf.subarray(0, 1), false, t.now), -Errno.EPIPE);
  assert.equal(a.backend.getsockopt(c, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_STATE), 5); // FIN-WAIT-2
  assert.ok(a.backend.getsockopt(c, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_CWND) > 0);
  assert.equal(a.backend.close(c, t.now), 0);
  assert.equal(a.backend.close(c, t.now), -Errno.EBADF);
  assert.equal(a.backend.send(12345, buf, false, t.now), -Errno.EBADF);
});

Deno.test("TcpipBackend: a refused connect reports ERR and SO_ERROR = ECONNREFUSED once", () => {
  const [a, b] = pair();
  const t = { now: 0 };
  const c = a.backend.socket(2, 1, 0);
  assert.equal(a.backend.connect(c, v4([198, 18, 0, 2], 9), t.now), -Errno.EINPROGRESS);
  run(a, b, t);
  let ev = 0;
  a.backend.drainReady((id, e) => id === c && (ev = e));
  assert.ok(ev & NqeEvent.ERR);
  assert.equal(a.backend.getsockopt(c, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), Errno.ECONNREFUSED);
  assert.equal(a.backend.getsockopt(c, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), 0);
});

Deno.test("TcpipBackend: bind conflicts are -EADDRINUSE, UDP listen -EOPNOTSUPP, bad family -EAFNOSUPPORT", () => {
  const [a] = pair();
  const l1 = a.backend.socket(2, 1, 0);
  a.backend.bind(l1, v4([0, 0, 0, 0], 80));
  assert.equal(a.backend.listen(l1, 1), 0);
  const l2 = a.backend.socket(2, 1, 0);
  a.backend.bind(l2, v4([0, 0, 0, 0], 80));
  assert.equal(a.backend.listen(l2, 1), -Errno.EADDRINUSE);
  const u = a.backend.socket(2, 2, 0);
  assert.equal(a.backend.listen(u, 1), -Errno.EOPNOTSUPP);
  assert.equal(a.backend.socket(1, 1, 0), -Errno.EAFNOSUPPORT);
  assert.equal(a.backend.socket(2, 3, 0), -Errno.EPROTONOSUPPORT);
  const l3 = a.backend.socket(2, 1, 0);
  assert.equal(a.backend.listen(l3, 4), 0); // unbound listen: ephemeral port
  const addr = new SockAddr();
  assert.equal(a.backend.localAddr(l3, addr), 0);
  assert.ok(addr.port >= 1024);
});

Deno.test("TcpipBackend: UDP sendTo/recvFrom with source address and IN readiness", () => {
  const [a, b] = pair();
  const t = { now: 0 };
  const ub = b.backend.socket(2, 2, 0);
  assert.equal(b.backend.bind(ub, v4([0, 0, 0, 0], 7000)), 0);
  const ua = a.backend.socket(2, 2, 0);
  assert.equal(
    a.backend.sendTo(ua, new Uint8Array([1, 2, 3]), v4([198, 18, 0, 2], 7000), t.now),
    3,
  );
  run(a, b, t);
  let ev = 0;
  b.backend.drainReady((id, e) => id === ub && (ev = e));
  assert.ok(ev & NqeEvent.IN);
  const src = new SockAddr();
  const buf = new Uint8Array(16);
  assert.equal(b.backend.recvFrom(ub, buf, src), 3);
  assert.deepEqual([...buf.subarray(0, 3)], [1, 2, 3]);
  assert.deepEqual([...src.addr.subarray(0, 4)], [198, 18, 0, 1]);
  assert.equal(b.backend.recvFrom(ub, buf, src), -Errno.EAGAIN);
});

Deno.test("TcpipBackend.servicesView shares TcpStack's ready list: services see only their sockets, the backend only its own", () => {
  const [a, b] = pair();
  const t = { now: 0 };
  const view = b.backend.servicesView();
  const svc = view.listen(null, 7, 16); // a socket the NSM's services own
  const own = b.backend.socket(2, 1, 0);
  b.backend.bind(own, v4([0, 0, 0, 0], 8));
  b.backend.listen(own, 16);
  const c1 = a.backend.socket(2, 1, 0);
  a.backend.connect(c1, v4([198, 18, 0, 2], 7), t.now);
  const c2 = a.backend.socket(2, 1, 0);
  a.backend.connect(c2, v4([198, 18, 0, 2], 8), t.now);
  run(a, b, t);
  const backendSaw: number[] = [];
  b.backend.drainReady((id) => backendSaw.push(id)); // pulls the whole list first
  const servicesSaw: number[] = [];
  view.drainReady((id) => servicesSaw.push(id));
  assert.deepEqual(backendSaw, [own]);
  assert.deepEqual(servicesSaw, [svc]);
  assert.ok(view.accept(svc) > 0);
});
