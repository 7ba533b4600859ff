/**
 * TX kicks of a copy-mode AF_XDP socket. In copy mode each `sendto` makes the kernel build and
 * send at most its budget of frames (XDP_MAX_TX_SKB_BUDGET, 32 by default) and answer EAGAIN
 * when more were queued; `kickUntilDrained` kicks again while kicks make progress, so a flush
 * does not leave frames waiting for the next loop pass.
 *
 * @module
 */

import type { Worker } from "node:worker_threads";
import { EAGAIN } from "./libc.ts";

/** Kick counters (a subset of `XdpLinkStats`). */
export interface KickCounters {
  /** sendto calls. */
  kicks: number;
  /** sendto calls answered with an errno (EAGAIN/EBUSY/ENOBUFS/ENETDOWN). */
  kickBusy: number;
}

/**
 * Kicks (`kick()`: 0 or the errno of a retryable failure) until `unsent()` (descriptors the
 * kernel has not consumed) is 0, at most `maxKicks` times. Stops early when a kick failed
 * with anything but EAGAIN (the budget ran out) or consumed nothing (the kernel is out of
 * room, e.g. its socket send buffer: retrying at once would spin). Returns true when drained.
 */
export function kickUntilDrained(
  kick: () => number,
  unsent: () => number,
  maxKicks: number,
  counters: KickCounters,
): boolean {
  let before = unsent();
  if (before === 0) return true;
  for (let i = 0; i < maxKicks; i++) {
    counters.kicks++;
    const r = kick();
    if (r !== 0) counters.kickBusy++;
    const left = unsent();
    if (left === 0) return true;
    if (r !== EAGAIN || left >= before) return false;
    before = left;
  }
  return false;
}

/** Words of the control block shared with the kick thread (Int32, index = word). */
export const KickWord = {
  /** `KickWorkerState`. */
  State: 0,
  /** 1 after the link published descriptors; the thread clears it before it drains. */
  Request: 1,
  /** 1 asks the thread to leave its loop. */
  Stop: 2,
  /** sendto calls made by the thread. */
  Kicks: 3,
  /** sendto calls answered with a retryable errno. */
  KickBusy: 4,
  /** errno of a failure that is not retryable (the thread has stopped); 0 = none. */
  Fatal: 5,
  /** 1 while the thread sleeps (the link then has to notify it). */
  Sleeping: 6,
  /** Times the thread went to sleep. */
  Sleeps: 7,
} as const;
const KICK_WORDS = 8;

/** Life cycle of the kick thread (`KickWord.State`). */
export const KickWorkerState = {
  /** Spawned, not running yet. */
  New: 0,
  /** In its loop (may touch the TX ring). */
  Running: 1,
  /** Left its loop; touches nothing any more. */
  Exited: 2,
  /** Cancelled before it started; it will exit without touching anything. */
  Cancelled: 3,
} as const;

/** What the kick thread is given (structured-cloned into it). */
export interface KickWorkerData {
  /** The control block (`KickWord`). */
  readonly control: SharedArrayBuffer;
  /** The AF_XDP socket. */
  readonly fd: number;
  /** Address of the TX ring mapping (as a decimal string: a pointer value). */
  readonly ring: string;
  /** Bytes of the TX ring mapping. */
  readonly ringBytes: number;
  /** u32 word index of the ring's producer. */
  readonly producerWord: number;
  /** u32 word index of the ring's consumer (written by the kernel). */
  readonly consumerWord: number;
  /** How long the thread spins for the next request before it sleeps (µs). */
  readonly spinUs: number;
}

/** Where a socket's TX ring lives, for the kick thread (`XskSocket.txRingMapping()`). */
export interface TxRingMapping {
  /** Start of the mapping. */
  readonly pointer: Deno.PointerObject;
  /** Its length in bytes. */
  readonly bytes: number;
  /** u32 word index of the producer. */
  readonly producerWord: number;
  /** u32 word index of the consumer. */
  readonly consumerWord: number;
}

/** How `ThreadKicker.stop()` waits for the thread to leave its loop: slices of 10 ms. */
const STOP_WAIT_SLICES = 200;

/**
 * A copy-mode TX kicker on its own thread (xdp/kick_worker.ts): `request()` after each publish
 * wakes it when it sleeps; it kicks until the kernel has consumed the TX ring. The thread starts
 * asynchronously (`running` says when); the link kicks inline until then. The link must call
 * `stop()` before it unmaps the ring. The worker is unref'd: it does not keep the process alive.
 */
export class ThreadKicker {
  readonly #ctl: Int32Array;
  #worker: Worker | null = null;
  #stopped = false;

  /** Spawns the thread for socket `fd` whose TX ring mapping is `ring`. */
  constructor(fd: number, ring: TxRingMapping, spinUs: number) {
    const control = new SharedArrayBuffer(KICK_WORDS * 4);
    this.#ctl = new Int32Array(control);
    const data: KickWorkerData = {
      control,
      fd,
      ring: String(Deno.UnsafePointer.value(ring.pointer)),
      ringBytes: ring.bytes,
      producerWord: ring.producerWord,
      consumerWord: ring.consumerWord,
      spinUs,
    };
    // Loaded on demand: links with inline kicks do not load Node's worker module at all.
    // Until the thread runs (or if it never does), the link kicks inline.
    void import("node:worker_threads").then(({ Worker }) => {
      if (this.#stopped) return;
      const w = new Worker(new URL("./kick_worker.ts", import.meta.url), { workerData: data });
      // A worker that fails to start leaves `running` false; an unhandled 'error' would throw.
      w.on("error", () => {});
      w.unref();
      this.#worker = w;
    }).catch(() => {});
  }

  /** Asks for a kick (cheap when the thread is awake: two atomic operations). */
  request(): void {
    const ctl = this.#ctl;
    if (Atomics.exchange(ctl, KickWord.Request, 1) === 0 && Atomics.load(ctl, KickWord.Sleeping)) {
      Atomics.notify(ctl, KickWord.Request, 1);
    }
  }

  /** sendto calls made by the thread. */
  get kicks(): number {
    return Atomics.load(this.#ctl, KickWord.Kicks);
  }

  /** sendto calls answered with a retryable errno. */
  get kickBusy(): number {
    return Atomics.load(this.#ctl, KickWord.KickBusy);
  }

  /** Times the thread went to sleep. */
  get sleeps(): number {
    return Atomics.load(this.#ctl, KickWord.Sleeps);
  }

  /** errno of a failure that stopped the thread, or 0. */
  get fatal(): number {
    return Atomics.load(this.#ctl, KickWord.Fatal);
  }

  /** True once the thread is in its loop (it takes a module load, ~0.1-1 s, to start). */
  get running(): boolean {
    return Atomics.load(this.#ctl, KickWord.State) === KickWorkerState.Running;
  }

  /** True when the thread left its loop without being asked to (a fatal errno or a crash). */
  get failed(): boolean {
    return !this.#stopped && Atomics.load(this.#ctl, KickWord.State) === KickWorkerState.Exited;
  }

  /**
   * Stops the thread and waits (up to 2 s) until it no longer touches the ring; returns false
   * when it did not confirm in time. Idempotent.
   */
  stop(): boolean {
    if (this.#stopped) return true;
    this.#stopped = true;
    const ctl = this.#ctl;
    let ok = true;
    const s = Atomics.compareExchange(
      ctl,
      KickWord.State,
      KickWorkerState.New,
      KickWorkerState.Cancelled,
    );
    if (s === KickWorkerState.Running) {
      Atomics.store(ctl, KickWord.Stop, 1);
      Atomics.notify(ctl, KickWord.Request);
      Atomics.notify(ctl, KickWord.Stop);
      for (let i = 0; i < STOP_WAIT_SLICES; i++) {
        if (Atomics.load(ctl, KickWord.State) !== KickWorkerState.Running) break;
        Atomics.wait(ctl, KickWord.State, KickWorkerState.Running, 10);
      }
      ok = Atomics.load(ctl, KickWord.State) !== KickWorkerState.Running;
    }
    void this.#worker?.terminate();
    return ok;
  }
}

/**
 * CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status), or 1 when that
 * cannot be read: a kick thread only pays when it can run beside the stack's thread.
 */
export function allowedCpus(status?: string): number {
  let text = status;
  if (text === undefined) {
    try {
      text = Deno.readTextFileSync("/proc/self/status");
    } catch {
      return 1;
    }
  }
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(text);
  if (m === null) return 1;
  let n = 0;
  for (const part of m[1]!.split(",")) {
    const [a, b] = part.split("-");
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) return 1;
    n += hi - lo + 1;
  }
  return n;
}
