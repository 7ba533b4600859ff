/**
 * The runnable core of `deno task sim`: real stack instances (an `Interface` plus a `TcpStack`
 * per host) on the simulated dumbbell, one bulk flow per requested congestion control, run for
 * a fixed virtual time. Used by the CLI, by tests and by the congestion-control modules' tests.
 *
 * ```ts
 * import { defaultParams, runExperiment } from "./experiment.ts";
 * const r = await runExperiment({ ...defaultParams(), flows: ["reno", "reno"], duration: 2e9 });
 * console.log(r.jain, r.flows.map((f) => f.goodput_bps));
 * ```
 *
 * Topology: n senders and n receivers behind two switches; the bottleneck (left -> right) has
 * the requested rate, buffer, impairments and ECN threshold; the base RTT is propagation on
 * the bottleneck (rtt/2 each way), plus, for per-flow RTTs, delay on that sender's access link.
 * Access links run at 10x the bottleneck rate, so queues build only at the bottleneck.
 * Impairments apply to the data direction only. `reno` needs nothing from cc/; other names and
 * .wasm paths load WebAssembly modules through cc/ (imported on first use).
 *
 * Every flow moves real bytes: the sender writes a seeded pseudo-random stream (period
 * 1,000,003 bytes, a prime, so no segment, window or sequence-wrap error lines up with it; a
 * different stream per flow) and the receiver compares every byte it reads against the same
 * stream. `verified` is true when every byte matched, some arrived and no socket failed.
 *
 * Measurements come from outside the algorithm: the sender's recovery engine hands each ACK's
 * sample to an observer (`onAckSample`: RTT sample, window after the ACK); a sampler event
 * records per-interval throughput, cwnd and smoothed RTT; the bottleneck channel counts drops,
 * marks, busy time and per-packet queue delay.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Duration, Instant } from "../stacks/time.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";
import type { Tcb } from "../stacks/tcpip/tcp/tcb.ts";
import type { TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import {
  type AckSample,
  type CongestionControl,
  registeredCcNames,
} from "../stacks/tcpip/tcp/recovery/cc.ts";
import type { RecoveryInfo } from "../stacks/tcpip/tcp/recovery/api.ts";
import type { RecoveryEngineApi } from "../stacks/tcpip/tcp/recovery/api.ts";
import type { CcHost } from "../cc/mod.ts";
import { Simulator } from "./simulator.ts";
import { dumbbell } from "./topology.ts";
import type { Dumbbell } from "./topology.ts";
import { SimEvent } from "./event_queue.ts";
import type { EventHandler } from "./event_queue.ts";
import { jainIndex } from "./metrics.ts";
import { StackHost } from "./stack_host.ts";
import { UnitParseError } from "./units.ts";

/** Everything an experiment needs; `defaultParams()` gives the CLI defaults. */
export interface ExperimentParams {
  /** Bottleneck rate, bit/s. */
  rateBps: number;
  /** Base round-trip propagation delay, ns. */
  rtt: Duration;
  /**
   * Per-flow base RTTs, ns (empty: every flow has `rtt`). Each must be >= `rtt`; the extra is
   * propagation delay on that sender's access link, split evenly between the two directions.
   */
  flowRtts: Duration[];
  /** Bottleneck buffer, packets. */
  queuePackets: number;
  /** Random loss probability on the bottleneck (data direction). */
  loss: number;
  /** Probability a data frame is held back by `reorderDelay`. */
  reorder: number;
  /** Extra delay of a reordered frame, ns. */
  reorderDelay: Duration;
  /** Probability a data frame is duplicated. */
  duplicate: number;
  /** Probability a data frame gets one flipped bit. */
  corrupt: number;
  /** CE-marking threshold in packets, or null for no marking. */
  ecnK: number | null;
  /** One congestion control per flow: a registered name or a path to a .wasm module. */
  flows: string[];
  /** Virtual run time, ns. */
  duration: Duration;
  /** Root seed of every random stream. */
  seed: number;
  /** Sampling interval of the per-flow series, ns; null picks one from the duration. */
  interval: Duration | null;
  /** Flow i starts at i * stagger (ns); 0 starts all at once. */
  stagger: Duration;
  /** Stack-wide TCP settings for every host, e.g. `{ pacing: true }` (default: none). */
  tcp: Partial<TcpConfig>;
}

/** The CLI defaults: 100 Mbit/s, 20 ms, 100 packets, one Reno flow for 30 s, seed 1. */
export function defaultParams(): ExperimentParams {
  return {
    rateBps: 100e6,
    rtt: 20 * MILLISECOND,
    flowRtts: [],
    queuePackets: 100,
    loss: 0,
    reorder: 0,
    reorderDelay: MILLISECOND,
    duplicate: 0,
    corrupt: 0,
    ecnK: null,
    flows: ["reno"],
    duration: 30 * SECOND,
    seed: 1,
    interval: null,
    stagger: 0,
    tcp: {},
  };
}

/** Most flows one experiment runs (addresses are 198.18.1.x and 198.18.2.x). */
export const MAX_FLOWS = 250;

/**
 * Expands `--flows`: comma-separated names or .wasm paths, each optionally prefixed `Nx`
 * (`2xcubic,bbr` -> cubic, cubic, bbr). Throws `UnitParseError` for an empty or malformed list.
 */
export function parseFlows(value: string): string[] {
  const out: string[] = [];
  for (const raw of value.split(",")) {
    const token = raw.trim();
    const m = /^([0-9]+)x(.+)$/.exec(token);
    const count = m === null ? 1 : Number(m[1]);
    const name = m === null ? token : m[2]!.trim();
    if (name === "" || count < 1) {
      throw new UnitParseError("flows", value, "cubic,bbr or 2xreno or ./my_cc.wasm");
    }
    for (let i = 0; i < count; i++) out.push(name);
  }
  if (out.length > MAX_FLOWS) {
    throw new UnitParseError("flows", value, `at most ${MAX_FLOWS} flows, e.g. 10xreno`);
  }
  return out;
}

/** A `--flows` entry that names no usable congestion control; the message says what would. */
export class CcSelectionError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "CcSelectionError";
  }
}

/** A flow's congestion control, resolved to a registry name. */
export interface ResolvedCc {
  /** What the user wrote. */
  readonly token: string;
  /** Name passed to `createCc` (also the receiver's, so e.g. DCTCP gets its precise echo). */
  readonly registryName: string;
  /** Name to show: the algorithm's own name. */
  readonly label: string;
  /** "builtin", "registered", or the .wasm file it was loaded from. */
  readonly source: string;
}

/** Where `deno task build:cc` puts the bundled modules (cc/build.ts `DIST_DIR`). */
const DIST_DIR = new URL("../cc/dist/", import.meta.url);

/**
 * The WebAssembly host, imported on first use so that `reno` runs even while cc/ is being
 * changed (and costs nothing when no module is asked for).
 */
async function ccModule(): Promise<typeof import("../cc/mod.ts")> {
  return await import("../cc/mod.ts");
}

function isPath(token: string): boolean {
  return token.endsWith(".wasm") || token.includes("/");
}

function distFiles(): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(DIST_DIR)) {
      if (e.isFile && e.name.endsWith(".wasm")) names.push(e.name.slice(0, -5));
    }
  } catch {
    // No dist folder: nothing built yet.
  }
  return names.sort();
}

async function loadModule(
  host: CcHost,
  path: string | URL,
  registryName: string,
  token: string,
): Promise<string> {
  try {
    const m = await host.loadFile(path);
    host.register(m, registryName);
    return m.name;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CcSelectionError(
        `--flows ${token}: no file at ${String(path)}; check the path, or build the bundled ` +
          `modules with deno task build:cc`,
      );
    }
    throw new CcSelectionError(
      `--flows ${token}: ${String(path)} is not a usable congestion-control module: ` +
        `${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** True for a module cc/ builds (so the advice is to build it). */
async function isBundled(name: string): Promise<boolean> {
  try {
    const cc = await ccModule();
    return cc.AS_MODULES.includes(name) || cc.C_MODULES.includes(name);
  } catch {
    return false;
  }
}

/**
 * Registry names this module registered from cc/dist. They are loaded afresh for every
 * experiment (a new module instance), so an experiment never inherits state an earlier one
 * left in a shared instance and runs in one process match runs in separate processes.
 */
const loadedHere = new Set<string>();

/**
 * Resolves each `--flows` token: `reno` is the built-in; another name is used when already
 * registered by someone else (`registerCc`, e.g. a test), else loaded from
 * `cc/dist/<name>.wasm` (a fresh instance per call) and registered under that name; a token
 * ending in `.wasm` or containing `/` is loaded from that path and registered as `wasm:<path>`
 * (so it never replaces a built-in). Each file is loaded once per call, into `host` (default: a
 * new `CcHost`). Throws `CcSelectionError` with advice when a token cannot be used.
 */
export async function resolveCcs(
  tokens: readonly string[],
  host?: CcHost,
): Promise<ResolvedCc[]> {
  let h = host ?? null;
  const getHost = async (): Promise<CcHost> => h ??= new (await ccModule()).CcHost();
  const done = new Map<string, ResolvedCc>();
  const out: ResolvedCc[] = [];
  for (const token of tokens) {
    let r = done.get(token);
    if (r === undefined) {
      if (isPath(token)) {
        const registryName = `wasm:${token}`;
        const label = await loadModule(await getHost(), token, registryName, token);
        r = { token, registryName, label, source: token };
      } else if (token === "reno") {
        r = { token, registryName: "reno", label: "reno", source: "builtin" };
      } else if (
        registeredCcNames().includes(token) && !loadedHere.has(token)
      ) {
        r = { token, registryName: token, label: token, source: "registered" };
      } else if (distFiles().includes(token)) {
        const url = new URL(`${token}.wasm`, DIST_DIR);
        await loadModule(await getHost(), url, token, token);
        loadedHere.add(token);
        r = { token, registryName: token, label: token, source: `cc/dist/${token}.wasm` };
      } else if (await isBundled(token)) {
        throw new CcSelectionError(
          `--flows ${token}: the module is not built yet; run deno task build:cc, then retry`,
        );
      } else {
        const known = [...new Set([...registeredCcNames(), ...distFiles()])]
          .filter((n) => !n.startsWith("wasm:")).sort();
        throw new CcSelectionError(
          `--flows ${token}: unknown congestion control; use one of ${known.join(", ")} ` +
            `or a path to a .wasm module (see cc/README.md)`,
        );
      }
      done.set(token, r);
    }
    out.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Measurement

/**
 * Per-flow measurements from the sender's recovery engine (`onAckSample`, called after the
 * algorithm saw each ACK that delivered data): every RTT sample and the largest window.
 */
class FlowProbe {
  /** The sender's engine once connected. */
  rec: RecoveryEngineApi | null = null;
  mss = 1460;
  cwndMaxSegments = 0;
  rtt: Float64Array = new Float64Array(1024);
  rttCount = 0;

  /** Starts observing `rec` (right after `connect()`). */
  attach(rec: RecoveryEngineApi): void {
    this.rec = rec;
    this.#track(rec.cc.cwnd);
    rec.onAckSample = (s: AckSample, cc: CongestionControl): void => {
      this.mss = s.mss;
      if (s.rtt >= 0) this.addRtt(s.rtt);
      this.#track(cc.cwnd);
    };
  }

  #track(cwnd: number): void {
    const seg = cwnd / this.mss;
    if (seg > this.cwndMaxSegments) this.cwndMaxSegments = seg;
  }

  addRtt(ns: Duration): void {
    if (this.rttCount === this.rtt.length) {
      const grown = new Float64Array(this.rtt.length * 2);
      grown.set(this.rtt);
      this.rtt = grown;
    }
    this.rtt[this.rttCount++] = ns;
  }

  /** Current window in segments. */
  cwndSegments(): number {
    const rec = this.rec;
    return rec === null ? 0 : rec.cc.cwnd / this.mss;
  }
}

// ---------------------------------------------------------------------------------------------
// Hosts and applications

/** Period of the verification stream, bytes (prime). */
export const PATTERN_PERIOD = 1_000_003;

/**
 * A flow's byte stream: `PATTERN_PERIOD` seeded pseudo-random bytes repeated, different per
 * (seed, flow). Stored twice so any window of up to a period is one contiguous view.
 */
export class FlowPattern {
  readonly #bytes: Uint8Array;

  /** Generates the stream of flow `flow` under root seed `seed`. */
  constructor(seed: number, flow: number) {
    const out = new Uint8Array(2 * PATTERN_PERIOD);
    let s = (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(flow + 1, 0x85ebca6b)) >>> 0 ||
      1;
    for (let i = 0; i < PATTERN_PERIOD; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = s >>> 24;
    }
    out.copyWithin(PATTERN_PERIOD, 0, PATTERN_PERIOD);
    this.#bytes = out;
  }

  /** The stream from `offset` on, `PATTERN_PERIOD` bytes long (a view). */
  from(offset: number): Uint8Array {
    const off = offset % PATTERN_PERIOD;
    return this.#bytes.subarray(off, off + PATTERN_PERIOD);
  }

  /**
   * Compares `data` (at most `PATTERN_PERIOD` bytes) with the stream at `offset`: -1 when
   * equal, else the stream offset of the first differing byte. Native memcmp on the fast path.
   */
  check(offset: number, data: Uint8Array): number {
    const want = this.from(offset).subarray(0, data.length);
    if (Buffer.compare(data, want) === 0) return -1;
    let k = 0;
    while (data[k] === want[k]) k++;
    return offset + k;
  }
}

const PORT = 5001;

class Flow {
  sendId = -1;
  /** When the sender starts (connects), ns. */
  start: Instant = 0;
  written = 0;
  recvId = -1;
  delivered = 0;
  mismatches = 0;
  firstMismatch = -1;
  error: string | null = null;
  readonly probe: FlowProbe;
  readonly #scratch: Uint8Array;
  #sendTcb: Tcb | null = null;
  #recvTcb: Tcb | null = null;
  /** Refill the send buffer only once this much is free (fewer, larger writes). */
  readonly #lowWater: number;

  constructor(
    readonly id: number,
    readonly cc: ResolvedCc,
    readonly sender: StackHost,
    readonly receiver: StackHost,
    readonly dst: IpAddress,
    readonly listener: number,
    readonly pattern: FlowPattern,
    readonly bufferBytes: number,
    scratch: Uint8Array,
  ) {
    this.probe = new FlowProbe();
    this.#scratch = scratch;
    this.#lowWater = Math.min(64 * 1024, bufferBytes / 4);
  }

  /**
   * Sender application: connect once, then keep the send buffer full. Returns true when it
   * wrote (the host then polls its interface again to push the data out).
   */
  pumpSend(now: Instant): boolean {
    // The host is also polled before its start, e.g. for other flows' flooded ARP requests.
    if (this.error !== null || now < this.start) return false;
    const tcp = this.sender.tcp;
    const tcb = this.#sendTcb;
    if (tcb !== null && tcb.sndRing.free < this.#lowWater && tcb.error === null) return false;
    try {
      if (this.sendId < 0) {
        this.sendId = tcp.connect(this.dst, PORT, now, {
          congestionControl: this.cc.registryName,
          sendBufferSize: this.bufferBytes,
          receiveBufferSize: this.bufferBytes,
        });
        const tcb = tcp.tcbOf(this.sendId);
        if (tcb === null) throw new Error("TcpStack.connect() gave a socket without a connection");
        this.#sendTcb = tcb;
        this.probe.attach(tcb.rec);
      }
      const pattern = this.pattern;
      for (;;) {
        const n = tcp.send(this.sendId, pattern.from(this.written), now);
        if (n === 0) break;
        this.written += n;
      }
    } catch (e) {
      this.error = `sender: ${e instanceof Error ? e.message : String(e)}`;
    }
    return true;
  }

  /**
   * Receiver application: accept, read everything, compare with the stream. Returns true when
   * it read (reading may open the window: the host then polls its interface again).
   */
  pumpRecv(now: Instant): boolean {
    if (this.error !== null) return false;
    const tcp = this.receiver.tcp;
    const tcb = this.#recvTcb;
    // Nothing to read and no error to collect: skip the socket call.
    if (tcb !== null && tcb.rcvRing.length === 0 && tcb.error === null) return false;
    try {
      if (this.recvId < 0) {
        const id = tcp.accept(this.listener);
        if (id < 0) return false;
        this.recvId = id;
        this.#recvTcb = tcp.tcbOf(id);
      }
      const buf = this.#scratch;
      const pattern = this.pattern;
      for (;;) {
        const n = tcp.recv(this.recvId, buf, now);
        if (n <= 0) break;
        const bad = pattern.check(this.delivered, buf.subarray(0, n));
        if (bad >= 0) {
          if (this.mismatches === 0) this.firstMismatch = bad;
          this.mismatches++;
        }
        this.delivered += n;
      }
    } catch (e) {
      this.error = `receiver: ${e instanceof Error ? e.message : String(e)}`;
    }
    return true;
  }
}

/**
 * Picks a sampling interval on a 1-2-5 ms ladder: at least two base RTTs (so throughput
 * samples do not alias with the ACK clock), at least 1/200 of the run (so long runs stay
 * small), at most 1/10 of the run.
 */
export function autoInterval(duration: Duration, rtt: Duration): Duration {
  const ladder = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  let floor = MILLISECOND;
  for (const ms of ladder) if (ms * MILLISECOND <= duration / 200) floor = ms * MILLISECOND;
  let pick = ladder[ladder.length - 1]! * MILLISECOND;
  for (const ms of ladder) {
    if (ms * MILLISECOND >= 2 * rtt) {
      pick = ms * MILLISECOND;
      break;
    }
  }
  let t = Math.max(floor, pick);
  while (t > duration / 10 && t > MILLISECOND) {
    const i = ladder.indexOf(t / MILLISECOND);
    t = i > 0 ? ladder[i - 1]! * MILLISECOND : MILLISECOND;
  }
  return t;
}

/** Per-interval samples; one reusable event. */
class Sampler implements EventHandler {
  readonly t: number[] = [];
  readonly queue: number[] = [];
  readonly delivered: number[][];
  readonly cwnd: number[][];
  readonly srtt: number[][];
  readonly #event = new SimEvent(this);

  constructor(
    private readonly sim: Simulator,
    private readonly flows: readonly Flow[],
    private readonly bottleneckQueue: () => number,
    private readonly interval: Duration,
  ) {
    this.delivered = flows.map(() => []);
    this.cwnd = flows.map(() => []);
    this.srtt = flows.map(() => []);
    sim.scheduleEvent(this.#event, interval);
  }

  fire(_event: SimEvent, now: Instant): void {
    this.t.push(now / SECOND);
    this.queue.push(this.bottleneckQueue());
    for (let i = 0; i < this.flows.length; i++) {
      const f = this.flows[i]!;
      this.delivered[i]!.push(f.delivered);
      this.cwnd[i]!.push(f.probe.cwndSegments());
      const tcb = f.sendId < 0 ? null : f.sender.tcp.tcbOf(f.sendId);
      const srtt = tcb === null ? -1 : tcb.rec.srtt;
      this.srtt[i]!.push(srtt >= 0 ? srtt / MILLISECOND : 0);
    }
    this.sim.queue.schedule(this.#event, now + this.interval);
  }
}

// ---------------------------------------------------------------------------------------------
// Results (the JSON shape; see sim/README.md)

/** Two percentiles, milliseconds. */
export interface Percentiles {
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
}

/** Per-interval samples of one flow. */
export interface FlowSeries {
  /** Bytes delivered to the receiving application in each interval, as bit/s. */
  throughput_bps: number[];
  /** Congestion window at each sample, segments. */
  cwnd_segments: number[];
  /** Sender's smoothed RTT at each sample, ms (0 before the first sample). */
  srtt_ms: number[];
}

/** A sender's loss-recovery counters (from the recovery engine's TCP_INFO). */
export interface RecoveryCounts {
  /** Segments ever marked lost. */
  lost_segments: number;
  /** Fast-recovery episodes. */
  fast_recoveries: number;
  /** Retransmission timeouts. */
  rto_expirations: number;
  /** Tail loss probes sent. */
  tail_loss_probes: number;
  /** D-SACKs received (the receiver got a segment twice). */
  dsacks: number;
  /** Window reductions undone as spurious. */
  spurious_undos: number;
}

function recoveryOf(tcb: { rec: { info(): RecoveryInfo } } | null): RecoveryCounts {
  if (tcb === null) {
    return {
      lost_segments: 0,
      fast_recoveries: 0,
      rto_expirations: 0,
      tail_loss_probes: 0,
      dsacks: 0,
      spurious_undos: 0,
    };
  }
  const i = tcb.rec.info();
  return {
    lost_segments: i.lostSegs,
    fast_recoveries: i.recoveries,
    rto_expirations: i.rtoCount,
    tail_loss_probes: i.tlpCount,
    dsacks: i.dsacks,
    spurious_undos: i.spuriousUndos,
  };
}

/** One flow's outcome. */
export interface FlowResult {
  /** Flow index, 0-based. */
  id: number;
  /** Algorithm name. */
  cc: string;
  /** "builtin", "registered", or the .wasm file the algorithm was loaded from. */
  cc_source: string;
  /** The flow's base round-trip propagation delay, ms. */
  base_rtt_ms: number;
  /** When the flow started (connected), seconds (`--stagger`). */
  start_s: number;
  /** Bytes delivered to the receiving application, as bit/s from the flow's start to the end. */
  goodput_bps: number;
  /** Bytes delivered to the receiving application. */
  bytes_delivered: number;
  /** Every delivered byte matched what was sent, some arrived, and no socket failed. */
  verified: boolean;
  /** Segments the sender retransmitted. */
  retransmits: number;
  /** The sender's loss-recovery counters. */
  recovery: RecoveryCounts;
  /**
   * Segments the receiving stack discarded, by reason (non-zero counts only), e.g.
   * "bad-checksum" under --corrupt, "ooo-full" when more holes were open than it tracks.
   */
  receiver_discards: Record<string, number>;
  /** Per-ACK RTT samples of the sender, ms. */
  rtt_ms: Percentiles;
  /** Number of RTT samples behind `rtt_ms`. */
  rtt_samples: number;
  /** Largest congestion window, segments (of the connection's MSS). */
  cwnd_max_segments: number;
  /** A socket error, or null. */
  error: string | null;
  /** Per-interval samples. */
  series: FlowSeries;
}

/** The bottleneck's outcome. */
export interface LinkResult {
  /** Bottleneck rate, bit/s. */
  rate_bps: number;
  /** Base round-trip propagation delay, ms. */
  rtt_ms: number;
  /** Bottleneck buffer, packets. */
  queue_packets: number;
  /** Fraction of the run the bottleneck was transmitting (data direction). */
  utilization: number;
  /** Per-packet queueing delay at the bottleneck, ms. */
  queue_delay_ms: Percentiles;
  /** Frames dropped: buffer overflow plus random loss. */
  dropped: number;
  /** Of `dropped`, buffer overflows. */
  dropped_queue: number;
  /** Of `dropped`, random losses (`--loss`). */
  dropped_loss: number;
  /** Frames marked CE. */
  marked: number;
  /** Frames that got a flipped bit (`--corrupt`). */
  corrupted: number;
  /** Extra copies delivered (`--duplicate`). */
  duplicated: number;
  /** Frames delayed out of order (`--reorder`). */
  reordered: number;
  /** Largest queue seen, packets. */
  queue_max_packets: number;
  /**
   * Frames lost anywhere else (access links, host and switch queues, the ACK direction).
   * Should be 0: the setup makes the bottleneck the only place that queues.
   */
  dropped_elsewhere: number;
}

/** The whole result: what `--json` writes. */
export interface ExperimentResult {
  /** Root seed. */
  seed: number;
  /** Virtual run time, seconds. */
  duration_s: number;
  /** Impairment settings (probabilities) and the ECN threshold (null = off). */
  params: {
    stagger_s: number;
    pacing: boolean;
    loss: number;
    reorder: number;
    reorder_delay_ms: number;
    duplicate: number;
    corrupt: number;
    ecn_k: number | null;
  };
  /** The bottleneck. */
  link: LinkResult;
  /** One entry per flow. */
  flows: FlowResult[];
  /** Jain's fairness index of the flows' goodputs. */
  jain: number;
  /** Sample times and bottleneck queue length at each sample. */
  series: { interval_s: number; t_s: number[]; queue_packets: number[] };
}

/**
 * Median and 99th percentile of ns samples, in ms: `percentile()`'s nearest rank, but one sort
 * of one copy (1 Gbit/s for 30 s is 2.5 M queue-delay samples).
 */
function p50p99Ms(samples: Float64Array): Percentiles {
  if (samples.length === 0) return { p50: 0, p99: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number): number => {
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sig(sorted[Math.min(rank, sorted.length) - 1]! / MILLISECOND, 5);
  };
  return { p50: at(50), p99: at(99) };
}

/** Rounds to `digits` significant digits so the JSON stays short and stable. */
function sig(x: number, digits = 6): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  return Number(x.toPrecision(digits));
}

/** Thrown for parameters no dumbbell can have. */
export class ExperimentParamsError extends RangeError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ExperimentParamsError";
  }
}

function check(p: ExperimentParams): void {
  if (p.flows.length === 0) {
    throw new ExperimentParamsError("no flows: give at least one, e.g. --flows reno");
  }
  if (p.flows.length > MAX_FLOWS) {
    throw new ExperimentParamsError(`${p.flows.length} flows: at most ${MAX_FLOWS} are supported`);
  }
  if (!(p.duration > 0)) {
    throw new ExperimentParamsError("duration must be > 0, e.g. --duration 10s");
  }
  if (!(p.rtt >= 0)) throw new ExperimentParamsError("rtt must be >= 0, e.g. --rtt 20ms");
  if (p.flowRtts.length > 0) {
    if (p.flowRtts.length !== p.flows.length) {
      throw new ExperimentParamsError(
        `${p.flowRtts.length} RTTs for ${p.flows.length} flows: give one RTT for all flows or ` +
          `one per flow, e.g. --flows reno,reno --rtt 20ms,80ms`,
      );
    }
    if (p.flowRtts.some((r) => !(r >= p.rtt))) {
      throw new ExperimentParamsError(
        "a flow's RTT cannot be below the bottleneck's base RTT; with --rtt 20ms,80ms the " +
          "bottleneck gets the smallest",
      );
    }
  }
  if (!(p.queuePackets >= 1)) {
    throw new ExperimentParamsError("queue must be at least 1 packet, e.g. --queue 100");
  }
  if (!(p.stagger >= 0) || (p.flows.length - 1) * p.stagger >= p.duration) {
    throw new ExperimentParamsError(
      `with --stagger ${p.stagger / SECOND}s the last of ${p.flows.length} flows would start ` +
        `after the run ends; lower --stagger or raise --duration`,
    );
  }
  if (p.interval !== null && !(p.interval > 0)) {
    throw new ExperimentParamsError("interval must be > 0, e.g. --interval 100ms");
  }
}

/** What `ExperimentHooks.setup` gets: the simulator and the topology, before time 0 runs. */
export interface ExperimentContext {
  /** The simulator (schedule events, set `onDeliver`, add monitors). */
  readonly sim: Simulator;
  /** The dumbbell (e.g. `dumbbell.bottleneck.configure({ rateBps })` at some time). */
  readonly dumbbell: Dumbbell;
}

/** Extension points for tests and scripted scenarios. */
export interface ExperimentHooks {
  /**
   * Called once the hosts and flows exist, before the run starts; may schedule events (a rate
   * step, a loss burst) or install `sim.onDeliver`. Keep it deterministic to keep the JSON so.
   */
  setup?: (ctx: ExperimentContext) => void;
  /**
   * Called after each virtual second (and at the end) with the virtual time reached, ns; for
   * progress displays. Runs between events, so it cannot change the outcome.
   */
  progress?: (now: Instant, duration: Duration) => void;
}

/** Resolves the flows' algorithms (loading .wasm modules) and runs the experiment. */
export async function runExperiment(
  params: ExperimentParams,
  hooks: ExperimentHooks = {},
): Promise<ExperimentResult> {
  check(params);
  const ccs = await resolveCcs(params.flows);
  return simulate(params, ccs, hooks);
}

/** Runs the experiment with algorithms already resolved (synchronous; virtual time only). */
export function simulate(
  p: ExperimentParams,
  ccs: readonly ResolvedCc[],
  hooks: ExperimentHooks = {},
): ExperimentResult {
  check(p);
  const n = ccs.length;
  const rttOf = (i: number): Duration => p.flowRtts[i] ?? p.rtt;
  const maxRtt = Math.max(p.rtt, ...p.flowRtts);
  const sim = new Simulator({ seed: p.seed });
  const maxFrames = Math.ceil((p.duration / SECOND) * (p.rateBps / 8 / 1000) * 1.1) + 1024;
  const db = dumbbell(sim, {
    n,
    bottleneck: {
      rateBps: p.rateBps,
      delay: Math.round(p.rtt / 2),
      queuePackets: p.queuePackets,
      loss: p.loss,
      reorder: p.reorder,
      reorderDelay: p.reorderDelay,
      duplicate: p.duplicate,
      corrupt: p.corrupt,
      ...(p.ecnK === null ? {} : { ecnK: p.ecnK }),
      maxQueueDelaySamples: Math.min(maxFrames, 1 << 23),
    },
    bottleneckReverse: { rateBps: p.rateBps, delay: Math.round(p.rtt / 2), queuePackets: 1000 },
    access: (i, side) => ({
      rateBps: p.rateBps * 10,
      delay: side === "sender" ? Math.round((rttOf(i) - p.rtt) / 2) : 0,
      queuePackets: 10_000,
    }),
    prefix: "sim",
  });
  // Socket buffers large enough that neither end's window limits the algorithm: twice the
  // path's capacity (BDP plus a full buffer).
  const pipe = (p.rateBps / 8) * (maxRtt / SECOND) + p.queuePackets * 1514;
  const bufferBytes = Math.max(256 * 1024, Math.ceil((2 * pipe) / 65536) * 65536);
  const scratch = new Uint8Array(256 * 1024);
  const flows: Flow[] = [];
  for (let i = 0; i < n; i++) {
    const hi = 1 + (i >> 8);
    const s = new StackHost(
      db.senders[i]!,
      { ipv4: [{ address: `198.18.${hi}.${(i & 255) + 1}`, prefixLength: 16 }] },
      p.seed * 1000 + 2 * i + 1,
      p.tcp,
    );
    const r = new StackHost(
      db.receivers[i]!,
      { ipv4: [{ address: `198.18.${hi + 100}.${(i & 255) + 1}`, prefixLength: 16 }] },
      p.seed * 1000 + 2 * i + 2,
      p.tcp,
    );
    const listener = r.tcp.listen(null, PORT, 4, {
      congestionControl: ccs[i]!.registryName,
      sendBufferSize: 64 * 1024,
      receiveBufferSize: bufferBytes,
    });
    const flow = new Flow(
      i,
      ccs[i]!,
      s,
      r,
      IpAddress.parse(`198.18.${hi + 100}.${(i & 255) + 1}`),
      listener,
      new FlowPattern(p.seed, i),
      bufferBytes,
      scratch,
    );
    s.app = (now) => flow.pumpSend(now);
    r.app = (now) => flow.pumpRecv(now);
    sim.addNode(s, [db.senders[i]!]);
    sim.addNode(r, [db.receivers[i]!]);
    flow.start = i * p.stagger;
    if (flow.start === 0) sim.wake(s);
    else sim.schedule(flow.start, () => sim.wake(s));
    flows.push(flow);
  }
  const interval = p.interval ?? autoInterval(p.duration, maxRtt);
  const bottleneck = db.bottleneck;
  const sampler = new Sampler(sim, flows, () => bottleneck.queuedPackets, interval);
  hooks.setup?.({ sim, dumbbell: db });
  // In steps of one virtual second for progress reports; the event order is the same as one
  // runUntil(duration).
  for (let t = SECOND;; t += SECOND) {
    const stop = Math.min(t, p.duration);
    sim.runUntil(stop);
    hooks.progress?.(stop, p.duration);
    if (stop === p.duration) break;
  }

  const seconds = p.duration / SECOND;
  const st = bottleneck.stats;
  // Frames lost anywhere but the bottleneck: should stay 0 (else the access side, not the
  // bottleneck under test, shaped the result).
  let elsewhere = 0;
  const channels = [db.bottleneckReverse, ...db.senderAccess, ...db.receiverAccess]
    .flatMap((c) => "up" in c ? [c.up, c.down] : [c]);
  for (const c of channels) elsewhere += c.stats.droppedQueue + c.stats.droppedNoPort;
  for (const port of [...db.senders, ...db.receivers]) {
    elsewhere += port.stats.rxDroppedQueue + port.stats.txBlocked + port.stats.txNoCarrier;
  }
  for (const port of [...db.left.ports, ...db.right.ports]) {
    elsewhere += port.stats.rxDroppedQueue + port.stats.txNoCarrier;
  }
  elsewhere += db.left.stats.egressBlocked + db.right.stats.egressBlocked;
  const qd = st.queueDelays();
  const flowResults: FlowResult[] = flows.map((f, i) => {
    const tcb = f.sendId < 0 ? null : f.sender.tcp.tcbOf(f.sendId);
    const rtts = f.probe.rtt.subarray(0, f.probe.rttCount);
    const del = sampler.delivered[i]!;
    const throughput = del.map((d, k) =>
      sig(((d - (k === 0 ? 0 : del[k - 1]!)) * 8) / (interval / SECOND))
    );
    const verified = f.error === null && f.mismatches === 0 && f.delivered > 0;
    const r: FlowResult = {
      id: i,
      cc: f.probe.rec?.cc.name ?? f.cc.label,
      cc_source: f.cc.source,
      start_s: f.start / SECOND,
      base_rtt_ms: rttOf(i) / MILLISECOND,
      goodput_bps: sig((f.delivered * 8) / ((p.duration - f.start) / SECOND)),
      bytes_delivered: f.delivered,
      verified,
      retransmits: tcb === null ? 0 : tcb.info().retransmits,
      recovery: recoveryOf(tcb),
      receiver_discards: f.receiver.tcp.counters.snapshot(),
      rtt_ms: p50p99Ms(rtts),
      rtt_samples: f.probe.rttCount,
      cwnd_max_segments: sig(f.probe.cwndMaxSegments, 5),
      error: f.error ??
        (f.mismatches > 0
          ? `payload mismatch at stream offset ${f.firstMismatch}`
          : f.delivered === 0
          ? "no bytes delivered"
          : null),
      series: {
        throughput_bps: throughput,
        cwnd_segments: sampler.cwnd[i]!.map((v) => sig(v, 5)),
        srtt_ms: sampler.srtt[i]!.map((v) => sig(v, 5)),
      },
    };
    // The run is over: release both ends' algorithms (WebAssembly flows hold module slots).
    tcb?.rec.dispose();
    if (f.recvId >= 0) f.receiver.tcp.tcbOf(f.recvId)?.rec.dispose();
    return r;
  });
  return {
    seed: p.seed,
    duration_s: seconds,
    params: {
      stagger_s: p.stagger / SECOND,
      pacing: p.tcp.pacing ?? false,
      loss: p.loss,
      reorder: p.reorder,
      reorder_delay_ms: p.reorderDelay / MILLISECOND,
      duplicate: p.duplicate,
      corrupt: p.corrupt,
      ecn_k: p.ecnK,
    },
    link: {
      rate_bps: p.rateBps,
      rtt_ms: p.rtt / MILLISECOND,
      queue_packets: p.queuePackets,
      utilization: sig(st.utilization(p.duration), 5),
      queue_delay_ms: p50p99Ms(qd),
      dropped: st.droppedQueue + st.droppedLoss,
      dropped_queue: st.droppedQueue,
      dropped_loss: st.droppedLoss,
      marked: st.marked,
      corrupted: st.corrupted,
      duplicated: st.duplicated,
      reordered: st.reordered,
      queue_max_packets: st.maxQueuePackets,
      dropped_elsewhere: elsewhere,
    },
    flows: flowResults,
    jain: sig(jainIndex(flowResults.map((f) => f.goodput_bps)), 6),
    series: {
      interval_s: interval / SECOND,
      t_s: sampler.t.map((t) => sig(t, 9)),
      queue_packets: sampler.queue,
    },
  };
}
