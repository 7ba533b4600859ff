/**
 * `deno task ctl`: the operator's command line for a running NSM, speaking the control
 * protocol (nsm/control_proto.ts) over the NSM's control socket.
 *
 * ```
 * deno task ctl [--ctl PATH] [--json] conns [--guest G]
 * deno task ctl stats | guests | cc list | sla show
 * deno task ctl cc load FILE.wasm [--name N]
 * deno task ctl cc set NAME (--conn ID | --guest G | --default)
 * deno task ctl sla set GUEST rate=100mbit,burst=64k,min=50mbit,weight=3
 * deno task ctl sla set --link 1gbit [--burst 64k]
 * ```
 *
 * Exit status: 0 done, 1 the NSM refused the command, 2 usage error, 3 no NSM reachable.
 *
 * @module
 */

import { defaultCtlPath } from "./ctl_path.ts";
import {
  type CcEntry,
  type CcSetData,
  ControlClient,
  CtlClientError,
  type GuestData,
  type SlaSetData,
  type SlaShowData,
  type StatsData,
} from "./control_proto.ts";
import type { ConnRow } from "./ops_view.ts";
import { parseRate, parseSize, SlaConfigError } from "./sla.ts";

/** Where `runCtl` writes. */
export interface CtlIo {
  /** Normal output. */
  out(text: string): void;
  /** Errors and notices. */
  err(text: string): void;
}

/** Usage text. */
export const CTL_USAGE = `usage: deno task ctl [--ctl PATH] [--json] COMMAND

commands:
  conns [--guest G]                      connections, like ss -ti
  stats                                  link, IP, TCP, NQE and per-guest counters
  guests                                 attached guests
  cc list                                congestion controls the NSM knows
  cc load FILE.wasm [--name N]           load a congestion-control module
  cc set NAME --conn ID|--guest G|--default
                                         swap congestion control live (ID from ctl conns)
  sla show                               per-guest limits, guarantees and bytes sent
  sla set GUEST SPEC                     SPEC: rate=100mbit,burst=64k,min=50mbit,weight=3
  sla set --link RATE [--burst SIZE]     the link rate guests share

options:
  --ctl PATH   control socket (default: $NSM_CTL, $XDG_RUNTIME_DIR/nsm/ctl.sock,
               /run/nsm/ctl.sock as root, else /tmp/nsm-UID/ctl.sock)
  --json       print the NSM's answer as JSON
  --help       this text
`;

class UsageError extends Error {}

/** Parsed command line. */
export interface CtlArgs {
  /** Socket path. */
  ctl: string;
  /** JSON output. */
  json: boolean;
  /** Protocol command. */
  cmd: string;
  /** Protocol arguments. */
  args: Record<string, unknown>;
}

/** Parses argv; throws with a usage message on mistakes. Returns null for --help. */
export function parseCtlArgs(argv: readonly string[], ctlDefault: string): CtlArgs | null {
  let ctl = ctlDefault;
  let json = false;
  const rest: string[] = [];
  const flags = new Map<string, string | true>();
  const valued = new Set(["--guest", "--name", "--conn", "--link", "--burst", "--ctl"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") return null;
    if (a === "--json") json = true;
    else if (a === "--default") flags.set(a, true);
    else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a : a.slice(0, eq);
      if (!valued.has(name)) throw new UsageError(`unknown option ${name}`);
      const v = eq < 0 ? argv[++i] : a.slice(eq + 1);
      if (v === undefined || v === "") throw new UsageError(`${name} needs a value`);
      if (name === "--ctl") ctl = v;
      else flags.set(name, v);
    } else rest.push(a);
  }
  const guestOf = (v: string | true | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (typeof v !== "string" || !/^[0-9]+$/.test(v)) {
      throw new UsageError(`--guest "${v}" is not a guest id; see ctl guests`);
    }
    return n;
  };
  const allow = (...names: string[]): void => {
    for (const k of flags.keys()) {
      if (!names.includes(k)) throw new UsageError(`${k} does not apply to "${rest.join(" ")}"`);
    }
  };
  const [c0, c1, ...more] = rest;
  const done = (cmd: string, args: Record<string, unknown> = {}): CtlArgs => ({
    ctl,
    json,
    cmd,
    args,
  });
  if (c0 === undefined) throw new UsageError("no command given");
  const noMore = (n: number): void => {
    if (rest.length > n) throw new UsageError(`unexpected "${rest[n]}"`);
  };
  switch (c0) {
    case "conns": {
      allow("--guest");
      noMore(1);
      const g = guestOf(flags.get("--guest"));
      return done("conns", g === undefined ? {} : { guest: g });
    }
    case "stats":
    case "guests":
      allow();
      noMore(1);
      return done(c0);
    case "cc":
      if (c1 === "list") {
        allow();
        noMore(2);
        return done("cc.list");
      }
      if (c1 === "load") {
        allow("--name");
        if (more.length !== 1) throw new UsageError("cc load takes one FILE.wasm");
        const name = flags.get("--name");
        return done("cc.load", name === undefined ? { file: more[0] } : { file: more[0], name });
      }
      if (c1 === "set") {
        allow("--conn", "--guest", "--default");
        if (more.length !== 1) throw new UsageError("cc set takes one NAME (see ctl cc list)");
        const scopes = ["--conn", "--guest", "--default"].filter((k) => flags.has(k));
        if (scopes.length !== 1) {
          throw new UsageError("cc set needs exactly one of --conn ID, --guest G, --default");
        }
        const args: Record<string, unknown> = { name: more[0] };
        if (flags.has("--conn")) args.conn = flags.get("--conn");
        if (flags.has("--guest")) args.guest = guestOf(flags.get("--guest"));
        if (flags.has("--default")) args.default = true;
        return done("cc.set", args);
      }
      throw new UsageError(`unknown cc command "${c1 ?? ""}"; use cc list, cc load or cc set`);
    case "sla":
      if (c1 === "show") {
        allow();
        noMore(2);
        return done("sla.show");
      }
      if (c1 === "set") {
        if (flags.has("--link")) {
          allow("--link", "--burst");
          noMore(2);
          const link: Record<string, number> = {
            rate: parseRate(flags.get("--link") as string),
          };
          const b = flags.get("--burst");
          if (b !== undefined) link.burst = parseSize(b as string);
          return done("sla.set", { link });
        }
        allow();
        if (more.length !== 2) {
          throw new UsageError("sla set takes GUEST SPEC, e.g. sla set 3 rate=100mbit,min=20mbit");
        }
        return done("sla.set", { guest: guestOf(more[0]), spec: more[1] });
      }
      throw new UsageError(`unknown sla command "${c1 ?? ""}"; use sla show or sla set`);
    default:
      throw new UsageError(`unknown command "${c0}"`);
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Bytes/s as ss prints rates: bit/s with a unit. */
export function fmtRate(bytesPerSecond: number): string {
  const b = bytesPerSecond * 8;
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)}Gbps`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)}Mbps`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)}Kbps`;
  return `${Math.round(b)}bps`;
}

function ms(us: number | null): string {
  return us === null ? "-" : (us / 1000).toFixed(3);
}

/** Left-aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** `conns` like `ss -ti`: one line of addresses, one indented line of TCP_INFO. */
export function formatConns(rows: ConnRow[]): string {
  if (rows.length === 0) return "no connections\n";
  const head = ["State", "Guest", "Conn", "Local Address:Port", "Peer Address:Port"];
  const w = head.map((h, i) =>
    Math.max(
      h.length,
      ...rows.map((r) => [r.state, String(r.guest), r.conn, r.local, r.remote][i]!.length),
    )
  );
  const line = (c: string[]): string => c.map((x, i) => x.padEnd(w[i]!)).join("  ").trimEnd();
  const out = [line(head)];
  for (const r of rows) {
    out.push(line([r.state, String(r.guest), r.conn, r.local, r.remote]));
    out.push(
      `\t ${r.cc} mss:${r.mss} rtt:${ms(r.srttUs)}/${ms(r.rttvarUs)} rto:${
        (r.rtoUs / 1000).toFixed(0)
      } cwnd:${r.cwnd} ssthresh:${
        r.ssthresh ?? "-"
      } bytes_sent:${r.bytesSent} bytes_acked:${r.bytesAcked} bytes_received:${r.bytesReceived} retrans:${r.retransmits} pacing_rate ${
        fmtRate(r.pacingRate)
      } delivery_rate ${fmtRate(r.deliveryRate)}`,
    );
  }
  return out.join("\n") + "\n";
}

/** `guests`. */
export function formatGuests(rows: GuestData[]): string {
  if (rows.length === 0) return "no guests attached\n";
  return table(
    [
      "GUEST",
      "PID",
      "SOCKETS",
      "CONNS",
      "TX BYTES",
      "RX BYTES",
      "CC",
      "LIMIT",
      "GUARANTEE",
      "DEVICE",
    ],
    rows.map((g) => [
      String(g.id),
      String(g.pid),
      String(g.sockets),
      String(g.connections),
      g.bytesFromGuest === undefined ? "-" : String(g.bytesFromGuest),
      g.bytesToGuest === undefined ? "-" : String(g.bytesToGuest),
      g.cc ?? "-",
      g.sla === null || g.sla.rate === 0 ? "-" : fmtRate(g.sla.rate),
      g.sla === null || g.sla.minRate === 0 ? "-" : fmtRate(g.sla.minRate),
      g.device,
    ]),
  );
}

/** `cc list`. */
export function formatCcList(rows: CcEntry[]): string {
  return table(
    ["NAME", "DEFAULT", "CONNS", "VERSION", "SOURCE"],
    rows.map((c) => [
      c.name,
      c.default ? "*" : "",
      String(c.connections),
      c.version === null ? "-" : String(c.version),
      c.source,
    ]),
  );
}

/** `sla show`. */
export function formatSla(s: SlaShowData): string {
  const head = `link ${
    s.link.rate === 0 ? "unlimited" : fmtRate(s.link.rate)
  } burst ${s.link.burst}\n`;
  const body = s.guests.length === 0 ? "no guest SLAs\n" : table(
    ["GUEST", "LIMIT", "BURST", "GUARANTEE", "WEIGHT", "SENT BYTES", "THROTTLED", "WAITING"],
    s.guests.map((g) => [
      String(g.guest),
      g.rate === 0 ? "-" : fmtRate(g.rate),
      String(g.burst),
      g.minRate === 0 ? "-" : fmtRate(g.minRate),
      String(g.weight),
      String(g.sentBytes),
      String(g.throttled),
      g.waiting ? "yes" : "no",
    ]),
  );
  return head + body + s.warnings.map((w) => `warning: ${w}\n`).join("");
}

/** `stats`: sections of name/value lines. */
export function formatStats(s: StatsData): string {
  const out: string[] = [];
  for (const i of s.ifaces) {
    out.push(`interface ${i.name}`);
    for (const [layer, v] of Object.entries(i.counters)) {
      out.push(`  ${layer.padEnd(18)} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
    }
    for (const [r, n] of Object.entries(i.drops)) out.push(`  drop ${r.padEnd(13)} ${n}`);
  }
  for (const t of s.tcp) {
    out.push(
      `tcp ${t.name}: ${t.connections} connections, ${t.sockets} sockets, default cc ${t.defaultCc}`,
    );
    for (const [k, v] of Object.entries(t.counters)) out.push(`  ${k.padEnd(18)} ${v}`);
    for (const [r, n] of Object.entries(t.drops)) out.push(`  drop ${r.padEnd(13)} ${n}`);
  }
  if (s.nqe !== null) {
    out.push("nqe");
    for (const [k, v] of Object.entries(s.nqe)) {
      out.push(`  ${k.padEnd(18)} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
    }
  }
  let text = out.join("\n") + "\n";
  text += "guests\n" + formatGuests(s.guests);
  if (s.sla !== null) text += "sla\n" + formatSla(s.sla);
  return text;
}

function formatResult(cmd: string, data: unknown): string {
  switch (cmd) {
    case "conns":
      return formatConns(data as ConnRow[]);
    case "guests":
      return formatGuests(data as GuestData[]);
    case "stats":
      return formatStats(data as StatsData);
    case "cc.list":
      return formatCcList(data as CcEntry[]);
    case "cc.load": {
      const c = data as CcEntry;
      return `loaded ${c.name} (version ${c.version ?? "-"}) from ${c.source}\n`;
    }
    case "cc.set": {
      const d = data as CcSetData;
      const what = d.scope === "default"
        ? `default for new connections is now ${d.name}`
        : `${d.name} on ${d.changed.length} connection(s)${
          d.changed.length > 0 ? ": " + d.changed.join(", ") : ""
        }${d.scope === "guest" ? " (and the guest's new connections)" : ""}`;
      return what + "\n" + d.failed.map((f) => `failed ${f.conn}: ${f.message}\n`).join("");
    }
    case "sla.set": {
      const d = data as SlaSetData;
      const head = d.guest === null
        ? "link updated\n"
        : `guest ${d.guest}: limit ${d.sla!.rate === 0 ? "none" : fmtRate(d.sla!.rate)}, burst ${
          d.sla!.burst
        }, guarantee ${d.sla!.minRate === 0 ? "none" : fmtRate(d.sla!.minRate)}, weight ${
          d.sla!.weight
        }\n`;
      return head + d.warnings.map((w) => `warning: ${w}\n`).join("");
    }
    case "sla.show":
      return formatSla(data as SlaShowData);
    default:
      return JSON.stringify(data, null, 2) + "\n";
  }
}

/** Runs one ctl command; returns the exit status. */
export async function runCtl(
  argv: readonly string[],
  io: CtlIo,
  ctlDefault?: string,
): Promise<number> {
  let a: CtlArgs | null;
  try {
    a = parseCtlArgs(argv, ctlDefault ?? defaultCtlPath());
  } catch (e) {
    if (e instanceof UsageError || e instanceof SlaConfigError) {
      io.err(`error: ${e.message}\n\n${CTL_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (a === null) {
    io.out(CTL_USAGE);
    return 0;
  }
  let client: ControlClient;
  try {
    client = await ControlClient.connect(a.ctl);
  } catch (e) {
    io.err(`error: ${(e as Error).message}\n`);
    return 3;
  }
  try {
    const data = await client.request(a.cmd, a.args);
    io.out(a.json ? JSON.stringify(data, null, 2) + "\n" : formatResult(a.cmd, data));
    return 0;
  } catch (e) {
    if (e instanceof CtlClientError) {
      if (a.json) io.out(JSON.stringify({ error: { code: e.code, message: e.message } }) + "\n");
      io.err(`error: ${e.message}\n`);
      return e.code === "closed" ? 3 : 1;
    }
    throw e;
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  const enc = new TextEncoder();
  const write = (f: { writeSync(b: Uint8Array): number }, t: string): void => {
    const b = enc.encode(t);
    for (let off = 0; off < b.length;) off += f.writeSync(b.subarray(off));
  };
  const code = await runCtl(Deno.args, {
    out: (t) => write(Deno.stdout, t),
    err: (t) => write(Deno.stderr, t),
  });
  Deno.exit(code);
}
