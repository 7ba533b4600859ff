/**
 * The kernel-stack NSM: a ServiceLib serving guests' NQEs with the host kernel's sockets
 * (`KernelBackend`), NetKernel's baseline NSM. No link, no addresses of its own: the network
 * namespace it runs in decides what it can reach.
 *
 * ```
 * deno run -A --unstable-net nsm/kernel_nsm.ts [--ctl PATH] [--rcvbuf BYTES] [--sndbuf BYTES]
 *                                              [--stall-ms MS]
 * ```
 * Prints `ready stack=kernel ctl=PATH` once serving; SIGINT/SIGTERM reset every guest socket
 * and print `stopped {json}`. `deno task nsm --stack kernel` is meant to call `startKernelNsm`.
 *
 * The loop: poll the ServiceLib (rings + the backend's ready list); while anything happens,
 * yield to Deno's event loop and its I/O driver after every pass (`KernelBackend.yield()`, a
 * thread-pool hop of ~8 us: the kernel's socket I/O completes only there); after `spinNs`
 * without work sleep until a doorbell, a socket event (`KernelBackend.wait`) or the next
 * deadline. Measured (guest nkperf -> kernel NSM -> iperf3 -s on a veth pair): 10.1 Gbit/s,
 * reverse 8.0 Gbit/s; iperf3 kernel-to-kernel on the same pair: 24.9 Gbit/s.
 *
 * @module
 */

import { type Duration, MICROSECOND, monotonicNow, NEVER } from "../stacks/time.ts";
import { KernelBackend, type KernelBackendOptions, kernelWaitLink } from "./backend_kernel.ts";
import { defaultCtlPath } from "./ctl_path.ts";
import { msUntil, ServiceLib, type ServiceLibOptions } from "./service_lib.ts";

/** Options of `startKernelNsm`. */
export interface KernelNsmOptions {
  /** Control socket path. */
  readonly ctl: string;
  /** Backend tunables (buffer sizes, limits). */
  readonly backend?: KernelBackendOptions;
  /** ServiceLib tunables (the control path is `ctl`). */
  readonly serviceLib?: Omit<ServiceLibOptions, "ctlPath">;
  /** Busy-poll this long after the last work before sleeping (default 200 us). */
  readonly spinNs?: Duration;
  /** Longest single sleep in ms (default 250). */
  readonly maxSleepMs?: number;
}

/** Loop counters. */
export interface KernelNsmStats {
  /** Loop passes. */
  iterations: number;
  /** Passes that did work. */
  busyIterations: number;
  /** Idle sleeps. */
  sleeps: number;
}

/** A running kernel-stack NSM. */
export interface KernelNsm {
  /** The backend. */
  readonly backend: KernelBackend;
  /** The ServiceLib. */
  readonly serviceLib: ServiceLib;
  /** Loop counters. */
  readonly stats: KernelNsmStats;
  /** Resolves when the loop ended. */
  readonly done: Promise<void>;
  /** Stops the loop, resets every guest socket, closes the backend; returns statistics. */
  stop(): Promise<Record<string, unknown>>;
}

/** Starts a ServiceLib on a `KernelBackend` and its driver loop (see the module comment). */
export async function startKernelNsm(o: KernelNsmOptions): Promise<KernelNsm> {
  const backend = new KernelBackend(o.backend ?? {});
  const sl = new ServiceLib(backend, { ...(o.serviceLib ?? {}), ctlPath: o.ctl });
  await sl.listen();
  const spinNs = o.spinNs ?? 200 * MICROSECOND;
  const maxSleepMs = o.maxSleepMs ?? 250;
  const stats: KernelNsmStats = { iterations: 0, busyIterations: 0, sleeps: 0 };
  let stopping = false;
  const link = sl.wrapLink(kernelWaitLink(backend));
  const loop = async (): Promise<void> => {
    let lastWork = monotonicNow();
    while (!stopping) {
      const now = monotonicNow();
      stats.iterations++;
      if (sl.poll(now)) {
        stats.busyIterations++;
        lastWork = now;
      }
      const after = monotonicNow();
      const at = sl.pollAt();
      if (after - lastWork < spinNs || at <= after) {
        await backend.yield();
        continue;
      }
      stats.sleeps++;
      const ms = at === NEVER ? maxSleepMs : Math.min(maxSleepMs, msUntil(at, after));
      // The wrapped wait covers the doorbells and the backend's sockets (and stop(), through
      // backend.interrupt()). It is always awaited to the end: abandoning it would start a
      // second Doorbell.waitAny over the same doorbells while the first still runs.
      await link.wait(ms);
    }
  };
  const done = loop();
  return {
    backend,
    serviceLib: sl,
    stats,
    done,
    async stop(): Promise<Record<string, unknown>> {
      stopping = true;
      backend.interrupt();
      await done;
      const now = monotonicNow();
      sl.close(now);
      backend.dispose(now);
      return { loop: stats, serviceLib: sl.stats, backend: backend.stats };
    },
  };
}

/** Parsed command line of kernel_nsm.ts. */
export interface KernelNsmArgs {
  /** Control socket. */
  ctl: string;
  /** SO_RCVBUF default of connections. */
  rcvBuf?: number;
  /** SO_SNDBUF default of connections. */
  sndBuf?: number;
  /** Disconnect a guest whose completion ring stays full this long (ms). */
  stallMs?: number;
}

/** Parses the command line; throws Error with a usage message. */
export function parseKernelNsmArgs(args: string[]): KernelNsmArgs {
  const o: KernelNsmArgs = { ctl: defaultCtlPath() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = (): string => {
      const x = args[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const bytes = (): number => {
      const n = Number(v());
      if (!Number.isInteger(n) || n < 4096) throw new Error(`${a} needs a byte count >= 4096`);
      return n;
    };
    if (a === "--ctl") o.ctl = v();
    else if (a === "--rcvbuf") o.rcvBuf = bytes();
    else if (a === "--sndbuf") o.sndBuf = bytes();
    else if (a === "--stall-ms") {
      const n = Number(v());
      if (!Number.isInteger(n) || n < 1) throw new Error("--stall-ms needs a positive integer");
      o.stallMs = n;
    } else {
      throw new Error(
        `unknown flag ${a}\nusage: kernel_nsm.ts [--ctl PATH] [--rcvbuf BYTES] [--sndbuf BYTES] [--stall-ms MS]`,
      );
    }
  }
  return o;
}

async function main(args: string[]): Promise<number> {
  let o: KernelNsmArgs;
  try {
    o = parseKernelNsmArgs(args);
  } catch (e) {
    console.error(`kernel_nsm: ${(e as Error).message}`);
    return 2;
  }
  if (!KernelBackend.udpAvailable) {
    console.error("kernel_nsm: UDP disabled: run with --unstable-net for Deno.listenDatagram");
  }
  const nsm = await startKernelNsm({
    ctl: o.ctl,
    backend: {
      ...(o.rcvBuf !== undefined ? { rcvBuf: o.rcvBuf } : {}),
      ...(o.sndBuf !== undefined ? { sndBuf: o.sndBuf } : {}),
    },
    serviceLib: {
      log: (line) => console.error(`kernel_nsm: ${line}`),
      ...(o.stallMs !== undefined ? { stallNs: o.stallMs * 1e6 } : {}),
    },
  });
  const stop = (): void => {
    void nsm.stop().then((s) => console.log(`stopped ${JSON.stringify(s)}`));
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  console.log(`ready stack=kernel ctl=${o.ctl}`);
  await nsm.done;
  // Let stop() print its line.
  await new Promise((r) => setTimeout(r, 0));
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
