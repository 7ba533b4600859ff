import assert from "node:assert/strict";
import { Interface } from "../stacks/tcpip/iface/interface.ts";
import { type Instant, MILLISECOND, NEVER } from "../stacks/time.ts";
import { NsmRuntime, type Pollable, RuntimeStateError, type WaitableLink } from "./runtime.ts";
import { libc } from "../stacks/sys/libc.ts";

/** A link with no traffic that records how long the loop asked to sleep. */
class IdleLink implements WaitableLink {
  readonly name = "idle";
  readonly mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
  readonly mtu = 1500;
  readonly capabilities = { rxChecksumVerified: false, txChecksumOffload: false, maxBatch: 8 };
  readonly waits: number[] = [];
  flushes = 0;
  receive(): number {
    return 0;
  }
  transmitBuffer(): Uint8Array | null {
    return null;
  }
  commit(): void {}
  flush(): void {
    this.flushes++;
  }
  close(): void {}
  async wait(ms: number): Promise<boolean> {
    this.waits.push(ms);
    await new Promise((r) => setTimeout(r, Math.min(ms, 5)));
    return false;
  }
}

/**
 * A hook that is busy for its first `busyPolls` polls, then arms a timer `delayMs` after the
 * poll where it went idle (relative to that moment, not to construction: on a loaded machine
 * the busy polls alone can outlast any fixed deadline, and the first sleep then had no timer).
 */
class IdleTimerHook implements Pollable {
  readonly name = "idle-timer";
  polls = 0;
  at: Instant = NEVER;
  fired = false;
  constructor(private busyPolls: number, private delayMs: number) {}
  poll(now: Instant): boolean {
    this.polls++;
    if (this.polls === this.busyPolls + 1) this.at = now + this.delayMs * MILLISECOND;
    else if (this.at !== NEVER && now >= this.at) {
      this.at = NEVER;
      this.fired = true;
    }
    return this.polls <= this.busyPolls;
  }
  pollAt(): Instant {
    return this.at;
  }
}

/** A hook that is busy for its first `busyPolls` polls and has a timer at `at`. */
class Hook implements Pollable {
  readonly name = "hook";
  polls = 0;
  constructor(private busyPolls: number, private at: Instant) {}
  poll(now: Instant): boolean {
    this.polls++;
    if (now >= this.at) this.at = NEVER;
    return this.polls <= this.busyPolls;
  }
  pollAt(): Instant {
    return this.at;
  }
}

Deno.test("NsmRuntime polls its hooks, sleeps on link.wait() up to the next pollAt when idle, and stop() ends run()", async () => {
  const link = new IdleLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  // maxSleepMs 1000 > the hook's 200 ms timer, so the two bounds are told apart. IdleLink.wait
  // only records the asked-for timeout and really sleeps at most 5 ms: no wall-clock cost.
  const rt = new NsmRuntime(link, iface, { maxSleepMs: 1000 });
  const hook = new IdleTimerHook(100, 200);
  rt.add(hook);
  const done = rt.run();
  assert.ok(rt.running);
  await assert.rejects(() => rt.run(), RuntimeStateError);
  // Until the timer fired and the loop slept again after it (bounded, generous).
  const until = Date.now() + 30_000;
  while (!(hook.fired && link.waits.includes(1000)) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
  }
  rt.stop();
  await done;
  assert.equal(rt.running, false);
  assert.ok(hook.fired, `the hook's timer fired within 30 s; waits ${link.waits}`);
  assert.ok(hook.polls > 100, "the hook was polled while busy and after");
  assert.ok(rt.stats.busyIterations >= 100);
  assert.ok(rt.stats.sleeps >= 2, `slept when idle (${rt.stats.sleeps})`);
  // Sleeps are bounded by the hook's 200 ms timer while it is armed, by maxSleepMs after.
  assert.ok(link.waits.filter((ms) => ms > 0).every((ms) => ms <= 1000), `${link.waits}`);
  assert.ok(link.waits.some((ms) => ms > 0 && ms <= 200), `${link.waits}`);
  assert.ok(link.waits.includes(1000), `${link.waits}`);
  assert.ok(link.flushes >= rt.stats.iterations, "flushed every iteration");
});

Deno.test("NsmRuntime.add() returns a remover; removed hooks are no longer polled", () => {
  const link = new IdleLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const rt = new NsmRuntime(link, iface);
  const a = new Hook(0, NEVER), b = new Hook(0, 5);
  const removeB = rt.add(b);
  rt.add(a);
  assert.equal(rt.pollAt(), 5);
  rt.step(1);
  removeB();
  rt.step(2);
  assert.equal(b.polls, 1);
  assert.equal(a.polls, 2);
  assert.equal(rt.pollAt(), NEVER);
});

Deno.test("NsmRuntime.pollAt() reads a hook's deadline through pollAtInto() when it has one, through pollAt() otherwise, and the interface's through pollAtInto()", () => {
  const link = new IdleLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const rt = new NsmRuntime(link, iface);
  // A deadline above 2^31 ns with a fraction: what a returned instant would box.
  const at = 3 * 2 ** 31 + 0.5;
  const stored: Pollable = {
    name: "stored",
    poll: () => false,
    pollAt: () => {
      throw new Error("pollAt() called although pollAtInto() exists");
    },
    pollAtInto: (out, i) => {
      out[i] = at;
    },
  };
  rt.add(stored);
  rt.add(new Hook(0, at + 7)); // returns its deadline
  assert.equal(rt.pollAt(), at);
  const out = new Float64Array(2);
  iface.pollAtInto(out, 1);
  assert.equal(out[1], iface.pollAt());
  rt.add(new Hook(0, 12));
  assert.equal(rt.pollAt(), 12);
});

/** A link whose wait() only ends when the test says so (a sleep that never times out). */
class BlockingLink extends IdleLink {
  readonly pending: (() => void)[] = [];
  override wait(ms: number): Promise<boolean> {
    this.waits.push(ms);
    return new Promise((r) => this.pending.push(() => r(false)));
  }
}

Deno.test("NsmRuntime.wake() ends an idle sleep at once so a hook woken from the event loop is polled; stop() does not wait for the sleep", async () => {
  const link = new BlockingLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const rt = new NsmRuntime(link, iface, { maxSleepMs: 60_000 });
  const hook = new Hook(0, NEVER);
  rt.add(hook);
  const done = rt.run();
  // Let it go idle and block in wait().
  while (link.waits.length === 0) await new Promise((r) => setTimeout(r, 1));
  const before = hook.polls;
  const sleeps = rt.stats.sleeps;
  rt.wake();
  while (rt.stats.sleeps === sleeps) await new Promise((r) => setTimeout(r, 1));
  assert.ok(hook.polls > before, "polled again after wake() although wait() never returned");
  rt.stop();
  await done;
  assert.equal(rt.running, false);
  for (const r of link.pending) r(); // release the abandoned waits
});

Deno.test("NsmRuntime calls the idle hook on every spinning pass that found no work, never on a busy pass", async () => {
  const link = new IdleLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const hook = new Hook(50, NEVER);
  const pollsAtIdle: number[] = [];
  // A long spin: the loop stays in the spinning branch (no sleep) until stopped.
  const rt = new NsmRuntime(link, iface, {
    spinNs: 60_000 * MILLISECOND,
    idle: () => pollsAtIdle.push(hook.polls),
  });
  rt.add(hook);
  const done = rt.run();
  const until = Date.now() + 30_000;
  while (pollsAtIdle.length < 20 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5));
  }
  rt.stop();
  await done;
  assert.ok(pollsAtIdle.length >= 20, `idle hook called ${pollsAtIdle.length} times`);
  // The first 50 passes were busy: the hook ran only after the 51st poll, and then on every
  // pass that did no work.
  assert.ok(pollsAtIdle[0]! > 50, `first idle call after poll ${pollsAtIdle[0]}`);
  assert.equal(
    rt.stats.iterations - rt.stats.busyIterations,
    pollsAtIdle.length,
    "one idle call per empty pass",
  );
  assert.equal(rt.stats.sleeps, 0, "spinning, never asleep");
});

Deno.test("NsmRuntime counts the spin from the end of a busy pass: a pass longer than spinNs is followed by spinning passes, not a sleep", async () => {
  const link = new IdleLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  let polls = 0;
  const slow: Pollable = {
    name: "slow",
    poll(): boolean {
      polls++;
      if (polls !== 1) return false;
      // One busy pass that outlasts the 20 ms spin (real time: the loop reads the real clock;
      // the spin is long against the yield that follows the pass, a setTimeout in IdleLink).
      const until = performance.now() + 40;
      while (performance.now() < until) { /* busy */ }
      return true;
    },
    pollAt: () => NEVER,
  };
  let waitsAtFirstIdle = -1;
  const rt = new NsmRuntime(link, iface, {
    spinNs: 20 * MILLISECOND,
    idle: () => {
      if (waitsAtFirstIdle < 0) waitsAtFirstIdle = link.waits.filter((ms) => ms > 0).length;
    },
  });
  rt.add(slow);
  const done = rt.run();
  const until = Date.now() + 30_000;
  while (link.waits.filter((ms) => ms > 0).length === 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 5));
  }
  rt.stop();
  await done;
  assert.equal(
    waitsAtFirstIdle,
    0,
    `spun (idle hook) before the first sleep: ${JSON.stringify({ polls, stats: rt.stats })}`,
  );
  assert.ok(rt.stats.sleeps >= 1, "and slept once the spin ran out");
});

Deno.test("NsmRuntime skips spinning passes while the link and every hook report no work, and steps again for work or a deadline", async () => {
  class QuietLink extends IdleLink {
    work = false;
    hasWork(): boolean {
      return this.work;
    }
  }
  const link = new QuietLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  let polls = 0;
  let at = NEVER;
  let due = 0;
  const hook: Pollable = {
    name: "quiet",
    poll(now: Instant): boolean {
      polls++;
      if (now >= at) {
        at = NEVER;
        due++;
      }
      return false;
    },
    pollAt: () => at,
    hasWork: () => false,
  };
  const rt = new NsmRuntime(link, iface, { spinNs: 60_000 * MILLISECOND });
  rt.add(hook);
  const done = rt.run();
  const waitFor = async (ok: () => boolean): Promise<void> => {
    const until = Date.now() + 30_000;
    while (!ok() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  };
  try {
    await waitFor(() => rt.stats.skipped > 1000);
    assert.ok(rt.stats.skipped > 1000, `${rt.stats.skipped} passes skipped`);
    // Only passes after a yield to the event loop stepped (the test's timers ran there).
    assert.ok(polls <= rt.stats.yields + 1, `${polls} polls, ${rt.stats.yields} yields`);
    const before = polls;
    link.work = true;
    await waitFor(() => polls > before + 100);
    assert.ok(polls > before + 100, "the link's work makes every pass step");
    link.work = false;
    at = 0; // due at once: the next pass that looks at deadlines steps even with no work
    await waitFor(() => due > 0);
    assert.equal(due, 1);
  } finally {
    rt.stop();
    await done;
  }
});

/** A link whose wake source is an eventfd: `pollFds` lists it, `wait()` sleeps 1 ms. */
class FdLink extends IdleLink {
  readonly fd = libc().eventfd(0, 0o4000 /* EFD_NONBLOCK */);
  pollFds(into: number[]): boolean {
    into.push(this.fd);
    return true;
  }
  /** Makes the descriptor readable (ends a sleep on it). */
  ring(): void {
    libc().write(this.fd, new BigUint64Array([1n]), 8n);
  }
  /** Reads the count back to 0. */
  drain(): void {
    libc().read(this.fd, new Uint8Array(8), 8n);
  }
  override async wait(ms: number): Promise<boolean> {
    this.waits.push(ms);
    await new Promise((r) => setTimeout(r, 1));
    return false;
  }
  override close(): void {
    libc().close(this.fd);
  }
}

Deno.test("NsmRuntime sleeps on the sleeper thread after a short sleep, wakes when the link's descriptor becomes readable, and stop() ends such a sleep", async () => {
  const link = new FdLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const rt = new NsmRuntime(link, iface, { maxSleepMs: 60_000 });
  const hook = new Hook(0, NEVER);
  rt.add(hook);
  const done = rt.run();
  try {
    // The first sleep (nothing before it) is link.wait(); it lasts ~1 ms, so the next one is
    // on the thread, for up to 60 s, with the eventfd as its only wake source.
    while (rt.stats.threadSleeps === 0) await new Promise((r) => setTimeout(r, 1));
    assert.ok(link.waits.length >= 1, "the first sleep went through link.wait()");
    assert.ok(rt.sleepsOnThread);
    const waits = link.waits.length;
    const polls = hook.polls;
    const wakeups = rt.stats.wakeups;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(hook.polls, polls, "asleep: not polled without a wake source");
    link.ring();
    const t0 = performance.now();
    while (rt.stats.wakeups === wakeups) await new Promise((r) => setTimeout(r, 1));
    assert.ok(performance.now() - t0 < 30_000, "woken by the descriptor, not the 60 s timeout");
    assert.ok(hook.polls > polls, "polled after the wake-up");
    link.drain();
    // The sleep that follows is link.wait() again (the last one lasted ~50 ms), then one on
    // the thread: stop() ends it at once, not after its 60 s.
    const armed = rt.stats.threadSleeps;
    while (rt.stats.threadSleeps === armed) await new Promise((r) => setTimeout(r, 1));
    assert.ok(link.waits.length > waits, "after a long sleep, link.wait()");
    const t1 = performance.now();
    rt.stop();
    await done;
    assert.ok(performance.now() - t1 < 10_000, "stop() interrupted the sleep");
  } finally {
    rt.stop();
    await done;
    link.close();
  }
  assert.equal(rt.running, false);
  assert.equal(rt.sleepsOnThread, false);
});

Deno.test("NsmRuntime whose sleeper thread dies in a sleep goes on with link.wait()", async () => {
  const link = new FdLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const rt = new NsmRuntime(link, iface, {
    maxSleepMs: 60_000,
    sleeperModule: new URL("../tests/support/sleeper_dying_worker.ts", import.meta.url),
  });
  rt.add(new Hook(0, NEVER));
  const done = rt.run();
  try {
    // The first sleep is link.wait(); the second is armed on the thread, which then dies.
    // (Bounded waits: without the fallback the loop would sleep its 60 s on a dead thread.)
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      for (let i = 0; i < 10_000 && !ok(); i++) await new Promise((r) => setTimeout(r, 1));
      assert.ok(ok(), what);
    };
    await until("a sleep armed on the thread", () => rt.stats.threadSleeps > 0);
    await until("the sleeper dropped", () => !rt.sleepsOnThread);
    const waits = link.waits.length;
    await until("sleeping through link.wait()", () => link.waits.length >= waits + 3);
    assert.equal(rt.stats.threadSleeps, 1, "no sleep on the dead thread after it died");
  } finally {
    rt.stop();
    // Bounded too: a loop stuck on a dead thread would not return.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([done, new Promise((r) => timer = setTimeout(r, 10_000))]);
    clearTimeout(timer);
    link.close();
  }
  assert.equal(rt.running, false, "run() returned after stop()");
});

Deno.test("NsmRuntime starts no sleeper thread for a link whose pollFds() cannot list descriptors", async () => {
  class NoFdLink extends IdleLink {
    pollFds(): boolean {
      return false; // a GuestWakeLink over a memory link
    }
  }
  const link = new NoFdLink();
  const iface = new Interface(link, { ipv4: [{ address: "198.18.0.1", prefixLength: 24 }] });
  const rt = new NsmRuntime(link, iface, { maxSleepMs: 1000 });
  rt.add(new Hook(0, NEVER));
  const done = rt.run();
  try {
    for (let i = 0; i < 5000 && link.waits.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(link.waits.length >= 3, "slept through link.wait()");
    assert.equal(rt.sleepsOnThread, false);
    assert.equal(rt.stats.threadSleeps, 0);
  } finally {
    rt.stop();
    await done;
  }
});
