/**
 * nkperf on the NSM: the same command line as `deno task nkperf`, with sockets through GuestLib
 * (NQEs to the NSM's stack) instead of Deno's. Reports carry cwnd/retransmits/RTT from the
 * NSM stack's TCP_INFO (GETSOCKOPT), one interval late.
 *
 * ```
 * deno run -A guest/guestlib/nkperf.ts [--ctl PATH] -s
 * deno run -A guest/guestlib/nkperf.ts [--ctl PATH] -c 198.18.0.2 -t 5
 * ```
 *
 * @module
 */

import { main as nkperfMain } from "../nkperf/cli.ts";
import { closeAll, nkNet } from "./mod.ts";

/** Splits `--ctl PATH` off nkperf's own arguments. */
export function splitCtl(argv: readonly string[]): { ctl?: string; rest: string[] } {
  const rest: string[] = [];
  let ctl: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--ctl") ctl = argv[++i];
    else rest.push(argv[i]!);
  }
  return ctl !== undefined ? { ctl, rest } : { rest };
}

if (import.meta.main) {
  const { ctl, rest } = splitCtl(Deno.args);
  const code = await nkperfMain(rest, nkNet(ctl !== undefined ? { ctl } : {}));
  await closeAll();
  Deno.exit(code);
}
