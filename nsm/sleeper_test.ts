import assert from "node:assert/strict";
import { Sleeper, SleeperUnavailableError, SleeperWake } from "./sleeper.ts";
import { libc } from "../stacks/sys/libc.ts";

const EFD_NONBLOCK = 0o4000;
const ROOT = new URL("../", import.meta.url).pathname;

/** A Sleeper whose wakes resolve the promises `next()` hands out. */
async function sleeperWithWakes(): Promise<{ s: Sleeper; next: () => Promise<SleeperWake> }> {
  const queue: SleeperWake[] = [];
  let waiter: ((w: SleeperWake) => void) | null = null;
  const s = await Sleeper.start((why) => {
    if (waiter !== null) {
      const w = waiter;
      waiter = null;
      w(why);
    } else queue.push(why);
  });
  const next = (): Promise<SleeperWake> =>
    queue.length > 0
      ? Promise.resolve(queue.shift()!)
      : new Promise<SleeperWake>((r) => waiter = r);
  return { s, next };
}

Deno.test("Sleeper wakes with Ready when a watched descriptor becomes readable, and not before", async () => {
  const { s, next } = await sleeperWithWakes();
  const fd = libc().eventfd(0, EFD_NONBLOCK);
  assert.ok(fd >= 0);
  try {
    s.setFds([fd]);
    s.sleep(-1);
    let woke = false;
    const w = next().then((why) => {
      woke = true;
      return why;
    });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(woke, false, "woke with nothing readable");
    assert.ok(s.sleeping);
    libc().write(fd, new BigUint64Array([1n]), 8n);
    assert.equal(await w, SleeperWake.Ready);
    assert.equal(s.sleeping, false);
    assert.equal(s.readyWakes, 1);
  } finally {
    await s.close();
    libc().close(fd);
  }
});

Deno.test("Sleeper ends a sleep at its timeout, and interrupt() ends one at once", async () => {
  const { s, next } = await sleeperWithWakes();
  try {
    s.setFds([]);
    const t0 = performance.now();
    s.sleep(40);
    assert.equal(await next(), SleeperWake.Timeout);
    assert.ok(performance.now() - t0 >= 35, `timed out after ${performance.now() - t0} ms`);
    s.sleep(60_000);
    setTimeout(() => s.interrupt(), 5);
    const t1 = performance.now();
    assert.equal(await next(), SleeperWake.Interrupted);
    assert.ok(performance.now() - t1 < 30_000);
    assert.equal(s.timeouts, 1);
    assert.equal(s.interrupts, 1);
    s.interrupt(); // not sleeping: nothing happens, and the next sleep is not cut short
    s.sleep(20);
    assert.equal(await next(), SleeperWake.Timeout);
  } finally {
    await s.close();
  }
});

Deno.test("Sleeper refuses a second sleep while one is armed, and close() is idempotent with a sleep armed", async () => {
  const { s } = await sleeperWithWakes();
  s.setFds([]);
  s.sleep(-1);
  assert.throws(() => s.sleep(0), /while a sleep is armed/);
  assert.throws(() => s.setFds([0]), /interrupt\(\) it first/);
  await Promise.all([s.close(), s.close()]);
  assert.ok(s.closed);
  assert.throws(() => s.sleep(0), /after close/);
});

Deno.test("an armed sleep keeps the process alive until its wake, and then lets it exit", async () => {
  // The callback is referenced only while a sleep is armed: without the reference the
  // process would exit before the wake (and an unreferenced callback does not wake the loop).
  const code = `
    import { Sleeper } from "${ROOT}nsm/sleeper.ts";
    const s = await Sleeper.start(() => console.log("woke"));
    s.setFds([]);
    s.sleep(100);
    console.log("armed");
  `;
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "armed\nwoke");
  assert.ok(performance.now() - t0 < 30_000);
});

Deno.test("a Sleeper sleep allocates nothing on the JS heap, where a timer hop allocates ~2 KB", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64",
      `${ROOT}tests/support/sleeper_alloc_child.ts`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    sleeperBytes: number;
    timerBytes: number;
  };
  // The measurement sees allocation: a zero timer and its promise are ~2 KB.
  assert.ok(r.timerBytes > 500, `timer hop: ${r.timerBytes} B`);
  // 1.3 B measured (the interval's own awaits, spread over 20,000 sleeps).
  assert.ok(r.sleeperBytes < 16, `sleeper hop: ${r.sleeperBytes} B`);
});

Deno.test("a Sleeper whose thread dies ends the armed sleep with Error, reports failed, and refuses to sleep again", async () => {
  const woke: SleeperWake[] = [];
  let done: () => void = () => {};
  const ended = new Promise<void>((r) => done = r);
  const s = await Sleeper.start((why) => {
    woke.push(why);
    done();
  }, { workerModule: new URL("../tests/support/sleeper_dying_worker.ts", import.meta.url) });
  try {
    s.setFds([]);
    assert.equal(s.failed, false);
    s.sleep(-1); // no timeout: only the thread's death can end it
    await ended;
    assert.deepEqual(woke, [SleeperWake.Error]);
    assert.ok(s.failed);
    assert.equal(s.sleeping, false);
    assert.throws(() => s.sleep(0), SleeperUnavailableError);
  } finally {
    await s.close();
  }
});
