/**
 * A minimal IPv4/IPv6 router over several `Interface`s, for gateway topologies in the
 * simulator: decrements TTL / hop limit (time exceeded at 1), picks the output interface by
 * longest-prefix match across the interfaces' route tables, re-fragments IPv4 without DF, and
 * answers with ICMP unreachable, frag-needed or packet-too-big. The interfaces still answer
 * ARP/NDP and pings for the router's own addresses.
 *
 * Not a production router: no redirects, no IPv4 options processing, no multicast routing,
 * and the input interface's ICMP rate limit covers forwarded-packet errors.
 *
 * @module
 */

import type { Instant } from "../../time.ts";
import { NEVER } from "../../time.ts";
import { read16, write16 } from "../wire/bytes.ts";
import { updateChecksum16 } from "../wire/checksum.ts";
import type { Interface } from "./interface.ts";

/** Router counters. */
export interface RouterCounters {
  forwarded: number;
  ttlExpired: number;
  noRoute: number;
  tooBig: number;
}

/** Forwards between interfaces; add it to the simulator as the node of all their ports. */
export class Router {
  readonly interfaces: readonly Interface[];
  readonly counters: RouterCounters = { forwarded: 0, ttlExpired: 0, noRoute: 0, tooBig: 0 };

  constructor(interfaces: Interface[]) {
    this.interfaces = interfaces;
    const fwd = (from: Interface, version: 4 | 6, packet: Uint8Array, now: Instant): void =>
      this.forward(from, version, packet, now);
    for (const i of interfaces) i.forwarder = fwd;
  }

  /** Polls every interface. */
  poll(now: Instant): void {
    for (const i of this.interfaces) i.poll(now);
  }

  /** The earliest of the interfaces' `pollAt`. */
  pollAt(): Instant {
    let at = NEVER;
    for (const i of this.interfaces) {
      const t = i.pollAt();
      if (t < at) at = t;
    }
    return at;
  }

  private forward(from: Interface, version: 4 | 6, packet: Uint8Array, now: Instant): void {
    if (version === 4) {
      const ttl = packet[8]!;
      if (ttl <= 1) {
        this.counters.ttlExpired++;
        from.sendErrorForCurrent("time-exceeded");
        return;
      }
      // RFC 1624 incremental update of the header checksum for the TTL/protocol word.
      const oldWord = (ttl << 8) | packet[9]!;
      packet[8] = ttl - 1;
      write16(packet, 10, updateChecksum16(read16(packet, 10), oldWord, oldWord - 0x100));
    } else {
      const hop = packet[7]!;
      if (hop <= 1) {
        this.counters.ttlExpired++;
        from.sendErrorForCurrent("time-exceeded");
        return;
      }
      packet[7] = hop - 1;
    }
    const dst = version === 4 ? packet.subarray(16, 20) : packet.subarray(24, 40);
    let out: Interface | null = null;
    let best = -1;
    for (const i of this.interfaces) {
      const r = i.routes.lookup(dst, now);
      if (r !== null && r.prefixLength > best) {
        best = r.prefixLength;
        out = i;
      }
    }
    if (out === null) {
      this.counters.noRoute++;
      from.sendErrorForCurrent("unreachable");
      return;
    }
    const result = out.forwardPacket(version, packet);
    if (result === 0) this.counters.forwarded++;
    else if (result < 0) {
      this.counters.noRoute++;
      from.sendErrorForCurrent("unreachable");
    } else {
      this.counters.tooBig++;
      from.sendErrorForCurrent("too-big", result);
    }
  }
}
