/**
 * An in-process Ethernet cable: two `WaitableLink` ends that pass frames through bounded
 * queues, for running an NSM (or two) without a NIC, root or namespaces. `wait(ms)` resolves
 * as soon as the peer flushes a frame, so an `NsmRuntime` on each end sleeps at zero CPU and
 * wakes at once. Frames are copied once (into a pooled buffer) at `commit`.
 *
 * ```ts
 * const [a, b] = memoryWire({ mtu: 9000 });
 * const ifA = new Interface(a, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
 * ```
 *
 * @module
 */

import type { Link, LinkCapabilities } from "../stacks/link/link.ts";
import type { WaitableLink } from "./runtime.ts";

/** Options of `memoryWire`. */
export interface MemoryWireOptions {
  /** Layer-3 MTU (default 1500). */
  readonly mtu?: number;
  /** Frames queued per direction before `transmitBuffer` says "no room" (default 4096). */
  readonly queueFrames?: number;
}

/** Counters of one end. */
export interface MemoryLinkStats {
  /** Frames sent. */
  txFrames: number;
  /** Frames received. */
  rxFrames: number;
  /** transmitBuffer calls refused because the peer's queue was full. */
  txFull: number;
}

/** One end of a `memoryWire`. */
export class MemoryLink implements WaitableLink {
  /** Name for logs. */
  readonly name: string;
  /** MAC address. */
  readonly mac: Uint8Array;
  /** Layer-3 MTU. */
  readonly mtu: number;
  /** No offloads. */
  readonly capabilities: LinkCapabilities = {
    rxChecksumVerified: false,
    txChecksumOffload: false,
    maxBatch: 64,
  };
  /** Counters. */
  readonly stats: MemoryLinkStats = { txFrames: 0, rxFrames: 0, txFull: 0 };
  /** The other end (set by `memoryWire`). */
  peer: MemoryLink | null = null;
  readonly #cap: number;
  readonly #rx: Uint8Array[] = [];
  #rxHead = 0;
  readonly #pool: Uint8Array[] = [];
  #lent: Uint8Array | null = null;
  readonly #pending: Uint8Array[] = [];
  #waiter: ((v: boolean) => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Use `memoryWire`. */
  constructor(name: string, mac: Uint8Array, mtu: number, queueFrames: number) {
    this.name = name;
    this.mac = mac;
    this.mtu = mtu;
    this.#cap = queueFrames;
  }

  /** Frames waiting to be received. */
  get queued(): number {
    return this.#rx.length - this.#rxHead;
  }

  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    let n = 0;
    while (n < max && this.#rxHead < this.#rx.length) {
      const f = this.#rx[this.#rxHead]!;
      this.#rxHead++;
      n++;
      this.stats.rxFrames++;
      try {
        onFrame(f);
      } finally {
        const p = this.peer;
        if (p !== null) p.#recycle(f);
      }
    }
    if (this.#rxHead === this.#rx.length) {
      this.#rx.length = 0;
      this.#rxHead = 0;
    } else if (this.#rxHead > 1024) {
      this.#rx.splice(0, this.#rxHead);
      this.#rxHead = 0;
    }
    return n;
  }

  #recycle(f: Uint8Array): void {
    if (this.#pool.length < 1024) this.#pool.push(new Uint8Array(f.buffer));
  }

  transmitBuffer(length: number): Uint8Array | null {
    const p = this.peer;
    if (p === null || this.#closed || p.#closed) return null;
    if (p.queued + this.#pending.length >= this.#cap) {
      this.stats.txFull++;
      return null;
    }
    const size = this.mtu + 18;
    let b = this.#pool.pop();
    if (b === undefined || b.length < size) b = new Uint8Array(size);
    this.#lent = b;
    return b.subarray(0, length);
  }

  commit(length: number): void {
    const b = this.#lent;
    if (b === null) return;
    this.#lent = null;
    this.#pending.push(b.subarray(0, length));
    this.stats.txFrames++;
  }

  flush(): void {
    const p = this.peer;
    if (this.#pending.length === 0 || p === null) return;
    for (const f of this.#pending) p.#rx.push(f);
    this.#pending.length = 0;
    p.#wake(true);
  }

  #wake(v: boolean): void {
    const w = this.#waiter;
    if (w === null) return;
    this.#waiter = null;
    clearTimeout(this.#timer);
    w(v);
  }

  /** Resolves true when a frame is queued (at once if one is), false after `timeoutMs`. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.queued > 0 || this.#closed) return Promise.resolve(this.queued > 0);
    if (timeoutMs <= 0) return new Promise((r) => setTimeout(() => r(this.queued > 0), 0));
    this.#wake(false); // one waiter at a time: a newer wait replaces an older one
    return new Promise<boolean>((resolve) => {
      this.#waiter = resolve;
      this.#timer = setTimeout(() => {
        this.#waiter = null;
        resolve(this.queued > 0);
      }, timeoutMs);
    });
  }

  close(): void {
    this.#closed = true;
    this.#wake(false);
  }
}

/** Two connected `MemoryLink` ends ("mem0" and "mem1") with distinct locally administered MACs. */
export function memoryWire(options: MemoryWireOptions = {}): [MemoryLink, MemoryLink] {
  const mtu = options.mtu ?? 1500;
  const q = options.queueFrames ?? 4096;
  const a = new MemoryLink("mem0", new Uint8Array([0x02, 0, 0, 0, 0, 1]), mtu, q);
  const b = new MemoryLink("mem1", new Uint8Array([0x02, 0, 0, 0, 0, 2]), mtu, q);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Type guard for code that accepts any link. */
export function isMemoryLink(l: Link): l is MemoryLink {
  return l instanceof MemoryLink;
}
