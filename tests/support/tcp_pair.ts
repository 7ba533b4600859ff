/**
 * Two TcpStacks joined by a fake IP path (no Ethernet, no interface): a bottleneck of a given
 * rate and delay with a tail-drop queue, plus seeded loss, duplication, reordering and
 * corruption. For TCP-only transfer tests that need no IP layer; the full-stack tests use
 * the simulator.
 */

import { type Instant, MILLISECOND, NEVER } from "../../stacks/time.ts";
import type { IpOutput, IpReceiveInfo } from "../../stacks/tcpip/iface/protocol.ts";
import { TcpStack } from "../../stacks/tcpip/tcp/stack.ts";
import type { TcpConfig } from "../../stacks/tcpip/tcp/config.ts";
import { IpAddress } from "../../stacks/tcpip/wire/address.ts";

/** Path impairments (probabilities per packet). */
export interface PathParams {
  /** One-way propagation delay. */
  delay: number;
  /** Bottleneck rate in bytes per second. */
  rate: number;
  /** Largest queueing delay before tail drop. */
  maxQueue: number;
  /** Loss probability. */
  loss: number;
  /** Duplication probability. */
  duplicate: number;
  /** Probability a packet is held back by `reorderDelay` (reordering). */
  reorder: number;
  /** Extra delay of a reordered packet. */
  reorderDelay: number;
  /** Probability one payload byte is flipped (the checksum must catch it). */
  corrupt: number;
}

interface InFlight {
  at: Instant;
  to: 0 | 1;
  bytes: Uint8Array;
  ecn: number;
  order: number;
}

/** Deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class PairIp implements IpOutput {
  #pending: { len: number; ecn: number; buf: Uint8Array } | null = null;
  constructor(readonly pair: TcpPair, readonly side: 0 | 1, readonly addr: IpAddress) {}
  beginPacket(
    _src: IpAddress,
    _dst: IpAddress,
    _protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    const buf = new Uint8Array(length);
    this.#pending = { len: length, ecn, buf };
    return buf;
  }
  commitPacket(): void {
    const p = this.#pending;
    this.#pending = null;
    if (p !== null) this.pair.send(this.side, p.buf, p.ecn);
  }
  sourceFor(_dst: IpAddress): IpAddress | null {
    return this.addr;
  }
  mtuFor(_dst: IpAddress): number {
    return 1500;
  }
  isLocal(a: IpAddress): boolean {
    return a.equals(this.addr);
  }
}

/** Two stacks and the path between them. */
export class TcpPair {
  /** Stack A (198.18.0.1). */
  readonly a: TcpStack;
  /** Stack B (198.18.0.2). */
  readonly b: TcpStack;
  /** Address of A. */
  readonly addrA: IpAddress = IpAddress.parse("198.18.0.1");
  /** Address of B. */
  readonly addrB: IpAddress = IpAddress.parse("198.18.0.2");
  /** Virtual time. */
  now: Instant = 0;
  /** Packets sent per direction (index = sender). */
  readonly sent = [0, 0];
  /** Packets dropped by impairments or the queue. */
  dropped = 0;
  /** Dropped packets that carried data (longer than any header). */
  droppedData = 0;
  /** Sees every segment a side sends (the TCP header and payload), before the path. */
  tap: ((from: 0 | 1, segment: Uint8Array) => void) | null = null;
  readonly #q: InFlight[] = [];
  readonly #free: [number, number] = [0, 0];
  readonly #rand: () => number;
  #order = 0;

  /** A pair with the given path and seed. */
  constructor(readonly path: PathParams, seed: number, config: Partial<TcpConfig> = {}) {
    this.#rand = mulberry32(seed);
    const ra = mulberry32(seed ^ 0x1234);
    const rb = mulberry32(seed ^ 0x5678);
    this.a = new TcpStack({
      ip: new PairIp(this, 0, this.addrA),
      random: () => Math.floor(ra() * 2 ** 32),
      config,
    });
    this.b = new TcpStack({
      ip: new PairIp(this, 1, this.addrB),
      random: () => Math.floor(rb() * 2 ** 32),
      config,
    });
  }

  /** Called by a side's IP output. */
  send(from: 0 | 1, bytes: Uint8Array, ecn: number): void {
    this.sent[from]!++;
    this.tap?.(from, bytes);
    const p = this.path;
    const r = this.#rand;
    // Bottleneck: serialization plus a tail-drop queue bounded in time.
    const start = Math.max(this.now, this.#free[from]);
    if (start - this.now > p.maxQueue) {
      this.dropped++;
      return;
    }
    const done = start + ((bytes.length + 40) * 1e9) / p.rate;
    this.#free[from] = done;
    if (r() < p.loss) {
      this.dropped++;
      if (bytes.length > 60) this.droppedData++;
      return;
    }
    let at = done + p.delay;
    if (r() < p.reorder) at += p.reorderDelay;
    if (r() < p.corrupt && bytes.length > 0) {
      bytes = bytes.slice();
      bytes[Math.floor(r() * bytes.length)]! ^= 0x10;
    }
    const to: 0 | 1 = from === 0 ? 1 : 0;
    this.#push({ at, to, bytes, ecn, order: this.#order++ });
    if (r() < p.duplicate) this.#push({ at: at + 10_000, to, bytes, ecn, order: this.#order++ });
  }

  #push(f: InFlight): void {
    const q = this.#q;
    let lo = 0, hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = q[mid]!;
      if (m.at < f.at || (m.at === f.at && m.order < f.order)) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, f);
  }

  /** Earliest pending event. */
  nextEvent(): Instant {
    let t = this.#q.length > 0 ? this.#q[0]!.at : NEVER;
    t = Math.min(t, this.a.pollAt(), this.b.pollAt());
    return t;
  }

  /**
   * Runs until `done()` is true or time `limit`; `app` runs after every step (the application
   * pump). Returns true when `done()` became true.
   */
  run(limit: Instant, app: () => void, done: () => boolean): boolean {
    app();
    for (let steps = 0; steps < 50_000_000; steps++) {
      if (done()) return true;
      const t = this.nextEvent();
      if (t > limit) {
        this.now = limit;
        return done();
      }
      this.now = Math.max(this.now, t);
      const q = this.#q;
      while (q.length > 0 && q[0]!.at <= this.now) {
        const f = q.shift()!;
        const st = f.to === 0 ? this.a : this.b;
        const info: IpReceiveInfo = {
          version: 4,
          src: f.to === 0 ? this.addrB.bytes : this.addrA.bytes,
          dst: f.to === 0 ? this.addrA.bytes : this.addrB.bytes,
          ecn: f.ecn,
          ttl: 64,
          packet: f.bytes,
          checksumVerified: false,
        };
        st.receive(info, f.bytes, this.now);
      }
      if (this.a.pollAt() <= this.now) this.a.poll(this.now);
      if (this.b.pollAt() <= this.now) this.b.poll(this.now);
      app();
    }
    return done();
  }
}

/** Default clean path: 100 Mbit/s, 5 ms one way, 50 ms of queue. */
export function cleanPath(extra: Partial<PathParams> = {}): PathParams {
  return {
    delay: 5 * MILLISECOND,
    rate: 12_500_000,
    maxQueue: 50 * MILLISECOND,
    loss: 0,
    duplicate: 0,
    reorder: 0,
    reorderDelay: 2 * MILLISECOND,
    corrupt: 0,
    ...extra,
  };
}

/** Pseudo-random payload of `n` bytes. */
export function payload(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const r = mulberry32(seed);
  for (let i = 0; i < n; i += 4) {
    const v = Math.floor(r() * 2 ** 32);
    out[i] = v;
    if (i + 1 < n) out[i + 1] = v >>> 8;
    if (i + 2 < n) out[i + 2] = v >>> 16;
    if (i + 3 < n) out[i + 3] = v >>> 24;
  }
  return out;
}

/** Hex SHA-256 of `data`. */
export async function sha256(data: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Application end of one connection: writes `data` then shuts down, reads until EOF. */
export class Endpoint {
  /** Bytes written so far. */
  written = 0;
  /** Bytes read so far. */
  readonly received: Uint8Array;
  /** Count of received bytes. */
  got = 0;
  /** True once EOF was read. */
  eof = false;
  /** True once shutdown() was called. */
  shut = false;
  /** Error thrown by a socket call, if any. */
  error: unknown = null;
  readonly #scratch = new Uint8Array(65536);

  /** Endpoint on socket `id` sending `data` and expecting up to `expect` bytes. */
  constructor(
    readonly stack: TcpStack,
    public id: number,
    readonly data: Uint8Array,
    expect: number,
  ) {
    this.received = new Uint8Array(expect);
  }

  /** Until this end has its socket, takes it from `listener` once the stack has accepted it. */
  acceptFrom(listener: number): void {
    if (this.id >= 0) return;
    const id = this.stack.accept(listener);
    if (id > 0) this.id = id;
  }

  /** Moves as much data as the socket takes and reads what is there. */
  pump(now: Instant): void {
    if (this.id < 0 || this.error !== null) return;
    try {
      while (this.written < this.data.length) {
        const n = this.stack.send(
          this.id,
          this.data.subarray(this.written, Math.min(this.data.length, this.written + 65536)),
          now,
        );
        if (n === 0) break;
        this.written += n;
      }
      const st = this.stack.state(this.id);
      const open = st === "ESTABLISHED" || st === "CLOSE-WAIT";
      if (this.written === this.data.length && !this.shut && open) {
        this.shut = true;
        this.stack.shutdown(this.id, now);
      }
      for (;;) {
        if (this.eof) break;
        const n = this.stack.recv(this.id, this.#scratch, now);
        if (n === 0) {
          this.eof = true;
          break;
        }
        if (n < 0) break;
        if (this.got + n > this.received.length) throw new Error("received more than was sent");
        this.received.set(this.#scratch.subarray(0, n), this.got);
        this.got += n;
      }
    } catch (e) {
      this.error = e;
    }
  }

  /** True when everything was sent and EOF was read. */
  get finished(): boolean {
    return this.eof && this.shut;
  }
}
