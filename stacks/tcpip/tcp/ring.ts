/**
 * Byte ring buffer for TCP send and receive queues.
 *
 * The logical `capacity` (the socket buffer size) is fixed per connection, but the backing
 * storage grows on demand in powers of two, so thousands of idle connections cost no buffer
 * memory. In steady state (storage already grown) nothing is allocated but the source views
 * `Uint8Array.set` needs: one per contiguous piece copied, none when the source given already
 * is the piece (`writeRangeAt` copies a range of a packet without a view of the payload first),
 * and none for segments sent from a ring with a unit (`setUnit`, `copySegment`: storage in
 * whole MSS units, so segment positions repeat every lap and their views are kept). Reads of a
 * ring with a unit (`copyOut`) copy segment by segment as they were stored: with kept views
 * where a piece recurs, by hand where it does not (a peer's short segment).
 *
 * Besides the queued bytes `[0, length)`, the receive side writes out-of-order data at offsets
 * past `length` (`writeAt`) and later makes it part of the queue (`commit`).
 *
 * @module
 */

import { keptView, keptViews } from "../../link/kept_view.ts";

const EMPTY = new Uint8Array(0);
const EMPTY_ENDS = new Uint16Array(0);
const EMPTY_MISSED = new Int32Array(0);
const EMPTY_WORDS: Int32Array<ArrayBufferLike> = new Int32Array(0);

/**
 * Range views made by `writeRangeAt`, direct-mapped by where the range starts in its
 * ArrayBuffer (2 KiB granules: one slot per device frame of a UMEM-like region). Received
 * packets sit in a device's frames, and a bulk stream's data at the same range of each frame
 * every time, so a view is made once per frame, not once per segment (~100 B each). Keyed by
 * memory, not by the packet's view object: links that hand out a fresh view per packet over
 * reused memory (the simulator's slabs) hit too, and no weak table grows with such views.
 */
// 32768 slots: the NSM's default UMEM (2 x 8192 frames of 2 KiB) fits without two frames
// sharing a slot (4096 missed on every frame once the NSM cycled through them all).
const RANGE_SLOTS = 32768;
const rangeMemo = keptViews(RANGE_SLOTS);

function rangeView(src: Uint8Array, start: number, end: number): Uint8Array {
  return keptView(
    rangeMemo,
    ((src.byteOffset + start) >>> 11) & (RANGE_SLOTS - 1),
    src,
    start,
    end,
  );
}

/**
 * Ring storage given back by rings that no longer need it (`releaseIfEmpty`, growth), kept by
 * exact byte length for the next ring that needs that much: a connection-per-request load
 * made two or three new ArrayBuffers per connection, and V8 counts their backing stores as
 * external memory, which starts garbage collections of its own ("external memory pressure",
 * 6-20 ms scavenges in the NSM under TCP_CRR). At most `POOL_MAX_BYTES` in all; contents are
 * stale bytes of earlier connections, which a ring never reads before writing.
 */
const POOL_MAX_BYTES = 32 * 1024 * 1024;
const pool = new Map<number, ArrayBuffer[]>();
let pooledBytes = 0;
const poolCounters = { hits: 0, misses: 0, returned: 0, dropped: 0 };

function takeStorage(bytes: number): ArrayBuffer {
  const list = pool.get(bytes);
  if (list !== undefined && list.length > 0) {
    poolCounters.hits++;
    pooledBytes -= bytes;
    return list.pop()!;
  }
  poolCounters.misses++;
  return new ArrayBuffer(bytes);
}

function giveStorage(ab: ArrayBufferLike): void {
  const bytes = ab.byteLength;
  if (bytes === 0 || !(ab instanceof ArrayBuffer)) return;
  if (pooledBytes + bytes > POOL_MAX_BYTES) {
    poolCounters.dropped++;
    return;
  }
  let list = pool.get(bytes);
  if (list === undefined) pool.set(bytes, list = []);
  list.push(ab);
  pooledBytes += bytes;
  poolCounters.returned++;
}

/** The ring storage pool's counters (for tests and metrics). */
export function ringStoragePool(): {
  readonly pooledBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly returned: number;
  readonly dropped: number;
} {
  return { pooledBytes, ...poolCounters };
}

/** A growable circular byte queue with a fixed logical capacity. */
export class ByteRing {
  #buf: Uint8Array = EMPTY;
  /** The whole backing store: `#buf` plus `#spillBytes` after it. */
  #spill: Uint8Array = EMPTY;
  /**
   * Bytes of storage past its end that a write crossing the end goes to whole, then moved to
   * the front with `copyWithin` (which needs no view of the source): writes up to this size
   * make no view at the wrap. 0 (the default) for rings not fed in such pieces.
   */
  readonly #spillBytes: number;
  /** `#buf.buffer` (its byteOffset is always 0), kept so copies need no getter call. */
  #ab: ArrayBufferLike = EMPTY.buffer;
  #head = 0;
  #length = 0;
  #capacity: number;
  /** Storage granularity for `copySegment` (the sender's MSS), 0 when not set. */
  #unit = 0;
  /**
   * `copySegment`'s source views, two per storage unit (index 2k and 2k+1 for views starting in
   * unit k), made once and reused while the storage lives.
   */
  #views: (Uint8Array | undefined)[] = [];
  /**
   * Per storage unit (with a unit set), where the last segment stored ending in it ends, in
   * (0, unit] bytes from the unit's start; 0 when none is known. `copyOut` cuts its pieces
   * there, so each segment is copied as it was stored, with the same kept view every lap.
   */
  #ends = EMPTY_ENDS;
  /** Source views the copies made (kept-view misses, and every copy without a unit). */
  viewsMade = 0;
  /** `copyOut` pieces that missed their kept views and were copied by hand instead. */
  piecesLooped = 0;
  /** `#copyByHand`'s word views: of the storage, and of the last destination's buffer. */
  #src32 = EMPTY_WORDS;
  #dst32 = EMPTY_WORDS;
  #dstAb: ArrayBufferLike = EMPTY_WORDS.buffer;
  /**
   * Per storage unit, the last two pieces (`(offset in unit << 16) | length`, at 2k and
   * 2k + 1) that `copyOut` copied by hand because its kept views were for other pieces (see
   * `#copyPiece`).
   */
  #missed = EMPTY_MISSED;

  /**
   * A ring that holds at most `capacity` bytes; storage is allocated lazily. `spill`: the
   * largest write that crosses the storage's end without a view (extra storage; see
   * `#spillBytes`).
   */
  constructor(capacity: number, spill = 0) {
    this.#capacity = Math.max(0, Math.floor(capacity));
    this.#spillBytes = Math.max(0, Math.floor(spill));
  }

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Logical capacity in bytes. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Room left before the logical capacity. */
  get free(): number {
    return this.#capacity - this.#length;
  }

  /** The storage granularity (`setUnit`), 0 when none is set. */
  get unit(): number {
    return this.#unit;
  }

  /** Bytes of ring storage currently allocated (the spill area comes on top of it). */
  get allocated(): number {
    return this.#buf.length;
  }

  /** Changes the logical capacity; never below what is queued. */
  setCapacity(capacity: number): void {
    this.#capacity = Math.max(this.#length, Math.floor(capacity));
  }

  /**
   * Drops the storage when nothing is queued (idle connections give memory back). The caller
   * must know that no out-of-order bytes are stored past the end.
   */
  releaseIfEmpty(): void {
    if (this.#length === 0) {
      giveStorage(this.#ab);
      this.#buf = EMPTY;
      this.#spill = EMPTY;
      this.#ab = EMPTY.buffer;
      // The next byte keeps its offset on the unit grid (see `#ensure`).
      this.#head = this.#unit > 0 ? this.#head % this.#unit : 0;
      this.#views = [];
      this.#ends = EMPTY_ENDS;
      this.#missed = EMPTY_MISSED;
    }
  }

  /**
   * Sets the storage granularity to `unit` bytes (the segment size of the connection sending
   * from, or receiving into, this ring): storage grown from now on is a whole number of units,
   * so full-sized segments start at the same few positions on every lap and `copySegment` reuses
   * one source view per position instead of making one per segment, and `copyOut` (`read`) one
   * per whole unit. 0 turns it off.
   */
  setUnit(unit: number): void {
    const u = Math.max(0, Math.floor(unit));
    if (u === this.#unit) return;
    this.#unit = u;
    const size = this.#buf.length;
    this.#views = u > 0 && size > 0 ? new Array(2 * (Math.ceil(size / u) + 1)) : [];
    this.#ends = u > 0 && size > 0 ? new Uint16Array(Math.ceil(size / u)) : EMPTY_ENDS;
    this.#missed = u > 0 && size > 0 ? new Int32Array(2 * Math.ceil(size / u)) : EMPTY_MISSED;
  }

  #ensure(bytes: number): void {
    if (bytes <= this.#buf.length) return;
    let size = Math.max(this.#buf.length, 2048);
    while (size < bytes) size *= 2;
    size = Math.max(Math.min(size, this.#capacity), bytes);
    const unit = this.#unit;
    if (unit > 0) size = Math.ceil(size / unit) * unit;
    const ab = takeStorage(size + this.#spillBytes);
    const next = new Uint8Array(ab, 0, size);
    // Keep queued bytes and any out-of-order bytes past them: copy the whole old ring, unrolled.
    // With a unit, the head keeps its offset in its unit: stream bytes stay where they were on
    // the unit grid, so whole segments stored before and after the growth stay whole units.
    const old = this.#buf;
    const off = unit > 0 && this.#head % unit + old.length <= size ? this.#head % unit : 0;
    if (old.length > 0) {
      const first = old.subarray(this.#head);
      next.set(first, off);
      next.set(old.subarray(0, this.#head), off + first.length);
    }
    giveStorage(this.#ab);
    this.#buf = next;
    this.#spill = new Uint8Array(ab);
    this.#ab = ab;
    this.#head = off;
    this.#views = unit > 0 ? new Array(2 * (size / unit + 1)) : [];
    // Stored bytes moved with the head: their segment ends are not known any more.
    this.#ends = unit > 0 ? new Uint16Array(size / unit) : EMPTY_ENDS;
    this.#missed = unit > 0 ? new Int32Array(2 * (size / unit)) : EMPTY_MISSED;
  }

  /** Appends as much of `src` as fits; returns the number of bytes taken. */
  write(src: Uint8Array): number {
    const n = Math.min(src.length, this.free);
    if (n === 0) return 0;
    this.#store(this.#length, src, 0, n);
    this.#length += n;
    return n;
  }

  /**
   * Stores `src` at `offset` bytes past the end of the queue without queueing it (out-of-order
   * receive data). Bytes beyond the capacity are cut; returns the number stored.
   */
  writeAt(offset: number, src: Uint8Array): number {
    return this.writeRangeAt(offset, src, 0, src.length);
  }

  /**
   * `writeAt(offset, src.subarray(start, end))` without making that view (the receive path
   * copies a payload straight out of the packet).
   */
  writeRangeAt(offset: number, src: Uint8Array, start: number, end: number): number {
    const at = this.#length + offset;
    const n = Math.max(0, Math.min(end - start, this.#capacity - at));
    if (n === 0) return 0;
    this.#store(at, src, start, n);
    return n;
  }

  /** Copies `src[start, start + n)` to queue position `at` (storage grown to fit). */
  #store(at: number, src: Uint8Array, start: number, n: number): void {
    this.#ensure(at + n);
    const buf = this.#buf;
    const size = buf.length;
    const pos = (this.#head + at) % size;
    const unit = this.#unit;
    if (unit > 0) this.#markEnds(pos, n, size, unit);
    const first = Math.min(n, size - pos);
    const whole = start === 0 && n === src.length;
    if (first < n && whole && n - first <= this.#spillBytes) {
      // Crossing the end: the whole source past it, then the overflow to the front.
      this.#spill.set(src, pos);
      this.#spill.copyWithin(0, size, pos + n);
      return;
    }
    // A view of the source is needed for set(): none when the source is exactly the piece, the
    // kept one when it is a range of a buffer seen before (a received packet).
    if (first === n) {
      buf.set(whole ? src : rangeView(src, start, start + n), pos);
      return;
    }
    buf.set(src.subarray(start, start + first), pos);
    buf.set(src.subarray(start + first, start + n), 0);
  }

  /**
   * Records, for `copyOut`'s cuts, where a piece of `n` bytes stored at `pos` ends (`#ends`),
   * in the unit its last byte is in. A piece longer than a unit (a write, not a received
   * segment) counts as segments of a unit each ending at its end's phase, in every unit it
   * reaches after its first.
   */
  #markEnds(pos: number, n: number, size: number, unit: number): void {
    const ends = this.#ends;
    const end = pos + n > size ? pos + n - size : pos + n; // in (0, size]
    const k = ((end - 1) / unit) | 0;
    const e = end - k * unit; // in (0, unit]
    ends[k] = e;
    if (n <= unit) return;
    const units = ends.length;
    const first = (pos / unit) | 0;
    for (let j = k === 0 ? units - 1 : k - 1; j !== first; j = j === 0 ? units - 1 : j - 1) {
      ends[j] = e;
    }
    if (pos - first * unit < e) ends[first] = e;
  }

  /** Makes `n` bytes already stored by `writeAt(0, ...)` part of the queue. */
  commit(n: number): void {
    this.#length = Math.min(this.#capacity, this.#length + n);
  }

  /** Copies `n` queued bytes starting at `offset` into `dst` at `dstOffset`, not consuming. */
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, n: number): void {
    // As int32: a count derived from a double field (a caller's credit) would otherwise be a
    // double here, and each set() below would box its offset into a heap number.
    n |= 0;
    dstOffset |= 0;
    if (n <= 0) return;
    const size = this.#buf.length;
    let pos = (this.#head + offset) % size;
    const unit = this.#unit;
    if (unit > 0) {
      // Piece by piece, each with its kept view (`#copyPiece`, two per storage unit), cut
      // where the segments stored there end (`#ends`). A stream of full-sized segments is
      // stored unit by unit, so its reads copy whole units. One run off the grid by a peer's
      // short segment stores each segment across two units: its reads copy whole segments,
      // the same view for each unit every lap. (Copied in one piece off
      // the grid, each read made a view: 230 KB/s of an NSM's garbage receiving 4.7 Gbit/s,
      // sampled with gc_nsm.ts --sample. Cut at the phase of the queue's end instead, bytes
      // queued before a short segment were cut at the phase after it: ~3,000 views a second.)
      const ends = this.#ends;
      while (n > 0) {
        const k = (pos / unit) | 0;
        const off = pos - k * unit;
        const e = ends[k]!;
        let cut = unit - off; // not known: to the unit's end
        if (e > off) cut = e - off;
        else {
          // The segment goes on into the next unit (the first one past the storage's end)
          // and ends there, if it is no longer than a unit.
          const e1 = ends[k + 1 < ends.length ? k + 1 : 0]!;
          if (e1 > 0 && e1 <= off) cut += e1;
        }
        const len = Math.min(n, cut, size - pos);
        this.#copyPiece(pos, len, dst, dstOffset);
        dstOffset += len;
        n -= len;
        pos += len;
        if (pos === size) pos = 0;
      }
      return;
    }
    const first = Math.min(n, size - pos);
    // set() needs a source view: one per contiguous piece (the only allocation of a copy).
    // The constructor over the known buffer is ~30% cheaper than subarray() (no species lookup).
    this.viewsMade++;
    dst.set(new Uint8Array(this.#ab, pos, first), dstOffset);
    if (first < n) dst.set(new Uint8Array(this.#ab, 0, n - first), dstOffset + first);
  }

  /**
   * `copyOut` for segments sent from the ring: the source views come from a cache keyed by
   * storage position (see `setUnit`), so a steady sender copies without allocating. A miss
   * makes the view and keeps it (two per storage unit, the older one replaced). With a unit, it
   * may write up to the unit's end, past `n` bytes, when `dst` has room there.
   */
  copySegment(offset: number, dst: Uint8Array, dstOffset: number, n: number): void {
    if (n <= 0) return;
    const size = this.#buf.length;
    const pos = (this.#head + offset) % size;
    const unit = this.#unit;
    if (unit > 0) {
      // A segment that ends inside its storage unit, into a destination with room past it (a
      // whole frame buffer): copy up to the unit's end. The view then depends on the position
      // only, so a short segment (a write's tail) reuses the unit's view instead of making one
      // for its length; the bytes past the segment land where the caller does not send them.
      // (Storage grown before the unit was set need not be whole units: stay inside it.)
      const toEnd = unit - pos % unit;
      if (n <= toEnd && pos + toEnd <= size && dstOffset + toEnd <= dst.length) {
        dst.set(this.#segmentView(pos, toEnd), dstOffset);
        return;
      }
    }
    const first = Math.min(n, size - pos);
    dst.set(this.#segmentView(pos, first), dstOffset);
    if (first < n) dst.set(this.#segmentView(0, n - first), dstOffset + first);
  }

  /**
   * Bytes from queue position `offset` to the next storage-unit boundary (a whole unit when
   * it is on one); Infinity when no unit is set or no storage exists.
   */
  toUnitBoundary(offset: number): number {
    const unit = this.#unit;
    const size = this.#buf.length;
    if (unit === 0 || size === 0) return Number.POSITIVE_INFINITY;
    return unit - ((this.#head + offset) % size) % unit;
  }

  /**
   * Copies storage `[pos, pos + len)` (one unit's piece, see `copyOut`) to `dst` at
   * `dstOffset`: with the piece's kept view when it has one. On a miss it makes and keeps one
   * while the unit has a free slot, or when the same piece missed there before (it recurs:
   * the stream's phase moved for good, and the view pays off next lap); otherwise it copies
   * it by hand (`#copyByHand`), which makes no view. A peer's short segments (the tail of an
   * iperf3 write, ~500/s at 4.7 Gbit/s) land at new places each time: a view for each was
   * garbage.
   */
  #copyPiece(pos: number, len: number, dst: Uint8Array, dstOffset: number): void {
    const k = 2 * ((pos / this.#unit) | 0);
    const v = this.#kept(k, pos, len);
    if (v !== undefined) {
      dst.set(v, dstOffset);
      return;
    }
    // A piece not among the unit's last two misses (once its slots are full): copied by hand,
    // remembered; kept when it comes again (a lap later). Two, as a unit holds two pieces
    // off the grid (a segment's tail and the next one's start).
    const key = ((pos - (k >> 1) * this.#unit) << 16) | len;
    const missed = this.#missed;
    if (this.#views[k + 1] !== undefined && missed[k] !== key && missed[k + 1] !== key) {
      missed[k + 1] = missed[k]!;
      missed[k] = key;
      this.piecesLooped++;
      this.#copyByHand(pos, len, dst, dstOffset);
      return;
    }
    dst.set(this.#keep(k, pos, len), dstOffset);
  }

  /**
   * The kept view of storage `[pos, pos + len)` when one of slots `k`, `k + 1` (its unit's)
   * holds it, moved to the front; else undefined.
   */
  #kept(k: number, pos: number, len: number): Uint8Array | undefined {
    const t = this.#views;
    const a = t[k];
    if (a !== undefined && a.byteOffset === pos && a.length === len) return a;
    const b = t[k + 1];
    if (b !== undefined && b.byteOffset === pos && b.length === len) {
      t[k] = b; // most recent first
      t[k + 1] = a;
      return b;
    }
    return undefined;
  }

  /** A new view of storage `[pos, pos + len)`, kept in slot `k` (the older one drops out). */
  #keep(k: number, pos: number, len: number): Uint8Array {
    const t = this.#views;
    const v = new Uint8Array(this.#ab, pos, len);
    this.viewsMade++;
    t[k + 1] = t[k];
    t[k] = v;
    return v;
  }

  /**
   * Copies storage `[pos, pos + len)` to `dst` at `dstOffset` without a view of the source: 4
   * bytes at a time through Int32Arrays of both buffers when both ends are 4-aligned (a
   * stream of segments whose sizes are multiples of 4, into a guest's chunk), else byte by
   * byte, ~4x slower (bench/ring_bench.ts: 2.1 against 7.7 us a round of 12 KB).
   */
  #copyByHand(pos: number, len: number, dst: Uint8Array, dstOffset: number): void {
    const src = this.#buf;
    const at = dst.byteOffset + dstOffset;
    let i = 0;
    if (((pos | at) & 3) === 0 && len >= 64) {
      const ab = dst.buffer;
      let d32 = this.#dst32;
      if (this.#dstAb !== ab) {
        d32 = this.#dst32 = new Int32Array(ab, 0, ab.byteLength >> 2);
        this.#dstAb = ab;
      }
      let s32 = this.#src32;
      if (s32.buffer !== this.#ab) {
        s32 = this.#src32 = new Int32Array(this.#ab, 0, this.#ab.byteLength >> 2);
      }
      const words = len >> 2;
      const s0 = pos >> 2, d0 = at >> 2;
      for (let w = 0; w < words; w++) d32[d0 + w] = s32[s0 + w]!;
      i = words << 2;
    }
    for (; i < len; i++) dst[dstOffset + i] = src[pos + i]!;
  }

  #segmentView(pos: number, len: number): Uint8Array {
    const unit = this.#unit;
    if (unit === 0) {
      this.viewsMade++;
      return new Uint8Array(this.#ab, pos, len);
    }
    const k = 2 * ((pos / unit) | 0);
    return this.#kept(k, pos, len) ?? this.#keep(k, pos, len);
  }

  /** Consumes up to `dst.length` bytes into `dst`; returns the number read. */
  read(dst: Uint8Array): number {
    const n = Math.min(dst.length, this.#length);
    this.copyOut(0, dst, 0, n);
    this.discard(n);
    return n;
  }

  /**
   * `read(dst)` of at most `max` bytes, except that with a unit set a read that `dst` (or
   * `max`) cuts short ends where a segment stored there ends when it can (less than a unit
   * shorter; see `copyOut`). The next read then starts where a segment starts and copies
   * whole segments with kept views. A stream reader (TCP's receive queue) takes fewer bytes
   * now and the rest with the next read.
   */
  readAligned(dst: Uint8Array, max: number = dst.length): number {
    let n = Math.min(max < dst.length ? max : dst.length, this.#length) | 0;
    const unit = this.#unit;
    if (unit > 0 && n < this.#length && n > unit) {
      // Cut where a segment ends (see copyOut): the next read starts on the segment grid.
      const past = this.#pastSegmentEnd((this.#head + n) % this.#buf.length);
      if (past < n) n -= past;
    }
    this.copyOut(0, dst, 0, n);
    this.discard(n);
    return n;
  }

  /**
   * With a unit set and nothing queued, moves the (empty) queue's start to the next unit
   * boundary: a receiver whose peer sent a short segment (the stream then runs off the grid)
   * stores the following full segments as whole units again. The caller must know that no
   * out-of-order bytes are stored past the end. Returns true when the start moved.
   */
  alignEmpty(): boolean {
    const unit = this.#unit;
    const size = this.#buf.length;
    if (unit === 0 || size === 0 || this.#length !== 0) return false;
    const off = this.#head % unit;
    if (off === 0) return false;
    const next = this.#head - off + unit;
    this.#head = next >= size ? 0 : next;
    return true;
  }

  /**
   * Where the queue ends within its storage unit (0 without a unit, or on the grid): where a
   * stream of full-sized segments, run off the grid by a short one, ends each segment.
   */
  /**
   * Bytes from the last segment end (`#ends`) at or before storage position `pos` to `pos`,
   * less than a unit; to the unit boundary before `pos` when no such end is known.
   */
  #pastSegmentEnd(pos: number): number {
    const unit = this.#unit;
    const ends = this.#ends;
    const end = pos === 0 ? this.#buf.length : pos; // in (0, size]
    const k = ((end - 1) / unit) | 0;
    const off = end - k * unit; // in (0, unit]
    const e = ends[k]!;
    if (e > 0 && e <= off) return off - e;
    const e0 = ends[k > 0 ? k - 1 : ends.length - 1]!;
    return e0 > off ? off + unit - e0 : off % unit;
  }

  /** Drops `n` bytes from the front of the queue. */
  discard(n: number): void {
    const k = Math.min(n, this.#length);
    if (k <= 0) return;
    this.#head = (this.#head + k) % this.#buf.length;
    this.#length -= k;
  }
}
