/**
 * The in-flight segment records of one connection, ordered by sequence number and covering
 * [snd_una, snd_nxt) without gaps. Structure of arrays in ONE Float64Array: field `f` of the
 * record in physical slot `s` lives at `a[o<f> + s]`, each field a block of `capacity` slots
 * (one typed array per connection instead of ten keeps an idle connection small).
 * Records are reused; the ring only allocates when a window outgrows it (doubling), and
 * splitting a record (partial SACK, partial retransmission) shifts the tail by one slot.
 *
 * Besides the sequence order, records still in flight (not SACKed, not lost-and-waiting) are
 * threaded on a doubly linked list in transmission order (RFC 8985's time-ordered list), so
 * RACK visits only the in-flight records sent before the newest delivered one.
 *
 * @module
 */

import type { Instant } from "../../../time.ts";
import type { Seq } from "../seq.ts";
import { AS_DOUBLE } from "../f64.ts";

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
/** Record flag: on the transmission-ordered in-flight list (see `SegmentRing.listHead`). */
export const F_INLIST = 64;

/** Number of per-record fields. */
const FIELDS = 12;

/** Ring of segment records. Logical index 0 is the oldest (snd_una). */
export class SegmentRing {
  /** Slots available before growing. */
  capacity = 0;
  /** Number of records. */
  count = 0;
  private mask = 0;
  private head = 0;
  /** All fields; the first block (offset 0) is each record's first sequence number. */
  a: Float64Array = new Float64Array(0);
  /** Offset of the length block (sequence space). */
  oLen = 0;
  /** Offset of the first-transmission-time block. */
  oFirst = 0;
  /** Offset of the latest-transmission-time block. */
  oLast = 0;
  /** Offset of the transmission-count block. */
  oXmits = 0;
  /** Offset of the F_* flag block. */
  oFlags = 0;
  /** Offset of the delivery-rate snapshot C.delivered at the latest transmission. */
  oDeliv = 0;
  /** Offset of the delivery-rate snapshot C.delivered_time at the latest transmission. */
  oDelivT = 0;
  /** Offset of the delivery-rate snapshot C.first_sent_time at the latest transmission. */
  oFirstSent = 0;
  /**
   * Offset of the transmission order of the latest transmission (a per-connection counter
   * that orders transmissions made at the same instant, which virtual time makes common).
   */
  oOrder = 0;
  /** Offset of the previous-in-transmission-order slot (-1 = none). */
  oPrev = 0;
  /** Offset of the next-in-transmission-order slot (-1 = none). */
  oNext = 0;
  /** Slot of the oldest transmission on the in-flight list, -1 when empty. */
  listHead = AS_DOUBLE;
  /** Slot of the newest transmission on the in-flight list, -1 when empty. */
  listTail = AS_DOUBLE;

  /** Creates a ring with room for `capacity` records (rounded up to a power of two). */
  constructor(capacity: number) {
    // Double fields from the start (see f64.ts), then their real start values.
    this.listHead = -1;
    this.listTail = -1;
    let c = 4;
    while (c < capacity) c *= 2;
    this.alloc(c);
  }

  private alloc(c: number): void {
    this.capacity = c;
    this.mask = c - 1;
    this.a = new Float64Array(c * FIELDS);
    this.oLen = c;
    this.oFirst = 2 * c;
    this.oLast = 3 * c;
    this.oXmits = 4 * c;
    this.oFlags = 5 * c;
    this.oDeliv = 6 * c;
    this.oDelivT = 7 * c;
    this.oFirstSent = 8 * c;
    this.oOrder = 9 * c;
    this.oPrev = 10 * c;
    this.oNext = 11 * c;
  }

  /** Physical slot of logical record `i`. */
  slot(i: number): number {
    return (this.head + i) & this.mask;
  }

  /** First sequence number of the record in slot `s`. */
  start(s: number): Seq {
    return this.a[s]!;
  }

  /** Length of the record in slot `s`. */
  len(s: number): number {
    return this.a[this.oLen + s]!;
  }

  /** Flags of the record in slot `s`. */
  flags(s: number): number {
    return this.a[this.oFlags + s]!;
  }

  /** Removes every record. */
  clear(): void {
    this.head = 0;
    this.count = 0;
    this.listHead = this.listTail = -1;
  }

  /** Releases a large array once the ring is empty (a burst is over); no-op otherwise. */
  shrink(capacity: number): void {
    if (this.count !== 0 || this.capacity <= capacity) return;
    let c = 4;
    while (c < capacity) c *= 2;
    this.alloc(c);
    this.clear();
  }

  /** True when slot `s` is on the in-flight list. */
  inList(s: number): boolean {
    return (this.a[this.oFlags + s]! & F_INLIST) !== 0;
  }

  /** Appends slot `s` (not on the list) as the newest transmission. */
  linkTail(s: number): void {
    const a = this.a;
    a[this.oFlags + s] = a[this.oFlags + s]! | F_INLIST;
    a[this.oPrev + s] = this.listTail;
    a[this.oNext + s] = -1;
    if (this.listTail >= 0) a[this.oNext + this.listTail] = s;
    else this.listHead = s;
    this.listTail = s;
  }

  /** Inserts slot `s` (not on the list) right after slot `p` (on the list), or first if p < 0. */
  linkAfter(p: number, s: number): void {
    if (p >= 0 && p === this.listTail) {
      this.linkTail(s);
      return;
    }
    const a = this.a;
    const n = p >= 0 ? a[this.oNext + p]! : this.listHead;
    a[this.oFlags + s] = a[this.oFlags + s]! | F_INLIST;
    a[this.oPrev + s] = p;
    a[this.oNext + s] = n;
    if (p >= 0) a[this.oNext + p] = s;
    else this.listHead = s;
    if (n >= 0) a[this.oPrev + n] = s;
    else this.listTail = s;
  }

  /** Takes slot `s` off the in-flight list (no-op when it is not on it). */
  unlink(s: number): void {
    const a = this.a;
    const f = a[this.oFlags + s]!;
    if (!(f & F_INLIST)) return;
    a[this.oFlags + s] = f & ~F_INLIST;
    const p = a[this.oPrev + s]!;
    const n = a[this.oNext + s]!;
    if (p >= 0) a[this.oNext + p] = n;
    else this.listHead = n;
    if (n >= 0) a[this.oPrev + n] = p;
    else this.listTail = p;
  }

  /** Next slot after `s` in transmission order, -1 at the end. */
  listNext(s: number): number {
    return this.a[this.oNext + s]!;
  }

  /**
   * Appends a record at the tail and returns its slot (other fields zeroed). `start` may be
   * given as int32 (stored mod 2^32): the engine passes it so, because a sequence number above
   * 2^31 passed to this call (too large to inline) would be boxed as a heap number.
   */
  push(start: Seq, len: number, now: Instant): number {
    if (this.count === this.capacity) this.grow();
    const s = (this.head + this.count) & this.mask;
    this.count++;
    const a = this.a;
    a[s] = start >>> 0;
    a[this.oLen + s] = len;
    a[this.oFirst + s] = now;
    a[this.oLast + s] = now;
    a[this.oXmits + s] = 1;
    a[this.oFlags + s] = 0;
    a[this.oDeliv + s] = 0;
    a[this.oDelivT + s] = 0;
    a[this.oFirstSent + s] = 0;
    a[this.oOrder + s] = 0;
    a[this.oPrev + s] = -1;
    a[this.oNext + s] = -1;
    return s;
  }

  /**
   * Appends a record at the tail and returns its slot, writing no field: the caller fills all
   * of them (the engine's send path writes each field once instead of zeroing them first).
   */
  pushSlot(): number {
    if (this.count === this.capacity) this.grow();
    const s = (this.head + this.count) & this.mask;
    this.count++;
    return s;
  }

  /** Drops the oldest record (taking it off the in-flight list first). */
  popFront(): void {
    this.unlink(this.head);
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
    const a = this.a;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (((a[this.slot(mid)]! - una) | 0) <= off) lo = mid;
      else hi = mid - 1;
    }
    const s = this.slot(lo);
    const rel = (a[s]! - una) | 0;
    return off < rel + a[this.oLen + s]! ? lo : -1;
  }

  /**
   * Splits logical record `i` so that a record boundary falls `offset` bytes into it
   * (0 < offset < len). Both halves keep every flag and timestamp.
   */
  split(i: number, offset: number): void {
    if (this.count === this.capacity) this.grow();
    for (let j = this.count - 1; j > i; j--) this.move(this.slot(j), this.slot(j + 1));
    this.count++;
    const s = this.slot(i);
    const t = this.slot(i + 1);
    this.copy(s, t);
    const a = this.a;
    a[t] = (a[s]! + offset) >>> 0;
    a[this.oLen + t] = a[this.oLen + s]! - offset;
    a[this.oLen + s] = offset;
    if (a[this.oFlags + s]! & F_INLIST) {
      // The second half was sent together with the first: it follows it in the list.
      a[this.oFlags + t] = a[this.oFlags + t]! & ~F_INLIST;
      this.linkAfter(s, t);
    }
  }

  private copy(from: number, to: number): void {
    const a = this.a;
    const c = this.capacity;
    for (let k = 0; k < FIELDS * c; k += c) a[k + to] = a[k + from]!;
  }

  /** Moves a record to an empty slot, keeping its list neighbours pointing at it. */
  private move(from: number, to: number): void {
    this.copy(from, to);
    const a = this.a;
    if (!(a[this.oFlags + to]! & F_INLIST)) return;
    const p = a[this.oPrev + to]!;
    const n = a[this.oNext + to]!;
    if (p >= 0) a[this.oNext + p] = to;
    else this.listHead = to;
    if (n >= 0) a[this.oPrev + n] = to;
    else this.listTail = to;
  }

  private grow(): void {
    const n = this.count;
    const old = this.a;
    const oc = this.capacity;
    const om = oc - 1;
    const head = this.head;
    this.alloc(oc * 2);
    const c = this.capacity;
    const a = this.a;
    for (let f = 0; f < FIELDS; f++) {
      for (let i = 0; i < n; i++) a[f * c + i] = old[f * oc + ((head + i) & om)]!;
    }
    // Slots were renumbered: old slot x is now (x - head) & om.
    for (let i = 0; i < n; i++) {
      const p = a[this.oPrev + i]!;
      const q = a[this.oNext + i]!;
      if (p >= 0) a[this.oPrev + i] = (p - head) & om;
      if (q >= 0) a[this.oNext + i] = (q - head) & om;
    }
    if (this.listHead >= 0) this.listHead = (this.listHead - head) & om;
    if (this.listTail >= 0) this.listTail = (this.listTail - head) & om;
    this.head = 0;
  }
}
