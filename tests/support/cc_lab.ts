/**
 * A congestion-control lab on the simulator for tests: n bulk TCP flows (real `Interface` +
 * `TcpStack` per host) across a dumbbell, with direct access to every sender's recovery engine.
 * Each flow records a per-ACK trace through the engine's official observer
 * (`RecoveryEngine.onAckSample`), and its bytes are checked end to end with SHA-256 (the
 * receiver hashes what it reads; `verify()` hashes the same stream prefix on the sender side).
 *
 * Unlike `sim/experiment.ts` (the `deno task sim` core) this keeps the stacks reachable, so a
 * test can swap algorithms mid-flow (`setOption(id, "congestionControl", ...)`) and read module
 * state (`WasmCc.stateView()`).
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { type Instant, MILLISECOND, SECOND } from "../../stacks/time.ts";
import { type RecoveryEngineApi, RecoveryInfo } from "../../stacks/tcpip/tcp/recovery/api.ts";
import type { AckSample, CongestionControl } from "../../stacks/tcpip/tcp/recovery/cc.ts";
import { IpAddress } from "../../stacks/tcpip/wire/address.ts";
import { Simulator } from "../../sim/simulator.ts";
import type { SimPort } from "../../sim/port.ts";
import { type Dumbbell, dumbbell } from "../../sim/topology.ts";
import type { ChannelParams } from "../../sim/channel.ts";
import { StackHost } from "../../sim/stack_host.ts";

const PORT = 5001;
/** Period of each flow's byte stream (prime, so nothing window-sized lines up with it). */
const PERIOD = 1_000_003;

/** Engine states as numbers in the trace. */
export const STATE_CODE: Record<string, number> = { open: 0, disorder: 1, recovery: 2, loss: 3 };

/** A growable column of numbers. */
class Column {
  a: Float64Array = new Float64Array(4096);
  n = 0;
  push(v: number): void {
    if (this.n === this.a.length) {
      const g = new Float64Array(this.a.length * 2);
      g.set(this.a);
      this.a = g;
    }
    this.a[this.n++] = v;
  }
  get values(): Float64Array {
    return this.a.subarray(0, this.n);
  }
}

/** One row per ACK that delivered data, taken after the algorithm processed it. */
export class AckTrace {
  readonly t = new Column();
  readonly cwnd = new Column();
  readonly ssthresh = new Column();
  readonly srtt = new Column();
  readonly minRtt = new Column();
  readonly rtt = new Column();
  readonly inFlight = new Column();
  readonly state = new Column();
  readonly ece = new Column();
  readonly acked = new Column();
  /**
   * Fast-recovery episodes entered so far (`info().recoveries`): tells back-to-back episodes
   * apart (an ACK that ends one recovery and starts the next keeps `state` at 2).
   */
  readonly episode = new Column();
  /** Algorithm name per row is not stored; swaps are noted here as (row, name). */
  readonly swaps: { row: number; name: string }[] = [];
  /** Rows. */
  get length(): number {
    return this.t.n;
  }
}

/** Lab parameters. */
export interface LabParams {
  /** Sender algorithm per flow (registry names). */
  ccs: readonly string[];
  /** Receiver algorithm per flow (default: the sender's; DCTCP needs its accurate ECE echo). */
  receiverCcs?: readonly string[];
  /** Bottleneck rate, bit/s. */
  rateBps: number;
  /** Base RTT (all of it on the bottleneck), ns. */
  rtt: number;
  /** Bottleneck buffer, packets. */
  queuePackets: number;
  /** CE marking threshold, packets (step marking), or undefined. */
  ecnK?: number;
  /** Random loss on the data direction. */
  loss?: number;
  /** Flow i starts at i * stagger, ns. */
  stagger?: number;
  /** Socket buffers, bytes (default: twice BDP plus buffer, at least 256 KiB). */
  bufferBytes?: number;
  /** Receiver's receive buffer, bytes (default `bufferBytes`): a small one limits the flow. */
  receiveBufferBytes?: number;
  /** Root seed. */
  seed?: number;
}

/** One bulk flow. */
export class LabFlow {
  sendId = -1;
  recvId = -1;
  written = 0;
  delivered = 0;
  error: string | null = null;
  readonly trace: AckTrace = new AckTrace();
  /** Set by `finish()`: no more writes; the sender closes once everything is queued. */
  finished = false;
  /** True once the receiver read end-of-stream (and closed its side). */
  eof = false;
  readonly #hash: Hash = createHash("sha256");
  #connectedAt: Instant = -1;

  constructor(
    readonly id: number,
    readonly cc: string,
    readonly sender: LabHost,
    readonly receiver: LabHost,
    readonly dst: IpAddress,
    readonly listener: number,
    readonly pattern: Uint8Array,
    readonly bufferBytes: number,
    readonly start: Instant,
  ) {}

  /** The sender's recovery engine (throws before connect). */
  get rec(): RecoveryEngineApi {
    const tcb = this.sender.tcp.tcbOf(this.sendId);
    if (tcb === null) throw new Error(`flow ${this.id} has no connection`);
    return tcb.rec;
  }

  /** The sender's algorithm in use now. */
  get ccImpl(): CongestionControl {
    return this.rec.cc;
  }

  /** When connect() was called, ns (-1 before). */
  get connectedAt(): Instant {
    return this.#connectedAt;
  }

  /** Live swap through the socket option (TCP_CONGESTION), noting the trace row. */
  swap(name: string, now: Instant): void {
    this.trace.swaps.push({ row: this.trace.length, name });
    this.sender.tcp.setOption(this.sendId, "congestionControl", name, now);
  }

  /** Ends the flow gracefully: stop writing, close (FIN after the queued data). */
  finish(now: Instant): void {
    this.finished = true;
    this.sender.tcp.close(this.sendId, now);
  }

  pumpSend(now: Instant): void {
    if (this.error !== null || now < this.start || this.finished) return;
    const tcp = this.sender.tcp;
    try {
      if (this.sendId < 0) {
        this.#connectedAt = now;
        this.sendId = tcp.connect(this.dst, PORT, now, {
          congestionControl: this.cc,
          sendBufferSize: this.bufferBytes,
          receiveBufferSize: this.bufferBytes,
        });
        const tr = this.trace;
        const rec = this.rec;
        const info = new RecoveryInfo();
        rec.onAckSample = (s: AckSample, cc: CongestionControl): void => {
          tr.t.push(s.now);
          tr.cwnd.push(cc.cwnd);
          tr.ssthresh.push(cc.ssthresh);
          tr.srtt.push(s.srtt);
          tr.minRtt.push(s.minRtt);
          tr.rtt.push(s.rtt);
          tr.inFlight.push(s.inFlight);
          tr.state.push(s.inRecovery ? 2 : 0);
          tr.ece.push(s.ece ? 1 : 0);
          tr.acked.push(s.ackedBytes);
          tr.episode.push(rec.info(info).recoveries);
        };
      }
      for (;;) {
        const off = this.written % PERIOD;
        const n = tcp.send(this.sendId, this.pattern.subarray(off, off + PERIOD), now);
        if (n === 0) break;
        this.written += n;
      }
    } catch (e) {
      this.error = `sender: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  pumpRecv(now: Instant, scratch: Uint8Array): void {
    if (this.error !== null) return;
    const tcp = this.receiver.tcp;
    try {
      if (this.recvId < 0) {
        const id = tcp.accept(this.listener);
        if (id < 0) return;
        this.recvId = id;
      }
      for (;;) {
        if (this.eof) break;
        const n = tcp.recv(this.recvId, scratch, now);
        if (n === 0) {
          this.eof = true;
          tcp.close(this.recvId, now);
          break;
        }
        if (n < 0) break;
        this.#hash.update(scratch.subarray(0, n));
        this.delivered += n;
      }
    } catch (e) {
      this.error = `receiver: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  /**
   * SHA-256 of what the receiver read equals SHA-256 of the same-length prefix of the sent
   * stream. Consumes the receiver's hash: call once, at the end.
   */
  verify(): { ok: boolean; received: string; sent: string } {
    const received = this.#hash.digest("hex");
    const h = createHash("sha256");
    let left = this.delivered;
    let off = 0;
    while (left > 0) {
      const n = Math.min(left, PERIOD - off);
      h.update(this.pattern.subarray(off, off + n));
      left -= n;
      off = (off + n) % PERIOD;
    }
    const sent = h.digest("hex");
    return { ok: received === sent && this.delivered > 0, received, sent };
  }
}

/** Interface + TcpStack on a port, with the flows' application code run after each poll. */
export class LabHost extends StackHost {
  /** A host with `address`/24 on `port`; `seed` feeds TCP's randomness. */
  constructor(port: SimPort, address: string, seed: number) {
    super(port, { ipv4: [{ address, prefixLength: 24 }] }, seed);
  }
}

function stream(seed: number, flow: number): Uint8Array {
  const out = new Uint8Array(2 * PERIOD);
  let s = (Math.imul(seed ^ 0x27d4eb2f, 0x9e3779b1) ^ Math.imul(flow + 7, 0x85ebca6b)) >>> 0 || 1;
  for (let i = 0; i < PERIOD; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s >>> 24;
  }
  out.copyWithin(PERIOD, 0, PERIOD);
  return out;
}

/** The lab: simulator, dumbbell, flows. */
export class CcLab {
  readonly sim: Simulator;
  readonly db: Dumbbell;
  readonly flows: LabFlow[] = [];

  constructor(readonly p: LabParams) {
    const n = p.ccs.length;
    this.sim = new Simulator({ seed: p.seed ?? 1 });
    const bottleneck: ChannelParams = {
      rateBps: p.rateBps,
      delay: Math.round(p.rtt / 2),
      queuePackets: p.queuePackets,
      ...(p.loss === undefined ? {} : { loss: p.loss }),
      ...(p.ecnK === undefined ? {} : { ecnK: p.ecnK }),
      maxQueueDelaySamples: 0,
    };
    this.db = dumbbell(this.sim, {
      n,
      bottleneck,
      bottleneckReverse: { rateBps: p.rateBps, delay: Math.round(p.rtt / 2), queuePackets: 4000 },
      access: { rateBps: p.rateBps * 10, delay: 0, queuePackets: 10_000 },
      prefix: "lab",
    });
    const pipe = (p.rateBps / 8) * (p.rtt / SECOND) + p.queuePackets * 1514;
    const buf = p.bufferBytes ?? Math.max(256 * 1024, Math.ceil((2 * pipe) / 65536) * 65536);
    const scratch = new Uint8Array(256 * 1024);
    for (let i = 0; i < n; i++) {
      const s = new LabHost(this.db.senders[i]!, `198.18.0.${i + 1}`, (p.seed ?? 1) * 100 + 2 * i);
      const r = new LabHost(
        this.db.receivers[i]!,
        `198.18.0.${i + 101}`,
        (p.seed ?? 1) * 100 + 2 * i + 1,
      );
      const listener = r.tcp.listen(null, PORT, 4, {
        congestionControl: p.receiverCcs?.[i] ?? p.ccs[i]!,
        sendBufferSize: 64 * 1024,
        receiveBufferSize: p.receiveBufferBytes ?? buf,
      });
      const f = new LabFlow(
        i,
        p.ccs[i]!,
        s,
        r,
        IpAddress.parse(`198.18.0.${i + 101}`),
        listener,
        stream(p.seed ?? 1, i),
        buf,
        i * (p.stagger ?? 0),
      );
      // Static ARP entries: on this dumbbell ARP would cross the bottleneck and double the
      // handshake's RTT sample (which seeds e.g. BBR's initial pacing rate).
      s.iface.neighbors.confirm(4, f.dst.bytes, this.db.receivers[i]!.mac, 0, true);
      r.iface.neighbors.confirm(
        4,
        IpAddress.parse(`198.18.0.${i + 1}`).bytes,
        this.db.senders[i]!.mac,
        0,
        true,
      );
      s.app = (now) => f.pumpSend(now);
      r.app = (now) => f.pumpRecv(now, scratch);
      this.sim.addNode(s, [this.db.senders[i]!]);
      this.sim.addNode(r, [this.db.receivers[i]!]);
      if (f.start === 0) this.sim.wake(s);
      else this.sim.schedule(f.start, () => this.sim.wake(s));
      this.flows.push(f);
    }
  }

  /** Calls `fn(now)` every `interval` ns from `interval` on (a sampler). */
  every(interval: number, fn: (now: Instant) => void): void {
    const tick = (): void => {
      fn(this.sim.now);
      this.sim.schedule(this.sim.now + interval, tick);
    };
    this.sim.schedule(interval, tick);
  }

  /** Runs the simulation up to virtual time `t`. */
  run(t: Instant): void {
    this.sim.runUntil(t);
  }

  /** Wakes a flow's sender (after changing something from outside a poll). */
  wake(f: LabFlow): void {
    this.sim.wake(f.sender);
  }
}

/** Jain's fairness index of `xs`. */
export function jain(xs: readonly number[]): number {
  let s = 0;
  let s2 = 0;
  for (const x of xs) {
    s += x;
    s2 += x * x;
  }
  return s2 > 0 ? (s * s) / (xs.length * s2) : 0;
}

/** Milliseconds, for messages. */
export function ms(ns: number): string {
  return (ns / MILLISECOND).toFixed(2);
}
