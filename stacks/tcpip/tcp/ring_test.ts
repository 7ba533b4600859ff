import assert from "node:assert/strict";
import { ByteRing, ringStoragePool } from "./ring.ts";

Deno.test("ByteRing allocates nothing until written and never beyond its capacity", () => {
  const r = new ByteRing(5000);
  assert.equal(r.allocated, 0);
  assert.equal(r.write(new Uint8Array(100)), 100);
  assert.ok(r.allocated >= 100 && r.allocated <= 5000);
  assert.equal(r.write(new Uint8Array(10_000)), 4900, "cut at the logical capacity");
  assert.equal(r.free, 0);
  assert.equal(r.allocated, 5000);
});

Deno.test("ByteRing keeps byte order across wrap-around and growth", () => {
  const r = new ByteRing(4096);
  const src = new Uint8Array(3000).map((_, i) => i & 0xff);
  let expect = 0;
  let written = 0;
  const out = new Uint8Array(1000);
  for (let round = 0; round < 20; round++) {
    written += r.write(src.subarray(written % 3000, Math.min(3000, (written % 3000) + 1700)));
    const n = r.read(out);
    for (let i = 0; i < n; i++) assert.equal(out[i], expect++ % 3000 & 0xff);
  }
});

Deno.test("ByteRing.writeAt stores out-of-order bytes that commit() later makes readable", () => {
  const r = new ByteRing(4096);
  r.write(new Uint8Array([1, 2]));
  assert.equal(r.writeAt(3, new Uint8Array([6, 7])), 2);
  assert.equal(r.length, 2, "out-of-order bytes are not queued");
  r.writeAt(0, new Uint8Array([3, 4, 5]));
  r.commit(5);
  const out = new Uint8Array(10);
  assert.equal(r.read(out), 7);
  assert.deepEqual(out.subarray(0, 7), new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
});

Deno.test("ByteRing.copyOut peeks at an offset without consuming", () => {
  const r = new ByteRing(100);
  r.write(new Uint8Array([10, 11, 12, 13]));
  const dst = new Uint8Array(4);
  r.copyOut(1, dst, 1, 3);
  assert.deepEqual(dst, new Uint8Array([0, 11, 12, 13]));
  assert.equal(r.length, 4);
  r.discard(3);
  assert.equal(r.length, 1);
  r.releaseIfEmpty();
  assert.ok(r.allocated > 0, "not released while bytes are queued");
  r.discard(1);
  r.releaseIfEmpty();
  assert.equal(r.allocated, 0);
});

Deno.test("ByteRing with a unit: storage is whole units, copySegment copies like copyOut across wrap-around, toUnitBoundary counts to the next unit", () => {
  const unit = 1448;
  const r = new ByteRing(262_144);
  r.setUnit(unit);
  assert.equal(r.toUnitBoundary(0), Number.POSITIVE_INFINITY, "no storage yet");
  const src = new Uint8Array(65_536).map((_, i) => (i * 31 + 7) & 0xff);
  let stream = 0; // stream offset of the ring's first byte
  let end = 0; // stream offset just past the last byte written
  const a = new Uint8Array(unit + 100);
  const b = new Uint8Array(unit + 100);
  for (let round = 0; round < 200; round++) {
    while (r.free >= src.length) end += r.write(src);
    assert.equal(r.allocated % unit, 0, `${r.allocated} B of storage`);
    // Segments of one unit (and a short one now and then), copied both ways.
    for (let off = 0; off + unit <= r.length && off < 40 * unit; off += unit) {
      const n = off % (7 * unit) === 0 ? 56 : unit;
      r.copyOut(off, a, 100, n);
      r.copySegment(off, b, 100, n);
      assert.deepEqual(b.subarray(100, 100 + n), a.subarray(100, 100 + n));
      assert.equal(b[100 + n - 1], src[(stream + off + n - 1) % src.length]);
    }
    const step = 20 * unit + (round % 3) * 56;
    r.discard(step);
    stream += step;
    const t = r.toUnitBoundary(0);
    assert.ok(t >= 1 && t <= unit);
  }
  assert.ok(end > 10 * r.capacity, "wrapped many times");
});

Deno.test("ByteRing.write() across the storage end keeps byte order (spilled, then moved to the front)", () => {
  const r = new ByteRing(10_000, 1500);
  r.setUnit(1000);
  const out = new Uint8Array(3000);
  let next = 0, expect = 0;
  // 700 bytes ahead, then 1500 in and 1500 out per round: 3000 B of storage, and writes cross
  // its end at a different point each lap.
  assert.equal(r.write(new Uint8Array(700).map(() => next++ & 0xff)), 700);
  for (let round = 0; round < 40; round++) {
    const src = new Uint8Array(1500).map(() => next++ & 0xff);
    assert.equal(r.write(src), 1500);
    assert.equal(r.allocated, 3000);
    const n = r.read(out.subarray(0, 1500));
    for (let i = 0; i < n; i++) assert.equal(out[i], expect++ & 0xff, `byte ${expect - 1}`);
  }
  const rest = r.read(out);
  for (let i = 0; i < rest; i++) assert.equal(out[i], expect++ & 0xff);
  assert.equal(expect, next);
});

Deno.test("ByteRing.copySegment() into a roomy buffer copies the segment exactly; only bytes past it may change", () => {
  const r = new ByteRing(20_000);
  r.setUnit(1000);
  const src = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
  r.write(src);
  for (const [off, n] of [[0, 1000], [0, 56], [56, 944], [1500, 300], [1999, 1], [900, 700]]) {
    const frame = new Uint8Array(2048).fill(0xee);
    r.copySegment(off!, frame, 66, n!);
    assert.deepEqual(frame.subarray(66, 66 + n!), src.subarray(off!, off! + n!), `[${off}, +${n})`);
    assert.ok(frame.subarray(0, 66).every((b) => b === 0xee), "nothing before the segment");
  }
  // An exact-length destination gets exactly the segment.
  const exact = new Uint8Array(56);
  r.copySegment(0, exact, 0, 56);
  assert.deepEqual(exact, src.subarray(0, 56));
});

Deno.test("ByteRing.copySegment() across the end of storage grown before setUnit() copies the wrapped bytes", () => {
  const r = new ByteRing(3000);
  r.write(new Uint8Array(2900)); // storage grows to 3000 B with no unit
  r.discard(2900);
  r.setUnit(1448); // 3000 is not a whole number of units: the next boundary after 2900 is 4340
  const src = new Uint8Array(500).map((_, i) => (i * 13) & 0xff);
  r.write(src); // stored at 2900..2999 and 0..399
  const frame = new Uint8Array(2048);
  r.copySegment(0, frame, 66, 500);
  assert.deepEqual(frame.subarray(66, 566), src);
});

Deno.test("ByteRing.writeAt ranges of one buffer copy the range asked for each time (kept views are checked)", () => {
  const r = new ByteRing(1000);
  const pkt = new Uint8Array(100).map((_, i) => i);
  assert.equal(r.writeRangeAt(0, pkt, 10, 20), 10);
  r.commit(10);
  assert.equal(r.writeRangeAt(0, pkt, 12, 22), 10); // same length, other start
  r.commit(10);
  assert.equal(r.writeRangeAt(0, pkt, 12, 20), 8); // same start, other length
  r.commit(8);
  pkt.fill(7, 12, 22); // the buffer is reused for the next packet: its new bytes are copied
  assert.equal(r.writeRangeAt(0, pkt, 12, 22), 10);
  r.commit(10);
  const other = new Uint8Array(pkt.buffer, 1, 50); // another view of the same memory
  assert.equal(r.writeRangeAt(0, other, 11, 13), 2);
  r.commit(2);
  const out = new Uint8Array(40);
  assert.equal(r.read(out), 40);
  assert.deepEqual([...out], [
    ...[10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
    ...[12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
    ...[12, 13, 14, 15, 16, 17, 18, 19],
    ...[7, 7, 7, 7, 7, 7, 7, 7, 7, 7],
    ...[7, 7],
  ]);
});

Deno.test("ByteRing.readAligned() with a unit: a read cut short by dst ends at a unit boundary, so the next starts on the grid; bytes stay in order", () => {
  const unit = 100;
  const r = new ByteRing(1000);
  r.setUnit(unit);
  const src = new Uint8Array(2000).map((_, i) => (i * 7 + 3) & 0xff);
  assert.equal(r.write(src.subarray(0, 1000)), 1000);
  const dst = new Uint8Array(256);
  assert.equal(r.readAligned(dst), 200, "256 cut back to the boundary at 200");
  assert.deepEqual(dst.subarray(0, 200), src.subarray(0, 200));
  assert.equal(r.readAligned(dst.subarray(0, 50)), 50, "a read of less than a unit is not cut");
  assert.equal(r.readAligned(dst), 250, "off the grid (at 250): up to the boundary at 500");
  assert.deepEqual(dst.subarray(0, 250), src.subarray(250, 500));
  assert.equal(r.readAligned(new Uint8Array(5000)), 500, "not cut by dst: everything queued");
});

Deno.test("ByteRing.readAligned() with a unit matches a plain queue over random writes and reads across wrap-around", () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const unit = 1448;
  const r = new ByteRing(64 * 1024);
  r.setUnit(unit);
  const src = new Uint8Array(1 << 20).map((_, i) => (i * 131 + 17) & 0xff);
  let written = 0, read = 0;
  const dst = new Uint8Array(20_000);
  for (let step = 0; step < 5000; step++) {
    // Mostly full units (a bulk stream), sometimes a short piece (off the grid from then on).
    const w = rnd(10) < 8 ? unit * (1 + rnd(5)) : 1 + rnd(3000);
    written += r.write(src.subarray(written % src.length, (written % src.length) + w));
    const want = 1 + rnd(dst.length);
    const n = r.readAligned(dst.subarray(0, want));
    assert.ok(n <= want && n <= written - read);
    for (let i = 0; i < n; i++) {
      if (dst[i] !== src[(read + i) % src.length]) assert.fail(`byte ${read + i} at step ${step}`);
    }
    read += n;
  }
  assert.ok(read > 1_000_000, `${read} bytes read`);
});

Deno.test("ByteRing with a unit keeps each queued byte's offset in its unit when the storage grows or is released", () => {
  const r = new ByteRing(100_000);
  r.setUnit(100);
  const src = new Uint8Array(6000).map((_, i) => i & 0xff);
  r.write(src.subarray(0, 250));
  assert.equal(r.read(new Uint8Array(130)), 130);
  assert.equal(r.toUnitBoundary(0), 70, "byte 130 is 70 bytes before a unit boundary");
  const before = r.allocated;
  r.write(src.subarray(250, 5250));
  assert.ok(r.allocated > before, `grown: ${before} -> ${r.allocated}`);
  assert.equal(r.toUnitBoundary(0), 70, "still 70 after the growth");
  const out = new Uint8Array(r.length);
  assert.equal(r.read(out), 5120);
  assert.deepEqual(out, src.subarray(130, 5250), "bytes kept in order");
  r.releaseIfEmpty();
  assert.equal(r.allocated, 0);
  r.write(src.subarray(0, 10));
  assert.equal(r.toUnitBoundary(0), 50, "byte 5250 of the stream: 50 before a boundary");
});

Deno.test("ByteRing.alignEmpty() moves an empty queue's start to the next unit boundary, and nothing else", () => {
  const r = new ByteRing(10_000);
  r.setUnit(100);
  assert.equal(r.alignEmpty(), false, "no storage yet");
  r.write(new Uint8Array(250));
  assert.equal(r.alignEmpty(), false, "bytes queued");
  r.read(new Uint8Array(250));
  assert.equal(r.toUnitBoundary(0), 50, "drained at 250");
  assert.equal(r.alignEmpty(), true);
  assert.equal(r.toUnitBoundary(0), 100, "on a boundary");
  assert.equal(r.alignEmpty(), false, "already there");
  const src = new Uint8Array(300).map((_, i) => i & 0xff);
  r.write(src);
  const out = new Uint8Array(300);
  assert.equal(r.read(out), 300);
  assert.deepEqual(out, src, "the bytes written after it read back in order");
});

Deno.test("ByteRing storage released by releaseIfEmpty() goes to a pool, and the next ring of that size takes it instead of a new ArrayBuffer", () => {
  const size = 12_345; // a length no other test here uses
  const a = new ByteRing(size);
  a.write(new Uint8Array(size).fill(7));
  a.read(new Uint8Array(size));
  const before = ringStoragePool();
  a.releaseIfEmpty();
  const mid = ringStoragePool();
  assert.equal(mid.returned, before.returned + 1);
  assert.equal(mid.pooledBytes, before.pooledBytes + size);
  const b = new ByteRing(size);
  const src = new Uint8Array(size).map((_, i) => i & 0xff);
  assert.equal(b.write(src), size);
  const after = ringStoragePool();
  assert.equal(after.hits, mid.hits + 1, "taken from the pool");
  assert.equal(after.pooledBytes, mid.pooledBytes - size);
  const out = new Uint8Array(size);
  assert.equal(b.read(out), size);
  assert.deepEqual(out, src, "only what was written is read (the pooled bytes were 7s)");
});

Deno.test("ByteRing.copyOut() of a stream run off the grid by a short segment reuses kept views: after a lap of the storage its reads make no view, and bytes stay in order", () => {
  const unit = 1448;
  const r = new ByteRing(16 * unit);
  r.setUnit(unit);
  // A peer's 56-byte segment first (iperf3's parameters), then full segments: every segment
  // is stored across two units, 56 bytes into them, and each read ends mid-unit.
  const stream = new Uint8Array(56 + 200 * 4 * unit).map((_, i) => (i * 13 + 5) & 0xff);
  let written = 0, read = 0;
  const dst = new Uint8Array(8 * unit);
  const round = (): void => {
    const n = written === 0 ? 56 + 4 * unit : 4 * unit;
    assert.equal(r.write(stream.subarray(written, written + n)), n);
    written += n;
    const got = r.readAligned(dst);
    assert.equal(got, n, "everything queued is read (not cut: the queue ends there)");
    assert.deepEqual(dst.subarray(0, got), stream.subarray(read, read + got));
    read += got;
  };
  for (let i = 0; i < 8; i++) round(); // two laps of the storage: the kept views are made
  const made = r.viewsMade;
  assert.ok(made > 0);
  for (let i = 0; i < 100; i++) round();
  assert.equal(r.viewsMade, made, "no view made after the first laps");
});

Deno.test("ByteRing.readAligned() off the grid cuts a short read where a segment ends, so reads cut by their destination also reuse kept views after a lap", () => {
  const unit = 1448;
  const r = new ByteRing(64 * unit);
  r.setUnit(unit);
  const stream = new Uint8Array(56 + 300 * 12 * unit).map((_, i) => (i * 11 + 1) & 0xff);
  let written = 0, read = 0, cut = 0;
  const dst = new Uint8Array(16384); // a GuestLib chunk: 11 segments and a piece
  const write = (n: number): void => {
    assert.equal(r.write(stream.subarray(written, written + n)), n);
    written += n;
  };
  write(56 + 24 * unit); // a short segment first: the stream runs 56 bytes off the grid
  const round = (): void => {
    write(12 * unit);
    while (r.length > 2 * dst.length) {
      const got = r.readAligned(dst);
      assert.ok(got < dst.length);
      assert.equal((read + got - 56) % unit, 0, "the read ends where a segment ends");
      assert.deepEqual(dst.subarray(0, got), stream.subarray(read, read + got));
      read += got;
      cut++;
    }
  };
  for (let i = 0; i < 20; i++) round();
  const made = r.viewsMade;
  for (let i = 0; i < 200; i++) round();
  assert.ok(cut > 200, `${cut} reads cut by their destination`);
  assert.equal(r.viewsMade, made, "no view made after the first laps");
});

Deno.test("ByteRing.copyOut() copies pieces that do not come again by hand: a stream whose phase moves every lap makes no views after the first, and bytes stay in order", () => {
  const unit = 1448;
  const r = new ByteRing(32 * unit);
  r.setUnit(unit);
  const total = 400 * 9 * unit;
  const stream = new Uint8Array(total).map((_, i) => (i * 7 + 3) & 0xff);
  let written = 0, read = 0;
  const dst = new Uint8Array(16 * unit);
  const segment = (n: number): void => {
    assert.equal(r.write(stream.subarray(written, written + n)), n);
    written += n;
  };
  // Each round: 8 full segments and a short one (the tail of an iperf3 write), so every lap
  // of the storage finds the segments at a phase not seen before.
  const round = (): void => {
    for (let i = 0; i < 8; i++) segment(unit);
    segment(752);
    while (r.length > 0) {
      const got = r.readAligned(dst);
      assert.deepEqual(dst.subarray(0, got), stream.subarray(read, read + got));
      read += got;
    }
  };
  for (let i = 0; i < 10; i++) round();
  const made = r.viewsMade;
  const looped = r.piecesLooped;
  for (let i = 0; i < 300; i++) round();
  assert.equal(r.viewsMade, made, "no view made for pieces seen once");
  assert.ok(r.piecesLooped - looped > 300 * 8, `${r.piecesLooped - looped} pieces copied by hand`);
});

Deno.test("ByteRing.readAligned() returns the stream in order for random segment and read sizes, out-of-order stores and growth included", () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (const unit of [1448, 536]) {
    const r = new ByteRing(24 * unit);
    r.setUnit(unit);
    const total = 3_000 * unit;
    const stream = new Uint8Array(total).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
    let written = 0, read = 0;
    const dst = new Uint8Array(20 * unit);
    while (read < total) {
      // Up to 4 segments, mostly full-sized, sometimes short; now and then the second one
      // first (out of order, then committed).
      for (let i = rand(5); i > 0 && written < total; i--) {
        const n = Math.min(rand(4) === 0 ? 1 + rand(unit) : unit, total - written);
        const m = Math.min(unit, total - written - n);
        if (r.free < n + m) break;
        if (m > 0 && rand(3) === 0) {
          assert.equal(r.writeAt(n, stream.subarray(written + n, written + n + m)), m);
          assert.equal(r.writeAt(0, stream.subarray(written, written + n)), n);
          r.commit(n + m);
          written += n + m;
        } else {
          assert.equal(r.write(stream.subarray(written, written + n)), n);
          written += n;
        }
      }
      const max = 1 + rand(dst.length);
      const got = r.readAligned(dst, max);
      assert.ok(got <= max);
      assert.deepEqual(dst.subarray(0, got), stream.subarray(read, read + got), `at ${read}`);
      read += got;
    }
    assert.ok(
      r.viewsMade > 0 && r.piecesLooped > 0,
      `${r.viewsMade} views, ${r.piecesLooped} looped`,
    );
  }
});

Deno.test("ByteRing pieces copied by hand land whole at any alignment of source and destination (word and byte copies)", () => {
  const unit = 1448;
  for (const dstShift of [0, 1, 2, 3]) {
    for (const lead of [0, 1, 2, 3, 752]) {
      const r = new ByteRing(8 * unit);
      r.setUnit(unit);
      const stream = new Uint8Array(60 * unit).map((_, i) => (i * 29 + 11) & 0xff);
      const back = new Uint8Array(20 * unit + 8);
      const dst = back.subarray(dstShift, dstShift + 4 * unit); // a view at an odd byteOffset
      let written = 0, read = 0;
      const put = (n: number): void => {
        assert.equal(r.write(stream.subarray(written, written + n)), n);
        written += n;
      };
      if (lead > 0) put(lead);
      // Segment sizes that move the phase every lap: every piece is seen once, copied by hand.
      for (let k = 0; written + unit < stream.length - 2 * unit; k++) {
        put(unit - 4 * (k % 7) - (k % 3));
        while (r.length > unit) {
          const got = r.readAligned(dst, r.length - unit);
          assert.deepEqual(dst.subarray(0, got), stream.subarray(read, read + got));
          read += got;
        }
      }
      assert.ok(r.piecesLooped > 0, `shift ${dstShift}, lead ${lead}: nothing copied by hand`);
    }
  }
});
