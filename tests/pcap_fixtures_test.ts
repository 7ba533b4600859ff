import assert from "node:assert/strict";
import { FIXTURE_NAMES, loadFixture } from "./support/fixtures.ts";

// These checks keep the committed fixtures and their expect files consistent with each other
// and with PcapReader; protocol-level checks live in the wire tests.

for (const name of FIXTURE_NAMES) {
  Deno.test(`PcapReader reads ${name}.pcap with one record per expected frame and tshark's lengths`, () => {
    const fx = loadFixture(name);
    assert.equal(fx.expect.file, `${name}.pcap`);
    assert.ok(fx.bytes.length < 64 * 1024, "fixtures stay small");
    assert.ok(fx.records.length > 0);
    assert.equal(fx.records.length, fx.expect.frames.length);
    fx.records.forEach((rec, i) => {
      const want = fx.expect.frames[i]!;
      assert.equal(String(rec.originalLength), want["frame.len"], `frame ${i} length`);
      assert.equal(rec.data.length, rec.originalLength, `frame ${i} captured whole`);
      const ethertype = (rec.data[12]! << 8) | rec.data[13]!;
      assert.equal(`0x${ethertype.toString(16).padStart(4, "0")}`, want["eth.type"]);
    });
    // Timestamps never go backwards within a capture.
    for (let i = 1; i < fx.records.length; i++) {
      const a = fx.records[i - 1]!;
      const b = fx.records[i]!;
      assert.ok(
        b.seconds > a.seconds || (b.seconds === a.seconds && b.nanoseconds >= a.nanoseconds),
      );
    }
  });
}

Deno.test("fixtures cover both timestamp resolutions so the reader's scaling is exercised", () => {
  const res = new Set(FIXTURE_NAMES.map((n) => loadFixture(n).reader.nanosecondResolution));
  assert.deepEqual([...res].sort(), [false, true]);
});

Deno.test("tcp_options fixture holds SYN options and ACKs with one and two SACK blocks", () => {
  const frames = loadFixture("tcp_options").expect.frames;
  const syn = frames.find((f) => f["tcp.flags"] === "0x0002")!;
  assert.ok(syn["tcp.options.mss_val"] !== null);
  assert.ok(syn["tcp.options.wscale.shift"] !== null);
  assert.ok(syn["tcp.options.sack_perm"] !== null);
  assert.ok(syn["tcp.options.timestamp.tsval"] !== null);
  const counts = frames.map((f) => f["tcp.options.sack.count"]).filter((c) => c !== null);
  assert.ok(counts.includes("1") && counts.includes("2"), `sack counts ${counts}`);
});
