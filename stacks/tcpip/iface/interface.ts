/**
 * One IP interface over a `Link`: Ethernet, ARP, IPv4 (with fragmentation and reassembly),
 * IPv6 with NDP (neighbour resolution, router advertisements), ICMPv4/ICMPv6 (echo, errors),
 * and the `IpOutput` that transports (UDP here, TCP elsewhere) send through.
 *
 * Receive path: `poll(now)` drains `link.receive` in batches into one pre-bound callback that
 * parses with reused reprs and hands transport payloads to the registered handler as views;
 * nothing is allocated per packet except `subarray` views, and every bad input is dropped with
 * a named reason in `drops` (nothing throws).
 *
 * Send path: `beginPacket` writes Ethernet + IP headers straight into a link buffer when the
 * next hop's MAC is known and the packet fits the path MTU (zero copy); otherwise it lends a
 * scratch buffer and `commitPacket` fragments (IPv4 and IPv6) and/or queues the packet in the
 * neighbour cache until resolution. Like Linux's per-socket dst cache, a small per-destination
 * cache (`TxDest`: neighbour entry, path MTU, prebuilt Ethernet header) lets repeated sends to
 * a resolved unicast destination skip the route, PMTU and neighbour lookups; it is checked
 * against generation counters that every route, PMTU, neighbour and interface change bumps,
 * and against the earliest route/PMTU expiry, so it never outlives what it was built from.
 *
 * Simplifications, on purpose:
 * - no duplicate address detection (RFC 4862 DAD): configured addresses are used at once;
 * - no SLAAC: router advertisements give a default router, on-link prefixes and the MTU only;
 * - ICMP echo replies and errors go back to the MAC the request came from (symmetric path);
 * - no loopback: packets to our own addresses are refused as "no-route";
 * - no ICMP "reassembly time exceeded" and no redirects; multicast is limited to all-nodes,
 *   solicited-node (IPv6) and all-hosts / broadcast (IPv4) reception;
 * - IPv6 fragments are keyed by the upper-layer protocol found after the extension headers, so
 *   a datagram with extension headers inside its fragmentable part (after the Fragment header)
 *   is not reassembled; IPv6 fragment identifications come from a per-interface counter;
 * - sends made outside `poll()` (a socket written by application code) use the time of the
 *   last poll for neighbour bookkeeping; `ping()` takes `now` explicitly for its RTT.
 *
 * Forwarding: a host drops unicast packets for other addresses; a `Router` (router.ts) sets
 * `forwarder` on its interfaces and uses `forwardPacket` / `sendErrorForCurrent`.
 *
 * @module
 */

import type { Link } from "../../link/link.ts";
import { keptView, keptViews } from "../../link/kept_view.ts";
import type { Instant } from "../../time.ts";
import { NEVER, SECOND } from "../../time.ts";
import { IpAddress } from "../wire/address.ts";
import { ARP_REPLY, ARP_REQUEST, ArpRepr } from "../wire/arp.ts";
import { EMPTY, read16, read32, Span, write16, write32 } from "../wire/bytes.ts";
import {
  foldChecksum,
  internetChecksum,
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  transportChecksumOk,
  writeTransportChecksum,
} from "../wire/checksum.ts";
import { DropCounters, type DropReason } from "../wire/drop.ts";
import {
  ETH_HEADER_LEN,
  EthernetRepr,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
} from "../wire/ethernet.ts";
import { Icmpv4Repr } from "../wire/icmpv4.ts";
import { Icmpv6Repr } from "../wire/icmpv6.ts";
import { emitIpv4Header, IPV4_FLAG_DF, IPV4_FLAG_MF, Ipv4Repr } from "../wire/ipv4.ts";
import { emitIpv6Header, IPV6_NH_FRAGMENT, Ipv6Repr } from "../wire/ipv6.ts";
import { type EchoReply, EchoTracker } from "./echo.ts";
import {
  classifyIcmpV4,
  classifyIcmpV6,
  type ErrorCandidate,
  icmpErrorAllowed,
  type IcmpErrorInfo,
  type IcmpErrorKind,
  type IcmpErrorListener,
  ICMPV4_CODE_PORT_UNREACHABLE,
  ICMPV4_CODE_PROTOCOL_UNREACHABLE,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REPLY,
  ICMPV4_ECHO_REQUEST,
  ICMPV6_CODE_PORT_UNREACHABLE,
  ICMPV6_CODE_UNRECOGNIZED_NEXT_HEADER,
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_NEIGHBOR_ADVERT,
  ICMPV6_NEIGHBOR_SOLICIT,
  ICMPV6_PARAMETER_PROBLEM,
  ICMPV6_ROUTER_ADVERT,
  ICMPV6_ROUTER_SOLICIT,
  TokenBucket,
} from "./icmp.ts";
import { NeighborCache, type NeighborConfig, type NeighborEntry } from "./neighbor.ts";
import type { IpOutput, IpProtocolHandler, IpReceiveInfo } from "./protocol.ts";
import { Reassembler, type ReassemblyConfig } from "./reassembly.ts";
import { maskAddress, type PmtuConfig, prefixMatches, RouteTable } from "./route.ts";
import { UdpLayer, type UdpLayerOptions } from "./udp.ts";

export type { EchoReply } from "./echo.ts";

/**
 * Fills in the checksum of the ICMPv6 message `msg` sent `src` -> `dst`: it covers a
 * pseudo-header (RFC 4443 2.3), which the repr cannot know.
 */
function checksumIcmpv6(msg: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
  writeTransportChecksum(msg, 2, pseudoHeaderSumV6(src, dst, PROTO_ICMPV6, msg.length));
}

/** The fragment fields Ipv4Repr and Ipv6Repr share. */
interface FragmentFields {
  readonly fragmentOffset: number;
  readonly moreFragments: boolean;
}

/** The fields of an Icmpv4Repr/Icmpv6Repr that an echo reply is built from. */
interface EchoReplyRepr {
  type: number;
  code: number;
  restOfHeader: number;
  data: Uint8Array;
  emit(buf: Uint8Array): number;
}

/** What an echo reply copies from the request. */
interface EchoRequestFields {
  readonly restOfHeader: number;
  readonly data: Uint8Array;
}

/** A router's hook for packets that are not ours; see `Interface.forwarder`. */
export type Forwarder = (from: Interface, version: 4 | 6, packet: Uint8Array, now: Instant) => void;

/** One configured address. */
export interface AddressConfig {
  /** The address, as text or value. */
  address: IpAddress | string;
  /** Length of the on-link prefix. */
  prefixLength: number;
}

/** Interface configuration. */
export interface InterfaceConfig {
  /** IPv4 addresses with their on-link prefixes. */
  ipv4?: AddressConfig[];
  /** IPv6 addresses (the fe80:: link-local address from the MAC is added automatically). */
  ipv6?: AddressConfig[];
  /** IPv4 default gateway (must be on-link). */
  gateway4?: IpAddress | string;
  /** IPv6 default gateway. */
  gateway6?: IpAddress | string;
  /** Learn default router, on-link prefixes and MTU from router advertisements. */
  acceptRa?: boolean;
  /** TTL / hop limit of packets we originate (64). */
  ttl?: number;
  /** Frames taken per `link.receive` call (the link's maxBatch). */
  rxBatch?: number;
  /** Receive batches per `poll` before yielding (16); the rest waits for the next poll. */
  rxBudget?: number;
  /** ICMP error token bucket: burst (10) and refill rate per second (10), per family. */
  icmpErrorBurst?: number;
  icmpErrorsPerSecond?: number;
  /** Neighbour cache tunables. */
  neighbor?: NeighborConfig;
  /** Reassembly tunables. */
  reassembly?: ReassemblyConfig;
  /** Path MTU cache tunables. */
  pmtu?: PmtuConfig;
  /**
   * Let transports leave TCP checksums to the link when it offers to complete them
   * (`LinkCapabilities.txChecksumOffload` with `Link.commitPartial`); default true.
   */
  txChecksumOffload?: boolean;
}

/** Thrown for an invalid configuration or registration; the message says what to fix. */
export class InterfaceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterfaceConfigError";
  }
}

/** Packets in and out of one layer. */
export interface PacketCounters {
  rx: number;
  tx: number;
}

/** Per-layer counters of an interface. */
export class InterfaceCounters {
  readonly ethernet: PacketCounters = { rx: 0, tx: 0 };
  readonly arp: PacketCounters = { rx: 0, tx: 0 };
  readonly ipv4: PacketCounters = { rx: 0, tx: 0 };
  readonly ipv6: PacketCounters = { rx: 0, tx: 0 };
  readonly icmpv4: PacketCounters = { rx: 0, tx: 0 };
  /** ICMPv6 including NDP. */
  readonly icmpv6: PacketCounters = { rx: 0, tx: 0 };
  /** NDP messages (a subset of icmpv6). */
  readonly ndp: PacketCounters = { rx: 0, tx: 0 };
  /** Fragments received / sent, and datagrams reassembled. */
  readonly fragments = { rx: 0, tx: 0, reassembled: 0 };
  /** ICMP errors sent, suppressed by the rate limit, and received. */
  readonly icmpErrors = { sent: 0, rateLimited: 0, received: 0 };
  /** Transport payloads handed to handlers. */
  delivered = 0;
  /**
   * TCP/UDP packets accepted with a partial checksum (the folded pseudo-header sum only) from
   * a link with `capabilities.rxPartialChecksum` (a local Linux peer over veth).
   */
  partialChecksums = 0;
  /** Packets sent with their transport checksum left to the link (`commitPacketPartial`). */
  txPartialChecksums = 0;

  /** A plain copy for logs and tests. */
  snapshot(): Record<string, unknown> {
    return JSON.parse(JSON.stringify(this));
  }
}

interface V4Addr {
  address: IpAddress;
  prefixLength: number;
  network: IpAddress;
  broadcast: number;
}

interface V6Addr {
  address: IpAddress;
  prefixLength: number;
}

/**
 * The receive info handed to handlers: one mutable object reused for every packet. `packet`
 * is a view made only when someone reads it (ICMP errors, forwarding).
 */
class RxInfo implements IpReceiveInfo {
  version: 4 | 6 = 4;
  src: Uint8Array = EMPTY;
  dst: Uint8Array = EMPTY;
  ecn = 0;
  ttl = 0;
  checksumVerified = false;
  private readonly span = new Span();
  get packet(): Uint8Array {
    return this.span.view;
  }
  setPacket(buf: Uint8Array, start: number, end: number): void {
    this.span.set(buf, start, end);
  }
  setPacketView(view: Uint8Array): void {
    this.span.assign(view);
  }
}

/** The ICMP error info delivered to listeners: reused. */
class IcmpErrorRecord implements IcmpErrorInfo {
  version: 4 | 6 = 4;
  kind: IcmpErrorKind = "unreachable";
  type = 0;
  code = 0;
  mtu = 0;
  reporter: Uint8Array = new Uint8Array(0);
  src: Uint8Array = new Uint8Array(0);
  dst: Uint8Array = new Uint8Array(0);
  protocol = 0;
  srcPort = -1;
  dstPort = -1;
  quoted: Uint8Array = new Uint8Array(0);
}

class Candidate implements ErrorCandidate {
  version: 4 | 6 = 4;
  src: Uint8Array = new Uint8Array(0);
  dst: Uint8Array = new Uint8Array(0);
  linkMulticast = false;
  dstBroadcast = false;
  fragmentOffset = 0;
  protocol = 0;
  icmpType = -1;
}

/**
 * One cached transmit destination, like Linux's per-socket dst cache: what `begin` worked out
 * for a unicast destination with a resolved neighbour (route, next hop, neighbour entry, path
 * MTU) and the Ethernet header built from it. Valid while the interface's transmit generation
 * (route table + neighbour cache + interface, each bumped on every change) is the one it was
 * filled at and the earliest route/PMTU expiry has not passed.
 */
class TxDest {
  /** 4 or 6; 0 while empty. */
  version = 0;
  /** The IPv4 destination as int32. */
  key4 = 0;
  /** The IPv6 destination. */
  readonly key6 = new Uint8Array(16);
  /** The transmit generation it was filled at. */
  gen = -1;
  /** The earliest route or PMTU expiry at fill time: a lookup after it may differ. */
  validUntil: Instant = 0;
  /** Path MTU (at most what an IP header's length field can describe). */
  mtu = 0;
  /** The next hop's neighbour entry (resolved; the same while the generation holds). */
  entry: NeighborEntry | null = null;
  /** Destination MAC, our MAC, EtherType. */
  readonly eth = new Uint8Array(ETH_HEADER_LEN);
}

/** Slots of the interface's payload-view memo (see `Interface.memoBuf`). */
const PV_MEMO_SLOTS = 4096;
/** Slots of the received-payload views (see `Interface.rxPayload`): the CLI's UMEM frames. */
const RX_MEMO_SLOTS = 16384;

/** Cached destinations per family: direct-mapped by the low bits of the address. */
const TX_CACHE_SLOTS = 8;
/** A handler's deadline, read through `pollAtInto` (single-threaded use). */
const AT = new Float64Array(1);
/** `Interface.pollAt()`'s cell. */
const AT_OUT = new Float64Array(1);

const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ALL_NODES = IpAddress.parse("ff02::1").bytes;
const PROTO_ICMP = 1;
const PROTO_ICMPV6 = 58;
/** Largest ICMPv4 error (RFC 1812 4.3.2.3: at most 576 bytes in all). */
const ICMPV4_ERROR_MAX = 576;
/** Largest ICMPv6 error (RFC 4443 2.4(c): no more than the minimum MTU). */
const ICMPV6_ERROR_MAX = 1280;

// Next-hop kinds.
const NH_NONE = -1;
const NH_UNICAST = 0;
const NH_BROADCAST = 1;
const NH_MULTICAST = 2;

// Pending packet modes.
const P_NONE = 0;
const P_DIRECT = 1;
const P_SCRATCH = 2;

/** The link-local address fe80::/64 + modified EUI-64 of `mac` (RFC 4291 appendix A). */
export function linkLocalFromMac(mac: Uint8Array): IpAddress {
  const b = new Uint8Array(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  b[8] = mac[0]! ^ 0x02;
  b[9] = mac[1]!;
  b[10] = mac[2]!;
  b[11] = 0xff;
  b[12] = 0xfe;
  b[13] = mac[3]!;
  b[14] = mac[4]!;
  b[15] = mac[5]!;
  return IpAddress.fromBytes(b);
}

/** The solicited-node multicast address ff02::1:ffXX:XXXX of `target` (RFC 4291 2.7.1). */
export function solicitedNode(
  target: Uint8Array,
  out: Uint8Array = new Uint8Array(16),
): Uint8Array {
  out.fill(0);
  out[0] = 0xff;
  out[1] = 0x02;
  out[11] = 0x01;
  out[12] = 0xff;
  out[13] = target[13]!;
  out[14] = target[14]!;
  out[15] = target[15]!;
  return out;
}

function isLinkLocal6(b: Uint8Array): boolean {
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}

function toAddress(a: IpAddress | string): IpAddress {
  return typeof a === "string" ? IpAddress.parse(a) : a;
}

/** An IP interface on one link. Add it to the simulator (or a driver loop) as a node. */
export class Interface implements IpOutput {
  /** The device. */
  readonly link: Link;
  /** Our MAC (the link's). */
  readonly mac: Uint8Array;
  /** The automatic IPv6 link-local address. */
  readonly linkLocal: IpAddress;
  /** Route table and path-MTU cache. */
  readonly routes: RouteTable;
  /** Shared ARP/NDP neighbour cache. */
  readonly neighbors: NeighborCache;
  /** Fragment reassembly. */
  readonly reassembler: Reassembler;
  /** Drops by reason, for every layer of this interface (and UDP created by `createUdp`). */
  readonly drops: DropCounters = new DropCounters();
  /** Packets in/out per layer. */
  readonly counters: InterfaceCounters = new InterfaceCounters();
  /** Whether router advertisements are processed. */
  readonly acceptRa: boolean;
  /** TTL / hop limit of originated packets. */
  readonly ttl: number;

  private readonly v4: V4Addr[] = [];
  private readonly v6: V6Addr[] = [];
  /**
   * The IPv4 addresses and broadcast addresses as int32, for the per-packet checks: the
   * records' u32 fields above 2^31 are heap numbers, loaded and converted on every compare.
   */
  private local4 = new Int32Array(0);
  private bcast4 = new Int32Array(0);
  private mtu6: number;
  private readonly handlers: (IpProtocolHandler | undefined)[] = new Array(256);
  private readonly handlerList: IpProtocolHandler[] = [];
  private readonly listeners: IcmpErrorListener[] = [];
  private readonly echo = new EchoTracker();
  private readonly bucket4: TokenBucket;
  private readonly bucket6: TokenBucket;
  private readonly rxBatch: number;
  private readonly rxPartialOk: boolean;
  private readonly rxBudget: number;
  private rxPending = false;
  private now: Instant = 0;
  /**
   * `now` as the driver passed it, for the per-packet calls that take a time (handlers'
   * receive, route and neighbour lookups): a field holding doubles is unboxed on load and
   * re-boxed (a heap number) for every call that is not inlined once the time exceeds 2^31 ns;
   * this field starts as null, so V8 keeps it tagged and passes the driver's number itself.
   */
  private nowRef: Instant | null = null;
  private inPoll = false;

  // Receive-side reprs and scratch, reused for every packet.
  private readonly onFrame: (frame: Uint8Array) => void;
  private readonly eth = new EthernetRepr();
  private readonly arp = new ArpRepr();
  private readonly ip4 = new Ipv4Repr();
  private readonly ip6 = new Ipv6Repr();
  private readonly icmp4 = new Icmpv4Repr();
  private readonly icmp6 = new Icmpv6Repr();
  private readonly rxSrc4 = new Uint8Array(4);
  private readonly rxDst4 = new Uint8Array(4);
  private readonly arpSpa = new Uint8Array(4);
  private readonly rxInfo = new RxInfo();
  private readonly errInfo = new IcmpErrorRecord();
  private readonly candidate = new Candidate();
  private rxLinkMulticast = false;
  private rxDstBroadcast = false;

  // Send-side reprs and state.
  private readonly txArp = new ArpRepr();
  private readonly txIcmp4 = new Icmpv4Repr();
  private readonly txIcmp6 = new Icmpv6Repr();
  private readonly txMac = new Uint8Array(6);
  private readonly scratch = new Uint8Array(ETH_HEADER_LEN + 60 + 65535);
  /** Payload views handed out by `begin`, per lent link buffer (weak: links may drop them). */
  private readonly payloadViews = new WeakMap<Uint8Array, Uint8Array>();
  /** The payload view `payloadViews` held before its current one, per lent buffer. */
  private readonly payloadViews2 = new WeakMap<Uint8Array, Uint8Array>();
  /**
   * A direct-mapped memo in front of `payloadViews`, indexed by the lent buffer's byte offset
   * (frames of a UMEM-like region sit at distinct offsets): the lent buffer and the payload
   * view handed out for it last. An index and two compares instead of a WeakMap probe per
   * packet; a slot holds one buffer at a time, so a miss falls back to the WeakMaps.
   */
  private readonly memoBuf: (Uint8Array | null)[] = new Array(PV_MEMO_SLOTS).fill(null);
  private readonly memoView: Uint8Array[] = new Array(PV_MEMO_SLOTS).fill(EMPTY);
  /** Received-payload views by memory position (see `rxPayload`). */
  private readonly rxViews: Uint8Array[] = keptViews(RX_MEMO_SLOTS);
  private readonly fragBuf: Uint8Array;
  private readonly snBuf = new Uint8Array(16);
  private pendingMode = P_NONE;
  private pendingVersion: 4 | 6 = 4;
  private pendingFrameLen = 0;
  /** Frame offset of the pending direct packet's transport header. */
  private pendingL4Start = 0;
  /** The link completes checksums of frames queued with `commitPartial` (and we may use it). */
  private readonly txOffload: boolean;
  /** The link lends whole frame buffers (`Link.transmitFrame`), used by `beginPacketAt`. */
  private readonly linkFrames: boolean;
  private pendingTotal = 0;
  private pendingMtu = 0;
  private pendingKind = NH_NONE;
  private readonly pendingNextHop = new Uint8Array(16);
  /** `pendingNextHop` as an IPv4 address, made once (a view per packet would be garbage). */
  private readonly pendingNextHop4 = this.pendingNextHop.subarray(0, 4);
  private pendingNextHopLen = 4;
  private directFrameLen = 0;
  /** Per-destination transmit cache (see `TxDest`), IPv4 and IPv6. */
  private readonly txCache4: TxDest[] = [];
  private readonly txCache6: TxDest[] = [];
  /** Bumped when interface state a `TxDest` depends on changes (the IPv6 link MTU). */
  private ifaceGen = 0;
  private ipId = 1;
  private fragId6 = 1;

  constructor(link: Link, config: InterfaceConfig = {}) {
    this.link = link;
    this.mac = link.mac;
    this.mtu6 = link.mtu;
    this.acceptRa = config.acceptRa ?? false;
    this.ttl = config.ttl ?? 64;
    this.rxBatch = config.rxBatch ?? link.capabilities.maxBatch;
    this.rxPartialOk = link.capabilities.rxPartialChecksum === true;
    this.txOffload = config.txChecksumOffload !== false && link.capabilities.txChecksumOffload &&
      typeof link.commitPartial === "function";
    this.linkFrames = typeof link.transmitFrame === "function";
    this.rxBudget = config.rxBudget ?? 16;
    this.routes = new RouteTable(config.pmtu ?? {});
    this.reassembler = new Reassembler((r) => this.drops.count(r), config.reassembly ?? {});
    this.bucket4 = new TokenBucket(config.icmpErrorBurst ?? 10, config.icmpErrorsPerSecond ?? 10);
    this.bucket6 = new TokenBucket(config.icmpErrorBurst ?? 10, config.icmpErrorsPerSecond ?? 10);
    this.fragBuf = new Uint8Array(link.mtu);
    for (let i = 0; i < TX_CACHE_SLOTS; i++) {
      this.txCache4.push(new TxDest());
      this.txCache6.push(new TxDest());
    }
    this.neighbors = new NeighborCache({
      solicit: (v, target, unicast, now) => this.solicit(v, target, unicast, now),
      transmitQueued: (v, packet, mac) => {
        this.transmitFrame(mac, v === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, packet);
      },
      drop: (r) => this.drops.count(r),
    }, { slotSize: link.mtu, ...(config.neighbor ?? {}) });

    for (const a of config.ipv4 ?? []) {
      const address = toAddress(a.address);
      if (address.version !== 4) {
        throw new InterfaceConfigError(`ipv4 entry ${address} is not an IPv4 address`);
      }
      if (!(a.prefixLength >= 0 && a.prefixLength <= 32)) {
        throw new InterfaceConfigError(`IPv4 prefix length ${a.prefixLength} is not in 0..32`);
      }
      const network = maskAddress(address, a.prefixLength);
      const hostMask = a.prefixLength === 32 ? 0 : (0xffffffff >>> a.prefixLength);
      const broadcast = a.prefixLength >= 31 ? 0xffffffff : (network.v4 | hostMask) >>> 0;
      this.v4.push({ address, prefixLength: a.prefixLength, network, broadcast });
      this.routes.add(network, a.prefixLength, null, { source: address, origin: "address" });
    }
    this.local4 = Int32Array.from(this.v4, (a) => a.address.v4 | 0);
    this.bcast4 = Int32Array.from(this.v4, (a) => a.broadcast | 0);
    this.linkLocal = linkLocalFromMac(link.mac);
    this.v6.push({ address: this.linkLocal, prefixLength: 64 });
    this.routes.add(IpAddress.parse("fe80::"), 64, null, {
      source: this.linkLocal,
      origin: "address",
    });
    for (const a of config.ipv6 ?? []) {
      const address = toAddress(a.address);
      if (address.version !== 6) {
        throw new InterfaceConfigError(`ipv6 entry ${address} is not an IPv6 address`);
      }
      if (!(a.prefixLength >= 0 && a.prefixLength <= 128)) {
        throw new InterfaceConfigError(`IPv6 prefix length ${a.prefixLength} is not in 0..128`);
      }
      this.v6.push({ address, prefixLength: a.prefixLength });
      this.routes.add(address, a.prefixLength, null, { source: address, origin: "address" });
    }
    if (config.gateway4 !== undefined) {
      const gw = toAddress(config.gateway4);
      if (gw.version !== 4 || !this.routes.isOnLink(gw.bytes)) {
        throw new InterfaceConfigError(
          `gateway4 ${gw} must be an IPv4 address inside a configured ipv4 prefix`,
        );
      }
      this.routes.add(IpAddress.fromV4(0), 0, gw, { origin: "gateway" });
    }
    if (config.gateway6 !== undefined) {
      const gw = toAddress(config.gateway6);
      if (gw.version !== 6 || !this.routes.isOnLink(gw.bytes)) {
        throw new InterfaceConfigError(
          `gateway6 ${gw} must be an IPv6 address that is link-local or inside an ipv6 prefix`,
        );
      }
      this.routes.add(IpAddress.parse("::"), 0, gw, { origin: "gateway" });
    }
    this.onFrame = (frame) => this.receiveFrame(frame);
  }

  /**
   * Called for a unicast packet addressed to our MAC but not to our IP (a router sets this;
   * hosts leave it null and such packets are dropped as "not-for-us"). `packet` is the whole
   * IP packet, a view valid during the call that the forwarder may modify (TTL).
   */
  forwarder: Forwarder | null = null;

  /** The configured IPv4 addresses. */
  get ipv4Addresses(): IpAddress[] {
    return this.v4.map((a) => a.address);
  }

  /** The IPv6 addresses, link-local first. */
  get ipv6Addresses(): IpAddress[] {
    return this.v6.map((a) => a.address);
  }

  /** The IPv6 link MTU (the link's, or smaller from a router advertisement). */
  get ipv6Mtu(): number {
    return this.mtu6;
  }

  /**
   * Plugs a transport in. Throws `InterfaceConfigError` when the protocol is taken or is ICMP
   * (handled by the interface itself).
   */
  register(handler: IpProtocolHandler): void {
    const p = handler.protocol;
    if (!Number.isInteger(p) || p < 0 || p > 255 || p === PROTO_ICMP || p === PROTO_ICMPV6) {
      throw new InterfaceConfigError(
        `protocol ${p} cannot be registered (0..255, not ICMP which the interface handles)`,
      );
    }
    if (this.handlers[p] !== undefined) {
      throw new InterfaceConfigError(`protocol ${p} already has a handler; register it once`);
    }
    this.handlers[p] = handler;
    this.handlerList.push(handler);
  }

  /** Creates a UDP layer wired to this interface (drops, port unreachable) and registers it. */
  createUdp(options: Omit<UdpLayerOptions, "drops" | "onNoListener"> = {}): UdpLayer {
    const udp = new UdpLayer(this, {
      ...options,
      drops: this.drops,
      onNoListener: (info, now) => this.sendPortUnreachable(info, now),
    });
    this.register(udp);
    return udp;
  }

  /** Subscribes to received ICMP errors; returns an unsubscribe function. */
  onIcmpError(listener: IcmpErrorListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  // ---------------------------------------------------------------- driver

  /**
   * While held, packets sent outside `poll()` (by the application: a ServiceLib's sends, UDP
   * replies) are queued on the link without a flush each; `releaseFlush()` flushes them all at
   * once. A driver loop holds it around the components it polls after `poll()`, so a burst of
   * segments costs one link flush (one AF_XDP kick) instead of one per segment.
   */
  holdFlush(): void {
    this.inPoll = true;
  }

  /** Ends `holdFlush()` and flushes the link. */
  releaseFlush(): void {
    this.inPoll = false;
    this.link.flush();
  }

  /**
   * Receives and handles pending frames (bounded by `rxBudget` batches), runs timers, polls the
   * handlers, and flushes the link. Returns true when a frame was received or sent.
   */
  poll(now: Instant): boolean {
    this.now = now;
    this.nowRef = now;
    this.inPoll = true;
    const tx0 = this.counters.ethernet.tx;
    let rx = false;
    this.rxPending = false;
    for (let i = 0; i < this.rxBudget; i++) {
      const n = this.link.receive(this.onFrame, this.rxBatch);
      if (n > 0) rx = true;
      if (n < this.rxBatch) break;
      if (i === this.rxBudget - 1) this.rxPending = true;
    }
    this.neighbors.poll(now);
    this.reassembler.poll(now);
    if (this.routes.pollAt() <= now) this.routes.expire(now);
    for (let i = 0; i < this.handlerList.length; i++) this.handlerList[i]!.poll(now);
    this.inPoll = false;
    this.link.flush();
    return rx || this.counters.ethernet.tx !== tx0;
  }

  /** The earliest instant `poll` has work: own timers and every handler's. */
  pollAt(): Instant {
    this.pollAtInto(AT_OUT, 0);
    return AT_OUT[0]!;
  }

  /**
   * `out[i] = pollAt()`, stored instead of returned: a driver loop asks after every step, and
   * an instant (above 2^31 ns) returned from a call that is not inlined is a new heap number.
   */
  pollAtInto(out: Float64Array, i: number): void {
    if (this.rxPending) {
      out[i] = this.now;
      return;
    }
    // The neighbour cache's and TCP's deadlines (REACHABLE timers, retransmissions) are real
    // instants while traffic flows: read through cells (`AT`), as this method is.
    this.neighbors.pollAtInto(out, i);
    const r = this.reassembler.pollAt();
    if (r < out[i]!) out[i] = r;
    const t = this.routes.pollAt();
    if (t < out[i]!) out[i] = t;
    const list = this.handlerList;
    for (let k = 0; k < list.length; k++) {
      const h = list[k]!;
      if (h.pollAtInto !== undefined) {
        h.pollAtInto(AT, 0);
        if (AT[0]! < out[i]!) out[i] = AT[0]!;
      } else {
        const at = h.pollAt();
        if (at < out[i]!) out[i] = at;
      }
    }
  }

  // ---------------------------------------------------------------- echo tool API

  /**
   * Sends an ICMP/ICMPv6 echo request with `payload` to `dst` at `now`. Returns false when
   * there is no route or no room. Replies are read with `takeEchoReply()`.
   */
  ping(dst: IpAddress, id: number, seq: number, payload: Uint8Array, now: Instant): boolean {
    if (now > this.now) this.now = this.nowRef = now;
    const src = this.sourceFor(dst);
    if (src === null) {
      this.drops.count("no-route");
      return false;
    }
    const len = 8 + payload.length;
    const proto = dst.version === 4 ? PROTO_ICMP : PROTO_ICMPV6;
    const buf = this.begin(dst.version, src.bytes, dst.bytes, proto, len, 0);
    if (buf === null) return false;
    if (dst.version === 4) {
      const m = this.txIcmp4;
      m.reset();
      m.type = ICMPV4_ECHO_REQUEST;
      m.identifier = id;
      m.sequence = seq;
      m.data = payload;
      m.emit(buf);
      this.counters.icmpv4.tx++;
    } else {
      const m = this.txIcmp6;
      m.type = ICMPV6_ECHO_REQUEST;
      m.code = 0;
      m.restOfHeader = 0;
      m.identifier = id;
      m.sequence = seq;
      m.data = payload;
      m.emit(buf);
      checksumIcmpv6(buf.subarray(0, len), src.bytes, dst.bytes);
      this.counters.icmpv6.tx++;
    }
    this.echo.sent(dst.version, id & 0xffff, seq & 0xffff, now);
    this.commit();
    return true;
  }

  /** The oldest unread echo reply (with its RTT), or null. */
  takeEchoReply(): EchoReply | null {
    return this.echo.take();
  }

  // ---------------------------------------------------------------- IpOutput

  /** See `IpOutput.beginPacket`. */
  beginPacket(
    src: IpAddress,
    dst: IpAddress,
    protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    if (src.version !== dst.version) {
      this.drops.count("no-route");
      return null;
    }
    return this.begin(dst.version, src.bytes, dst.bytes, protocol, length, ecn);
  }

  /** See `IpOutput.packetBuffer`. */
  packetBuffer: Uint8Array = EMPTY;

  /**
   * See `IpOutput.beginPacketAt`. A destination in the transmit cache, on a link that lends
   * whole frames (`Link.transmitFrame`), gets the frame itself: the same view per device buffer,
   * so the transmit path makes no view per packet; anything else goes through `beginPacket`
   * (offset 0 of its payload view).
   */
  beginPacketAt(
    src: IpAddress,
    dst: IpAddress,
    protocol: number,
    length: number,
    ecn: number,
  ): number {
    if (this.linkFrames && src.version === dst.version) {
      this.pendingMode = P_NONE;
      const v4 = dst.version === 4;
      const d = v4 ? this.cachedDest4(dst.bytes) : this.cachedDest6(dst.bytes);
      if (d !== null && (v4 ? 20 : 40) + length <= d.mtu) {
        const frame = this.beginCachedFrame(d, src.bytes, protocol, length, ecn, true);
        if (frame === null) return -1;
        this.packetBuffer = frame;
        return this.pendingL4Start;
      }
    }
    const payload = this.beginPacket(src, dst, protocol, length, ecn);
    if (payload === null) return -1;
    this.packetBuffer = payload;
    return 0;
  }

  /** See `IpOutput.commitPacket`. */
  commitPacket(): void {
    this.commit();
  }

  /** See `IpOutput.canOffloadChecksum`: a direct packet on an offloading link. */
  canOffloadChecksum(): boolean {
    return this.txOffload && this.pendingMode === P_DIRECT;
  }

  /** See `IpOutput.commitPacketPartial`. */
  commitPacketPartial(checksumOffset: number): void {
    if (!this.canOffloadChecksum()) {
      throw new InterfaceConfigError(
        "commitPacketPartial() without canOffloadChecksum(): complete the checksum and use commitPacket()",
      );
    }
    this.pendingMode = P_NONE;
    const c = this.counters;
    this.link.commitPartial!(this.pendingFrameLen, this.pendingL4Start, checksumOffset);
    c.txPartialChecksums++;
    c.ethernet.tx++;
    if (this.pendingVersion === 4) c.ipv4.tx++;
    else c.ipv6.tx++;
    if (!this.inPoll) this.link.flush();
  }

  /** See `IpOutput.sourceFor`. */
  sourceFor(dst: IpAddress): IpAddress | null {
    return this.sourceForBytes(dst.version, dst.bytes);
  }

  /** See `IpOutput.mtuFor`. */
  mtuFor(dst: IpAddress): number {
    return this.routes.pathMtu(dst.bytes, dst.version === 4 ? this.link.mtu : this.mtu6, this.now);
  }

  /** See `IpOutput.isLocal`. */
  isLocal(address: IpAddress): boolean {
    return address.version === 4 ? this.isLocal4(address.v4) : this.isLocal6(address.bytes);
  }

  // ---------------------------------------------------------------- receive

  private receiveFrame(frame: Uint8Array): void {
    const c = this.counters;
    c.ethernet.rx++;
    const eth = this.eth;
    const bad = eth.parse(frame);
    if (bad !== undefined) return this.drop(bad);
    const d = eth.dst;
    const multicast = (d[0]! & 1) !== 0;
    if (!multicast && !macEq(d, this.mac)) return this.drop("not-for-us");
    this.rxLinkMulticast = multicast;
    // The sender's MAC stays in `eth.src` until the next frame is parsed, which is after this
    // one is handled: the NDP handlers read it there (no copy per frame).
    switch (eth.ethertype) {
      // Offsets rather than views: nothing is allocated until a transport needs its payload.
      case ETHERTYPE_ARP:
        return this.receiveArp(frame, eth.payloadStart, frame.length);
      case ETHERTYPE_IPV4:
        return this.receiveIpv4(frame, eth.payloadStart, frame.length);
      case ETHERTYPE_IPV6:
        return this.receiveIpv6(frame, eth.payloadStart, frame.length);
      default:
        return this.drop("unsupported-ethertype");
    }
  }

  private drop(reason: DropReason): void {
    this.drops.count(reason);
  }

  private receiveArp(buf: Uint8Array, start: number, end: number): void {
    const a = this.arp;
    const bad = a.parseAt(buf, start, end);
    if (bad !== undefined) return this.drop(bad);
    this.counters.arp.rx++;
    const now = this.now;
    if (this.isLocal4(a.spa)) return this.drop("bad-source-address");
    const forUs = this.isLocal4(a.tpa);
    const spa = this.arpSpa;
    write32(spa, 0, a.spa);
    if (a.spa !== 0 && (a.sha[0]! & 1) === 0) {
      if (a.operation === ARP_REPLY && forUs) this.neighbors.confirm(4, spa, a.sha, now);
      else this.neighbors.observe(4, spa, a.sha, now, forUs);
    }
    if (!forUs) return this.drop("not-for-us");
    if (a.operation !== ARP_REQUEST) return;
    const out = this.link.transmitBuffer(ETH_HEADER_LEN + 28);
    if (out === null) return this.drop("link-full");
    writeEth(out, a.sha, this.mac, ETHERTYPE_ARP);
    const r = this.txArp;
    r.operation = ARP_REPLY;
    r.sha.set(this.mac);
    r.spa = a.tpa;
    r.tha.set(a.sha);
    r.tpa = a.spa;
    r.emit(out.subarray(ETH_HEADER_LEN));
    this.link.commit(ETH_HEADER_LEN + 28);
    this.counters.ethernet.tx++;
    this.counters.arp.tx++;
  }

  private receiveIpv4(buf: Uint8Array, start: number, end: number): void {
    const ip = this.ip4;
    const bad = ip.parseAt(buf, start, end);
    if (bad !== undefined) return this.drop(bad);
    this.counters.ipv4.rx++;
    const src = ip.src, dst = ip.dst;
    if ((src >>> 28) === 0xe || src === 0xffffffff || this.isBroadcast4(src | 0)) {
      return this.drop("bad-source-address");
    }
    const bcast = dst === 0xffffffff || this.isBroadcast4(dst | 0);
    write32(this.rxSrc4, 0, src);
    write32(this.rxDst4, 0, dst);
    if (!bcast && !this.isLocal4(dst | 0) && dst !== 0xe0000001) {
      if (this.forwarder === null || this.rxLinkMulticast || (dst >>> 28) === 0xe) {
        return this.drop("not-for-us");
      }
      this.rxDstBroadcast = false;
      this.fillInfo(4, this.rxSrc4, this.rxDst4, ip.ecn, ip.ttl);
      this.rxInfo.setPacket(buf, start, ip.payloadEnd);
      this.forwarder(this, 4, this.rxInfo.packet, this.now);
      return;
    }
    this.rxDstBroadcast = bcast || (dst >>> 28) === 0xe;
    const info = this.rxInfo;
    this.fillInfo(4, this.rxSrc4, this.rxDst4, ip.ecn, ip.ttl);
    info.setPacket(buf, start, ip.payloadEnd);
    let body = this.rxPayload(buf, ip.payloadStart, ip.payloadEnd);
    const protocol = ip.protocol;
    if (ip.isFragment) {
      const header = buf.subarray(start, ip.payloadStart);
      const out = this.reassemble(
        4,
        this.rxSrc4,
        this.rxDst4,
        protocol,
        ip.identification,
        ip,
        header,
        body,
      );
      if (out === null) return;
      body = out;
    }
    if (protocol === PROTO_ICMP) return this.receiveIcmpv4(body);
    this.dispatch(protocol, body, 0);
  }

  /**
   * `buf[start, end)` for the protocol handler: a kept view of the same memory when there is one
   * (an AF_XDP link receives into the same UMEM frames over and over, and a bulk transfer's data
   * or ACKs repeat their lengths); a fresh view per received packet was the receive path's
   * largest allocation. The views are kept by memory position (frames at distinct 2 KiB-aligned
   * offsets get distinct slots, neighbours share cache lines): a WeakMap keyed by the buffer
   * probed a random line of a table as large as the UMEM's frame count, and its cache misses
   * were 3 % of the CPU while receiving at 6 Gbit/s (`profile_nsm.ts --perf`).
   */
  private rxPayload(buf: Uint8Array, start: number, end: number): Uint8Array {
    const slot = ((buf.byteOffset + start) >>> 11) & (RX_MEMO_SLOTS - 1);
    return keptView(this.rxViews, slot, buf, start, end);
  }

  /**
   * Adds a received fragment (`header`: its IP header, `body`: its payload) to the reassembler.
   * Returns the whole payload once complete, with `rxInfo` pointing at the reassembled packet;
   * null while fragments are missing.
   */
  private reassemble(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    id: number,
    fragment: FragmentFields,
    header: Uint8Array,
    body: Uint8Array,
  ): Uint8Array | null {
    this.counters.fragments.rx++;
    const out = this.reassembler.add(
      version,
      src,
      dst,
      protocol,
      id,
      fragment.fragmentOffset,
      fragment.moreFragments,
      header,
      body,
      this.now,
    );
    if (out === null) return null;
    this.counters.fragments.reassembled++;
    this.rxInfo.setPacketView(this.reassembler.lastPacket);
    return out;
  }

  private dispatch(protocol: number, body: Uint8Array, fragOffset: number): void {
    const h = this.handlers[protocol];
    const info = this.rxInfo;
    if (h === undefined) {
      this.drop("unsupported-protocol");
      if (info.version === 4) {
        this.sendIcmpError(
          4,
          ICMPV4_DEST_UNREACHABLE,
          ICMPV4_CODE_PROTOCOL_UNREACHABLE,
          0,
          protocol,
          -1,
          fragOffset,
        );
      } else {
        // Pointer to the Next Header field that named the protocol (the fixed header's when
        // there are no extension headers; otherwise approximated by the fixed header's).
        this.sendIcmpError(
          6,
          ICMPV6_PARAMETER_PROBLEM,
          ICMPV6_CODE_UNRECOGNIZED_NEXT_HEADER,
          6,
          protocol,
          -1,
          fragOffset,
        );
      }
      return;
    }
    this.counters.delivered++;
    if (this.rxPartialOk && !info.checksumVerified) this.checkPartial(protocol, body);
    h.receive(info, body, this.nowRef ?? 0);
  }

  private receiveIcmpv4(body: Uint8Array): void {
    const m = this.icmp4;
    const bad = m.parse(body);
    if (bad !== undefined) return this.drop(bad);
    this.counters.icmpv4.rx++;
    const info = this.rxInfo;
    switch (m.type) {
      case ICMPV4_ECHO_REQUEST:
        return this.answerEcho(4, this.txIcmp4, ICMPV4_ECHO_REPLY, m, body.length);
      case ICMPV4_ECHO_REPLY:
        this.echo.received(4, m.identifier, m.sequence, m.data.length, info.src, this.now);
        return;
      default: {
        const kind = classifyIcmpV4(m.type, m.code);
        if (kind === null) return this.drop("unsupported-icmp-type");
        this.receivedError(4, kind, m.type, m.code, m.nextHopMtu, m.data);
      }
    }
  }

  /**
   * Answers the echo request in `request` (the parsed ICMP message of `len` bytes) with an
   * echo reply carrying the same rest of header and data, from the address it was sent to.
   */
  private answerEcho(
    version: 4 | 6,
    r: EchoReplyRepr,
    replyType: number,
    request: EchoRequestFields,
    len: number,
  ): void {
    // RFC 1122 3.2.2.6 allows ignoring broadcast echo (smurf amplification): we do, and the
    // same for IPv6 multicast.
    if (this.rxDstBroadcast) return this.drop("not-for-us");
    const info = this.rxInfo;
    const protocol = version === 4 ? PROTO_ICMP : PROTO_ICMPV6;
    const buf = this.begin(version, info.dst, info.src, protocol, len, 0);
    if (buf === null) return;
    r.type = replyType;
    r.code = 0;
    r.restOfHeader = request.restOfHeader;
    r.data = request.data;
    r.emit(buf);
    r.data = EMPTY;
    if (version === 4) {
      this.counters.icmpv4.tx++;
    } else {
      checksumIcmpv6(buf.subarray(0, len), info.dst, info.src);
      this.counters.icmpv6.tx++;
    }
    this.commit();
  }

  private receiveIpv6(buf: Uint8Array, start: number, end: number): void {
    const ip = this.ip6;
    const bad = ip.parseAt(buf, start, end);
    if (bad !== undefined) return this.drop(bad);
    this.counters.ipv6.rx++;
    const src = ip.src, dst = ip.dst;
    if (src[0] === 0xff) return this.drop("bad-source-address");
    let multicastDst = false;
    if (dst[0] === 0xff) {
      multicastDst = true;
      if (!bytesEq(dst, ALL_NODES) && !this.isOurSolicitedNode(dst)) {
        return this.drop("not-for-us");
      }
    } else if (!this.isLocal6(dst)) {
      if (this.forwarder === null || this.rxLinkMulticast) return this.drop("not-for-us");
      // RFC 4291 2.5.6: link-local addresses are never forwarded.
      if (isLinkLocal6(src) || isLinkLocal6(dst)) return this.drop("bad-source-address");
      this.rxDstBroadcast = false;
      this.fillInfo(6, src, dst, ip.ecn, ip.hopLimit);
      this.rxInfo.setPacket(buf, start, start + 40 + ip.payloadLength);
      this.forwarder(this, 6, this.rxInfo.packet, this.now);
      return;
    }
    this.rxDstBroadcast = multicastDst;
    const info = this.rxInfo;
    this.fillInfo(6, src, dst, ip.ecn, ip.hopLimit);
    info.setPacket(buf, start, start + 40 + ip.payloadLength);
    let body = this.rxPayload(buf, ip.payloadStart, ip.payloadEnd);
    const protocol = ip.protocol;
    if (ip.fragmentPresent) {
      const header = buf.subarray(start, start + 40);
      const out = this.reassemble(6, src, dst, protocol, ip.fragmentId, ip, header, body);
      if (out === null) return;
      body = out;
    }
    if (protocol === PROTO_ICMPV6) return this.receiveIcmpv6(body);
    this.dispatch(protocol, body, 0);
  }

  private receiveIcmpv6(body: Uint8Array): void {
    const info = this.rxInfo;
    const m = this.icmp6;
    const bad = m.parse(body);
    if (bad !== undefined) return this.drop(bad);
    if (
      !info.checksumVerified &&
      !transportChecksumOk(body, pseudoHeaderSumV6(info.src, info.dst, PROTO_ICMPV6, body.length))
    ) return this.drop("bad-checksum");
    this.counters.icmpv6.rx++;
    if (m.isNdp) {
      this.counters.ndp.rx++;
      // RFC 4861 7.1.1 / 6.1.2: NDP messages come with hop limit 255 (not forwarded) and code 0.
      if (info.ttl !== 255 || m.code !== 0) return this.drop("bad-ndp");
    }
    switch (m.type) {
      case ICMPV6_ECHO_REQUEST:
        return this.answerEcho(6, this.txIcmp6, ICMPV6_ECHO_REPLY, m, body.length);
      case ICMPV6_ECHO_REPLY:
        this.echo.received(6, m.identifier, m.sequence, m.data.length, info.src, this.now);
        return;
      case ICMPV6_NEIGHBOR_SOLICIT:
        return this.receiveNs();
      case ICMPV6_NEIGHBOR_ADVERT:
        return this.receiveNa();
      case ICMPV6_ROUTER_ADVERT:
        return this.receiveRa();
      case ICMPV6_ROUTER_SOLICIT:
        return this.drop("not-for-us"); // hosts ignore RS (RFC 4861 6.2.6)
      default: {
        const kind = classifyIcmpV6(m.type, m.code);
        if (kind === null) return this.drop("unsupported-icmp-type");
        this.receivedError(6, kind, m.type, m.code, kind === "packet-too-big" ? m.mtu : 0, m.data);
      }
    }
  }

  private receiveNs(): void {
    const m = this.icmp6, info = this.rxInfo;
    if (m.target[0] === 0xff) return this.drop("bad-ndp");
    const unspecifiedSrc = isZero(info.src);
    // DAD probes (from ::) must go to a solicited-node address and carry no SLLA.
    if (unspecifiedSrc && (m.sourceLlaPresent || !this.rxDstBroadcast)) {
      return this.drop("bad-ndp");
    }
    if (!this.isLocal6(m.target)) return this.drop("not-for-us");
    if (!unspecifiedSrc && m.sourceLlaPresent) {
      this.neighbors.observe(6, info.src, m.sourceLla, this.now, true);
    }
    // Answer: solicited NA with our MAC, to the asker (or all-nodes for a DAD probe).
    const dstMac = unspecifiedSrc
      ? multicastMac6(ALL_NODES, this.txMac)
      : m.sourceLlaPresent
      ? m.sourceLla
      : this.eth.src;
    const dstIp = unspecifiedSrc ? ALL_NODES : info.src;
    const body = this.beginDirect(6, dstMac, m.target, dstIp, PROTO_ICMPV6, 255, 32);
    if (body === null) return;
    const r = this.txIcmp6;
    r.reset();
    r.type = ICMPV6_NEIGHBOR_ADVERT;
    r.solicitedFlag = !unspecifiedSrc;
    r.overrideFlag = true;
    r.target.set(m.target);
    r.targetLlaPresent = true;
    r.targetLla.set(this.mac);
    this.sendNdp(body, m.target, dstIp);
  }

  private receiveNa(): void {
    const m = this.icmp6;
    if (m.target[0] === 0xff) return this.drop("bad-ndp");
    // RFC 4861 7.1.2: a solicited NA to a multicast destination is invalid.
    if (m.solicitedFlag && this.rxDstBroadcast) return this.drop("bad-ndp");
    if (this.isLocal6(m.target)) return this.drop("bad-source-address"); // address conflict
    const mac = m.targetLlaPresent ? m.targetLla : this.eth.src;
    if (m.solicitedFlag) this.neighbors.confirm(6, m.target, mac, this.now);
    else if (m.overrideFlag || m.targetLlaPresent) {
      this.neighbors.observe(6, m.target, mac, this.now, false);
    }
  }

  private receiveRa(): void {
    const m = this.icmp6, info = this.rxInfo;
    if (!this.acceptRa) return this.drop("not-for-us");
    if (!isLinkLocal6(info.src)) return this.drop("bad-ndp");
    const now = this.now;
    const router = IpAddress.fromBytes(info.src);
    if (m.sourceLlaPresent) this.neighbors.observe(6, info.src, m.sourceLla, now, true);
    const lifetime = m.routerLifetime;
    const any6 = IpAddress.parse("::");
    if (lifetime > 0) {
      this.routes.add(any6, 0, router, { origin: "ra", expiresAt: now + lifetime * SECOND });
    } else {
      this.routes.remove(any6, 0, "ra");
    }
    if (m.prefixPresent && m.prefixOnLink && m.prefixLength <= 128 && m.prefix[0] !== 0xff) {
      const prefix = IpAddress.fromBytes(m.prefix);
      if (!isLinkLocal6(m.prefix)) {
        if (m.prefixValidLifetime === 0) this.routes.remove(prefix, m.prefixLength, "ra");
        else {
          const expiresAt = m.prefixValidLifetime === 0xffffffff
            ? NEVER
            : now + m.prefixValidLifetime * SECOND;
          this.routes.add(prefix, m.prefixLength, null, { origin: "ra", expiresAt });
        }
      }
    }
    if (m.mtuOptionPresent && m.mtuOption >= 1280 && m.mtuOption <= this.link.mtu) {
      if (this.mtu6 !== m.mtuOption) this.ifaceGen++;
      this.mtu6 = m.mtuOption;
    }
  }

  /** Parses the quoted packet of a received ICMP error and tells PMTU, the handler, listeners. */
  private receivedError(
    version: 4 | 6,
    kind: IcmpErrorKind,
    type: number,
    code: number,
    mtu: number,
    quoted: Uint8Array,
  ): void {
    const e = this.errInfo;
    let hl: number, protocol: number;
    if (version === 4) {
      if (quoted.length < 20 || quoted[0]! >>> 4 !== 4) return this.drop("truncated");
      hl = (quoted[0]! & 0x0f) * 4;
      if (hl < 20 || quoted.length < hl) return this.drop("truncated");
      protocol = quoted[9]!;
      e.src = quoted.subarray(12, 16);
      e.dst = quoted.subarray(16, 20);
      if (!this.isLocal4(read32(quoted, 12))) return this.drop("not-for-us");
    } else {
      if (quoted.length < 40 || quoted[0]! >>> 4 !== 6) return this.drop("truncated");
      hl = 40;
      protocol = quoted[6]!;
      e.src = quoted.subarray(8, 24);
      e.dst = quoted.subarray(24, 40);
      if (!this.isLocal6(e.src)) return this.drop("not-for-us");
    }
    this.counters.icmpErrors.received++;
    const ports = quoted.length >= hl + 4 && (protocol === 6 || protocol === 17);
    e.version = version;
    e.kind = kind;
    e.type = type;
    e.code = code;
    e.reporter = this.rxInfo.src;
    e.protocol = protocol;
    e.srcPort = ports ? read16(quoted, hl) : -1;
    e.dstPort = ports ? read16(quoted, hl + 2) : -1;
    e.quoted = quoted.subarray(hl);
    e.mtu = 0;
    if ((kind === "frag-needed" || kind === "packet-too-big") && mtu > 0) {
      const linkMtu = version === 4 ? this.link.mtu : this.mtu6;
      e.mtu = this.routes.learnPmtu(e.dst, mtu, linkMtu, this.now);
    }
    const h = this.handlers[protocol];
    if (h !== undefined && h.icmpError !== undefined) h.icmpError(e, this.now);
    for (let i = 0; i < this.listeners.length; i++) this.listeners[i]!(e, this.now);
  }

  // ---------------------------------------------------------------- forwarding

  /**
   * Sends an IP packet we did not originate (a router's output side): next hop by route,
   * neighbour resolution, and IPv4 fragmentation when DF is clear. Returns 0 when sent or
   * queued, -1 without a unicast route (counted "no-route"), or the path MTU when the packet
   * is too big and may not be fragmented (IPv6, or IPv4 with DF): the caller answers with
   * frag-needed / packet-too-big.
   */
  forwardPacket(version: 4 | 6, packet: Uint8Array): number {
    const dst = version === 4 ? packet.subarray(16, 20) : packet.subarray(24, 40);
    const kind = this.nextHop(version, dst);
    if (kind !== NH_UNICAST) {
      this.drops.count("no-route");
      return -1;
    }
    const mtu = this.routes.pathMtu(
      dst,
      version === 4 ? this.link.mtu : this.mtu6,
      this.nowRef ?? 0,
    );
    this.pendingKind = kind;
    this.pendingMtu = mtu;
    if (packet.length <= mtu) {
      this.sendPacket(version, packet);
      return 0;
    }
    if (version === 6 || (read16(packet, 6) & 0x4000) !== 0) {
      this.drops.count("too-big");
      return mtu;
    }
    this.fragment4(packet);
    return 0;
  }

  /**
   * Sends an ICMP error about the packet being received now (for a forwarder): "time-exceeded"
   * (TTL/hop limit), "unreachable" (no route), or "too-big" with `mtu` (frag-needed /
   * packet-too-big). Subject to the same rules and rate limit as other errors.
   */
  sendErrorForCurrent(what: "time-exceeded" | "unreachable" | "too-big", mtu = 0): void {
    const info = this.rxInfo;
    const p = info.packet;
    const v4 = info.version === 4;
    const protocol = v4 ? p[9]! : p[6]!;
    const hl = v4 ? (p[0]! & 0x0f) * 4 : 40;
    const isIcmp = protocol === (v4 ? PROTO_ICMP : PROTO_ICMPV6);
    const icmpType = isIcmp && p.length > hl ? p[hl]! : -1;
    const fragOffset = v4 ? (read16(p, 6) & 0x1fff) * 8 : 0;
    if (what === "time-exceeded") {
      this.sendIcmpError(info.version, v4 ? 11 : 3, 0, 0, protocol, icmpType, fragOffset);
    } else if (what === "unreachable") {
      this.sendIcmpError(info.version, v4 ? 3 : 1, 0, 0, protocol, icmpType, fragOffset);
    } else if (v4) {
      this.sendIcmpError(4, 3, 4, mtu & 0xffff, protocol, icmpType, fragOffset);
    } else {
      // RFC 4443 2.4(e.3): Packet Too Big may answer multicast; we only forward unicast anyway.
      this.sendIcmpError(6, 2, 0, mtu, protocol, icmpType, fragOffset);
    }
  }

  /**
   * On a link whose peer may leave checksums partial (veth), marks a TCP/UDP packet whose
   * checksum field equals the folded pseudo-header sum as verified: that is exactly what
   * Linux writes for CHECKSUM_PARTIAL. A full checksum that happens to equal it would also
   * be accepted by the transport, so nothing correct is lost; any other value is left for
   * the transport to verify (and drop as bad-checksum when wrong).
   */
  private checkPartial(protocol: number, body: Uint8Array): void {
    let off: number;
    let len: number;
    if (protocol === 6) {
      if (body.length < 20) return;
      off = 16;
      len = body.length;
    } else if (protocol === 17) {
      if (body.length < 8) return;
      off = 6;
      len = read16(body, 4);
      if (len < 8 || len > body.length) return;
    } else return;
    const field = read16(body, off);
    const info = this.rxInfo;
    const sum = info.version === 4
      ? pseudoHeaderSumV4(read32(info.src, 0), read32(info.dst, 0), protocol, len)
      : pseudoHeaderSumV6(info.src, info.dst, protocol, len);
    // foldChecksum() complements; the partial field is the folded sum itself.
    if (field === (~foldChecksum(sum) & 0xffff)) {
      info.checksumVerified = true;
      this.counters.partialChecksums++;
    }
  }

  private fillInfo(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    ecn: number,
    ttl: number,
  ): void {
    const info = this.rxInfo;
    info.version = version;
    info.src = src;
    info.dst = dst;
    info.ecn = ecn;
    info.ttl = ttl;
    info.checksumVerified = this.link.capabilities.rxChecksumVerified;
  }

  // ---------------------------------------------------------------- ICMP errors we send

  /** Answers a datagram to a port without a listener (the UDP layer calls this). */
  sendPortUnreachable(info: IpReceiveInfo, _now: Instant): void {
    if (info !== this.rxInfo) return; // only for the packet being received now
    if (info.version === 4) {
      this.sendIcmpError(4, ICMPV4_DEST_UNREACHABLE, ICMPV4_CODE_PORT_UNREACHABLE, 0, 17, -1, 0);
    } else {
      this.sendIcmpError(6, ICMPV6_DEST_UNREACHABLE, ICMPV6_CODE_PORT_UNREACHABLE, 0, 17, -1, 0);
    }
  }

  private sendIcmpError(
    version: 4 | 6,
    type: number,
    code: number,
    rest: number,
    protocol: number,
    icmpType: number,
    fragOffset: number,
  ): void {
    const info = this.rxInfo;
    const c = this.candidate;
    c.version = version;
    c.src = info.src;
    c.dst = info.dst;
    c.linkMulticast = this.rxLinkMulticast;
    c.dstBroadcast = this.rxDstBroadcast;
    c.fragmentOffset = fragOffset;
    c.protocol = protocol;
    c.icmpType = icmpType;
    if (!icmpErrorAllowed(c)) return;
    if (!(version === 4 ? this.bucket4 : this.bucket6).take(this.now)) {
      this.counters.icmpErrors.rateLimited++;
      this.drops.count("icmp-rate-limited");
      return;
    }
    const hdr = version === 4 ? 28 : 48;
    const max = (version === 4 ? ICMPV4_ERROR_MAX : Math.min(ICMPV6_ERROR_MAX, this.mtu6)) - hdr;
    const quote = info.packet.subarray(0, Math.min(info.packet.length, max));
    const len = 8 + quote.length;
    const proto = version === 4 ? PROTO_ICMP : PROTO_ICMPV6;
    // From the address the packet was sent to, or (for a packet we forward) our address
    // towards its sender.
    const from = this.isLocalBytes(version, info.dst)
      ? info.dst
      : this.sourceForBytes(version, info.src)?.bytes ?? null;
    if (from === null) return;
    const buf = this.begin(version, from, info.src, proto, len, 0);
    if (buf === null) return;
    buf[0] = type;
    buf[1] = code;
    write16(buf, 2, 0);
    write32(buf, 4, rest);
    buf.set(quote, 8);
    const msg = buf.subarray(0, len);
    if (version === 4) {
      write16(buf, 2, internetChecksum(msg));
      this.counters.icmpv4.tx++;
    } else {
      checksumIcmpv6(msg, from, info.src);
      this.counters.icmpv6.tx++;
    }
    this.counters.icmpErrors.sent++;
    this.commit();
  }

  // ---------------------------------------------------------------- send

  /**
   * Starts an IP packet from `src` to `dst` (raw bytes) with a `length`-byte payload and
   * returns the payload buffer, or null (counted) without a route or room.
   */
  private begin(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    this.pendingMode = P_NONE;
    const d = version === 4 ? this.cachedDest4(dst) : this.cachedDest6(dst);
    if (d !== null && (version === 4 ? 20 : 40) + length <= d.mtu) {
      return this.beginCached(d, src, protocol, length, ecn);
    }
    return this.beginLookup(version, src, dst, protocol, length, ecn);
  }

  /** The sum of the generations a `TxDest` depends on: any change anywhere alters it. */
  private txGeneration(): number {
    return this.routes.generation + this.neighbors.generation + this.ifaceGen;
  }

  /** The valid cached destination for the IPv4 address `dst`, or null. */
  private cachedDest4(dst: Uint8Array): TxDest | null {
    const k = (dst[0]! << 24) | (dst[1]! << 16) | (dst[2]! << 8) | dst[3]!;
    const d = this.txCache4[(k ^ (k >>> 8)) & (TX_CACHE_SLOTS - 1)]!;
    if (d.key4 !== k || d.version !== 4) return null;
    if (d.gen !== this.txGeneration() || this.now >= d.validUntil) return null;
    return d;
  }

  /** The valid cached destination for the IPv6 address `dst`, or null. */
  private cachedDest6(dst: Uint8Array): TxDest | null {
    const d = this.txCache6[(dst[15]! ^ dst[13]!) & (TX_CACHE_SLOTS - 1)]!;
    if (d.version !== 6) return null;
    const k = d.key6;
    for (let i = 15; i >= 0; i--) if (k[i] !== dst[i]) return null;
    if (d.gen !== this.txGeneration() || this.now >= d.validUntil) return null;
    return d;
  }

  /**
   * Remembers the destination `begin` just resolved to the neighbour `entry` (a unicast next
   * hop) with path MTU `mtu`, so the next packets to it skip the lookups.
   */
  private fillDest(version: 4 | 6, dst: Uint8Array, entry: NeighborEntry, mtu: number): void {
    let d: TxDest;
    if (version === 4) {
      const k = (dst[0]! << 24) | (dst[1]! << 16) | (dst[2]! << 8) | dst[3]!;
      d = this.txCache4[(k ^ (k >>> 8)) & (TX_CACHE_SLOTS - 1)]!;
      d.key4 = k;
    } else {
      d = this.txCache6[(dst[15]! ^ dst[13]!) & (TX_CACHE_SLOTS - 1)]!;
      d.key6.set(dst);
    }
    d.version = version;
    d.gen = this.txGeneration();
    // Lookups skip routes and PMTU entries past their expiry before `expire` removes them.
    d.validUntil = this.routes.pollAt();
    // Larger is refused as too big by the lookup path; keep those packets on it.
    d.mtu = Math.min(mtu, version === 4 ? 65535 : 65575);
    d.entry = entry;
    writeEth(d.eth, entry.mac, this.mac, version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
  }

  /** `begin` for a destination in the transmit cache whose packet fits its path MTU. */
  private beginCached(
    d: TxDest,
    src: Uint8Array,
    protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    const buf = this.beginCachedFrame(d, src, protocol, length, ecn, false);
    return buf === null ? null : this.lendPayload(buf, this.pendingL4Start, length);
  }

  /**
   * Lends a link buffer for a packet to the cached destination `d` and writes its Ethernet and
   * IP headers; returns the buffer (the whole frame buffer with `whole`, else exactly the
   * frame) with the pending state set, or null (counted).
   */
  private beginCachedFrame(
    d: TxDest,
    src: Uint8Array,
    protocol: number,
    length: number,
    ecn: number,
    whole: boolean,
  ): Uint8Array | null {
    this.neighbors.touch(d.entry!, this.now);
    const v4 = d.version === 4;
    const hl = v4 ? 20 : 40;
    const frameLen = ETH_HEADER_LEN + hl + length;
    const buf = whole ? this.link.transmitFrame!(frameLen) : this.link.transmitBuffer(frameLen);
    if (buf === null) {
      this.drops.count("link-full");
      return null;
    }
    const eth = d.eth;
    for (let i = 0; i < ETH_HEADER_LEN; i++) buf[i] = eth[i]!;
    if (v4) {
      const id = this.ipId;
      this.ipId = (id + 1) & 0xffff;
      const s = (src[0]! << 24) | (src[1]! << 16) | (src[2]! << 8) | src[3]!;
      // DF on TCP so path MTU discovery works (RFC 1191); other protocols may be fragmented.
      const ff = protocol === 6 ? IPV4_FLAG_DF : 0;
      emitIpv4Header(
        buf,
        ETH_HEADER_LEN,
        ecn & 3,
        hl + length,
        id,
        ff,
        this.ttl,
        protocol,
        s,
        d.key4,
      );
      this.pendingVersion = 4;
    } else {
      emitIpv6Header(buf, ETH_HEADER_LEN, ecn & 3, 0, length, protocol, this.ttl, src, d.key6);
      this.pendingVersion = 6;
    }
    this.pendingMode = P_DIRECT;
    this.pendingFrameLen = frameLen;
    this.pendingL4Start = ETH_HEADER_LEN + hl;
    this.pendingTotal = hl + length;
    this.pendingMtu = d.mtu;
    this.pendingKind = NH_UNICAST;
    return buf;
  }

  /** `begin` by route, neighbour and PMTU lookups; fills the transmit cache when it can. */
  private beginLookup(
    version: 4 | 6,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    const kind = this.nextHop(version, dst);
    if (kind === NH_NONE) {
      this.drops.count("no-route");
      return null;
    }
    const hl = version === 4 ? 20 : 40;
    if (hl + length > 65535 + (version === 6 ? 40 : 0)) {
      this.drops.count("too-big");
      return null;
    }
    const mtu = this.routes.pathMtu(
      dst,
      version === 4 ? this.link.mtu : this.mtu6,
      this.nowRef ?? 0,
    );
    const fits = hl + length <= mtu;
    let mac: Uint8Array | null;
    let entry: NeighborEntry | null = null;
    if (kind === NH_UNICAST) {
      entry = this.neighbors.lookupEntry(
        version,
        this.pendingNextHopLen === 4 ? this.pendingNextHop4 : this.pendingNextHop,
        this.now,
      );
      mac = entry === null ? null : entry.mac;
    } else mac = this.txMac;
    let out: Uint8Array;
    let base: number;
    if (fits && mac !== null) {
      const frameLen = ETH_HEADER_LEN + hl + length;
      const buf = this.link.transmitBuffer(frameLen);
      if (buf === null) {
        this.drops.count("link-full");
        return null;
      }
      writeEth(buf, mac, this.mac, version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
      out = buf;
      base = ETH_HEADER_LEN;
      this.pendingMode = P_DIRECT;
      this.pendingFrameLen = frameLen;
      this.pendingL4Start = ETH_HEADER_LEN + hl;
      if (entry !== null) this.fillDest(version, dst, entry, mtu);
    } else {
      out = this.scratch;
      base = ETH_HEADER_LEN;
      this.pendingMode = P_SCRATCH;
    }
    if (version === 4) {
      const id = this.ipId;
      this.ipId = (id + 1) & 0xffff;
      // DF on TCP so path MTU discovery works (RFC 1191); other protocols may be fragmented.
      const ff = fits && protocol === 6 ? IPV4_FLAG_DF : 0;
      emitIpv4Header(
        out,
        base,
        ecn & 3,
        hl + length,
        id,
        ff,
        this.ttl,
        protocol,
        read32(src, 0),
        read32(dst, 0),
      );
    } else {
      emitIpv6Header(out, base, ecn & 3, 0, length, protocol, this.ttl, src, dst);
    }
    this.pendingVersion = version;
    this.pendingTotal = hl + length;
    this.pendingMtu = mtu;
    this.pendingKind = kind;
    return this.lendPayload(out, base + hl, length);
  }

  /**
   * The `length`-byte payload view at `start` of the lent buffer `out`. Payload views per lent
   * buffer, reused while the link lends the same buffer object for a length seen before (bulk
   * traffic): a fresh view was an allocation per packet. Two per buffer (the last two ranges),
   * so full segments and the short ones between them (a write's tail, an ACK) do not evict
   * each other.
   */
  private lendPayload(out: Uint8Array, start: number, length: number): Uint8Array {
    const at = out.byteOffset + start;
    // Frame-aligned regions put each lent buffer at its own offset: slot = offset / 2048.
    const slot = (out.byteOffset >>> 11) & (PV_MEMO_SLOTS - 1);
    if (this.memoBuf[slot] === out) {
      const m = this.memoView[slot]!;
      if (m.length === length && m.byteOffset === at) return m;
    }
    let pv = this.payloadViews.get(out);
    if (pv === undefined || pv.length !== length || pv.byteOffset !== at) {
      const prev = pv;
      const alt = this.payloadViews2.get(out);
      pv = alt !== undefined && alt.length === length && alt.byteOffset === at
        ? alt
        : out.subarray(start, start + length);
      this.payloadViews.set(out, pv);
      if (prev !== undefined) this.payloadViews2.set(out, prev);
    }
    this.memoBuf[slot] = out;
    this.memoView[slot] = pv;
    return pv;
  }

  /** Sends the packet begun last. */
  private commit(): void {
    const mode = this.pendingMode;
    this.pendingMode = P_NONE;
    const version = this.pendingVersion;
    const c = this.counters;
    if (mode === P_DIRECT) {
      this.link.commit(this.pendingFrameLen);
      c.ethernet.tx++;
      if (version === 4) c.ipv4.tx++;
      else c.ipv6.tx++;
    } else if (mode === P_SCRATCH) {
      const packet = this.scratch.subarray(ETH_HEADER_LEN, ETH_HEADER_LEN + this.pendingTotal);
      if (this.pendingTotal <= this.pendingMtu) this.sendPacket(version, packet);
      else if (this.pendingMtu < (version === 4 ? 28 : 56)) this.drop("too-big");
      else if (version === 4) this.fragment4(packet);
      else this.fragment6(packet);
    } else return;
    if (!this.inPoll) this.link.flush();
  }

  /** Sends a complete IP packet to the pending next hop (copying it). */
  private sendPacket(version: 4 | 6, packet: Uint8Array): void {
    if (version === 4) this.counters.ipv4.tx++;
    else this.counters.ipv6.tx++;
    const ethertype = version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
    if (this.pendingKind !== NH_UNICAST) {
      this.transmitFrame(this.txMac, ethertype, packet);
      return;
    }
    const nh = this.pendingNextHopLen === 4 ? this.pendingNextHop4 : this.pendingNextHop;
    const mac = this.neighbors.lookup(version, nh, this.nowRef ?? 0);
    if (mac !== null) this.transmitFrame(mac, ethertype, packet);
    else this.neighbors.enqueue(version, nh, packet, this.now);
  }

  /**
   * RFC 791 fragmentation to the pending path MTU. Also re-fragments a forwarded fragment
   * (offsets are relative to its own offset; the last piece keeps its MF). Options, if any,
   * are copied into every fragment (a simplification: RFC 791 copies only some).
   */
  private fragment4(packet: Uint8Array): void {
    const hl = (packet[0]! & 0x0f) * 4;
    const payload = packet.subarray(hl);
    const chunk = (this.pendingMtu - hl) & ~7;
    const ff = read16(packet, 6);
    const base = (ff & 0x1fff) * 8;
    const lastMore = (ff & IPV4_FLAG_MF) !== 0;
    const f = this.fragBuf;
    for (let off = 0; off < payload.length; off += chunk) {
      const n = Math.min(chunk, payload.length - off);
      const more = off + n < payload.length || lastMore;
      f.set(packet.subarray(0, hl), 0);
      write16(f, 2, hl + n);
      write16(f, 6, (ff & 0x4000) | (more ? IPV4_FLAG_MF : 0) | ((base + off) >>> 3));
      write16(f, 10, 0);
      write16(f, 10, internetChecksum(f.subarray(0, hl)));
      f.set(payload.subarray(off, off + n), hl);
      this.counters.fragments.tx++;
      this.sendPacket(4, f.subarray(0, hl + n));
    }
  }

  /** RFC 8200 4.5 fragmentation with a Fragment header after the fixed header. */
  private fragment6(packet: Uint8Array): void {
    const protocol = packet[6]!;
    const payload = packet.subarray(40);
    const chunk = (this.pendingMtu - 48) & ~7;
    const id = this.fragId6;
    this.fragId6 = (this.fragId6 + 1) >>> 0 || 1;
    const f = this.fragBuf;
    for (let off = 0; off < payload.length; off += chunk) {
      const n = Math.min(chunk, payload.length - off);
      const more = off + n < payload.length;
      f.set(packet.subarray(0, 40), 0);
      write16(f, 4, 8 + n);
      f[6] = IPV6_NH_FRAGMENT;
      f[40] = protocol;
      f[41] = 0;
      write16(f, 42, off | (more ? 1 : 0));
      write32(f, 44, id);
      f.set(payload.subarray(off, off + n), 48);
      this.counters.fragments.tx++;
      this.sendPacket(6, f.subarray(0, 48 + n));
    }
  }

  /** Copies an IP packet into a frame for `mac` and commits it. */
  private transmitFrame(mac: Uint8Array, ethertype: number, packet: Uint8Array): void {
    const buf = this.link.transmitBuffer(ETH_HEADER_LEN + packet.length);
    if (buf === null) return this.drop("link-full");
    writeEth(buf, mac, this.mac, ethertype);
    buf.set(packet, ETH_HEADER_LEN);
    this.link.commit(ETH_HEADER_LEN + packet.length);
    this.counters.ethernet.tx++;
    if (!this.inPoll) this.link.flush();
  }

  /**
   * Resolves the next hop of `dst` into `pendingNextHop`, and for broadcast/multicast the MAC
   * into `txMac`. Returns the kind.
   */
  private nextHop(version: 4 | 6, dst: Uint8Array): number {
    if (version === 4) {
      // int32, not read32's unsigned value: no heap number for the calls below.
      const d = (dst[0]! << 24) | (dst[1]! << 16) | (dst[2]! << 8) | dst[3]!;
      if (d === -1 || this.isBroadcast4(d)) {
        this.txMac.set(BROADCAST_MAC);
        return this.v4.length > 0 ? NH_BROADCAST : NH_NONE;
      }
      if ((d >>> 28) === 0xe) {
        // RFC 1112 6.4: 01:00:5e + low 23 bits of the group.
        const m = this.txMac;
        m[0] = 0x01;
        m[1] = 0x00;
        m[2] = 0x5e;
        m[3] = dst[1]! & 0x7f;
        m[4] = dst[2]!;
        m[5] = dst[3]!;
        return NH_MULTICAST;
      }
      if (this.isLocal4(d)) return NH_NONE;
    } else {
      if (dst[0] === 0xff) {
        multicastMac6(dst, this.txMac);
        return NH_MULTICAST;
      }
      if (this.isLocal6(dst)) return NH_NONE;
    }
    const r = this.routes.lookup(dst, this.nowRef ?? 0);
    if (r === null) return NH_NONE;
    const hop = r.gateway === null ? dst : r.gateway.bytes;
    this.pendingNextHop.set(hop);
    this.pendingNextHopLen = hop.length;
    return NH_UNICAST;
  }

  /** Writes Ethernet + IP headers for a packet with a known MAC; returns the payload buffer. */
  private beginDirect(
    version: 4 | 6,
    mac: Uint8Array,
    src: Uint8Array,
    dst: Uint8Array,
    protocol: number,
    ttl: number,
    length: number,
  ): Uint8Array | null {
    const hl = version === 4 ? 20 : 40;
    const frameLen = ETH_HEADER_LEN + hl + length;
    const buf = this.link.transmitBuffer(frameLen);
    if (buf === null) {
      this.drop("link-full");
      return null;
    }
    writeEth(buf, mac, this.mac, version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
    if (version === 4) {
      const id = this.ipId;
      this.ipId = (id + 1) & 0xffff;
      emitIpv4Header(
        buf,
        ETH_HEADER_LEN,
        0,
        hl + length,
        id,
        0,
        ttl,
        protocol,
        read32(src, 0),
        read32(dst, 0),
      );
    } else {
      emitIpv6Header(buf, ETH_HEADER_LEN, 0, 0, length, protocol, ttl, src, dst);
    }
    this.directFrameLen = frameLen;
    this.directVersion = version;
    return buf.subarray(ETH_HEADER_LEN + hl, frameLen);
  }

  private directVersion: 4 | 6 = 4;

  private commitDirect(): void {
    this.link.commit(this.directFrameLen);
    this.counters.ethernet.tx++;
    if (this.directVersion === 4) this.counters.ipv4.tx++;
    else this.counters.ipv6.tx++;
    if (!this.inPoll) this.link.flush();
  }

  /** Neighbour cache callback: ARP request or Neighbor Solicitation for `target`. */
  private solicit(
    version: 4 | 6,
    target: Uint8Array,
    unicast: Uint8Array | null,
    _now: Instant,
  ): void {
    if (version === 4) {
      const src = this.sourceForBytes(4, target);
      if (src === null) return;
      const buf = this.link.transmitBuffer(ETH_HEADER_LEN + 28);
      if (buf === null) return this.drop("link-full");
      writeEth(buf, unicast ?? BROADCAST_MAC, this.mac, ETHERTYPE_ARP);
      const r = this.txArp;
      r.operation = ARP_REQUEST;
      r.sha.set(this.mac);
      r.spa = src.v4;
      r.tha.fill(0);
      r.tpa = read32(target, 0);
      r.emit(buf.subarray(ETH_HEADER_LEN));
      this.link.commit(ETH_HEADER_LEN + 28);
      this.counters.ethernet.tx++;
      this.counters.arp.tx++;
      if (!this.inPoll) this.link.flush();
      return;
    }
    const src = this.sourceForBytes(6, target) ?? this.linkLocal;
    let dst: Uint8Array, mac: Uint8Array;
    if (unicast !== null) {
      dst = target;
      mac = unicast;
    } else {
      dst = solicitedNode(target, this.snBuf);
      mac = multicastMac6(dst, this.txMac);
    }
    const body = this.beginDirect(6, mac, src.bytes, dst, PROTO_ICMPV6, 255, 32);
    if (body === null) return;
    const r = this.txIcmp6;
    r.reset();
    r.type = ICMPV6_NEIGHBOR_SOLICIT;
    r.target.set(target);
    r.sourceLlaPresent = true;
    r.sourceLla.set(this.mac);
    this.sendNdp(body, src.bytes, dst);
  }

  /**
   * Emits the NS/NA prepared in `txIcmp6` into `body` (from `beginDirect`, 32 bytes),
   * checksums it for `src` -> `dst` and sends it.
   */
  private sendNdp(body: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
    this.txIcmp6.emit(body);
    checksumIcmpv6(body.subarray(0, 32), src, dst);
    this.commitDirect();
    this.counters.icmpv6.tx++;
    this.counters.ndp.tx++;
  }

  // ---------------------------------------------------------------- addresses

  private sourceForBytes(version: 4 | 6, dst: Uint8Array): IpAddress | null {
    if (version === 4) {
      const v4 = this.v4;
      if (v4.length === 0) return null;
      for (let i = 0; i < v4.length; i++) {
        const a = v4[i]!;
        if (prefixMatches(a.network.bytes, a.prefixLength, dst)) return a.address;
      }
      const r = this.routes.lookup(dst, this.now);
      if (r === null) return null;
      if (r.source !== null && r.source.version === 4) return r.source;
      if (r.gateway !== null) {
        for (const a of this.v4) {
          if (prefixMatches(a.network.bytes, a.prefixLength, r.gateway.bytes)) return a.address;
        }
      }
      return this.v4[0]!.address;
    }
    if (isLinkLocal6(dst) || dst[0] === 0xff) return this.linkLocal;
    for (let i = 1; i < this.v6.length; i++) {
      const a = this.v6[i]!;
      if (prefixMatches(a.address.bytes, a.prefixLength, dst)) return a.address;
    }
    if (this.routes.lookup(dst, this.now) === null) return null;
    return this.v6.length > 1 ? this.v6[1]!.address : this.linkLocal;
  }

  private isLocalBytes(version: 4 | 6, b: Uint8Array): boolean {
    return version === 4 ? this.isLocal4(read32(b, 0)) : this.isLocal6(b);
  }

  // The per-packet callers pass the address as int32 (`| 0`): an unsigned one above 2^31
  // passed to a call that is not inlined is boxed as a heap number. Either form matches.
  private isLocal4(a: number): boolean {
    const l = this.local4, k = a | 0;
    for (let i = 0; i < l.length; i++) if (l[i] === k) return true;
    return false;
  }

  private isBroadcast4(a: number): boolean {
    const b = this.bcast4, k = a | 0;
    for (let i = 0; i < b.length; i++) if (b[i] === k) return true;
    return false;
  }

  private isLocal6(b: Uint8Array): boolean {
    for (let i = 0; i < this.v6.length; i++) if (this.v6[i]!.address.equalsBytes(b)) return true;
    return false;
  }

  private isOurSolicitedNode(dst: Uint8Array): boolean {
    // ff02::1:ffXX:XXXX where XX:XXXX are the low 24 bits of one of our addresses.
    if (dst[1] !== 0x02 || dst[11] !== 0x01 || dst[12] !== 0xff) return false;
    for (let i = 2; i < 11; i++) if (dst[i] !== 0) return false;
    for (let i = 0; i < this.v6.length; i++) {
      const b = this.v6[i]!.address.bytes;
      if (b[13] === dst[13] && b[14] === dst[14] && b[15] === dst[15]) return true;
    }
    return false;
  }
}

function writeEth(buf: Uint8Array, dst: Uint8Array, src: Uint8Array, ethertype: number): void {
  for (let i = 0; i < 6; i++) {
    buf[i] = dst[i]!;
    buf[6 + i] = src[i]!;
  }
  write16(buf, 12, ethertype);
}

/** The 33:33:xx:xx:xx:xx MAC of an IPv6 multicast address (RFC 2464 7). */
function multicastMac6(dst: Uint8Array, out: Uint8Array): Uint8Array {
  out[0] = 0x33;
  out[1] = 0x33;
  out[2] = dst[12]!;
  out[3] = dst[13]!;
  out[4] = dst[14]!;
  out[5] = dst[15]!;
  return out;
}

function macEq(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
