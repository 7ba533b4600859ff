/**
 * `nkperf`: an iperf3-compatible throughput tool on an injectable network (Deno's sockets
 * here; GuestLib later).
 *
 * ```sh
 * deno task nkperf -s [-p PORT] [-B ADDR] [-1] [-i S] [-J]
 * deno task nkperf -c HOST [-p PORT] [-t S] [-P N] [-R] [-O S] [-l LEN] [-i S] [-J]
 * ```
 *
 * @module
 */

import { runClient } from "./client.ts";
import { denoNet, type NetApi } from "./net.ts";
import { DEFAULT_PORT } from "./protocol.ts";
import type { Json } from "./report.ts";
import { NkperfServer } from "./server.ts";

/** Parsed command line. */
export interface CliArgs {
  /** "client", "server" or "help". */
  readonly mode: "client" | "server" | "help";
  /** Server host (client mode). */
  readonly host: string;
  /** -p */
  readonly port: number;
  /** -t */
  readonly time: number;
  /** -P */
  readonly parallel: number;
  /** -R */
  readonly reverse: boolean;
  /** -O */
  readonly omit: number;
  /** -l */
  readonly len: number | undefined;
  /** -J */
  readonly json: boolean;
  /** -i */
  readonly intervalSec: number;
  /** -1 */
  readonly oneOff: boolean;
  /** -B: address the server binds (default all IPv4 addresses). */
  readonly bind: string | undefined;
}

/** A command-line argument is wrong; the message says which and how to fix it. */
export class UsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(`${message}; run with -h for usage`);
    this.name = "UsageError";
  }
}

/** Usage text. */
export const USAGE = `Usage: nkperf [-s|-c host] [options]
Server:  -s             run as server
         -1, --one-off  serve one test, then exit
         -B, --bind ADDR     listen on ADDR only (default 0.0.0.0; '::' for IPv6)
Client:  -c, --client HOST   connect to HOST
         -t, --time S        seconds to transmit (default 10)
         -P, --parallel N    parallel streams (default 1)
         -R, --reverse       the server sends, the client receives
         -O, --omit S        leave the first S seconds out of the results (default 0)
         -l, --length LEN    block length, K/M suffix allowed (default 128K)
Both:    -p, --port PORT     server port (default ${DEFAULT_PORT})
         -i, --interval S    seconds between interval reports (default 1, 0 = none)
         -J, --json          iperf3-style JSON output
         -h, --help          this text`;

function sizeArg(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(v);
  if (!m) throw new UsageError(`${flag} wants a size like 128K, got '${v}'`);
  const mult: Record<string, number> = { "": 1, k: 1024, m: 1 << 20, g: 1 << 30 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

function numArg(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (v === undefined || v === "" || !Number.isFinite(n)) {
    throw new UsageError(`${flag} wants a number, got '${v ?? ""}'`);
  }
  return n;
}

/** Parses iperf3-style arguments. */
export function parseArgs(argv: readonly string[]): CliArgs {
  let mode: CliArgs["mode"] | undefined;
  let host = "";
  let port = DEFAULT_PORT;
  let time = 10;
  let parallel = 1;
  let reverse = false;
  let omit = 0;
  let len: number | undefined;
  let json = false;
  let intervalSec = 1;
  let oneOff = false;
  let bind: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case "-s":
      case "--server":
        mode = "server";
        break;
      case "-c":
      case "--client":
        mode = "client";
        host = value();
        break;
      case "-p":
      case "--port":
        port = numArg(value(), a);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new UsageError(`${a} wants 0..65535`);
        }
        break;
      case "-t":
      case "--time":
        time = numArg(value(), a);
        break;
      case "-P":
      case "--parallel":
        parallel = numArg(value(), a);
        break;
      case "-R":
      case "--reverse":
        reverse = true;
        break;
      case "-O":
      case "--omit":
        omit = numArg(value(), a);
        break;
      case "-l":
      case "--length":
        len = sizeArg(value(), a);
        break;
      case "-J":
      case "--json":
        json = true;
        break;
      case "-i":
      case "--interval":
        intervalSec = numArg(value(), a);
        break;
      case "-1":
      case "--one-off":
        oneOff = true;
        break;
      case "-B":
      case "--bind":
        bind = value();
        break;
      case "-h":
      case "--help":
        mode = "help";
        break;
      default:
        throw new UsageError(`unknown option '${a}'`);
    }
  }
  if (mode === undefined) throw new UsageError("pass -s (server) or -c HOST (client)");
  return { mode, host, port, time, parallel, reverse, omit, len, json, intervalSec, oneOff, bind };
}

/**
 * The server mode: serves until `-1`'s test is done or the process ends; throws when it
 * cannot listen.
 */
async function serve(
  args: CliArgs,
  net: NetApi,
  print: (s: string) => void,
  text: ((s: string) => void) | undefined,
): Promise<void> {
  const server = NkperfServer.listen({
    port: args.port,
    ...(args.bind !== undefined ? { hostname: args.bind } : {}),
    oneOff: args.oneOff,
    intervalSec: args.intervalSec,
    net,
    ...(text ? { onText: text } : {}),
    onReport: (r: Json) => {
      if (args.json) print(JSON.stringify(r, null, 2));
    },
  });
  await server.done;
}

/** Runs the command line on `net`; returns the exit code. */
export async function main(
  argv: readonly string[],
  net: NetApi = denoNet,
  print: (s: string) => void = console.log,
): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    print(e instanceof Error ? e.message : String(e));
    return 1;
  }
  if (args.mode === "help") {
    print(USAGE);
    return 0;
  }
  const text = args.json ? undefined : print;
  if (args.mode === "server") {
    try {
      await serve(args, net, print, text);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (args.json) print(JSON.stringify({ error: msg }, null, 2));
      else print(`nkperf: error - cannot listen on port ${args.port}: ${msg}`);
      return 1;
    }
    return 0;
  }
  try {
    const report = await runClient({
      host: args.host,
      port: args.port,
      time: args.time,
      parallel: args.parallel,
      reverse: args.reverse,
      omit: args.omit,
      ...(args.len !== undefined ? { len: args.len } : {}),
      intervalSec: args.intervalSec,
      net,
      ...(text ? { onText: text } : {}),
    });
    if (args.json) print(JSON.stringify(report, null, 2));
    return 0;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (args.json) print(JSON.stringify({ error: msg }, null, 2));
    else print(`nkperf: error - ${msg}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
