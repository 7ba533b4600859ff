/**
 * ECN congestion marking on raw Ethernet frames, as a router's AQM does it (RFC 3168 section 5):
 * an IPv4 or IPv6 packet (after at most one 802.1Q tag) whose ECN field is ECT(0) or ECT(1) gets
 * CE; not-ECT and already-CE packets are left alone. IPv4's header checksum is fixed
 * incrementally (RFC 1624) since only one 16-bit word changes.
 *
 * @module
 */

import { updateChecksum16 } from "../stacks/tcpip/wire/checksum.ts";

/** EtherType of IPv4. */
const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of IPv6. */
const ETHERTYPE_IPV6 = 0x86dd;
/** EtherType of an 802.1Q VLAN tag. */
const ETHERTYPE_VLAN = 0x8100;
/** Offset of the EtherType in an untagged Ethernet header. */
const ETH_TYPE_OFFSET = 12;
/** Offset of the IPv4 header checksum. */
const IPV4_CHECKSUM_OFFSET = 10;

/**
 * Result of `markCongestionExperienced`: "not-ect" (not IP, truncated, or not ECN-capable; left
 * alone), "marked" (ECT(0)/ECT(1) changed to CE), "already-ce" (left alone).
 */
export type EcnMark = "not-ect" | "marked" | "already-ce";

/**
 * Sets CE on an ECN-capable IPv4/IPv6 packet inside `frame` (in place). Never throws: frames it
 * cannot parse are reported as `NotEct`.
 */
export function markCongestionExperienced(frame: Uint8Array): EcnMark {
  const len = frame.length;
  if (len < 14) return "not-ect";
  let ip = 14;
  let type = (frame[ETH_TYPE_OFFSET]! << 8) | frame[ETH_TYPE_OFFSET + 1]!;
  if (type === ETHERTYPE_VLAN) {
    if (len < 18) return "not-ect";
    type = (frame[16]! << 8) | frame[17]!;
    ip = 18;
  }
  if (type === ETHERTYPE_IPV4) {
    if (len < ip + 20) return "not-ect";
    const b0 = frame[ip]!;
    if (b0 >> 4 !== 4 || (b0 & 0x0f) < 5) return "not-ect";
    const tos = frame[ip + 1]!;
    const ecn = tos & 3;
    if (ecn === 0) return "not-ect";
    if (ecn === 3) return "already-ce";
    const newTos = tos | 3;
    frame[ip + 1] = newTos;
    const c = ip + IPV4_CHECKSUM_OFFSET;
    const checksum = (frame[c]! << 8) | frame[c + 1]!;
    const updated = updateChecksum16(checksum, (b0 << 8) | tos, (b0 << 8) | newTos);
    frame[c] = updated >>> 8;
    frame[c + 1] = updated & 0xff;
    return "marked";
  }
  if (type === ETHERTYPE_IPV6) {
    if (len < ip + 40) return "not-ect";
    if (frame[ip]! >> 4 !== 6) return "not-ect";
    // Traffic class straddles bytes 0 and 1; its ECN bits are bits 5..4 of byte 1.
    const b1 = frame[ip + 1]!;
    const ecn = (b1 >> 4) & 3;
    if (ecn === 0) return "not-ect";
    if (ecn === 3) return "already-ce";
    frame[ip + 1] = b1 | 0x30;
    return "marked";
  }
  return "not-ect";
}
