import assert from "node:assert/strict";
import { DROP_REASONS, DropCounters, isDropReason } from "./drop.ts";

Deno.test("DropCounters counts per reason and totals", () => {
  const c = new DropCounters();
  c.count("truncated");
  c.count("truncated");
  c.count("bad-checksum");
  assert.equal(c.get("truncated"), 2);
  assert.equal(c.get("bad-checksum"), 1);
  assert.equal(c.get("bad-option"), 0);
  assert.equal(c.total(), 3);
  assert.deepEqual(c.snapshot(), { "truncated": 2, "bad-checksum": 1 });
  c.clear();
  assert.equal(c.total(), 0);
});

Deno.test("isDropReason() knows every listed reason and nothing else", () => {
  for (const r of DROP_REASONS) assert.ok(isDropReason(r));
  assert.equal(isDropReason("bogus"), false);
});
