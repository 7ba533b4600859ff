/**
 * IP fragment reassembly (IPv4 RFC 791, IPv6 RFC 8200 section 4.5), keyed by
 * (version, src, dst, protocol, identification).
 *
 * Defences, because reassembly is a classic memory and CPU attack surface:
 * - a fixed number of datagrams in progress and a bound on the payload bytes they hold; a new
 *   datagram evicts the oldest ones (counted "reassembly-full") rather than being refused, so a
 *   flood of never-completed datagrams cannot lock out real traffic for the whole timeout;
 * - at most `maxFragments` fragments per datagram;
 * - any overlap other than an exact duplicate drops the whole datagram and every later fragment
 *   of it until its timeout (RFC 5722 for IPv6, applied to IPv4 too: overlaps only serve
 *   evasion attacks);
 * - a timeout (30 s default; RFC 8200 says 60 s, Linux uses 30 s for both) after the first
 *   fragment.
 *
 * Buffers are allocated once per slot on first use (64 KiB + header room) and reused, so
 * steady-state reassembly allocates nothing. The completed packet is returned as a view of the
 * slot buffer that stays valid until the next call.
 *
 * Not done: ICMP "fragment reassembly time exceeded" on timeout (optional per RFC 792/4443).
 *
 * @module
 */

import type { Duration, Instant } from "../../time.ts";
import { NEVER, SECOND } from "../../time.ts";
import type { DropReason } from "../wire/drop.ts";

/** Tunables. */
export interface ReassemblyConfig {
  /** Drop an incomplete datagram this long after its first fragment (30 s). */
  timeout?: Duration;
  /** Datagrams in progress at once (16). */
  maxDatagrams?: number;
  /** Payload bytes held across all datagrams in progress (256 KiB). */
  maxBytes?: number;
  /** Fragments per datagram (64). */
  maxFragments?: number;
}

/** Room before the payload for the first fragment's header (IPv4 max 60, IPv6 fixed 40). */
const HEADROOM = 60;
const MAX_PAYLOAD = 65535;

class Slot {
  inUse = false;
  /** True after an overlap: later fragments are dropped until the timeout. */
  dead = false;
  version: 4 | 6 = 4;
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  protocol = 0;
  id = 0;
  deadline: Instant = 0;
  started: Instant = 0;
  /** Payload length once the last fragment arrived, -1 before. */
  total = -1;
  received = 0;
  headerLen = 0;
  haveFirst = false;
  buf: Uint8Array | null = null;
  /** Sorted [start, end) pairs of received payload ranges. */
  readonly ranges: Int32Array;
  count = 0;

  constructor(maxFragments: number) {
    this.ranges = new Int32Array(2 * maxFragments);
  }

  matches(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    id: number,
  ): boolean {
    if (this.version !== version || this.id !== id || this.protocol !== protocol) return false;
    for (let i = 0; i < src.length; i++) {
      if (this.src[i] !== src[i] || this.dst[i] !== dst[i]) return false;
    }
    return true;
  }
}

/** Counters of reassembly activity. */
export interface ReassemblyStats {
  fragments: number;
  reassembled: number;
  timedOut: number;
  evicted: number;
  overlaps: number;
}

/** The reassembly buffer of one interface. */
export class Reassembler {
  readonly timeout: Duration;
  readonly maxBytes: number;
  /** Activity counters. */
  readonly stats: ReassemblyStats = {
    fragments: 0,
    reassembled: 0,
    timedOut: 0,
    evicted: 0,
    overlaps: 0,
  };
  private readonly slots: Slot[] = [];
  private readonly drop: (reason: DropReason) => void;
  private bytes = 0;
  private lastHeaderLen = 0;
  private lastTotal = 0;
  private lastBuf: Uint8Array | null = null;

  constructor(drop: (reason: DropReason) => void, config: ReassemblyConfig = {}) {
    this.drop = drop;
    this.timeout = config.timeout ?? 30 * SECOND;
    this.maxBytes = config.maxBytes ?? 256 * 1024;
    const n = config.maxDatagrams ?? 16;
    const f = config.maxFragments ?? 64;
    for (let i = 0; i < n; i++) this.slots.push(new Slot(f));
  }

  /** Payload bytes currently held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Datagrams currently in progress (including dead ones waiting out their timeout). */
  get inProgress(): number {
    let n = 0;
    for (const s of this.slots) if (s.inUse) n++;
    return n;
  }

  /**
   * Offers one fragment. `offset` is in bytes, `more` the MF / M flag, `header` the fragment's
   * IP header (kept from the first fragment so the result can be quoted in ICMP errors), and
   * `payload` the fragment's data. Returns the reassembled payload once the datagram is
   * complete (a view valid until the next call; `lastPacket` then holds header + payload),
   * else null. Malformed and excess fragments are dropped and counted, never thrown.
   */
  add(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    id: number,
    offset: number,
    more: boolean,
    header: Uint8Array,
    payload: Uint8Array,
    now: Instant,
  ): Uint8Array | null {
    this.stats.fragments++;
    const len = payload.length;
    const end = offset + len;
    if (more && (len === 0 || (len & 7) !== 0)) {
      // Every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200 4.5).
      this.drop("bad-length");
      return null;
    }
    if (end > MAX_PAYLOAD || header.length > HEADROOM) {
      this.drop("fragment-too-big");
      return null;
    }
    let s = this.find(version, src, dst, protocol, id);
    if (s !== null && s.dead) {
      this.drop("fragment-overlap");
      return null;
    }
    if (s === null) {
      s = this.start(version, src, dst, protocol, id, now);
      if (s === null) {
        this.drop("reassembly-full");
        return null;
      }
    }
    // Exact duplicates are dropped quietly; any other overlap kills the datagram.
    for (let i = 0; i < s.count; i++) {
      const a = s.ranges[2 * i]!, b = s.ranges[2 * i + 1]!;
      if (offset < b && end > a) {
        if (a === offset && b === end) {
          this.drop("fragment-duplicate");
          return null;
        }
        return this.kill(s);
      }
    }
    if (!more) {
      // A second, different end, or data already held past the end: inconsistent datagram.
      if (s.total >= 0 && s.total !== end) return this.kill(s);
      if (s.count > 0 && s.ranges[2 * s.count - 1]! > end) return this.kill(s);
      s.total = end;
    } else if (s.total >= 0 && end > s.total) {
      return this.kill(s);
    }
    if (s.count * 2 >= s.ranges.length) {
      this.free(s, "fragment-too-big");
      return null;
    }
    if (this.bytes + len > this.maxBytes) {
      this.evictFor(len, s);
      if (this.bytes + len > this.maxBytes) {
        this.drop("reassembly-full");
        return null;
      }
    }
    const buf = s.buf ??= new Uint8Array(HEADROOM + MAX_PAYLOAD);
    buf.set(payload, HEADROOM + offset);
    if (offset === 0) {
      s.haveFirst = true;
      s.headerLen = header.length;
      buf.set(header, HEADROOM - header.length);
    }
    // Insert the range keeping the list sorted by start.
    let at = s.count;
    while (at > 0 && s.ranges[2 * (at - 1)]! > offset) {
      s.ranges[2 * at] = s.ranges[2 * (at - 1)]!;
      s.ranges[2 * at + 1] = s.ranges[2 * (at - 1) + 1]!;
      at--;
    }
    s.ranges[2 * at] = offset;
    s.ranges[2 * at + 1] = end;
    s.count++;
    s.received += len;
    this.bytes += len;
    if (s.total < 0 || s.received !== s.total || !s.haveFirst) return null;
    // Complete: no overlaps and the byte count matches, so the ranges tile [0, total).
    this.stats.reassembled++;
    this.lastBuf = buf;
    this.lastHeaderLen = s.headerLen;
    this.lastTotal = s.total;
    this.free(s, null);
    return buf.subarray(HEADROOM, HEADROOM + this.lastTotal);
  }

  /**
   * The last reassembled packet: the first fragment's header (fragment fields unchanged)
   * followed by the whole payload. Valid until the next `add`.
   */
  get lastPacket(): Uint8Array {
    if (this.lastBuf === null) return new Uint8Array(0);
    return this.lastBuf.subarray(HEADROOM - this.lastHeaderLen, HEADROOM + this.lastTotal);
  }

  /** Drops timed-out datagrams (counted "fragment-timeout"). */
  poll(now: Instant): void {
    // Indexed loops here and in pollAt (called every driver pass): an array iterator is an
    // allocation wherever the loop runs unoptimized.
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (!s.inUse || now < s.deadline) continue;
      if (!s.dead) {
        this.stats.timedOut++;
        this.free(s, "fragment-timeout");
      } else this.free(s, null);
    }
  }

  /** The earliest reassembly deadline, or NEVER. */
  pollAt(): Instant {
    let at = NEVER;
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.inUse && s.deadline < at) at = s.deadline;
    }
    return at;
  }

  private find(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    id: number,
  ): Slot | null {
    for (const s of this.slots) {
      if (s.inUse && s.matches(version, src, dst, protocol, id)) return s;
    }
    return null;
  }

  private start(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    id: number,
    now: Instant,
  ): Slot | null {
    let s: Slot | null = null;
    for (const c of this.slots) {
      if (!c.inUse) {
        s = c;
        break;
      }
    }
    if (s === null) {
      // All slots busy: evict the oldest datagram.
      let oldest: Slot | null = null;
      for (const c of this.slots) if (oldest === null || c.started < oldest.started) oldest = c;
      if (oldest === null) return null;
      this.stats.evicted++;
      this.free(oldest, oldest.dead ? null : "reassembly-full");
      s = oldest;
    }
    s.inUse = true;
    s.dead = false;
    s.version = version;
    s.src.fill(0);
    s.dst.fill(0);
    s.src.set(src);
    s.dst.set(dst);
    s.protocol = protocol;
    s.id = id;
    s.started = now;
    s.deadline = now + this.timeout;
    s.total = -1;
    s.received = 0;
    s.headerLen = 0;
    s.haveFirst = false;
    s.count = 0;
    return s;
  }

  /** Frees the oldest other datagrams until `len` more bytes fit. */
  private evictFor(len: number, keep: Slot): void {
    while (this.bytes + len > this.maxBytes) {
      let oldest: Slot | null = null;
      for (const c of this.slots) {
        if (c.inUse && c !== keep && c.received > 0) {
          if (oldest === null || c.started < oldest.started) oldest = c;
        }
      }
      if (oldest === null) return;
      this.stats.evicted++;
      this.free(oldest, "reassembly-full");
    }
  }

  private kill(s: Slot): null {
    this.stats.overlaps++;
    this.drop("fragment-overlap");
    this.bytes -= s.received;
    s.received = 0;
    s.count = 0;
    s.dead = true;
    return null;
  }

  private free(s: Slot, reason: DropReason | null): void {
    if (reason !== null) this.drop(reason);
    this.bytes -= s.received;
    s.received = 0;
    s.count = 0;
    s.inUse = false;
    s.dead = false;
  }
}
