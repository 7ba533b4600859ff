import assert from "node:assert/strict";
import { AddressParseError, IpAddress } from "./address.ts";

Deno.test("IpAddress.parse() reads dotted quads and keeps the u32 value", () => {
  const a = IpAddress.parse("198.18.0.1");
  assert.equal(a.version, 4);
  assert.equal(a.v4, 0xc612_0001);
  assert.equal(a.toString(), "198.18.0.1");
  assert.ok(a.equals(IpAddress.fromV4(0xc612_0001)));
});

Deno.test("IpAddress formats IPv6 canonically (RFC 5952) and round-trips", () => {
  for (
    const [text, canon] of [
      ["fd00::1", "fd00::1"],
      ["FD00:0:0:0:0:0:0:1", "fd00::1"],
      ["fe80::1:0:0:1", "fe80::1:0:0:1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["::", "::"],
      ["::ffff:198.18.0.1", "::ffff:c612:1"],
    ]
  ) {
    const a = IpAddress.parse(text!);
    assert.equal(a.version, 6);
    assert.equal(a.toString(), canon);
    assert.ok(IpAddress.parse(a.toString()).equals(a));
  }
});

Deno.test("IpAddress.parse() rejects malformed text with a typed error", () => {
  for (const bad of ["198.18.0", "198.18.0.256", "01.2.3.4", "fd00:::1", "1::2::3", "g::1", ""]) {
    assert.throws(() => IpAddress.parse(bad), AddressParseError, bad);
  }
});
