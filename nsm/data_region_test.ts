import assert from "node:assert/strict";
import { DataRegion, dataRegionBytes, DataRegionError } from "./data_region.ts";

const G = { chunkSize: 2048, chunksPerHalf: 4 };

function pair(): { guest: DataRegion; nsm: DataRegion } {
  const buf = new ArrayBuffer(dataRegionBytes(G) + 128);
  return { guest: new DataRegion(buf, 128, G, "guest"), nsm: new DataRegion(buf, 128, G, "nsm") };
}

Deno.test("send chunk ownership: guest allocs+lends, NSM borrows+gives back, guest reclaims", () => {
  const { guest, nsm } = pair();
  const off = guest.alloc();
  assert.equal(off, 0);
  guest.bytes.set([1, 2, 3], off + 10);
  guest.lend(off);
  assert.equal(nsm.borrow(off + 10, 3), null);
  assert.deepEqual([...nsm.bytes.subarray(off + 10, off + 13)], [1, 2, 3]);
  nsm.giveBack(off + 10);
  assert.equal(guest.reclaim(off + 10), null);
  assert.equal(guest.freeChunks, 4);
  assert.equal(nsm.faultCount + guest.faultCount, 0);
});

Deno.test("receive chunks come from the NSM half and alloc() reports exhaustion with -1", () => {
  const { nsm } = pair();
  const got = [nsm.alloc(), nsm.alloc(), nsm.alloc(), nsm.alloc()];
  assert.deepEqual(got, [8192, 10240, 12288, 14336]);
  assert.equal(nsm.alloc(), -1);
  nsm.free(10240);
  assert.equal(nsm.alloc(), 10240);
});

Deno.test("borrow() rejects hostile offsets with typed reasons and counts them", () => {
  const { nsm } = pair();
  const cases: Array<[number, number, string]> = [
    [16384, 0, "offset-out-of-region"],
    [0xffff_ffff, 1, "offset-out-of-region"],
    [16000, 1000, "offset-out-of-region"],
    [100, 0xffff_ffff, "offset-out-of-region"],
    [8192, 16, "wrong-half"], // the NSM's own half is not the guest's to lend
    [2040, 16, "length-crosses-chunk"],
    [0, 2049, "length-crosses-chunk"],
  ];
  for (const [off, len, reason] of cases) {
    assert.equal(nsm.borrow(off, len), reason, `${off}+${len}`);
  }
  assert.equal(nsm.faults["offset-out-of-region"], 4);
  assert.equal(nsm.faults["wrong-half"], 1);
  assert.equal(nsm.faults["length-crosses-chunk"], 2);
  assert.equal(nsm.borrow(2048, 2048), null, "a whole chunk is fine");
  assert.equal(nsm.borrow(2100, 10), "chunk-already-borrowed", "the same chunk twice");
});

Deno.test("reclaim() rejects returns of chunks that were never lent, twice returned, or foreign", () => {
  const { guest } = pair();
  assert.equal(guest.reclaim(0), "chunk-not-lent");
  const off = guest.alloc();
  assert.equal(guest.reclaim(off), "chunk-not-lent", "allocated but not lent");
  guest.lend(off);
  assert.equal(guest.reclaim(off), null);
  assert.equal(guest.reclaim(off), "chunk-not-lent", "double return");
  assert.equal(guest.reclaim(9000), "wrong-half");
  assert.equal(guest.reclaim(-1), "offset-out-of-region");
  assert.equal(guest.reclaim(0x1_0000_0000), "offset-out-of-region");
  assert.equal(guest.faults["chunk-not-lent"], 3);
});

Deno.test("local misuse throws DataRegionError (free of a lent chunk, giveBack of nothing)", () => {
  const { guest, nsm } = pair();
  const off = guest.alloc();
  guest.lend(off);
  assert.throws(() => guest.free(off), DataRegionError);
  assert.throws(() => guest.lend(off), /alloc\(\) it first/);
  assert.throws(() => nsm.giveBack(0), DataRegionError);
  assert.throws(() => guest.free(9000), /outside this side's half/);
  assert.throws(
    () => new DataRegion(new ArrayBuffer(100), 0, { chunkSize: 1000, chunksPerHalf: 1 }, "nsm"),
    /power of two/,
  );
});
