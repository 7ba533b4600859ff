/**
 * Cost of SLA scheduling decisions (`next` + `consume`) of nsm/sla.ts with every guest
 * backlogged: pure DRR (no limits), and every guest rate-limited under a shared link
 * (throttle/wake through the timer heap), for 2, 64 and 1024 guests. Like a driver loop, time
 * advances once per poll of up to 16 decisions; the bench reports the cost per poll.
 *
 *     deno bench -A bench/sla_bench.ts
 *     deno run --v8-flags=--trace-gc bench/sla_bench.ts --gc [--fresh-now]
 *
 * `--gc` runs 1 M polls (16 M decisions, 64 guests, no limits) between two markers; count the
 * `Scavenge` lines between them (only that one scheduler exists then: the bench registrations
 * are skipped). With one `now` passed through (the default, as a driver loop passes its
 * `now`) decisions allocate nothing; `--fresh-now` stores a new `now` into an object field per
 * poll, which costs a HeapNumber each time (the harness's allocation, not the scheduler's).
 *
 * @module
 */

import { EgressScheduler, NO_GUEST } from "../nsm/sla.ts";

function build(guests: number, limited: boolean): EgressScheduler {
  const s = new EgressScheduler({
    linkRate: limited ? 50_000_000 : 0,
    quantum: 16384,
    minGrant: 1448,
  }, 0);
  for (let g = 1; g <= guests; g++) {
    s.setGuest(g, limited ? { rate: 1_000_000 + g, burst: 65536 } : { weight: 1 + (g % 4) }, 0);
    s.setBacklog(g, 1e15, 0);
  }
  return s;
}

/** One driver-loop poll: up to 16 decisions at `now`; returns how many were granted. */
function poll(s: EgressScheduler, now: number): number {
  let k = 0;
  for (; k < 16; k++) {
    const g = s.next(now);
    if (g === NO_GUEST) break;
    s.consume(g, s.grant < 1448 ? s.grant : 1448, now);
  }
  return k;
}

const clock = { now: 1e12 };

for (const n of Deno.args.includes("--gc") ? [] : [2, 64, 1024]) {
  for (const limited of [false, true]) {
    const s = build(n, limited);
    const name = `sla poll of 16 decisions, ${n} guests, ${
      limited ? "all rate-limited" : "no limits"
    }`;
    Deno.bench(name, { group: `sla-${n}` }, () => {
      clock.now += 16_000;
      poll(s, clock.now);
    });
  }
}

/** `--gc` mode: `polls` polls at one `now`, or a fresh `now` per poll. */
function gcRun(s: EgressScheduler, polls: number, fresh: boolean): void {
  const fixed = clock.now;
  for (let i = 0; i < polls; i++) {
    if (fresh) {
      clock.now += 16_000;
      poll(s, clock.now);
    } else poll(s, fixed);
  }
}

if (import.meta.main && Deno.args.includes("--gc")) {
  const fresh = Deno.args.includes("--fresh-now");
  const s = build(64, false);
  gcRun(s, 200_000, fresh); // warm-up: JIT
  console.log("--- counted: 1 M polls, 16 M decisions ---");
  const t0 = performance.now();
  gcRun(s, 1_000_000, fresh);
  const ms = performance.now() - t0;
  console.log(`--- end: ${((ms * 1e6) / 16e6).toFixed(1)} ns/decision ---`);
}
