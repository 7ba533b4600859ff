import assert from "node:assert/strict";
import { MILLISECOND, NEVER, SECOND } from "../stacks/time.ts";
import {
  EgressScheduler,
  MAX_BURST,
  NO_GUEST,
  parseRate,
  parseSize,
  parseSla,
  SlaConfigError,
  TokenBucket,
} from "./sla.ts";

/** Runs the scheduler as a transmit path would, always taking the whole grant, until `end`. */
function drive(s: EgressScheduler, start: number, end: number, maxSteps = 1_000_000): number {
  let now = start;
  let steps = 0;
  for (; steps < maxSteps; steps++) {
    const g = s.next(now);
    if (g !== NO_GUEST) {
      s.consume(g, s.grant, now);
      s.addBacklog(g, s.grant, now); // stays backlogged forever
      continue;
    }
    const t = s.nextAt(now);
    if (t > end) break;
    now = t;
  }
  return steps;
}

Deno.test("TokenBucket.refill() adds exactly rate*elapsed/1e9 bytes, carrying the fraction in nano-bytes", () => {
  const b = new TokenBucket(7, 100, 0);
  b.take(100);
  assert.equal(b.tokens, 0);
  b.refill(1); // 7 nano-bytes
  assert.equal(b.tokens, 0);
  assert.equal(b.nano, 7);
  b.refill(SECOND); // 999_999_999 ns * 7 + 7 = 7e9 nano-bytes exactly
  assert.equal(b.tokens, 7);
  assert.equal(b.nano, 0);
  // 1000 refills of 1 ms at 7 B/s: 7 bytes again, no rounding drift.
  for (let i = 1; i <= 1000; i++) b.refill(SECOND + i * MILLISECOND);
  assert.equal(b.tokens, 14);
  assert.equal(b.nano, 0);
});

Deno.test("TokenBucket caps at burst, drops the fraction when full, and limits debt to -burst", () => {
  const b = new TokenBucket(1000, 500, 0);
  assert.equal(b.tokens, 500, "starts full");
  b.take(200);
  b.refill(10 * SECOND);
  assert.equal(b.tokens, 500);
  assert.equal(b.nano, 0);
  b.take(5000);
  assert.equal(b.tokens, -500, "debt is bounded");
  b.refill(10 * SECOND + 1_000_500_000); // 1000.5 bytes earned
  assert.equal(b.tokens, 500);
  assert.equal(b.nano, 0);
});

Deno.test("TokenBucket.timeUntil() is the exact ceiling of the time to earn the missing bytes", () => {
  const b = new TokenBucket(1000, 2000, 0);
  b.take(2000);
  assert.equal(b.timeUntil(1448), 1_448_000_000);
  b.refill(1_500); // 1.5 nano-bytes... 1500 ns * 1000 B/s = 1_500_000 nano-bytes
  assert.equal(b.nano, 1_500_000);
  assert.equal(b.timeUntil(1), 998_500);
  b.refill(1_500 + 998_500);
  assert.equal(b.tokens, 1);
  assert.equal(b.nano, 0);
  const slow = new TokenBucket(3, 10, 0);
  slow.take(10);
  assert.equal(slow.timeUntil(1), 333_333_334, "1e9/3 rounded up");
  slow.refill(333_333_334);
  assert.equal(slow.tokens, 1);
  assert.equal(slow.nano, 2);
});

Deno.test("TokenBucket rejects rates and bursts outside the exact range with a message saying what to write", () => {
  assert.throws(() => new TokenBucket(1.5, 10, 0), SlaConfigError);
  assert.throws(() => new TokenBucket(10, MAX_BURST + 1, 0), /1\.\.4194304; write e\.g\. 65536/);
  assert.throws(() => new TokenBucket(-1, 10, 0), /bytes\/s/);
});

Deno.test("EgressScheduler holds a guest to rate*T + burst, in grants of at least minGrant", () => {
  const s = new EgressScheduler({ minGrant: 100 }, 0);
  s.setGuest(1, { rate: 1000, burst: 1000 }, 0);
  s.setBacklog(1, 1_000_000, 0);
  assert.equal(s.next(0), 1);
  assert.equal(s.grant, 1000, "the full bucket");
  s.consume(1, 1000, 0);
  assert.equal(s.next(0), NO_GUEST);
  assert.equal(s.nextAt(0), 100 * MILLISECOND, "100 bytes at 1000 B/s");
  assert.equal(s.next(99 * MILLISECOND), NO_GUEST);
  assert.equal(s.next(100 * MILLISECOND), 1);
  assert.equal(s.grant, 100);
  s.consume(1, 100, 100 * MILLISECOND);
  drive(s, 100 * MILLISECOND, 10 * SECOND);
  // 1000 (burst) + 10 s * 1000 B/s, exactly.
  assert.equal(s.sent(1), 11_000);
  assert.ok(s.status(10 * SECOND)[0]!.throttled > 90);
});

Deno.test("EgressScheduler splits a saturated link 3:1 by weight (DRR) to within one quantum", () => {
  const s = new EgressScheduler({
    linkRate: 1_000_000,
    linkBurst: 10_000,
    quantum: 1000,
    minGrant: 1000,
  }, 0);
  s.setGuest(1, { weight: 3 }, 0);
  s.setGuest(2, { weight: 1 }, 0);
  assert.equal(s.sla(1)!.quantum, 3000);
  assert.equal(s.sla(2)!.quantum, 1000);
  s.setBacklog(1, 1e9, 0);
  s.setBacklog(2, 1e9, 0);
  drive(s, 0, 2 * SECOND);
  const a = s.sent(1);
  const b = s.sent(2);
  // The link's burst plus 2 s at its rate, less what is left below one minGrant.
  assert.ok(a + b > 2_009_000 && a + b <= 2_010_000, `total ${a + b}`);
  assert.ok(Math.abs(a - 3 * b) <= 3000 + 3 * 1000, `a=${a} b=${b}`);
});

Deno.test("EgressScheduler derives weights from guaranteed rates and warns when they oversubscribe the link", () => {
  const s = new EgressScheduler({ linkRate: 400, quantum: 1000, minGrant: 1 }, 0);
  assert.deepEqual(s.setGuest(1, { minRate: 300 }, 0), []);
  assert.deepEqual(s.setGuest(2, { minRate: 100 }, 0), []);
  assert.equal(s.sla(1)!.quantum, 3000);
  const w = s.setGuest(3, { minRate: 100 }, 0);
  assert.equal(w.length, 1);
  assert.match(w[0]!, /add up to 500 B\/s, more than the link's 400 B\/s; lower some minRate/);
  const w2 = s.setGuest(2, { minRate: 50, rate: 40 }, 0);
  assert.match(w2.join("\n"), /guest 2: guaranteed 50 B\/s exceeds its own limit 40 B\/s/);
});

Deno.test("EgressScheduler is work conserving: an idle guest's share goes to the others", () => {
  const s = new EgressScheduler({
    linkRate: 1_000_000,
    linkBurst: 10_000,
    quantum: 1000,
    minGrant: 1000,
  }, 0);
  s.setGuest(1, { weight: 1 }, 0);
  s.setGuest(2, { weight: 9 }, 0);
  s.setBacklog(1, 1e9, 0);
  drive(s, 0, SECOND);
  assert.ok(s.sent(1) > 1_009_000 && s.sent(1) <= 1_010_000, `sent ${s.sent(1)}`);
  assert.equal(s.sent(2), 0);
});

Deno.test("EgressScheduler gives a rate-limited guest its limit and the rest of the link to the other", () => {
  const s = new EgressScheduler({
    linkRate: 1_000_000,
    linkBurst: 10_000,
    quantum: 1500,
    minGrant: 1000,
  }, 0);
  s.setGuest(1, { rate: 200_000, burst: 5000 }, 0);
  s.setGuest(2, {}, 0);
  s.setBacklog(1, 1e9, 0);
  s.setBacklog(2, 1e9, 0);
  drive(s, 0, 4 * SECOND);
  const a = s.sent(1);
  const b = s.sent(2);
  assert.ok(a <= 5000 + 800_000 && a >= 800_000 - 1000, `a=${a}`);
  assert.ok(a + b >= 4_000_000 && a + b <= 4_010_000, `total ${a + b}`);
});

Deno.test("EgressScheduler.setGuest() at run time changes a limit without losing earned tokens", () => {
  const s = new EgressScheduler({ minGrant: 1 }, 0);
  s.setGuest(1, { rate: 1000, burst: 1000 }, 0);
  s.setBacklog(1, 1e9, 0);
  drive(s, 0, SECOND);
  assert.equal(s.sent(1), 2000);
  s.setGuest(1, { rate: 4000 }, SECOND); // burst kept at 1000
  assert.equal(s.sla(1)!.burst, 1000);
  drive(s, SECOND, 2 * SECOND);
  assert.equal(s.sent(1), 6000);
  s.setGuest(1, { rate: 0 }, 2 * SECOND); // unlimited now
  assert.equal(s.next(2 * SECOND), 1);
  assert.equal(s.grant, 16384, "bounded by its DRR quantum only");
});

Deno.test("EgressScheduler: a guest with nothing ready is skipped, removal while throttled is clean", () => {
  const s = new EgressScheduler({ minGrant: 10 }, 0);
  assert.equal(s.next(0), NO_GUEST);
  assert.equal(s.nextAt(0), NEVER);
  s.setBacklog(7, 5, 0); // unknown guest: default SLA (no limit)
  assert.equal(s.next(0), 7);
  assert.equal(s.grant, 5, "a backlog below minGrant goes at once");
  s.consume(7, 5, 0);
  assert.equal(s.next(0), NO_GUEST);
  s.setGuest(8, { rate: 10, burst: 10 }, 0);
  s.setBacklog(8, 100, 0);
  assert.equal(s.next(0), 8);
  s.consume(8, 10, 0);
  assert.equal(s.next(0), NO_GUEST);
  assert.equal(s.nextAt(0), SECOND);
  s.removeGuest(8);
  assert.equal(s.nextAt(0), NEVER);
  assert.equal(s.next(2 * SECOND), NO_GUEST);
  assert.equal(s.has(8), false);
});

Deno.test("EgressScheduler.next() without consume repeats the same decision", () => {
  const s = new EgressScheduler({ quantum: 2000, minGrant: 1 }, 0);
  s.setBacklog(1, 10_000, 0);
  s.setBacklog(2, 10_000, 0);
  assert.equal(s.next(0), 1);
  assert.equal(s.grant, 2000);
  assert.equal(s.next(0), 1);
  assert.equal(s.grant, 2000);
  s.consume(1, 2000, 0);
  assert.equal(s.next(0), 2, "deficit spent: round robin moves on");
});

Deno.test("parseRate/parseSize/parseSla read operator units and name what to write on errors", () => {
  assert.equal(parseRate("100mbit"), 12_500_000);
  assert.equal(parseRate("1Gbps"), 125_000_000);
  assert.equal(parseRate("12.5MB/s"), 12_500_000);
  assert.equal(parseRate("4000"), 4000);
  assert.throws(() => parseRate("fast"), /write it like 100mbit/);
  assert.equal(parseSize("64k"), 65536);
  assert.equal(parseSize("1MiB"), 1048576);
  assert.deepEqual(parseSla("rate=100mbit,burst=64k,min=50mbit,weight=3"), {
    rate: 12_500_000,
    burst: 65536,
    minRate: 6_250_000,
    weight: 3,
  });
  assert.throws(() => parseSla("speed=1"), /SLA field "speed" is not known; write rate=/);
});

Deno.test("EgressScheduler: setting guarantees one guest at a time does not bank a transient 4096x quantum (3:1 holds right after)", () => {
  const s = new EgressScheduler({ linkRate: 25_000_000 }, 0);
  s.setGuest(1, {}, 0);
  s.setGuest(2, {}, 0);
  s.setBacklog(1, 1e12, 0);
  s.setBacklog(2, 1e12, 0);
  // Guest 1 gets its guarantee first: for a moment it weighs 18.75e6 / 1 against guest 2.
  s.setGuest(1, { minRate: 18_750_000 }, 0);
  let now = 0;
  const sent = [0, 0, 0];
  const drive = (until: number): void => {
    for (; now < until; now += 20_000) {
      for (let k = 0; k < 64; k++) {
        const g = s.next(now);
        if (g === NO_GUEST) break;
        const n = Math.min(s.grant, 16384);
        s.consume(g, n, now);
        s.setBacklog(g, 1e12, now);
        sent[g]! += n;
      }
    }
  };
  drive(1_000_000); // 1 ms: guest 1 takes turns (and banks its quantum) under the extreme ratio
  s.setGuest(2, { minRate: 6_250_000 }, now);
  sent[1] = sent[2] = 0;
  drive(now + 200_000_000); // the next 200 ms
  const ratio = sent[1]! / sent[2]!;
  assert.ok(ratio > 2.7 && ratio < 3.3, `ratio ${ratio} (${sent[1]} / ${sent[2]})`);
});

/** Drives guests 1 and 2 (always backlogged) in 20 us steps; returns bytes sent per window. */
function windows(s: EgressScheduler, start: number, window: number, count: number): number[][] {
  const out: number[][] = [];
  let now = start;
  for (let w = 0; w < count; w++) {
    const sent = [0, 0, 0, 0];
    for (const end = now + window; now < end; now += 20_000) {
      for (let k = 0; k < 64; k++) {
        const g = s.next(now);
        if (g === NO_GUEST) break;
        const n = Math.min(s.grant, 16384);
        s.consume(g, n, now);
        s.setBacklog(g, 1e12, now);
        sent[g]! += n;
      }
    }
    out.push(sent);
  }
  return out;
}

Deno.test("EgressScheduler: an attached but idle weight-1 guest does not turn 3:1 guarantees into multi-second 1:1 turns", () => {
  // The ops test's case: 200 Mbit/s link, guest 3 (an idle nkperf -s) keeps the default
  // weight 1 while guests 1 and 2 get min=150mbit and min=50mbit.
  const s = new EgressScheduler({ linkRate: 25_000_000 }, 0);
  for (const g of [1, 2, 3]) s.setGuest(g, {}, 0);
  s.setGuest(1, { minRate: 18_750_000 }, 0);
  s.setGuest(2, { minRate: 6_250_000 }, 0);
  s.setBacklog(1, 1e12, 0);
  s.setBacklog(2, 1e12, 0);
  // Every 100 ms window splits 3:1, not one guest for seconds and then the other.
  for (const [i, w] of windows(s, 0, 100 * MILLISECOND, 20).entries()) {
    const ratio = w[1]! / w[2]!;
    assert.ok(ratio > 2.7 && ratio < 3.3, `window ${i}: ratio ${ratio} (${w[1]} / ${w[2]})`);
    assert.equal(w[3], 0);
  }
  assert.ok(s.sla(1)!.quantum <= 16 * 16384, `quantum ${s.sla(1)!.quantum} bounds a turn`);
});

Deno.test("EgressScheduler: a backlogged weight-1 guest next to 3:1 guarantees keeps the 3:1 and gets a small share", () => {
  const s = new EgressScheduler({ linkRate: 25_000_000 }, 0);
  s.setGuest(1, { minRate: 18_750_000 }, 0);
  s.setGuest(2, { minRate: 6_250_000 }, 0);
  s.setGuest(3, {}, 0);
  for (const g of [1, 2, 3]) s.setBacklog(g, 1e12, 0);
  const w = windows(s, 0, 200 * MILLISECOND, 5);
  for (const [i, x] of w.entries()) {
    const ratio = x[1]! / x[2]!;
    assert.ok(ratio > 2.7 && ratio < 3.3, `window ${i}: ratio ${ratio} (${x[1]} / ${x[2]})`);
    assert.ok(x[1]! >= 0.95 * 18_750_000 * 0.2, `guarantee held: ${x[1]}`);
  }
  // Alone, the light guest gets the whole link (work conserving, no spinning on tiny quanta).
  s.setBacklog(1, 0, SECOND);
  s.setBacklog(2, 0, SECOND);
  const alone = windows(s, SECOND, 100 * MILLISECOND, 1)[0]!;
  assert.ok(alone[3]! > 0.95 * 2_500_000, `alone: ${alone[3]} B in 100 ms`);
});

Deno.test("EgressScheduler: a guest that was idle banks no DRR credit and its re-added id starts fresh", () => {
  const s = new EgressScheduler({ linkRate: 25_000_000 }, 0);
  s.setGuest(1, { minRate: 18_750_000 }, 0);
  s.setGuest(2, { minRate: 6_250_000 }, 0);
  s.setGuest(3, { minRate: 6_250_000 }, 0);
  s.setBacklog(3, 1e12, 0);
  windows(s, 0, 100 * MILLISECOND, 1); // guest 3 alone
  s.setBacklog(3, 0, 100 * MILLISECOND); // goes idle, then detaches
  s.removeGuest(3);
  s.setGuest(3, {}, 100 * MILLISECOND); // id reused by a new, idle guest
  s.setBacklog(1, 1e12, 100 * MILLISECOND);
  s.setBacklog(2, 1e12, 100 * MILLISECOND);
  for (const [i, x] of windows(s, 100 * MILLISECOND, 100 * MILLISECOND, 5).entries()) {
    const ratio = x[1]! / x[2]!;
    assert.ok(ratio > 2.7 && ratio < 3.3, `window ${i}: ratio ${ratio} (${x[1]} / ${x[2]})`);
    assert.equal(x[3], 0);
  }
});
