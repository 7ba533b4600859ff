import assert from "node:assert/strict";
import { maskAddress, prefixMatches, RouteConfigError, RouteTable } from "./route.ts";
import { IpAddress } from "../wire/address.ts";
import { SECOND } from "../../time.ts";

const ip = (s: string): IpAddress => IpAddress.parse(s);

Deno.test("prefixMatches() compares whole and partial bytes", () => {
  assert.ok(prefixMatches(ip("198.18.0.0").bytes, 15, ip("198.19.255.1").bytes));
  assert.ok(!prefixMatches(ip("198.18.0.0").bytes, 16, ip("198.19.0.1").bytes));
  assert.ok(prefixMatches(ip("0.0.0.0").bytes, 0, ip("198.19.0.1").bytes));
  assert.ok(!prefixMatches(ip("fd00::").bytes, 64, ip("198.19.0.1").bytes), "families differ");
  assert.equal(maskAddress(ip("fd00::1:2:3:4"), 64).toString(), "fd00::");
});

Deno.test("RouteTable.lookup() picks the longest matching prefix", () => {
  const t = new RouteTable();
  t.add(ip("0.0.0.0"), 0, ip("198.18.0.254"));
  t.add(ip("198.18.0.7"), 24, null, { origin: "address" });
  t.add(ip("198.18.0.128"), 25, ip("198.18.0.1"));
  assert.equal(t.lookup(ip("198.18.0.5").bytes)!.prefixLength, 24);
  assert.equal(t.lookup(ip("198.18.0.200").bytes)!.prefixLength, 25);
  assert.equal(t.lookup(ip("198.19.1.1").bytes)!.prefixLength, 0);
  assert.deepEqual([...t.nextHop(ip("198.19.1.1").bytes)!], [198, 18, 0, 254]);
  assert.deepEqual([...t.nextHop(ip("198.18.0.5").bytes)!], [198, 18, 0, 5]);
  assert.equal(t.lookup(ip("fd00::1").bytes), null, "no IPv6 route configured");
  assert.ok(t.isOnLink(ip("198.18.0.9").bytes));
  assert.ok(!t.isOnLink(ip("198.18.0.200").bytes));
});

Deno.test("RouteTable.add() rejects bad prefix lengths and mixed families with a typed error", () => {
  const t = new RouteTable();
  assert.throws(() => t.add(ip("198.18.0.0"), 33, null), RouteConfigError);
  assert.throws(() => t.add(ip("fd00::"), 64, ip("198.18.0.1")), RouteConfigError);
});

Deno.test("RouteTable routes with an expiry disappear once expired", () => {
  const t = new RouteTable();
  t.add(ip("fd00:1::"), 64, null, { origin: "ra", expiresAt: 10 * SECOND });
  assert.ok(t.lookup(ip("fd00:1::5").bytes, 5 * SECOND) !== null);
  assert.equal(t.lookup(ip("fd00:1::5").bytes, 10 * SECOND), null);
  assert.equal(t.pollAt(), 10 * SECOND);
  t.expire(10 * SECOND);
  assert.equal(t.list().length, 0);
});

Deno.test("RouteTable.learnPmtu() only lowers, clamps to the family minimum and ages out", () => {
  const t = new RouteTable({ lifetime: 100 * SECOND });
  const d = ip("198.18.1.1").bytes;
  assert.equal(t.pathMtu(d, 1500), 1500);
  assert.equal(t.learnPmtu(d, 1400, 1500, 0), 1400);
  assert.equal(t.learnPmtu(d, 1450, 1500, 1), 1400, "an increase is ignored");
  assert.equal(t.learnPmtu(d, 100, 1500, 2), 552, "clamped to the IPv4 minimum");
  assert.equal(t.pathMtu(d, 1500, 3), 552);
  const d6 = ip("fd00::9").bytes;
  assert.equal(t.learnPmtu(d6, 1000, 1500, 0), 1280);
  assert.equal(t.learnPmtu(ip("fd00::8").bytes, 9000, 1500, 0), 1500, "never above the link");
  assert.equal(t.pmtuEntries, 2);
  assert.equal(t.pathMtu(d, 1500, 102 * SECOND), 1500, "aged out");
  t.expire(102 * SECOND);
  assert.equal(t.pmtuEntries, 0);
});

Deno.test("RouteTable bounds the PMTU cache by replacing the oldest entry", () => {
  const t = new RouteTable({ maxEntries: 2 });
  t.learnPmtu(ip("198.18.1.1").bytes, 1000, 1500, 0);
  t.learnPmtu(ip("198.18.1.2").bytes, 1000, 1500, 1);
  t.learnPmtu(ip("198.18.1.3").bytes, 1000, 1500, 2);
  assert.equal(t.pmtuEntries, 2);
  assert.equal(t.pathMtu(ip("198.18.1.1").bytes, 1500, 3), 1500);
  assert.equal(t.pathMtu(ip("198.18.1.3").bytes, 1500, 3), 1000);
});

Deno.test("RouteTable.generation changes with every route and path-MTU change, not on lookups", () => {
  const t = new RouteTable({ lifetime: 10 * SECOND });
  let g = t.generation;
  const changed = (what: string): void => {
    assert.notEqual(t.generation, g, what);
    g = t.generation;
  };
  t.add(ip("198.18.0.0"), 24, null);
  changed("add");
  t.lookup(ip("198.18.0.1").bytes);
  t.pathMtu(ip("198.18.0.1").bytes, 1500);
  assert.equal(t.generation, g, "lookups leave it");
  assert.equal(t.remove(ip("10.0.0.0"), 8), 0);
  assert.equal(t.generation, g, "removing nothing leaves it");
  t.add(ip("198.19.0.0"), 16, ip("198.18.0.1"), { expiresAt: 5 * SECOND });
  changed("add with expiry");
  t.learnPmtu(ip("198.19.0.9").bytes, 1400, 1500, 0);
  changed("new PMTU");
  t.learnPmtu(ip("198.19.0.9").bytes, 1300, 1500, 0);
  changed("lowered PMTU");
  t.expire(6 * SECOND);
  changed("route expired");
  t.expire(11 * SECOND);
  changed("PMTU expired");
  t.remove(ip("198.18.0.0"), 24);
  changed("remove");
});
