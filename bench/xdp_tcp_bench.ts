/**
 * Bulk TCP throughput of our stack (the NSM program on AF_XDP, copy mode, in its own namespace
 * on one end of a veth pair) against the Linux peer, side by side with the Linux kernel doing
 * the same work on an identical veth pair in the same run: the NSM end then carries the
 * kernel's addresses and a small Python echo/discard server (the kernel does the TCP work; the
 * server only moves buffers). The peer's client is the same Python script in both cases.
 *
 * ```text
 * sudo deno run -A bench/xdp_tcp_bench.ts [--mb 200] [--offloads on,off] [--mtu 1500] [--json]
 * ```
 *
 * Workloads (peer is the client): discard (peer -> server, one connection), echo (both
 * directions at once, one connection; Mbit/s counted one way), echo x4 (four connections).
 * Reports Mbit/s, our/kernel ratios, the CPU the NSM process used (% of one core), and its
 * CPU while idle for 3 s before the workloads (the adaptive loop sleeps in poll(2)).
 * "offloads" is the peer's (and, for the kernel run, both ends') checksum/segmentation
 * offload setting; with our native XDP program attached, veth turns the peer's GSO off anyway.
 * `--mtu 9000` runs both on jumbo frames (ours through multi-buffer AF_XDP).
 * Needs root, iproute2, ethtool, python3.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../xdp/lab.ts";
import { KERNEL_SERVER_PY, NsmProcess, script, STREAM_PY } from "../tests/support/nsm_peer.ts";

const MB = 1_000_000;

interface Workload {
  readonly name: string;
  readonly port: number;
  readonly conns: number;
  readonly mode: "echo" | "discard";
}

const WORKLOADS: Workload[] = [
  { name: "discard", port: 9, conns: 1, mode: "discard" },
  { name: "echo", port: 7, conns: 1, mode: "echo" },
  { name: "echo x4", port: 7, conns: 4, mode: "echo" },
];

interface Sample {
  mbit: number;
  cpu: number | null;
}

function cpuTicks(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
}

async function client(lab: Lab, w: Workload, bytes: number): Promise<number> {
  const py = await script("stream.py", STREAM_PY);
  const per = Math.floor(bytes / w.conns);
  const r = await lab.peer([
    ...["timeout", "300", "python3", py, lab.nsmV4, String(w.port), String(per)],
    ...[String(w.conns), w.mode],
  ], true);
  const line = r.stdout.split("\n")[0] ?? "";
  if (r.code !== 0 || !line.startsWith("ok ")) {
    throw new Error(`${w.name}: client failed: ${r.stdout} ${r.stderr}`);
  }
  return Number(/mbit=([\d.]+)/.exec(line)![1]);
}

async function ours(
  offloads: "on" | "off",
  bytes: number,
  mtu: number,
): Promise<{ samples: Sample[]; idleCpu: number }> {
  await using lab = await Lab.up({ offloads, nsmNamespace: true, mtu });
  const nsm = await NsmProcess.start(lab.nsmNs, [
    ...["--link", `xdp:${lab.nsmIf}`, "--ip", `${lab.nsmV4}/24`, "--ip6", `${lab.nsmV6}/64`],
    ...["--echo", "7", "--discard", "9"],
  ]);
  const out: Sample[] = [];
  let idleCpu = 0;
  try {
    // Idle first: the adaptive loop should sleep in poll(2) between deadlines.
    const i0 = cpuTicks(nsm.pid);
    await new Promise((r) => setTimeout(r, 3000));
    idleCpu = ((cpuTicks(nsm.pid) - i0) / 100 / 3) * 100;
    for (const w of WORKLOADS) {
      const t0 = performance.now();
      const c0 = cpuTicks(nsm.pid);
      const mbit = await client(lab, w, bytes);
      const secs = (performance.now() - t0) / 1000;
      out.push({ mbit, cpu: ((cpuTicks(nsm.pid) - c0) / 100 / secs) * 100 });
    }
  } finally {
    await nsm.stop();
  }
  return { samples: out, idleCpu };
}

async function kernel(offloads: "on" | "off", bytes: number, mtu: number): Promise<Sample[]> {
  await using lab = await Lab.up({ offloads, nsmNamespace: true, mtu });
  const ifn = lab.nsmIf;
  await lab.nsm(["ethtool", "-K", ifn, "tx", offloads, "tso", offloads, "gso", offloads]);
  await lab.nsm(["sh", "-c", `echo 0 > /proc/sys/net/ipv6/conf/${ifn}/disable_ipv6`]);
  await lab.nsm(["ip", "addr", "add", `${lab.nsmV4}/24`, "dev", ifn]);
  await lab.nsm(["ip", "-6", "addr", "add", `${lab.nsmV6}/64`, "dev", ifn, "nodad"]);
  const py = await script("server.py", KERNEL_SERVER_PY);
  const server = new Deno.Command("ip", {
    args: ["netns", "exec", lab.nsmNs!, "timeout", "600", "python3", py, "7", "9"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const out: Sample[] = [];
  try {
    const reader = server.stdout.getReader();
    const first = await reader.read();
    reader.releaseLock();
    if (first.done || !new TextDecoder().decode(first.value).includes("ready")) {
      throw new Error("kernel echo/discard server did not start");
    }
    for (const w of WORKLOADS) out.push({ mbit: await client(lab, w, bytes), cpu: null });
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* gone */ }
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      mb: { type: "string", default: "200" },
      offloads: { type: "string", default: "on,off" },
      json: { type: "boolean", default: false },
      mtu: { type: "string", default: "1500" },
    },
  });
  const bytes = Number(values.mb) * MB;
  const mtu = Number(values.mtu);
  const settings = values.offloads.split(",") as ("on" | "off")[];
  const rows: Record<string, unknown>[] = [];
  const idle: Record<string, number> = {};
  for (const o of settings) {
    const { samples: a, idleCpu } = await ours(o, bytes, mtu);
    idle[o] = Number(idleCpu.toFixed(1));
    const k = await kernel(o, bytes, mtu);
    WORKLOADS.forEach((w, i) => {
      rows.push({
        offloads: o,
        workload: w.name,
        oursMbit: Math.round(a[i]!.mbit),
        kernelMbit: Math.round(k[i]!.mbit),
        ratio: Number((a[i]!.mbit / k[i]!.mbit).toFixed(3)),
        nsmCpuPercent: Math.round(a[i]!.cpu ?? 0),
      });
    });
  }
  if (values.json) {
    console.log(JSON.stringify({ mb: Number(values.mb), mtu, rows, nsmIdleCpuPercent: idle }));
    return;
  }
  console.log(
    `bulk TCP over veth, MTU ${mtu}, ${values.mb} MB per workload, peer = Linux (python3 client)`,
  );
  console.log("offloads  workload   ours Mbit/s  kernel Mbit/s  ours/kernel  NSM CPU %");
  for (const r of rows) {
    console.log(
      `${String(r.offloads).padEnd(9)} ${String(r.workload).padEnd(10)} ${
        String(r.oursMbit).padStart(11)
      }  ${String(r.kernelMbit).padStart(13)}  ${String(r.ratio).padStart(11)}  ${
        String(r.nsmCpuPercent).padStart(9)
      }`,
    );
  }
  console.log(`NSM CPU while idle (3 s, % of one core): ${JSON.stringify(idle)}`);
}

if (import.meta.main) await main();
