/**
 * Why a packet was dropped. Every layer names its reasons here (one union, one file) so counters
 * and logs speak the same words; `DropCounters` counts them without allocating.
 *
 * @module
 */

/** Every reason a layer may drop a packet for. Layers add their reasons to this one list. */
export const DROP_REASONS = [
  // Structure
  "truncated",
  "bad-length",
  "bad-header-length",
  "bad-version",
  "bad-checksum",
  "bad-option",
  "bad-extension-header",
  "bad-arp-format",
  // Dispatch
  "unsupported-ethertype",
  "unsupported-protocol",
  "not-for-us",
  "no-listener",
  // Fragments
  "fragment-unsupported",
  "fragment-timeout",
  "fragment-overlap",
  "fragment-too-big",
  "fragment-duplicate",
  "reassembly-full",
  // Interface / IP layer (iface/)
  "bad-source-address",
  "bad-ndp",
  "unsupported-icmp-type",
  "icmp-rate-limited",
  "no-route",
  "link-full",
  "too-big",
  "neighbor-queue-full",
  "neighbor-unreachable",
  "neighbor-evicted",
  "neighbor-packet-too-big",
  // Sockets
  "socket-queue-full",
] as const;

/** A named reason for dropping a packet. */
export type DropReason = typeof DROP_REASONS[number];

const INDEX: Map<string, number> = new Map(DROP_REASONS.map((r, i) => [r, i]));

/** True when `s` is a known `DropReason`. */
export function isDropReason(s: string): s is DropReason {
  return INDEX.has(s);
}

/** Per-reason drop counts; `count()` allocates nothing (a Map lookup and a Float64Array slot). */
export class DropCounters {
  private readonly counts = new Float64Array(DROP_REASONS.length);

  /** Adds one drop for `reason`. */
  count(reason: DropReason): void {
    this.counts[INDEX.get(reason)!]!++;
  }

  /** Drops counted for `reason`. */
  get(reason: DropReason): number {
    return this.counts[INDEX.get(reason)!]!;
  }

  /** All drops counted. */
  total(): number {
    let t = 0;
    for (let i = 0; i < this.counts.length; i++) t += this.counts[i]!;
    return t;
  }

  /** A copy of the non-zero counts keyed by reason (allocates; for metrics and tests). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < DROP_REASONS.length; i++) {
      const n = this.counts[i]!;
      if (n !== 0) out[DROP_REASONS[i]!] = n;
    }
    return out;
  }

  /** Sets every count back to zero. */
  clear(): void {
    this.counts.fill(0);
  }
}
