import assert from "node:assert/strict";
import { cString, Libc, libc, MFD_CLOEXEC } from "../stacks/sys/libc.ts";
import { NkOsError } from "./os_error.ts";
import { hugePageInfo, SharedMemory, ShmConfigError } from "./shm.ts";

const name = (): string => `nk-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;

Deno.test("two mappings of one /dev/shm file see each other's writes", () => {
  const a = SharedMemory.create({ name: name(), size: 10_000, hugePages: "never" });
  const b = SharedMemory.open(a.path);
  try {
    assert.equal(a.backing, "dev-shm");
    assert.equal(a.size, 12288, "rounded up to pages");
    const addr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(a.buffer));
    assert.equal(Number(BigInt(addr) % 4096n), 0, "page (hence cache-line) aligned");
    assert.equal(b.size, a.size);
    new Uint32Array(a.buffer)[100] = 0xdead_beef;
    assert.equal(Atomics.load(new Uint32Array(b.buffer), 100), 0xdead_beef);
  } finally {
    b.close();
    a.close();
  }
});

Deno.test("close() detaches the buffer, unlinks for the owner, and is idempotent", () => {
  const a = SharedMemory.create({ name: name(), size: 4096, hugePages: "never" });
  const view = new Uint8Array(a.buffer);
  a.close();
  a.close();
  assert.equal(view.length, 0, "views no longer reach the unmapped memory");
  assert.equal(a.open, false);
  assert.throws(() => Deno.statSync(a.path), Deno.errors.NotFound);
});

Deno.test("create() refuses an existing name with EEXIST unless replaceStale is set", () => {
  const n = name();
  const a = SharedMemory.create({ name: n, size: 4096, hugePages: "never" });
  try {
    assert.throws(
      () => SharedMemory.create({ name: n, size: 4096, hugePages: "never" }),
      (e: unknown) =>
        e instanceof NkOsError && e.code === "EEXIST" && /unlink the stale/.test(e.message),
    );
    const b = SharedMemory.create({ name: n, size: 4096, hugePages: "never", replaceStale: true });
    b.close();
  } finally {
    a.close();
  }
});

Deno.test("open() of a missing path fails with ENOENT and bad names are rejected", () => {
  assert.throws(
    () => SharedMemory.open("/dev/shm/nk-does-not-exist"),
    (e: unknown) => e instanceof NkOsError && e.code === "ENOENT",
  );
  assert.throws(() => SharedMemory.create({ name: "../etc", size: 1 }), ShmConfigError);
});

Deno.test("hugePages 'auto' falls back to /dev/shm and 'require' fails clearly without huge pages", () => {
  const info = hugePageInfo();
  const a = SharedMemory.create({ name: name(), size: 4096 });
  try {
    if (info.free === 0) {
      assert.equal(a.backing, "dev-shm");
      assert.throws(
        () => SharedMemory.create({ name: name(), size: 4096, hugePages: "require" }),
        /vm.nr_hugepages/,
      );
    } else {
      assert.notEqual(a.backing, "dev-shm");
    }
  } finally {
    a.close();
  }
});

Deno.test("open() attaches through /proc/<pid>/fd/<fd>, the path a memfd backing publishes", () => {
  const c = libc();
  const fd = c.memfd_create(cString("nk-memfd-test"), MFD_CLOEXEC);
  assert.ok(fd >= 0);
  try {
    assert.equal(c.ftruncate(fd, 8192n), 0);
    const a = SharedMemory.open(`/proc/${Deno.pid}/fd/${fd}`);
    const b = SharedMemory.open(`/proc/${Deno.pid}/fd/${fd}`);
    try {
      assert.equal(a.size, 8192);
      assert.equal(a.owner, false);
      new Uint8Array(a.buffer)[8000] = 99;
      assert.equal(new Uint8Array(b.buffer)[8000], 99);
    } finally {
      a.close();
      b.close();
    }
  } finally {
    c.close(fd);
  }
});

Deno.test("Libc.close() is idempotent and a closed handle refuses calls with a clear error", () => {
  const l = new Libc();
  assert.ok(l.symbols.getpid() > 0);
  l.close();
  l.close();
  assert.throws(() => l.symbols, /libc handle is closed/);
});
