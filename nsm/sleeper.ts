/**
 * Sleeping on descriptors without garbage: a helper thread sleeps in poll(2) for the JS thread
 * and wakes it with a thread-safe FFI callback.
 *
 * Why. Every way Deno offers to wait for a descriptor from JavaScript allocates per wait: an
 * async read is an op with its promise (~1.2 KB sampled per doorbell sleep), a `nonblocking`
 * FFI poll a promise and a thread-pool hop, a timeout a timer. A side that sleeps a few
 * thousand times a second (a guest waiting for send room, an NSM between bursts) turned that
 * into scavenges. Here the JS thread's sleep is: write the descriptors and the timeout into a
 * shared block, `Atomics.notify` the thread; its wake-up is a call of `onWake` from Deno's
 * event loop. Neither allocates on the JS heap (measured: 0 scavenges of the JS thread over
 * 300,000 sleeps; the helper's own garbage is its isolate's and never pauses the JS thread).
 *
 * The price is latency: a second thread wake-up per sleep (the helper, then the JS thread), and
 * Deno's cross-thread call is slow to wake its event loop (measured on the lab VM: the JS
 * thread runs `onWake` a median 65 µs after poll(2) returned on the helper, where an async
 * read wakes in ~30-50 µs end to end), plus one `node:worker_threads` isolate (~20-50 ms to
 * start, a few MB). So owners sleep here when sleeps come fast (a busy transfer: garbage is
 * the cost there) and through Deno's async I/O after a long idle (wake-up latency is).
 *
 * Use: `await Sleeper.start(onWake)`, then per sleep `setFds(fds)` and `sleep(ms)`; `onWake`
 * runs once per sleep with a `SleeperWake` (a descriptor became readable, the timeout passed,
 * `interrupt()`, or poll failed). Descriptors are watched, never read: the owner drains them in
 * `onWake` (a doorbell's bytes) or they are level-triggered rings (AF_XDP). A descriptor must
 * stay open while a sleep watches it: close it after an `interrupt()`'s wake, or accept a
 * spurious wake-up (poll reports a closed one as POLLNVAL at once).
 *
 * @module
 */

import type { Worker } from "node:worker_threads";
import { errno, errnoText, libc } from "../stacks/sys/libc.ts";

/** Why a sleep ended (the argument of `onWake`). */
export const SleeperWake = {
  /** The timeout passed. */
  Timeout: 0,
  /** A watched descriptor is readable (or hung up, or in error). */
  Ready: 1,
  /** `interrupt()` (or a signal on the helper thread). */
  Interrupted: 2,
  /** poll(2) failed; the owner should fall back to another way of waiting. */
  Error: 3,
} as const;
/** One of `SleeperWake`'s values. */
export type SleeperWake = typeof SleeperWake[keyof typeof SleeperWake];

/** @internal Int32 words of the shared control block. */
export const SleeperWord = {
  /** JS thread sets 1 to arm a sleep; the helper takes it back to 0. */
  Arm: 0,
  /** 1: the helper leaves its loop. */
  Stop: 1,
  /** poll timeout of the armed sleep, ms (-1: none). */
  Timeout: 2,
  /** Number of descriptors in `Fds`. */
  Count: 3,
  /** `SleeperWorkerState`. */
  State: 4,
  /** First descriptor; `maxFds` words. */
  Fds: 8,
} as const;

/** @internal Life of the helper thread. */
export const SleeperWorkerState = { New: 0, Running: 1, Exited: 2 } as const;

/** @internal What the helper gets (structured-cloned). */
export interface SleeperWorkerData {
  control: SharedArrayBuffer;
  /** The thread-safe callback's address, as a decimal string. */
  callback: string;
  eventFd: number;
  maxFds: number;
}

/** @internal Bytes of one struct pollfd. */
export const POLL_SIZE = 8;

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const ONE = new BigUint64Array([1n]);
const STARTUP_TIMEOUT_MS = 10_000;

/** Thrown when the helper thread cannot run; callers wait another way. */
export class SleeperUnavailableError extends Error {
  /** `why`: what failed. */
  constructor(why: string) {
    super(`sleeper thread unavailable: ${why}; waits fall back to Deno's async I/O`);
    this.name = "SleeperUnavailableError";
  }
}

/** Options of `Sleeper.start`. */
export interface SleeperOptions {
  /** Most descriptors one sleep watches (default 1024). */
  maxFds?: number;
  /** @internal The thread's module (tests: one that dies). Default ./sleeper_worker.ts. */
  workerModule?: URL;
}

/** A helper thread that sleeps on descriptors for the JS thread: see the module comment. */
export class Sleeper {
  /** Sleeps armed. */
  sleeps = 0;
  /** Sleeps that ended because a descriptor became readable. */
  readyWakes = 0;
  /** Sleeps that ended by timeout. */
  timeouts = 0;
  /** Sleeps that ended by `interrupt()`. */
  interrupts = 0;
  readonly #ctl: Int32Array;
  readonly #maxFds: number;
  readonly #eventFd: number;
  readonly #callback: Deno.UnsafeCallback<
    { readonly parameters: ["i32"]; readonly result: "void" }
  >;
  readonly #onWake: (why: SleeperWake) => void;
  #worker: Worker | null = null;
  #sleeping = false;
  #closed: Promise<void> | null = null;
  #failed = false;
  readonly #workerModule: URL;

  private constructor(onWake: (why: SleeperWake) => void, options: SleeperOptions) {
    this.#maxFds = options.maxFds ?? 1024;
    this.#workerModule = options.workerModule ?? new URL("./sleeper_worker.ts", import.meta.url);
    this.#ctl = new Int32Array(new SharedArrayBuffer((SleeperWord.Fds + this.#maxFds) * 4));
    this.#onWake = onWake;
    const fd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw new SleeperUnavailableError(`eventfd: ${errnoText(errno())}`);
    this.#eventFd = fd;
    this.#callback = Deno.UnsafeCallback.threadSafe(
      { parameters: ["i32"], result: "void" } as const,
      (why: number) => this.#woke(why as SleeperWake),
    );
    // Referenced only while a sleep is armed. A callback that is not referenced does not wake
    // Deno's event loop when called from another thread (its call waits for the next event),
    // so an armed sleep always is, and keeps the process alive until it ends.
    this.#callback.unref();
  }

  /**
   * Starts the helper thread and resolves once it runs. `onWake` is called on the JS thread
   * once per `sleep()`; it must not throw (an exception is reported as uncaught, see
   * `reportError`). Rejects with `SleeperUnavailableError` without FFI, workers or eventfd.
   */
  static async start(
    onWake: (why: SleeperWake) => void,
    options: SleeperOptions = {},
  ): Promise<Sleeper> {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      throw new SleeperUnavailableError("FFI is not granted (--allow-ffi)");
    }
    const s = new Sleeper(onWake, options);
    try {
      await s.#spawn();
    } catch (e) {
      await s.close();
      throw e instanceof SleeperUnavailableError
        ? e
        : new SleeperUnavailableError(e instanceof Error ? e.message : String(e));
    }
    return s;
  }

  async #spawn(): Promise<void> {
    const { Worker } = await import("node:worker_threads");
    const data: SleeperWorkerData = {
      control: this.#ctl.buffer as SharedArrayBuffer,
      callback: String(Deno.UnsafePointer.value(this.#callback.pointer)),
      eventFd: this.#eventFd,
      maxFds: this.#maxFds,
    };
    const w = new Worker(this.#workerModule, { workerData: data });
    this.#worker = w;
    w.unref();
    let failure: unknown = null;
    w.on("error", (e: unknown) => failure = e);
    // A thread that dies (not asked to by close()) ends the armed sleep with Error: owners
    // then wait another way (see `failed`) instead of sleeping for ever.
    w.on("exit", () => {
      if (this.#closed !== null) return;
      this.#failed = true;
      if (this.#sleeping) this.#woke(SleeperWake.Error);
    });
    const ctl = this.#ctl;
    const until = Date.now() + STARTUP_TIMEOUT_MS;
    // Start-up only: polled with timers (the module loads in ~20-50 ms).
    while (Atomics.load(ctl, SleeperWord.State) === SleeperWorkerState.New) {
      if (failure !== null) throw failure;
      if (Date.now() > until) throw new SleeperUnavailableError("the thread did not start in 10 s");
      await new Promise((r) => setTimeout(r, 2));
    }
    if (Atomics.load(ctl, SleeperWord.State) !== SleeperWorkerState.Running) {
      throw new SleeperUnavailableError(`the thread exited at start: ${String(failure)}`);
    }
  }

  /** True between `sleep()` and its `onWake`. */
  get sleeping(): boolean {
    return this.#sleeping;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** True when the thread died without `close()`: `sleep()` then throws; wait another way. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * The descriptors the next sleeps watch for readability (copied; at most `maxFds`). Not
   * while a sleep is armed: interrupt it and set them in its `onWake`.
   */
  setFds(fds: ArrayLike<number>): void {
    if (this.#sleeping) throw new Error("Sleeper.setFds() during a sleep: interrupt() it first");
    const n = fds.length;
    if (n > this.#maxFds) {
      throw new RangeError(`Sleeper.setFds(): ${n} descriptors, at most ${this.#maxFds}`);
    }
    const ctl = this.#ctl;
    for (let i = 0; i < n; i++) ctl[SleeperWord.Fds + i] = fds[i]!;
    ctl[SleeperWord.Count] = n;
  }

  /**
   * Arms one sleep of at most `timeoutMs` (Infinity or a negative value: no timeout; 0: a
   * hop through the helper thread and back, letting Deno's event loop run). `onWake` follows
   * exactly once, never from inside this call.
   */
  sleep(timeoutMs: number): void {
    if (this.#closed !== null) throw new Error("Sleeper.sleep() after close()");
    if (this.#failed) throw new SleeperUnavailableError("its thread died");
    if (this.#sleeping) throw new Error("Sleeper.sleep() while a sleep is armed");
    const ctl = this.#ctl;
    ctl[SleeperWord.Timeout] = timeoutMs < 0 || timeoutMs >= 0x7fffffff ? -1 : Math.ceil(timeoutMs);
    this.#sleeping = true;
    this.sleeps++;
    this.#callback.ref();
    Atomics.store(ctl, SleeperWord.Arm, 1);
    Atomics.notify(ctl, SleeperWord.Arm, 1);
  }

  /** Ends the armed sleep now (its `onWake` gets `Interrupted`); nothing when none is armed. */
  interrupt(): void {
    if (!this.#sleeping || this.#closed !== null) return;
    libc().write(this.#eventFd, ONE, 8n);
  }

  #woke(why: SleeperWake): void {
    if (this.#closed !== null || !this.#sleeping) return;
    this.#sleeping = false;
    this.#callback.unref();
    if (why === SleeperWake.Ready) this.readyWakes++;
    else if (why === SleeperWake.Timeout) this.timeouts++;
    else if (why === SleeperWake.Interrupted) this.interrupts++;
    try {
      this.#onWake(why);
    } catch (e) {
      // An exception must not leave a thread-safe callback (Deno aborts the process then).
      reportError(e);
    }
  }

  /**
   * Stops the thread, then frees the eventfd and the callback. An armed sleep's `onWake` is
   * not called. Idempotent; resolves once the thread no longer runs.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const ctl = this.#ctl;
    const wasNew = Atomics.compareExchange(
      ctl,
      SleeperWord.State,
      SleeperWorkerState.New,
      SleeperWorkerState.Exited,
    ) === SleeperWorkerState.New;
    if (!wasNew) {
      Atomics.store(ctl, SleeperWord.Stop, 1);
      Atomics.notify(ctl, SleeperWord.Arm);
      libc().write(this.#eventFd, ONE, 8n);
      // The thread may be inside a call of the callback, which waits for this event loop.
      while (Atomics.load(ctl, SleeperWord.State) === SleeperWorkerState.Running) {
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    if (this.#sleeping) {
      this.#sleeping = false;
      this.#callback.unref();
    }
    await this.#worker?.terminate();
    this.#worker = null;
    libc().close(this.#eventFd);
    this.#callback.close();
  }
}
