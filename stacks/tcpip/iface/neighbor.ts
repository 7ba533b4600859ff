/**
 * The neighbour cache shared by ARP (IPv4) and NDP (IPv6): IP address -> Ethernet address.
 *
 * A simplified RFC 4861 section 7.3 state machine, used for both families:
 *
 * ```
 *   (new, packet to send) --> INCOMPLETE --answer--> REACHABLE --reachableTime--> STALE
 *        INCOMPLETE: a solicitation every retransInterval, maxProbes then FAIL (queue dropped)
 *        STALE: still used; the first use starts a DELAY of delayFirstProbe (upper-layer
 *               confirmation or an answer cancels it), then unicast probes (PROBE);
 *               maxProbes unanswered probes delete the entry; an unused STALE entry is
 *               deleted after staleTimeout.
 * ```
 *
 * Packets sent while an address resolves wait in a bounded per-entry queue whose bytes live in
 * one preallocated slot pool, so a burst towards a dead neighbour cannot eat memory; the oldest
 * queued packet of the entry is dropped (and counted) when its queue or the pool is full.
 * Entries are preallocated too and found through a hash of the raw address bytes, so lookups
 * on the send path allocate nothing. When the table is full the least recently used entry is
 * evicted (packets it queued are counted as dropped).
 *
 * The cache never builds frames itself: it asks its `NeighborSink` to send a solicitation or
 * to transmit a queued packet, so ARP/NDP framing stays in the interface.
 *
 * @module
 */

import type { Duration, Instant } from "../../time.ts";
import { NEVER, SECOND } from "../../time.ts";

/**
 * Entry states (RFC 4861 names). DELAY and PROBE are kept as STALE with `delayUntil` / `probes`
 * set, since the entry is used the same way in all three.
 */
export type NeighborState = "incomplete" | "reachable" | "stale";

/** Reasons the neighbour cache drops a packet. */
export type NeighborDropReason =
  | "neighbor-queue-full"
  | "neighbor-unreachable"
  | "neighbor-evicted"
  | "neighbor-packet-too-big";

/** What the cache asks of the interface that owns it. */
export interface NeighborSink {
  /**
   * Sends an ARP request / Neighbor Solicitation for `target` (4 or 16 bytes). `unicast` is
   * the cached MAC for a reachability probe, or null for a broadcast/multicast resolution.
   */
  solicit(version: 4 | 6, target: Uint8Array, unicast: Uint8Array | null, now: Instant): void;
  /** Transmits an IP packet that waited for resolution, now that `mac` is known. */
  transmitQueued(version: 4 | 6, packet: Uint8Array, mac: Uint8Array, now: Instant): void;
  /** Counts one dropped packet. */
  drop(reason: NeighborDropReason): void;
}

/** Tunables; defaults follow RFC 4861 section 10 where it has one. */
export interface NeighborConfig {
  /** How long a confirmed entry stays REACHABLE (RFC 4861 REACHABLE_TIME, 30 s). */
  reachableTime?: Duration;
  /** Gap between solicitations for one entry (RFC 4861 RETRANS_TIMER, 1 s). */
  retransInterval?: Duration;
  /** Wait before probing a STALE entry that was used (DELAY_FIRST_PROBE_TIME, 5 s). */
  delayFirstProbe?: Duration;
  /** Solicitations before resolution fails (MAX_MULTICAST_SOLICIT, 3). */
  maxProbes?: number;
  /** An unused STALE entry is deleted after this long (60 s). */
  staleTimeout?: Duration;
  /** Table size (256). */
  maxEntries?: number;
  /** Packets queued per resolving entry (16). */
  queuePerEntry?: number;
  /** Slots in the shared queue pool (64). */
  poolSlots?: number;
  /** Bytes per pool slot: the largest IP packet that can wait (1500). */
  slotSize?: number;
}

/** Counters of cache activity. */
export interface NeighborStats {
  solicitations: number;
  resolved: number;
  failed: number;
  evicted: number;
  queued: number;
  flushed: number;
}

/** One cache entry. Preallocated and recycled; exported read-only for inspection. */
export class NeighborEntry {
  inUse = false;
  /** Position in the cache's list of live entries, -1 when free. */
  liveIndex = -1;
  version: 4 | 6 = 4;
  /** Address bytes; only the first 4 or 16 are meaningful. */
  readonly address: Uint8Array = new Uint8Array(16);
  readonly mac: Uint8Array = new Uint8Array(6);
  state: NeighborState = "incomplete";
  hash = 0;
  /** Next entry with the same hash (chained buckets). */
  nextInBucket: NeighborEntry | null = null;
  /** REACHABLE until this instant. */
  reachableUntil: Instant = 0;
  /** Last time the entry was used to send or confirmed. */
  lastUsed: Instant = 0;
  /** When a used STALE entry starts probing (DELAY state); 0 when not delaying. */
  delayUntil: Instant = 0;
  /** Probes sent in the current resolution/probe round; 0 = not probing. */
  probes = 0;
  /** When the last solicitation went out. */
  lastProbe: Instant = 0;
  /** Queue of pool slot indices (ring) and their packet lengths. */
  readonly queueSlots: Int32Array;
  readonly queueLens: Int32Array;
  queueHead = 0;
  queueCount = 0;

  constructor(queueCapacity: number) {
    this.queueSlots = new Int32Array(queueCapacity);
    this.queueLens = new Int32Array(queueCapacity);
  }

  /** The address as a view of 4 or 16 bytes. */
  addressView(): Uint8Array {
    return this.address.subarray(0, this.version === 4 ? 4 : 16);
  }
}

/** `pollAt()`'s cell. */
const AT = new Float64Array(1);

function hashAddress(version: 4 | 6, addr: Uint8Array): number {
  // FNV-1a over the bytes, seeded by the version so 4-byte and 16-byte keys never mix.
  let h = version === 4 ? 0x811c9dc5 : 0x050c5d1f;
  for (let i = 0; i < addr.length; i++) h = Math.imul(h ^ addr[i]!, 0x01000193);
  return h >>> 0;
}

function sameAddress(e: NeighborEntry, version: 4 | 6, addr: Uint8Array): boolean {
  if (e.version !== version) return false;
  for (let i = 0; i < addr.length; i++) if (e.address[i] !== addr[i]) return false;
  return true;
}

/** The shared ARP/NDP neighbour cache. */
export class NeighborCache {
  readonly reachableTime: Duration;
  readonly retransInterval: Duration;
  readonly maxProbes: number;
  readonly delayFirstProbe: Duration;
  readonly staleTimeout: Duration;
  readonly maxEntries: number;
  readonly slotSize: number;
  /** Activity counters. */
  readonly stats: NeighborStats = {
    solicitations: 0,
    resolved: 0,
    failed: 0,
    evicted: 0,
    queued: 0,
    flushed: 0,
  };

  private readonly sink: NeighborSink;
  private gen = 0;
  /** Entries in use (timers scan only these) and free preallocated entries. */
  private readonly live: NeighborEntry[] = [];
  private readonly free: NeighborEntry[] = [];
  private readonly buckets = new Map<number, NeighborEntry>();
  private readonly pool: Uint8Array;
  private readonly freeSlots: Int32Array;
  private freeCount: number;

  constructor(sink: NeighborSink, config: NeighborConfig = {}) {
    this.sink = sink;
    this.reachableTime = config.reachableTime ?? 30 * SECOND;
    this.retransInterval = config.retransInterval ?? SECOND;
    this.maxProbes = config.maxProbes ?? 3;
    this.delayFirstProbe = config.delayFirstProbe ?? 5 * SECOND;
    this.staleTimeout = config.staleTimeout ?? 60 * SECOND;
    this.maxEntries = config.maxEntries ?? 256;
    this.slotSize = config.slotSize ?? 1500;
    const perEntry = config.queuePerEntry ?? 16;
    const slots = config.poolSlots ?? 64;
    for (let i = 0; i < this.maxEntries; i++) this.free.push(new NeighborEntry(perEntry));
    this.pool = new Uint8Array(slots * this.slotSize);
    this.freeSlots = new Int32Array(slots);
    for (let i = 0; i < slots; i++) this.freeSlots[i] = slots - 1 - i;
    this.freeCount = slots;
  }

  /**
   * Bumped whenever a mapping the send path may have cached changes: an entry is created,
   * removed (expired, failed, evicted) or learns a MAC. Reachability bookkeeping (REACHABLE ->
   * STALE, probes) does not bump it: `touch` keeps doing that per packet.
   */
  get generation(): number {
    return this.gen;
  }

  /** Number of live entries. */
  get size(): number {
    return this.live.length;
  }

  /** Pool slots currently holding queued packets. */
  get queuedPackets(): number {
    return this.freeSlots.length - this.freeCount;
  }

  /** The entry for an address, or null. */
  find(version: 4 | 6, addr: Uint8Array): NeighborEntry | null {
    let e = this.buckets.get(hashAddress(version, addr)) ?? null;
    while (e !== null && !sameAddress(e, version, addr)) e = e.nextInBucket;
    return e;
  }

  /**
   * The MAC to send to `addr` now, or null when it must be resolved first (then call
   * `enqueue`). Using a STALE entry starts the DELAY before unicast reachability probes.
   */
  lookup(version: 4 | 6, addr: Uint8Array, now: Instant): Uint8Array | null {
    const e = this.lookupEntry(version, addr, now);
    return e === null ? null : e.mac;
  }

  /**
   * `lookup` returning the resolved entry itself (or null), for a sender that caches it: while
   * `generation` is unchanged the entry still maps `addr` to the same MAC, and `touch(entry,
   * now)` is all a later send needs.
   */
  lookupEntry(version: 4 | 6, addr: Uint8Array, now: Instant): NeighborEntry | null {
    const e = this.find(version, addr);
    if (e === null || e.state === "incomplete") return null;
    this.touch(e, now);
    return e;
  }

  /**
   * The bookkeeping of one send through the resolved entry `e` (as `lookup` does): marks it
   * used and, when STALE, starts the DELAY before reachability probes.
   */
  touch(e: NeighborEntry, now: Instant): void {
    e.lastUsed = now;
    if (e.state === "stale" && e.probes === 0 && e.delayUntil === 0) {
      e.delayUntil = now + this.delayFirstProbe;
    }
  }

  /**
   * Upper-layer reachability confirmation (RFC 4861 7.3.1, e.g. a TCP ACK for new data): a
   * known entry becomes REACHABLE again without probing.
   */
  confirmReachable(version: 4 | 6, addr: Uint8Array, now: Instant): void {
    const e = this.find(version, addr);
    if (e === null || e.state === "incomplete") return;
    e.state = "reachable";
    e.reachableUntil = now + this.reachableTime;
    e.probes = 0;
    e.delayUntil = 0;
  }

  /**
   * Queues a copy of `packet` until `addr` resolves, creating an INCOMPLETE entry (and sending
   * the first solicitation) when there is none. If the address is already resolved the packet
   * is transmitted at once. Returns false when the packet was dropped (and counted).
   */
  enqueue(version: 4 | 6, addr: Uint8Array, packet: Uint8Array, now: Instant): boolean {
    if (packet.length > this.slotSize) {
      this.sink.drop("neighbor-packet-too-big");
      return false;
    }
    let e = this.find(version, addr);
    if (e !== null && e.state !== "incomplete") {
      e.lastUsed = now;
      this.sink.transmitQueued(version, packet, e.mac, now);
      return true;
    }
    if (e === null) {
      e = this.allocate(version, addr, now);
      e.state = "incomplete";
      e.probes = 1;
      e.lastProbe = now;
      this.stats.solicitations++;
      this.sink.solicit(version, addr, null, now);
    }
    e.lastUsed = now;
    // Make room: the entry's own queue first, then the pool (oldest packet of this entry).
    if (e.queueCount === e.queueSlots.length) this.dropOldest(e, "neighbor-queue-full");
    if (this.freeCount === 0) {
      if (e.queueCount === 0) {
        this.sink.drop("neighbor-queue-full");
        return false;
      }
      this.dropOldest(e, "neighbor-queue-full");
    }
    const slot = this.freeSlots[--this.freeCount]!;
    this.pool.set(packet, slot * this.slotSize);
    const at = (e.queueHead + e.queueCount) % e.queueSlots.length;
    e.queueSlots[at] = slot;
    e.queueLens[at] = packet.length;
    e.queueCount++;
    this.stats.queued++;
    return true;
  }

  /**
   * Records a confirmed mapping (solicited ARP reply / solicited NA): the entry becomes
   * REACHABLE and its queued packets go out. Without an entry nothing happens unless `create`.
   */
  confirm(version: 4 | 6, addr: Uint8Array, mac: Uint8Array, now: Instant, create = false): void {
    let e = this.find(version, addr);
    if (e === null) {
      if (!create) return;
      e = this.allocate(version, addr, now);
    }
    const wasIncomplete = e.state === "incomplete";
    if (wasIncomplete || !macEquals(e.mac, mac)) this.gen++;
    e.mac.set(mac.subarray(0, 6));
    e.state = "reachable";
    e.reachableUntil = now + this.reachableTime;
    e.probes = 0;
    e.delayUntil = 0;
    e.lastUsed = now;
    if (wasIncomplete) this.stats.resolved++;
    this.flush(e, now);
  }

  /**
   * Records an unconfirmed mapping (ARP request, NS source LLA, unsolicited NA with override).
   * A new or changed mapping becomes STALE (RFC 4861 7.2.3); the same MAC keeps its state. An
   * INCOMPLETE entry learns the MAC and sends its queue. Creates an entry only when `create`.
   */
  observe(version: 4 | 6, addr: Uint8Array, mac: Uint8Array, now: Instant, create: boolean): void {
    let e = this.find(version, addr);
    if (e === null) {
      if (!create) return;
      e = this.allocate(version, addr, now);
      e.lastUsed = now;
    } else if (e.state !== "incomplete" && macEquals(e.mac, mac)) {
      return;
    }
    if (e.state === "incomplete") this.stats.resolved++;
    this.gen++;
    e.mac.set(mac.subarray(0, 6));
    e.state = "stale";
    e.probes = 0;
    e.delayUntil = 0;
    this.flush(e, now);
  }

  /** Removes an entry (and drops its queue, counted). */
  remove(version: 4 | 6, addr: Uint8Array): boolean {
    const e = this.find(version, addr);
    if (e === null) return false;
    this.release(e, "neighbor-unreachable");
    return true;
  }

  /** Runs timers: retransmits, fails resolutions, ages REACHABLE to STALE, deletes idle entries. */
  poll(now: Instant): void {
    // Backwards: release() swap-removes, moving an already visited entry into slot i.
    for (let i = this.live.length - 1; i >= 0; i--) {
      const e = this.live[i]!;
      if (e.state === "reachable" && now >= e.reachableUntil) e.state = "stale";
      if (e.probes > 0) {
        if (now < e.lastProbe + this.retransInterval) continue;
        if (e.probes >= this.maxProbes) {
          this.stats.failed++;
          this.release(e, "neighbor-unreachable");
          continue;
        }
        e.probes++;
        e.lastProbe = now;
        this.stats.solicitations++;
        this.sink.solicit(e.version, e.addressView(), e.state === "incomplete" ? null : e.mac, now);
      } else if (e.delayUntil > 0) {
        if (now < e.delayUntil) continue;
        e.delayUntil = 0;
        e.probes = 1;
        e.lastProbe = now;
        this.stats.solicitations++;
        this.sink.solicit(e.version, e.addressView(), e.mac, now);
      } else if (e.state === "stale" && now >= e.lastUsed + this.staleTimeout) {
        this.release(e, "neighbor-unreachable");
      }
    }
  }

  /** The next instant `poll()` has work, or `NEVER`. */
  pollAt(): Instant {
    this.pollAtInto(AT, 0);
    return AT[0]!;
  }

  /** `out[i] = pollAt()`: stored, not returned (see `Interface.pollAtInto`). */
  pollAtInto(out: Float64Array, i: number): void {
    // Each candidate is compared with the cell, not merged into a local first: a local that
    // takes instants from several places was a heap number per call (16 B, measured).
    out[i] = NEVER;
    const live = this.live;
    for (let k = 0; k < live.length; k++) {
      const e = live[k]!;
      if (e.probes > 0) {
        const t = e.lastProbe + this.retransInterval;
        if (t < out[i]!) out[i] = t;
      } else if (e.delayUntil > 0) {
        if (e.delayUntil < out[i]!) out[i] = e.delayUntil;
      } else if (e.state === "reachable") {
        if (e.reachableUntil < out[i]!) out[i] = e.reachableUntil;
      } else {
        const t = e.lastUsed + this.staleTimeout;
        if (t < out[i]!) out[i] = t;
      }
    }
  }

  /** Calls `fn` for each live entry (for diagnostics). */
  forEach(fn: (e: NeighborEntry) => void): void {
    for (const e of this.live.slice()) fn(e);
  }

  private allocate(version: 4 | 6, addr: Uint8Array, now: Instant): NeighborEntry {
    if (this.free.length === 0) {
      // Table full: evict the least recently used entry, preferring resolved ones so an
      // in-progress resolution is not starved by a flood of new destinations.
      let victim: NeighborEntry | null = null;
      for (const c of this.live) {
        if (
          victim === null ||
          (c.state !== "incomplete" && victim.state === "incomplete") ||
          ((c.state === "incomplete") === (victim.state === "incomplete") &&
            c.lastUsed < victim.lastUsed)
        ) victim = c;
      }
      this.stats.evicted++;
      this.release(victim!, "neighbor-evicted");
    }
    this.gen++;
    const e = this.free.pop()!;
    e.inUse = true;
    e.liveIndex = this.live.length;
    this.live.push(e);
    e.version = version;
    e.address.fill(0);
    e.address.set(addr);
    e.hash = hashAddress(version, addr);
    e.state = "stale";
    e.probes = 0;
    e.delayUntil = 0;
    e.lastProbe = 0;
    e.lastUsed = now;
    e.reachableUntil = 0;
    e.queueHead = 0;
    e.queueCount = 0;
    e.nextInBucket = this.buckets.get(e.hash) ?? null;
    this.buckets.set(e.hash, e);
    return e;
  }

  private release(e: NeighborEntry, reason: NeighborDropReason): void {
    this.gen++;
    while (e.queueCount > 0) this.dropOldest(e, reason);
    // Unlink from its bucket chain.
    const head = this.buckets.get(e.hash) ?? null;
    if (head === e) {
      if (e.nextInBucket === null) this.buckets.delete(e.hash);
      else this.buckets.set(e.hash, e.nextInBucket);
    } else {
      let p = head;
      while (p !== null && p.nextInBucket !== e) p = p.nextInBucket;
      if (p !== null) p.nextInBucket = e.nextInBucket;
    }
    e.nextInBucket = null;
    e.inUse = false;
    const last = this.live.pop()!;
    if (last !== e) {
      this.live[e.liveIndex] = last;
      last.liveIndex = e.liveIndex;
    }
    e.liveIndex = -1;
    this.free.push(e);
  }

  private dropOldest(e: NeighborEntry, reason: NeighborDropReason): void {
    const slot = e.queueSlots[e.queueHead]!;
    this.freeSlots[this.freeCount++] = slot;
    e.queueHead = (e.queueHead + 1) % e.queueSlots.length;
    e.queueCount--;
    this.sink.drop(reason);
  }

  private flush(e: NeighborEntry, now: Instant): void {
    while (e.queueCount > 0) {
      const slot = e.queueSlots[e.queueHead]!;
      const len = e.queueLens[e.queueHead]!;
      e.queueHead = (e.queueHead + 1) % e.queueSlots.length;
      e.queueCount--;
      // Return the slot before transmitting: transmitQueued may re-enqueue (it must not, but
      // a sink that does would otherwise find the pool one slot short).
      this.freeSlots[this.freeCount++] = slot;
      this.stats.flushed++;
      const start = slot * this.slotSize;
      this.sink.transmitQueued(e.version, this.pool.subarray(start, start + len), e.mac, now);
    }
  }
}

function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}
