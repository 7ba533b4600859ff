/**
 * `deno task demo`: the project's main job in one command.
 *
 * As root (with iproute2 and iperf3): builds a lab (network namespaces, a veth pair, a Linux
 * peer running `iperf3 -s`), starts the NSM on AF_XDP (`nsm/cli.ts` in a subprocess), runs a
 * guest `nkperf -c` through it (GuestLib: every socket call is an NQE to the NSM's stack) for
 * `--duration` seconds, and swaps the connection's congestion control live cubic -> bbr ->
 * dctcp through the control API (`ctl cc set --guest`). It prints one line per second
 * (throughput, cwnd, RTT, cc in use) read from the NSM (`ctl conns`), a progress bar on a
 * terminal, a summary, and writes an SVG of throughput, cwnd and RTT over time with the swaps
 * marked. The lab is torn down on every exit path, Ctrl-C included.
 *
 * Without root (or iperf3, or with `--sim` / `NSM_DEMO_SIM=1`) it says why and tells the same
 * story over the simulated network: real stacks, one flow, the same live swaps, the same lines
 * and SVG, in virtual time. The old simulated ping/UDP demo is `deno task demo:ping`.
 *
 * ```sh
 * deno task demo [--duration 20] [--out out/demo.svg] [--sim]
 * ```
 *
 * @module
 */

import { ensureBuilt } from "../cc/build.ts";
import { CcHost } from "../cc/host.ts";
import { runSimStory } from "../sim/cc_story.ts";
import {
  demoPlot,
  type DemoSample,
  type DemoSwap,
  formatSample,
  progressBar,
  SAMPLE_HEADER,
  secondOf,
  summaryLines,
} from "../sim/demo_report.ts";
import { Lab, LAB_NSM_V4, LAB_PEER_V4, LAB_V4_PREFIX } from "../xdp/lab.ts";
import { loadBundledCc } from "./cc_modules.ts";
import { ControlClient } from "./control_proto.ts";
import type { ConnRow } from "./ops_view.ts";

/** The swaps the demo makes, in order. */
export const DEMO_CCS: readonly string[] = ["cubic", "bbr", "dctcp"];

/** Command line of the demo. */
export interface DemoOptions {
  /** Transfer length, seconds. */
  readonly duration: number;
  /** Force the simulated story. */
  readonly sim: boolean;
  /** Where the SVG goes. */
  readonly out: string;
}

/** A command-line mistake; the message says what to write. */
export class DemoUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(`${message}; usage: deno task demo [--duration S] [--out FILE.svg] [--sim]`);
    this.name = "DemoUsageError";
  }
}

/** Parses the demo's flags (`NSM_DEMO_SIM=1` in `env` also forces the simulated story). */
export function parseDemoArgs(
  argv: readonly string[],
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): DemoOptions {
  let duration = 20;
  let sim = env("NSM_DEMO_SIM") === "1";
  let out = "out/demo.svg";
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      const v = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new DemoUsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === "--duration") {
      const v = value();
      duration = Number(v);
      if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || duration < 3 || duration > 600) {
        throw new DemoUsageError(`--duration ${v}: give seconds in 3..600`);
      }
    } else if (flag === "--sim") sim = true;
    else if (flag === "--out") out = value();
    else throw new DemoUsageError(`unknown argument ${a}`);
  }
  return { duration, sim, out };
}

/** What a story produced (for the summary, the SVG and tests). */
export interface DemoResult {
  /** "live" (lab + NSM + iperf3) or "sim". */
  readonly mode: "live" | "sim";
  /** Fine samples (plot). */
  readonly samples: DemoSample[];
  /** One-second lines. */
  readonly intervals: DemoSample[];
  /** Swaps made. */
  readonly swaps: DemoSwap[];
  /** Bytes the receiver got. */
  readonly bytes: number;
  /** SVG path written. */
  readonly svg: string;
}

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      const st = await Deno.stat(`${dir}/${tool}`);
      if (st.isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Why the live story cannot run here (null: it can). */
export async function liveUnavailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "the live lab needs Linux (AF_XDP, network namespaces)";
  if (Deno.uid() !== 0) {
    return "not root: the live lab needs root (network namespaces, veth, AF_XDP); " +
      "run `sudo -E deno task demo` for it";
  }
  const missing: string[] = [];
  for (const [tool, pkg] of [["ip", "iproute2"], ["iperf3", "iperf3"], ["timeout", "coreutils"]]) {
    if (!(await onPath(tool!))) missing.push(`${tool} (apt-get install -y ${pkg})`);
  }
  if (missing.length > 0) return `missing ${missing.join(", ")}`;
  return null;
}

/** Terminal output: lines on stdout, a progress bar redrawn on stderr when it is a terminal. */
class Out {
  readonly #tty = Deno.stderr.isTerminal();
  readonly #enc = new TextEncoder();
  #bar = false;
  constructor(readonly log: (line: string) => void) {}
  line(l: string): void {
    this.clear();
    this.log(l);
  }
  progress(t: number, total: number): void {
    if (!this.#tty) return;
    Deno.stderr.writeSync(this.#enc.encode(`\r${progressBar(t, total)} `));
    this.#bar = true;
  }
  clear(): void {
    if (!this.#bar) return;
    Deno.stderr.writeSync(this.#enc.encode("\r\x1b[K"));
    this.#bar = false;
  }
}

function writeSvg(path: string, svg: string): void {
  const slash = path.lastIndexOf("/");
  if (slash > 0) Deno.mkdirSync(path.slice(0, slash), { recursive: true });
  Deno.writeTextFileSync(path, svg);
}

/** Builds (if stale) and registers the congestion-control modules; names missing, if any. */
async function prepareCc(out: Out): Promise<string[]> {
  try {
    const built = await ensureBuilt();
    if (built.length > 0) out.line(`built congestion-control modules: ${built.join(", ")}`);
  } catch (e) {
    out.line(
      `could not build the congestion-control modules (${
        e instanceof Error ? e.message.split("\n")[0] : String(e)
      }); deno task build:cc needs the npm registry once`,
    );
  }
  const r = loadBundledCc(new CcHost());
  return DEMO_CCS.filter((n) => !r.loaded.includes(n));
}

/** The simulated story (see `sim/cc_story.ts`). */
export async function runSimulated(o: DemoOptions, out: Out): Promise<DemoResult> {
  const missing = await prepareCc(out);
  const ccs = DEMO_CCS.filter((n) => !missing.includes(n));
  if (missing.length > 0) out.line(`not available: ${missing.join(", ")}; swapping among the rest`);
  const story = ccs.length > 0 ? ccs : ["reno"];
  out.line(
    `simulated network: two real TCP/IP stacks (ours), one bulk flow, live swaps ${
      story.join(" -> ")
    }`,
  );
  out.line(SAMPLE_HEADER);
  const r = runSimStory({
    duration: o.duration,
    ccs: story,
    onSample: (s) => out.line(formatSample(s)),
    onSwap: (w) => out.line(`  >>> ${w.t.toFixed(1)} s: swap ${w.from} -> ${w.to} (live)`),
  });
  out.line(`path: ${r.path}`);
  for (const l of summaryLines(r.samples, r.delivered)) out.line(l);
  out.line(
    `  integrity: receiver's SHA-256 ${r.intact ? "matches" : "DOES NOT match"} the sent ` +
      `stream; connection ${r.state}`,
  );
  writeSvg(
    o.out,
    demoPlot(
      r.samples,
      r.swaps,
      `One TCP flow, congestion control swapped live (simulated ${r.path.split(",")[0]})`,
    ),
  );
  out.line(`plot: ${o.out}`);
  return {
    mode: "sim",
    samples: r.samples,
    intervals: r.intervals,
    swaps: r.swaps,
    bytes: r.delivered,
    svg: o.out,
  };
}

/** A child process whose output is collected (lines) and which can be stopped. */
class Child {
  readonly lines: string[] = [];
  readonly done: Promise<Deno.CommandStatus>;
  exited = false;
  readonly #proc: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  constructor(cmd: readonly string[]) {
    this.#proc = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>): Promise<void> => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const c of s) {
        buf += dec.decode(c, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
      if (buf !== "") this.lines.push(buf);
    };
    this.#pumps = [pump(this.#proc.stdout), pump(this.#proc.stderr)];
    this.done = this.#proc.status.then((s) => {
      this.exited = true;
      return s;
    });
  }
  /** SIGTERM, then SIGKILL after `ms`; resolves when it is gone. */
  async stop(ms = 3000): Promise<void> {
    if (!this.exited) {
      try {
        this.#proc.kill("SIGTERM");
      } catch { /* gone */ }
    }
    const t = setTimeout(() => {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* gone */ }
    }, ms);
    await this.done;
    clearTimeout(t);
    await Promise.all(this.#pumps);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown when Ctrl-C (SIGINT) or SIGTERM ended the live story. */
export class DemoInterrupted extends Error {
  /** Builds the error. */
  constructor(signal: string) {
    super(`interrupted by ${signal}; the lab was torn down`);
    this.name = "DemoInterrupted";
  }
}

/** The live story: lab, NSM on AF_XDP, guest nkperf against the peer's iperf3. */
export async function runLive(o: DemoOptions, out: Out): Promise<DemoResult> {
  // Build the modules while the network is reachable (namespaces have none).
  const missing = await prepareCc(out);
  if (missing.length > 0) {
    throw new Error(
      `congestion-control modules ${missing.join(", ")} are not built (deno task build:cc)`,
    );
  }
  let signal: string | null = null;
  const children: Child[] = [];
  const onSig = (name: string) => (): void => {
    signal ??= name;
    for (const c of children) c.stop(1000);
  };
  const onInt = onSig("SIGINT"), onTerm = onSig("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const check = (): void => {
    if (signal !== null) throw new DemoInterrupted(signal);
  };
  const tmp = await Deno.makeTempDir({ prefix: "nsm-demo-" });
  let lab: Lab | null = null;
  let client: ControlClient | null = null;
  try {
    const name = `demo${(Deno.pid % 100000).toString(36)}`;
    out.line(`lab: namespaces ${name}-nsm / ${name}-peer, veth ${name}n <-> ${name}p`);
    lab = await Lab.up({ name, nsmNamespace: true });
    check();
    const iperf = new Child([
      "ip",
      "netns",
      "exec",
      lab.peerNs,
      "timeout",
      String(Math.ceil(o.duration) + 60),
      "iperf3",
      "-s",
      "-1",
    ]);
    children.push(iperf);
    const ctl = `${tmp}/ctl.sock`;
    const root = new URL("../", import.meta.url);
    const nsm = new Child([
      "ip",
      "netns",
      "exec",
      lab.nsmNs!,
      Deno.execPath(),
      "run",
      "-A",
      new URL("nsm/cli.ts", root).pathname,
      "--link",
      `xdp:${lab.nsmIf}`,
      "--ip",
      `${LAB_NSM_V4}/${LAB_V4_PREFIX}`,
      "--ctl",
      ctl,
      "--cc",
      DEMO_CCS[0]!,
    ]);
    children.push(nsm);
    const deadline = Date.now() + 30_000;
    while (!nsm.lines.some((l) => l.startsWith("ready")) && !nsm.exited) {
      check();
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    const ready = nsm.lines.find((l) => l.startsWith("ready"));
    if (ready === undefined) {
      throw new Error(`the NSM did not start:\n${nsm.lines.join("\n")}`);
    }
    out.line(`NSM: ${ready.replace(/ mac=\S+/, "")}`);
    // iperf3 listening?
    for (let i = 0; i < 100; i++) {
      check();
      const r = await lab.peer(["ss", "-ltn"], true);
      if (r.stdout.includes(":5201")) break;
      await sleep(50);
    }
    out.line(`peer: iperf3 -s on ${LAB_PEER_V4} (Linux, namespace ${lab.peerNs})`);
    const guest = new Child([
      Deno.execPath(),
      "run",
      "-A",
      new URL("guest/guestlib/nkperf.ts", root).pathname,
      "--ctl",
      ctl,
      "-c",
      LAB_PEER_V4,
      "-t",
      String(o.duration),
    ]);
    children.push(guest);
    out.line(
      `guest: nkperf -c ${LAB_PEER_V4} -t ${o.duration} (GuestLib: sockets are NQEs to the NSM)`,
    );
    client = await ControlClient.connect(ctl);
    // The data connection: the guest's connection with the most bytes sent.
    const dataConn = async (): Promise<ConnRow | null> => {
      const rows = await client!.request<ConnRow[]>("conns");
      let best: ConnRow | null = null;
      for (const r of rows) {
        if (r.guest !== 0 && (best === null || r.bytesSent > best.bytesSent)) best = r;
      }
      return best !== null && best.bytesSent > 64 * 1024 ? best : null;
    };
    let first: ConnRow | null = null;
    const waitUntil = Date.now() + 15_000;
    while (first === null) {
      check();
      if (guest.exited || Date.now() > waitUntil) {
        throw new Error(`the guest's transfer did not start:\n${guest.lines.join("\n")}`);
      }
      await sleep(50);
      first = await dataConn();
    }
    const guestId = first.guest;
    out.line(`connection ${first.conn} of guest ${guestId}: ${first.local} -> ${first.remote}`);
    out.line(SAMPLE_HEADER);
    const t0 = performance.now();
    const samples: DemoSample[] = [];
    const intervals: DemoSample[] = [];
    const swaps: DemoSwap[] = [];
    const swapAt = DEMO_CCS.slice(1).map((name, k) => ({
      t: Math.round((o.duration * (k + 1)) / DEMO_CCS.length),
      name,
    }));
    const every = 0.25;
    const perLine = Math.round(1 / every);
    let lastRetr = first.retransmits;
    const hist: { t: number; acked: number }[] = [{ t: 0, acked: first.bytesAcked }];
    let row: ConnRow = first;
    let firstAcked = first.bytesAcked;
    for (let k = 1; k * every <= o.duration + 1e-9; k++) {
      const due = t0 + k * every * 1000;
      while (performance.now() < due) {
        check();
        await sleep(Math.min(20, Math.max(1, due - performance.now())));
      }
      const t = k * every;
      const next = swapAt[0];
      if (next !== undefined && t >= next.t) {
        swapAt.shift();
        const r = await client.request<{ changed: string[] }>("cc.set", {
          name: next.name,
          guest: guestId,
        });
        const w = { t, from: row.cc, to: next.name };
        swaps.push(w);
        out.line(
          `  >>> ${t.toFixed(1)} s: ctl cc set ${next.name} --guest ${guestId}: ` +
            `${r.changed.join(", ")} swapped live (${w.from} -> ${w.to})`,
        );
      }
      const rows = await client.request<ConnRow[]>("conns", { guest: guestId });
      const now = rows.find((r) => r.conn === first!.conn);
      if (now === undefined) break; // the transfer ended
      row = now;
      // Throughput over the last second (a sliding window of samples): the sample times are
      // this process's, and a control answer delayed by a busy NSM would otherwise show as a
      // spike followed by a dip.
      const tNow = (performance.now() - t0) / 1000;
      hist.push({ t: tNow, acked: row.bytesAcked });
      const from = hist[Math.max(0, hist.length - 1 - perLine)]!;
      const s: DemoSample = {
        t: tNow,
        mbps: tNow > from.t ? ((row.bytesAcked - from.acked) * 8) / 1e6 / (tNow - from.t) : 0,
        cwndBytes: row.cwnd,
        rttMs: row.srttUs === null ? null : row.srttUs / 1000,
        retransmits: row.retransmits - lastRetr,
        cc: row.cc,
      };
      lastRetr = row.retransmits;
      samples.push(s);
      if (k % perLine === 0) {
        const line = { ...secondOf(samples.slice(-perLine)), mbps: s.mbps, t: Math.round(s.t) };
        intervals.push(line);
        out.line(formatSample(line));
      }
      out.progress(t, o.duration);
      if (guest.exited) break;
    }
    out.clear();
    await Promise.race([guest.done, sleep(15_000)]);
    const bytes = row.bytesAcked - firstAcked;
    firstAcked = 0;
    const g = guest.lines.filter((l) => /sender|receiver/.test(l));
    if (g.length > 0) {
      out.line("guest nkperf (iperf3's own accounting):");
      for (const l of g) out.line(`  ${l.trim()}`);
    }
    for (const l of summaryLines(samples, bytes)) out.line(l);
    writeSvg(
      o.out,
      demoPlot(
        samples,
        swaps,
        "Guest nkperf through the NSM (AF_XDP) to Linux iperf3, congestion control swapped live",
      ),
    );
    out.line(`plot: ${o.out}`);
    return { mode: "live", samples, intervals, swaps, bytes, svg: o.out };
  } finally {
    out.clear();
    client?.close();
    await Promise.all(children.map((c) => c.stop()));
    if (lab !== null) {
      await lab.down();
      out.line(`lab ${lab.name} torn down`);
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
}

/** Runs the demo; resolves with the exit status (130 after Ctrl-C). */
export async function main(
  argv: readonly string[],
  log: (line: string) => void = console.log,
): Promise<number> {
  let o: DemoOptions;
  try {
    o = parseDemoArgs(argv);
  } catch (e) {
    console.error(`demo: ${(e as Error).message}`);
    return 2;
  }
  const out = new Out(log);
  const why = o.sim ? "--sim given (or NSM_DEMO_SIM=1)" : await liveUnavailable();
  if (why === null) {
    try {
      await runLive(o, out);
      return 0;
    } catch (e) {
      if (e instanceof DemoInterrupted) {
        out.line(`demo: ${e.message}`);
        return 130;
      }
      out.line(`demo: the live lab failed: ${e instanceof Error ? e.message : String(e)}`);
      out.line("demo: telling the same story over the simulated network instead");
    }
  } else {
    out.line(`demo: ${why}; telling the same story over the simulated network`);
  }
  await runSimulated(o, out);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
