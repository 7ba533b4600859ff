import assert from "node:assert/strict";
import {
  allFixtureFrames,
  guarded,
  paddedUdpFrameV4,
  syntheticFrames,
  tcpSackFrameV4,
  udpFrameV6,
} from "../../../tests/support/wire_frames.ts";
import { internetChecksum } from "./checksum.ts";
import { DROP_REASONS } from "./drop.ts";
import { FrameParser } from "./frame.ts";

/** A summary of what a parse produced, for comparing two parses. */
function outcome(p: FrameParser, frame: Uint8Array): string {
  const r = p.parse(frame);
  if (r !== undefined) return r;
  const out = new Uint8Array(frame.length + 64);
  const n = p.emit(out);
  return `${p.l3}/${p.l4}:${Array.from(out.subarray(0, n)).join(",")}`;
}

const seeds = [...allFixtureFrames(), ...syntheticFrames()];

Deno.test("FrameParser accepts every synthetic frame and re-emits it byte-identically", () => {
  const p = new FrameParser();
  for (const f of syntheticFrames()) {
    assert.equal(p.parse(f), undefined);
    const out = new Uint8Array(f.length);
    assert.equal(p.emit(out), f.length);
    assert.deepEqual(out, f);
  }
});

Deno.test("FrameParser exposes the TCP layer of an Ethernet/802.1Q/IPv4 frame with TS and SACK", () => {
  const p = new FrameParser();
  assert.equal(p.parse(tcpSackFrameV4(100, 7)), undefined);
  assert.equal(p.ethernet.vlanId, 7);
  assert.equal(p.l3, "ipv4");
  assert.equal(p.l4, "tcp");
  assert.equal(p.tcp.sackCount, 2);
  assert.equal(p.tcp.tsPresent, true);
  assert.equal(p.tcp.payload.length, 100);
  assert.equal(p.tcp.payload[99], 99);
});

Deno.test("FrameParser keeps Ethernet padding out of the IP payload and re-emits it", () => {
  const f = paddedUdpFrameV4(true);
  const p = new FrameParser();
  assert.equal(p.parse(f), undefined);
  assert.equal(p.udp.payload.length, 4);
  assert.equal(p.trailer.length, 60 - 14 - 20 - 12);
  const out = new Uint8Array(60);
  p.emit(out);
  assert.deepEqual(out, f);
});

Deno.test("FrameParser accepts a UDP/IPv4 zero checksum (none) but rejects it over IPv6 with 'bad-checksum'", () => {
  const p = new FrameParser();
  assert.equal(p.parse(paddedUdpFrameV4(false)), undefined);
  assert.equal(p.udp.checksum, 0);
  assert.equal(p.parse(udpFrameV6(false)), undefined);
  assert.equal(p.parse(udpFrameV6(true)), "bad-checksum");
});

Deno.test("FrameParser rejects a corrupted TCP segment with reason 'bad-checksum'", () => {
  const f = tcpSackFrameV4(10);
  f[f.length - 1]! ^= 0x40;
  assert.equal(new FrameParser().parse(f), "bad-checksum");
});

Deno.test("FrameParser does not parse L4 of a non-first IPv4 fragment", () => {
  const f = tcpSackFrameV4(40);
  // Mark as fragment offset 1480 (not first), fix the IP header checksum; the bytes after the
  // IP header are now just data, whatever they look like.
  f[14 + 6] = 0x00;
  f[14 + 7] = 185;
  f[14 + 10] = f[14 + 11] = 0;
  const c = internetChecksum(f.subarray(14, 34));
  f[14 + 10] = c >>> 8;
  f[14 + 11] = c & 0xff;
  f[34 + 12] = 0x10; // TCP data offset 1 would be 'bad-header-length' if L4 were parsed
  const p = new FrameParser();
  assert.equal(p.parse(f), undefined);
  assert.equal(p.l4, "raw");
  assert.equal(p.ipv4.fragmentOffset, 1480);
  const out = new Uint8Array(f.length);
  p.emit(out);
  assert.deepEqual(out, f);
});

Deno.test("FrameParser rejects an unknown EtherType with reason 'unsupported-ethertype'", () => {
  const f = tcpSackFrameV4(0);
  f[12] = 0x88;
  f[13] = 0xcc;
  assert.equal(new FrameParser().parse(f), "unsupported-ethertype");
});

Deno.test("FrameParser counts every frame as accepted or under its drop reason", () => {
  const p = new FrameParser();
  const reasons: string[] = [];
  for (const f of seeds) {
    for (let k = 0; k <= f.length; k += 7) {
      const before = p.total;
      const r = p.parse(f.subarray(0, k));
      assert.equal(p.total, before + 1);
      if (r !== undefined) {
        assert.ok(DROP_REASONS.includes(r));
        reasons.push(r);
      }
    }
  }
  assert.equal(p.drops.total(), reasons.length);
  for (const r of new Set(reasons)) {
    assert.equal(p.drops.get(r as never), reasons.filter((x) => x === r).length);
  }
  assert.ok(p.accepted > 0 && reasons.includes("truncated") && reasons.includes("bad-length"));
});

Deno.test("FrameParser rejects every truncation that cuts into the L3 packet", () => {
  const p = new FrameParser();
  for (const f of seeds) {
    assert.equal(p.parse(f), undefined);
    const l3End = f.length - p.trailer.length;
    for (let k = 0; k < l3End; k++) {
      assert.notEqual(p.parse(f.subarray(0, k)), undefined, `prefix ${k} of ${f.length}`);
    }
  }
});

Deno.test("FrameParser never reads past the frame: guarded reads throw on any index >= length", () => {
  const p = new FrameParser();
  let parsed = 0;
  for (const f of seeds) {
    // Every prefix for the first 100 bytes (where headers are), then a stride.
    for (let k = 0; k <= f.length; k += k < 100 ? 1 : 53) {
      const exact = f.slice(0, k);
      const want = p.parse(exact);
      assert.equal(p.parse(guarded(exact)), want, `prefix ${k}`);
      parsed++;
    }
    // Single-byte corruptions of header bytes, still guarded.
    for (let i = 0; i < Math.min(f.length, 80); i++) {
      const m = f.slice();
      m[i]! ^= 0xff;
      assert.equal(p.parse(guarded(m)), p.parse(m.slice()));
      parsed++;
    }
  }
  assert.ok(parsed > 1000);
});

Deno.test("FrameParser gives the same result for a subarray of a garbage-filled buffer and an exact copy", () => {
  const a = new FrameParser(), b = new FrameParser();
  for (const f of seeds) {
    for (let k = 0; k <= f.length; k += k < 100 ? 1 : 29) {
      for (const [fill, off] of [[0x00, 1], [0xff, 3], [0x45, 6]] as const) {
        const big = new Uint8Array(k + off + 64).fill(fill);
        big.set(f.subarray(0, k), off);
        const view = big.subarray(off, off + k);
        assert.equal(outcome(a, view), outcome(b, f.slice(0, k)), `prefix ${k} fill ${fill}`);
      }
    }
  }
});
