import assert from "node:assert/strict";
import { GuestDevice, NsmDevice } from "./device.ts";
import { Doorbell, findDoorbellFd } from "./wake.ts";

/** An NSM device with one attached guest: `fn(nsmBell, guest)`, then everything is closed. */
async function withBell(
  name: string,
  fn: (bell: Doorbell, g: GuestDevice) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const dev = NsmDevice.create({
    name: `${name}-${Deno.pid}`,
    dir,
    bellDir: dir,
    hugePages: "never",
    ringCapacity: 8,
    chunksPerHalf: 2,
  });
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

Deno.test("NsmDevice.acceptGuest(): the NSM's doorbell rings with send(2) on its own descriptor (FFI granted), wakes a sleeping guest, and drops the descriptor on close", async () => {
  const dir = await Deno.makeTempDir();
  const dev = NsmDevice.create({
    name: `wake-sync-${Deno.pid}`,
    dir,
    bellDir: dir,
    hugePages: "never",
    ringCapacity: 8,
    chunksPerHalf: 2,
  });
  const accepted = dev.acceptGuest();
  const g = await GuestDevice.attach(dev.path);
  const bell = await accepted;
  try {
    assert.equal(bell.syncRing, true);
    assert.equal(g.bell.syncRing, false); // the guest's end has no path: Deno's write
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
