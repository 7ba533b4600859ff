import assert from "node:assert/strict";
import { FrameOwner, FramePool, Umem, UmemOptionError } from "./umem.ts";

function hugePagesReserved(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/vm/nr_hugepages").trim());
  } catch {
    return 0;
  }
}

Deno.test("Umem.allocate() rejects frame sizes other than 2048/4096", () => {
  assert.throws(() => Umem.allocate({ frameSize: 3000, frameCount: 8 }), UmemOptionError);
});

Deno.test("Umem.allocate() maps frameSize × frameCount bytes that can be written and read", () => {
  const u = Umem.allocate({ frameSize: 2048, frameCount: 16, hugepages: "off" });
  try {
    assert.equal(u.hugepages, false);
    assert.equal(u.bytes.length, 2048 * 16);
    u.bytes[2048 * 15 + 2047] = 0xab;
    assert.equal(u.bytes[2048 * 15 + 2047], 0xab);
  } finally {
    u.close();
    u.close(); // idempotent
  }
});

Deno.test("Umem hugepages 'auto' falls back to normal pages, 'on' explains how to reserve them", () => {
  const reserved = hugePagesReserved();
  const auto = Umem.allocate({ frameSize: 2048, frameCount: 1024, hugepages: "auto" });
  try {
    // With huge pages reserved the mapping uses them; without, it silently falls back.
    if (reserved === 0) assert.equal(auto.hugepages, false);
  } finally {
    auto.close();
  }
  if (reserved === 0) {
    assert.throws(
      () => Umem.allocate({ frameSize: 2048, frameCount: 1024, hugepages: "on" }),
      (e: unknown) => {
        assert.ok(e instanceof UmemOptionError);
        assert.match(e.message, /sysctl vm.nr_hugepages=1/);
        return true;
      },
    );
  }
});

Deno.test("FramePool counts a frame handed back from the wrong owner as a violation", () => {
  const p = new FramePool(4, 2048);
  assert.ok(p.move(2048, FrameOwner.User, FrameOwner.KernelTx));
  assert.equal(p.owner(2048), FrameOwner.KernelTx);
  assert.equal(p.move(2048, FrameOwner.User, FrameOwner.KernelTx), false, "posted twice");
  assert.equal(p.violations, 1);
  assert.ok(p.move(2048, FrameOwner.KernelTx, FrameOwner.User));
  p.push(2048);
  p.push(4096);
  assert.equal(p.available, 2);
  assert.equal(p.pop(), 4096);
  assert.equal(p.pop(), 2048);
  assert.equal(p.pop(), -1);
});
