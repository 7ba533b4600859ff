/**
 * Request/response and short-connection rates, netperf TCP_RR / TCP_CRR style.
 *
 * ```text
 * deno run -A bench/e2e/rr.ts server --port 7100
 * deno run -A bench/e2e/rr.ts client --net deno|nk [--ctl PATH] --host 198.18.0.2 --port 7100
 *                                    --mode rr|crr --size N --seconds S
 * ```
 *
 * The server (Linux sockets, Deno.listen) echoes whatever it reads on every connection. The
 * client keeps one transaction outstanding: `rr` writes `size` bytes on one connection and reads
 * `size` bytes back, again and again; `crr` opens a connection per transaction, writes 1 byte,
 * reads it back and closes. With `--net nk` the client's sockets go through GuestLib (NQEs to
 * the NSM at `--ctl`) instead of Deno's: the code is the same, only `connect` differs. The
 * client prints one JSON line `{ "mode", "size", "transactions", "seconds", "perSecond" }`.
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
      const c = await connect(host, port);
      try {
        await writeAll(c, req);
        if (!await readExactly(c, resp)) throw new Error("crr: server closed before answering");
      } finally {
        c.close();
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
    },
  });
  const port = Number(values.port);
  if (positionals[0] === "server") return await runServer(port);
  let connect: Connect;
  let done = (): Promise<void> => Promise.resolve();
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
  } else {
    connect = async (hostname, port) => {
      const c = await Deno.connect({ hostname, port });
      c.setNoDelay(true);
      return c;
    };
  }
  const mode = values.mode === "crr" ? "crr" : "rr";
  const r = await runClient(
    connect,
    values.host,
    port,
    mode,
    Number(values.size),
    Number(values.seconds),
  );
  console.log(JSON.stringify(r));
  await done();
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
