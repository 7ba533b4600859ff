/**
 * The demo's story over the simulated network (what `deno task demo` runs without root): one
 * bulk TCP flow between two real stacks (`Interface` + `TcpStack`) across a simulated
 * bottleneck, its congestion control swapped live cubic -> bbr -> dctcp through the socket
 * option the NSM's `ctl cc set` uses, sampled once per (virtual) second. The receiver hashes
 * what it reads and the result checks it against the sent stream (SHA-256), so the swaps are
 * shown not to lose or reorder a byte. Virtual time, fixed seed: same output on every run.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type Instant, MILLISECOND, SECOND } from "../stacks/time.ts";
import { IpAddress } from "../stacks/tcpip/wire/address.ts";
import { Simulator } from "./simulator.ts";
import { dumbbell } from "./topology.ts";
import { StackHost } from "./stack_host.ts";
import { type DemoSample, type DemoSwap, secondOf } from "./demo_report.ts";

/** Parameters of the simulated story. */
export interface SimStoryParams {
  /** Transfer length, virtual seconds (default 20). */
  duration?: number;
  /** Algorithms in order; the flow starts on the first and swaps at equal thirds. */
  ccs?: readonly string[];
  /** Bottleneck rate, bit/s (default 50 Mbit/s). */
  rateBps?: number;
  /** Base RTT, ns (default 20 ms). */
  rtt?: Instant;
  /** Bottleneck buffer, packets (default 100). */
  queuePackets?: number;
  /** CE marking threshold, packets (default 30: DCTCP's signal). */
  ecnK?: number;
  /** Sampling period for the plot, seconds (default 0.1). */
  sampleEvery?: number;
  /** Called with each one-second interval as it completes. */
  onSample?: (s: DemoSample) => void;
  /** Called at each swap. */
  onSwap?: (w: DemoSwap) => void;
}

/** What the simulated story produced. */
export interface SimStoryResult {
  /** One sample per `sampleEvery` (for the plot and the summary). */
  samples: DemoSample[];
  /** One line per virtual second (what `onSample` saw). */
  intervals: DemoSample[];
  /** The swaps. */
  swaps: DemoSwap[];
  /** Bytes the receiver read. */
  delivered: number;
  /** True when the receiver's SHA-256 equals the sent stream's over the same length. */
  intact: boolean;
  /** The connection's state at the end (ESTABLISHED: never dropped). */
  state: string;
  /** Describes the path. */
  path: string;
}

const PORT = 5201;
const PERIOD = 1_000_003;

/** Runs the story (synchronously, in virtual time). The algorithms must be registered. */
export function runSimStory(p: SimStoryParams = {}): SimStoryResult {
  const duration = p.duration ?? 20;
  const ccs = p.ccs ?? ["cubic", "bbr", "dctcp"];
  const rate = p.rateBps ?? 50e6;
  const rtt = p.rtt ?? 20 * MILLISECOND;
  const queue = p.queuePackets ?? 100;
  const sim = new Simulator({ seed: 7 });
  const db = dumbbell(sim, {
    n: 1,
    bottleneck: {
      rateBps: rate,
      delay: Math.round(rtt / 2),
      queuePackets: queue,
      ecnK: p.ecnK ?? 30,
      maxQueueDelaySamples: 0,
    },
    bottleneckReverse: { rateBps: rate, delay: Math.round(rtt / 2), queuePackets: 4000 },
    access: { rateBps: rate * 10, delay: 0, queuePackets: 10_000 },
    prefix: "demo",
  });
  const a = new StackHost(
    db.senders[0]!,
    { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] },
    11,
  );
  const b = new StackHost(
    db.receivers[0]!,
    { ipv4: [{ address: "198.18.0.2", prefixLength: 24 }] },
    12,
  );
  const dst = IpAddress.parse("198.18.0.2");
  a.iface.neighbors.confirm(4, dst.bytes, db.receivers[0]!.mac, 0, true);
  b.iface.neighbors.confirm(4, IpAddress.parse("198.18.0.1").bytes, db.senders[0]!.mac, 0, true);
  const bdp = (rate / 8) * (rtt / SECOND) + queue * 1514;
  const buf = Math.max(256 * 1024, Math.ceil((2 * bdp) / 65536) * 65536);
  // DCTCP's accurate ECE echo on the receiver throughout, so the swap to dctcp has its signal.
  const listener = b.tcp.listen(null, PORT, 4, {
    congestionControl: ccs.includes("dctcp") ? "dctcp" : ccs[0]!,
    receiveBufferSize: buf,
  });
  const pattern = new Uint8Array(2 * PERIOD);
  let x = 0x2545f491;
  for (let i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    pattern[i] = x >>> 24;
  }
  pattern.copyWithin(PERIOD, 0, PERIOD);
  let sid = -1, rid = -1, written = 0, delivered = 0;
  const hash = createHash("sha256");
  const scratch = new Uint8Array(256 * 1024);
  a.app = (now) => {
    if (sid < 0) {
      sid = a.tcp.connect(dst, PORT, now, {
        congestionControl: ccs[0]!,
        sendBufferSize: buf,
        receiveBufferSize: buf,
      });
    }
    for (;;) {
      const off = written % PERIOD;
      const n = a.tcp.send(sid, pattern.subarray(off, off + PERIOD), now);
      if (n === 0) break;
      written += n;
    }
  };
  b.app = (now) => {
    if (rid < 0) {
      rid = b.tcp.accept(listener);
      if (rid < 0) return;
    }
    for (;;) {
      const n = b.tcp.recv(rid, scratch, now);
      if (n <= 0) break;
      hash.update(scratch.subarray(0, n));
      delivered += n;
    }
  };
  sim.addNode(a, [db.senders[0]!]);
  sim.addNode(b, [db.receivers[0]!]);
  sim.wake(a);

  const samples: DemoSample[] = [];
  const intervals: DemoSample[] = [];
  const swaps: DemoSwap[] = [];
  const every = p.sampleEvery ?? 0.1;
  const perSecond = Math.max(1, Math.round(1 / every));
  let lastAcked = 0, lastRetr = 0;
  const steps = Math.round(duration / every);
  for (let k = 1; k <= steps; k++) {
    sim.schedule(Math.round(k * every * SECOND), () => {
      const info = a.tcp.info(sid);
      const s: DemoSample = {
        t: k * every,
        mbps: ((info.bytesAcked - lastAcked) * 8) / 1e6 / every,
        cwndBytes: info.cwnd,
        rttMs: info.srtt < 0 ? null : info.srtt / 1e6,
        retransmits: info.retransmits - lastRetr,
        cc: a.tcp.getOptions(sid).congestionControl,
      };
      lastAcked = info.bytesAcked;
      lastRetr = info.retransmits;
      samples.push(s);
      if (k % perSecond === 0) {
        const line = secondOf(samples.slice(-perSecond));
        intervals.push(line);
        p.onSample?.(line);
      }
    });
  }
  for (let k = 1; k < ccs.length; k++) {
    const t = Math.round((duration * k) / ccs.length);
    sim.schedule(Math.round(t * SECOND), () => {
      const from = a.tcp.getOptions(sid).congestionControl;
      a.tcp.setOption(sid, "congestionControl", ccs[k]!, sim.now);
      const w = { t, from, to: ccs[k]! };
      swaps.push(w);
      p.onSwap?.(w);
      sim.wake(a);
    });
  }
  sim.runUntil(duration * SECOND + 1);
  const state = a.tcp.info(sid).state;
  // Same-length prefix of the sent stream.
  const h = createHash("sha256");
  let left = delivered, off = 0;
  while (left > 0) {
    const n = Math.min(left, PERIOD - off);
    h.update(pattern.subarray(off, off + n));
    left -= n;
    off = (off + n) % PERIOD;
  }
  return {
    samples,
    intervals,
    swaps,
    delivered,
    intact: delivered > 0 && h.digest("hex") === hash.digest("hex"),
    state,
    path: `${rate / 1e6} Mbit/s bottleneck, ${rtt / MILLISECOND} ms RTT, ${queue}-packet buffer, ` +
      `ECN marking above ${p.ecnK ?? 30} packets`,
  };
}
