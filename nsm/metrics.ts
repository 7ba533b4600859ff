/**
 * Metrics for operators: a small registry of counters and gauges with labels, rendered in the
 * Prometheus text exposition format 0.0.4 (`# HELP`/`# TYPE` lines, escaped label values,
 * families sorted by name and series by labels, so output is stable), a parser of that format
 * (tests and `ctl`), an HTTP endpoint (`--metrics 127.0.0.1:PORT`, loopback only unless
 * explicitly allowed), and collectors for the NSM's objects: Interface counters and drops,
 * TcpStack counters, per-connection TCP_INFO, NQE transport totals, per-guest bytes and
 * throughput, and SLA state.
 *
 * Collectors run at scrape time (`registry.render(now)`), reading the live counters; nothing
 * is added to packet paths. Time is passed in (`now`, ns) so throughput gauges are testable.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import type { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import type { EgressScheduler } from "./sla.ts";
import type { NsmDevice } from "./device.ts";
import { connRow, type GuestTable, type NqeTotals } from "./ops_view.ts";

/** Metric type in the exposition. */
export type MetricType = "counter" | "gauge";

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Thrown for invalid metric or label names, or a bad `--metrics` address. */
export class MetricsError extends Error {
  /** Creates the error; the message says what to do. */
  constructor(message: string) {
    super(message);
    this.name = "MetricsError";
  }
}

/** Escapes a label value: backslash, double quote and line feed (format 0.0.4). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text: backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value as the format writes it (`+Inf`, `-Inf`, `NaN`, shortest decimal). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** One metric family: a name, help, type and a series per label-value combination. */
export class MetricFamily {
  readonly #series = new Map<string, { values: string[]; value: number }>();

  /** Use `MetricsRegistry.counter/gauge`. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
  ) {}

  #key(labels: Readonly<Record<string, string | number>>): { key: string; values: string[] } {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (v === undefined) {
        throw new MetricsError(`metric ${this.name} needs label "${n}"`);
      }
      return String(v);
    });
    for (const k of Object.keys(labels)) {
      if (!this.labelNames.includes(k)) {
        throw new MetricsError(
          `metric ${this.name} has no label "${k}"; its labels are: ${this.labelNames.join(", ")}`,
        );
      }
    }
    return { key: values.join("\u0000"), values };
  }

  /** Sets the series for `labels` to `value`. */
  set(labels: Readonly<Record<string, string | number>>, value: number): void {
    const { key, values } = this.#key(labels);
    const s = this.#series.get(key);
    if (s !== undefined) s.value = value;
    else this.#series.set(key, { values, value });
  }

  /** Adds `by` (default 1) to the series for `labels`. */
  inc(labels: Readonly<Record<string, string | number>> = {}, by = 1): void {
    if (this.type === "counter" && by < 0) {
      throw new MetricsError(`counter ${this.name} cannot go down; use a gauge`);
    }
    const { key, values } = this.#key(labels);
    const s = this.#series.get(key);
    if (s !== undefined) s.value += by;
    else this.#series.set(key, { values, value: by });
  }

  /** The value for `labels` (undefined if never set). */
  get(labels: Readonly<Record<string, string | number>> = {}): number | undefined {
    return this.#series.get(this.#key(labels).key)?.value;
  }

  /** Drops every series (collectors that rebuild per scrape, e.g. per connection). */
  clear(): void {
    this.#series.clear();
  }

  /** Number of series. */
  get size(): number {
    return this.#series.size;
  }

  /** Appends this family in the text format to `out`. */
  render(out: string[]): void {
    if (this.#series.size === 0) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.type}`);
    const rows: [string, string][] = [];
    for (const s of this.#series.values()) {
      let lbl = "";
      if (this.labelNames.length > 0) {
        lbl = "{" +
          this.labelNames.map((n, i) => `${n}="${escapeLabelValue(s.values[i]!)}"`).join(",") +
          "}";
      }
      rows.push([lbl, `${this.name}${lbl} ${formatValue(s.value)}`]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const r of rows) out.push(r[1]);
  }
}

/** A collector: refreshes families from live objects at scrape time. */
export type Collector = (now: Instant) => void;

/** Families plus collectors; `render(now)` runs the collectors and writes the text format. */
export class MetricsRegistry {
  readonly #families = new Map<string, MetricFamily>();
  readonly #collectors: Collector[] = [];

  /** A counter family (created once; asking again returns the same family). */
  counter(name: string, help: string, labelNames: readonly string[] = []): MetricFamily {
    return this.#family(name, help, "counter", labelNames);
  }

  /** A gauge family (created once; asking again returns the same family). */
  gauge(name: string, help: string, labelNames: readonly string[] = []): MetricFamily {
    return this.#family(name, help, "gauge", labelNames);
  }

  #family(name: string, help: string, type: MetricType, labels: readonly string[]): MetricFamily {
    if (!NAME_RE.test(name)) {
      throw new MetricsError(`metric name "${name}" is invalid; use [a-zA-Z_:][a-zA-Z0-9_:]*`);
    }
    for (const l of labels) {
      if (!LABEL_RE.test(l) || l.startsWith("__")) {
        throw new MetricsError(
          `label name "${l}" is invalid; use [a-zA-Z_][a-zA-Z0-9_]* not starting with __`,
        );
      }
    }
    const old = this.#families.get(name);
    if (old !== undefined) {
      if (old.type !== type || old.labelNames.join(",") !== labels.join(",")) {
        throw new MetricsError(
          `metric ${name} exists as a ${old.type} with labels [${old.labelNames}]; pick another name`,
        );
      }
      return old;
    }
    const f = new MetricFamily(name, help, type, labels);
    this.#families.set(name, f);
    return f;
  }

  /** The family called `name`, if any. */
  family(name: string): MetricFamily | undefined {
    return this.#families.get(name);
  }

  /** Adds a collector run before every render. */
  addCollector(c: Collector): void {
    this.#collectors.push(c);
  }

  /** Runs the collectors and renders every family, sorted by name, in format 0.0.4. */
  render(now: Instant): string {
    for (const c of this.#collectors) c(now);
    const names = [...this.#families.keys()].sort();
    const out: string[] = [];
    for (const n of names) this.#families.get(n)!.render(out);
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}

/** Content type of the 0.0.4 text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One parsed sample. */
export interface ParsedSample {
  /** Sample name. */
  name: string;
  /** Labels. */
  labels: Record<string, string>;
  /** Value. */
  value: number;
}

/** One parsed family. */
export interface ParsedFamily {
  /** HELP text (unescaped). */
  help: string;
  /** TYPE ("untyped" when none was given). */
  type: string;
  /** Samples in order. */
  samples: ParsedSample[];
}

/** Thrown by `parsePrometheusText` with the line number and what is wrong. */
export class ExpositionParseError extends Error {
  /** Creates the error. */
  constructor(readonly line: number, what: string) {
    super(`line ${line}: ${what}`);
    this.name = "ExpositionParseError";
  }
}

function unescape(s: string, quotes: boolean): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = s[++i];
    if (n === "\\") out += "\\";
    else if (n === "n") out += "\n";
    else if (n === '"' && quotes) out += '"';
    else out += "\\" + (n ?? "");
  }
  return out;
}

/**
 * Parses the text format 0.0.4 strictly enough to check our output: HELP/TYPE comments,
 * samples with optional labels (escapes undone) and a value (`+Inf`, `-Inf`, `NaN` too).
 * Throws `ExpositionParseError` naming the line.
 */
export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  const fams = new Map<string, ParsedFamily>();
  const famOf = (name: string): ParsedFamily => {
    let f = fams.get(name);
    if (f === undefined) {
      f = { help: "", type: "untyped", samples: [] };
      fams.set(name, f);
    }
    return f;
  };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const ln = i + 1;
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (m === null) continue; // other comments are allowed
      const f = famOf(m[2]!);
      if (m[1] === "HELP") f.help = unescape(m[3]!, false);
      else {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(m[3]!)) {
          throw new ExpositionParseError(ln, `unknown TYPE "${m[3]}"`);
        }
        if (f.samples.length > 0) throw new ExpositionParseError(ln, "TYPE after samples");
        f.type = m[3]!;
      }
      continue;
    }
    const nm = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (nm === null) throw new ExpositionParseError(ln, "no metric name");
    const name = nm[1]!;
    let p = name.length;
    const labels: Record<string, string> = {};
    if (line[p] === "{") {
      p++;
      for (;;) {
        if (line[p] === "}") {
          p++;
          break;
        }
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/.exec(line.slice(p));
        if (lm === null) throw new ExpositionParseError(ln, `bad label at column ${p + 1}`);
        if (labels[lm[1]!] !== undefined) {
          throw new ExpositionParseError(ln, `label ${lm[1]} twice`);
        }
        labels[lm[1]!] = unescape(lm[2]!, true);
        p += lm[0].length;
        if (line[p] === ",") p++;
        else if (line[p] !== "}") throw new ExpositionParseError(ln, `expected , or } at ${p + 1}`);
      }
    }
    const rest = line.slice(p).trim().split(/\s+/);
    if (line[p] !== " " || rest.length < 1 || rest.length > 2) {
      throw new ExpositionParseError(ln, "expected one space, a value and an optional timestamp");
    }
    const vs = rest[0]!;
    const value = vs === "+Inf"
      ? Infinity
      : vs === "-Inf"
      ? -Infinity
      : vs === "NaN"
      ? NaN
      : Number(vs);
    if (Number.isNaN(value) && vs !== "NaN") {
      throw new ExpositionParseError(ln, `bad value "${vs}"`);
    }
    // Samples belong to the family of their name (no histogram suffixes are used here).
    famOf(name).samples.push({ name, labels, value });
  }
  return fams;
}

// ---------------------------------------------------------------------------------------------
// HTTP endpoint

/** A parsed `--metrics` address. */
export interface ListenAddress {
  /** Host name or address literal (without brackets). */
  hostname: string;
  /** TCP port (0 = any free port). */
  port: number;
}

/** Parses `HOST:PORT` or `[V6]:PORT` (a bare `:PORT` or `PORT` means 127.0.0.1). */
export function parseListenAddress(spec: string): ListenAddress {
  let host = "127.0.0.1";
  let port: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:([0-9]+)$/.exec(spec);
  if (v6 !== null) {
    host = v6[1]!;
    port = v6[2]!;
  } else if (/^[0-9]+$/.test(spec)) {
    port = spec;
  } else {
    const i = spec.lastIndexOf(":");
    if (i < 0 || spec.indexOf(":") !== i) {
      throw new MetricsError(
        `--metrics "${spec}" is not HOST:PORT; write 127.0.0.1:9464 or [::1]:9464`,
      );
    }
    if (i > 0) host = spec.slice(0, i);
    port = spec.slice(i + 1);
  }
  const n = Number(port);
  if (!/^[0-9]+$/.test(port) || n > 65535) {
    throw new MetricsError(
      `--metrics port "${port}" is not in 0..65535; write e.g. 127.0.0.1:9464`,
    );
  }
  return { hostname: host, port: n };
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const m = /^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(host);
  return m !== null && m.slice(1).every((x) => Number(x) <= 255);
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Where it listens. */
  readonly hostname: string;
  /** Bound port. */
  readonly port: number;
  /** URL of the metrics page. */
  readonly url: string;
  /** Scrapes served. */
  readonly scrapes: () => number;
  /** Stops listening. */
  shutdown(): Promise<void>;
}

/** Options of `serveMetrics`. */
export interface ServeMetricsOptions {
  /** Allow a non-loopback address (`--metrics-allow-remote`). Default false. */
  allowRemote?: boolean;
  /** Clock for collectors, ns (default `performance.now()` based; the driver loop's clock). */
  clock?: () => Instant;
}

/**
 * Serves `GET /metrics` with `registry.render()` on `addr` (`--metrics HOST:PORT`). Refuses a
 * non-loopback address unless `allowRemote`: counters name guests and their peers.
 */
export function serveMetrics(
  registry: MetricsRegistry,
  addr: string | ListenAddress,
  options: ServeMetricsOptions = {},
): MetricsServer {
  const a = typeof addr === "string" ? parseListenAddress(addr) : addr;
  if (!isLoopback(a.hostname) && options.allowRemote !== true) {
    throw new MetricsError(
      `--metrics ${a.hostname}:${a.port} is not a loopback address: the metrics name guests and ` +
        `their peers. Use 127.0.0.1:${a.port} (scrape through an SSH tunnel or a local agent), ` +
        `or pass --metrics-allow-remote if this network is trusted`,
    );
  }
  const clock = options.clock ?? ((): Instant => Math.round(performance.now() * 1e6));
  let scrapes = 0;
  const server = Deno.serve({
    hostname: a.hostname,
    port: a.port,
    onListen: () => {},
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path !== "/metrics") {
      return new Response("not found; metrics are at /metrics\n", { status: 404 });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("use GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    scrapes++;
    return new Response(registry.render(clock()), {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    });
  });
  const bound = server.addr as Deno.NetAddr;
  const host = bound.hostname.includes(":") ? `[${bound.hostname}]` : bound.hostname;
  return {
    hostname: bound.hostname,
    port: bound.port,
    url: `http://${host}:${bound.port}/metrics`,
    scrapes: () => scrapes,
    shutdown: () => server.shutdown(),
  };
}

// ---------------------------------------------------------------------------------------------
// Collectors

const LAYERS = ["ethernet", "arp", "ipv4", "ipv6", "icmpv4", "icmpv6", "ndp", "fragments"] as const;

/** Exports an Interface's per-layer packet counters and drops by reason, labelled `iface`. */
export function collectInterface(reg: MetricsRegistry, iface: Interface, name: string): void {
  const packets = reg.counter("nsm_iface_packets_total", "Packets by layer and direction.", [
    "iface",
    "layer",
    "dir",
  ]);
  const drops = reg.counter(
    "nsm_iface_drops_total",
    "Packets dropped by the interface, by reason.",
    [
      "iface",
      "reason",
    ],
  );
  const delivered = reg.counter(
    "nsm_iface_delivered_total",
    "Transport payloads handed to protocol handlers.",
    ["iface"],
  );
  const icmpErr = reg.counter("nsm_iface_icmp_errors_total", "ICMP errors by event.", [
    "iface",
    "event",
  ]);
  reg.addCollector(() => {
    const c = iface.counters;
    for (const l of LAYERS) {
      packets.set({ iface: name, layer: l, dir: "rx" }, c[l].rx);
      packets.set({ iface: name, layer: l, dir: "tx" }, c[l].tx);
    }
    delivered.set({ iface: name }, c.delivered);
    icmpErr.set({ iface: name, event: "sent" }, c.icmpErrors.sent);
    icmpErr.set({ iface: name, event: "rate_limited" }, c.icmpErrors.rateLimited);
    icmpErr.set({ iface: name, event: "received" }, c.icmpErrors.received);
    for (const [reason, n] of Object.entries(iface.drops.snapshot())) {
      drops.set({ iface: name, reason }, n);
    }
  });
}

/** Exports a TcpStack's counters and drops by reason, labelled `stack`. */
export function collectTcp(reg: MetricsRegistry, tcp: TcpStack, name: string): void {
  const events = reg.counter("nsm_tcp_events_total", "TCP stack events.", ["stack", "event"]);
  const drops = reg.counter("nsm_tcp_drops_total", "TCP segments dropped, by reason.", [
    "stack",
    "reason",
  ]);
  const conns = reg.gauge("nsm_tcp_connections", "TCP connections (TCBs) alive.", ["stack"]);
  const socks = reg.gauge("nsm_tcp_sockets", "TCP socket ids open.", ["stack"]);
  reg.addCollector(() => {
    const c = tcp.counters;
    const ev: [string, number][] = [
      ["segments_in", c.segmentsIn],
      ["segments_out", c.segmentsOut],
      ["retransmits", c.retransmits],
      ["resets_sent", c.resetsSent],
      ["challenge_acks", c.challengeAcks],
      ["cookies_sent", c.cookiesSent],
      ["cookies_accepted", c.cookiesAccepted],
      ["output_failures", c.outputFailures],
      ["internal_errors", c.internalErrors],
    ];
    for (const [event, n] of ev) events.set({ stack: name, event }, n);
    for (const [reason, n] of Object.entries(c.snapshot())) drops.set({ stack: name, reason }, n);
    conns.set({ stack: name }, tcp.connectionCount);
    socks.set({ stack: name }, tcp.socketCount);
  });
}

/** Options of `collectConnections`. */
export interface ConnectionMetricsOptions {
  /** Stack name per TcpStack (default "tcp"). */
  stackName?: (stack: TcpStack) => string;
  /** At most this many connections get series (default 1000); the rest are only counted. */
  limit?: number;
}

/**
 * Exports per-connection TCP_INFO gauges (cwnd, srtt, rates, bytes, retransmits) labelled by
 * guest, connection id, addresses and cc; series of closed connections disappear.
 */
export function collectConnections(
  reg: MetricsRegistry,
  table: GuestTable,
  options: ConnectionMetricsOptions = {},
): void {
  const labels = ["guest", "conn", "local", "remote", "cc"];
  const fams = {
    cwnd: reg.gauge("nsm_conn_cwnd_bytes", "Congestion window.", labels),
    srtt: reg.gauge("nsm_conn_srtt_seconds", "Smoothed RTT.", labels),
    pacing: reg.gauge("nsm_conn_pacing_rate_bytes", "Pacing rate, bytes per second.", labels),
    delivery: reg.gauge("nsm_conn_delivery_rate_bytes", "Delivery rate, bytes per second.", labels),
    acked: reg.gauge("nsm_conn_bytes_acked", "Bytes acknowledged by the peer.", labels),
    received: reg.gauge("nsm_conn_bytes_received", "In-order bytes received.", labels),
    retrans: reg.gauge("nsm_conn_retransmits", "Segments retransmitted.", labels),
  };
  const skipped = reg.gauge("nsm_conn_unexported", "Connections beyond the series limit.");
  const stackName = options.stackName ?? ((): string => "tcp");
  const limit = options.limit ?? 1000;
  reg.addCollector(() => {
    for (const f of Object.values(fams)) f.clear();
    let n = 0;
    let over = 0;
    for (const ref of table.connections()) {
      if (n >= limit) {
        over++;
        continue;
      }
      const r = connRow(ref, stackName(ref.stack));
      if (r === null) continue;
      n++;
      const l = { guest: r.guest, conn: r.conn, local: r.local, remote: r.remote, cc: r.cc };
      fams.cwnd.set(l, r.cwnd);
      fams.srtt.set(l, r.srttUs === null ? NaN : r.srttUs / 1e6);
      fams.pacing.set(l, r.pacingRate);
      fams.delivery.set(l, r.deliveryRate);
      fams.acked.set(l, r.bytesAcked);
      fams.received.set(l, r.bytesReceived);
      fams.retrans.set(l, r.retransmits);
    }
    skipped.set({}, over);
  });
}

/**
 * Exports per-guest sockets, bytes from/to the guest, and throughput gauges (bytes/s between
 * the last two scrapes), labelled `guest`.
 */
export function collectGuests(reg: MetricsRegistry, table: GuestTable): void {
  const sockets = reg.gauge("nsm_guest_sockets", "Open sockets of the guest.", ["guest"]);
  const bytes = reg.counter("nsm_guest_bytes_total", "Stream bytes by direction.", [
    "guest",
    "dir",
  ]);
  const rate = reg.gauge(
    "nsm_guest_throughput_bytes",
    "Bytes per second between the last two scrapes, by direction.",
    ["guest", "dir"],
  );
  const counters = reg.counter("nsm_guest_nqe_events_total", "Per-guest NQE counters.", [
    "guest",
    "counter",
  ]);
  const up = reg.gauge("nsm_guests", "Guests attached.");
  const last = new Map<string, { at: Instant; bytes: number }>();
  reg.addCollector((now) => {
    sockets.clear();
    bytes.clear();
    rate.clear();
    counters.clear();
    const rows = table.guests();
    up.set({}, rows.length);
    const seen = new Set<string>();
    for (const g of rows) {
      sockets.set({ guest: g.id }, g.sockets);
      for (const [dir, v] of [["tx", g.bytesFromGuest], ["rx", g.bytesToGuest]] as const) {
        if (v === undefined) continue;
        bytes.set({ guest: g.id, dir }, v);
        const key = `${g.id}/${dir}`;
        seen.add(key);
        const prev = last.get(key);
        if (prev !== undefined && now > prev.at) {
          rate.set({ guest: g.id, dir }, ((v - prev.bytes) * 1e9) / (now - prev.at));
        }
        last.set(key, { at: now, bytes: v });
      }
      for (const [k, v] of Object.entries(g.counters ?? {})) {
        counters.set({ guest: g.id, counter: k }, v);
      }
    }
    for (const k of last.keys()) if (!seen.has(k)) last.delete(k);
  });
}

/** Exports NQE transport totals (ServiceLib stats). */
export function collectNqe(reg: MetricsRegistry, totals: () => NqeTotals): void {
  const ev = reg.counter("nsm_nqe_total", "NQE transport totals.", ["event"]);
  const detached = reg.counter("nsm_guest_detached_total", "Guests torn down, by reason.", [
    "reason",
  ]);
  const rejected = reg.counter("nsm_nqe_rejected_total", "Rejected NQEs and faults, by reason.", [
    "reason",
  ]);
  reg.addCollector(() => {
    const t = totals();
    ev.set({ event: "attached" }, t.attached);
    ev.set({ event: "attach_failed" }, t.attachFailed);
    ev.set({ event: "requests" }, t.requests);
    ev.set({ event: "completions" }, t.completions);
    ev.set({ event: "notifications" }, t.notifications);
    ev.set({ event: "bytes_to_guests" }, t.bytesToGuests);
    ev.set({ event: "bytes_from_guests" }, t.bytesFromGuests);
    for (const [reason, n] of Object.entries(t.detached)) detached.set({ reason }, n);
    for (const [reason, n] of Object.entries(t.rejected)) rejected.set({ reason }, n);
  });
}

/** Exports the SLA scheduler: limits, guarantees, bytes granted, throttle events. */
export function collectSla(reg: MetricsRegistry, sched: EgressScheduler): void {
  const sent = reg.counter("nsm_sla_sent_bytes_total", "Bytes let onto the link.", ["guest"]);
  const limit = reg.gauge("nsm_sla_limit_bytes", "Rate limit, bytes/s (0 = none).", ["guest"]);
  const min = reg.gauge("nsm_sla_guarantee_bytes", "Guaranteed rate, bytes/s.", ["guest"]);
  const throttled = reg.counter("nsm_sla_throttled_total", "Times the limit held the guest.", [
    "guest",
  ]);
  const link = reg.gauge("nsm_sla_link_bytes", "Link rate shared by guests, bytes/s.");
  reg.addCollector((now) => {
    for (const f of [sent, limit, min, throttled]) f.clear();
    link.set({}, sched.link.rate);
    for (const s of sched.status(now)) {
      sent.set({ guest: s.guest }, s.sentBytes);
      limit.set({ guest: s.guest }, s.rate);
      min.set({ guest: s.guest }, s.minRate);
      throttled.set({ guest: s.guest }, s.throttled);
    }
  });
}

/** A guest's NK device, for `collectDevices`. */
export interface DeviceRef {
  /** Owning guest. */
  readonly guest: number;
  /** The NSM side of its device. */
  readonly device: NsmDevice;
}

/**
 * Exports NK device state per guest: ring indices (so rates of NQEs per ring follow), times a
 * producer ring was found full, ring faults, doorbell sleeps and wake-ups, free data chunks
 * and data-reference faults by reason.
 */
export function collectDevices(reg: MetricsRegistry, devices: () => readonly DeviceRef[]): void {
  const idx = reg.counter("nsm_ring_index_total", "Entries passed through a ring (its index).", [
    "guest",
    "qs",
    "ring",
  ]);
  const full = reg.counter("nsm_ring_full_total", "Times the NSM found a ring it writes full.", [
    "guest",
    "qs",
    "ring",
  ]);
  const faulted = reg.gauge("nsm_ring_faulted", "1 when a ring saw a hostile index.", [
    "guest",
    "qs",
    "ring",
  ]);
  const bell = reg.counter("nsm_doorbell_total", "Doorbell events (sleeps, wakes sent).", [
    "guest",
    "event",
  ]);
  const free = reg.gauge("nsm_data_free_chunks", "Free chunks of the NSM's half.", ["guest"]);
  const dataFaults = reg.counter("nsm_data_faults_total", "Bad data references, by reason.", [
    "guest",
    "reason",
  ]);
  reg.addCollector(() => {
    for (const f of [idx, full, faulted, bell, free, dataFaults]) f.clear();
    for (const { guest, device } of devices()) {
      device.queueSets.forEach((q, i) => {
        const rings = [
          ["job", q.job],
          ["completion", q.completion],
          ["send", q.send],
          ["receive", q.receive],
        ] as const;
        for (const [ring, r] of rings) {
          const l = { guest, qs: i, ring };
          idx.set(l, r.index);
          faulted.set(l, r.fault === null ? 0 : 1);
          if ("fullCount" in r) full.set(l, r.fullCount);
        }
      });
      if (device.bell !== null) {
        bell.set({ guest, event: "sleeps" }, device.bell.sleeps);
        bell.set({ guest, event: "wakes_sent" }, device.bell.wakesSent);
      }
      free.set({ guest }, device.data.freeChunks);
      for (const [reason, n] of Object.entries(device.data.faults)) {
        dataFaults.set({ guest, reason }, n);
      }
    }
  });
}
