import assert from "node:assert/strict";
import {
  classifyIcmpV4,
  classifyIcmpV6,
  type ErrorCandidate,
  icmpErrorAllowed,
  TokenBucket,
} from "./icmp.ts";
import { MILLISECOND, SECOND } from "../../time.ts";

Deno.test("TokenBucket allows a burst, then one token per interval", () => {
  const b = new TokenBucket(3, 10); // one token per 100 ms
  const t0 = 5 * SECOND;
  assert.ok(b.take(t0) && b.take(t0) && b.take(t0));
  assert.equal(b.take(t0), false);
  assert.equal(b.take(t0 + 99 * MILLISECOND), false);
  assert.ok(b.take(t0 + 100 * MILLISECOND));
  assert.equal(b.take(t0 + 150 * MILLISECOND), false);
  assert.ok(b.take(t0 + 200 * MILLISECOND));
  // After a long pause the bucket is full again, but no fuller than the burst.
  const t1 = t0 + 60 * SECOND;
  assert.ok(b.take(t1) && b.take(t1) && b.take(t1));
  assert.equal(b.take(t1), false);
});

const base: ErrorCandidate = {
  version: 4,
  src: new Uint8Array([198, 18, 0, 1]),
  dst: new Uint8Array([198, 18, 0, 2]),
  linkMulticast: false,
  dstBroadcast: false,
  fragmentOffset: 0,
  protocol: 17,
  icmpType: -1,
};

Deno.test("icmpErrorAllowed() follows RFC 1122 3.2.2 for IPv4", () => {
  assert.ok(icmpErrorAllowed(base));
  assert.ok(!icmpErrorAllowed({ ...base, fragmentOffset: 8 }), "non-first fragment");
  assert.ok(!icmpErrorAllowed({ ...base, linkMulticast: true }), "link broadcast");
  assert.ok(!icmpErrorAllowed({ ...base, dstBroadcast: true }), "subnet broadcast");
  assert.ok(!icmpErrorAllowed({ ...base, dst: new Uint8Array([224, 0, 0, 1]) }), "multicast");
  assert.ok(!icmpErrorAllowed({ ...base, src: new Uint8Array([0, 0, 0, 0]) }), "unspecified");
  assert.ok(!icmpErrorAllowed({ ...base, protocol: 1, icmpType: 3 }), "about an ICMP error");
  assert.ok(icmpErrorAllowed({ ...base, protocol: 1, icmpType: 8 }), "about an echo request");
});

Deno.test("icmpErrorAllowed() follows RFC 4443 2.4(e) for IPv6", () => {
  const v6: ErrorCandidate = {
    ...base,
    version: 6,
    src: new Uint8Array(16).fill(0xfd),
    dst: new Uint8Array(16).fill(0xfd),
    protocol: 17,
  };
  assert.ok(icmpErrorAllowed(v6));
  assert.ok(!icmpErrorAllowed({ ...v6, protocol: 58, icmpType: 1 }), "about an ICMPv6 error");
  assert.ok(icmpErrorAllowed({ ...v6, protocol: 58, icmpType: 128 }));
  const mc = new Uint8Array(16);
  mc[0] = 0xff;
  assert.ok(!icmpErrorAllowed({ ...v6, dst: mc }), "to multicast");
  assert.ok(!icmpErrorAllowed({ ...v6, src: new Uint8Array(16) }), "from ::");
});

Deno.test("classifyIcmpV4/V6 map type and code to error kinds", () => {
  assert.equal(classifyIcmpV4(3, 4), "frag-needed");
  assert.equal(classifyIcmpV4(3, 3), "port-unreachable");
  assert.equal(classifyIcmpV4(3, 1), "unreachable");
  assert.equal(classifyIcmpV4(0, 0), null);
  assert.equal(classifyIcmpV6(2, 0), "packet-too-big");
  assert.equal(classifyIcmpV6(1, 4), "port-unreachable");
  assert.equal(classifyIcmpV6(4, 1), "protocol-unreachable");
  assert.equal(classifyIcmpV6(129, 0), null);
});
