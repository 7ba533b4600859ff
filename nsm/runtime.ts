/**
 * The NSM driver loop: one event loop runs the link, the `Interface` (and through it the
 * `TcpStack` and UDP), the services and any other pollable component (a ServiceLib serving NK
 * devices plugs in the same way) with real time from `monotonicNow()`.
 *
 * Polling is adaptive: while something happens the loop busy-polls (no system call between
 * batches except the link's own kicks, and the `idle` hook on empty passes, which the NSM
 * command sets to `sched_yield(2)`); after `spinNs` without work (counted from the end of the
 * last busy pass) it sleeps in the link's `wait(ms)` (poll(2) on the device descriptor) until
 * a frame arrives or the earliest `pollAt()` deadline of every component, so an idle NSM uses
 * next to no CPU. While busy it still yields to Deno's event loop every `yieldNs` so signals
 * and timers are served. When the link and every hook can say whether they have work
 * (`hasWork()`), a spinning pass with nothing to do and no deadline due skips the step, so
 * spinning reads no clock into a heap number and allocates nothing.
 *
 * ```ts
 * const rt = new NsmRuntime(link, iface);
 * rt.add(services);                // anything with poll(now)/pollAt()
 * Deno.addSignalListener("SIGTERM", () => rt.stop());
 * await rt.run();                  // returns after stop(); the caller closes the link
 * ```
 *
 * @module
 */

import type { Link } from "../stacks/link/link.ts";
import { Sleeper, SleeperUnavailableError, SleeperWake } from "./sleeper.ts";
import type { Interface } from "../stacks/tcpip/iface/interface.ts";
import {
  type Duration,
  type Instant,
  MICROSECOND,
  MILLISECOND,
  monotonicNowInto,
  NEVER,
} from "../stacks/time.ts";

/** A component driven by the loop (services, a ServiceLib, statistics printers). */
export interface Pollable {
  /** Name for logs. */
  readonly name: string;
  /** Does whatever is due at `now`; returns true when it did work (keeps the loop spinning). */
  poll(now: Instant): boolean;
  /** The next instant `poll` has timed work, or `NEVER`. */
  pollAt(): Instant;
  /**
   * Optional: `out[i] = pollAt()`, stored instead of returned. The loop asks after every
   * step, and an instant (above 2^31 ns) returned from a call that is not inlined is a new
   * heap number each time.
   */
  pollAtInto?(out: Float64Array, i: number): void;
  /**
   * Optional: true when `poll` would find work now other than what `pollAt()` reports (new
   * input, a backlog); cheap and allocation-free. When the link and every hook answer it, the
   * loop skips spinning passes with nothing to do instead of calling `poll` with a fresh
   * `now` (a heap number per pass: while an NSM spins that was most of its garbage).
   */
  hasWork?(): boolean;
}

/** A link the loop can sleep on: XdpLink and TapLink both have `wait`. */
export interface WaitableLink extends Link {
  /** Sleeps until a frame is ready or `timeoutMs` passes; true when something is ready. */
  wait(timeoutMs: number): Promise<boolean>;
  /**
   * Optional: true when `receive` would hand out a frame or `flush` has frames to push or
   * retry (see `Pollable.hasWork`).
   */
  hasWork?(): boolean;
  /**
   * Optional: appends the descriptors whose readability ends a `wait()` and returns true, so
   * that `NsmRuntime` can sleep on them on its sleeper thread (nsm/sleeper.ts) with no
   * garbage per sleep; false when this sleep needs `wait()` (a wake source without one).
   */
  pollFds?(into: number[]): boolean;
  /**
   * Optional, with `pollFds`: called before such a sleep (after the runtime found no work).
   * False when work arrived meanwhile: the runtime does not sleep, and calls `endSleep()`.
   * `kick` ends the sleep early (for wake sources outside the descriptors).
   */
  beginSleep?(kick: () => void): boolean;
  /** Optional, with `pollFds`: called after such a sleep (and after a refused `beginSleep`). */
  endSleep?(): void;
}

/** Tunables of `NsmRuntime`. */
export interface NsmRuntimeOptions {
  /** Keep busy-polling this long after the last work before sleeping; default 200 µs. */
  readonly spinNs?: Duration;
  /**
   * While busy, yield to Deno's event loop at least this often; default 10 ms. Each yield is a
   * thread-pool hop with a promise (~450 B of garbage): at 2 ms that was 0.5 B per frame of a
   * bulk transfer, a quarter of the NSM's steady allocation; control requests wait at most
   * this long while the data path is busy.
   */
  readonly yieldNs?: Duration;
  /** Longest single sleep (bounds the latency of components without a wake source); 250 ms. */
  readonly maxSleepMs?: number;
  /**
   * Called on every spinning pass that found no work (e.g. `sched_yield(2)`, so a guest or peer
   * sharing this CPU runs instead of waiting for the spin to end); default none.
   */
  readonly idle?: () => void;
  /**
   * Yield, and sleep between bursts (after a sleep shorter than 2 ms), on a helper thread
   * (nsm/sleeper.ts) when the link lists its descriptors (`WaitableLink.pollFds`) and FFI is
   * granted: no promise race, thread-pool hop or timer per sleep. Sleeps after a long idle
   * stay on `link.wait()`, whose wake-up is faster. Default true.
   */
  readonly sleeper?: boolean;
  /** @internal The sleeper thread's module (tests: one that dies). */
  readonly sleeperModule?: URL;
}

/** Counters of the loop (for the idle-CPU measurement and the shutdown line). */
export interface NsmRuntimeStats {
  /** Loop iterations. */
  iterations: number;
  /** Iterations in which something did work. */
  busyIterations: number;
  /** Sleeps in `link.wait` with a timeout > 0. */
  sleeps: number;
  /** Sleeps that ended because a frame arrived (rather than the deadline). */
  wakeups: number;
  /** Yields to the event loop while busy. */
  yields: number;
  /** Sleeps and yields taken on the sleeper thread (a subset of `sleeps` + `yields`). */
  threadSleeps: number;
  /** Spinning passes that skipped the step: nothing had work (see `Pollable.hasWork`). */
  skipped: number;
}

/** Slots of `NsmRuntime`'s instants. */
const LAST_WORK = 0;
const LAST_YIELD = 1;
const DEADLINE = 2;
const NOW = 3;
/** How long the last sleep lasted (Infinity before the first). */
const LAST_SLEEP = 4;
/** A hook's deadline, read through `Pollable.pollAtInto`. */
const HOOK_AT = 5;
/** A sleep shorter than this puts the next one on the sleeper thread (see `run()`). */
const SHORT_SLEEP_NS = 2 * MILLISECOND;

/** `#prepareThreadSleep` results. */
const THREAD_SLEEP = 0;
const NO_SLEEP = 1;
const LINK_WAIT = 2;

/** Thrown when `run()` is called twice at once. */
export class RuntimeStateError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "RuntimeStateError";
  }
}

/** The driver loop; see the module comment. */
export class NsmRuntime {
  /** The device. */
  readonly link: WaitableLink;
  /** The IP interface (TCP/UDP are registered on it). */
  readonly iface: Interface;
  /** Loop counters. */
  readonly stats: NsmRuntimeStats = {
    iterations: 0,
    busyIterations: 0,
    sleeps: 0,
    wakeups: 0,
    yields: 0,
    skipped: 0,
    threadSleeps: 0,
  };
  readonly #hooks: Pollable[] = [];
  readonly #spinNs: Duration;
  readonly #yieldNs: Duration;
  readonly #maxSleepMs: number;
  readonly #idle: (() => void) | null;
  /** The loop's instants and durations (`LAST_WORK` ... `HOOK_AT`): stores box nothing. */
  readonly #t = new Float64Array([0, 0, 0, 0, Infinity, 0]);
  /** The deadline in `#t` is older than the last step. */
  #stale = true;
  /** The next pass steps whatever `hasWork` says (first pass, after the event loop ran). */
  #mustStep = true;
  #running = false;
  #canSkip = false;
  #stopRequested = false;
  #wakePending = false;
  #wakeResolve: (() => void) | null = null;
  readonly #useSleeper: boolean;
  readonly #sleeperModule: URL | undefined;
  /** The sleeper thread while `run()` uses one. */
  #sleeper: Sleeper | null = null;
  /** The descriptors of one sleep, reused (emptied by pop(), which keeps the capacity). */
  readonly #fds: number[] = [];
  /** The prepared sleep's timeout, ms (`#prepareThreadSleep`). */
  #sleepMs = 0;
  /** The timeout of the sleep armed on the sleeper thread; -1 when none is. */
  #armedMs = -1;
  /** Why the last sleeper sleep ended. */
  #why: SleeperWake = SleeperWake.Timeout;
  /** Ends `run()`'s promise (`#loop` reached a stop), or rejects it (it threw). */
  #loopDone: (() => void) | null = null;
  #loopFailed: ((e: unknown) => void) | null = null;
  /** The end of a sleeper sleep: the loop goes on from here, no promise in between. */
  readonly #onSleeperWake = (why: SleeperWake): void => {
    this.#why = why;
    const ms = this.#armedMs;
    if (ms < 0) return;
    this.#armedMs = -1;
    this.#threadSlept(ms);
    if (ms === 0) this.#afterYield();
    else this.#afterSleep();
    this.#loop();
  };
  /** The end of a `link.wait(0)` yield. */
  readonly #onYielded = (): void => {
    this.#afterYield();
    this.#loop();
  };
  /** The end of a `link.wait(ms)` sleep raced with `wake()`. */
  readonly #onLinkWaited = (ready: boolean): void => {
    if (ready) this.stats.wakeups++;
    this.#wakeResolve = null;
    this.#afterSleep();
    this.#loop();
  };
  readonly #onLoopError = (e: unknown): void => {
    const f = this.#loopFailed;
    this.#loopDone = this.#loopFailed = null;
    f?.(e);
  };
  readonly #kick = (): void => this.wake();

  /** Builds a loop over `link` and `iface` (iface must be built on `link`). */
  constructor(link: WaitableLink, iface: Interface, options: NsmRuntimeOptions = {}) {
    this.link = link;
    this.iface = iface;
    this.#spinNs = options.spinNs ?? 200 * MICROSECOND;
    this.#yieldNs = options.yieldNs ?? 10 * MILLISECOND;
    this.#maxSleepMs = options.maxSleepMs ?? 250;
    this.#idle = options.idle ?? null;
    this.#useSleeper = options.sleeper ?? true;
    this.#sleeperModule = options.sleeperModule;
    this.#updateQuiet();
  }

  /** Adds a component polled after the interface on every iteration; returns a remover. */
  add(hook: Pollable): () => void {
    this.#hooks.push(hook);
    this.#updateQuiet();
    return () => {
      const i = this.#hooks.indexOf(hook);
      if (i >= 0) this.#hooks.splice(i, 1);
      this.#updateQuiet();
    };
  }

  /** Whether idle passes can be skipped: the link and every hook answer `hasWork`. */
  #updateQuiet(): void {
    this.#canSkip = typeof this.link.hasWork === "function" &&
      this.#hooks.every((h) => typeof h.hasWork === "function");
  }

  /** True when the link or a hook has work (only called when all of them can tell). */
  #anyWork(): boolean {
    if (this.link.hasWork!()) return true;
    const hooks = this.#hooks;
    for (let i = 0; i < hooks.length; i++) if (hooks[i]!.hasWork!()) return true;
    return false;
  }

  /** The components added, in polling order. */
  get hooks(): readonly Pollable[] {
    return this.#hooks;
  }

  /** True while `run()` is looping. */
  get running(): boolean {
    return this.#running;
  }

  /** Asks the loop to return (at once if it is sleeping). */
  stop(): void {
    this.#stopRequested = true;
    this.wake();
  }

  /**
   * Ends the current idle sleep now, or prevents the next one. For components whose events
   * arrive through Deno's event loop rather than the link (a ServiceLib's doorbell socket, a
   * control API): they call `wake()` from their callback and are polled right away.
   */
  wake(): void {
    this.#wakePending = true;
    this.#sleeper?.interrupt();
    const r = this.#wakeResolve;
    if (r !== null) {
      this.#wakeResolve = null;
      r();
    }
  }

  /** True while `run()` sleeps on the sleeper thread (see `NsmRuntimeOptions.sleeper`). */
  get sleepsOnThread(): boolean {
    return this.#sleeper !== null;
  }

  /**
   * Prepares one sleep on the sleeper thread over the link's descriptors (`ms` 0: a yield):
   * `THREAD_SLEEP` when it may be armed (`sleep(ms)`; its `onWake` runs `#threadSlept`),
   * `NO_SLEEP` when work arrived meanwhile, `LINK_WAIT` when this sleep needs `link.wait()`.
   */
  #prepareThreadSleep(sleeper: Sleeper, ms: number): number {
    if (sleeper.failed) {
      this.#sleeper = null; // its thread died: link.wait() from now on
      void sleeper.close();
      return LINK_WAIT;
    }
    const fds = this.#fds;
    while (fds.length > 0) fds.pop();
    const link = this.link;
    if (ms > 0) {
      if (!link.pollFds!(fds)) return LINK_WAIT;
      if (link.beginSleep !== undefined && !link.beginSleep(this.#kick)) {
        link.endSleep?.();
        return NO_SLEEP;
      }
    }
    sleeper.setFds(fds);
    this.#sleepMs = ms;
    this.stats.threadSleeps++;
    return THREAD_SLEEP;
  }

  /** After a `#prepareThreadSleep` sleep of `ms` ended. */
  #threadSlept(ms: number): void {
    if (ms > 0) {
      this.link.endSleep?.();
      if (this.#why === SleeperWake.Ready) this.stats.wakeups++;
    }
    const sleeper = this.#sleeper;
    if (this.#why === SleeperWake.Error && sleeper !== null) {
      // poll(2) failed on the thread, or the thread died: link.wait() from now on.
      this.#sleeper = null;
      void sleeper.close();
    }
  }

  /** One pass: the interface, then every hook, then a link flush. True when anything worked. */
  step(now: Instant): boolean {
    let busy = this.iface.poll(now);
    const hooks = this.#hooks;
    // Sends made by hooks outside iface.poll (a ServiceLib's TCP sends transmit at once, UDP
    // replies directly) are queued and pushed with one flush (one AF_XDP kick) for the pass:
    // flushing per segment cost one sendto per frame, ~2/3 of the NSM's time under bulk load.
    const iface = this.iface;
    iface.holdFlush();
    try {
      for (let i = 0; i < hooks.length; i++) {
        if (hooks[i]!.poll(now)) busy = true;
      }
    } finally {
      iface.releaseFlush();
    }
    this.link.flush();
    return busy;
  }

  /** The earliest deadline of the interface and every hook. */
  pollAt(): Instant {
    this.#deadline();
    return this.#t[DEADLINE]!;
  }

  /** `pollAt()` into `#t[DEADLINE]`: no instant returned from the components, none boxed. */
  #deadline(): void {
    const t = this.#t;
    this.iface.pollAtInto(t, DEADLINE);
    const hooks = this.#hooks;
    for (let i = 0; i < hooks.length; i++) {
      const h = hooks[i]!;
      if (h.pollAtInto !== undefined) {
        h.pollAtInto(t, HOOK_AT);
        if (t[HOOK_AT]! < t[DEADLINE]!) t[DEADLINE] = t[HOOK_AT]!;
      } else {
        const at = h.pollAt();
        if (at < t[DEADLINE]!) t[DEADLINE] = at;
      }
    }
  }

  /** Runs until `stop()`. */
  async run(): Promise<void> {
    if (this.#running) throw new RuntimeStateError("NsmRuntime.run() is already running");
    this.#running = true;
    this.#stopRequested = false;
    const t = this.#t;
    let sleeper: Sleeper | null = null;
    // Only for a link that can list its descriptors (a GuestWakeLink over a memory link, say,
    // has the method but never can): otherwise the thread would only ever take yields.
    if (this.#useSleeper && this.link.pollFds !== undefined && this.link.pollFds([])) {
      try {
        sleeper = await Sleeper.start(
          this.#onSleeperWake,
          this.#sleeperModule !== undefined ? { workerModule: this.#sleeperModule } : {},
        );
      } catch (e) {
        if (!(e instanceof SleeperUnavailableError)) throw e;
      }
    }
    this.#sleeper = sleeper;
    try {
      monotonicNowInto(t, LAST_WORK);
      t[LAST_YIELD] = t[LAST_WORK]!;
      t[DEADLINE] = NEVER;
      this.#stale = true;
      this.#mustStep = true;
      await new Promise<void>((resolve, reject) => {
        this.#loopDone = resolve;
        this.#loopFailed = reject;
        this.#loop();
      });
    } finally {
      this.#loopDone = this.#loopFailed = null;
      this.#armedMs = -1;
      this.#sleeper = null;
      this.#running = false;
      await sleeper?.close();
    }
  }

  /**
   * `run()`'s loop: spins passes (`#spin`) and starts the wait they end in, then returns; the
   * wait's end (`#onSleeperWake`, `#onYielded`, `#onLinkWaited`) calls it again. On the
   * sleeper thread that is a callback with no promise (an async loop awaited one per sleep:
   * 21 KB/s of a receiving NSM's garbage, sampled). Settles `run()`'s promise at a stop, or
   * with what a pass threw.
   */
  #loop(): void {
    try {
      const s = this.stats;
      const t = this.#t;
      while (!this.#stopRequested) {
        const ms = this.#spin();
        if (ms < 0) break;
        if (ms === 0) {
          // A zero-timeout wait is a thread-pool hop: the event loop runs (signals, timers).
          s.yields++;
          const sl = this.#sleeper;
          if (sl !== null && this.#prepareThreadSleep(sl, 0) === THREAD_SLEEP) {
            this.#armedMs = 0;
            sl.sleep(0);
          } else this.link.wait(0).then(this.#onYielded, this.#onLoopError);
          return;
        }
        s.sleeps++;
        // On the sleeper thread (no garbage, a slower wake-up: nsm/sleeper.ts) when the last
        // sleep was short, i.e. between the bursts of a busy transfer; after a long one (idle)
        // through link.wait() and the doorbells' reads, which wake faster.
        const sl = this.#sleeper;
        const how = sl === null || t[LAST_SLEEP]! >= SHORT_SLEEP_NS
          ? LINK_WAIT
          : this.#prepareThreadSleep(sl, ms);
        if (how === THREAD_SLEEP) {
          this.#armedMs = ms;
          sl!.sleep(ms);
          return;
        }
        if (how === LINK_WAIT) {
          // The link's poll(2) runs on the thread pool and cannot be interrupted: a wake() lets
          // the loop go on while that poll finishes on its own (at the latest after `ms`).
          const woken = new Promise<boolean>((resolve) => {
            this.#wakeResolve = () => resolve(false);
          });
          Promise.race([this.link.wait(ms), woken]).then(this.#onLinkWaited, this.#onLoopError);
          return;
        }
        this.#afterSleep(); // NO_SLEEP: work arrived while preparing it
      }
      const done = this.#loopDone;
      this.#loopDone = this.#loopFailed = null;
      done?.();
    } catch (e) {
      this.#onLoopError(e);
    }
  }

  /** After a yield to the event loop. */
  #afterYield(): void {
    monotonicNowInto(this.#t, LAST_YIELD);
    this.#mustStep = true;
  }

  /** After a sleep (or one skipped because work arrived). */
  #afterSleep(): void {
    const t = this.#t;
    this.#wakePending = false;
    monotonicNowInto(t, LAST_YIELD);
    t[LAST_SLEEP] = t[LAST_YIELD]! - t[NOW]!; // t[NOW]: #spin's last reading
    t[LAST_WORK] = t[LAST_YIELD]!; // spin again briefly after a wake-up: a burst likely follows
    this.#mustStep = true;
  }

  /**
   * Spins passes until the loop must leave them: returns 0 to yield to the event loop, the
   * milliseconds to sleep, or -1 on `stop()`. Synchronous, with the loop's instants in a
   * Float64Array: in the async `run()` every instant that lived across an `await` was boxed
   * into a heap number at each store, and each clock reading returned one.
   */
  #spin(): number {
    const s = this.stats;
    const t = this.#t;
    const spinNs = this.#spinNs;
    while (!this.#stopRequested) {
      monotonicNowInto(t, NOW);
      const now = t[NOW]!;
      s.iterations++;
      let busy = false;
      let after = now;
      let work = this.#mustStep || !this.#canSkip || this.#wakePending || this.#anyWork();
      if (!work) {
        // The earliest deadline: timers change only in steps, so it is asked for once after a
        // step, and only when needed (each asks every component).
        if (this.#stale) {
          this.#deadline();
          this.#stale = false;
        }
        work = now >= t[DEADLINE]!;
      }
      if (work) {
        busy = this.step(now);
        monotonicNowInto(t, NOW);
        after = t[NOW]!;
        this.#stale = true;
        this.#mustStep = false;
      } else s.skipped++;
      if (busy) {
        s.busyIterations++;
        // The spin counts from the end of the work: a pass that ran longer than spinNs (a
        // batch of 100+ segments does) must still be followed by a spin, not a sleep.
        t[LAST_WORK] = after;
      }
      const idleFor = after - t[LAST_WORK]!;
      if (idleFor >= spinNs && this.#stale) {
        this.#deadline();
        this.#stale = false;
      }
      const deadline = t[DEADLINE]!;
      if (idleFor < spinNs || deadline <= after) {
        // Only here, where the loop passes again: a yield may hand the CPU to the guest for
        // a whole time slice, and what it produced meanwhile is found by the next step, not
        // slept on.
        if (!busy && this.#idle !== null) this.#idle();
        if (after - t[LAST_YIELD]! >= this.#yieldNs) return 0;
        continue;
      }
      if (this.#wakePending) {
        this.#wakePending = false;
        continue;
      }
      let ms = deadline === NEVER ? this.#maxSleepMs : Math.ceil((deadline - after) / MILLISECOND);
      if (ms > this.#maxSleepMs) ms = this.#maxSleepMs;
      return ms < 1 ? 1 : ms;
    }
    return -1;
  }
}
