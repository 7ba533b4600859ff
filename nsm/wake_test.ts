import assert from "node:assert/strict";
import { GuestDevice } from "./device.ts";
import { Doorbell, findDoorbellFd } from "./wake.ts";
import { smallDevice } from "../tests/support/small_device.ts";
import { needsAll, needsRoot, needsTool } from "../tests/support/require.ts";

const nsGate = needsAll(needsRoot(), needsTool("ip"));

/** An NSM device with one attached guest: `fn(nsmBell, guest)`, then everything is closed. */
async function withBell(
  name: string,
  fn: (bell: Doorbell, g: GuestDevice) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const dev = smallDevice(name, dir);
  const accepted = dev.acceptGuest();
  const g = await GuestDevice.attach(dev.path);
  const bell = await accepted;
  try {
    await fn(bell, g);
  } finally {
    g.close();
    dev.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Doorbell.waitAny: two overlapping waits over one bell both end with 'work' on one ring, and the bell stays open", async () => {
  await withBell("wake-test", async (bell, g) => {
    let work = false;
    const first = Doorbell.waitAny([bell], () => work, 0, 2000);
    const second = Doorbell.waitAny([bell], () => work, 0, 2000); // the caller gave up on `first`
    await new Promise((r) => setTimeout(r, 20));
    work = true;
    g.bell.notify(); // one byte
    assert.deepEqual(await Promise.all([first, second]), ["work", "work"]);
    assert.equal(bell.closed, false);
    work = false;
    const third = await Doorbell.waitAny([bell], () => work, 0, 50);
    assert.equal(third, "timeout");
  });
});

Deno.test("NsmDevice.acceptGuest(): the NSM's doorbell rings with send(2) on its own descriptor (FFI granted), wakes a sleeping guest (and the guest's end rings a sleeping NSM the same way), and drops the descriptor on close", async () => {
  const dir = await Deno.makeTempDir();
  const dev = smallDevice("wake-sync", dir);
  const accepted = dev.acceptGuest();
  const g = await GuestDevice.attach(dev.path);
  const bell = await accepted;
  try {
    assert.equal(bell.syncRing, true);
    assert.equal(g.bell.syncRing, true); // the guest's end, found by its peer's name
    for (let round = 0; round < 3; round++) {
      let work = false;
      const sleeping = Doorbell.waitAny([g.bell], () => work, 0, 2000);
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(bell.peerSleeping, true);
      work = true;
      bell.notify(); // the guest announced its sleep: one byte, written synchronously
      assert.equal(await sleeping, "work");
    }
    assert.equal(bell.wakesSent, 3);
    assert.equal(bell.closed, false);
    // And the other way: the guest rings a sleeping NSM with its own send(2).
    let work = false;
    const nsmSleeping = Doorbell.waitAny([bell], () => work, 0, 2000);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(g.bell.peerSleeping, true);
    work = true;
    g.bell.notify();
    assert.equal(await nsmSleeping, "work");
    assert.equal(g.bell.wakesSent, 1);
  } finally {
    g.close();
    dev.close();
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(bell.syncRing, false);
});

Deno.test("findDoorbellFd() returns null for a path no connected socket of this process is bound to", () => {
  assert.equal(findDoorbellFd("/nonexistent/nk-none.bell"), null);
});

Deno.test("Doorbell.wait() without spin or timeout sleeps until a ring ('work', counted as a sleep), answers at once when work is there, and reports 'closed' at the peer's close", async () => {
  await withBell("wake-test-one", async (bell, g) => {
    let work = false;
    const sleeps = bell.sleeps;
    const first = bell.wait(() => work, 0);
    const second = bell.wait(() => work, 0); // overlapping: shares the outstanding read
    await new Promise((r) => setTimeout(r, 20));
    work = true;
    g.bell.notify();
    assert.deepEqual(await Promise.all([first, second]), ["work", "work"]);
    assert.equal(bell.sleeps, sleeps + 2);
    assert.equal(await bell.wait(() => true, 0), "work");
    assert.equal(bell.sleeps, sleeps + 2, "no sleep when work is already there");
    work = false;
    const last = bell.wait(() => work, 0);
    g.close(); // the guest goes away: EOF on the doorbell
    assert.equal(await last, "closed");
    assert.equal(bell.closed, true);
  });
});

Deno.test({
  name: "An NSM in a network namespace of its own finds its guest's doorbell descriptor (the " +
    "accepted socket belongs to the guest's namespace) and wakes the guest with send(2)",
  ignore: nsGate.ignore,
  async fn(): Promise<void> {
    nsGate.assert();
    const ns = `nkwake${Deno.pid % 100000}`;
    const dir = await Deno.makeTempDir();
    const ip = (args: string[]) => new Deno.Command("ip", { args, stdout: "null" }).output();
    assert.ok((await ip(["netns", "add", ns])).success, `ip netns add ${ns}`);
    let child: Deno.ChildProcess | null = null;
    let g: GuestDevice | null = null;
    try {
      const script = new URL("../tests/support/doorbell_nsm_child.ts", import.meta.url).pathname;
      child = new Deno.Command("ip", {
        args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", script, dir],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      const line = async (re: RegExp): Promise<RegExpExecArray> => {
        for (let m = re.exec(text);; m = re.exec(text)) {
          if (m !== null) return m;
          const r = await lines.read();
          if (r.done) throw new Error(`the NSM child ended: ${text}`);
          text += r.value;
        }
      };
      g = await GuestDevice.attach((await line(/^path (\S+)$/m))[1]!);
      assert.equal((await line(/^sync-ring (\w+)$/m))[1], "true", "found in the namespace");
      assert.equal(g.bell.syncRing, true, "the guest's end too");
      const woken = await Doorbell.waitAny([g.bell], () => g!.bell.sleeps > 0, 0, 10_000);
      assert.equal(woken, "work", "the guest slept and the NSM's send(2) woke it");
      assert.equal((await line(/^woke (\d+)$/m))[1], "1");
      lines.releaseLock();
    } finally {
      g?.close();
      if (child !== null) {
        await child.stdin.close().catch(() => {});
        await child.stdout.cancel().catch(() => {});
        const st = await child.status;
        assert.ok(st.success, `child exit ${st.code}`);
      }
      await ip(["netns", "del", ns]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("Doorbell.beginSleep()/endSleep(): the peer rings a side that announced its sleep, endSleep() reads the byte without blocking and takes the flag back, and reports the peer's close", async () => {
  await withBell("wake-sleep-test", async (bell, g) => {
    // Both ends have descriptors of their own (FFI granted): a caller may sleep on them.
    assert.ok(bell.pollFd >= 0 && g.bell.pollFd >= 0);
    bell.beginSleep();
    assert.ok(g.bell.peerSleeping, "the flag announces the sleep");
    g.bell.notify(); // flips the flag and writes one byte
    assert.equal(g.bell.peerSleeping, false);
    assert.equal(g.bell.wakesSent, 1);
    await new Promise((r) => setTimeout(r, 10)); // the byte crosses the socket
    assert.equal(bell.endSleep(), true);
    // The byte was read: a wait now sleeps instead of returning on a stale byte.
    let work = false;
    const w = bell.wait(() => work, 0, 50);
    assert.equal(await w, "timeout");
    // A sleep that found work on its re-check ends without a ring: endSleep() takes the flag.
    bell.beginSleep();
    assert.equal(bell.endSleep(), true);
    assert.equal(g.bell.peerSleeping, false);
    g.bell.notify();
    assert.equal(g.bell.wakesSent, 1, "no byte for a side that is awake");
    work = true;
    // The peer goes away: endSleep() sees EOF.
    g.close();
    await new Promise((r) => setTimeout(r, 10));
    bell.beginSleep();
    assert.equal(bell.endSleep(), false);
    assert.equal(bell.closed, true);
    assert.equal(bell.pollFd, -1);
  });
});
