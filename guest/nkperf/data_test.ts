import assert from "node:assert/strict";
import { DataPhase } from "./data.ts";
import type { NetConn } from "./net.ts";
import { StreamCounter } from "./report.ts";

const addr: Deno.NetAddr = { transport: "tcp", hostname: "198.18.0.1", port: 1 };

/**
 * A connection with the non-waiting calls: takes at most `room` bytes per tryWrite, then
 * needs a waitWritable; hands out `script` reads, -1 (wait) between them.
 */
class FastConn implements NetConn {
  readonly localAddr = addr;
  readonly remoteAddr = addr;
  readonly written: number[] = [];
  writeCalls = 0;
  waits = 0;
  promiseWrites = 0;
  closed = false;
  readonly #room: number;
  readonly #script: (number | null)[];
  #blocked = false;

  constructor(room: number, script: (number | null)[] = []) {
    this.#room = room;
    this.#script = script;
  }

  tryWrite(p: Uint8Array, start: number, end: number): number {
    if (this.closed) throw new Deno.errors.BadResource("closed");
    this.writeCalls++;
    if (this.#blocked) return 0;
    const n = Math.min(this.#room, end - start);
    for (let i = start; i < start + n; i++) this.written.push(p[i]!);
    this.#blocked = true;
    return n;
  }

  waitWritable(): Promise<void> {
    this.waits++;
    this.#blocked = false;
    return new Promise((r) => setTimeout(r, 0));
  }

  tryRead(p: Uint8Array): number | null {
    if (this.closed) throw new Deno.errors.BadResource("closed");
    if (this.#script.length === 0) return -1;
    const n = this.#script.shift()!;
    if (n === null) return null;
    if (n === -1) return -1;
    p.fill(1, 0, n);
    return n;
  }

  waitReadable(): Promise<void> {
    this.waits++;
    return new Promise((r) => setTimeout(r, 0));
  }

  read(): Promise<number | null> {
    throw new Error("the data loop must use tryRead");
  }

  write(): Promise<number> {
    this.promiseWrites++;
    throw new Error("the data loop must use tryWrite");
  }

  close(): void {
    this.closed = true;
  }
}

Deno.test("StreamCounter starts every count and time at 0", () => {
  const s = new StreamCounter(1, new FastConn(1));
  assert.equal(s.bytes, 0);
  assert.equal(s.startNs, 0);
  assert.equal(s.endNs, 0);
  assert.equal(s.lastSampleBytes, 0);
});

Deno.test(
  "DataPhase sends through tryWrite/waitWritable: the block as a stream from where a call stopped, bytes counted",
  async () => {
    const conn = new FastConn(7);
    const s = new StreamCounter(1, conn);
    const phase = new DataPhase([s], true, 10, () => 0);
    phase.start(0);
    for (let i = 0; i < 50 && conn.written.length < 40; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    await phase.stop(0, 1000);
    assert.equal(phase.error, undefined);
    assert.equal(conn.promiseWrites, 0);
    assert.ok(conn.written.length >= 40, `${conn.written.length} bytes`);
    assert.equal(s.bytes, conn.written.length);
    // Offsets 0..6, 7..9, 0..6, ...: the 10-byte block repeats exactly in the stream.
    const block = conn.written.slice(0, 10);
    for (let i = 0; i < conn.written.length; i++) assert.equal(conn.written[i], block[i % 10]);
    assert.ok(conn.waits > 0);
    await phase.closeAll();
  },
);

Deno.test(
  "DataPhase receives through tryRead/waitReadable, stamping the end time once per burst of reads",
  async () => {
    let now = 100;
    let clockReads = 0;
    const clock = (): number => {
      clockReads++;
      return now;
    };
    // Two bursts (3 reads, then 2), then end of stream.
    const conn = new FastConn(0, [5, 6, 7, -1, 8, 9, null]);
    const s = new StreamCounter(1, conn);
    const phase = new DataPhase([s], false, 16, clock);
    phase.start(50);
    now = 200; // the first burst runs synchronously in start(): stamped at 100
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.bytes, 5 + 6 + 7 + 8 + 9);
    assert.equal(s.endNs, 200); // the second burst ended by end of stream
    assert.equal(clockReads, 2);
    assert.equal(phase.error, undefined);
    await phase.closeAll();
  },
);
