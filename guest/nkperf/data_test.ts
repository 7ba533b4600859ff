import assert from "node:assert/strict";
import { monotonicNow } from "../../stacks/time.ts";
import { DataPhase } from "./data.ts";
import type { NetConn } from "./net.ts";
import { StreamCounter } from "./report.ts";

const addr: Deno.NetAddr = { transport: "tcp", hostname: "198.18.0.1", port: 1 };

/**
 * A connection with the non-waiting calls and callbacks (as GuestLib's NkConn): takes at most
 * `room` bytes until the next `tick()`, which also runs the callbacks; hands out `script`
 * reads, -1 (nothing yet) between them and once it ran out.
 */
class FastConn implements NetConn {
  readonly localAddr = addr;
  readonly remoteAddr = addr;
  readonly written: number[] = [];
  promiseCalls = 0;
  closed = false;
  readable: (() => void) | null = null;
  writable: (() => void) | null = null;
  readonly #room: number;
  readonly #script: (number | null)[];
  #left: number;

  constructor(room: number, script: (number | null)[] = []) {
    this.#room = room;
    this.#left = room;
    this.#script = script;
  }

  /** Reopens the room and calls the registered callbacks, as the pump does. */
  tick(): void {
    this.#left = this.#room;
    this.writable?.();
    this.readable?.();
  }

  tryWrite(p: Uint8Array, start: number, end: number): number {
    if (this.closed) throw new Deno.errors.BadResource("closed");
    const n = Math.min(this.#left, end - start);
    for (let i = start; i < start + n; i++) this.written.push(p[i]!);
    this.#left -= n;
    return n;
  }

  onWritable(f: (() => void) | null): void {
    this.writable = f;
  }

  tryRead(p: Uint8Array): number | null {
    if (this.closed) throw new Deno.errors.BadResource("closed");
    const n = this.#script.shift();
    if (n === undefined || n === -1) return -1;
    if (n === null) return null;
    p.fill(1, 0, n);
    return n;
  }

  onReadable(f: (() => void) | null): void {
    this.readable = f;
  }

  read(): Promise<number | null> {
    this.promiseCalls++;
    throw new Error("the data loop must use tryRead");
  }

  write(): Promise<number> {
    this.promiseCalls++;
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
  "DataPhase sends through tryWrite/onWritable: the block as a stream from where a call stopped, bytes counted, stop() ends it",
  async () => {
    const conn = new FastConn(7);
    const s = new StreamCounter(1, conn);
    const phase = new DataPhase([s], true, 10, () => 0);
    phase.start(0);
    assert.equal(conn.written.length, 7); // the first call, in start()
    for (let i = 0; i < 6; i++) conn.tick();
    assert.equal(conn.written.length, 49);
    await phase.stop(0, 1000); // resolves only once the loop ended
    assert.equal(conn.writable, null); // unregistered
    assert.equal(phase.error, undefined);
    assert.equal(conn.promiseCalls, 0);
    assert.equal(s.bytes, 49);
    // Offsets 0..6, 7..9, 0..3, ...: the 10-byte block repeats exactly in the stream.
    const block = conn.written.slice(0, 10);
    for (let i = 0; i < conn.written.length; i++) assert.equal(conn.written[i], block[i % 10]);
    await phase.closeAll();
  },
);

Deno.test(
  "DataPhase receives through tryRead/onReadable, stamping the end time once per burst of reads; closeAll() ends it",
  async () => {
    let now = 100;
    let clockReads = 0;
    const clock = (): number => {
      clockReads++;
      return now;
    };
    // Two bursts (3 reads, then 2), then end of stream.
    const conn = new FastConn(0, [5, 6, 7, -1, 8, 9, -1]);
    const s = new StreamCounter(1, conn);
    const phase = new DataPhase([s], false, 16, clock);
    phase.start(50); // the first burst runs in start(): stamped at 100
    assert.equal(s.bytes, 18);
    assert.equal(s.endNs, 100);
    now = 200;
    conn.tick();
    assert.equal(s.bytes, 5 + 6 + 7 + 8 + 9);
    assert.equal(s.endNs, 200);
    assert.equal(clockReads, 2);
    conn.tick(); // nothing new: no clock read
    assert.equal(clockReads, 2);
    await phase.stop(300, 1000);
    await phase.closeAll(); // the closed connection throws in tryRead: the loop ends quietly
    assert.equal(conn.readable, null);
    assert.equal(phase.error, undefined);
    assert.equal(s.endNs, 200);
    assert.equal(conn.promiseCalls, 0);
  },
);

Deno.test("DataPhase with monotonicNow as its clock stamps a receiver's end in the counter's cell (no number returned per read)", async () => {
  const conn = new FastConn(0, [5, 6, -1, 7, -1]);
  const s = new StreamCounter(1, conn);
  const phase = new DataPhase([s], false, 16, monotonicNow);
  const t0 = monotonicNow();
  phase.start(t0);
  assert.equal(s.bytes, 11);
  const first = s.endNs;
  assert.ok(first >= t0 && s.endCell[0] === first, `${first} vs ${t0}`);
  await new Promise((r) => setTimeout(r, 5));
  conn.tick();
  assert.equal(s.bytes, 18);
  assert.ok(s.endNs > first, "the second burst moved the end");
  await phase.stop(monotonicNow(), 1000);
  await phase.closeAll();
});

Deno.test("DataPhase records a receive error raised before the stop", async () => {
  const conn = new FastConn(0, []);
  const s = new StreamCounter(1, conn);
  const phase = new DataPhase([s], false, 16, () => 0);
  phase.start(0);
  conn.closed = true; // e.g. reset by the peer
  conn.tick();
  assert.ok(phase.error instanceof Deno.errors.BadResource);
  await phase.closeAll();
});
