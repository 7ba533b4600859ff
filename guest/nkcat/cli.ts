/**
 * nkcat: netcat through the NSM. stdin goes to the connection, the connection to stdout; EOF
 * on stdin half-closes (FIN) and the program ends when the peer has finished too.
 *
 * ```
 * deno task nkcat [--ctl PATH] HOST PORT
 * deno task nkcat [--ctl PATH] --listen PORT     # accepts one connection
 * ```
 * Exit status: 0 done, 1 connection error, 2 usage.
 *
 * @module
 */

import { NkClient, type NkConn } from "../guestlib/mod.ts";
import { connectWith, NkListener } from "../guestlib/conn.ts";
import { defaultCtlPath } from "../../nsm/ctl_path.ts";

/** Parsed command line. */
export interface NkcatArgs {
  /** Control socket. */
  ctl: string;
  /** Listen port (listen mode) or null. */
  listen: number | null;
  /** Remote host (connect mode). */
  host: string;
  /** Remote port (connect mode). */
  port: number;
}

/** Thrown for a bad command line. */
export class NkcatUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(`${message}\nusage: nkcat [--ctl PATH] HOST PORT | nkcat [--ctl PATH] --listen PORT`);
    this.name = "NkcatUsageError";
  }
}

function port(s: string | undefined): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new NkcatUsageError(`port "${s}" is not in 1..65535`);
  }
  return n;
}

/** Parses nkcat's arguments. */
export function parseNkcatArgs(args: string[]): NkcatArgs {
  let ctl = defaultCtlPath();
  let listen: number | null = null;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--ctl") {
      const v = args[++i];
      if (v === undefined) throw new NkcatUsageError("--ctl needs a path");
      ctl = v;
    } else if (a === "--listen" || a === "-l") listen = port(args[++i]);
    else if (a.startsWith("-")) throw new NkcatUsageError(`unknown flag ${a}`);
    else rest.push(a);
  }
  if (listen !== null) {
    if (rest.length !== 0) throw new NkcatUsageError("--listen takes no HOST PORT");
    return { ctl, listen, host: "", port: 0 };
  }
  if (rest.length !== 2) throw new NkcatUsageError("need HOST PORT");
  return { ctl, listen: null, host: rest[0]!, port: port(rest[1]) };
}

async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  p: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < p.length) off += await w.write(p.subarray(off));
}

/** Copies stdin -> conn (then FIN) and conn -> stdout until both directions ended. */
export async function relay(
  conn: NkConn,
  input: { read(p: Uint8Array): Promise<number | null> },
  output: { write(p: Uint8Array): Promise<number> },
): Promise<void> {
  const up = (async () => {
    const buf = new Uint8Array(256 * 1024);
    for (;;) {
      const n = await input.read(buf);
      if (n === null) break;
      await conn.write(buf.subarray(0, n));
    }
    await conn.closeWrite();
  })();
  const down = (async () => {
    const buf = new Uint8Array(256 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      await writeAll(output, buf.subarray(0, n));
    }
  })();
  await Promise.all([up, down]);
}

/** Runs nkcat with `args`; resolves with the exit status. */
export async function main(args: string[]): Promise<number> {
  let o: NkcatArgs;
  try {
    o = parseNkcatArgs(args);
  } catch (e) {
    console.error(`nkcat: ${(e as Error).message}`);
    return 2;
  }
  let client: NkClient;
  try {
    client = await NkClient.attach({ ctl: o.ctl });
  } catch (e) {
    console.error(`nkcat: ${(e as Error).message}`);
    return 1;
  }
  try {
    let conn: NkConn;
    if (o.listen !== null) {
      const l = new NkListener(Promise.resolve(client), { port: o.listen });
      await l.ready;
      console.error(`nkcat: listening on port ${l.addr.port}`);
      conn = await l.accept();
      l.close();
    } else {
      conn = await connectWith(client, { hostname: o.host, port: o.port });
    }
    await relay(conn, Deno.stdin, Deno.stdout);
    conn.close();
    await client.shutdown(); // the CLOSE completes first: a detach would reset the connection
    return 0;
  } catch (e) {
    console.error(`nkcat: ${(e as Error).name}: ${(e as Error).message}`);
    return 1;
  } finally {
    client.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
