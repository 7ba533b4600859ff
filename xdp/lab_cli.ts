/**
 * `deno task lab up|down|status`: a persistent veth lab for manual runs of the NSM on AF_XDP.
 *
 * ```text
 * deno task lab up [--name nsmlab] [--mtu 9000] [--offloads on|off] [--queues 2] [--nsm-netns]
 * deno task lab status [--name nsmlab]
 * deno task lab down [--name nsmlab]
 * ```
 *
 * With `--nsm-netns` the NSM end goes into namespace `<name>-nsm`; run the NSM there with
 * `ip netns exec <name>-nsm <path to deno> run -A ...` (never npx inside a namespace).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab, run } from "./lab.ts";

const USAGE = "usage: deno task lab up|down|status [--name NAME] [--mtu N] " +
  "[--offloads on|off] [--queues N] [--nsm-netns]";

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string", default: "nsmlab" },
      mtu: { type: "string", default: "1500" },
      offloads: { type: "string" },
      queues: { type: "string", default: "1" },
      "nsm-netns": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const cmd = positionals[0];
  if (values.help || cmd === undefined) {
    console.log(USAGE);
    return cmd === undefined && !values.help ? 2 : 0;
  }
  if (Deno.uid() !== 0) {
    console.error("the lab needs root (network namespaces, veth): run with sudo");
    return 1;
  }
  const name = values.name;
  const nsList = (await run(["ip", "netns", "list"])).stdout;
  const hasNs = (ns: string): boolean => new RegExp(`^${ns}( |$)`, "m").test(nsList);
  switch (cmd) {
    case "up": {
      if (hasNs(`${name}-peer`)) {
        console.error(`lab ${name} exists already: deno task lab down --name ${name}`);
        return 1;
      }
      const offloads = values.offloads;
      if (offloads !== undefined && offloads !== "on" && offloads !== "off") {
        console.error(`--offloads ${offloads}: use on or off`);
        return 2;
      }
      const lab = await Lab.up({
        name,
        mtu: Number(values.mtu),
        queues: Number(values.queues),
        nsmNamespace: values["nsm-netns"],
        ...(offloads === undefined ? {} : { offloads }),
      });
      console.log(lab.describe());
      const exec = lab.nsmNs === null ? "" : `ip netns exec ${lab.nsmNs} `;
      console.log(
        `  run the NSM: ${exec}${Deno.execPath()} run -A <entry> (interface ${lab.nsmIf})`,
      );
      console.log(`  peer shell:  ip netns exec ${lab.peerNs} bash`);
      return 0;
    }
    case "down": {
      await Lab.existing(name, hasNs(`${name}-nsm`)).down();
      console.log(`lab ${name} removed`);
      return 0;
    }
    case "status": {
      if (!hasNs(`${name}-peer`)) {
        console.log(`lab ${name}: not running`);
        return 1;
      }
      const lab = Lab.existing(name, hasNs(`${name}-nsm`));
      const nsm = await lab.nsm(["ip", "-br", "link", "show", lab.nsmIf], true);
      const peer = await lab.peer(["ip", "-br", "addr", "show", lab.peerIf], true);
      console.log(`lab ${name}`);
      console.log(`  NSM end (${lab.nsmNs ?? "this namespace"}): ${nsm.stdout.trim()}`);
      console.log(`    XDP attached: ${await lab.nsmHasXdp()}`);
      console.log(`  peer end (${lab.peerNs}): ${peer.stdout.trim()}`);
      return 0;
    }
    default:
      console.error(USAGE);
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
