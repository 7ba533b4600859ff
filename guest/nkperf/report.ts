/**
 * Measurement and reporting shared by the nkperf client and server: live per-stream counters,
 * interval samples, the end-of-test summary in iperf3's JSON shape (`start` / `intervals` /
 * `end` with `sum_sent` / `sum_received`), and iperf3-like text lines.
 *
 * Times in the JSON are seconds since the test started (TEST_RUNNING), as iperf3 prints them.
 * The clock is injected (`Instant`, ns); only the CLI/driver reads the real one.
 *
 * @module
 */

import process from "node:process";
import { type Instant, SECOND } from "../../stacks/time.ts";
import type { NetApi, NetConn } from "./net.ts";
import type { StreamResult, TestParams, TestResults } from "./protocol.ts";

/** Live counters of one data stream, updated by the send/receive loops. */
export class StreamCounter {
  /** Stream id as exchanged in the results (1, 3, 4, ...). */
  readonly id: number;
  /** The data connection. */
  readonly conn: NetConn;
  // The byte counts and times start as non-integers (reset to 0 in the constructor): a field
  // that first held a small integer boxes a new heap number on every store once its values
  // pass 2^31 (small integers are 32-bit in Deno), i.e. on every read or write after 2 GB.
  /** Bytes written (sender) or read (receiver) so far. */
  bytes = 0.5;
  /** When counting began. */
  startNs: Instant = 0.5;
  /**
   * When counting ended (set at stop; receivers advance it with each read, through `endCell`
   * with the default clock: a number stored here was a heap number per read).
   */
  get endNs(): Instant {
    return this.endCell[0]!;
  }
  set endNs(ns: Instant) {
    this.endCell[0] = ns;
  }
  /** `endNs`'s storage, for `monotonicNowInto(endCell, 0)`. */
  readonly endCell = new Float64Array(1);
  /** Bytes at the previous interval sample. */
  lastSampleBytes = 0.5;
  /** Retransmits at the previous interval sample. */
  lastSampleRetransmits = 0;
  /** Retransmits counted before the end of -O (subtracted from the results). */
  retransmitsBase = 0;
  /** Largest cwnd seen in samples (bytes), 0 when unknown. */
  maxCwnd = 0;
  /** Largest send window seen in samples (bytes), 0 when unknown. */
  maxSndWnd = 0;
  /** RTT samples (µs) for min/mean/max, when the stack reports them. */
  rttMin = Number.POSITIVE_INFINITY;
  /** See `rttMin`. */
  rttMax = 0;
  /** See `rttMin`. */
  rttSum = 0;
  /** See `rttMin`. */
  rttCount = 0;

  /** Counts for stream `id` on `conn`. */
  constructor(id: number, conn: NetConn) {
    this.id = id;
    this.conn = conn;
    this.bytes = 0;
    this.startNs = 0;
    this.lastSampleBytes = 0;
  }
}

/**
 * Ends the -O warm-up at `now`: the counters restart from zero, so the results and the
 * following intervals cover only the measured part (as iperf3 reports omitted time).
 */
export function rebaseStreams(
  streams: readonly StreamCounter[],
  now: Instant,
  isSender: boolean,
  net: NetApi,
): void {
  for (const s of streams) {
    s.bytes = 0;
    s.lastSampleBytes = 0;
    s.startNs = now;
    s.endNs = now;
    const info = isSender ? net.tcpInfo?.(s.conn) : undefined;
    s.retransmitsBase = info?.retransmits ?? 0;
    s.lastSampleRetransmits = s.retransmitsBase;
  }
}

/** A JSON object as printed by -J. */
export type Json = Record<string, unknown>;

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

function addrJson(a: Deno.Addr): { host: string; port: number } {
  return "hostname" in a ? { host: a.hostname, port: a.port } : { host: String(a), port: 0 };
}

/** `start.connected[]` entries for the streams. */
export function connectedJson(streams: readonly StreamCounter[]): Json[] {
  return streams.map((s) => {
    const l = addrJson(s.conn.localAddr);
    const r = addrJson(s.conn.remoteAddr);
    return {
      socket: s.id,
      local_host: l.host,
      local_port: l.port,
      remote_host: r.host,
      remote_port: r.port,
    };
  });
}

/** `start.test_start` for `params`. */
export function testStartJson(p: TestParams): Json {
  return {
    protocol: "TCP",
    num_streams: p.parallel,
    blksize: p.len,
    omit: p.omit,
    duration: p.time,
    bytes: p.num,
    blocks: p.blockcount,
    reverse: p.reverse ? 1 : 0,
    tos: 0,
    target_bitrate: 0,
  };
}

/** CPU time of this process (µs), to compute utilisation between two points. */
export interface CpuMark {
  /** Wall clock at the mark. */
  readonly at: Instant;
  /** User CPU µs. */
  readonly user: number;
  /** System CPU µs. */
  readonly system: number;
}

/** Marks the process's CPU time now. */
export function cpuMark(now: Instant): CpuMark {
  const u = process.cpuUsage();
  return { at: now, user: u.user, system: u.system };
}

/** Utilisation between two marks in percent of wall time: [total, user, system]. */
export function cpuPercent(a: CpuMark, b: CpuMark): [number, number, number] {
  const wallUs = Math.max(1, (b.at - a.at) / 1000);
  const user = ((b.user - a.user) / wallUs) * 100;
  const system = ((b.system - a.system) / wallUs) * 100;
  return [user + system, user, system];
}

/**
 * Takes interval samples of a running test: each `sample(now)` closes the interval since the
 * previous sample and returns it in iperf3's `intervals[]` shape.
 */
export class IntervalMeter {
  readonly #streams: readonly StreamCounter[];
  readonly #isSender: boolean;
  readonly #t0: Instant;
  readonly #net: NetApi;
  #last: Instant;

  /** Samples `streams` from `t0`; `isSender` says whether this side sends the data. */
  constructor(streams: readonly StreamCounter[], isSender: boolean, t0: Instant, net: NetApi) {
    this.#streams = streams;
    this.#isSender = isSender;
    this.#t0 = t0;
    this.#net = net;
    this.#last = t0;
  }

  /** When the open interval began. */
  get lastSampleAt(): Instant {
    return this.#last;
  }

  /** Closes the interval [last, now) and returns it; `omitted` marks a -O warm-up interval. */
  sample(now: Instant, omitted = false): Json {
    const start = (this.#last - this.#t0) / SECOND;
    const end = (now - this.#t0) / SECOND;
    const seconds = Math.max(1e-9, end - start);
    const streams: Json[] = [];
    let sumBytes = 0;
    let sumRetr = 0;
    let haveInfo = false;
    for (const s of this.#streams) {
      const bytes = s.bytes - s.lastSampleBytes;
      s.lastSampleBytes = s.bytes;
      sumBytes += bytes;
      const e: Json = {
        socket: s.id,
        start: round6(start),
        end: round6(end),
        seconds,
        bytes,
        bits_per_second: (bytes * 8) / seconds,
      };
      const info = this.#isSender ? this.#net.tcpInfo?.(s.conn) : undefined;
      if (info !== undefined) {
        haveInfo = true;
        const retr = info.retransmits - s.lastSampleRetransmits;
        s.lastSampleRetransmits = info.retransmits;
        sumRetr += retr;
        s.maxCwnd = Math.max(s.maxCwnd, info.sndCwnd);
        s.maxSndWnd = Math.max(s.maxSndWnd, info.sndWnd);
        if (info.rttUs > 0) {
          s.rttMin = Math.min(s.rttMin, info.rttUs);
          s.rttMax = Math.max(s.rttMax, info.rttUs);
          s.rttSum += info.rttUs;
          s.rttCount++;
        }
        e.retransmits = retr;
        e.snd_cwnd = info.sndCwnd;
        e.snd_wnd = info.sndWnd;
        e.rtt = info.rttUs;
        e.rttvar = info.rttVarUs;
        e.pmtu = info.pmtu;
      }
      e.omitted = omitted;
      e.sender = this.#isSender;
      streams.push(e);
    }
    const sum: Json = {
      start: round6(start),
      end: round6(end),
      seconds,
      bytes: sumBytes,
      bits_per_second: (sumBytes * 8) / seconds,
    };
    if (haveInfo) sum.retransmits = sumRetr;
    sum.omitted = omitted;
    sum.sender = this.#isSender;
    this.#last = now;
    return { streams, sum };
  }
}

/** This side's results for the exchange; `hasRetransmits` when the stack reports TCP_INFO. */
export function localResults(
  streams: readonly StreamCounter[],
  isSender: boolean,
  t0: Instant,
  cpu: [number, number, number],
  net: NetApi,
): TestResults {
  let hasRetr = false;
  const out: StreamResult[] = streams.map((s) => {
    const info = isSender ? net.tcpInfo?.(s.conn) : undefined;
    if (info !== undefined) hasRetr = true;
    return {
      id: s.id,
      bytes: s.bytes,
      retransmits: isSender ? (info?.retransmits ?? 0) - s.retransmitsBase : -1,
      startTime: round6(Math.max(0, s.startNs - t0) / SECOND),
      endTime: round6(Math.max(0, s.endNs - t0) / SECOND),
    };
  });
  const first = streams[0];
  return {
    cpuTotal: cpu[0],
    cpuUser: cpu[1],
    cpuSystem: cpu[2],
    senderHasRetransmits: isSender ? (hasRetr ? 1 : 0) : -1,
    congestion: first !== undefined ? net.congestion?.(first.conn) : undefined,
    streams: out,
  };
}

/** Inputs to `endJson`. */
export interface EndInput {
  /** Whether this side sent the data. */
  readonly isSender: boolean;
  /** This side's results (as sent in the exchange). */
  readonly local: TestResults;
  /** The peer's results (as received). */
  readonly peer: TestResults;
  /** Local counters (for cwnd/RTT maxima). */
  readonly streams: readonly StreamCounter[];
  /** Whether the local stack reported TCP_INFO (include cwnd/RTT fields). */
  readonly haveTcpInfo: boolean;
}

function summary(
  id: number,
  start: number,
  end: number,
  seconds: number,
  bytes: number,
): Json {
  return {
    socket: id,
    start,
    end,
    seconds,
    bytes,
    bits_per_second: seconds > 0 ? (bytes * 8) / seconds : 0,
  };
}

/**
 * The `end` object: per-stream `sender`/`receiver` entries (one from each side), `sum_sent`,
 * `sum_received` and CPU use. Streams are matched with the peer's results by id; a peer stream
 * that is missing counts 0 bytes.
 */
export function endJson(e: EndInput): Json {
  const senderRes = e.isSender ? e.local : e.peer;
  const receiverRes = e.isSender ? e.peer : e.local;
  const showRetr = senderRes.senderHasRetransmits === 1;
  const streams: Json[] = [];
  let sent = 0;
  let received = 0;
  let retr = 0;
  let sentEnd = 0;
  let recvEnd = 0;
  let sentSeconds = 0;
  let recvSeconds = 0;
  for (const local of e.local.streams) {
    const peer = e.peer.streams.find((p) => p.id === local.id);
    const snd = e.isSender ? local : peer;
    const rcv = e.isSender ? peer : local;
    // iperf3 reports both entries over the sender's duration when it is the sender.
    const sndSeconds = snd ? snd.endTime - snd.startTime : 0;
    const rcvSeconds = rcv ? rcv.endTime - rcv.startTime : 0;
    const senderEntry = summary(
      local.id,
      snd?.startTime ?? 0,
      snd?.endTime ?? 0,
      sndSeconds,
      snd?.bytes ?? 0,
    );
    if (showRetr) {
      // As iperf3: with a TCP_INFO-capable sender the cwnd/RTT maxima follow; they are only
      // known locally, so a remote sender's read 0.
      senderEntry.retransmits = Math.max(0, snd?.retransmits ?? 0);
      const c = e.isSender && e.haveTcpInfo ? e.streams.find((s) => s.id === local.id) : undefined;
      const rtt = c !== undefined && c.rttCount > 0;
      senderEntry.max_snd_cwnd = c?.maxCwnd ?? 0;
      senderEntry.max_snd_wnd = c?.maxSndWnd ?? 0;
      senderEntry.max_rtt = rtt ? c.rttMax : 0;
      senderEntry.min_rtt = rtt ? c.rttMin : 0;
      senderEntry.mean_rtt = rtt ? Math.round(c.rttSum / c.rttCount) : 0;
    }
    senderEntry.sender = e.isSender;
    const receiverEntry = summary(
      local.id,
      rcv?.startTime ?? 0,
      rcv?.endTime ?? 0,
      rcvSeconds,
      rcv?.bytes ?? 0,
    );
    receiverEntry.sender = e.isSender;
    streams.push({ sender: senderEntry, receiver: receiverEntry });
    sent += snd?.bytes ?? 0;
    received += rcv?.bytes ?? 0;
    retr += Math.max(0, snd?.retransmits ?? 0);
    sentEnd = Math.max(sentEnd, snd?.endTime ?? 0);
    recvEnd = Math.max(recvEnd, rcv?.endTime ?? 0);
    sentSeconds = Math.max(sentSeconds, sndSeconds);
    recvSeconds = Math.max(recvSeconds, rcvSeconds);
  }
  const sumSent = summary(0, 0, sentEnd, sentSeconds, sent);
  delete sumSent.socket;
  if (showRetr) sumSent.retransmits = retr;
  sumSent.sender = e.isSender;
  const sumReceived = summary(0, 0, recvEnd, recvSeconds, received);
  delete sumReceived.socket;
  sumReceived.sender = e.isSender;
  const out: Json = {
    streams,
    sum_sent: sumSent,
    sum_received: sumReceived,
    cpu_utilization_percent: {
      host_total: e.local.cpuTotal,
      host_user: e.local.cpuUser,
      host_system: e.local.cpuSystem,
      remote_total: e.peer.cpuTotal,
      remote_user: e.peer.cpuUser,
      remote_system: e.peer.cpuSystem,
    },
  };
  if (senderRes.congestion !== undefined) out.sender_tcp_congestion = senderRes.congestion;
  if (receiverRes.congestion !== undefined) out.receiver_tcp_congestion = receiverRes.congestion;
  return out;
}

// iperf3-style unit formatting: transfers in binary units, rates in decimal units, three
// significant digits.
function scaled(value: number, base: number, units: readonly string[]): string {
  let v = value;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  const digits = v < 9.995 ? 2 : v < 99.95 ? 1 : 0;
  return `${v.toFixed(digits).padStart(4)} ${units[i]}`;
}

/** "1.18 GBytes" style transfer size (binary multiples). */
export function formatBytes(bytes: number): string {
  return scaled(bytes, 1024, ["Bytes", "KBytes", "MBytes", "GBytes", "TBytes"]);
}

/** "10.1 Gbits/sec" style rate (decimal multiples). */
export function formatRate(bitsPerSecond: number): string {
  return scaled(bitsPerSecond, 1000, [
    "bits/sec",
    "Kbits/sec",
    "Mbits/sec",
    "Gbits/sec",
    "Tbits/sec",
  ]);
}

function idLabel(id: number | "SUM"): string {
  return id === "SUM" ? "[SUM]" : `[${String(id).padStart(3)}]`;
}

function intervalText(start: number, end: number): string {
  return `${start.toFixed(2).padStart(6)}-${end.toFixed(2).padEnd(6)} sec`;
}

/** Header line above interval lines. */
export function intervalHeader(withRetr: boolean): string {
  return `[ ID] Interval           Transfer     Bitrate${withRetr ? "         Retr  Cwnd" : ""}`;
}

/** Text lines for one interval sample (per stream, plus [SUM] with several streams). */
export function intervalLines(iv: Json): string[] {
  const lines: string[] = [];
  const streams = iv.streams as Json[];
  const line = (id: number | "SUM", e: Json): string => {
    let s = `${idLabel(id)} ${intervalText(e.start as number, e.end as number)}  ${
      formatBytes(e.bytes as number)
    }  ${formatRate(e.bits_per_second as number)}`;
    if (typeof e.retransmits === "number") s += `  ${String(e.retransmits).padStart(4)}`;
    if (typeof e.snd_cwnd === "number") s += `   ${formatBytes(e.snd_cwnd)}`;
    return s;
  };
  for (const e of streams) lines.push(line(e.socket as number, e));
  if (streams.length > 1) lines.push(line("SUM", iv.sum as Json));
  return lines;
}

/** Text lines for the end summary (sender and receiver lines per stream and summed). */
export function endLines(end: Json): string[] {
  const lines = ["- - - - - - - - - - - - - - - - - - - - - - - - -", intervalHeader(false)];
  const line = (id: number | "SUM", e: Json, role: string): string => {
    let s = `${idLabel(id)} ${intervalText(e.start as number, e.end as number)}  ${
      formatBytes(e.bytes as number)
    }  ${formatRate(e.bits_per_second as number)}`;
    s += typeof e.retransmits === "number" ? `  ${String(e.retransmits).padStart(4)}` : "     ";
    return `${s}             ${role}`;
  };
  const streams = end.streams as Json[];
  for (const st of streams) {
    const snd = st.sender as Json;
    lines.push(line(snd.socket as number, snd, "sender"));
    const rcv = st.receiver as Json;
    lines.push(line(rcv.socket as number, rcv, "receiver"));
  }
  if (streams.length > 1) {
    lines.push(line("SUM", end.sum_sent as Json, "sender"));
    lines.push(line("SUM", end.sum_received as Json, "receiver"));
  }
  return lines;
}

/** `start.timestamp` for a wall-clock time in ms (the CLI passes Date.now()). */
export function timestampJson(wallMs: number): Json {
  return { time: new Date(wallMs).toUTCString(), timesecs: Math.floor(wallMs / 1000) };
}

/** `start.system_info`: OS and architecture Deno reports. */
export function systemInfo(): string {
  let release = "";
  try {
    release = Deno.osRelease();
  } catch {
    // Not permitted (--allow-sys missing): the field is informative only.
  }
  return `${Deno.build.os} ${release} ${Deno.build.arch} (Deno ${Deno.version.deno})`.replace(
    /\s+/g,
    " ",
  );
}

/** The version nkperf reports in `start.version` and `client_version`. */
export const NKPERF_VERSION = "nkperf 1.0";
