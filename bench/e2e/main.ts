/**
 * End-to-end comparison with the Linux kernel on one veth pair (issue 8). See README.md here.
 *
 * ```text
 * sudo deno task bench:e2e [--quick] [--json FILE] [--seconds S] [--repeat N] [--no-pin]
 *                          [--omit S] [--offloads off,on] [--only NAME,...]
 *                          [--stacks linux,nsm_kernel,nsm_tcpip]
 *                          [--tcpip-args="FLAGS"] [--kernel-args="FLAGS"]
 *                          [--record | --no-record]
 * ```
 *
 * One lab (xdp/lab.ts, NSM end in its own namespace), and on it, in this order for each peer
 * offload setting: (a) Linux: iperf3 / the RR client on kernel sockets in the NSM namespace;
 * (c) `deno task nsm --stack kernel` in the NSM namespace with guests (nkperf through GuestLib,
 * the RR client with `--net nk`); (b) `deno task nsm --link xdp:IF` (our TypeScript stack on
 * AF_XDP) with the same guests. The peer runs `iperf3 -s` and the RR echo server throughout.
 *
 * `--omit S` passes iperf3's `-O S` to every bulk client (iperf3 and nkperf alike): the first S
 * seconds run but do not count, so the cells are steady-state rates (an NSM started for the run
 * and each fresh guest spend their first second or so compiling the data path). Recorded runs
 * say so in their command line.
 *
 * Pinning (default): everything on the local side (iperf3 -c, guests, the NSM) on CPU 0, the
 * peer (iperf3 -s, RR server) on CPU 1, so each side has one core whichever stack runs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../../xdp/lab.ts";
import { NSM_V8_FLAGS } from "../../nsm/heap.ts";
import { GUEST_V8_FLAGS } from "../../guest/guestlib/heap.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const NSM_CLI = `${ROOT}nsm/cli.ts`;
const NKPERF = `${ROOT}guest/guestlib/nkperf.ts`;
const RR = `${ROOT}bench/e2e/rr.ts`;
const IPERF_PORT = 5201;
const RR_PORT = 7100;
const TICK = 100; // USER_HZ

/** Which stack serves the local side. */
type StackKind = "linux" | "nsm_tcpip" | "nsm_kernel";

/** One measured cell. */
interface Cell {
  value: number;
  /** Local-side CPU in cores (CPU seconds / wall seconds), see README "CPU". */
  cores: number;
}

/** One row of the results (the documented JSON shape plus CPU columns). */
export interface E2eRow {
  name: string;
  unit: string;
  linux: number | null;
  nsm_tcpip: number | null;
  nsm_kernel: number | null;
  ratio_tcpip: number | null;
  ratio_kernel: number | null;
  /** Local-side cores per Gbit/s (bulk) or CPU µs per transaction (rr, conn). */
  cpu: { unit: string; linux: number | null; nsm_tcpip: number | null; nsm_kernel: number | null };
}

interface Test {
  name: string;
  unit: "Gbit/s" | "trans/s" | "conn/s";
  kind: "bulk" | "rr";
  /** iperf3/nkperf arguments (bulk) or rr.ts arguments. */
  args: string[];
}

function tests(offloads: "on" | "off", quick: boolean): Test[] {
  const sfx = `_offloads_${offloads}`;
  const t: Test[] = [
    { name: `bulk_tx${sfx}`, unit: "Gbit/s", kind: "bulk", args: [] },
    { name: `bulk_rx${sfx}`, unit: "Gbit/s", kind: "bulk", args: ["-R"] },
    { name: `bulk_4flows${sfx}`, unit: "Gbit/s", kind: "bulk", args: ["-P", "4"] },
  ];
  // Transactions: the documented names are the offloads-off (per-packet) runs.
  const rs = offloads === "off" ? "" : sfx;
  if (offloads === "off" || !quick) {
    t.push(
      { name: `rr_1b${rs}`, unit: "trans/s", kind: "rr", args: ["--mode", "rr", "--size", "1"] },
      { name: `rr_1k${rs}`, unit: "trans/s", kind: "rr", args: ["--mode", "rr", "--size", "1024"] },
      {
        name: `conn_rate${rs}`,
        unit: "conn/s",
        kind: "rr",
        args: ["--mode", "crr", "--size", "1"],
      },
    );
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

function procTicks(pid: number): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return Number(rest[11]) + Number(rest[12]); // utime + stime (fields 14, 15)
  } catch {
    return 0;
  }
}

/** irq + softirq ticks summed over all CPUs (the kernel's packet work, both ends). */
function softirqTicks(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!.split(/\s+/);
  return Number(line[6]) + Number(line[7]);
}

/** Tracks local processes' CPU from their /proc/PID/stat, sampled until they exit. */
class CpuMeter {
  #last = new Map<number, number>();
  #base = new Map<number, number>();
  #irq0 = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  start(pids: number[]): void {
    this.#irq0 = softirqTicks();
    for (const p of pids) this.add(p);
    this.#timer = setInterval(() => this.#sample(), 100);
  }
  add(pid: number): void {
    const t = procTicks(pid);
    this.#base.set(pid, t);
    this.#last.set(pid, t);
  }
  #sample(): void {
    for (const p of this.#last.keys()) {
      const t = procTicks(p);
      if (t > 0) this.#last.set(p, t);
    }
  }
  /** CPU seconds since start (processes + irq/softirq). */
  stop(): number {
    this.#sample();
    clearInterval(this.#timer);
    let ticks = softirqTicks() - this.#irq0;
    for (const [p, t] of this.#last) ticks += t - (this.#base.get(p) ?? t);
    return ticks / TICK;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Pins {
  local: string[];
  peer: string[];
}

function pinned(cpu: string[], cmd: string[]): string[] {
  return cpu.length === 0 ? cmd : ["taskset", "-c", cpu.join(","), ...cmd];
}

/** Children to kill on every exit path. */
const children = new Set<Deno.ChildProcess>();

function spawn(cmd: string[], stdout: "piped" | "null" = "piped"): Deno.ChildProcess {
  const p = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "null",
    stdout,
    stderr: "piped",
  }).spawn();
  children.add(p);
  p.status.then(() => children.delete(p));
  return p;
}

async function killAll(): Promise<void> {
  for (const p of [...children]) {
    try {
      p.kill("SIGTERM");
    } catch { /* gone */ }
  }
  const t = setTimeout(() => {
    for (const p of children) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }, 3000);
  await Promise.allSettled([...children].map((p) => p.status));
  clearTimeout(t);
}

/** Waits for a line matching `re` on the child's stdout (bounded); returns the reader's rest. */
async function waitLine(p: Deno.ChildProcess, re: RegExp, ms: number): Promise<string> {
  const r = p.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  const deadline = Date.now() + ms;
  try {
    while (Date.now() < deadline) {
      const timeout = new Promise<null>((res) =>
        setTimeout(() => res(null), Math.max(1, deadline - Date.now()))
      );
      const chunk = await Promise.race([r.read(), timeout]);
      if (chunk === null || chunk.done) break;
      text += dec.decode(chunk.value);
      const m = text.split("\n").find((l) => re.test(l));
      if (m !== undefined) {
        // Keep draining so the child never blocks on a full pipe.
        (async (): Promise<void> => {
          try {
            while (!(await r.read()).done) { /* drain */ }
          } catch { /* closed */ }
        })();
        return m;
      }
    }
  } catch { /* closed */ }
  throw new Error(`no line matching ${re} within ${ms} ms; got: ${text.slice(0, 500)}`);
}

async function output(p: Deno.ChildProcess, ms: number): Promise<string> {
  const t = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const o = await p.output();
  clearTimeout(t);
  const s = new TextDecoder().decode(o.stdout);
  if (o.code !== 0) {
    throw new Error(`exit ${o.code}: ${s.slice(0, 400)} ${new TextDecoder().decode(o.stderr)}`);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// One measurement

interface Local {
  kind: StackKind;
  /** Command prefix that puts a client into the right place (namespace for Linux). */
  prefix: string[];
  /** GuestLib control socket (NSM runs). */
  ctl?: string;
  /** NSM pid (its CPU counts). */
  nsmPid?: number;
}

/**
 * The iperf3 client arguments every bulk test shares (iperf3 and nkperf take the same): JSON
 * output, `seconds` counted after `omit` seconds that are not (`-O`, only when > 0).
 */
export function bulkClientArgs(
  host: string,
  port: number,
  seconds: number,
  omit: number,
): string[] {
  const args = ["-c", host, "-p", String(port), "-t", String(seconds), "-J"];
  if (omit > 0) args.push("-O", String(omit));
  return args;
}

async function measure(
  lab: Lab,
  loc: Local,
  t: Test,
  seconds: number,
  pins: Pins,
  omit: number,
): Promise<Cell> {
  let cmd: string[];
  if (t.kind === "bulk") {
    const common = bulkClientArgs(lab.peerV4, IPERF_PORT, seconds, omit);
    cmd = loc.kind === "linux"
      ? [...loc.prefix, ...pinned(pins.local, ["iperf3", ...common, ...t.args])]
      : pinned(pins.local, [
        ...[Deno.execPath(), "run", "-A", GUEST_V8_FLAGS, NKPERF, "--ctl", loc.ctl!],
        ...common,
        ...t.args,
      ]);
  } else {
    const net = loc.kind === "linux" ? ["--net", "deno"] : ["--net", "nk", "--ctl", loc.ctl!];
    const rr = [
      ...[Deno.execPath(), "run", "-A", RR, "client", "--host", lab.peerV4],
      ...["--port", String(RR_PORT), "--seconds", String(seconds), ...net, ...t.args],
    ];
    cmd = loc.kind === "linux"
      ? [...loc.prefix, ...pinned(pins.local, rr)]
      : pinned(pins.local, rr);
  }
  const meter = new CpuMeter();
  const p = spawn(cmd);
  // Start counting once the client is running (its pid is the exec'd tool's: ip netns exec and
  // taskset exec, they do not fork). Startup CPU (Deno compiling) is outside the window as far
  // as possible: the window is the test's own wall time, measured by the tool.
  meter.start(loc.nsmPid !== undefined ? [p.pid, loc.nsmPid] : [p.pid]);
  const w0 = performance.now();
  const text = await output(p, (seconds + omit + 30) * 1000);
  const wall = (performance.now() - w0) / 1000;
  const cpu = meter.stop();
  if (t.kind === "bulk") {
    const j = JSON.parse(text.slice(text.indexOf("{")));
    if (j.error) throw new Error(`${t.name}: ${j.error}`);
    const bps = j.end.sum_received.bits_per_second as number;
    const secs = j.end.sum_received.seconds as number;
    // CPU of process startup/teardown is in `cpu`; scale to the test's share of the wall time.
    return { value: bps / 1e9, cores: cpu / Math.max(wall, secs) };
  }
  const r = JSON.parse(text.trim().split("\n").pop()!) as { perSecond: number; seconds: number };
  return { value: r.perSecond, cores: cpu / Math.max(wall, r.seconds) };
}

// ---------------------------------------------------------------------------------------------
// Lab phases

async function kernelAddresses(lab: Lab, on: boolean): Promise<void> {
  const ifn = lab.nsmIf;
  if (on) {
    await lab.nsm(["sh", "-c", `echo 0 > /proc/sys/net/ipv6/conf/${ifn}/disable_ipv6`]);
    await lab.nsm(["ip", "addr", "add", `${lab.nsmV4}/24`, "dev", ifn]);
    await lab.nsm(["ip", "-6", "addr", "add", `${lab.nsmV6}/64`, "dev", ifn, "nodad"]);
    await lab.nsm(["ip", "link", "set", "lo", "up"]);
    // Short connections from the kernel client: reuse TIME_WAIT ports (as netperf users do).
    await lab.nsm(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
  } else {
    await lab.nsm(["ip", "addr", "flush", "dev", ifn]);
    await lab.nsm(["sh", "-c", `echo 1 > /proc/sys/net/ipv6/conf/${ifn}/disable_ipv6`]);
  }
  // The peer forgets our MAC/neighbour state between stacks (same MAC, but be explicit).
  await lab.peer(["ip", "neigh", "flush", "dev", lab.peerIf], true);
}

/**
 * `--rps`: receive packet steering on both veth ends, each to its own side's CPU. A veth
 * transmit runs the receiving end's whole protocol input in the sender's softirq, on the
 * sender's CPU: without this, the peer's TCP receive (and its ACKs) is charged to CPU 0 when
 * the local side sends, and the local stack's input to CPU 1 when the peer sends, for every
 * stack alike. With it each CPU does what a machine of its own would (RPS runs before the
 * stack and before generic XDP; the local Linux stack's input and our NSM's XDP redirect both
 * stay on CPU 0).
 */
async function steerReceive(lab: Lab, pins: Pins): Promise<void> {
  const mask = (cpus: string[]): string =>
    cpus.reduce((m, c) => m | (1 << Number(c)), 0).toString(16);
  if (pins.local.length === 0 || pins.peer.length === 0) {
    throw new Error("--rps needs the pinned layout (not --no-pin): it steers to the pinned CPUs");
  }
  const set = (ifn: string, cpus: string[]): string[] => [
    "sh",
    "-c",
    `echo ${mask(cpus)} > /sys/class/net/${ifn}/queues/rx-0/rps_cpus`,
  ];
  await lab.peer(set(lab.peerIf, pins.peer));
  await lab.nsm(set(lab.nsmIf, pins.local));
}

async function startNsm(lab: Lab, args: string[], pins: Pins): Promise<Deno.ChildProcess> {
  const cmd = [
    ...["ip", "netns", "exec", lab.nsmNs!],
    ...pinned(pins.local, [
      ...[Deno.execPath(), "run", "-A", "--unstable-net", NSM_V8_FLAGS, NSM_CLI, ...args],
    ]),
  ];
  const p = spawn(cmd);
  await waitLine(p, /^ready/, 30_000);
  return p;
}

async function stopProc(p: Deno.ChildProcess): Promise<void> {
  try {
    p.kill("SIGTERM");
  } catch { /* gone */ }
  const t = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }, 5000);
  await p.status;
  clearTimeout(t);
}

type Results = Map<string, { t: Test; cells: Partial<Record<StackKind, Cell>> }>;

async function runSetting(
  offloads: "on" | "off",
  o: {
    seconds: number;
    /** iperf3 -O: seconds at the start of each bulk test that do not count. */
    omit: number;
    quick: boolean;
    pins: Pins;
    dir: string;
    only: string | undefined;
    repeat: number;
    stacks: ReadonlySet<StackKind>;
    /** Extra command-line flags for (b) and (c) (`--tcpip-args`, `--kernel-args`). */
    tcpipArgs: string[];
    kernelArgs: string[];
    /** Steer each side's received packets to its own CPU (`--rps`). */
    rps: boolean;
    log: (s: string) => void;
  },
  results: Results,
): Promise<void> {
  const lab = await Lab.up({ offloads, nsmNamespace: true });
  labs.add(lab);
  try {
    await lab.nsm(["ethtool", "-K", lab.nsmIf, "tx", offloads, "tso", offloads, "gso", offloads]);
    if (o.rps) await steerReceive(lab, o.pins);
    const peerPin = (c: string[]): string[] => pinned(o.pins.peer, c);
    const iperfS = spawn([
      ...["ip", "netns", "exec", lab.peerNs],
      ...peerPin(["iperf3", "-s", "--forceflush", "-B", lab.peerV4, "-p", String(IPERF_PORT)]),
    ]);
    const rrS = spawn([
      ...["ip", "netns", "exec", lab.peerNs],
      ...peerPin([Deno.execPath(), "run", "-A", RR, "server", "--port", String(RR_PORT)]),
    ]);
    await waitLine(rrS, /^ready/, 30_000);
    await waitLine(iperfS, /Server listening/, 10_000);
    const list = tests(offloads, o.quick).filter((t) =>
      o.only === undefined || o.only.split(",").some((x) => t.name.includes(x))
    );
    const run = async (loc: Local): Promise<void> => {
      for (const t of list) {
        // --repeat N: the median of N runs (the machine is shared; single runs swing widely).
        const got: Cell[] = [];
        for (let k = 0; k < o.repeat; k++) {
          try {
            got.push(await measure(lab, loc, t, o.seconds, o.pins, o.omit));
          } catch (e) {
            o.log(`  ${loc.kind} ${t.name}: FAILED ${(e as Error).message.slice(0, 300)}`);
          }
          // iperf3 -s serves one test at a time; give it a moment to go back to listening.
          await new Promise((r) => setTimeout(r, 150));
        }
        if (got.length === 0) continue;
        got.sort((x, y) => x.value - y.value);
        const cell = got[(got.length - 1) >> 1]!;
        if (got.length > 1) {
          o.log(
            `  ${loc.kind.padEnd(10)} ${t.name.padEnd(24)} runs ${
              got.map((g) => fmt(g.value)).join(" ")
            }`,
          );
        }
        o.log(`  ${loc.kind.padEnd(10)} ${t.name.padEnd(24)} ${fmt(cell.value)} ${t.unit}`);
        const row = results.get(t.name) ?? { t, cells: {} };
        row.cells[loc.kind] = cell;
        results.set(t.name, row);
      }
    };
    // (a) Linux
    await kernelAddresses(lab, true);
    if (o.stacks.has("linux")) {
      await run({ kind: "linux", prefix: ["ip", "netns", "exec", lab.nsmNs!] });
    }
    // (c) NSM --stack kernel, in the same namespace with the same addresses
    if (o.stacks.has("nsm_kernel")) {
      const kctl = `${o.dir}/kernel-${offloads}.sock`;
      const kn = await startNsm(lab, ["--stack", "kernel", "--ctl", kctl, ...o.kernelArgs], o.pins);
      try {
        await run({ kind: "nsm_kernel", prefix: [], ctl: kctl, nsmPid: kn.pid });
      } finally {
        await stopProc(kn);
      }
    }
    // (b) NSM with our stack on AF_XDP: the kernel gives the interface up.
    await kernelAddresses(lab, false);
    if (o.stacks.has("nsm_tcpip")) {
      const tctl = `${o.dir}/tcpip-${offloads}.sock`;
      const tn = await startNsm(lab, [
        ...["--link", `xdp:${lab.nsmIf}`, "--ip", `${lab.nsmV4}/24`, "--ip6", `${lab.nsmV6}/64`],
        ...["--ctl", tctl, ...o.tcpipArgs],
      ], o.pins);
      try {
        await run({ kind: "nsm_tcpip", prefix: [], ctl: tctl, nsmPid: tn.pid });
      } finally {
        await stopProc(tn);
      }
    }
    await stopProc(iperfS);
    await stopProc(rrS);
  } finally {
    await killAll();
    await lab.down();
    labs.delete(lab);
  }
}

const labs = new Set<Lab>();

function fmt(v: number | null, digits = 3): string {
  if (v === null || !Number.isFinite(v)) return "-";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return v.toPrecision(digits);
}

function rows(results: Results): E2eRow[] {
  const out: E2eRow[] = [];
  for (const [name, { t, cells }] of results) {
    const v = (k: StackKind): number | null => cells[k]?.value ?? null;
    const ratio = (k: StackKind): number | null => {
      const a = v("linux"), b = v(k);
      return a !== null && b !== null && a > 0 ? Number((b / a).toFixed(3)) : null;
    };
    // Bulk: cores per Gbit/s; transactions: CPU µs per transaction.
    const cpu = (k: StackKind): number | null => {
      const c = cells[k];
      if (c === undefined || c.value <= 0) return null;
      return Number((t.kind === "bulk" ? c.cores / c.value : (c.cores / c.value) * 1e6).toFixed(3));
    };
    const round = (x: number | null): number | null =>
      x === null ? null : Number(x.toFixed(t.kind === "bulk" ? 3 : 0));
    out.push({
      name,
      unit: t.unit,
      linux: round(v("linux")),
      nsm_tcpip: round(v("nsm_tcpip")),
      nsm_kernel: round(v("nsm_kernel")),
      ratio_tcpip: ratio("nsm_tcpip"),
      ratio_kernel: ratio("nsm_kernel"),
      cpu: {
        unit: t.kind === "bulk" ? "cores per Gbit/s" : "CPU us per transaction",
        linux: cpu("linux"),
        nsm_tcpip: cpu("nsm_tcpip"),
        nsm_kernel: cpu("nsm_kernel"),
      },
    });
  }
  return out;
}

/** Heading of the section of bench/RESULTS.md that `bench:e2e` appends its runs to. */
export const RECORD_HEADING = "## bench:e2e runs (recorded by the tool)";

/**
 * `results` (the text of bench/RESULTS.md) with one more run appended to its recorded-runs
 * section (made at the end when missing): a heading with the date, the machine, the command,
 * then the table. Pure, so the format is tested without running a lab.
 */
export function recordRun(
  results: string,
  run: { date: string; machine: string; command: string; table: string },
): string {
  let out = results.endsWith("\n") ? results : results + "\n";
  if (!out.includes(`\n${RECORD_HEADING}\n`) && !out.startsWith(`${RECORD_HEADING}\n`)) {
    out +=
      `\n${RECORD_HEADING}\n\nEach full run of \`deno task bench:e2e\` (not \`--quick\`, unless ` +
      `\`--record\`; \`--no-record\` skips) appends itself here.\n`;
  }
  return out +
    `\n### ${run.date}\n\n${run.machine}\n\n\`${run.command}\`\n\n${run.table}\n`;
}

/** The markdown table printed and recorded into RESULTS.md. */
export function table(rs: E2eRow[]): string {
  const lines = [
    "| test | unit | (a) Linux | (b) NSM tcpip | (c) NSM kernel | b/a | c/a | CPU a / b / c |",
    "| ---- | ---- | --------: | ------------: | -------------: | --: | --: | ------------- |",
  ];
  for (const r of rs) {
    const c = r.cpu;
    const cu = r.unit === "Gbit/s" ? "cores/Gbit/s" : "µs/trans";
    lines.push(
      `| ${r.name} | ${r.unit} | ${fmt(r.linux)} | ${fmt(r.nsm_tcpip)} | ${fmt(r.nsm_kernel)} | ${
        fmt(r.ratio_tcpip, 2)
      } | ${fmt(r.ratio_kernel, 2)} | ${fmt(c.linux, 2)} / ${fmt(c.nsm_tcpip, 2)} / ${
        fmt(c.nsm_kernel, 2)
      } ${cu} |`,
    );
  }
  return lines.join("\n");
}

async function machine(pins: Pins | null): Promise<Record<string, unknown>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown";
  const uname = new TextDecoder().decode(
    (await new Deno.Command("uname", { args: ["-r"] }).output()).stdout,
  ).trim();
  const iperf = new TextDecoder().decode(
    (await new Deno.Command("iperf3", { args: ["--version"] }).output()).stdout,
  ).split("\n")[0]!.trim();
  return {
    cpu: model,
    cores: navigator.hardwareConcurrency,
    kernel: uname,
    deno: Deno.version.deno,
    iperf3: iperf,
    loadavg: (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).map(Number),
    date: new Date().toISOString(),
    pinning: pins === null
      ? "none"
      : `local side (iperf3 -c / guests / NSM) on CPU ${pins.local.join(",")}, peer on CPU ${
        pins.peer.join(",")
      }`,
    mtu: 1500,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "string" },
      seconds: { type: "string" },
      "no-pin": { type: "boolean", default: false },
      offloads: { type: "string", default: "off,on" },
      only: { type: "string" },
      repeat: { type: "string", default: "1" },
      omit: { type: "string", default: "0" },
      stacks: { type: "string", default: "linux,nsm_kernel,nsm_tcpip" },
      "tcpip-args": { type: "string", default: "" },
      "kernel-args": { type: "string", default: "" },
      record: { type: "boolean", default: false },
      "no-record": { type: "boolean", default: false },
      rps: { type: "boolean", default: false },
    },
  });
  if (Deno.uid() !== 0) {
    console.error("bench:e2e needs root (network namespaces, AF_XDP): run it with sudo");
    return 2;
  }
  const quick = values.quick;
  const known: StackKind[] = ["linux", "nsm_kernel", "nsm_tcpip"];
  const stacks = new Set<StackKind>();
  for (const x of values.stacks.split(",")) {
    if (!known.includes(x as StackKind)) {
      console.error(`--stacks: unknown stack '${x}'; use ${known.join(",")}`);
      return 2;
    }
    stacks.add(x as StackKind);
  }
  const seconds = Number(values.seconds ?? (quick ? 1 : 5));
  const omit = Number(values.omit);
  if (!(omit >= 0 && omit <= 60)) {
    console.error(`--omit ${values.omit}: give seconds in 0 .. 60`);
    return 2;
  }
  const ncpu = navigator.hardwareConcurrency;
  const pins: Pins = values["no-pin"] || ncpu < 2
    ? { local: [], peer: [] }
    : { local: ["0"], peer: ["1"] };
  const dir = await Deno.makeTempDir({ prefix: "bench-e2e-" });
  const cleanup = async (): Promise<void> => {
    await killAll();
    for (const l of labs) await l.down();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const onSignal = (): void => {
    console.error("\ninterrupted: cleaning up");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const m = await machine(values["no-pin"] ? null : pins);
  const results: Results = new Map();
  const t0 = performance.now();
  try {
    for (const off of values.offloads.split(",") as ("on" | "off")[]) {
      console.error(`peer offloads ${off}:`);
      const log = (s: string): void => console.error(s);
      const repeat = Math.max(1, Number(values.repeat));
      await runSetting(
        off,
        {
          ...{ seconds, omit, quick, pins, dir, only: values.only, repeat, stacks, log },
          rps: values.rps,
          tcpipArgs: values["tcpip-args"].split(/\s+/).filter((x) => x !== ""),
          kernelArgs: values["kernel-args"].split(/\s+/).filter((x) => x !== ""),
        },
        results,
      );
    }
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const rs = rows(results);
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  console.log(
    `\nend-to-end, veth MTU 1500, ${seconds} s per test${
      omit > 0 ? ` (bulk: after ${omit} s not counted)` : ""
    }, ${m.pinning}, ${m.cpu}, ` +
      `load ${(m.loadavg as number[]).join(" ")}, ${secs} s in all`,
  );
  console.log(table(rs));
  // The issue asks for runs to land in bench/RESULTS.md with the machine: full runs do, quick
  // ones only with --record (they are for iterating).
  if (!values["no-record"] && (values.record || !quick) && rs.length > 0) {
    const file = `${ROOT}bench/RESULTS.md`;
    const machineLine =
      `${m.cpu}, ${m.cores} vCPU, Linux ${m.kernel}, Deno ${m.deno}, ${m.iperf3}; ` +
      `${m.pinning}; load ${(m.loadavg as number[]).join(" ")}; ${seconds} s per test, ` +
      `median of ${values.repeat}; ${secs} s in all`;
    await Deno.writeTextFile(
      file,
      recordRun(await Deno.readTextFile(file), {
        date: String(m.date),
        machine: machineLine,
        command: `deno task bench:e2e ${Deno.args.join(" ")}`.trim(),
        table: table(rs),
      }),
    );
    // Aligned the way `deno task check` wants it (the table's columns, the line width).
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", file] }).output();
    console.error(`recorded in ${file}`);
  }
  if (values.json !== undefined) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        { machine: { ...m, secondsPerTest: seconds, repeat: Number(values.repeat) }, results: rs },
        null,
        2,
      ) + "\n",
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
