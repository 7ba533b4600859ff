import assert from "node:assert/strict";
import { GuestDevice, NsmDevice } from "./device.ts";
import { Doorbell } from "./wake.ts";

Deno.test("Doorbell.waitAny: two overlapping waits over one bell both end with 'work' on one ring, and the bell stays open", async () => {
  const dir = await Deno.makeTempDir();
  const dev = NsmDevice.create({
    name: `wake-test-${Deno.pid}`,
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
  } finally {
    g.close();
    dev.close();
    await Deno.remove(dir, { recursive: true });
  }
});
