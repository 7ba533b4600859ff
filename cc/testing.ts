/**
 * Test and bench helpers: a mutable `AckSample`, a synthetic sender that turns a simple path
 * model into ACK events, and a loader for the built modules.
 *
 * @module
 */

import type { AckSample } from "../stacks/tcpip/tcp/recovery/cc.ts";
import type { CongestionControl } from "../stacks/tcpip/tcp/recovery/cc.ts";
import { MILLISECOND } from "../stacks/time.ts";
import { ensureBuilt, modulePath } from "./build.ts";
import { CcHost, type CcModule } from "./host.ts";

/** A writable `AckSample` for driving algorithms by hand. */
export class MutableAckSample implements AckSample {
  /** Bytes newly acknowledged. */
  ackedBytes = 0;
  /** Segments newly acknowledged. */
  ackedPackets = 0;
  /** Rate-sample bytes. */
  delivered = 0;
  /** Rate-sample CE bytes. */
  deliveredCe = 0;
  /** Rate-sample interval, ns, or -1. */
  interval = -1;
  /** RTT sample, ns, or -1. */
  rtt = -1;
  /** Min RTT, ns, or -1. */
  minRtt = -1;
  /** Smoothed RTT, ns, or -1. */
  srtt = -1;
  /** Bytes in flight after the ACK. */
  inFlight = 0;
  /** Bytes in flight before the ACK. */
  priorInFlight = 0;
  /** Bytes newly lost. */
  losses = 0;
  /** App-limited sample. */
  isAppLimited = false;
  /** Cwnd-limited sample (default true: hand-driven flows are window-bound, so they grow). */
  isCwndLimited = true;
  /** ECE flag. */
  ece = false;
  /** In recovery. */
  inRecovery = false;
  /** Arrival time, ns. */
  now = 0;
  /** MSS. */
  mss = 1448;
  /**
   * Bytes delivered so far; -1 (the default) lets `WasmCc` derive it by summing `ackedBytes`,
   * as the engine's exact counter would.
   */
  totalDelivered = -1;
  /** `totalDelivered` when the sampled packet was sent; ignored while `totalDelivered` is -1. */
  priorDelivered = -1;
}

/**
 * A fluid one-flow path: every ACK acknowledges `segsPerAck` segments; the RTT is `baseRtt`
 * plus queueing when the window exceeds the BDP of `rateBps` (bytes/s). Good enough to produce
 * plausible rate samples for unit tests; the real stack runs on the simulator.
 */
export class SyntheticPath {
  /** Current time, ns. */
  now = 1_000 * MILLISECOND;
  /** The reused sample. */
  readonly s: MutableAckSample = new MutableAckSample();
  /** Total bytes delivered. */
  delivered = 0;
  /** Min RTT seen, ns. */
  minRtt = -1;
  /** Extra RTT added on top of the model (e.g. to make BBR see a higher RTT), ns. */
  extraRtt = 0;

  /** Creates the path. */
  constructor(
    readonly rateBps: number,
    readonly baseRtt: number,
    readonly mss = 1448,
    readonly segsPerAck = 2,
  ) {
    this.s.mss = mss;
  }

  /** RTT with a full window of `cwnd` bytes in flight. */
  rttFor(cwnd: number): number {
    const bdp = (this.rateBps * this.baseRtt) / 1e9;
    const queue = Math.max(0, cwnd - bdp);
    return this.baseRtt + (queue / this.rateBps) * 1e9 + this.extraRtt;
  }

  /**
   * Delivers one ACK to `cc` given its current window: time advances by the ACK spacing of the
   * bottleneck (or of the window when it is below the BDP).
   */
  ack(
    cc: CongestionControl,
    opts: { ece?: boolean; appLimited?: boolean; inFlight?: number; cwndLimited?: boolean } = {},
  ): void {
    const s = this.s;
    const bytes = this.segsPerAck * this.mss;
    const inflight = opts.inFlight ?? cc.cwnd;
    const rtt = this.rttFor(inflight);
    const rate = Math.min(this.rateBps, (inflight * 1e9) / rtt);
    this.now += Math.round((bytes / rate) * 1e9);
    this.delivered += bytes;
    if (this.minRtt < 0 || rtt < this.minRtt) this.minRtt = rtt;
    s.now = this.now;
    s.ackedBytes = bytes;
    s.ackedPackets = this.segsPerAck;
    s.delivered = Math.max(bytes, Math.min(inflight, this.delivered));
    s.interval = Math.round((s.delivered / rate) * 1e9);
    s.deliveredCe = opts.ece === true ? bytes : 0;
    s.rtt = Math.round(rtt);
    s.minRtt = Math.round(this.minRtt);
    s.srtt = Math.round(rtt);
    s.priorInFlight = inflight;
    s.inFlight = Math.max(0, inflight - bytes);
    s.losses = 0;
    s.isAppLimited = opts.appLimited ?? false;
    s.isCwndLimited = opts.cwndLimited ?? true;
    s.ece = opts.ece ?? false;
    cc.onAck(s);
  }
}

/** Builds (if stale) and loads the named modules into a new host. */
export async function loadBuilt(
  names: readonly string[],
  host: CcHost = new CcHost(),
): Promise<{ host: CcHost; modules: Map<string, CcModule> }> {
  await ensureBuilt();
  const modules = new Map<string, CcModule>();
  for (const n of names) modules.set(n, await host.loadFile(modulePath(n)));
  return { host, modules };
}
