import assert from "node:assert/strict";
import { MILLISECOND, SECOND } from "../../../time.ts";
import { seqAdd, seqDiff, seqGe, seqGt, seqLt } from "../seq.ts";
import { RecoveryEngine } from "./engine.ts";

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

interface Ev {
  at: number;
  kind: "data" | "ack";
  seq: number;
  len: number;
  ack: number;
  sack: number[];
  sentAt: number;
}

/**
 * A SACK receiver (immediate ACKs, D-SACK for duplicates, most recent block first) behind a
 * path that drops and reorders, driving the engine exactly as the TCP core's transmit loop
 * does. Returns the engine after the whole transfer was acknowledged (or the time ran out).
 */
function transfer(
  seed: number,
  opts: { loss: number; ackLoss: number; reorder: number; segments: number; sack: boolean },
): { e: RecoveryEngine; done: boolean; time: number } {
  const rand = rng(seed);
  const mss = 1000;
  const iss = (rand() * 0x1_0000_0000) >>> 0;
  const total = opts.segments * mss;
  const end = seqAdd(iss, total);
  const e = new RecoveryEngine({ mss, sack: opts.sack, timestamps: false, capacity: 8 });
  e.reset(iss, 0);
  e.setNegotiated(opts.sack, false, false);
  e.setPeerWindow(64 * mss);
  const events: Ev[] = [];
  const push = (ev: Ev): void => {
    let i = events.length;
    events.push(ev);
    while (i > 0 && events[i - 1]!.at > ev.at) {
      events[i] = events[i - 1]!;
      i--;
    }
    events[i] = ev;
  };
  const oneWay = 25 * MILLISECOND;
  // Receiver state: received ranges above rcvNxt, most recently changed first.
  let rcvNxt = iss;
  let ranges: [number, number][] = [];
  const blocks = new Uint32Array(8);

  const receive = (now: number, seq: number, len: number): void => {
    const segEnd = seqAdd(seq, len);
    let dsack: [number, number] | null = null;
    if (seqGe(rcvNxt, segEnd)) dsack = [seq, segEnd];
    else if (ranges.some(([l, r]) => seqGe(seq, l) && seqGe(r, segEnd))) dsack = [seq, segEnd];
    if (dsack === null) {
      // Merge [seq, segEnd) into ranges, then advance rcvNxt.
      let l = seq;
      let r = segEnd;
      const rest: [number, number][] = [];
      for (const [a, b] of ranges) {
        if (seqGe(b, l) && seqGe(r, a)) {
          if (seqLt(a, l)) l = a;
          if (seqGt(b, r)) r = b;
        } else rest.push([a, b]);
      }
      ranges = [[l, r], ...rest];
      let moved = true;
      while (moved) {
        moved = false;
        for (let i = 0; i < ranges.length; i++) {
          const [a, b] = ranges[i]!;
          if (!seqGt(a, rcvNxt)) {
            if (seqGt(b, rcvNxt)) rcvNxt = b;
            ranges.splice(i, 1);
            moved = true;
            break;
          }
        }
      }
    }
    const sack: number[] = [];
    if (opts.sack) {
      if (dsack !== null) sack.push(dsack[0], dsack[1]);
      for (const [a, b] of ranges) {
        if (sack.length >= 8) break;
        sack.push(a, b);
      }
    }
    if (rand() < opts.ackLoss) return;
    push({ at: now + oneWay, kind: "ack", seq: 0, len: 0, ack: rcvNxt, sack, sentAt: now });
  };

  const output = (now: number): void => {
    for (let guard = 0; guard < 1000; guard++) {
      const rt = e.nextRetransmit();
      let seq: number;
      let len: number;
      if (rt !== null) {
        if (!e.canSend(rt.len, true)) return;
        seq = rt.seq;
        len = rt.len;
        e.onSend(seq, len, now, true);
      } else {
        const unsent = seqDiff(end, e.sndNxt);
        if (unsent <= 0) {
          e.onAppLimited();
          return;
        }
        len = Math.min(mss, unsent, e.sendQuota());
        if (len <= 0) return;
        seq = e.sndNxt;
        e.onSend(seq, len, now, false);
      }
      if (rand() < opts.loss) continue;
      const extra = rand() < opts.reorder ? rand() * 10 * MILLISECOND : 0;
      push({ at: now + oneWay + extra, kind: "data", seq, len, ack: 0, sack: [], sentAt: now });
    }
  };

  let now = 0;
  output(now);
  const limit = 600 * SECOND;
  while (now < limit && seqLt(e.sndUna, end)) {
    const nextEv = events.length > 0 ? events[0]!.at : Infinity;
    const nextTimer = e.pollAt();
    if (nextEv === Infinity && nextTimer === Infinity) break;
    if (nextTimer < nextEv) {
      now = nextTimer;
      e.onTimer(now, seqLt(e.sndNxt, end));
    } else {
      const ev = events.shift()!;
      now = ev.at;
      if (ev.kind === "data") receive(now, ev.seq, ev.len);
      else {
        for (let i = 0; i < 8; i++) blocks[i] = ev.sack[i] ?? 0;
        const ack = seqGt(ev.ack, e.sndNxt) ? e.sndNxt : ev.ack;
        e.onAck(now, ack, blocks, ev.sack.length / 2, -1, false, true);
      }
    }
    const bad = e.audit();
    if (bad !== null) assert.fail(`seed ${seed}: ${bad}`);
    output(now);
  }
  return { e, done: e.sndUna === end, time: now };
}

Deno.test("a lossless transfer completes without retransmissions", () => {
  const { e, done } = transfer(1, { loss: 0, ackLoss: 0, reorder: 0, segments: 300, sack: true });
  assert.ok(done);
  assert.equal(e.info().retransSegs, 0);
  assert.equal(e.state, "open");
});

Deno.test("transfers with random loss always complete (SACK, RACK, TLP, RTO)", () => {
  for (let seed = 1; seed <= 12; seed++) {
    const { e, done, time } = transfer(seed, {
      loss: 0.05,
      ackLoss: 0.02,
      reorder: 0,
      segments: 400,
      sack: true,
    });
    assert.ok(done, `seed ${seed} stalled at ${time / SECOND} s: ${JSON.stringify(e.info())}`);
    assert.ok(e.info().retransSegs > 0);
    // Loss recovery should mostly avoid timeouts.
    assert.ok(e.info().rtoCount <= 6, `seed ${seed}: ${e.info().rtoCount} RTOs`);
    // Without reordering or timeouts, no retransmission may be a duplicate.
    if (e.info().rtoCount === 0) assert.equal(e.info().dsacks, 0, `seed ${seed}`);
  }
});

Deno.test("transfers with reordering complete and RACK learns the reordering", () => {
  let seen = 0;
  for (let seed = 20; seed <= 27; seed++) {
    const { e, done } = transfer(seed, {
      loss: 0.01,
      ackLoss: 0,
      reorder: 0.1,
      segments: 400,
      sack: true,
    });
    assert.ok(done, `seed ${seed} stalled`);
    if (e.info().reorderingSeen) seen++;
  }
  assert.ok(seen >= 6);
});

Deno.test("transfers without SACK complete (NewReno and RTO)", () => {
  for (let seed = 40; seed <= 47; seed++) {
    const { e, done, time } = transfer(seed, {
      loss: 0.03,
      ackLoss: 0.01,
      reorder: 0,
      segments: 300,
      sack: false,
    });
    assert.ok(done, `seed ${seed} stalled at ${time / SECOND} s: ${JSON.stringify(e.info())}`);
  }
});
