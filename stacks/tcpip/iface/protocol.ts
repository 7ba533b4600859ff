/**
 * The contract between the IP layer (the interface) and the transport protocols above it
 * (UDP, TCP). The interface parses and validates Ethernet and IP, then hands each transport
 * payload to the registered handler; transports send by borrowing a payload buffer from the
 * IP layer, writing the segment (checksum included) in place, and committing it.
 *
 * @module
 */

import type { Instant } from "../../time.ts";
import type { IpAddress } from "../wire/address.ts";
import type { IcmpErrorInfo } from "./icmp.ts";

/** What the IP layer learned about a received packet. Views are valid only during the call. */
export interface IpReceiveInfo {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** Source address, 4 or 16 bytes (a view into the frame). */
  readonly src: Uint8Array;
  /** Destination address, 4 or 16 bytes (a view into the frame). */
  readonly dst: Uint8Array;
  /** ECN codepoint from the IP header (0 not-ECT, 1 ECT(1), 2 ECT(0), 3 CE). */
  readonly ecn: number;
  /** TTL or hop limit as received. */
  readonly ttl: number;
  /** The whole IP packet (header and payload), for ICMP errors that quote it. */
  readonly packet: Uint8Array;
  /** True when the link already verified the transport checksum. */
  readonly checksumVerified: boolean;
}

/** A transport protocol plugged into the interface. */
export interface IpProtocolHandler {
  /** IP protocol number (6 TCP, 17 UDP). */
  readonly protocol: number;
  /** Handles one transport payload. Must not throw: bad input is dropped and counted. */
  receive(info: IpReceiveInfo, payload: Uint8Array, now: Instant): void;
  /** Runs timers and emits what is due. */
  poll(now: Instant): void;
  /** The next instant `poll()` has work, or `NEVER`. */
  pollAt(): Instant;
  /**
   * Optional: `out[i] = pollAt()`, stored instead of returned (a driver loop asks after every
   * step, and an instant above 2^31 ns returned from a call that is not inlined is a new heap
   * number each time).
   */
  pollAtInto?(out: Float64Array, i: number): void;
  /**
   * Optional: a received ICMP error (unreachable, frag-needed, packet too big, time exceeded)
   * quoting a packet of this protocol that we sent. The interface has already updated its
   * path-MTU cache when the error carries an MTU. Views are valid only during the call.
   */
  icmpError?(error: IcmpErrorInfo, now: Instant): void;
}

/** The sending half of the IP layer, as seen by transports. */
export interface IpOutput {
  /**
   * Lends a buffer for the `length`-byte transport payload of a packet from `src` to `dst`, or
   * returns null when there is no route or no room on the link (the caller retries on a later
   * poll). `ecn` is the codepoint to put in the IP header.
   */
  beginPacket(
    src: IpAddress,
    dst: IpAddress,
    protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null;
  /**
   * Optional: `beginPacket` without a payload view, for a transport that writes at offsets.
   * Returns the payload's offset in `packetBuffer` (-1 where `beginPacket` returns null); the
   * buffer may run past the payload, and bytes after it are not sent. Finish with
   * `commitPacket` or `commitPacketPartial` as after `beginPacket`.
   */
  beginPacketAt?(
    src: IpAddress,
    dst: IpAddress,
    protocol: number,
    length: number,
    ecn: number,
  ): number;
  /** The buffer of the packet begun last by `beginPacketAt`. */
  readonly packetBuffer?: Uint8Array;
  /** Sends the packet begun last (queued behind neighbour resolution when needed). */
  commitPacket(): void;
  /**
   * Optional transmit checksum offload. True when the packet begun last goes straight into a
   * device buffer of a link that completes TCP/UDP checksums (`LinkCapabilities
   * .txChecksumOffload`); then the caller may write only the folded pseudo-header sum into
   * the checksum field (`writePartialChecksum`) and send with `commitPacketPartial`. False for
   * packets that are queued, fragmented or sent on a link without offload: compute the full
   * checksum and use `commitPacket`.
   */
  canOffloadChecksum?(): boolean;
  /**
   * Sends the packet begun last, asking the device to complete the transport checksum at
   * `checksumOffset` within the transport header (TCP 16, UDP 6). Only after
   * `canOffloadChecksum()` answered true for this packet.
   */
  commitPacketPartial?(checksumOffset: number): void;
  /** The source address a packet to `dst` would leave from, or null without a route. */
  sourceFor(dst: IpAddress): IpAddress | null;
  /** The IP MTU towards `dst` (the link MTU, or a smaller path MTU learned from ICMP). */
  mtuFor(dst: IpAddress): number;
  /** True when `address` is one of this interface's own addresses. */
  isLocal(address: IpAddress): boolean;
}
