import assert from "node:assert/strict";
import { markCongestionExperienced } from "./ecn.ts";
import { buildFrame, ipv4HeaderChecksum } from "./testing.ts";
import { Prng } from "./prng.ts";

Deno.test("markCongestionExperienced() keeps the IPv4 checksum valid for random headers", () => {
  const r = new Prng(11);
  for (let i = 0; i < 2_000; i++) {
    const f = buildFrame({ ethertype: 0x0800, ecn: 1 + r.nextInt(2), length: 60 });
    const h = f.subarray(14, 34);
    // Random TOS/DSCP, id, TTL and addresses; checksum recomputed to match.
    h[1] = (r.nextInt(64) << 2) | (h[1]! & 3);
    for (const k of [4, 5, 8, 12, 13, 14, 15, 16, 17, 18, 19]) h[k] = r.nextInt(256);
    const c = ipv4HeaderChecksum(h);
    h[10] = c >> 8;
    h[11] = c & 0xff;
    const dscp = h[1]! >> 2;
    assert.equal(markCongestionExperienced(f), "marked");
    assert.equal(h[1], (dscp << 2) | 3);
    assert.equal((h[10]! << 8) | h[11]!, ipv4HeaderChecksum(h));
  }
});

Deno.test("markCongestionExperienced() leaves not-ECT, CE, non-IP and malformed frames alone", () => {
  const cases: [Uint8Array, string][] = [
    [buildFrame({ ethertype: 0x0800, ecn: 0 }), "not-ect"],
    [buildFrame({ ethertype: 0x0800, ecn: 3 }), "already-ce"],
    [buildFrame({ ethertype: 0x86dd, ecn: 0, length: 80 }), "not-ect"],
    [buildFrame({ ethertype: 0x86dd, ecn: 3, length: 80 }), "already-ce"],
    [buildFrame({ ethertype: 0x0806, length: 60 }), "not-ect"], // ARP
    [buildFrame({ ethertype: 0x0800, ecn: 2 }).subarray(0, 30), "not-ect"], // truncated
    [buildFrame({ ethertype: 0x86dd, ecn: 2, length: 80 }).subarray(0, 50), "not-ect"],
    [new Uint8Array(10), "not-ect"],
  ];
  const ihl4 = buildFrame({ ethertype: 0x0800, ecn: 2 });
  ihl4[14] = 0x44;
  cases.push([ihl4, "not-ect"]);
  for (const [frame, want] of cases) {
    const before = frame.slice();
    assert.equal(markCongestionExperienced(frame), want);
    assert.deepEqual(frame, before);
  }
});

Deno.test("markCongestionExperienced() on IPv6 changes only the ECN bits", () => {
  const f = buildFrame({ ethertype: 0x86dd, ecn: 2, length: 80 });
  f[14] = 0x6a; // traffic class high nibble a
  f[15] = 0xa5; // traffic class low nibble a (ECN bits 10), flow label high nibble 5
  const before = f.slice();
  assert.equal(markCongestionExperienced(f), "marked");
  assert.equal(f[15], 0xb5);
  f[15] = 0xa5;
  assert.deepEqual(f, before);
});
