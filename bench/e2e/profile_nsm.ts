/**
 * CPU profile of the NSM (our stack on AF_XDP) under bulk load from an nkperf guest, with the
 * same lab as bench:e2e: writes a V8 .cpuprofile and prints its stage summary
 * (bench/profile_summary.ts) per data segment.
 *
 * ```text
 * sudo deno run -A bench/e2e/profile_nsm.ts [--seconds 5] [-R] [--dir /tmp/nsm-prof] [--pin]
 *                                           [--perf] [-- NSM FLAGS...]
 * ```
 *
 * `--perf` runs the NSM with V8's perf map instead of the V8 profiler and records CPU 0 (where
 * `--pin` puts the NSM and the guest) with `perf record` over the middle half of the transfer,
 * into DIR/perf.data: kernel, libc and JavaScript on one scale (the V8 profiler counts wall
 * time, so a thread descheduled in a syscall looks busy). Read it with
 * `perf report -i DIR/perf.data --sort pid,dso,sym --stdio`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { LabNsm } from "./lab_nsm.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      seconds: { type: "string", default: "5" },
      R: { type: "boolean", short: "R", default: false },
      dir: { type: "string", default: "/tmp/nsm-prof" },
      pin: { type: "boolean", default: false },
      offloads: { type: "string", default: "off" },
      perf: { type: "boolean", default: false },
    },
  });
  const pin = (c: string[]): string[] => values.pin ? ["taskset", "-c", "0", ...c] : c;
  await Deno.remove(values.dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(values.dir, { recursive: true });
  const lab = await Lab.up({ offloads: values.offloads as "on" | "off", nsmNamespace: true });
  const tmp = await Deno.makeTempDir({ prefix: "nsm-prof-" });
  let nsm: LabNsm | undefined;
  const iperf = lab.spawnPeer(["iperf3", "-s", "-1", "-B", lab.peerV4]);
  try {
    const ctl = `${tmp}/ctl.sock`;
    nsm = await LabNsm.start(lab, {
      ctl,
      denoFlags: values.perf
        ? [`--v8-flags=--perf-basic-prof,--no-logfile-per-isolate,--logfile=${values.dir}/v8.log`]
        : ["--cpu-prof", `--cpu-prof-dir=${values.dir}`, "--cpu-prof-interval=100"],
      ...(values.pin ? { cpu: 0 } : {}),
      args: positionals,
    });
    const argv = pin([
      ...[Deno.execPath(), "run", "-A", `${ROOT}guest/guestlib/nkperf.ts`, "--ctl", ctl],
      ...["-c", lab.peerV4, "-t", values.seconds, "-i", "0", ...(values.R ? ["-R"] : [])],
    ]);
    const guest = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (values.perf) {
      const secs = Number(values.seconds);
      await new Promise((r) => setTimeout(r, Math.min(2, secs / 3) * 1000));
      await new Deno.Command("perf", {
        args: ["record", "-C", "0", "-o", `${values.dir}/perf.data`, "--", "sleep", `${secs / 2}`],
        stdout: "null",
        stderr: "null",
      }).output();
    }
    const g = await guest.output();
    console.log(
      dec.decode(g.stdout).split("\n").filter((l) => /sender|receiver/.test(l)).join("\n"),
    );
    await nsm.stop();
    console.log(nsm.stoppedLine().slice(0, 2000));
  } finally {
    await nsm?.kill();
    try {
      iperf.kill("SIGKILL");
    } catch { /* gone */ }
    await iperf.status;
    await lab.down();
    await Deno.remove(tmp, { recursive: true });
  }
  for (const e of Deno.readDirSync(values.dir)) console.log(`${values.dir}/${e.name}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
