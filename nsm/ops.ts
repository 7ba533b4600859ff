/**
 * One call that mounts the operator pieces on a running NSM: the SLA scheduler (from
 * `--sla-link`/`--sla`), the control handler and server (`ctl`), and the metrics registry
 * with every collector plus its HTTP endpoint (`--metrics`). `parseOpsFlags` takes these flags
 * out of the NSM's argv so nsm/cli.ts only has to forward the rest to its own parser.
 *
 * ```ts
 * const { flags, rest } = parseOpsFlags(Deno.args);
 * const ops = NsmOps.start({ flags, stacks: [{ name: "tcp", tcp }], ifaces: [{ name: "xdp0", iface }],
 *   guests: serviceLibView, nqe: () => serviceLib.stats, ccHost, clock: monotonicNow });
 * // shared control socket: in the accept loop
 * await dispatchShared(conn, ops.server, (conn, hello, reader) => attachGuest(conn, hello));
 * // guests come and go
 * ops.guestAttached(id, now); ops.guestDetached(id);
 * // transmit path: ops.sla (null without SLAs), see nsm/sla.ts
 * await ops.close();
 * ```
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import type { CcHost } from "../cc/host.ts";
import {
  type AttachHello,
  CcHostLoader,
  classifyHello,
  type ControlDeps,
  ControlHandler,
  ControlServer,
  CTL_PROTO_VERSION,
  LineReader,
} from "./control_proto.ts";
import {
  collectConnections,
  collectDevices,
  collectGuests,
  collectInterface,
  collectNqe,
  collectSla,
  collectTcp,
  type DeviceRef,
  MetricsRegistry,
  type MetricsServer,
  serveMetrics,
} from "./metrics.ts";
import {
  EgressScheduler,
  type GuestSla,
  parseRate,
  parseSize,
  parseSla,
  SlaConfigError,
} from "./sla.ts";

/** The operator flags of the NSM. */
export interface OpsFlags {
  /** `--metrics HOST:PORT` (null: no endpoint). */
  metrics: string | null;
  /** `--metrics-allow-remote`. */
  metricsAllowRemote: boolean;
  /** `--sla-link RATE`, bytes/s (null: not given). */
  slaLink: number | null;
  /** `--sla-link-burst SIZE`, bytes (null: default). */
  slaLinkBurst: number | null;
  /** `--sla GUEST:SPEC` entries. */
  slas: Map<number, GuestSla>;
  /** `--sla-default SPEC`: applied to guests without their own `--sla`. */
  slaDefault: GuestSla | null;
}

/** Usage lines for the NSM's help text. */
export const OPS_FLAGS_USAGE = `operator options:
  --metrics HOST:PORT          Prometheus endpoint (loopback only, e.g. 127.0.0.1:9464)
  --metrics-allow-remote       allow a non-loopback --metrics address
  --sla-link RATE              link rate guests share, e.g. 1gbit (enables SLAs)
  --sla-link-burst SIZE        link bucket depth (default 64k)
  --sla GUEST:SPEC             a guest's SLA, e.g. --sla 1:rate=100mbit,min=50mbit (repeatable)
  --sla-default SPEC           SLA of guests without their own --sla
`;

/** Thrown for a bad operator flag; the message says what to write. */
export class OpsFlagError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "OpsFlagError";
  }
}

/**
 * Takes the operator flags out of `argv` (both `--flag value` and `--flag=value`) and returns
 * them with the remaining arguments in order. Throws `OpsFlagError`.
 */
export function parseOpsFlags(argv: readonly string[]): { flags: OpsFlags; rest: string[] } {
  const flags: OpsFlags = {
    metrics: null,
    metricsAllowRemote: false,
    slaLink: null,
    slaLinkBurst: null,
    slas: new Map(),
    slaDefault: null,
  };
  const rest: string[] = [];
  const valued = new Set(["--metrics", "--sla-link", "--sla-link-burst", "--sla", "--sla-default"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--metrics-allow-remote") {
      flags.metricsAllowRemote = true;
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (!valued.has(name)) {
      rest.push(a);
      continue;
    }
    const v = eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === "") throw new OpsFlagError(`${name} needs a value`);
    try {
      if (name === "--metrics") flags.metrics = v;
      else if (name === "--sla-link") flags.slaLink = parseRate(v);
      else if (name === "--sla-link-burst") flags.slaLinkBurst = parseSize(v);
      else if (name === "--sla-default") flags.slaDefault = parseSla(v);
      else {
        const m = /^([0-9]+):(.+)$/.exec(v);
        if (m === null) {
          throw new OpsFlagError(`--sla "${v}" is not GUEST:SPEC; write e.g. --sla 1:rate=100mbit`);
        }
        flags.slas.set(Number(m[1]), parseSla(m[2]!));
      }
    } catch (e) {
      if (e instanceof SlaConfigError) throw new OpsFlagError(`${name}: ${e.message}`);
      throw e;
    }
  }
  return { flags, rest };
}

/** What `NsmOps.start` needs: the handler's dependencies plus flags and the CC host. */
export interface NsmOpsOptions extends Omit<ControlDeps, "sla" | "cc"> {
  /** Parsed operator flags (default: none set). */
  flags?: OpsFlags;
  /** The NSM's WebAssembly CC host (enables `cc load`). */
  ccHost?: CcHost;
  /**
   * A separate operator socket to listen on (when the control socket is not shared with a
   * ServiceLib); null or absent: the caller hands connections to `server` itself.
   */
  ctlPath?: string | null;
  /** The guests' NK devices, for ring/doorbell/data-region metrics. */
  devices?: () => readonly DeviceRef[];
  /** Per-connection metric series at most (default 1000). */
  connectionSeriesLimit?: number;
}

/** The mounted operator pieces; see the module comment. */
export class NsmOps {
  /** The SLA scheduler, or null when no SLA flag was given. */
  readonly sla: EgressScheduler | null;
  /** The control handler. */
  readonly handler: ControlHandler;
  /** The control server (hand operator connections to it). */
  readonly server: ControlServer;
  /** The metrics registry (add your own families to it). */
  readonly registry: MetricsRegistry;
  /** The HTTP endpoint, or null without `--metrics`. */
  readonly metrics: MetricsServer | null;
  readonly #flags: OpsFlags | undefined;

  private constructor(o: NsmOpsOptions) {
    const f = o.flags;
    this.#flags = f;
    const now = o.clock();
    const wantSla = f !== undefined &&
      (f.slaLink !== null || f.slas.size > 0 || f.slaDefault !== null);
    this.sla = wantSla
      ? new EgressScheduler({
        linkRate: f!.slaLink ?? 0,
        ...(f!.slaLinkBurst !== null ? { linkBurst: f!.slaLinkBurst } : {}),
      }, now)
      : null;
    const deps: ControlDeps = { ...o };
    if (this.sla !== null) deps.sla = this.sla;
    if (o.ccHost !== undefined) deps.cc = new CcHostLoader(o.ccHost);
    this.handler = new ControlHandler(deps);
    this.server = new ControlServer(this.handler);
    const reg = new MetricsRegistry();
    this.registry = reg;
    for (const i of o.ifaces ?? []) collectInterface(reg, i.iface, i.name);
    for (const s of o.stacks) collectTcp(reg, s.tcp, s.name);
    if (o.guests !== undefined) {
      const names = new Map(o.stacks.map((s) => [s.tcp, s.name]));
      collectConnections(reg, o.guests, {
        stackName: (t) => names.get(t) ?? "tcp",
        limit: o.connectionSeriesLimit ?? 1000,
      });
      collectGuests(reg, o.guests);
    }
    if (o.nqe !== undefined) collectNqe(reg, o.nqe);
    if (o.devices !== undefined) collectDevices(reg, o.devices);
    if (this.sla !== null) collectSla(reg, this.sla);
    this.metrics = f?.metrics
      ? serveMetrics(reg, f.metrics, { allowRemote: f.metricsAllowRemote, clock: o.clock })
      : null;
    if (o.ctlPath) this.server.listen(o.ctlPath);
  }

  /**
   * Builds and starts everything the flags ask for. Throws `MetricsError` for a refused
   * `--metrics` address and `SlaConfigError` for bad SLA values.
   */
  static start(options: NsmOpsOptions): NsmOps {
    return new NsmOps(options);
  }

  /**
   * A guest attached: gives it its `--sla` (or `--sla-default`) if SLAs are on. Returns
   * warnings from the scheduler (oversubscribed guarantees).
   */
  guestAttached(guest: number, now: Instant): string[] {
    if (this.sla === null) return [];
    const f = this.#flags!;
    return this.sla.setGuest(guest, f.slas.get(guest) ?? f.slaDefault ?? {}, now);
  }

  /** A guest detached: forgets its SLA state and per-guest cc choice. */
  guestDetached(guest: number): void {
    this.sla?.removeGuest(guest);
    this.handler.guestDetached(guest);
  }

  /** Stops the endpoint and the operator connections. */
  async close(): Promise<void> {
    this.server.close();
    await this.metrics?.shutdown();
  }
}

/**
 * For the shared control socket: reads the connection's first line and hands it on. An
 * operator request goes to `server` (which keeps answering on the connection); an attach line
 * goes to `onAttach` with the parsed hello and the reader (bytes after the line stay in it);
 * anything else gets an error line and is closed. Resolves once the connection is dispatched
 * (operators are served in the background). Returns what the line was.
 */
export async function dispatchShared(
  conn: Deno.Conn,
  server: ControlServer,
  onAttach: (conn: Deno.Conn, hello: AttachHello, reader: LineReader) => void | Promise<void>,
): Promise<"op" | "attach" | "invalid"> {
  const reader = new LineReader(conn);
  let line: string | null;
  try {
    line = await reader.next();
  } catch {
    line = null;
  }
  const kind = line === null ? "invalid" : classifyHello(line);
  if (kind === "op") {
    server.serveConnection(conn, line!, reader);
  } else if (kind === "attach") {
    await onAttach(conn, JSON.parse(line!) as AttachHello, reader);
  } else {
    const msg = {
      v: CTL_PROTO_VERSION,
      type: "result",
      id: null,
      ok: false,
      error: {
        code: "bad-request",
        message: 'start with {"v":1,"type":"attach"} (guests) or {"v":1,"type":"op",...} ' +
          "(operators, e.g. deno task ctl)",
      },
    };
    try {
      await conn.write(new TextEncoder().encode(JSON.stringify(msg) + "\n"));
    } catch {
      // peer gone
    }
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
  return kind;
}
