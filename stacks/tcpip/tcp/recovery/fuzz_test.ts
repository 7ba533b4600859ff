import assert from "node:assert/strict";
import { RecoveryEngine } from "./engine.ts";
import { seqAdd, seqDiff } from "../seq.ts";

/** Small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

function run(seed: number, sack: boolean, timestamps: boolean): void {
  const rand = rng(seed);
  const mss = 1000;
  const iss = (rand() * 0x1_0000_0000) >>> 0;
  const e = new RecoveryEngine({ mss, sack, timestamps, capacity: 8 });
  e.reset(iss, 0);
  e.setNegotiated(sack, timestamps, true);
  const blocks = new Uint32Array(8);
  let now = 0;
  for (let step = 0; step < 3000; step++) {
    // Mostly short gaps; sometimes a silence long enough for RTOs and TLPs.
    now += rand() < 0.03 ? 3_000_000_000 : Math.floor(rand() * 20_000_000);
    const op = rand();
    if (op < 0.35) {
      // Transmit loop as the core would run it.
      for (let k = 0; k < 8; k++) {
        const rt = e.nextRetransmit();
        if (rt !== null) {
          if (!e.canSend(rt.len, true)) break;
          const len = rand() < 0.2 ? Math.max(1, Math.floor(rt.len / 2)) : rt.len;
          e.onSend(rt.seq, len, now, true);
          continue;
        }
        const q = e.sendQuota();
        if (q < mss) break;
        e.onSend(e.sndNxt, rand() < 0.1 ? 1 + Math.floor(rand() * mss) : mss, now, false);
      }
      if (rand() < 0.1) e.onAppLimited();
    } else if (op < 0.85) {
      const out = seqDiff(e.sndNxt, e.sndUna);
      const ack = rand() < 0.3
        ? e.sndUna
        : seqAdd(e.sndUna, Math.floor(rand() * rand() * (out + 1)));
      let n = 0;
      if (sack && out > 0) {
        n = Math.floor(rand() * 4);
        for (let b = 0; b < n; b++) {
          const l = seqAdd(e.sndUna, Math.floor(rand() * (out + 2000)) - 1000);
          blocks[2 * b] = l;
          blocks[2 * b + 1] = seqAdd(l, 1 + Math.floor(rand() * 4000));
        }
      }
      const ts = timestamps && rand() < 0.9 ? Math.floor(rand() * 200_000_000) : -1;
      e.onAck(now, ack, blocks, n, ts, rand() < 0.05, rand() < 0.9);
      if (rand() < 0.1) e.setPeerWindow(Math.floor(rand() * 100_000));
    } else {
      const at = e.pollAt();
      if (at <= now) e.onTimer(now, rand() < 0.5);
    }
    const bad = e.audit();
    if (bad !== null) assert.fail(`seed ${seed} step ${step}: ${bad}`);
    assert.ok(e.inFlight >= 0);
    assert.ok(e.sendQuota() >= 0);
    assert.ok(e.cc.cwnd >= mss, `seed ${seed} step ${step}: cwnd ${e.cc.cwnd}`);
    assert.ok(e.rto > 0);
  }
}

Deno.test("random ACK/SACK/timer scripts keep the scoreboard counters consistent (SACK)", () => {
  for (let seed = 1; seed <= 20; seed++) run(seed, true, seed % 2 === 0);
});

Deno.test("random ACK/timer scripts keep the scoreboard counters consistent (no SACK)", () => {
  for (let seed = 101; seed <= 110; seed++) run(seed, false, seed % 2 === 0);
});
