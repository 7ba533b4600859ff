/**
 * TCP drop reasons and event counters. The reasons below are TCP's own; they are kept here
 * (not in wire/drop.ts, owned by the wire layer) and could be merged into `DropReason` later.
 * Counting allocates nothing.
 *
 * @module
 */

/** Every reason TCP drops or rejects a segment for. */
export const TCP_DROP_REASONS = [
  "truncated",
  "bad-checksum",
  "bad-option",
  "bad-header-length",
  "syn-fin",
  "syn-rst",
  "no-flags",
  "closed-port",
  "listen-rst",
  "listen-ack",
  "listen-non-syn",
  "syn-queue-full",
  "accept-queue-full",
  "bad-cookie",
  "syn-sent-bad-ack",
  "syn-sent-no-syn",
  "syn-sent-rst-unacceptable",
  "out-of-window",
  "paws",
  "rst-out-of-window",
  "rst-challenged",
  "syn-challenged",
  "ack-challenged",
  "challenge-ack-rate-limited",
  "oow-ack-rate-limited",
  "no-ack",
  "ack-unsent",
  "syn-received-bad-ack",
  "data-after-fin",
  "data-in-wrong-state",
  "ooo-full",
  "zero-window-data",
  "time-wait-segment",
  "closed-connection",
  "no-buffer",
  "cookie-later-segment",
] as const;

/** A reason TCP dropped a segment. */
export type TcpDropReason = typeof TCP_DROP_REASONS[number];

const INDEX: Map<string, number> = new Map(TCP_DROP_REASONS.map((r, i) => [r, i]));

/** Per-reason drop counts plus stack-wide event counts. */
export class TcpCounters {
  readonly #drops = new Float64Array(TCP_DROP_REASONS.length);
  /** Segments received (before any check). */
  segmentsIn = 0;
  /** Segments emitted. */
  segmentsOut = 0;
  /** Data segments retransmitted. */
  retransmits = 0;
  /** RSTs sent. */
  resetsSent = 0;
  /** Challenge ACKs sent (RFC 5961). */
  challengeAcks = 0;
  /** SYN cookies sent. */
  cookiesSent = 0;
  /** Connections made from a valid cookie. */
  cookiesAccepted = 0;
  /** Outgoing connections that took over a TIME-WAIT 4-tuple (`TcpConfig.timeWaitReuse`). */
  timeWaitReused = 0;
  /** Connections closed at once instead of entering TIME-WAIT (`TcpConfig.maxTimeWait`). */
  timeWaitOverflows = 0;
  /** Connections in TIME-WAIT now. */
  timeWait = 0;
  /** Exceptions caught at the stack boundary (bugs; should stay 0). */
  internalErrors = 0;
  /** Segments that could not be emitted because IpOutput had no buffer or route. */
  outputFailures = 0;

  /** Counts one drop for `reason`. */
  drop(reason: TcpDropReason): void {
    this.#drops[INDEX.get(reason)!]!++;
  }

  /** Drops counted for `reason`. */
  get(reason: TcpDropReason): number {
    return this.#drops[INDEX.get(reason)!]!;
  }

  /** All drops. */
  totalDrops(): number {
    let t = 0;
    for (let i = 0; i < this.#drops.length; i++) t += this.#drops[i]!;
    return t;
  }

  /** Non-zero drop counts by reason (allocates; for metrics and tests). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < TCP_DROP_REASONS.length; i++) {
      const n = this.#drops[i]!;
      if (n !== 0) out[TCP_DROP_REASONS[i]!] = n;
    }
    return out;
  }
}
