/**
 * Bookkeeping for the interface's ping tool API: remembers when each echo request left (bounded)
 * and turns matching replies into results with a round-trip time from the injected clock.
 *
 * @module
 */

import type { Duration, Instant } from "../../time.ts";
import { IpAddress } from "../wire/address.ts";

/** A received echo reply. */
export interface EchoReply {
  /** Who answered. */
  readonly from: IpAddress;
  readonly id: number;
  readonly seq: number;
  /** Bytes of echo data in the reply. */
  readonly length: number;
  /** Round-trip time: reply arrival minus request departure. */
  readonly rtt: Duration;
  /** When the reply arrived. */
  readonly at: Instant;
}

interface Outstanding {
  version: 4 | 6;
  id: number;
  seq: number;
  sentAt: Instant;
}

/** Outstanding requests and received replies, both bounded. */
export class EchoTracker {
  private readonly outstanding: Outstanding[] = [];
  private readonly replies: EchoReply[] = [];
  private readonly maxOutstanding: number;
  private readonly maxReplies: number;
  /** Replies that matched no outstanding request (late, duplicate or not ours). */
  unmatched = 0;
  /** Replies dropped because nobody read them. */
  overflowed = 0;

  constructor(maxOutstanding = 64, maxReplies = 64) {
    this.maxOutstanding = maxOutstanding;
    this.maxReplies = maxReplies;
  }

  /** Records a request sent at `now`; the oldest record is forgotten when full. */
  sent(version: 4 | 6, id: number, seq: number, now: Instant): void {
    if (this.outstanding.length >= this.maxOutstanding) this.outstanding.shift();
    this.outstanding.push({ version, id, seq, sentAt: now });
  }

  /**
   * Matches a reply from `from` (4 or 16 raw bytes). Returns true when it answered an
   * outstanding request (the result is then queued for `take()`); only then is anything
   * allocated, so unmatched replies cost no garbage.
   */
  received(
    version: 4 | 6,
    id: number,
    seq: number,
    length: number,
    from: Uint8Array,
    now: Instant,
  ): boolean {
    let i = -1;
    for (let k = 0; k < this.outstanding.length; k++) {
      const o = this.outstanding[k]!;
      if (o.version === version && o.id === id && o.seq === seq) {
        i = k;
        break;
      }
    }
    if (i < 0) {
      this.unmatched++;
      return false;
    }
    const o = this.outstanding[i]!;
    this.outstanding.splice(i, 1);
    if (this.replies.length >= this.maxReplies) {
      this.replies.shift();
      this.overflowed++;
    }
    const address = IpAddress.fromBytes(from);
    this.replies.push({ from: address, id, seq, length, rtt: now - o.sentAt, at: now });
    return true;
  }

  /** The oldest unread reply, or null. */
  take(): EchoReply | null {
    return this.replies.shift() ?? null;
  }

  /** Requests still waiting for a reply. */
  get pending(): number {
    return this.outstanding.length;
  }
}
