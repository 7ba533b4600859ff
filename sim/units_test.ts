import assert from "node:assert/strict";
import {
  formatRate,
  parseCount,
  parseDuration,
  parseFraction,
  parseRate,
  UnitParseError,
} from "./units.ts";
import { MILLISECOND, SECOND } from "../stacks/time.ts";

Deno.test("parseRate() reads tc-style bit rates", () => {
  assert.equal(parseRate("rate", "100mbit"), 100e6);
  assert.equal(parseRate("rate", "1gbit"), 1e9);
  assert.equal(parseRate("rate", "2.5Gbps"), 2.5e9);
  assert.equal(parseRate("rate", "800kbit"), 800e3);
  assert.equal(parseRate("rate", "1e9"), 1e9);
  assert.throws(() => parseRate("rate", "fast"), UnitParseError);
  assert.throws(() => parseRate("rate", "0mbit"), /--rate "0mbit"/);
});

Deno.test("parseDuration() returns nanoseconds and treats a bare number as seconds", () => {
  assert.equal(parseDuration("rtt", "20ms"), 20 * MILLISECOND);
  assert.equal(parseDuration("duration", "30s"), 30 * SECOND);
  assert.equal(parseDuration("duration", "1.5"), 1.5 * SECOND);
  assert.equal(parseDuration("rtt", "250us"), 250_000);
  assert.throws(() => parseDuration("rtt", "20 parsecs"), /20ms or 30s/);
});

Deno.test("parseFraction() takes percentages and plain probabilities within [0, 1]", () => {
  assert.equal(parseFraction("loss", "0.5%"), 0.005);
  assert.equal(parseFraction("loss", "0.25"), 0.25);
  assert.throws(() => parseFraction("loss", "150%"), UnitParseError);
  assert.equal(parseCount("queue", "100"), 100);
  assert.throws(() => parseCount("queue", "-1"), UnitParseError);
});

Deno.test("formatRate() picks a readable unit", () => {
  assert.equal(formatRate(94_200_000), "94.2 Mbit/s");
  assert.equal(formatRate(1.25e9), "1.3 Gbit/s");
  assert.equal(formatRate(12), "12 bit/s");
});
