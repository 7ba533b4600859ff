import assert from "node:assert/strict";
import {
  DeviceConfigError,
  DeviceHeaderError,
  deviceLayout,
  GuestDevice,
  H_GUEST_PID,
  H_MAGIC,
  H_RING_BYTES,
  H_STATE,
  H_TOTAL_SIZE,
  H_VERSION_MAJOR,
  NsmDevice,
} from "./device.ts";
import { decodeNqe, encodeNqe, Nqe, NqeOp } from "./nqe.ts";
import { SharedMemory } from "./shm.ts";
import { Doorbell } from "./wake.ts";

const name = (): string => `nk-dev-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
const SMALL = { ringCapacity: 16, chunkSize: 2048, chunksPerHalf: 4, hugePages: "never" } as const;

async function withPair(
  fn: (nsm: NsmDevice, guest: GuestDevice) => Promise<void> | void,
): Promise<void> {
  const nsm = NsmDevice.create({ name: name(), queueSets: 2, ...SMALL });
  try {
    const [guest] = await Promise.all([GuestDevice.attach(nsm.path), nsm.acceptGuest()]);
    try {
      await fn(nsm, guest);
    } finally {
      guest.close();
    }
  } finally {
    nsm.close();
  }
}

Deno.test("a guest attached by path shares the NSM's queue sets and data region", async () => {
  await withPair((nsm, guest) => {
    assert.deepEqual(guest.geometry, nsm.geometry);
    assert.equal(nsm.guestPid, Deno.pid);
    const n = new Nqe();
    n.op = NqeOp.CONNECT;
    n.queueSet = 1;
    n.requestId = 77;
    const job = guest.queueSets[1]!.job;
    assert.equal(job.claim(1), 1);
    encodeNqe(job.view, job.slot(0), n);
    job.publish(1);
    assert.equal(nsm.queueSets[0]!.job.available(1), 0, "queue sets are independent");
    const got = nsm.queueSets[1]!.job;
    assert.equal(got.available(4), 1);
    assert.equal(decodeNqe(got.view, got.slot(0), new Nqe()).requestId, 77);
    assert.ok(nsm.hasWork());
    const off = guest.data.alloc();
    guest.data.bytes[off] = 42;
    assert.equal(nsm.data.bytes[off], 42);
  });
});

Deno.test("layout keeps rings 64-byte aligned and the data region page aligned", () => {
  const L = deviceLayout({ queueSets: 3, ringCapacity: 64, chunkSize: 2048, chunksPerHalf: 8 });
  assert.equal(L.ringBytes % 64, 0);
  assert.equal(L.queueSetsOffset, 4096);
  assert.equal(L.dataOffset % 4096, 0);
  assert.ok(L.dataOffset >= 4096 + 3 * 4 * L.ringBytes);
  assert.equal(L.totalSize, L.dataOffset + 2 * 2048 * 8);
});

/** Corrupts one header field of a fresh device, expects attach to fail with `reason`. */
async function expectAttachFailure(
  corrupt: (h: DataView) => void,
  reason: string,
): Promise<void> {
  const nsm = NsmDevice.create({ name: name(), ...SMALL });
  const raw = SharedMemory.open(nsm.path);
  try {
    corrupt(new DataView(raw.buffer));
    await assert.rejects(
      GuestDevice.attach(nsm.path),
      (e: unknown) => e instanceof DeviceHeaderError && e.reason === reason,
      reason,
    );
  } finally {
    raw.close();
    nsm.close();
  }
}

Deno.test("attach rejects a bad magic ('bad-magic')", async () => {
  await expectAttachFailure((h) => h.setUint32(H_MAGIC, 0x12345678, true), "bad-magic");
});

Deno.test("attach rejects another major version ('version-mismatch')", async () => {
  await expectAttachFailure((h) => h.setUint16(H_VERSION_MAJOR, 2, true), "version-mismatch");
});

Deno.test("attach rejects sizes that disagree with the geometry ('bad-geometry')", async () => {
  await expectAttachFailure((h) => h.setUint32(H_RING_BYTES, 64, true), "bad-geometry");
});

Deno.test("attach rejects a total size field that disagrees with the geometry", async () => {
  await expectAttachFailure((h) => {
    h.setUint32(H_TOTAL_SIZE, h.getUint32(H_TOTAL_SIZE, true) + 4096, true);
  }, "bad-geometry");
});

Deno.test("attach rejects a device that is not ready or already closed ('not-ready')", async () => {
  await expectAttachFailure((h) => h.setUint32(H_STATE, 0, true), "not-ready");
  await expectAttachFailure((h) => h.setUint32(H_STATE, 2, true), "not-ready");
});

Deno.test("a second guest cannot attach ('guest-already-attached')", async () => {
  await expectAttachFailure((h) => h.setUint32(H_GUEST_PID, 12345, true), "guest-already-attached");
});

Deno.test("attach rejects an all-zero file ('bad-magic')", async () => {
  const raw = SharedMemory.create({ name: name(), size: 1024, hugePages: "never" });
  try {
    await assert.rejects(GuestDevice.attach(raw.path), /bad-magic/);
  } finally {
    raw.close();
  }
});

Deno.test("attach rejects a truncated device file ('size-mismatch')", async () => {
  const nsm = NsmDevice.create({ name: name(), ...SMALL });
  try {
    Deno.truncateSync(nsm.path, 8192); // header intact, rings and data gone
    await assert.rejects(
      GuestDevice.attach(nsm.path),
      (e: unknown) => e instanceof DeviceHeaderError && e.reason === "size-mismatch",
    );
  } finally {
    nsm.close();
  }
});

Deno.test("doorbell: a sleeping side is woken by notify() and sees EOF when the peer closes", async () => {
  const nsm = NsmDevice.create({ name: name(), ...SMALL });
  try {
    const [guest, bell] = await Promise.all([GuestDevice.attach(nsm.path), nsm.acceptGuest()]);
    const job = guest.queueSets[0]!.job;
    const waiting = bell.wait(() => nsm.hasWork(), 0);
    assert.equal(guest.bell.peerSleeping, true, "the NSM announced its sleep");
    job.claim(1);
    job.publish(1);
    guest.bell.notify();
    assert.equal(await waiting, "work");
    assert.equal(bell.sleeps, 1);
    assert.equal(guest.bell.wakesSent, 1);
    guest.bell.notify();
    assert.equal(guest.bell.wakesSent, 1, "no byte while the peer is awake");
    nsm.queueSets[0]!.job.available(1);
    nsm.queueSets[0]!.job.release(1);
    assert.equal(await bell.wait(() => nsm.hasWork(), 0, 20), "timeout");
    guest.close();
    assert.equal(await bell.wait(() => nsm.hasWork(), 0), "closed");
  } finally {
    nsm.close();
  }
});

Deno.test("Doorbell.waitAny sleeps on several devices and wakes for whichever guest rings", async () => {
  const a = NsmDevice.create({ name: name(), ...SMALL });
  const b = NsmDevice.create({ name: name(), ...SMALL });
  try {
    const [ga, bellA] = await Promise.all([GuestDevice.attach(a.path), a.acceptGuest()]);
    const [gb, bellB] = await Promise.all([GuestDevice.attach(b.path), b.acceptGuest()]);
    const hasWork = (): boolean => a.hasWork() || b.hasWork();
    const waiting = Doorbell.waitAny([bellA, bellB], hasWork, 0);
    assert.ok(ga.bell.peerSleeping && gb.bell.peerSleeping, "both flags announced the sleep");
    const job = gb.queueSets[0]!.job;
    job.claim(1);
    job.publish(1);
    gb.bell.notify();
    assert.equal(await waiting, "work");
    assert.ok(b.hasWork() && !a.hasWork());
    assert.equal(ga.bell.peerSleeping, false, "flags are taken back after the wake-up");
    assert.equal(gb.bell.wakesSent, 1);
    b.queueSets[0]!.job.available(1);
    b.queueSets[0]!.job.release(1);
    ga.close();
    assert.equal(await Doorbell.waitAny([bellA, bellB], hasWork, 0), "closed");
    assert.equal(bellA.closed, true);
    assert.equal(bellB.closed, false);
    // Another wake source of the driver loop (a link) can end the sleep too.
    let ring!: () => void;
    const link = new Promise<void>((r) => ring = r);
    const w = Doorbell.waitAny([bellB], () => b.hasWork(), 0, undefined, link);
    ring();
    assert.equal(await w, "other");
    assert.equal(gb.bell.peerSleeping, false);
    gb.close();
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("create() refuses a name whose doorbell socket is taken, and bad queue set counts", () => {
  const a = NsmDevice.create({ name: name(), ...SMALL });
  try {
    Deno.removeSync(a.path); // free the shm name; the socket name stays taken
    assert.throws(
      () => NsmDevice.create({ name: a.path.slice("/dev/shm/".length), ...SMALL }),
      (e: unknown) => e instanceof DeviceConfigError && /replaceStale/.test(e.message),
    );
    assert.throws(
      () => NsmDevice.create({ name: name(), queueSets: 0, ...SMALL }),
      DeviceConfigError,
    );
  } finally {
    a.close();
  }
});
