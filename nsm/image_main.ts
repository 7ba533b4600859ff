/**
 * The NSM image's entry point (`deno task image` compiles this file): one executable that runs
 * the NSM and its tools as subcommands.
 *
 * ```sh
 * nsm-image nsm --link xdp:eth1 --ip 198.18.0.1/24 --ctl /run/nsm/ctl.sock --metrics 127.0.0.1:9464
 * nsm-image ctl conns            # operator control (same as deno task ctl)
 * nsm-image nkcat 198.18.0.2 7   # netcat as a guest of the NSM (GuestLib)
 * nsm-image nkperf -c 198.18.0.2 # iperf3-compatible client as a guest of the NSM (GuestLib)
 * nsm-image nkperf-host -s       # nkperf on the host's own sockets (no NSM)
 * ```
 *
 * @module
 */

import { main as nsmMain } from "./cli.ts";
import { runCtl } from "./ctl.ts";
import { main as nkcatMain } from "../guest/nkcat/cli.ts";
import { main as nkperfMain } from "../guest/nkperf/cli.ts";
import { closeAll, nkNet } from "../guest/guestlib/mod.ts";
import { splitCtl } from "../guest/guestlib/nkperf.ts";
import { BUNDLED_CC, CC_DIST_URL } from "./cc_modules.ts";

/** Subcommands and what they do (the usage text). */
export const IMAGE_USAGE = `usage: nsm-image COMMAND [args]

  nsm ...          the NSM (deno task nsm; --help for its flags)
  ctl ...          operator control of a running NSM (deno task ctl; --help)
  nkcat ...        netcat through the NSM as a guest (deno task nkcat; --help)
  nkperf ...       iperf3-compatible tool through the NSM as a guest ([--ctl PATH] -c HOST | -s)
  nkperf-host ...  the same on the host's own sockets (deno task nkperf)
  version          the image's Deno version, where it runs from, its cc modules`;

/**
 * The `version` report: Deno versions, the main module (inside the image, or the extraction
 * directory of a self-extracting one) and each bundled cc module with whether its WebAssembly
 * is present and valid.
 */
export function versionReport(): string {
  const cc = BUNDLED_CC.map((name) => {
    try {
      const bytes = Deno.readFileSync(new URL(`${name}.wasm`, CC_DIST_URL));
      return `${name}=${WebAssembly.validate(bytes) ? "ok" : "invalid"}`;
    } catch {
      return `${name}=missing`;
    }
  });
  return [
    `deno ${Deno.version.deno} v8 ${Deno.version.v8} typescript ${Deno.version.typescript}`,
    `main ${Deno.mainModule}`,
    `cc ${cc.join(" ")}`,
  ].join("\n");
}

/** Runs `argv` (first element: the subcommand); resolves with the exit status. */
export async function imageMain(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "nsm":
      return await nsmMain(rest);
    case "ctl": {
      const enc = new TextEncoder();
      const write = (f: { writeSync(b: Uint8Array): number }, t: string): void => {
        const b = enc.encode(t);
        for (let off = 0; off < b.length;) off += f.writeSync(b.subarray(off));
      };
      return await runCtl(rest, {
        out: (t) => write(Deno.stdout, t),
        err: (t) => write(Deno.stderr, t),
      });
    }
    case "nkcat":
      return await nkcatMain([...rest]);
    case "nkperf": {
      const { ctl, rest: args } = splitCtl(rest);
      const code = await nkperfMain(args, nkNet(ctl !== undefined ? { ctl } : {}));
      await closeAll();
      return code;
    }
    case "nkperf-host":
      return await nkperfMain([...rest]);
    case "version":
      console.log(versionReport());
      return 0;
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(IMAGE_USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`nsm-image: unknown command "${cmd}"\n\n${IMAGE_USAGE}`);
      return 2;
  }
}

if (import.meta.main) Deno.exit(await imageMain(Deno.args));
