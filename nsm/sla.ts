/**
 * Per-guest egress SLAs: a rate limit (token bucket: `rate`, `burst`) per guest plus a
 * guaranteed minimum share of the link, enforced by deficit round robin (DRR) across the
 * guests that have data ready. The scheduler decides which guest's bytes may enter the link
 * next and how many; it moves no data itself.
 *
 * Model (like a two-level HTB): the link is a token bucket at the rate the provider sells
 * (`linkRate`, bytes/s, e.g. the NIC rate minus headroom; 0 = unlimited); every guest has its
 * own bucket (its ceiling, 0 = unlimited) and a DRR quantum proportional to its weight. Weights
 * come from the guaranteed shares: a guest with `minRate` M gets weight M, so with every guest
 * backlogged guest i receives linkRate * M_i / sum(M) >= M_i while the guarantees fit the link.
 * DRR is work conserving: bytes a guest does not use go to the others.
 *
 * Integration (see /work/notes/ops_api.md): the ServiceLib (or any transmit path) reports how
 * many bytes each guest has ready and the stack can take now (`setBacklog`), then loops
 * `g = next(now)`: hand at most `grant` bytes of guest g to the stack, report what was taken
 * with `consume(g, n, now)`. When `next` answers `NO_GUEST`, `nextAt(now)` says when to ask
 * again (feeds the driver loop's pollAt).
 *
 * Units: bytes and nanoseconds. Token arithmetic is exact integer arithmetic: a bucket keeps
 * whole bytes plus a remainder in nano-bytes (byte * 1e-9), so refills of any granularity add
 * up to exactly rate * elapsed / 1e9 bytes. That bounds bursts to `MAX_BURST` (4 MiB) so every
 * intermediate product stays below 2^53.
 *
 * Cost: no allocation per decision (guests are objects created by `setGuest`, the active list
 * is intrusive); `next`/`consume` are O(1) amortized (a DRR round adds at least `minGrant` to
 * a guest's deficit, so each pass over a guest either grants or is paid for by a later grant).
 * A guest throttled by its own bucket moves to a timer heap: O(log guests), once per refill
 * period, not per packet.
 *
 * @module
 */

import { type Duration, type Instant, NEVER, SECOND } from "../stacks/time.ts";

/** `next()` answer when no guest may send now. */
export const NO_GUEST = -1;
/** Largest bucket depth, bytes (keeps (burst + debt) * 1e9 below 2^53). */
export const MAX_BURST = 4 * 1024 * 1024;
/** Largest rate, bytes/s (8 Tbit/s). */
export const MAX_RATE = 1e12;
/**
 * Largest DRR quantum in base quanta (256 KiB at the default 16 KiB): bounds one guest's turn
 * (10 ms at 200 Mbit/s) whatever the weight ratio; lighter guests get proportionally less.
 */
export const MAX_QUANTUM_RATIO = 16;

const NANO = SECOND; // nano-bytes per byte

/** A guest's egress SLA as given by the operator. All fields optional. */
export interface GuestSla {
  /** Ceiling, bytes/s (0 or absent: no limit of its own). */
  rate?: number;
  /** Bucket depth, bytes (default: `defaultBurst` of the scheduler, at most `MAX_BURST`). */
  burst?: number;
  /** Guaranteed rate, bytes/s: sets the DRR weight (wins over `weight`). */
  minRate?: number;
  /** Relative DRR weight when no `minRate` is given (default 1). */
  weight?: number;
}

/** A guest's SLA in force, with defaults applied. */
export interface ResolvedSla {
  /** Ceiling, bytes/s (0 = none). */
  rate: number;
  /** Bucket depth, bytes. */
  burst: number;
  /** Guaranteed rate, bytes/s (0 = none given). */
  minRate: number;
  /** DRR weight. */
  weight: number;
  /** DRR quantum derived from the weights, bytes per round. */
  quantum: number;
}

/** A status row of one guest (allocates; for ctl and metrics). */
export interface GuestSlaStatus extends ResolvedSla {
  /** Guest id. */
  guest: number;
  /** Bytes granted and consumed so far. */
  sentBytes: number;
  /** Bytes waiting (as last reported). */
  backlog: number;
  /** Tokens in the guest's bucket (whole bytes; -1 when unlimited). */
  tokens: number;
  /** Times the guest hit its ceiling. */
  throttled: number;
  /** True while waiting for its bucket to refill. */
  waiting: boolean;
}

/** Settings of an `EgressScheduler`. */
export interface EgressSchedulerOptions {
  /** Link rate shared by the guests, bytes/s (0 = unlimited: only ceilings apply). */
  linkRate?: number;
  /** Link bucket depth, bytes (default 64 KiB). */
  linkBurst?: number;
  /** Bucket depth of guests that give none, bytes (default 64 KiB). */
  defaultBurst?: number;
  /** DRR quantum of the lightest guest, bytes (default 16 KiB; at least `minGrant`). */
  quantum?: number;
  /**
   * Smallest grant worth making, bytes (default 1448): a guest waits until its deficit and
   * buckets allow this much (or its whole backlog), so grants are not cut into tiny segments.
   */
  minGrant?: number;
}

/** Thrown for a bad SLA or scheduler setting; the message says what to write instead. */
export class SlaConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SlaConfigError";
  }
}

/**
 * A token bucket in exact integer arithmetic: `tokens` whole bytes plus `nano` nano-bytes.
 * Starts full. `rate` 0 means unlimited (always enough tokens).
 */
export class TokenBucket {
  // Numbers live in a Float64Array: V8 allocates a fresh HeapNumber for every store of a
  // non-small number into an object field, typed-array stores allocate nothing.
  readonly #v = new Float64Array(5);

  /** A full bucket of `burst` bytes refilling at `rate` bytes/s from `now`. */
  constructor(rate: number, burst: number, now: Instant) {
    checkRate("rate", rate);
    checkBurst("burst", burst);
    const v = this.#v;
    v[RATE] = rate;
    v[BURST] = burst;
    v[TOKENS] = burst;
    v[LAST] = now;
  }

  /** Refill rate, bytes/s (0 = unlimited). */
  get rate(): number {
    return this.#v[RATE]!;
  }

  /** Depth, bytes. */
  get burst(): number {
    return this.#v[BURST]!;
  }

  /** Whole bytes available (negative = debt after an over-consume). */
  get tokens(): number {
    return this.#v[TOKENS]!;
  }

  /** Fraction of a byte, in nano-bytes, [0, 1e9). */
  get nano(): number {
    return this.#v[NANOS]!;
  }

  /** True when the bucket limits nothing. */
  get unlimited(): boolean {
    return this.#v[RATE] === 0;
  }

  /** Changes rate and depth, keeping the tokens earned so far (capped at the new depth). */
  set(rate: number, burst: number, now: Instant): void {
    checkRate("rate", rate);
    checkBurst("burst", burst);
    this.refill(now);
    const v = this.#v;
    v[RATE] = rate;
    v[BURST] = burst;
    if (v[TOKENS]! >= burst) {
      v[TOKENS] = burst;
      v[NANOS] = 0;
    }
  }

  /** Adds exactly rate * (now - last) / 1e9 bytes, capped at `burst`. */
  refill(now: Instant): void {
    const v = this.#v;
    const e = now - v[LAST]!;
    if (e <= 0) return;
    v[LAST] = now;
    const rate = v[RATE]!;
    const burst = v[BURST]!;
    const tokens = v[TOKENS]!;
    if (rate === 0 || tokens >= burst) {
      v[TOKENS] = burst;
      v[NANOS] = 0;
      return;
    }
    const need = (burst - tokens) * NANO - v[NANOS]!; // nano-bytes to full, < 2^53
    if (e >= Math.ceil(need / rate)) {
      v[TOKENS] = burst;
      v[NANOS] = 0;
      return;
    }
    // e * rate < need + rate < 2^53: exact.
    const x = e * rate + v[NANOS]!;
    const rem = x % NANO;
    const t = tokens + (x - rem) / NANO;
    if (t >= burst) {
      v[TOKENS] = burst;
      v[NANOS] = 0;
    } else {
      v[TOKENS] = t;
      v[NANOS] = rem;
    }
  }

  /** Nanoseconds from the last refill until `n` whole bytes are there (0 if already). */
  timeUntil(n: number): Duration {
    const v = this.#v;
    const rate = v[RATE]!;
    if (rate === 0 || v[TOKENS]! >= n) return 0;
    const need = (n - v[TOKENS]!) * NANO - v[NANOS]!;
    let t = Math.ceil(need / rate);
    if (t * rate < need) t++;
    return t;
  }

  /** Takes `n` bytes; debt is allowed down to -burst (a caller that sent more than granted). */
  take(n: number): void {
    const v = this.#v;
    if (v[RATE] === 0) return;
    const t = v[TOKENS]! - n;
    v[TOKENS] = t < -v[BURST]! ? -v[BURST]! : t;
  }
}

const RATE = 0;
const BURST = 1;
const TOKENS = 2;
const NANOS = 3;
const LAST = 4;

function checkRate(what: string, r: number): void {
  if (!Number.isInteger(r) || r < 0 || r > MAX_RATE) {
    throw new SlaConfigError(
      `${what} ${r} is not an integer number of bytes/s in 0..${MAX_RATE}; write e.g. 12500000 ` +
        `(100 Mbit/s) or use parseRate("100mbit")`,
    );
  }
}

function checkBurst(what: string, b: number): void {
  if (!Number.isInteger(b) || b < 1 || b > MAX_BURST) {
    throw new SlaConfigError(
      `${what} ${b} is not a whole number of bytes in 1..${MAX_BURST}; write e.g. 65536`,
    );
  }
}

/** One guest's scheduler state (created by `setGuest`, reused for every decision). */
class GuestState {
  readonly bucket: TokenBucket;
  sla: ResolvedSla;
  fresh = true;
  active = false;
  waiting = false;
  heapIndex = -1;
  prev: GuestState | null = null;
  next: GuestState | null = null;
  // Numbers in a typed array: see TokenBucket (no HeapNumber per store).
  readonly #v = new Float64Array(5);
  constructor(readonly id: number, sla: ResolvedSla, now: Instant) {
    this.sla = sla;
    this.bucket = new TokenBucket(sla.rate, sla.burst, now);
  }
  get deficit(): number {
    return this.#v[0]!;
  }
  set deficit(x: number) {
    this.#v[0] = x;
  }
  get backlog(): number {
    return this.#v[1]!;
  }
  set backlog(x: number) {
    this.#v[1] = x;
  }
  get readyAt(): Instant {
    return this.#v[2]!;
  }
  set readyAt(x: Instant) {
    this.#v[2] = x;
  }
  get sentBytes(): number {
    return this.#v[3]!;
  }
  set sentBytes(x: number) {
    this.#v[3] = x;
  }
  get throttled(): number {
    return this.#v[4]!;
  }
  set throttled(x: number) {
    this.#v[4] = x;
  }
}

/** Per-guest rate limits and guaranteed shares; see the module comment. */
export class EgressScheduler {
  readonly #v = new Float64Array(2); // grant, sentBytes (typed array: no HeapNumber per store)
  /** Link bucket (rate 0 = unlimited). */
  readonly link: TokenBucket;
  readonly #guests = new Map<number, GuestState>();
  readonly #heap: GuestState[] = [];
  #head: GuestState | null = null;
  #tail: GuestState | null = null;
  #activeCount = 0;
  #quantum: number;
  #minGrant: number;
  #defaultBurst: number;

  /** A scheduler with no guests. Throws `SlaConfigError` for bad settings. */
  constructor(options: EgressSchedulerOptions = {}, now: Instant = 0) {
    this.#minGrant = options.minGrant ?? 1448;
    if (!Number.isInteger(this.#minGrant) || this.#minGrant < 1) {
      throw new SlaConfigError(`minGrant ${this.#minGrant} must be a positive integer (bytes)`);
    }
    this.#quantum = Math.max(options.quantum ?? 16384, this.#minGrant);
    if (!Number.isInteger(this.#quantum)) {
      throw new SlaConfigError(`quantum ${this.#quantum} must be a whole number of bytes`);
    }
    this.#defaultBurst = options.defaultBurst ?? 65536;
    checkBurst("defaultBurst", this.#defaultBurst);
    this.link = new TokenBucket(options.linkRate ?? 0, options.linkBurst ?? 65536, now);
  }

  /** Bytes the guest returned by the last `next()` may send (0 after `NO_GUEST`). */
  get grant(): number {
    return this.#v[0]!;
  }

  /** Bytes consumed over all guests. */
  get sentBytes(): number {
    return this.#v[1]!;
  }

  /** Changes the link rate/depth at run time. */
  setLink(rate: number, burst: number, now: Instant): string[] {
    this.link.set(rate, burst, now);
    return this.warnings();
  }

  /**
   * Adds guest `guest` or changes its SLA (fields left out keep their current value for an
   * existing guest, defaults for a new one). Returns warnings (guarantees that do not fit).
   */
  setGuest(guest: number, sla: GuestSla, now: Instant): string[] {
    if (!Number.isInteger(guest) || guest < 0) {
      throw new SlaConfigError(`guest id ${guest} must be a non-negative integer`);
    }
    const old = this.#guests.get(guest);
    const rate = sla.rate ?? old?.sla.rate ?? 0;
    const burst = sla.burst ?? old?.sla.burst ?? this.#defaultBurst;
    checkRate(`guest ${guest} rate`, rate);
    checkBurst(`guest ${guest} burst`, burst);
    const minRate = sla.minRate ?? (sla.weight !== undefined ? 0 : old?.sla.minRate ?? 0);
    checkRate(`guest ${guest} minRate`, minRate);
    const weight = minRate > 0 ? minRate : sla.weight ?? old?.sla.weight ?? 1;
    if (!(weight > 0) || !Number.isFinite(weight)) {
      throw new SlaConfigError(`guest ${guest} weight ${weight} must be a positive number`);
    }
    const resolved: ResolvedSla = { rate, burst, minRate, weight, quantum: this.#quantum };
    if (old === undefined) {
      this.#guests.set(guest, new GuestState(guest, resolved, now));
    } else {
      old.bucket.set(rate, burst, now);
      old.sla = resolved;
      if (old.waiting) {
        // Re-judge a throttled guest under its new limit at the next decision.
        this.#heapRemove(old);
        if (old.backlog > 0) this.#append(old);
      }
    }
    this.#requantize();
    return this.warnings();
  }

  /** Removes a guest (it detached). */
  removeGuest(guest: number): void {
    const g = this.#guests.get(guest);
    if (g === undefined) return;
    this.#unlink(g);
    if (g.waiting) this.#heapRemove(g);
    this.#guests.delete(guest);
    this.#requantize();
  }

  /** Whether `guest` has an SLA entry. */
  has(guest: number): boolean {
    return this.#guests.has(guest);
  }

  /** The SLA in force for `guest`, or null. */
  sla(guest: number): Readonly<ResolvedSla> | null {
    return this.#guests.get(guest)?.sla ?? null;
  }

  /** Bytes consumed by `guest` so far (0 for an unknown guest). */
  sent(guest: number): number {
    return this.#guests.get(guest)?.sentBytes ?? 0;
  }

  /** Guarantees that cannot be met as configured (empty when all is well). */
  warnings(): string[] {
    const out: string[] = [];
    let sum = 0;
    for (const g of this.#guests.values()) {
      sum += g.sla.minRate;
      if (g.sla.rate > 0 && g.sla.minRate > g.sla.rate) {
        out.push(
          `guest ${g.id}: guaranteed ${g.sla.minRate} B/s exceeds its own limit ${g.sla.rate} B/s`,
        );
      }
    }
    if (this.link.rate > 0 && sum > this.link.rate) {
      out.push(
        `guaranteed rates add up to ${sum} B/s, more than the link's ${this.link.rate} B/s; ` +
          `lower some minRate or raise linkRate`,
      );
    }
    if (this.link.rate === 0 && sum > 0) {
      out.push(
        `minRate guarantees need a link rate (linkRate) to share; without one only limits apply`,
      );
    }
    return out;
  }

  /**
   * Sets how many bytes `guest` has ready that the stack can take now (0 when it has none,
   * or its sockets are full). An unknown guest with bytes ready is added with the default SLA;
   * 0 for an unknown guest changes nothing.
   */
  setBacklog(guest: number, bytes: number, now: Instant = 0): void {
    let g = this.#guests.get(guest);
    if (g === undefined) {
      // Nothing ready for a guest without an entry (e.g. it detached first): adding it here
      // would leave a ghost weight-1 guest in the quanta for good.
      if (!(bytes > 0)) return;
      this.setGuest(guest, {}, now);
      g = this.#guests.get(guest)!;
    }
    g.backlog = bytes > 0 ? bytes : 0;
    if (g.backlog === 0) {
      if (g.active) this.#unlink(g);
      g.deficit = 0; // DRR: an emptied queue keeps no credit
      return;
    }
    if (!g.active && !g.waiting) this.#append(g);
  }

  /** Adds `bytes` to the guest's backlog. */
  addBacklog(guest: number, bytes: number, now: Instant = 0): void {
    this.setBacklog(guest, (this.#guests.get(guest)?.backlog ?? 0) + bytes, now);
  }

  /**
   * The guest whose bytes may enter the link now, or `NO_GUEST`; `grant` says how many bytes
   * (at most its backlog). Asking again without `consume` returns the same guest and grant.
   */
  next(now: Instant): number {
    this.#v[0] = 0;
    this.#wake(now);
    if (this.#head === null) return NO_GUEST;
    const link = this.link;
    link.refill(now);
    const minGrant = this.#minGrant;
    // Bounded: at most one round of misses, a fast-forward, then a round in which some
    // guest's deficit covers its want (or it is throttled and leaves the list).
    let misses = 0;
    for (let guard = 3 * this.#guests.size + 3; guard > 0 && this.#head !== null; guard--) {
      const g: GuestState = this.#head;
      if (g.fresh) {
        g.deficit += g.sla.quantum;
        g.fresh = false;
      }
      const want = g.backlog < minGrant ? g.backlog : minGrant;
      if (g.deficit < want) {
        this.#rotate(g);
        if (++misses >= this.#activeCount) {
          this.#fastForward();
          misses = 0;
        }
        continue;
      }
      const b = g.bucket;
      let grant = g.deficit < g.backlog ? g.deficit : g.backlog;
      if (!b.unlimited) {
        b.refill(now);
        const need = want < b.burst ? want : b.burst;
        if (b.tokens < need) {
          this.#throttle(g, now + b.timeUntil(need));
          continue;
        }
        if (b.tokens < grant) grant = b.tokens;
      }
      if (!link.unlimited) {
        const need = want < link.burst ? want : link.burst;
        if (link.tokens < need) return NO_GUEST; // the link is the bottleneck: wait for it
        if (link.tokens < grant) grant = link.tokens;
      }
      this.#v[0] = grant;
      return g.id;
    }
    return NO_GUEST;
  }

  /** Records that `bytes` of `guest` entered the link (at most the grant; more is debt). */
  consume(guest: number, bytes: number, now: Instant): void {
    const g = this.#guests.get(guest);
    if (g === undefined || bytes <= 0) return;
    g.bucket.refill(now);
    g.bucket.take(bytes);
    this.link.refill(now);
    this.link.take(bytes);
    g.deficit -= bytes;
    g.sentBytes += bytes;
    this.#v[1] = this.#v[1]! + bytes;
    g.backlog -= bytes;
    if (g.backlog <= 0) {
      g.backlog = 0;
      if (g.active) this.#unlink(g);
      g.deficit = 0;
    }
  }

  /**
   * Earliest time `next()` may return a guest: `now` when one may send at once, the refill
   * time of the link or of the first throttled guest, or `NEVER` with nothing backlogged.
   */
  nextAt(now: Instant): Instant {
    this.#wake(now);
    let t = NEVER;
    if (this.#head !== null) {
      const link = this.link;
      link.refill(now);
      const need = Math.min(this.#minGrant, link.burst, this.#head.backlog);
      t = now + link.timeUntil(need);
    }
    const w = this.#heap[0];
    if (w !== undefined && w.readyAt < t) t = w.readyAt;
    return t;
  }

  /** Status rows sorted by guest id (allocates). */
  status(now: Instant): GuestSlaStatus[] {
    const rows: GuestSlaStatus[] = [];
    for (const g of this.#guests.values()) {
      g.bucket.refill(now);
      rows.push({
        guest: g.id,
        ...g.sla,
        sentBytes: g.sentBytes,
        backlog: g.backlog,
        tokens: g.bucket.unlimited ? -1 : g.bucket.tokens,
        throttled: g.throttled,
        waiting: g.waiting,
      });
    }
    return rows.sort((a, b) => a.guest - b.guest);
  }

  /**
   * Quanta proportional to weights: the lightest guest gets the base quantum unless that would
   * make the heaviest's exceed `MAX_QUANTUM_RATIO` base quanta; then the heaviest gets that and
   * the others proportionally less (at least 1 byte; `next()` fast-forwards rounds in which
   * no backlogged guest has earned a grant yet).
   */
  #requantize(): void {
    let minW = Infinity;
    let maxW = 0;
    for (const g of this.#guests.values()) {
      if (g.sla.weight < minW) minW = g.sla.weight;
      if (g.sla.weight > maxW) maxW = g.sla.weight;
    }
    // Capping each quantum separately (as before) broke the proportions: with an idle
    // weight-1 guest attached, guarantees of 150 and 50 Mbit/s (weights 18.75e6 and 6.25e6)
    // both hit the cap, became equal 64 MiB quanta and the guests took 1:1 turns of ~2.7 s.
    const scale = this.#quantum * Math.min(1 / minW, MAX_QUANTUM_RATIO / maxW);
    for (const g of this.#guests.values()) {
      const q = Math.max(1, Math.round(g.sla.weight * scale));
      g.sla = { ...g.sla, quantum: q };
      // Credit earned under the old quanta must not outlive them: when an operator sets SLAs
      // one guest at a time, the first guest briefly weighs far more than the others and may
      // already have banked its large quantum, delaying them afterwards.
      if (g.deficit > q) g.deficit = q;
    }
  }

  /**
   * A whole round passed with no active guest's deficit covering its want (light guests'
   * quanta can be far below minGrant): adds at once the quanta of the rounds that would
   * still pass before the first guest is served, so `next()` never spins round by round.
   */
  #fastForward(): void {
    const minGrant = this.#minGrant;
    let k = Infinity;
    for (let g = this.#head; g !== null; g = g.next) {
      const want = g.backlog < minGrant ? g.backlog : minGrant;
      const r = Math.ceil((want - g.deficit) / g.sla.quantum);
      if (r < k) k = r;
    }
    // Every guest is fresh again after its rotation: its next visit adds one more quantum.
    if (!(k > 1) || !Number.isFinite(k)) return;
    for (let g = this.#head; g !== null; g = g.next) g.deficit += (k - 1) * g.sla.quantum;
  }

  #wake(now: Instant): void {
    const h = this.#heap;
    while (h.length > 0 && h[0]!.readyAt <= now) {
      const g = this.#heapPop();
      if (g.backlog > 0) this.#append(g);
    }
  }

  #throttle(g: GuestState, at: Instant): void {
    this.#unlink(g);
    g.throttled++;
    g.readyAt = at;
    g.deficit = 0;
    this.#heapPush(g);
  }

  #append(g: GuestState): void {
    g.fresh = true;
    g.active = true;
    this.#activeCount++;
    g.prev = this.#tail;
    g.next = null;
    if (this.#tail !== null) this.#tail.next = g;
    else this.#head = g;
    this.#tail = g;
  }

  #unlink(g: GuestState): void {
    if (!g.active) return;
    if (g.prev !== null) g.prev.next = g.next;
    else this.#head = g.next;
    if (g.next !== null) g.next.prev = g.prev;
    else this.#tail = g.prev;
    g.prev = g.next = null;
    g.active = false;
    this.#activeCount--;
  }

  #rotate(g: GuestState): void {
    if (this.#tail === g) {
      g.fresh = true;
      return;
    }
    this.#unlink(g);
    this.#append(g);
  }

  #heapPush(g: GuestState): void {
    const h = this.#heap;
    g.waiting = true;
    g.heapIndex = h.length;
    h.push(g);
    this.#siftUp(g.heapIndex);
  }

  #heapPop(): GuestState {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (last !== top) {
      h[0] = last;
      last.heapIndex = 0;
      this.#siftDown(0);
    }
    top.waiting = false;
    top.heapIndex = -1;
    return top;
  }

  #heapRemove(g: GuestState): void {
    const h = this.#heap;
    const i = g.heapIndex;
    const last = h.pop()!;
    if (last !== g) {
      h[i] = last;
      last.heapIndex = i;
      this.#siftDown(i);
      this.#siftUp(last.heapIndex);
    }
    g.waiting = false;
    g.heapIndex = -1;
  }

  #siftUp(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.readyAt <= h[i]!.readyAt) break;
      this.#swap(i, p);
      i = p;
    }
  }

  #siftDown(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.readyAt < h[m]!.readyAt) m = l;
      if (r < h.length && h[r]!.readyAt < h[m]!.readyAt) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(i: number, j: number): void {
    const h = this.#heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    h[j] = a;
    a.heapIndex = j;
    b.heapIndex = i;
  }
}

/**
 * Parses a rate for `--sla` and `ctl sla set`: bits per second as `bit`, `kbit`, `mbit`,
 * `gbit` (or `bps`, `kbps`, `Mbps`, `Gbps`), bytes per second as `B`, `KB`, `MB`, `GB` (SI,
 * optional `/s`); a bare number is bytes/s. Returns whole bytes/s.
 */
export function parseRate(text: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)(?:\/s)?\s*$/.exec(text);
  const bits: Record<string, number> = {
    bit: 1,
    bps: 1,
    kbit: 1e3,
    kbps: 1e3,
    mbit: 1e6,
    mbps: 1e6,
    gbit: 1e9,
    gbps: 1e9,
  };
  const bytes: Record<string, number> = { "": 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9 };
  if (m !== null) {
    const v = Number(m[1]);
    const unit = m[2]!;
    const b = bits[unit.toLowerCase()];
    if (b !== undefined) return Math.round((v * b) / 8);
    const B = bytes[unit];
    if (B !== undefined) return Math.round(v * B);
  }
  throw new SlaConfigError(
    `rate "${text}" is not understood; write it like 100mbit, 1gbit or 12.5MB (bytes/s)`,
  );
}

/** Parses a size: `64k`/`64KiB` (1024), `1m`/`1MiB`, `1500`, `64KB` (1000). */
export function parseSize(text: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const mult: Record<string, number> = {
    "": 1,
    b: 1,
    k: 1024,
    kib: 1024,
    m: 1024 * 1024,
    mib: 1024 * 1024,
    kb: 1000,
    mb: 1e6,
  };
  const f = m === null ? undefined : mult[m[2]!.toLowerCase()];
  if (m === null || f === undefined) {
    throw new SlaConfigError(`size "${text}" is not understood; write it like 65536, 64k or 1MiB`);
  }
  return Math.round(Number(m[1]) * f);
}

/**
 * Parses an SLA spec `rate=100mbit,burst=64k,min=50mbit,weight=3` (any subset, any order)
 * as used by `--sla GUEST:SPEC` and `ctl sla set`.
 */
export function parseSla(text: string): GuestSla {
  const out: GuestSla = {};
  for (const part of text.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    const eq = p.indexOf("=");
    const key = eq < 0 ? p : p.slice(0, eq).trim();
    const val = eq < 0 ? "" : p.slice(eq + 1).trim();
    if (key === "rate" || key === "limit") out.rate = parseRate(val);
    else if (key === "burst") out.burst = parseSize(val);
    else if (key === "min" || key === "minRate" || key === "guarantee") {
      out.minRate = parseRate(val);
    } else if (key === "weight" || key === "share") {
      const w = Number(val);
      if (!(w > 0)) throw new SlaConfigError(`weight "${val}" must be a positive number`);
      out.weight = w;
    } else {
      throw new SlaConfigError(
        `SLA field "${key}" is not known; write rate=100mbit,burst=64k,min=50mbit,weight=3`,
      );
    }
  }
  return out;
}
