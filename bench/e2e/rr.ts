/**
 * Request/response and short-connection rates, netperf TCP_RR / TCP_CRR style.
 *
 * ```text
 * deno run -A bench/e2e/rr.ts server --port 7100
 * deno run -A bench/e2e/rr.ts client --net deno|nk [--ctl PATH] --host 198.18.0.2 --port 7100
 *                                    --mode rr|crr --size N --seconds S [--stats]
 * ```
 *
 * The server (Linux sockets, Deno.listen) echoes whatever it reads on every connection. The
 * client keeps one transaction outstanding: `rr` writes `size` bytes on one connection and reads
 * `size` bytes back, again and again; `crr` opens a connection per transaction, writes 1 byte,
 * reads it back and closes. With `--net nk` the client's sockets go through GuestLib (NQEs to
 * the NSM at `--ctl`) instead of Deno's: the code is the same, only `connect` differs. The
 * client prints one JSON line `{ "mode", "size", "transactions", "seconds", "perSecond" }`;
 * `--stats` adds on stderr, for `crr`, the distribution of the connect and of the rest of each
 * transaction (two clock readings per transaction), and with `--net nk` the guest pump's turns,
 * spins and sleeps per transaction.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One transaction stream's result. */
export interface RrResult {
  /** rr or crr. */
  readonly mode: string;
  /** Message size in bytes. */
  readonly size: number;
  /** Completed transactions. */
  readonly transactions: number;
  /** Measured wall time. */
  readonly seconds: number;
  /** transactions / seconds. */
  readonly perSecond: number;
}

/** The subset of Deno.Conn the client needs (Deno.TcpConn and GuestLib's NkConn both fit). */
interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

type Connect = (host: string, port: number) => Promise<Conn>;

/** Per-transaction durations (ms) of `crr`'s two phases: connect, and write + read + close. */
export interface CrrPhases {
  /** connect() until it resolved. */
  readonly connect: number[];
  /** The rest of the transaction. */
  readonly rest: number[];
}

/** "p50 A p99 B max C us, N over 500 us" of durations in ms (sorts `xs`). */
export function phaseSummary(xs: number[]): string {
  if (xs.length === 0) return "none";
  xs.sort((x, y) => x - y);
  const q = (f: number): string => (xs[Math.floor(f * (xs.length - 1))]! * 1000).toFixed(0);
  let over = 0;
  for (const x of xs) if (x > 0.5) over++;
  return `p50 ${q(0.5)} p99 ${q(0.99)} max ${q(1)} us, ${over} over 500 us`;
}

async function writeAll(c: Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await c.write(b.subarray(off));
}

async function readExactly(c: Conn, b: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < b.length) {
    const n = await c.read(b.subarray(off));
    if (n === null) return false;
    off += n;
  }
  return true;
}

/** Runs transactions for `seconds` (one outstanding at a time). */
export async function runClient(
  connect: Connect,
  host: string,
  port: number,
  mode: "rr" | "crr",
  size: number,
  seconds: number,
  phases?: CrrPhases,
): Promise<RrResult> {
  const req = new Uint8Array(size).fill(0x61);
  const resp = new Uint8Array(size);
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  if (mode === "rr") {
    const c = await connect(host, port);
    try {
      // Check the clock every 64 transactions: performance.now() is not free at ~50k/s.
      for (;;) {
        for (let i = 0; i < 64; i++) {
          await writeAll(c, req);
          if (!await readExactly(c, resp)) throw new Error("rr: server closed the connection");
          n++;
        }
        if (performance.now() >= end) break;
      }
    } finally {
      c.close();
    }
  } else {
    while (performance.now() < end) {
      const a = phases === undefined ? 0 : performance.now();
      const c = await connect(host, port);
      const b = phases === undefined ? 0 : performance.now();
      try {
        await writeAll(c, req);
        if (!await readExactly(c, resp)) throw new Error("crr: server closed before answering");
      } finally {
        c.close();
      }
      if (phases !== undefined) {
        phases.connect.push(b - a);
        phases.rest.push(performance.now() - b);
      }
      n++;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  return { mode, size, transactions: n, seconds: secs, perSecond: n / secs };
}

/** Echoes every connection until the peer closes it; runs until the process is killed. */
export async function runServer(port: number): Promise<void> {
  const l = Deno.listen({ hostname: "0.0.0.0", port });
  console.log("ready");
  for await (const c of l) {
    c.setNoDelay(true);
    (async (): Promise<void> => {
      const buf = new Uint8Array(65536);
      try {
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          await writeAll(c, buf.subarray(0, n));
        }
      } catch { /* peer reset */ }
      try {
        c.close();
      } catch { /* closed */ }
    })();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      port: { type: "string", default: "7100" },
      host: { type: "string", default: "198.18.0.2" },
      net: { type: "string", default: "deno" },
      ctl: { type: "string" },
      mode: { type: "string", default: "rr" },
      size: { type: "string", default: "1" },
      seconds: { type: "string", default: "2" },
      stats: { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  if (positionals[0] === "server") return await runServer(port);
  let connect: Connect;
  let done = (): Promise<void> => Promise.resolve();
  let stats = (_n: number): Promise<string> => Promise.resolve("");
  if (values.net === "nk") {
    const nk = await import("../../guest/guestlib/mod.ts");
    const ctl = values.ctl;
    // TCP_NODELAY on both clients, as netperf's TCP_RR: with Nagle a request split into two
    // sends waits for the peer's delayed ACK (~40 ms per transaction).
    connect = async (hostname, port) => {
      const c = await nk.connect(ctl !== undefined ? { hostname, port, ctl } : { hostname, port });
      c.setNoDelay(true);
      return c;
    };
    done = nk.closeAll;
    // The guest's pump per transaction: how often it yielded, spun out and slept.
    stats = async (n) => {
      const t = (await nk.client(ctl)).traffic();
      const per = (x: number): string => (x / Math.max(1, n)).toFixed(2);
      return `guest per transaction: pumpTurns ${per(t.pumpTurns)} pumpWaits ${
        per(t.pumpWaits)
      } pumpSleeps ${per(t.pumpSleeps)} (${per(t.pumpThreadSleeps)} on the sleeper thread) ` +
        `sendChunks ${per(t.sendChunks)}`;
    };
  } else {
    connect = async (hostname, port) => {
      const c = await Deno.connect({ hostname, port });
      c.setNoDelay(true);
      return c;
    };
  }
  const mode = values.mode === "crr" ? "crr" : "rr";
  const phases: CrrPhases | undefined = values.stats && mode === "crr"
    ? { connect: [], rest: [] }
    : undefined;
  const r = await runClient(
    connect,
    values.host,
    port,
    mode,
    Number(values.size),
    Number(values.seconds),
    phases,
  );
  console.log(JSON.stringify(r));
  if (phases !== undefined) {
    console.error(`crr connect: ${phaseSummary(phases.connect)}`);
    console.error(`crr rest:    ${phaseSummary(phases.rest)}`);
  }
  if (values.stats) console.error(await stats(r.transactions));
  await done();
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
