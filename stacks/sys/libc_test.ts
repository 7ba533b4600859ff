import assert from "node:assert/strict";
import {
  cString,
  EBADF,
  EINVAL,
  ENOENT,
  errno,
  errnoName,
  Libc,
  libc,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  mmap,
  OsError,
  PROT_READ,
  PROT_WRITE,
} from "./libc.ts";

Deno.test("errno() reads ENOENT right after open() of a missing path fails", () => {
  const fd = libc().open(cString("/nonexistent-sys-libc-test/x"), 0, 0);
  assert.equal(fd, -1);
  assert.equal(errno(), ENOENT);
});

Deno.test("errnoName() names known values and falls back to E<number>", () => {
  assert.equal(errnoName(EINVAL), "EINVAL");
  assert.equal(errnoName(4242), "E4242");
});

Deno.test("OsError carries operation, errno and its symbolic code", () => {
  const e = new OsError("open", ENOENT, "open failed: create it first");
  assert.equal(e.operation, "open");
  assert.equal(e.errno, ENOENT);
  assert.equal(e.code, "ENOENT");
  assert.equal(e.message, "open failed: create it first");
});

Deno.test("Libc.close() is idempotent and symbols afterwards throw with what to do", () => {
  const l = new Libc();
  assert.equal(typeof l.symbols.getpid(), "number");
  l.close();
  l.close();
  assert.throws(() => l.symbols, /libc handle is closed/);
});

Deno.test("libc() returns the same cached symbols every call", () => {
  assert.equal(libc(), libc());
});

Deno.test("OsError subclasses are named after their class without setting name", () => {
  class ExampleError extends OsError {}
  assert.equal(new ExampleError("x", EINVAL, "m").name, "ExampleError");
  assert.equal(new OsError("x", EINVAL, "m").name, "OsError");
});

Deno.test("mmap() returns null with errno EBADF for a shared mapping of fd -1", () => {
  assert.equal(mmap(4096, PROT_READ, MAP_SHARED, -1, 0), null);
  assert.equal(errno(), EBADF);
});

Deno.test("mmap() maps anonymous memory that can be written, read and unmapped", () => {
  const p = mmap(4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert.notEqual(p, null);
  const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p!, 4096));
  bytes[4095] = 0xab;
  assert.equal(bytes[4095], 0xab);
  assert.equal(libc().munmap(p, 4096n), 0);
});
