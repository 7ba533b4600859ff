/**
 * CPU profile of the NSM (our stack on AF_XDP) under the connection-rate load of bench:e2e's
 * `conn_rate` (TCP_CRR: connect, 1 byte each way, close, one at a time): `rr.ts client --net nk
 * --mode crr` as the guest against `rr.ts server` in the peer namespace, the NSM command under
 * `--cpu-prof`. Prints the client's JSON line and the profile paths; summarise with
 * `deno run -A bench/profile_summary.ts DIR/CPU.*.cpuprofile --per CONNECTIONS`.
 *
 * ```text
 * sudo deno run -A bench/e2e/profile_crr.ts [--seconds 5] [--dir /tmp/nsm-crr-prof] [--pin]
 *                                           [--no-prof] [--mode crr|rr] [--switches] [--linux]
 *                                           [--prof-guest]
 *                                           [-- NSM FLAGS...]
 * ```
 *
 * `--pin` places the guest and the NSM on CPU 0 and the peer's server on CPU 1, as bench:e2e
 * does; `--no-prof` runs the same without the profiler (a quick A/B of one change). The
 * client's `--stats` line (the guest pump's turns, spins and sleeps per transaction) is printed;
 * `--switches` adds CPU 0's context switches per transaction (`perf stat` over the client's run).
 * `--linux` runs the same client on kernel sockets instead (no NSM): the comparison.
 * `--prof-guest` profiles the guest (the client) too, into `DIR/guest/`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { LabNsm } from "./lab_nsm.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const RR = `${ROOT}bench/e2e/rr.ts`;
const dec = new TextDecoder();

async function readUntil(
  rd: ReadableStreamDefaultReader<Uint8Array>,
  re: RegExp,
  what: string,
): Promise<string> {
  let out = "";
  while (!re.test(out)) {
    const c = await rd.read();
    if (c.done) throw new Error(`${what} exited: ${out}`);
    out += dec.decode(c.value);
  }
  return out;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      seconds: { type: "string", default: "5" },
      dir: { type: "string", default: "/tmp/nsm-crr-prof" },
      pin: { type: "boolean", default: false },
      "no-prof": { type: "boolean", default: false },
      mode: { type: "string", default: "crr" },
      switches: { type: "boolean", default: false },
      linux: { type: "boolean", default: false },
      "prof-guest": { type: "boolean", default: false },
    },
  });
  const pin = (cpu: number, c: string[]): string[] =>
    values.pin ? ["taskset", "-c", String(cpu), ...c] : c;
  const prof = !values["no-prof"];
  if (prof || values["prof-guest"]) {
    await Deno.remove(values.dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(values.dir, { recursive: true });
  }
  const lab = await Lab.up({ offloads: "off", nsmNamespace: true });
  const tmp = await Deno.makeTempDir({ prefix: "nsm-crr-" });
  let nsm: LabNsm | undefined;
  const server = new Deno.Command("ip", {
    args: [
      ...["netns", "exec", lab.peerNs],
      ...pin(1, [Deno.execPath(), "run", "-A", RR, "server", "--port", "7100"]),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    await readUntil(server.stdout.getReader(), /^ready/m, "rr.ts server");
    const ctl = `${tmp}/ctl.sock`;
    if (values.linux) {
      // The same client on kernel sockets in the NSM namespace (bench:e2e's Linux column).
      await lab.nsm(["ip", "addr", "add", `${lab.nsmV4}/24`, "dev", lab.nsmIf]);
      await lab.nsm(["ip", "link", "set", "lo", "up"]);
      await lab.nsm(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
    }
    if (!values.linux) {
      nsm = await LabNsm.start(lab, {
        ctl,
        denoFlags: prof
          ? ["--cpu-prof", `--cpu-prof-dir=${values.dir}`, "--cpu-prof-interval=100"]
          : [],
        ...(values.pin ? { cpu: 0 } : {}),
        args: positionals,
      });
    }
    const net = values.linux ? ["--net", "deno"] : ["--net", "nk", "--ctl", ctl];
    const argv = [
      ...(values.linux ? ["ip", "netns", "exec", lab.nsmNs!] : []),
      ...pin(0, [
        ...[Deno.execPath(), "run", "-A"],
        ...(values["prof-guest"]
          ? ["--cpu-prof", `--cpu-prof-dir=${values.dir}/guest`, "--cpu-prof-interval=100"]
          : []),
        ...[RR, "client", ...net],
      ]),
      ...["--host", lab.peerV4, "--port", "7100", "--mode", values.mode, "--size", "1"],
      ...["--seconds", values.seconds, "--stats"],
    ];
    // CPU 0's context switches over the client's run (the guest and the NSM share it).
    const perf = values.switches
      ? new Deno.Command("perf", {
        args: ["stat", "-x,", "-C", "0", "-e", "context-switches", "sleep", values.seconds],
        stdout: "null",
        stderr: "piped",
      }).spawn()
      : null;
    const g = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = dec.decode(g.stdout).trim();
    console.log(out);
    console.log(dec.decode(g.stderr).slice(0, 2000).trim());
    if (perf !== null) {
      const p = dec.decode((await perf.output()).stderr);
      const switches = Number(/^([0-9]+),/m.exec(p)?.[1] ?? NaN);
      const n = Number(/"transactions":([0-9]+)/.exec(out)?.[1] ?? NaN);
      console.log(
        `CPU 0 context switches: ${switches} in ${values.seconds} s, ${
          (switches / n).toFixed(2)
        } per transaction`,
      );
    }
    if (nsm !== undefined) {
      await nsm.stop();
      console.log(nsm.stoppedLine().slice(0, 2000));
    }
  } finally {
    await nsm?.kill();
    try {
      server.kill("SIGKILL");
    } catch { /* gone */ }
    await server.status;
    await lab.down();
    await Deno.remove(tmp, { recursive: true });
  }
  if (prof) {
    for (const e of Deno.readDirSync(values.dir)) {
      if (e.isFile) console.log(`${values.dir}/${e.name}`);
    }
  }
  if (values["prof-guest"]) {
    for (const e of Deno.readDirSync(`${values.dir}/guest`)) {
      console.log(`${values.dir}/guest/${e.name}`);
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
