// GuestLib's connect pipelines SOCKET and CONNECT (one CONNECT with NqeFlag.OPEN): one request
// and one completion per connection; the open's and the connect's errors surface from connect,
// and a failed connect leaves no socket in the NSM.
import assert from "node:assert/strict";
import { memoryPair } from "./support/memory_pair.ts";
import { connectWith, NkListener } from "../guest/guestlib/conn.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "connectWith() opens and connects with one request and one completion, and the connection carries data",
  opts,
  async () => {
    const e = await memoryPair();
    try {
      const l = new NkListener(Promise.resolve(e.b), { port: 8101 });
      await l.ready;
      const echo = (async () => {
        const c = await l.accept();
        const buf = new Uint8Array(16);
        const n = await c.read(buf);
        await c.write(buf.subarray(0, n ?? 0));
        c.close();
      })();
      const s = e.nsm.a.stats;
      const req0 = s.requests, comp0 = s.completions;
      const c = await connectWith(e.a, { hostname: "198.18.0.2", port: 8101 });
      // Read right after the await: nothing else of guest A ran in between.
      assert.equal(e.nsm.a.stats.requests - req0, 1, "requests for one connect");
      assert.equal(e.nsm.a.stats.completions - comp0, 1, "completions for one connect");
      assert.ok(c.id > 0);
      assert.equal(c.remoteAddr.port, 8101);
      assert.equal(c.localAddr.hostname, "198.18.0.1");
      assert.equal(e.nsm.a.guests[0]!.sockets, 1);
      await c.write(new Uint8Array([42]));
      const got = new Uint8Array(1);
      assert.equal(await c.read(got), 1);
      assert.equal(got[0], 42);
      await echo;
      c.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);

Deno.test(
  "connectWith() throws the pipelined open's EMFILE (Deno.errors.Busy) and a refused connect's ConnectionRefused, and neither leaves a socket",
  opts,
  async () => {
    const e = await memoryPair(1);
    try {
      await assert.rejects(
        connectWith(e.a, { hostname: "198.18.0.2", port: 9 }),
        Deno.errors.ConnectionRefused,
      );
      assert.equal(e.nsm.a.guests[0]!.sockets, 0, "the refused connect's socket is closed");
      const l = new NkListener(Promise.resolve(e.b), { port: 8102 });
      await l.ready;
      const first = await connectWith(e.a, { hostname: "198.18.0.2", port: 8102 });
      const err = await connectWith(e.a, { hostname: "198.18.0.2", port: 8102 }).then(
        () => null,
        (x: unknown) => x,
      );
      assert.ok(err instanceof Deno.errors.Busy, `got ${err}`);
      assert.equal((err as { errno?: number }).errno, 24);
      assert.equal(e.nsm.a.guests[0]!.sockets, 1);
      first.close();
      l.close();
    } finally {
      await e.done();
    }
  },
);
