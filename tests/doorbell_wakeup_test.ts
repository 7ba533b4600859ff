/**
 * The doorbell's no-lost-wake-up argument (nsm/wake.ts, "No lost wake-up"), checked with two real
 * processes on two cores:
 *
 * 1. the ordering it rests on (store-buffer litmus on an NK mapping): a plain store followed by
 *    the notifier's compare-exchange read, and the waiter's exchange followed by a load, are
 *    never reordered (nor is a seq_cst `Atomics.store` followed by a load), while a plain store
 *    followed by a plain atomic load is (the control that shows the litmus can see a
 *    reordering at all);
 * 2. the protocol itself: a producer and a consumer that go to sleep whenever they have nothing to
 *    do (spin 0) pass 20,000 entries through a 4-slot ring, the consumer waking the producer
 *    with `notify()`, the producer waking the consumer with `notifyLazy()` (whose skipped fence
 *    its own `wait()` and a final `notify()` must make up); a lost wake-up would leave a side
 *    asleep on work until its 1 s timeout.
 *    The race a wrong protocol loses is nanoseconds wide, so this catches gross bugs only
 *    sometimes (a waiter without its re-check after raising the flag failed 1 run in 6); test 1
 *    is the one that checks the ordering directly.
 *
 * This file is also the peer process: `deno run -A tests/doorbell_wakeup_test.ts litmus|ring ...`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { GuestDevice, NsmDevice } from "../nsm/device.ts";
import { SharedMemory } from "../nsm/shm.ts";
import { monotonicNow } from "../stacks/time.ts";

const SELF = new URL(import.meta.url).pathname;
const LITMUS_ROUNDS = 400_000;
const RING_ENTRIES = 20_000;
/** Longest sleep: the peer is never idle that long, so a sleep that times out missed a ring. */
const WAIT_MS = 1000;

/**
 * One side of the store-buffer litmus: in round i, store i into our word, then load the peer's.
 * Returns what each round's load saw. The sides keep loosely in step (round i starts once the
 * peer has started round i - 1), so their stores and loads overlap often.
 */
function litmusSide(buffer: ArrayBuffer, me: number, mode: Litmus, rounds: number): Int32Array {
  const mine = new Int32Array(buffer, me * 256, 1);
  const peer = new Int32Array(buffer, (1 - me) * 256, 1);
  const seen = new Int32Array(rounds);
  for (let i = 1; i <= rounds; i++) {
    while (Atomics.load(peer, 0) < i - 1) { /* wait for the peer's previous round */ }
    if (mode === "plain") {
      mine[0] = i;
      seen[i - 1] = Atomics.load(peer, 0);
    } else if (mode === "notify") {
      mine[0] = i; // publish()'s plain index store on x86-64
      seen[i - 1] = Atomics.compareExchange(peer, 0, -1, -1); // notify()'s flag read (never swaps)
    } else if (mode === "wait") {
      Atomics.exchange(mine, 0, i); // wait()'s flag store
      seen[i - 1] = Atomics.load(peer, 0); // its re-check of the ring index
    } else {
      Atomics.store(mine, 0, i);
      seen[i - 1] = Atomics.load(peer, 0);
    }
  }
  return seen;
}

/** Store-then-load variants: the control, the notifier's, the waiter's, a seq_cst store. */
type Litmus = "plain" | "notify" | "wait" | "seqcst";

/** Rounds in which both loads missed the other side's store of the same round. */
async function litmus(mode: Litmus): Promise<number> {
  const shm = SharedMemory.create({
    name: `litmus-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    size: 1024 + 4 * LITMUS_ROUNDS,
    hugePages: "never",
  });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SELF, "litmus", shm.path, mode],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    const seen = litmusSide(shm.buffer, 0, mode, LITMUS_ROUNDS);
    assert.equal((await child.status).code, 0, "litmus peer failed");
    const theirs = new Int32Array(shm.buffer, 1024, LITMUS_ROUNDS);
    let both = 0;
    for (let i = 1; i <= LITMUS_ROUNDS; i++) if (seen[i - 1]! < i && theirs[i - 1]! < i) both++;
    return both;
  } finally {
    shm.close();
  }
}

/** Busy-waits `us` microseconds (varies the timing so sleeps and wake-ups race). */
function pause(us: number): void {
  const until = monotonicNow() + us * 1000;
  while (monotonicNow() < until) { /* spin */ }
}

/** Peer of the ring test: produces `n` running numbers, sleeping whenever the ring is full. */
async function ringProducer(path: string, n: number): Promise<void> {
  const dev = await GuestDevice.attach(path);
  try {
    const job = dev.queueSets[0]!.job;
    const room = (): boolean => job.claim(1) > 0;
    let timeouts = 0;
    let seed = 12345;
    for (let i = 0; i < n; i++) {
      while (job.claim(1) === 0) {
        if (await dev.bell.wait(room, 0, WAIT_MS) === "timeout") timeouts++;
      }
      job.view.setUint32(job.slot(0), i, true);
      job.publish(1);
      dev.bell.notifyLazy(); // the debt path: wait() or the final notify() must settle it
      seed = (seed * 1103515245 + 12345) >>> 0;
      if ((seed & 3) === 0) pause((seed >>> 8) % 40);
    }
    dev.bell.notify();
    console.log(JSON.stringify({ timeouts, sleeps: dev.bell.sleeps, wakes: dev.bell.wakesSent }));
  } finally {
    dev.close();
  }
}

Deno.test({
  name:
    "a store then a load across two processes is never reordered when the doorbell's locked RMW sits between (store-buffer litmus); plain store + load is",
  ignore: navigator.hardwareConcurrency < 2,
  async fn(): Promise<void> {
    const plain = await litmus("plain");
    for (const mode of ["notify", "wait", "seqcst"] as const) {
      const n = await litmus(mode);
      assert.equal(n, 0, `${mode}: ${n} of ${LITMUS_ROUNDS} rounds had both loads miss`);
    }
    assert.ok(plain > 0, `the control saw no reordering in ${LITMUS_ROUNDS} rounds: inconclusive`);
  },
});

Deno.test({
  name:
    "two processes that sleep whenever idle pass 20,000 entries through a 4-slot ring with no lost wake-up",
  sanitizeResources: false,
  async fn(): Promise<void> {
    const nsm = NsmDevice.create({
      name: `wake-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      ringCapacity: 4,
      chunksPerHalf: 2,
      hugePages: "never",
    });
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", SELF, "ring", nsm.path, String(RING_ENTRIES)],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const out = child.output();
      const bell = await nsm.acceptGuest();
      const job = nsm.queueSets[0]!.job;
      const ready = (): boolean => job.peekFill() > 0;
      let got = 0;
      let outOfOrder = 0;
      let timeouts = 0;
      let seed = 6789;
      while (got < RING_ENTRIES) {
        const k = job.available(4);
        if (k === 0) {
          const why = await bell.wait(ready, 0, WAIT_MS);
          if (why === "closed") break;
          if (why === "timeout") timeouts++;
          continue;
        }
        for (let j = 0; j < k; j++) {
          if (job.view.getUint32(job.slot(j), true) !== got + j) outOfOrder++;
        }
        job.release(k);
        got += k;
        bell.notify();
        seed = (seed * 1103515245 + 12345) >>> 0;
        if ((seed & 3) === 0) pause((seed >>> 8) % 40);
      }
      const o = await out;
      assert.equal(o.code, 0, "producer failed");
      const peer = JSON.parse(new TextDecoder().decode(o.stdout).trim().split("\n").at(-1)!);
      assert.equal(got, RING_ENTRIES);
      assert.equal(outOfOrder, 0);
      assert.equal(timeouts, 0, "the consumer slept through entries (lost wake-up)");
      assert.equal(peer.timeouts, 0, "the producer slept through free slots (lost wake-up)");
      // The test is only worth something if both sides really slept and were rung awake.
      assert.ok(bell.sleeps > 100, `consumer slept only ${bell.sleeps} times`);
      assert.ok(peer.sleeps > 100, `producer slept only ${peer.sleeps} times`);
      assert.ok(bell.wakesSent > 100 && peer.wakes > 100, "both sides rang the other");
    } finally {
      nsm.close();
    }
  },
});

if (import.meta.main) {
  const [mode, path, arg] = Deno.args;
  if (mode === "litmus") {
    const shm = SharedMemory.open(path!);
    try {
      const seen = litmusSide(shm.buffer, 1, arg as Litmus, LITMUS_ROUNDS);
      new Int32Array(shm.buffer, 1024, LITMUS_ROUNDS).set(seen);
    } finally {
      shm.close();
    }
  } else if (mode === "ring") {
    await ringProducer(path!, Number(arg));
  }
}
