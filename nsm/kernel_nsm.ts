/**
 * The kernel-stack NSM: a ServiceLib serving guests' NQEs with the host kernel's sockets
 * (`KernelBackend`), NetKernel's baseline NSM. No link, no addresses of its own: the network
 * namespace it runs in decides what it can reach.
 *
 * ```
 * deno run -A --unstable-net nsm/kernel_nsm.ts [--ctl PATH] [--rcvbuf BYTES] [--sndbuf BYTES]
 *                                              [--stall-ms MS] [--spin-us N]
 * ```
 * Prints `ready stack=kernel ctl=PATH` once serving; SIGINT/SIGTERM reset every guest socket
 * and print `stopped SIGNAL {json}`. `deno task nsm --stack kernel ...` runs `kernelMain`.
 *
 * The loop: poll the ServiceLib (rings + the backend's ready list); while anything happens,
 * yield to Deno's event loop and its I/O driver after every pass (`KernelBackend.yield()`, a
 * thread-pool hop of ~8 us: the kernel's socket I/O completes only there); after `spinNs`
 * without work sleep until a doorbell, a socket event (`KernelBackend.wait`) or the next
 * deadline. `spinNs` is 0 by default: sharing a CPU with a guest whose wait spins (GuestLib
 * yields while it spins), the hops held back the guest and the kernel's own socket work
 * (pinned to one core: rr_1b 1,950 -> 8,300-9,100 trans/s, conn_rate 700 -> 2,600-2,800 conn/s
 * with 0; unpinned bulk send 7.2 -> 5.2 Gbit/s, so `--spin-us 200` on a CPU of its own). Measured (guest nkperf -> kernel NSM -> iperf3 -s on a veth pair): 10.1 Gbit/s,
 * reverse 8.0 Gbit/s; iperf3 kernel-to-kernel on the same pair: 24.9 Gbit/s.
 *
 * @module
 */

import { type Duration, MICROSECOND, monotonicNow, NEVER } from "../stacks/time.ts";
import { KernelBackend, type KernelBackendOptions, kernelWaitLink } from "./backend_kernel.ts";
import { defaultCtlPath } from "./ctl_path.ts";
import { msUntil, ServiceLib, ServiceLibError, type ServiceLibOptions } from "./service_lib.ts";

/** Options of `startKernelNsm`. */
export interface KernelNsmOptions {
  /** Control socket path. */
  readonly ctl: string;
  /** Backend tunables (buffer sizes, limits). */
  readonly backend?: KernelBackendOptions;
  /** ServiceLib tunables (the control path is `ctl`). */
  readonly serviceLib?: Omit<ServiceLibOptions, "ctlPath">;
  /** Busy-poll this long after the last work before sleeping (default 0: sleep at once). */
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
  const spinNs = o.spinNs ?? 0;
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

/** Parsed command line of kernel_nsm.ts / `deno task nsm --stack kernel`. */
export interface KernelNsmArgs {
  /** Control socket. */
  ctl: string;
  /** SO_RCVBUF default of connections. */
  rcvBuf?: number;
  /** SO_SNDBUF default of connections. */
  sndBuf?: number;
  /** Disconnect a guest whose completion ring stays full this long (ms). */
  stallMs?: number;
  /** Busy-poll this long (µs) after the last work before sleeping. */
  spinUs?: number;
}

/** Usage of the kernel stack's flags. */
export const KERNEL_USAGE =
  `usage: deno task nsm --stack kernel [--ctl PATH] [--rcvbuf BYTES] [--sndbuf BYTES]
                                    [--stall-ms MS] [--spin-us N]

  Serves guests (GuestLib, nkcat) with the host kernel's sockets, in the network namespace the
  NSM runs in: the kernel owns interfaces, addresses, routes and TCP.
  --ctl PATH      control socket guests attach to (default as for --stack tcpip)
  --rcvbuf BYTES  per-connection receive buffer in the NSM (default 262144)
  --sndbuf BYTES  per-connection send buffer in the NSM (default 262144)
  --stall-ms MS   disconnect a guest whose completion ring stays full this long (default 5000)
  --spin-us N     keep polling N µs after the last work before sleeping on the sockets and
                  doorbells (default 0; 200 helps bulk throughput when the NSM has a CPU of
                  its own, and costs latency when it shares one with guests)`;

/** Flags of our stack that mean nothing for the kernel stack, with the reason. */
const NOT_FOR_KERNEL: Readonly<Record<string, string>> = {
  "--link": "the host kernel owns the interfaces",
  "--ip": "the host kernel owns the addresses (ip addr in the NSM's namespace)",
  "--ip6": "the host kernel owns the addresses (ip addr in the NSM's namespace)",
  "--gw": "the host kernel owns the routes",
  "--mtu": "the host kernel owns the interfaces",
  "--cc": "the congestion control is the kernel's (sysctl net.ipv4.tcp_congestion_control)",
  "--xdp-mode": "there is no AF_XDP link",
  "--attach": "there is no AF_XDP link",
  "--queues": "there is no AF_XDP link",
  "--ring": "there is no AF_XDP link",
  "--partial-checksums": "there is no AF_XDP link",
  "--tx-checksum": "there is no AF_XDP link (the kernel's sockets use the device's offloads)",
  "--tx-kick": "there is no AF_XDP link",
  "--spin-yield": "the kernel stack's loop sleeps on socket events; tune it with --spin-us",
  "--echo": "echo/discard are services of our stack; run them as guests (nkcat --listen)",
  "--discard": "echo/discard are services of our stack; run them as guests (nkcat --listen)",
  "--no-ctl": "the kernel stack only serves guests",
};

/** Thrown for a bad kernel-stack command line (exit status 2). */
export class KernelNsmUsageError extends Error {
  /** Builds the error; the message names the flag and what to do. */
  constructor(message: string) {
    super(`${message} (run with --stack kernel --help for usage)`);
    this.name = "KernelNsmUsageError";
  }
}

/**
 * Splits `--stack tcpip|kernel` (or `--stack=...`) off the NSM's arguments; "tcpip" when
 * absent. Throws `KernelNsmUsageError` for another value or a missing one.
 */
export function splitStackFlag(
  args: readonly string[],
): { stack: "tcpip" | "kernel"; rest: string[] } {
  let stack: "tcpip" | "kernel" = "tcpip";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let v: string | undefined;
    if (a === "--stack") v = args[++i];
    else if (a.startsWith("--stack=")) v = a.slice(8);
    else {
      rest.push(a);
      continue;
    }
    if (v !== "tcpip" && v !== "kernel") {
      throw new KernelNsmUsageError(`--stack ${v ?? ""}: give tcpip or kernel`);
    }
    stack = v;
  }
  return { stack, rest };
}

/** Parses the kernel stack's command line; throws `KernelNsmUsageError`. */
export function parseKernelNsmArgs(args: readonly string[]): KernelNsmArgs {
  const o: KernelNsmArgs = { ctl: defaultCtlPath() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    let inline = a.startsWith("--") && eq > 0 ? a.slice(eq + 1) : undefined;
    const v = (): string => {
      if (inline !== undefined) {
        const x = inline;
        inline = undefined;
        return x;
      }
      const x = args[++i];
      if (x === undefined) throw new KernelNsmUsageError(`${flag} needs a value`);
      return x;
    };
    const int = (lo: number): number => {
      const t = v();
      const n = Number(t);
      if (!Number.isInteger(n) || n < lo) {
        throw new KernelNsmUsageError(`${flag} ${t}: give an integer >= ${lo}`);
      }
      return n;
    };
    const why = NOT_FOR_KERNEL[flag];
    if (why !== undefined) {
      throw new KernelNsmUsageError(`${flag} has no meaning with --stack kernel: ${why}`);
    }
    if (flag === "--ctl") o.ctl = v();
    else if (flag === "--rcvbuf") o.rcvBuf = int(4096);
    else if (flag === "--sndbuf") o.sndBuf = int(4096);
    else if (flag === "--stall-ms") o.stallMs = int(1);
    else if (flag === "--spin-us") o.spinUs = int(0);
    else throw new KernelNsmUsageError(`unknown flag ${a}`);
  }
  return o;
}

/**
 * `deno task nsm --stack kernel ...` (the arguments without `--stack`): serves until SIGINT or
 * SIGTERM; resolves with the exit status (0, 1 failure, 2 usage).
 */
export async function kernelMain(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(KERNEL_USAGE);
    return 0;
  }
  let o: KernelNsmArgs;
  try {
    o = parseKernelNsmArgs(args);
  } catch (e) {
    console.error(`nsm: ${(e as Error).message}`);
    return 2;
  }
  if (!KernelBackend.udpAvailable) {
    console.error(
      "nsm: UDP disabled: Deno.listenDatagram needs --unstable-net (deno run -A --unstable-net)",
    );
  }
  let nsm: KernelNsm;
  try {
    nsm = await startKernelNsm({
      ctl: o.ctl,
      ...(o.spinUs !== undefined ? { spinNs: o.spinUs * MICROSECOND } : {}),
      backend: {
        ...(o.rcvBuf !== undefined ? { rcvBuf: o.rcvBuf } : {}),
        ...(o.sndBuf !== undefined ? { sndBuf: o.sndBuf } : {}),
      },
      serviceLib: {
        log: (line) => console.error(`nsm: ${line}`),
        ...(o.stallMs !== undefined ? { stallNs: o.stallMs * 1e6 } : {}),
      },
    });
  } catch (e) {
    console.error(`nsm: ${(e as Error).message}`);
    return e instanceof ServiceLibError ? 2 : 1;
  }
  let signal = "";
  let stopped: Promise<Record<string, unknown>> | null = null;
  const onSignal = (name: string) => (): void => {
    signal = name;
    stopped ??= nsm.stop();
  };
  const onInt = onSignal("SIGINT"), onTerm = onSignal("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  console.log(`ready stack=kernel ctl=${o.ctl}`);
  await nsm.done;
  const stats = await (stopped ?? nsm.stop());
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGTERM", onTerm);
  console.log(`stopped ${signal || "stop()"} ${JSON.stringify(stats)}`);
  return 0;
}

if (import.meta.main) Deno.exit(await kernelMain(Deno.args));
