// GuestLib's requests nobody awaits: a CLOSE with nothing in flight is posted at once (no
// promise chain before it), and requests that wait for ring room keep their own contents.
import assert from "node:assert/strict";
import { memoryPair } from "./support/memory_pair.ts";
import { decodeNqe, Nqe, NqeOp } from "../nsm/nqe.ts";
import { SockLevel, SockOpt } from "../nsm/backend.ts";
import { connectWith, NkListener } from "../guest/guestlib/conn.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "NkConn.close() with nothing in flight publishes its CLOSE before it returns, and shutdown() waits for it: the peer reads EOF, not a reset",
  opts,
  async () => {
    const e = await memoryPair();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8301 });
      await l.ready;
      const accepted = l.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8301 });
      await c.write(new Uint8Array([7]));
      const peer = await accepted;
      const one = new Uint8Array(1);
      assert.equal(await peer.read(one), 1);
      await peer.write(one);
      assert.equal(await c.read(one), 1); // the SEND's completion came before the echo
      const job = e.a.device.queueSets[0]!.job;
      const before = job.index;
      c.close();
      assert.equal(job.index - before, 1, "the CLOSE is in the job ring when close() returns");
      const n = decodeNqe(job.view, job.slot(-1), new Nqe());
      assert.equal(n.op, NqeOp.CLOSE);
      assert.equal(n.socketId, c.id);
      await e.a.shutdown(2000); // waits for the CLOSE's completion, then detaches
      assert.equal(await peer.read(one), null, "a graceful FIN, not a reset from the detach");
      peer.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "NkClient requests that wait for job-ring room keep their own contents: 3000 GETSOCKOPTs of alternating options each get their own answer",
  opts,
  async () => {
    const e = await memoryPair();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8302 });
      await l.ready;
      const accepted = l.accept();
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8302 });
      await accepted;
      const rcv = await c.getsockopt(SockLevel.SOL_SOCKET, SockOpt.SO_RCVBUF);
      const snd = await c.getsockopt(SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_MSS);
      assert.notEqual(rcv, snd, "the test needs two different answers");
      const asks: Promise<number>[] = [];
      for (let i = 0; i < 3000; i++) {
        asks.push(
          i % 2 === 0
            ? c.getsockopt(SockLevel.SOL_SOCKET, SockOpt.SO_RCVBUF)
            : c.getsockopt(SockLevel.IPPROTO_TCP, SockOpt.TCP_INFO_MSS),
        );
      }
      const got = await Promise.all(asks);
      for (let i = 0; i < got.length; i++) {
        assert.equal(got[i], i % 2 === 0 ? rcv : snd, `ask ${i}`);
      }
      c.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);
