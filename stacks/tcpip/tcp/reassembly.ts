/**
 * Out-of-order bookkeeping for the TCP receiver: which sequence ranges past RCV.NXT are already
 * stored in the receive ring, and which SACK blocks (RFC 2018) and D-SACK block (RFC 2883) to
 * report. The bytes themselves live in the receive ring at `seq - RCV.NXT` past its end; this
 * structure only keeps ranges, in fixed typed arrays, so it never allocates.
 *
 * @module
 */

import { type Seq, seqGt, seqLe, seqLt, seqMax, seqMin } from "./seq.ts";
import { AS_DOUBLE } from "./f64.ts";

/**
 * Initial size of the range table (grown by doubling up to `Reassembly.maxRanges`). Kept under
 * its old name: it was the fixed limit before the table could grow.
 */
export const MAX_RANGES = 32;

const NONE32 = new Uint32Array(0);
const NONE64 = new Float64Array(0);

/** Results of `Reassembly.add()`. */
export const AddResult = {
  /** Stored (maybe merged with neighbours). */
  Stored: 0,
  /** All bytes were already held: a duplicate. */
  Duplicate: 1,
  /** No slot for another disjoint range. */
  Full: 2,
} as const;
/** One of the `AddResult` values. */
export type AddResult = typeof AddResult[keyof typeof AddResult];

/** Sorted, disjoint, non-adjacent sequence ranges `[start, end)` above RCV.NXT. */
export class Reassembly {
  // Allocated on the first out-of-order segment: most connections never need them.
  #start: Uint32Array = NONE32;
  #end: Uint32Array = NONE32;
  #stamp: Float64Array = NONE64;
  #count = 0;
  #clock = 0;
  /**
   * Most disjoint ranges held; a segment that would need more is refused (`AddResult.Full`).
   * The TCB sets it to receive buffer / MSS, so the real bound is the buffer's bytes (as
   * Linux bounds its out-of-order queue by memory), not a hole count. At least `MAX_RANGES`.
   */
  maxRanges: number = MAX_RANGES;
  /** Segments refused because the range table was at `maxRanges`. */
  refused = 0;
  /**
   * D-SACK range to report in the next ACK (RFC 2883), valid when `dsackValid`. Double fields
   * from the start (f64.ts): the first duplicate above 2^31 changed the map mid-transfer.
   */
  dsackStart: Seq = AS_DOUBLE;
  /** End of the D-SACK range. */
  dsackEnd: Seq = AS_DOUBLE;
  /** True while a D-SACK block is pending. */
  dsackValid = false;

  /** Number of disjoint ranges held. */
  get count(): number {
    return this.#count;
  }

  /** True when nothing is held out of order. */
  get empty(): boolean {
    return this.#count === 0;
  }

  /** Forgets everything. */
  clear(): void {
    this.#count = 0;
    this.dsackValid = false;
  }

  /** Notes a duplicate range `[s, e)` to report as a D-SACK block. */
  noteDuplicate(s: Seq, e: Seq): void {
    this.dsackStart = s;
    this.dsackEnd = e;
    this.dsackValid = true;
  }

  /**
   * Records `[s, e)` (already stored in the ring). Duplicated parts are noted for D-SACK.
   */
  add(s: Seq, e: Seq): AddResult {
    if (this.#start.length === 0) this.#grow(MAX_RANGES);
    const stamp = ++this.#clock;
    let n = this.#count;
    // First range whose end reaches s (ranges touching [s,e) merge).
    let i = 0;
    while (i < n && seqLt(this.#end[i]!, s)) i++;
    let j = i;
    while (j < n && seqLe(this.#start[j]!, e)) j++;
    // Ranges i..j-1 overlap or touch [s, e).
    if (j > i) {
      // Duplicate detection: overlap with the first overlapping range (enough for D-SACK).
      const os = seqMax(s, this.#start[i]!);
      const oe = seqMin(e, this.#end[i]!);
      if (seqLt(os, oe)) this.noteDuplicate(os, oe);
      const ns = seqMin(s, this.#start[i]!);
      const ne = seqMax(e, this.#end[j - 1]!);
      const dup = ns === this.#start[i] && ne === this.#end[i] && j === i + 1;
      this.#start[i] = ns;
      this.#end[i] = ne;
      this.#stamp[i] = stamp;
      const removed = j - i - 1;
      if (removed > 0) {
        for (let k = j; k < n; k++) {
          this.#start[k - removed] = this.#start[k]!;
          this.#end[k - removed] = this.#end[k]!;
          this.#stamp[k - removed] = this.#stamp[k]!;
        }
        n -= removed;
        this.#count = n;
      }
      return dup ? AddResult.Duplicate : AddResult.Stored;
    }
    if (n === this.#start.length) {
      if (n >= this.maxRanges) {
        this.refused++;
        return AddResult.Full;
      }
      this.#grow(Math.min(2 * n, Math.max(this.maxRanges, MAX_RANGES)));
    }
    for (let k = n; k > i; k--) {
      this.#start[k] = this.#start[k - 1]!;
      this.#end[k] = this.#end[k - 1]!;
      this.#stamp[k] = this.#stamp[k - 1]!;
    }
    this.#start[i] = s;
    this.#end[i] = e;
    this.#stamp[i] = stamp;
    this.#count = n + 1;
    return AddResult.Stored;
  }

  /** Reallocates the table to `size` ranges, keeping its contents (rare: doubling). */
  #grow(size: number): void {
    const start = new Uint32Array(size);
    const end = new Uint32Array(size);
    const stamp = new Float64Array(size);
    start.set(this.#start.subarray(0, this.#count));
    end.set(this.#end.subarray(0, this.#count));
    stamp.set(this.#stamp.subarray(0, this.#count));
    this.#start = start;
    this.#end = end;
    this.#stamp = stamp;
  }

  /**
   * Called after RCV.NXT moved to `rcvNxt`: removes ranges now below it and returns the new
   * RCV.NXT, extended over any range that became contiguous.
   */
  advance(rcvNxt: Seq): Seq {
    let next = rcvNxt;
    let drop = 0;
    const n = this.#count;
    while (drop < n && seqLe(this.#start[drop]!, next)) {
      next = seqMax(next, this.#end[drop]!);
      drop++;
    }
    if (drop > 0) {
      for (let k = drop; k < n; k++) {
        this.#start[k - drop] = this.#start[k]!;
        this.#end[k - drop] = this.#end[k]!;
        this.#stamp[k - drop] = this.#stamp[k]!;
      }
      this.#count = n - drop;
    }
    return next;
  }

  /** Highest sequence number held, or `fallback` when empty. */
  highest(fallback: Seq): Seq {
    return this.#count === 0 ? fallback : this.#end[this.#count - 1]!;
  }

  /**
   * Writes up to `max` SACK blocks into `out` (left,right pairs): the pending D-SACK block
   * first (RFC 2883 4), then ranges most recently changed first (RFC 2018 4). Consumes the
   * D-SACK. Returns the number of blocks written. `rcvNxt` may be given as int32 (the
   * comparisons are modulo 2^32), which keeps a heap number out of the per-ACK call.
   */
  fillSack(out: Uint32Array, max: number, rcvNxt: Seq): number {
    let k = 0;
    if (this.dsackValid && max > 0) {
      out[0] = this.dsackStart;
      out[1] = this.dsackEnd;
      k = 1;
      this.dsackValid = false;
    }
    // Selection by recency without allocation: repeatedly pick the newest stamp below `limit`.
    let limit = Number.POSITIVE_INFINITY;
    while (k < max) {
      let best = -1;
      let bestStamp = -1;
      for (let i = 0; i < this.#count; i++) {
        const st = this.#stamp[i]!;
        if (st < limit && st > bestStamp && seqGt(this.#end[i]!, rcvNxt)) {
          best = i;
          bestStamp = st;
        }
      }
      if (best < 0) break;
      out[2 * k] = seqMax(this.#start[best]!, rcvNxt);
      out[2 * k + 1] = this.#end[best]!;
      limit = bestStamp;
      k++;
    }
    return k;
  }
}
