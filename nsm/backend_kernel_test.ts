// Unit tests of the kernel backend's pure parts and of calls that touch no network. The
// socket behaviour against kernel peers is tested inside a network namespace:
// tests/nsm_kernel_backend_test.ts.

import assert from "node:assert/strict";
import {
  ByteRing,
  EIO,
  errnoOf,
  KernelBackend,
  kernelWaitLink,
  parseHostInto,
  sockAddrHost,
} from "./backend_kernel.ts";
import { Errno, Family, SockAddr, SockLevel, SockOpt, SockType } from "./backend.ts";

Deno.test("errnoOf() maps Deno's errors by code, then os error number, then class, else EIO", () => {
  const refused = new Deno.errors.ConnectionRefused("Connection refused (os error 111)");
  Object.assign(refused, { code: "ECONNREFUSED" });
  assert.equal(errnoOf(refused), Errno.ECONNREFUSED);
  assert.equal(errnoOf(new Error("Host is unreachable (os error 113)")), Errno.EHOSTUNREACH);
  assert.equal(errnoOf(new Deno.errors.ConnectionReset("reset")), Errno.ECONNRESET);
  assert.equal(errnoOf(new Deno.errors.AddrInUse("in use")), Errno.EADDRINUSE);
  assert.equal(errnoOf(new Deno.errors.TimedOut("slow")), Errno.ETIMEDOUT);
  assert.equal(errnoOf(new Deno.errors.BrokenPipe("pipe")), Errno.EPIPE);
  assert.equal(errnoOf(Object.assign(new Error("x"), { code: "EADDRNOTAVAIL" })), 99);
  assert.equal(errnoOf(new Error("something else")), EIO);
  assert.equal(errnoOf("not an error"), EIO);
});

Deno.test("ByteRing keeps bytes in order across wrap-around and never exceeds its capacity", () => {
  const r = new ByteRing(8);
  assert.equal(r.push(new Uint8Array([1, 2, 3, 4, 5, 6])), 6);
  const out = new Uint8Array(4);
  assert.equal(r.pop(out), 4);
  assert.deepEqual(out, new Uint8Array([1, 2, 3, 4]));
  assert.equal(r.push(new Uint8Array([7, 8, 9, 10, 11, 12, 13])), 6, "only the free 6 fit");
  assert.equal(r.free, 0);
  assert.equal(r.freeSpan().length, 0);
  const all = new Uint8Array(8);
  assert.equal(r.pop(all), 8);
  assert.deepEqual(all, new Uint8Array([5, 6, 7, 8, 9, 10, 11, 12]));
  assert.equal(r.length, 0);
});

Deno.test("ByteRing spans: freeSpan/commit and dataSpan/consume cover the ring without overlap", () => {
  const r = new ByteRing(8);
  let span = r.freeSpan();
  assert.equal(span.length, 8);
  span.set([1, 2, 3, 4, 5]);
  r.commit(5);
  assert.deepEqual(r.dataSpan(), new Uint8Array([1, 2, 3, 4, 5]));
  r.consume(3);
  span = r.freeSpan(); // tail 5..8, then 0..3 after wrapping
  assert.equal(span.length, 3);
  span.set([6, 7, 8]);
  r.commit(3);
  span = r.freeSpan();
  assert.equal(span.length, 3, "the wrapped free bytes before the head");
  span.set([9, 10, 11]);
  r.commit(3);
  assert.equal(r.free, 0);
  assert.deepEqual(r.dataSpan(), new Uint8Array([4, 5, 6, 7, 8]), "contiguous head part");
  r.consume(5);
  assert.deepEqual(r.dataSpan(), new Uint8Array([9, 10, 11]));
});

Deno.test("ByteRing: bytes written into a freeSpan stay valid when the ring empties meanwhile", () => {
  const r = new ByteRing(8);
  r.push(new Uint8Array([1, 2, 3]));
  const span = r.freeSpan(); // an outstanding read holds bytes 3..8
  r.pop(new Uint8Array(3)); // the consumer empties the ring before the read completes
  span.set([4, 5]);
  r.commit(2);
  const out = new Uint8Array(2);
  assert.equal(r.pop(out), 2);
  assert.deepEqual(out, new Uint8Array([4, 5]));
  r.rewind();
  assert.equal(r.freeSpan().length, 8, "rewound once nothing is outstanding");
});

Deno.test("ByteRing grows from its initial storage up to its limit, keeping order, even mid-write", () => {
  const r = new ByteRing(64, 4);
  assert.equal(r.allocated, 4);
  r.push(new Uint8Array([1, 2, 3]));
  r.pop(new Uint8Array(2)); // head now 2: the data wraps after the next push
  r.push(new Uint8Array([4, 5]));
  const inFlight = r.dataSpan(); // a write holds [3] of the old storage
  assert.deepEqual(inFlight, new Uint8Array([3, 4]));
  assert.equal(r.push(new Uint8Array(Array.from({ length: 10 }, (_, i) => 6 + i))), 10);
  assert.equal(r.allocated, 16, "doubled until 13 bytes fit");
  assert.deepEqual(inFlight, new Uint8Array([3, 4]), "the old storage is left intact");
  r.consume(inFlight.length); // the write completes
  const out = new Uint8Array(11);
  assert.equal(r.pop(out), 11);
  assert.deepEqual(out, new Uint8Array([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]));
  assert.equal(r.push(new Uint8Array(100)), 64, "never beyond the limit");
  assert.equal(r.allocated, 64);
  assert.equal(r.free, 0);
  const g = new ByteRing(32, 8);
  g.freeSpan().fill(1);
  g.commit(8);
  assert.equal(g.freeSpan().length, 8, "a full ring below its limit grows for the next read");
  assert.equal(g.allocated, 16);
});

Deno.test("ByteRing.setLimit(): lowering keeps queued bytes and takes nothing until below it", () => {
  const r = new ByteRing(16, 16);
  assert.equal(r.push(new Uint8Array(12).fill(1)), 12);
  r.setLimit(8);
  assert.equal(r.free, 0);
  assert.equal(r.push(new Uint8Array(4)), 0);
  assert.equal(r.freeSpan().length, 0, "no read room either");
  assert.equal(r.pop(new Uint8Array(6)), 6);
  assert.equal(r.free, 2);
  assert.equal(r.freeSpan().length, 2, "a read may fill only up to the limit");
  r.setLimit(32);
  assert.equal(r.push(new Uint8Array(26)), 26, "raising grows the storage on demand");
  assert.equal(r.length, 32);
});

Deno.test("parseHostInto/sockAddrHost round-trip IPv4, IPv6 and mapped addresses", () => {
  const a = new SockAddr();
  assert.ok(parseHostInto("198.18.0.1", 80, a));
  assert.equal(a.family, Family.INET);
  assert.deepEqual([...a.addr.subarray(0, 4)], [198, 18, 0, 1]);
  assert.equal(a.port, 80);
  assert.equal(sockAddrHost(a), "198.18.0.1");
  for (const t of ["fd00::1", "::", "::1", "fd00:1:2:3:4:5:6:7", "fe80::1:0:0:2", "1::"]) {
    assert.ok(parseHostInto(t, 1, a), t);
    assert.equal(a.family, Family.INET6);
    assert.equal(sockAddrHost(a), t);
  }
  assert.ok(parseHostInto("[fd00::2]", 1, a));
  assert.equal(a.addr[15], 2);
  assert.ok(parseHostInto("::ffff:198.18.0.7", 1, a));
  assert.deepEqual([...a.addr], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 198, 18, 0, 7]);
  assert.ok(parseHostInto("fe80::1%2", 1, a), "scope suffix ignored");
  for (const bad of ["example.org", "1.2.3", "1.2.3.256", "1::2::3", "12345::"]) {
    assert.equal(parseHostInto(bad, 1, a), false, bad);
  }
});

Deno.test("KernelBackend.socket() validates domain, type and protocol; unknown ids are EBADF", () => {
  const b = new KernelBackend();
  try {
    assert.equal(b.socket(1, SockType.STREAM, 0), -Errno.EAFNOSUPPORT);
    assert.equal(b.socket(Family.INET, 3, 0), -Errno.EPROTONOSUPPORT);
    assert.equal(b.socket(Family.INET6, SockType.STREAM, 17), -Errno.EPROTONOSUPPORT);
    const id = b.socket(Family.INET, SockType.STREAM, 6);
    assert.ok(id > 0);
    assert.equal(b.events(id), 0, "a new socket reports nothing");
    assert.equal(b.recv(id, new Uint8Array(1), 0), -Errno.ENOTCONN);
    assert.equal(b.send(id, new Uint8Array(1), false, 0), -Errno.ENOTCONN);
    assert.equal(b.shutdown(id, 1, 0), -Errno.ENOTCONN);
    assert.equal(b.accept(id, new SockAddr()), -Errno.EINVAL);
    assert.equal(b.localAddr(id, new SockAddr()), -Errno.EINVAL);
    assert.equal(b.remoteAddr(id, new SockAddr()), -Errno.ENOTCONN);
    assert.equal(b.tcpInfo(id), null);
    assert.equal(b.getsockopt(id, SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_STATE), 7);
    assert.equal(b.getsockopt(id, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR), 0);
    assert.equal(b.setsockopt(id, SockLevel.IPPROTO_IP, 1, 1, 0), -Errno.ENOPROTOOPT);
    const dead = 9999;
    for (
      const r of [
        b.bind(dead, new SockAddr()),
        b.listen(dead, 1),
        b.connect(dead, new SockAddr().setV4([198, 18, 0, 1], 1), 0),
        b.send(dead, new Uint8Array(1), false, 0),
        b.recv(dead, new Uint8Array(1), 0),
        b.sendTo(dead, new Uint8Array(1), new SockAddr(), 0),
        b.recvFrom(dead, new Uint8Array(1), new SockAddr()),
        b.shutdown(dead, 2, 0),
        b.close(dead, 0),
        b.abort(dead, 0),
        b.setsockopt(dead, 1, 1, 1, 0),
        b.getsockopt(dead, 1, 4),
      ]
    ) assert.equal(r, -Errno.EBADF);
    assert.equal(b.close(id, 0), 0);
    assert.equal(b.close(id, 0), -Errno.EBADF);
  } finally {
    b.dispose(0);
  }
});

Deno.test("KernelBackend SOCK_DGRAM needs Deno.listenDatagram (--unstable-net)", () => {
  const b = new KernelBackend();
  try {
    const id = b.socket(Family.INET, SockType.DGRAM, 0);
    if (KernelBackend.udpAvailable) assert.ok(id > 0);
    else assert.equal(id, -Errno.EPROTONOSUPPORT);
  } finally {
    b.dispose(0);
  }
});

Deno.test("KernelBackend.wait() resolves false on timeout and wait(0) yields once", async () => {
  const b = new KernelBackend();
  try {
    assert.equal(await b.wait(5), false);
    assert.equal(await b.wait(0), false);
    assert.equal(await kernelWaitLink(b).wait(1), false);
    assert.equal(b.drainReady(() => assert.fail("nothing is ready")), 0);
    assert.equal(b.poll(0), false);
  } finally {
    b.dispose(0);
    b.dispose(0); // idempotent
  }
  assert.equal(b.socket(Family.INET, SockType.STREAM, 0), -Errno.ENOBUFS, "disposed");
});

Deno.test("KernelBackend connect() rejects what Deno.connect cannot do before any I/O", () => {
  const b = new KernelBackend();
  try {
    const id = b.socket(Family.INET, SockType.STREAM, 0);
    const v6 = new SockAddr();
    v6.family = Family.INET6;
    v6.port = 1;
    assert.equal(b.connect(id, v6, 0), -Errno.EAFNOSUPPORT, "family differs from the socket's");
    assert.equal(b.connect(id, new SockAddr(), 0), -Errno.EAFNOSUPPORT, "no family");
    assert.equal(b.connect(id, new SockAddr().setV4([198, 18, 0, 1], 0), 0), -Errno.EINVAL);
  } finally {
    b.dispose(0);
  }
});
