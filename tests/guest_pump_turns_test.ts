/**
 * GuestLib's pump and the application's continuations: after a drain that resolved or fed the
 * application, the pump must let it run, however many awaits deep, before it spins: its spin
 * is synchronous, and whatever the application would submit cannot arrive during it. Counted,
 * not timed: the client runs with a one-second spin budget, so a spin that waits for the
 * application instead of the NSM runs out and counts a miss. Session 3's guest work broke this
 * twice (bench:e2e conn_rate 5.0k -> 2.5k conn/s, rr_1b 21k -> 5.7k trans/s).
 *
 * The NSM (`nsm/memory_nsm.ts`) and the echo server guest are processes of their own, so the
 * client's spin does not hold them up.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawnReady, stopAll } from "./support/children.ts";
import { NkClient, type NkConn } from "../guest/guestlib/mod.ts";
import { connectWith } from "../guest/guestlib/conn.ts";

const ROOT = new URL("..", import.meta.url).pathname;

// An application's layers, as a request/response client has them (bench/e2e/rr.ts): every
// await between the data arriving and the next request is a microtask the pump must let run.
async function writeAll(c: NkConn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await c.write(b.subarray(off));
}
async function readExactly(c: NkConn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const n = await c.read(b.subarray(off));
    if (n === null) throw new Error("closed before the answer");
    off += n;
  }
}
async function exchange(c: NkConn, req: Uint8Array, resp: Uint8Array): Promise<void> {
  await writeAll(c, req);
  await readExactly(c, resp);
}

Deno.test({
  name:
    "GuestLib's pump lets request/response and short-connection clients run before it spins: no spin waits for the application",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(): Promise<void> {
    const dir = await Deno.makeTempDir({ prefix: "pump-turns-" });
    const ctlA = `${dir}/a.sock`, ctlB = `${dir}/b.sock`;
    const kids: Deno.ChildProcess[] = [];
    let client: NkClient | null = null;
    try {
      kids.push(await spawnReady([`${ROOT}nsm/memory_nsm.ts`, "--ctl", ctlA, "--peer-ctl", ctlB]));
      kids.push(
        await spawnReady([`${ROOT}tests/support/nk_echo.ts`, "--ctl", ctlB, "--port", "7"]),
      );
      // A constant one-second budget: a spin either finds the NSM's answer (a hit) or runs
      // out (a miss), which only happens when no answer can come.
      const s = 1_000_000_000;
      client = await NkClient.attach({ ctl: ctlA, spin: { minNs: s, maxNs: s, initialNs: s } });
      const req = new Uint8Array([0x61]);
      const resp = new Uint8Array(1);
      const first = await connectWith(client, { hostname: "198.18.0.2", port: 7 });
      await exchange(first, req, resp); // ARP and JIT warm-up
      const misses0 = client.spin.misses;
      for (let i = 0; i < 20; i++) await exchange(first, req, resp);
      first.close();
      for (let i = 0; i < 5; i++) {
        const c = await connectWith(client, { hostname: "198.18.0.2", port: 7 });
        c.setNoDelay(true);
        await exchange(c, req, resp);
        assert.equal(resp[0], 0x61);
        c.close();
      }
      assert.equal(client.spin.misses - misses0, 0, "a spin ran out waiting for the application");
    } finally {
      client?.close();
      await stopAll(kids);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
