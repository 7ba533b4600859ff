/**
 * The in-flight segment records of one connection: a ring of parallel typed arrays (structure
 * of arrays) ordered by sequence number and covering [snd_una, snd_nxt) without gaps. Records
 * are reused; the ring only allocates when a window outgrows it (doubling), and splitting a
 * record (partial SACK, partial retransmission) shifts the tail by one slot.
 *
 * @module
 */

import type { Instant } from "../../../time.ts";
import type { Seq } from "../seq.ts";

/** Record flag: SACKed by the receiver. */
export const F_SACKED = 1;
/** Record flag: considered lost (RACK, DupThresh, NewReno, RTO). */
export const F_LOST = 2;
/** Record flag: a retransmitted copy is in flight (counted in pipe). */
export const F_RETRANS = 4;
/** Record flag: sent while the application limited the flow. */
export const F_APP_LIMITED = 8;
/** Record flag: last transmission carried ECT. */
export const F_ECT = 16;
/** Record flag: retransmitted at least once (Karn's rule, RACK ambiguity). */
export const F_EVER_RETRANS = 32;

/** Structure-of-arrays ring of segment records. Logical index 0 is the oldest (snd_una). */
export class SegmentRing {
  /** Slots available before growing. */
  capacity = 0;
  /** Number of records. */
  count = 0;
  private mask = 0;
  private head = 0;
  /** First sequence number of each record. */
  start: Uint32Array = new Uint32Array(0);
  /** Length in sequence space. */
  len: Int32Array = new Int32Array(0);
  /** Time of the first transmission. */
  firstXmit: Float64Array = new Float64Array(0);
  /** Time of the latest transmission. */
  lastXmit: Float64Array = new Float64Array(0);
  /** Number of transmissions. */
  xmits: Int32Array = new Int32Array(0);
  /**
   * Transmission order of the latest transmission (a per-connection counter): orders
   * transmissions made at the same instant, which virtual time makes common.
   */
  order: Float64Array = new Float64Array(0);
  /** F_* bits. */
  flags: Uint8Array = new Uint8Array(0);
  /** Delivery-rate snapshot: C.delivered at the latest transmission. */
  delivered: Float64Array = new Float64Array(0);
  /** Delivery-rate snapshot: C.delivered_time at the latest transmission. */
  deliveredTime: Float64Array = new Float64Array(0);
  /** Delivery-rate snapshot: C.first_sent_time at the latest transmission. */
  firstSent: Float64Array = new Float64Array(0);

  /** Creates a ring with room for `capacity` records (rounded up to a power of two). */
  constructor(capacity: number) {
    let c = 8;
    while (c < capacity) c *= 2;
    this.alloc(c);
  }

  private alloc(c: number): void {
    this.capacity = c;
    this.mask = c - 1;
    this.start = new Uint32Array(c);
    this.len = new Int32Array(c);
    this.firstXmit = new Float64Array(c);
    this.lastXmit = new Float64Array(c);
    this.xmits = new Int32Array(c);
    this.order = new Float64Array(c);
    this.flags = new Uint8Array(c);
    this.delivered = new Float64Array(c);
    this.deliveredTime = new Float64Array(c);
    this.firstSent = new Float64Array(c);
  }

  /** Physical slot of logical record `i`. */
  slot(i: number): number {
    return (this.head + i) & this.mask;
  }

  /** Removes every record. */
  clear(): void {
    this.head = 0;
    this.count = 0;
  }

  /** Appends a record at the tail and returns its slot (fields other than start/len zeroed). */
  push(start: Seq, len: number, now: Instant): number {
    if (this.count === this.capacity) this.grow();
    const s = (this.head + this.count) & this.mask;
    this.count++;
    this.start[s] = start;
    this.len[s] = len;
    this.firstXmit[s] = now;
    this.lastXmit[s] = now;
    this.xmits[s] = 1;
    this.order[s] = 0;
    this.flags[s] = 0;
    this.delivered[s] = 0;
    this.deliveredTime[s] = 0;
    this.firstSent[s] = 0;
    return s;
  }

  /** Drops the oldest record. */
  popFront(): void {
    this.head = (this.head + 1) & this.mask;
    this.count--;
  }

  /**
   * Logical index of the record containing `seq`, given that record 0 starts at `una`;
   * -1 when `seq` is outside [una, una + total length).
   */
  find(una: Seq, seq: Seq): number {
    const off = (seq - una) | 0;
    if (off < 0 || this.count === 0) return -1;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (((this.start[this.slot(mid)]! - una) | 0) <= off) lo = mid;
      else hi = mid - 1;
    }
    const s = this.slot(lo);
    const rel = (this.start[s]! - una) | 0;
    return off < rel + this.len[s]! ? lo : -1;
  }

  /**
   * Splits logical record `i` so that a record boundary falls `offset` bytes into it
   * (0 < offset < len). Both halves keep every flag and timestamp.
   */
  split(i: number, offset: number): void {
    if (this.count === this.capacity) this.grow();
    for (let j = this.count - 1; j > i; j--) this.copy(this.slot(j), this.slot(j + 1));
    this.count++;
    const a = this.slot(i);
    const b = this.slot(i + 1);
    this.copy(a, b);
    this.start[b] = (this.start[a]! + offset) >>> 0;
    this.len[b] = this.len[a]! - offset;
    this.len[a] = offset;
  }

  private copy(from: number, to: number): void {
    this.start[to] = this.start[from]!;
    this.len[to] = this.len[from]!;
    this.firstXmit[to] = this.firstXmit[from]!;
    this.lastXmit[to] = this.lastXmit[from]!;
    this.xmits[to] = this.xmits[from]!;
    this.order[to] = this.order[from]!;
    this.flags[to] = this.flags[from]!;
    this.delivered[to] = this.delivered[from]!;
    this.deliveredTime[to] = this.deliveredTime[from]!;
    this.firstSent[to] = this.firstSent[from]!;
  }

  private grow(): void {
    const n = this.count;
    const start = this.start, len = this.len, fx = this.firstXmit, lx = this.lastXmit;
    const xm = this.xmits, fl = this.flags, dl = this.delivered, dt = this.deliveredTime;
    const od = this.order;
    const fs = this.firstSent;
    const slots: number[] = [];
    for (let i = 0; i < n; i++) slots.push(this.slot(i));
    this.alloc(this.capacity * 2);
    for (let i = 0; i < n; i++) {
      const s = slots[i]!;
      this.start[i] = start[s]!;
      this.len[i] = len[s]!;
      this.firstXmit[i] = fx[s]!;
      this.lastXmit[i] = lx[s]!;
      this.xmits[i] = xm[s]!;
      this.order[i] = od[s]!;
      this.flags[i] = fl[s]!;
      this.delivered[i] = dl[s]!;
      this.deliveredTime[i] = dt[s]!;
      this.firstSent[i] = fs[s]!;
    }
    this.head = 0;
  }
}
