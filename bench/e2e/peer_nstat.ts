/**
 * The peer's TCP receive counters (`nstat`, in the peer namespace) while it receives a bulk
 * transfer from (a) Linux (iperf3 -c in the NSM namespace) and (b) our NSM (the NSM command
 * and an nkperf guest), offloads off on both ends as in bench:e2e: how much of each sender's
 * stream the peer's TCP could coalesce into the skbs already queued (TcpExtTCPRcvCoalesce,
 * TcpExtTCPBacklogCoalesce). A segment that cannot be coalesced is queued, accounted and freed
 * on its own, and a veth peer does that work on the sender's CPU.
 *
 * ```text
 * sudo deno run -A --unstable-net bench/e2e/peer_nstat.ts [--seconds 3]
 * ```
 *
 * The labs, the NSM and iperf3 are removed on every exit path.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { LabNsm } from "./lab_nsm.ts";
import { GUEST_V8_FLAGS } from "../../guest/guestlib/heap.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();
/** The counters printed. */
const KEYS = [
  "TcpInSegs",
  "TcpExtTCPRcvCoalesce",
  "TcpExtTCPBacklogCoalesce",
  "TcpExtPruneCalled",
  "TcpExtTCPRcvCollapsed",
  "TcpExtTCPOFOQueue",
] as const;

async function nstat(lab: Lab): Promise<Map<string, number>> {
  const r = await lab.peer(["nstat", "-az"]);
  const m = new Map<string, number>();
  for (const l of r.stdout.split("\n")) {
    const x = /^(\S+)\s+(\d+)/.exec(l);
    if (x !== null) m.set(x[1]!, Number(x[2]));
  }
  return m;
}

async function run(who: "linux" | "nsm", seconds: number): Promise<string> {
  const lab = await Lab.up({ offloads: "off", nsmNamespace: true });
  const kids: Deno.ChildProcess[] = [];
  let nsm: LabNsm | null = null;
  const dir = await Deno.makeTempDir({ prefix: "peer-nstat-" });
  try {
    await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", "off", "tso", "off", "gso", "off"]);
    kids.push(lab.spawnPeer(["iperf3", "-s", "-1", "-B", lab.peerV4]));
    await new Promise((r) => setTimeout(r, 300)); // iperf3 -s binds
    const before = await nstat(lab);
    if (who === "linux") {
      await lab.nsm(["ip", "addr", "add", `${lab.nsmV4}/24`, "dev", lab.nsmIf]);
      await lab.nsm(["iperf3", "-c", lab.peerV4, "-t", String(seconds)]);
    } else {
      const ctl = `${dir}/ctl.sock`;
      nsm = await LabNsm.start(lab, { ctl, stderr: "null" });
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", GUEST_V8_FLAGS, `${ROOT}guest/guestlib/nkperf.ts`, "--ctl", ctl],
          ...["-c", lab.peerV4, "-t", String(seconds)],
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(`nkperf failed: ${dec.decode(out.stderr)}`);
    }
    const after = await nstat(lab);
    return `${who.padEnd(5)} ` +
      KEYS.map((k) => `${k} ${(after.get(k) ?? 0) - (before.get(k) ?? 0)}`).join(", ");
  } finally {
    await nsm?.kill();
    for (const k of kids) {
      try {
        k.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await lab.down();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string", default: "3" } },
  });
  for (const who of ["linux", "nsm"] as const) console.log(await run(who, Number(values.seconds)));
}
