/**
 * The operator control protocol: what `deno task ctl` speaks to a running NSM over its UNIX
 * control socket (`--ctl PATH`, the same socket guests attach through).
 *
 * Framing: newline-delimited JSON, one object per line (at most `MAX_LINE` bytes), UTF-8.
 * The client speaks first; its first line tells the NSM what the connection is:
 *
 * ```
 * guest:    {"v":1,"type":"attach"[,"pid":123]}            -> {"guest":7,"device":"/dev/shm/...","version":1}
 * operator: {"v":1,"type":"op","id":1,"cmd":"conns","args":{"guest":7}}
 *        <- {"v":1,"type":"result","id":1,"ok":true,"data":[...]}
 *        <- {"v":1,"type":"result","id":2,"ok":false,"error":{"code":"unknown-cc","message":"..."}}
 * ```
 *
 * `classifyHello(firstLine)` makes that decision for the ServiceLib's accept loop; an operator
 * connection is then handed to `ControlServer.serveConnection(conn, firstLine)` and may send
 * any number of requests, answered in order. Commands (`cmd`, `args`):
 *
 * | cmd        | args                                                | data                          |
 * | ---------- | --------------------------------------------------- | ----------------------------- |
 * | `conns`    | `guest?`                                            | `ConnRow[]` (like `ss -ti`)   |
 * | `stats`    | -                                                   | `StatsData`                   |
 * | `guests`   | -                                                   | `GuestData[]`                 |
 * | `cc.list`  | -                                                   | `CcEntry[]`                   |
 * | `cc.load`  | `file`, `name?`                                     | `CcEntry`                     |
 * | `cc.set`   | `name` and one of `conn` / `guest` / `default:true` | `CcSetData`                   |
 * | `sla.set`  | `guest` + `rate?,burst?,minRate?,weight?` or `spec` | `SlaSetData`; or `link:{...}` |
 * | `sla.show` | -                                                   | `SlaShowData`                 |
 *
 * Errors carry a `code` and a message that says what to do.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import type { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import { registeredCcNames } from "../stacks/tcpip/tcp/recovery/cc.ts";
import type { CcHost } from "../cc/host.ts";
import {
  type ConnRow,
  connRow,
  type GuestRow,
  type GuestTable,
  type NqeTotals,
  StaticGuestTable,
} from "./ops_view.ts";
import {
  type EgressScheduler,
  type GuestSla,
  type GuestSlaStatus,
  parseSla,
  type ResolvedSla,
  SlaConfigError,
} from "./sla.ts";

/** Protocol version in every envelope (`v`). */
export const CTL_PROTO_VERSION = 1;
/** Longest line either side accepts, bytes. */
export const MAX_LINE = 1 << 20;

/** Command names. */
export const CTL_COMMANDS = [
  "conns",
  "stats",
  "guests",
  "cc.list",
  "cc.load",
  "cc.set",
  "sla.set",
  "sla.show",
] as const;
/** A command name. */
export type CtlCommand = typeof CTL_COMMANDS[number];

/** An operator request line. */
export interface CtlRequest {
  /** Protocol version (1). */
  v: number;
  /** Always "op" for operator requests. */
  type: "op";
  /** Client-chosen id echoed in the response. */
  id: number;
  /** Command. */
  cmd: string;
  /** Command arguments. */
  args?: Record<string, unknown>;
}

/** Error codes. */
export type CtlErrorCode =
  | "bad-request"
  | "unknown-command"
  | "unknown-cc"
  | "no-such-conn"
  | "no-such-guest"
  | "cc-load-failed"
  | "cc-set-failed"
  | "bad-sla"
  | "not-available";

/** A response line. */
export type CtlResponse =
  | { v: number; type: "result"; id: number | null; ok: true; data: unknown }
  | {
    v: number;
    type: "result";
    id: number | null;
    ok: false;
    error: { code: CtlErrorCode; message: string };
  };

/** The guest attach line (for the GuestLib; answered by the ServiceLib, not here). */
export interface AttachHello {
  /** Protocol version (1). */
  v: number;
  /** Always "attach". */
  type: "attach";
  /** The guest's process id, if it wants to say. */
  pid?: number;
}

/**
 * What a connection's first line asks for: `"op"` (hand it to `ControlServer`), `"attach"`
 * (a guest), or `"invalid"` (answer with an error line and close).
 */
export function classifyHello(line: string): "op" | "attach" | "invalid" {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return "invalid";
  }
  if (typeof o !== "object" || o === null) return "invalid";
  const t = (o as { type?: unknown }).type;
  if (t === "op") return "op";
  if (t === "attach") return "attach";
  return "invalid";
}

/** A connection's data as `ctl conns` shows it. */
export type { ConnRow };

/** One guest in `ctl guests`. */
export interface GuestData extends GuestRow {
  /** TCP connections the guest has now. */
  connections: number;
  /** Congestion control new connections of this guest get, if set by `cc set --guest`. */
  cc: string | null;
  /** Its SLA, if any. */
  sla: GuestSlaStatus | null;
}

/** `ctl stats`. */
export interface StatsData {
  /** Interfaces: per-layer counters and drops by reason. */
  ifaces: { name: string; counters: Record<string, unknown>; drops: Record<string, number> }[];
  /** TCP stacks: event counters, drops by reason, connection and socket counts. */
  tcp: {
    name: string;
    counters: Record<string, number>;
    drops: Record<string, number>;
    connections: number;
    sockets: number;
    defaultCc: string;
  }[];
  /** NQE transport totals (null without a ServiceLib). */
  nqe: NqeTotals | null;
  /** Guests. */
  guests: GuestData[];
  /** SLA scheduler state (null without one). */
  sla: SlaShowData | null;
}

/** A congestion control in `ctl cc list`. */
export interface CcEntry {
  /** Registry name (what `cc set` takes). */
  name: string;
  /**
   * "builtin", the file it was loaded from by `cc load`, "wasm" (a module of the NSM's CC host
   * loaded otherwise, e.g. at start), or "registered" (registered in code).
   */
  source: string;
  /** Module version for WebAssembly modules, else null. */
  version: number | null;
  /** True for the stacks' default. */
  default: boolean;
  /** Connections using it now. */
  connections: number;
}

/** `ctl cc set`. */
export interface CcSetData {
  /** The algorithm now in force. */
  name: string;
  /** Connections swapped live. */
  changed: string[];
  /** Connections that could not be swapped, with why. */
  failed: { conn: string; message: string }[];
  /** What the setting applies to. */
  scope: "conn" | "guest" | "default";
}

/** `ctl sla set`. */
export interface SlaSetData {
  /** The guest (null for a link change). */
  guest: number | null;
  /** The SLA now in force (null for a link change). */
  sla: ResolvedSla | null;
  /** Guarantees that cannot be met, if any. */
  warnings: string[];
}

/** `ctl sla show`. */
export interface SlaShowData {
  /** The shared link. */
  link: { rate: number; burst: number };
  /** Per guest. */
  guests: GuestSlaStatus[];
  /** Current warnings. */
  warnings: string[];
}

/** Loads congestion-control modules for `cc load` (see `CcHostLoader`). */
export interface CcLoader {
  /** Loads `file` and registers it as `name` (default: its own name). Throws with advice. */
  load(file: string, name?: string): Promise<{ name: string; version: number }>;
  /** The module behind a registered name, if this loader knows it (for `cc list`). */
  describe?(name: string): { version: number } | undefined;
}

/** A `CcLoader` over the NSM's `CcHost` (validated, sandboxed WebAssembly modules). */
export class CcHostLoader implements CcLoader {
  /** Wraps `host`. */
  constructor(readonly host: CcHost) {}
  /** Loads and registers a module file. */
  async load(file: string, name?: string): Promise<{ name: string; version: number }> {
    const m = await this.host.loadAndRegister(file, name);
    return { name: name ?? m.name, version: m.version };
  }
  /** Version of the module registered as `name` (loaded at start or by `cc load`). */
  describe(name: string): { version: number } | undefined {
    const m = this.host.module(name);
    return m === undefined ? undefined : { version: m.version };
  }
}

/** The NSM objects the handler works on. Everything but `stacks` is optional. */
export interface ControlDeps {
  /** TCP stacks by name (connection ids are `<name>:<socket id>`). */
  stacks: readonly { name: string; tcp: TcpStack }[];
  /** Interfaces by name (for `stats`). */
  ifaces?: readonly { name: string; iface: Interface }[];
  /** The ServiceLib's guests and connections (default: none). */
  guests?: GuestTable;
  /** NQE transport totals (ServiceLib stats). */
  nqe?: () => NqeTotals;
  /** The SLA scheduler. */
  sla?: EgressScheduler;
  /** Module loader for `cc load`. */
  cc?: CcLoader;
  /** The driver loop's clock, ns (time for live swaps and SLA changes). */
  clock: () => Instant;
  /** Called after a command changed something the driver loop must act on (wake it). */
  onChange?: () => void;
}

/** A command failure; becomes `{ok:false, error:{code, message}}`. */
export class CtlError extends Error {
  /** Creates the error; the message says what to do. */
  constructor(readonly code: CtlErrorCode, message: string) {
    super(message);
    this.name = "CtlError";
  }
}

function num(args: Record<string, unknown>, key: string, what: string): number | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new CtlError("bad-request", `${key} must be a number (${what})`);
  }
  return v;
}

function str(args: Record<string, unknown>, key: string): string | undefined {
  const v = args[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") {
    throw new CtlError("bad-request", `${key} must be a non-empty string`);
  }
  return v;
}

/**
 * Serves operator commands on the NSM's objects. `handle()` is what the socket server calls;
 * the NSM may also call it directly. Commands run between driver-loop iterations (the
 * handler is called from Deno's event loop, like every other callback of the single-threaded
 * NSM), so they see consistent state.
 */
export class ControlHandler {
  readonly #d: ControlDeps;
  readonly #guests: GuestTable;
  readonly #guestCc = new Map<number, string>();
  readonly #sources = new Map<string, { source: string; version: number | null }>();

  /** A handler over `deps`. */
  constructor(deps: ControlDeps) {
    this.#d = deps;
    this.#guests = deps.guests ?? new StaticGuestTable();
  }

  /**
   * The congestion control `cc set --guest G` chose for guest G's new connections (the
   * ServiceLib applies it at socket creation), or undefined.
   */
  guestCc(guest: number): string | undefined {
    return this.#guestCc.get(guest);
  }

  /** Forgets per-guest settings of a guest that detached. */
  guestDetached(guest: number): void {
    this.#guestCc.delete(guest);
  }

  /** Handles one request; never throws. */
  async handle(req: unknown): Promise<CtlResponse> {
    const id = typeof (req as { id?: unknown })?.id === "number" ? (req as CtlRequest).id : null;
    try {
      const data = await this.#dispatch(req);
      return { v: CTL_PROTO_VERSION, type: "result", id, ok: true, data };
    } catch (e) {
      const err = e instanceof CtlError ? e : new CtlError(
        "bad-request",
        `internal error: ${e instanceof Error ? e.message : String(e)}; report it with the request`,
      );
      return {
        v: CTL_PROTO_VERSION,
        type: "result",
        id,
        ok: false,
        error: { code: err.code, message: err.message },
      };
    }
  }

  async #dispatch(req: unknown): Promise<unknown> {
    if (typeof req !== "object" || req === null) {
      throw new CtlError("bad-request", 'send one JSON object per line: {"v":1,"type":"op",...}');
    }
    const r = req as Partial<CtlRequest>;
    if (r.v !== CTL_PROTO_VERSION || r.type !== "op") {
      throw new CtlError(
        "bad-request",
        `this NSM speaks control protocol v${CTL_PROTO_VERSION}: send {"v":1,"type":"op","id":N,"cmd":...}`,
      );
    }
    const args = r.args ?? {};
    if (typeof args !== "object" || args === null || Array.isArray(args)) {
      throw new CtlError("bad-request", "args must be a JSON object");
    }
    switch (r.cmd) {
      case "conns":
        return this.conns(num(args, "guest", "a guest id"));
      case "stats":
        return this.stats();
      case "guests":
        return this.guestList();
      case "cc.list":
        return this.ccList();
      case "cc.load": {
        const file = str(args, "file");
        if (file === undefined) {
          throw new CtlError("bad-request", "cc load needs a file: ctl cc load ./my_cc.wasm");
        }
        return await this.ccLoad(file, str(args, "name"));
      }
      case "cc.set":
        return this.ccSet(args);
      case "sla.set":
        return this.slaSet(args);
      case "sla.show":
        return this.slaShow();
      default:
        throw new CtlError(
          "unknown-command",
          `unknown command "${r.cmd}"; commands are: ${CTL_COMMANDS.join(", ")}`,
        );
    }
  }

  #stackName(tcp: TcpStack): string {
    return this.#d.stacks.find((s) => s.tcp === tcp)?.name ?? "tcp";
  }

  /** `conns`: one row per connection, optionally of one guest, sorted by guest then id. */
  conns(guest?: number): ConnRow[] {
    const rows: ConnRow[] = [];
    for (const ref of this.#guests.connections()) {
      if (guest !== undefined && ref.guest !== guest) continue;
      const r = connRow(ref, this.#stackName(ref.stack));
      if (r !== null) rows.push(r);
    }
    return rows.sort((a, b) => a.guest - b.guest || a.conn.localeCompare(b.conn));
  }

  /** `guests`. */
  guestList(): GuestData[] {
    const conns = this.#guests.connections();
    const status = this.#d.sla?.status(this.#d.clock()) ?? [];
    return this.#guests.guests().map((g) => ({
      ...g,
      connections: conns.filter((c) => c.guest === g.id).length,
      cc: this.#guestCc.get(g.id) ?? null,
      sla: status.find((s) => s.guest === g.id) ?? null,
    })).sort((a, b) => a.id - b.id);
  }

  /** `stats`. */
  stats(): StatsData {
    return {
      ifaces: (this.#d.ifaces ?? []).map(({ name, iface }) => ({
        name,
        counters: iface.counters.snapshot(),
        drops: iface.drops.snapshot(),
      })),
      tcp: this.#d.stacks.map(({ name, tcp }) => {
        const c = tcp.counters;
        return {
          name,
          counters: {
            segmentsIn: c.segmentsIn,
            segmentsOut: c.segmentsOut,
            retransmits: c.retransmits,
            resetsSent: c.resetsSent,
            challengeAcks: c.challengeAcks,
            cookiesSent: c.cookiesSent,
            cookiesAccepted: c.cookiesAccepted,
            outputFailures: c.outputFailures,
            internalErrors: c.internalErrors,
          },
          drops: c.snapshot(),
          connections: tcp.connectionCount,
          sockets: tcp.socketCount,
          defaultCc: tcp.config.socket.congestionControl,
        };
      }),
      nqe: this.#d.nqe?.() ?? null,
      guests: this.guestList(),
      sla: this.#d.sla === undefined ? null : this.slaShow(),
    };
  }

  /** `cc.list`: every registered algorithm, with where it came from and who uses it. */
  ccList(): CcEntry[] {
    const defaults = new Set(this.#d.stacks.map((s) => s.tcp.config.socket.congestionControl));
    const use = new Map<string, number>();
    for (const r of this.conns()) use.set(r.cc, (use.get(r.cc) ?? 0) + 1);
    return registeredCcNames().sort().map((name) => {
      const src = this.#sources.get(name);
      const mod = src === undefined ? this.#d.cc?.describe?.(name) : undefined;
      return {
        name,
        source: src?.source ?? (name === "reno" ? "builtin" : mod ? "wasm" : "registered"),
        version: src?.version ?? mod?.version ?? null,
        default: defaults.has(name),
        connections: use.get(name) ?? 0,
      };
    });
  }

  /** `cc.load`: loads and registers a WebAssembly module. */
  async ccLoad(file: string, name?: string): Promise<CcEntry> {
    const loader = this.#d.cc;
    if (loader === undefined) {
      throw new CtlError(
        "not-available",
        "this NSM has no congestion-control host; start it with WebAssembly CC support",
      );
    }
    if (name !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) {
      throw new CtlError("bad-request", `--name "${name}" must be 1-64 of [A-Za-z0-9_.:-]`);
    }
    let got;
    try {
      got = await loader.load(file, name);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      const hint = e instanceof Deno.errors.NotFound
        ? "; give a path the NSM can read (relative paths are from the NSM's directory)"
        : "; check the module against cc/README.md (build with deno task build:cc)";
      throw new CtlError("cc-load-failed", `cannot load ${file}: ${why}${hint}`);
    }
    this.#sources.set(got.name, { source: file, version: got.version });
    return this.ccList().find((c) => c.name === got.name)!;
  }

  /** `cc.set`: swaps live (`conn`, `guest`) or sets the default for new connections. */
  ccSet(args: Record<string, unknown>): CcSetData {
    const name = str(args, "name");
    if (name === undefined) {
      throw new CtlError("bad-request", "cc set needs a name: ctl cc set cubic --conn tcp:5");
    }
    const known = registeredCcNames();
    if (!known.includes(name)) {
      throw new CtlError(
        "unknown-cc",
        `congestion control "${name}" is not loaded; load it with ctl cc load FILE.wasm --name ` +
          `${name}, or use one of: ${known.sort().join(", ")}`,
      );
    }
    const conn = str(args, "conn");
    const guest = num(args, "guest", "a guest id");
    const dflt = args.default === true;
    if ((conn !== undefined ? 1 : 0) + (guest !== undefined ? 1 : 0) + (dflt ? 1 : 0) !== 1) {
      throw new CtlError(
        "bad-request",
        "say where: exactly one of --conn ID (see ctl conns), --guest G or --default",
      );
    }
    const now = this.#d.clock();
    const out: CcSetData = { name, changed: [], failed: [], scope: "default" };
    const swap = (tcp: TcpStack, id: number, label: string): void => {
      try {
        tcp.setOption(id, "congestionControl", name, now);
        out.changed.push(label);
      } catch (e) {
        out.failed.push({ conn: label, message: e instanceof Error ? e.message : String(e) });
      }
    };
    if (conn !== undefined) {
      out.scope = "conn";
      const m = /^(.*):([0-9]+)$/.exec(conn);
      const st = m === null ? undefined : this.#d.stacks.find((s) => s.name === m[1]);
      const id = m === null ? -1 : Number(m[2]);
      if (st === undefined || st.tcp.tcbOf(id) === null) {
        throw new CtlError(
          "no-such-conn",
          `no connection "${conn}"; ids look like tcp:12, see ctl conns`,
        );
      }
      swap(st.tcp, id, conn);
      if (out.failed.length > 0) throw new CtlError("cc-set-failed", out.failed[0]!.message);
    } else if (guest !== undefined) {
      out.scope = "guest";
      const refs = this.#guests.connections().filter((c) => c.guest === guest);
      const exists = this.#guests.guests().some((g) => g.id === guest);
      if (!exists && refs.length === 0) {
        throw new CtlError("no-such-guest", `no guest ${guest}; see ctl guests`);
      }
      this.#guestCc.set(guest, name);
      for (const r of refs) swap(r.stack, r.id, `${this.#stackName(r.stack)}:${r.id}`);
    } else {
      for (const s of this.#d.stacks) s.tcp.config.socket.congestionControl = name;
    }
    this.#d.onChange?.();
    return out;
  }

  #sched(): EgressScheduler {
    const s = this.#d.sla;
    if (s === undefined) {
      throw new CtlError(
        "not-available",
        "this NSM runs without SLAs; start it with --sla-link RATE to enable them",
      );
    }
    return s;
  }

  /** `sla.set`: a guest's SLA (fields or `spec`), or the shared link (`link:{rate,burst}`). */
  slaSet(args: Record<string, unknown>): SlaSetData {
    const s = this.#sched();
    const now = this.#d.clock();
    try {
      if (args.link !== undefined) {
        const l = args.link as Record<string, unknown>;
        if (typeof l !== "object" || l === null) {
          throw new CtlError("bad-request", "link must be {rate, burst}");
        }
        const rate = num(l, "rate", "bytes/s") ?? s.link.rate;
        const burst = num(l, "burst", "bytes") ?? s.link.burst;
        const warnings = s.setLink(rate, burst, now);
        this.#d.onChange?.();
        return { guest: null, sla: null, warnings };
      }
      const guest = num(args, "guest", "a guest id");
      if (guest === undefined) {
        throw new CtlError("bad-request", "sla set needs a guest: ctl sla set 3 rate=100mbit");
      }
      const spec = str(args, "spec");
      const sla: GuestSla = spec !== undefined ? parseSla(spec) : {};
      for (const k of ["rate", "burst", "minRate", "weight"] as const) {
        const v = num(args, k, "see ctl sla set --help");
        if (v !== undefined) sla[k] = v;
      }
      const warnings = s.setGuest(guest, sla, now);
      this.#d.onChange?.();
      return { guest, sla: s.sla(guest), warnings };
    } catch (e) {
      if (e instanceof SlaConfigError) throw new CtlError("bad-sla", e.message);
      throw e;
    }
  }

  /** `sla.show`. */
  slaShow(): SlaShowData {
    const s = this.#sched();
    return {
      link: { rate: s.link.rate, burst: s.link.burst },
      guests: s.status(this.#d.clock()),
      warnings: s.warnings(),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Line framing over a Deno.Conn

/** Reads newline-terminated lines from a connection (at most `MAX_LINE` bytes each). */
export class LineReader {
  readonly #conn: Deno.Conn;
  readonly #dec = new TextDecoder();
  readonly #buf = new Uint8Array(65536);
  #pending = "";

  /** Reads from `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next line without its newline, or null at EOF. Throws `CtlError` for an endless line. */
  async next(): Promise<string | null> {
    for (;;) {
      const nl = this.#pending.indexOf("\n");
      if (nl >= 0) {
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        return line;
      }
      if (this.#pending.length > MAX_LINE) {
        throw new CtlError("bad-request", `line longer than ${MAX_LINE} bytes`);
      }
      let n: number | null;
      try {
        n = await this.#conn.read(this.#buf);
      } catch {
        n = null;
      }
      if (n === null) {
        const rest = this.#pending;
        this.#pending = "";
        return rest.trim() === "" ? null : rest;
      }
      this.#pending += this.#dec.decode(this.#buf.subarray(0, n), { stream: true });
    }
  }
}

async function writeLine(conn: Deno.Conn, obj: unknown): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(obj) + "\n");
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * Serves operator connections with a `ControlHandler`: mounted by the ServiceLib on the shared
 * control socket (`serveConnection(conn, firstLine)` after `classifyHello` said "op"), or
 * standalone on its own path (`listen`).
 */
export class ControlServer {
  #listener: Deno.Listener | null = null;
  readonly #conns = new Set<Deno.Conn>();
  /** Requests answered. */
  requests = 0;

  /** Serves `handler`. */
  constructor(readonly handler: ControlHandler) {}

  /**
   * Answers requests on `conn` until EOF. `firstLine` is a line already read from it (by
   * `classifyHello`'s caller), and `reader` the `LineReader` that read it, so bytes it
   * buffered after that line (pipelined requests) are not lost.
   */
  async serveConnection(conn: Deno.Conn, firstLine?: string, reader?: LineReader): Promise<void> {
    this.#conns.add(conn);
    reader ??= new LineReader(conn);
    try {
      let line: string | null = firstLine ?? await reader.next();
      while (line !== null) {
        if (line.trim() !== "") {
          let req: unknown;
          let res: CtlResponse;
          try {
            req = JSON.parse(line);
            res = await this.handler.handle(req);
          } catch {
            res = {
              v: CTL_PROTO_VERSION,
              type: "result",
              id: null,
              ok: false,
              error: {
                code: "bad-request",
                message: "the line is not JSON; send one object per line",
              },
            };
          }
          this.requests++;
          await writeLine(conn, res);
        }
        line = await reader.next();
      }
    } catch {
      // peer gone or line too long: drop the connection
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  /**
   * Listens on its own UNIX socket `path` (when the NSM runs without a ServiceLib, and in
   * tests). A stale socket file is replaced. Connections whose first line is an attach get an
   * error telling the guest where to attach.
   */
  listen(path: string): void {
    try {
      Deno.removeSync(path);
    } catch {
      // none there
    }
    const l = Deno.listen({ transport: "unix", path });
    this.#listener = l;
    (async () => {
      for (;;) {
        let c: Deno.Conn;
        try {
          c = await l.accept();
        } catch {
          return;
        }
        this.serveConnection(c);
      }
    })();
  }

  /** Stops listening and closes every operator connection. */
  close(): void {
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    this.#listener = null;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    this.#conns.clear();
  }
}

/** Thrown by `ControlClient` for a failed command (`code` from the NSM) or no NSM. */
export class CtlClientError extends Error {
  /** Creates the error. */
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "CtlClientError";
  }
}

/** The operator side: one connection, requests answered in order. */
export class ControlClient {
  readonly #conn: Deno.Conn;
  readonly #reader: LineReader;
  #nextId = 1;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reader = new LineReader(conn);
  }

  /** Connects to the NSM's control socket; the error says how to find or start one. */
  static async connect(path: string): Promise<ControlClient> {
    try {
      return new ControlClient(await Deno.connect({ transport: "unix", path }));
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "no such socket"
        : e instanceof Deno.errors.ConnectionRefused
        ? "nobody listens there"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied (run as the NSM's user or root)"
        : e instanceof Error
        ? e.message
        : String(e);
      throw new CtlClientError(
        "no-nsm",
        `cannot reach the NSM at ${path}: ${why}; start it with deno task nsm, or pass --ctl PATH ` +
          `(or set NSM_CTL) to the socket it serves`,
      );
    }
  }

  /** Sends `cmd` with `args` and returns `data`; throws `CtlClientError` on `ok:false`. */
  async request<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    await writeLine(this.#conn, { v: CTL_PROTO_VERSION, type: "op", id, cmd, args });
    const line = await this.#reader.next();
    if (line === null) {
      throw new CtlClientError(
        "closed",
        "the NSM closed the control connection; is it shutting down?",
      );
    }
    const res = JSON.parse(line) as CtlResponse;
    if (!res.ok) throw new CtlClientError(res.error.code, res.error.message);
    if (res.id !== id) throw new CtlClientError("bad-response", `response id ${res.id} != ${id}`);
    return res.data as T;
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
