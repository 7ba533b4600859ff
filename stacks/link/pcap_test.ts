import assert from "node:assert/strict";
import {
  LINKTYPE_ETHERNET,
  MemoryPcapSink,
  PCAP_MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS,
  PcapFormatError,
  PcapLink,
  PcapReader,
  PcapWriter,
  PcapWriterClosedError,
} from "./pcap.ts";
import type { Link, LinkCapabilities } from "./link.ts";
import { transmitCopy } from "./link.ts";
import { needsTool } from "../../tests/support/require.ts";

/** A frame of `len` bytes whose content identifies it (`seed` then a counter). */
function frame(len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (seed + i) & 0xff;
  return f;
}

interface RawRecord {
  sec: number;
  frac: number;
  data: Uint8Array;
  orig?: number;
}

/** Builds a pcap file by hand, so the reader is checked against an independent encoder. */
function handmade(
  magic: number,
  littleEndian: boolean,
  records: RawRecord[],
  linkType = LINKTYPE_ETHERNET,
): Uint8Array {
  const size = 24 + records.reduce((n, r) => n + 16 + r.data.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic, littleEndian);
  v.setUint16(4, 2, littleEndian);
  v.setUint16(6, 4, littleEndian);
  v.setUint32(16, 65535, littleEndian);
  v.setUint32(20, linkType, littleEndian);
  let at = 24;
  for (const r of records) {
    v.setUint32(at, r.sec, littleEndian);
    v.setUint32(at + 4, r.frac, littleEndian);
    v.setUint32(at + 8, r.data.length, littleEndian);
    v.setUint32(at + 12, r.orig ?? r.data.length, littleEndian);
    out.set(r.data, at + 16);
    at += 16 + r.data.length;
  }
  return out;
}

function expectFormatError(fn: () => unknown, reason: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PcapFormatError, `expected PcapFormatError, got ${e}`);
    assert.equal(e.reason, reason);
    return true;
  });
}

Deno.test("PcapWriter output reads back through PcapReader with the same frames, lengths and ns timestamps", () => {
  const sink = new MemoryPcapSink();
  const w = new PcapWriter(sink);
  const frames = [frame(60, 1), frame(1514, 2), frame(42, 3)];
  const times = [0, 1_500_000_123, 86_400_000_000_007];
  frames.forEach((f, i) => w.write(times[i]!, f));
  w.close();
  const r = new PcapReader(sink.bytes());
  assert.equal(r.littleEndian, true);
  assert.equal(r.nanosecondResolution, true);
  assert.equal(r.linkType, LINKTYPE_ETHERNET);
  assert.equal(r.versionMajor, 2);
  assert.equal(r.versionMinor, 4);
  const recs = r.records();
  assert.equal(recs.length, 3);
  recs.forEach((rec, i) => {
    assert.equal(rec.index, i);
    assert.deepEqual(rec.data, frames[i]);
    assert.equal(rec.originalLength, frames[i]!.length);
    assert.equal(rec.timestamp, times[i]);
  });
  assert.equal(recs[1]!.seconds, 1);
  assert.equal(recs[1]!.nanoseconds, 500_000_123);
  assert.equal(w.framesWritten, 3);
});

Deno.test("PcapWriter cuts frames at snapLen but records the original length", () => {
  const sink = new MemoryPcapSink();
  const w = new PcapWriter(sink, { snapLen: 100 });
  w.write(5, frame(300, 9));
  w.write(6, frame(80, 7), 1000);
  w.flush();
  const r = new PcapReader(sink.bytes());
  assert.equal(r.snapLen, 100);
  const [a, b] = r.records();
  assert.deepEqual(a!.data, frame(300, 9).subarray(0, 100));
  assert.equal(a!.originalLength, 300);
  assert.equal(b!.data.length, 80);
  assert.equal(b!.originalLength, 1000);
});

Deno.test("PcapWriter with a buffer smaller than a frame still writes records in order", () => {
  const sink = new MemoryPcapSink();
  const w = new PcapWriter(sink, { bufferSize: 64 });
  const frames = [frame(20, 1), frame(200, 2), frame(30, 3), frame(1000, 4), frame(10, 5)];
  frames.forEach((f, i) => w.write(i * 1000, f));
  w.close();
  const recs = new PcapReader(sink.bytes()).records();
  assert.deepEqual(recs.map((r) => r.data), frames);
  assert.deepEqual(recs.map((r) => r.timestamp), [0, 1000, 2000, 3000, 4000]);
});

Deno.test("PcapWriter flush and close are idempotent and write after close throws PcapWriterClosedError", () => {
  const sink = new MemoryPcapSink();
  const w = new PcapWriter(sink);
  w.write(1, frame(60, 0));
  w.flush();
  w.flush();
  const once = sink.bytes().length;
  assert.equal(once, 24 + 16 + 60);
  w.close();
  w.close();
  w.flush();
  assert.equal(sink.bytes().length, once);
  assert.equal(w.closed, true);
  assert.throws(() => w.write(2, frame(60, 0)), PcapWriterClosedError);
});

Deno.test("PcapWriter clamps negative timestamps to zero and rounds fractional ns", () => {
  const sink = new MemoryPcapSink();
  const w = new PcapWriter(sink);
  w.write(-5, frame(14, 0));
  w.write(2.6, frame(14, 0));
  w.close();
  assert.deepEqual(new PcapReader(sink.bytes()).records().map((r) => r.timestamp), [0, 3]);
});

Deno.test("PcapWriter.toFile writes a file PcapReader.fromFile reads back", () => {
  const path = Deno.makeTempFileSync({ suffix: ".pcap" });
  try {
    const w = PcapWriter.toFile(path);
    w.write(10, frame(64, 1));
    w.write(20, frame(128, 2));
    w.close();
    w.close();
    const recs = PcapReader.fromFile(path).records();
    assert.deepEqual(recs.map((r) => r.data), [frame(64, 1), frame(128, 2)]);
  } finally {
    Deno.removeSync(path);
  }
});

for (const littleEndian of [true, false]) {
  for (const nano of [true, false]) {
    const order = littleEndian ? "little-endian" : "big-endian";
    const res = nano ? "nanosecond" : "microsecond";
    Deno.test(`PcapReader reads ${order} ${res} files with correct timestamps`, () => {
      const magic = nano ? PCAP_MAGIC_NANOSECONDS : PCAP_MAGIC_MICROSECONDS;
      const bytes = handmade(magic, littleEndian, [
        { sec: 3, frac: 250, data: frame(60, 1) },
        { sec: 0x12345678, frac: 999_999, data: frame(1514, 2), orig: 1600 },
      ]);
      const r = new PcapReader(bytes);
      assert.equal(r.littleEndian, littleEndian);
      assert.equal(r.nanosecondResolution, nano);
      assert.equal(r.snapLen, 65535);
      const [a, b] = r.records();
      const scale = nano ? 1 : 1000;
      assert.equal(a!.seconds, 3);
      assert.equal(a!.nanoseconds, 250 * scale);
      assert.equal(a!.timestamp, 3_000_000_000 + 250 * scale);
      assert.deepEqual(a!.data, frame(60, 1));
      assert.equal(b!.seconds, 0x12345678);
      assert.equal(b!.nanoseconds, 999_999 * scale);
      assert.equal(b!.originalLength, 1600);
      assert.deepEqual(b!.data, frame(1514, 2));
    });
  }
}

Deno.test("PcapReader honours the byteOffset of a subarray input and returns views, not copies", () => {
  const file = handmade(PCAP_MAGIC_NANOSECONDS, true, [{ sec: 1, frac: 2, data: frame(60, 5) }]);
  const padded = new Uint8Array(file.length + 7);
  padded.set(file, 7);
  const input = padded.subarray(7);
  const [rec] = new PcapReader(input).records();
  assert.deepEqual(rec!.data, frame(60, 5));
  assert.equal(rec!.data.buffer, padded.buffer);
});

Deno.test("PcapReader iterates again from the first record and reads an empty file as no records", () => {
  const file = handmade(PCAP_MAGIC_NANOSECONDS, true, [
    { sec: 1, frac: 0, data: frame(60, 1) },
    { sec: 2, frac: 0, data: frame(60, 2) },
  ]);
  const r = new PcapReader(file);
  assert.equal(r.records().length, 2);
  assert.equal([...r].length, 2);
  assert.equal(new PcapReader(handmade(PCAP_MAGIC_NANOSECONDS, false, [])).records().length, 0);
});

Deno.test("PcapReader rejects a file shorter than the global header with reason 'truncated-header'", () => {
  expectFormatError(() => new PcapReader(new Uint8Array(23)), "truncated-header");
});

Deno.test("PcapReader rejects pcapng and garbage with reason 'bad-magic'", () => {
  const ng = handmade(0x0a0d0d0a, true, []);
  expectFormatError(() => new PcapReader(ng), "bad-magic");
});

Deno.test("PcapReader rejects version 1 with reason 'unsupported-version'", () => {
  const f = handmade(PCAP_MAGIC_MICROSECONDS, true, []);
  new DataView(f.buffer).setUint16(4, 1, true);
  expectFormatError(() => new PcapReader(f), "unsupported-version");
});

Deno.test("PcapReader rejects non-Ethernet link types with reason 'unsupported-link-type'", () => {
  expectFormatError(
    () => new PcapReader(handmade(PCAP_MAGIC_MICROSECONDS, true, [], 113)),
    "unsupported-link-type",
  );
});

Deno.test("PcapReader throws 'truncated-record' at a cut record header or cut record data", () => {
  const good = handmade(PCAP_MAGIC_NANOSECONDS, true, [
    { sec: 1, frac: 0, data: frame(60, 1) },
    { sec: 2, frac: 0, data: frame(60, 2) },
  ]);
  // Cut inside the second record's data: the first record is still delivered.
  const cutData = good.subarray(0, good.length - 1);
  const seen: number[] = [];
  assert.throws(
    () => {
      for (const r of new PcapReader(cutData)) seen.push(r.index);
    },
    (e: unknown) => e instanceof PcapFormatError && e.reason === "truncated-record",
  );
  assert.deepEqual(seen, [0]);
  // Cut inside the second record's header.
  expectFormatError(
    () => new PcapReader(good.subarray(0, 24 + 16 + 60 + 10)).records(),
    "truncated-record",
  );
});

Deno.test("PcapReader rejects captured length above original length with reason 'bad-record-length'", () => {
  const f = handmade(PCAP_MAGIC_NANOSECONDS, true, [{ sec: 1, frac: 0, data: frame(60, 1) }]);
  new DataView(f.buffer).setUint32(24 + 12, 59, true);
  expectFormatError(() => new PcapReader(f).records(), "bad-record-length");
});

Deno.test("PcapReader rejects a sub-second field of one second or more with reason 'bad-record-length'", () => {
  const f = handmade(PCAP_MAGIC_MICROSECONDS, true, [
    { sec: 1, frac: 1_000_000, data: frame(60, 1) },
  ]);
  expectFormatError(() => new PcapReader(f).records(), "bad-record-length");
});

/** A loopback-ish Link for tests: frames queued by `inject` are received; commits are kept. */
class FakeLink implements Link {
  readonly name = "fake0";
  readonly mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
  readonly mtu = 1500;
  readonly capabilities: LinkCapabilities = {
    rxChecksumVerified: false,
    txChecksumOffload: false,
    maxBatch: 8,
  };
  rxQueue: Uint8Array[] = [];
  sent: Uint8Array[] = [];
  closed = 0;
  flushed = 0;
  #tx = new Uint8Array(2048);
  // Reused like a real device's RX ring slot.
  #rx = new Uint8Array(2048);

  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    let n = 0;
    while (n < max && this.rxQueue.length > 0) {
      const f = this.rxQueue.shift()!;
      this.#rx.set(f);
      onFrame(this.#rx.subarray(0, f.length));
      n++;
    }
    return n;
  }
  transmitBuffer(length: number): Uint8Array | null {
    return length <= this.#tx.length ? this.#tx.subarray(0, length) : null;
  }
  commit(length: number): void {
    this.sent.push(this.#tx.slice(0, length));
  }
  flush(): void {
    this.flushed++;
  }
  close(): void {
    this.closed++;
  }
}

Deno.test("PcapLink records received and transmitted frames in order with clock timestamps", () => {
  const inner = new FakeLink();
  const sink = new MemoryPcapSink();
  let now = 1_000;
  const link = new PcapLink(inner, new PcapWriter(sink), () => now);
  assert.equal(link.name, "fake0");
  assert.equal(link.mtu, 1500);
  assert.equal(link.mac, inner.mac);
  assert.equal(link.capabilities.maxBatch, 8);

  inner.rxQueue.push(frame(60, 1), frame(70, 2), frame(80, 3));
  const got: Uint8Array[] = [];
  assert.equal(link.receive((f) => got.push(f.slice()), 2), 2);
  assert.deepEqual(got, [frame(60, 1), frame(70, 2)]);

  now = 2_000;
  assert.ok(transmitCopy(link, frame(100, 4)));
  // A buffer lent, written, and committed shorter than lent: only `length` bytes are recorded.
  const buf = link.transmitBuffer(200)!;
  buf.set(frame(200, 5));
  link.commit(90);
  link.flush();
  assert.equal(inner.flushed, 1);
  assert.deepEqual(inner.sent, [frame(100, 4), frame(90, 5)]);

  now = 3_000;
  assert.equal(link.receive((f) => got.push(f.slice()), 8), 1);
  link.close();
  link.close();
  assert.equal(inner.closed, 1);

  const recs = new PcapReader(sink.bytes()).records();
  assert.deepEqual(recs.map((r) => r.data), [
    frame(60, 1),
    frame(70, 2),
    frame(100, 4),
    frame(90, 5),
    frame(80, 3),
  ]);
  assert.deepEqual(recs.map((r) => r.timestamp), [1000, 1000, 2000, 2000, 3000]);
});

Deno.test("PcapLink with direction 'tx' records only transmitted frames and can leave the writer open", () => {
  const inner = new FakeLink();
  const sink = new MemoryPcapSink();
  const writer = new PcapWriter(sink);
  const link = new PcapLink(inner, writer, () => 5, { direction: "tx", closeWriter: false });
  inner.rxQueue.push(frame(60, 1));
  assert.equal(link.receive(() => {}, 4), 1);
  transmitCopy(link, frame(64, 2));
  link.close();
  assert.equal(writer.closed, false);
  assert.deepEqual(new PcapReader(sink.bytes()).records().map((r) => r.data), [frame(64, 2)]);
});

const tshark = needsTool("tshark");

Deno.test({
  name: "tshark reads a file PcapWriter wrote and agrees on every frame length",
  ignore: tshark.ignore,
  async fn(): Promise<void> {
    tshark.assert();
    const path = Deno.makeTempFileSync({ suffix: ".pcap" });
    // An empty HOME keeps the user's Wireshark profile out; removed below (it was left behind).
    const home = Deno.makeTempDirSync({ prefix: "pcap_test_home_" });
    try {
      const lengths = [60, 64, 98, 1514, 342, 60];
      const w = PcapWriter.toFile(path);
      lengths.forEach((len, i) => {
        // Broadcast dst, locally administered src, IPv4 ethertype, then filler.
        const f = frame(len, i);
        f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, i, 0x08, 0x00]);
        w.write(1_000_000_000_000_000 + i * 1_000_123, f);
      });
      w.close();
      const out = await new Deno.Command("tshark", {
        args: ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"],
        stdout: "piped",
        stderr: "piped",
        env: { HOME: home },
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `tshark failed: ${stderr}`);
      const rows = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) =>
        l.split("\t")
      );
      assert.deepEqual(rows.map((r) => Number(r[0])), lengths);
      // tshark sees the nanosecond magic: the fractional part survives to the ns digit.
      assert.match(rows[1]![1]!, /\.001000123$/);
    } finally {
      Deno.removeSync(path);
      Deno.removeSync(home, { recursive: true });
    }
  },
});
