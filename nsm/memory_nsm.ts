/**
 * A test NSM without a NIC: two of our stacks joined by an in-process memory wire, each with a
 * ServiceLib on its own control socket, all driven by one `NsmRuntime` loop. Guests attached
 * to `--ctl` (host A, 198.18.0.1 / fd00::1) talk through NQEs -> stack A -> wire -> stack B
 * to guests attached to `--peer-ctl` (host B, 198.18.0.2 / fd00::2), so end-to-end tests run
 * unprivileged, anywhere.
 *
 * ```
 * deno run -A nsm/memory_nsm.ts --ctl /tmp/a.sock --peer-ctl /tmp/b.sock [--mtu 9000] [--stats-ms N]
 * ```
 * Prints `ready ctl=... peer-ctl=...` once serving; SIGINT/SIGTERM reset every guest socket and
 * print `stopped {json}`.
 *
 * @module
 */

import { monotonicNow } from "../stacks/time.ts";
import { memoryWire } from "./memory_link.ts";
import { NsmRuntime, type Pollable } from "./runtime.ts";
import { ServiceLib, type ServiceLibOptions } from "./service_lib.ts";
import { createTcpipHost } from "./stack_host.ts";

/** Parsed flags. */
export interface MemoryNsmArgs {
  /** Control socket of host A. */
  ctl: string;
  /** Control socket of host B. */
  peerCtl: string;
  /** MTU of the wire. */
  mtu: number;
  /** Per-guest socket limit. */
  maxSockets?: number;
  /** Stall timeout in ms. */
  stallMs?: number;
}

/** Parses the command line; throws Error with a usage message. */
export function parseMemoryNsmArgs(args: string[]): MemoryNsmArgs {
  const o: MemoryNsmArgs = { ctl: "", peerCtl: "", mtu: 1500 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = (): string => {
      const x = args[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === "--ctl") o.ctl = v();
    else if (a === "--peer-ctl") o.peerCtl = v();
    else if (a === "--mtu") o.mtu = Number(v());
    else if (a === "--max-sockets") o.maxSockets = Number(v());
    else if (a === "--stall-ms") o.stallMs = Number(v());
    else throw new Error(`unknown flag ${a}`);
  }
  if (!o.ctl || !o.peerCtl) {
    throw new Error("usage: memory_nsm.ts --ctl PATH --peer-ctl PATH [--mtu N]");
  }
  return o;
}

/** A running in-process two-stack NSM. */
export interface MemoryNsm {
  /** Host A's ServiceLib. */
  readonly a: ServiceLib;
  /** Host B's ServiceLib. */
  readonly b: ServiceLib;
  /** The driver loop. */
  readonly runtime: NsmRuntime;
  /** Resolves when the loop ended. */
  readonly done: Promise<void>;
  /** Stops the loop, resets every guest socket; returns the statistics. */
  stop(): Promise<Record<string, unknown>>;
}

/** Starts two stacks on a memory wire with a ServiceLib each (see the module comment). */
export async function startMemoryNsm(
  o: MemoryNsmArgs,
  log: (line: string) => void = () => {},
): Promise<MemoryNsm> {
  const [la, lb] = memoryWire({ mtu: o.mtu, queueFrames: 8192 });
  const a = createTcpipHost(la, { ipv4: "198.18.0.1/24", ipv6: "fd00::1/64" });
  const b = createTcpipHost(lb, { ipv4: "198.18.0.2/24", ipv6: "fd00::2/64" });
  const common: ServiceLibOptions = {
    log,
    ...(o.maxSockets !== undefined ? { maxSocketsPerGuest: o.maxSockets } : {}),
    ...(o.stallMs !== undefined ? { stallNs: o.stallMs * 1e6 } : {}),
  };
  const slA = new ServiceLib(a.backend, { ...common, ctlPath: o.ctl });
  const slB = new ServiceLib(b.backend, { ...common, ctlPath: o.peerCtl });
  await slA.listen();
  await slB.listen();
  const hostB: Pollable = {
    name: "host-b",
    poll(now: number): boolean {
      let busy = b.iface.poll(now);
      if (slB.poll(now)) busy = true;
      lb.flush();
      return busy;
    },
    pollAt(): number {
      const x = b.iface.pollAt(), y = slB.pollAt();
      return x < y ? x : y;
    },
  };
  const rt = new NsmRuntime(slA.wrapLink(la, [slB]), a.iface);
  rt.add(slA);
  rt.add(hostB);
  const done = rt.run();
  return {
    a: slA,
    b: slB,
    runtime: rt,
    done,
    async stop(): Promise<Record<string, unknown>> {
      rt.stop();
      await done;
      const now = monotonicNow();
      slA.close(now);
      slB.close(now);
      a.iface.poll(now);
      b.iface.poll(now);
      la.flush();
      lb.flush();
      return {
        loop: rt.stats,
        a: slA.stats,
        b: slB.stats,
        tcpInternalErrors: a.tcp.counters.internalErrors + b.tcp.counters.internalErrors,
      };
    },
  };
}

async function main(args: string[]): Promise<number> {
  let o: MemoryNsmArgs;
  try {
    o = parseMemoryNsmArgs(args);
  } catch (e) {
    console.error(`memory_nsm: ${(e as Error).message}`);
    return 2;
  }
  const nsm = await startMemoryNsm(o, (line) => console.error(`memory_nsm: ${line}`));
  const stop = (): void => nsm.runtime.stop();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  console.log(`ready ctl=${o.ctl} peer-ctl=${o.peerCtl} mtu=${o.mtu}`);
  await nsm.done;
  console.log(`stopped ${JSON.stringify(await nsm.stop())}`);
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
