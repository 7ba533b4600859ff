import assert from "node:assert/strict";
import { runClient } from "./rr.ts";
import { table } from "./main.ts";

/** An in-memory echo connection: each write is read back (in pieces of at most `piece`). */
class EchoConn {
  opened = 0;
  closed = 0;
  #pending: number[] = [];
  constructor(readonly piece: number) {}
  read(p: Uint8Array): Promise<number | null> {
    const n = Math.min(p.length, this.#pending.length, this.piece);
    for (let i = 0; i < n; i++) p[i] = this.#pending.shift()!;
    return Promise.resolve(n === 0 ? null : n);
  }
  write(p: Uint8Array): Promise<number> {
    const n = Math.min(p.length, 700); // short writes, as a socket may do
    for (let i = 0; i < n; i++) this.#pending.push(p[i]!);
    return Promise.resolve(n);
  }
  close(): void {
    this.closed++;
  }
}

Deno.test("runClient('rr') completes transactions on one connection, reassembling split replies", async () => {
  const c = new EchoConn(300);
  let connects = 0;
  const r = await runClient(
    () => {
      connects++;
      return Promise.resolve(c);
    },
    "h",
    1,
    "rr",
    1024,
    0.05,
  );
  assert.equal(connects, 1);
  assert.equal(c.closed, 1);
  assert.ok(r.transactions >= 64 && r.transactions % 64 === 0, `${r.transactions}`);
  assert.equal(r.size, 1024);
  assert.ok(Math.abs(r.perSecond - r.transactions / r.seconds) < 1e-6);
});

Deno.test("runClient('crr') opens and closes one connection per transaction", async () => {
  const conns: EchoConn[] = [];
  const r = await runClient(
    () => {
      const c = new EchoConn(1);
      conns.push(c);
      return Promise.resolve(c);
    },
    "h",
    1,
    "crr",
    1,
    0.02,
  );
  assert.equal(conns.length, r.transactions);
  assert.ok(conns.every((c) => c.closed === 1));
});

Deno.test("runClient('rr') fails when the server closes mid-transaction", async () => {
  const dead = {
    read: (): Promise<number | null> => Promise.resolve(null),
    write: (p: Uint8Array): Promise<number> => Promise.resolve(p.length),
    close: (): void => {},
  };
  await assert.rejects(
    runClient(() => Promise.resolve(dead), "h", 1, "rr", 1, 1),
    /server closed/,
  );
});

Deno.test("table() prints ratios and the CPU unit per row, '-' for a missing stack", () => {
  const t = table([{
    name: "bulk_tx_offloads_off",
    unit: "Gbit/s",
    linux: 4,
    nsm_tcpip: 1,
    nsm_kernel: null,
    ratio_tcpip: 0.25,
    ratio_kernel: null,
    cpu: { unit: "cores per Gbit/s", linux: 0.2, nsm_tcpip: 0.7, nsm_kernel: null },
  }]);
  const row = t.split("\n")[2]!;
  assert.match(row, /^\| bulk_tx_offloads_off \| Gbit\/s \| 4\.00 \| 1\.00 \| - \| 0\.25 \| - \|/);
  assert.match(row, /0\.20 \/ 0\.70 \/ - cores\/Gbit\/s \|$/);
});
