/**
 * The NSM command (`nsm/cli.ts` on AF_XDP) run in a lab's NSM namespace for the single-run
 * benchmarks (profile_nsm.ts, profile_crr.ts, gc_nsm.ts): started with extra Deno flags (a
 * profiler, GC tracing) and an optional CPU, its stdout collected until `stop()`.
 *
 * @module
 */

import type { Lab } from "../../xdp/lab.ts";
import { NSM_V8_FLAGS } from "../../nsm/heap.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

/** How to start a {@link LabNsm}. */
export interface LabNsmOptions {
  /** Control socket guests attach to. */
  ctl: string;
  /** Flags for `deno run` before the script (e.g. `--cpu-prof`, `--v8-flags=--trace-gc`). */
  denoFlags?: string[];
  /** Run under `taskset -c CPU`. */
  cpu?: number;
  /** More NSM flags after `--link/--ip/--ctl`. */
  args?: string[];
  /** Where the NSM's stderr goes (default "inherit"). */
  stderr?: "inherit" | "null" | "piped";
  /** The program instead of nsm/cli.ts (a wrapper taking the same arguments). */
  script?: string;
}

/** A running NSM in `lab`'s namespace. */
export class LabNsm {
  /** performance.now() when the process was spawned (V8's trace stamps count from there). */
  readonly spawnedAt: number;
  readonly #proc: Deno.ChildProcess;
  readonly #pump: Promise<void>;
  #out = "";
  #stopped = false;

  private constructor(proc: Deno.ChildProcess, spawnedAt: number) {
    this.#proc = proc;
    this.spawnedAt = spawnedAt;
    const rd = proc.stdout.getReader();
    this.#pump = (async (): Promise<void> => {
      for (;;) {
        const c = await rd.read();
        if (c.done) break;
        this.#out += dec.decode(c.value);
      }
    })();
  }

  /** Spawns the NSM and waits (at most 30 s) for its `ready` line. */
  static async start(lab: Lab, o: LabNsmOptions): Promise<LabNsm> {
    // The NSM's own V8 flags first; a caller's --v8-flags (gc_nsm.ts's --trace-gc) add to them.
    const deno = [
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-net",
      NSM_V8_FLAGS,
      ...(o.denoFlags ?? []),
    ];
    const cmd = o.cpu === undefined ? deno : ["taskset", "-c", String(o.cpu), ...deno];
    const spawnedAt = performance.now();
    const proc = new Deno.Command("ip", {
      args: [
        ...["netns", "exec", lab.nsmNs!, ...cmd],
        ...[o.script ?? `${ROOT}nsm/cli.ts`, "--link", `xdp:${lab.nsmIf}`],
        ...["--ip", `${lab.nsmV4}/24`],
        ...["--ctl", o.ctl, ...(o.args ?? [])],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: o.stderr ?? "inherit",
    }).spawn();
    const nsm = new LabNsm(proc, spawnedAt);
    for (let i = 0; i < 300 && !/^ready/m.test(nsm.#out); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!/^ready/m.test(nsm.#out)) {
      await nsm.kill();
      throw new Error(`NSM not ready: ${nsm.#out.slice(0, 400)}`);
    }
    return nsm;
  }

  /** Everything the NSM printed so far. */
  get output(): string {
    return this.#out;
  }

  /** SIGTERM, then all of its output once it exited (the `stopped` line is in it). */
  async stop(): Promise<string> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#proc.kill("SIGTERM");
      await this.#proc.status;
      await this.#pump;
    }
    return this.#out;
  }

  /** The `stopped {json}` line(s) of the output. */
  stoppedLine(): string {
    return this.#out.split("\n").filter((l) => l.startsWith("stopped")).join("\n");
  }

  /** SIGKILL if it still runs (for `finally`). */
  async kill(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#proc.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#proc.status;
    await this.#pump.catch(() => {});
  }
}

/**
 * The lines the allocation tools print after a guest's run: nkperf's receiver summary (from its
 * stdout) and the frames counted over the sampled `ms`.
 */
export function guestRunSummary(
  stdout: Uint8Array,
  frames: number,
  received: boolean,
  ms: number,
): string {
  const iperf = new TextDecoder().decode(stdout).split("\n").filter((l) => /receiver/.test(l));
  return [
    ...iperf,
    `${frames} frames ${received ? "received" : "sent"} in ${(ms / 1000).toFixed(2)} s of sampling`,
  ].join("\n");
}
