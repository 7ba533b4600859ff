/**
 * Routing for one interface: on-link prefixes (from the configured addresses and router
 * advertisements), default gateways and added routes, chosen by longest-prefix match; and a
 * bounded, aging cache of path MTUs learned from ICMP "fragmentation needed" (RFC 1191) and
 * "packet too big" (RFC 8201).
 *
 * The table is small (a handful of routes per interface), so a linear scan sorted by prefix
 * length is faster than a trie here and allocates nothing per lookup.
 *
 * @module
 */

import type { Duration, Instant } from "../../time.ts";
import { NEVER, SECOND } from "../../time.ts";
import { IpAddress } from "../wire/address.ts";

/** Error for a route whose prefix length does not fit its address family. */
export class RouteConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RouteConfigError";
  }
}

/** One route. `gateway` null means the prefix is on-link (send straight to the destination). */
export interface Route {
  readonly prefix: IpAddress;
  readonly prefixLength: number;
  readonly gateway: IpAddress | null;
  /** Source address to use for this route, when the route implies one. */
  readonly source: IpAddress | null;
  /** Where the route came from, for diagnostics and for replacing RA-learned routes. */
  readonly origin: "address" | "static" | "gateway" | "ra";
  /** For RA routes: when the route expires (NEVER for permanent routes). */
  expiresAt: Instant;
}

/** True when the first `prefixLength` bits of `addr` (raw bytes) equal those of `prefix`. */
export function prefixMatches(prefix: Uint8Array, prefixLength: number, addr: Uint8Array): boolean {
  if (prefix.length !== addr.length) return false;
  const full = prefixLength >>> 3;
  for (let i = 0; i < full; i++) if (prefix[i] !== addr[i]) return false;
  const rem = prefixLength & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((prefix[full]! ^ addr[full]!) & mask) === 0;
}

/** `addr` with the bits past `prefixLength` cleared. */
export function maskAddress(addr: IpAddress, prefixLength: number): IpAddress {
  const b = addr.bytes.slice();
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    b[i] = b[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return IpAddress.fromBytes(b);
}

/** Tunables of the path-MTU cache. */
export interface PmtuConfig {
  /** Entries kept (128); the oldest is replaced when full. */
  maxEntries?: number;
  /** A learned PMTU is forgotten after this long (RFC 1191 suggests 10 minutes). */
  lifetime?: Duration;
  /** Smallest PMTU accepted for IPv4 (552, like Linux min_pmtu, against tiny-MTU attacks). */
  minV4?: number;
}

interface PmtuEntry {
  version: 4 | 6;
  readonly address: Uint8Array;
  mtu: number;
  expiresAt: Instant;
}

/** The route table and path-MTU cache of one interface. */
export class RouteTable {
  private readonly routes: Route[] = [];
  private readonly pmtu: PmtuEntry[] = [];
  private readonly pmtuMax: number;
  private readonly pmtuLifetime: Duration;
  private readonly minV4: number;
  private gen = 0;

  constructor(config: PmtuConfig = {}) {
    this.pmtuMax = config.maxEntries ?? 128;
    this.pmtuLifetime = config.lifetime ?? 600 * SECOND;
    this.minV4 = config.minV4 ?? 552;
  }

  /**
   * Bumped by every change a cached lookup could depend on: a route added or removed (by
   * hand, by `expire`, by a router advertisement) and a path MTU learned, lowered or expired.
   * Routes and PMTU entries that merely pass their expiry are skipped by lookups before
   * `expire` removes them, so a cache must also stop at `pollAt()`.
   */
  get generation(): number {
    return this.gen;
  }

  /** Adds a route (replacing one with the same prefix, length and origin). */
  add(
    prefix: IpAddress,
    prefixLength: number,
    gateway: IpAddress | null,
    options: { source?: IpAddress; origin?: Route["origin"]; expiresAt?: Instant } = {},
  ): Route {
    const max = prefix.version === 4 ? 32 : 128;
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > max) {
      throw new RouteConfigError(
        `prefix length ${prefixLength} is invalid for IPv${prefix.version}; use 0..${max}`,
      );
    }
    if (gateway !== null && gateway.version !== prefix.version) {
      throw new RouteConfigError(
        `gateway ${gateway} is not IPv${prefix.version} like the prefix ${prefix}`,
      );
    }
    const origin = options.origin ?? (gateway === null ? "static" : "gateway");
    const net = maskAddress(prefix, prefixLength);
    this.remove(net, prefixLength, origin);
    const route: Route = {
      prefix: net,
      prefixLength,
      gateway,
      source: options.source ?? null,
      origin,
      expiresAt: options.expiresAt ?? NEVER,
    };
    this.routes.push(route);
    this.gen++;
    // Longest prefix first, so lookup returns the first match.
    this.routes.sort((a, b) => b.prefixLength - a.prefixLength);
    return route;
  }

  /** Removes routes with this prefix and length (of one origin, or any). Returns how many. */
  remove(prefix: IpAddress, prefixLength: number, origin?: Route["origin"]): number {
    const net = maskAddress(prefix, prefixLength);
    let n = 0;
    for (let i = this.routes.length - 1; i >= 0; i--) {
      const r = this.routes[i]!;
      if (
        r.prefixLength === prefixLength && r.prefix.equals(net) &&
        (origin === undefined || r.origin === origin)
      ) {
        this.routes.splice(i, 1);
        n++;
      }
    }
    if (n > 0) this.gen++;
    return n;
  }

  /** The longest-prefix route for `dst` (4 or 16 raw bytes), or null. Allocates nothing. */
  lookup(dst: Uint8Array, now: Instant = 0): Route | null {
    for (let i = 0; i < this.routes.length; i++) {
      const r = this.routes[i]!;
      if (r.expiresAt <= now) continue;
      if (prefixMatches(r.prefix.bytes, r.prefixLength, dst)) return r;
    }
    return null;
  }

  /** The next hop for `dst`: the gateway of its route, or `dst` itself when on-link; null if unroutable. */
  nextHop(dst: Uint8Array, now: Instant = 0): Uint8Array | null {
    const r = this.lookup(dst, now);
    if (r === null) return null;
    return r.gateway === null ? dst : r.gateway.bytes;
  }

  /** True when `addr` is on a directly connected prefix. */
  isOnLink(addr: Uint8Array, now: Instant = 0): boolean {
    const r = this.lookup(addr, now);
    return r !== null && r.gateway === null;
  }

  /** All routes, longest prefix first (a copy). */
  list(): Route[] {
    return this.routes.slice();
  }

  /** Drops expired routes; call from the interface's poll. */
  expire(now: Instant): void {
    for (let i = this.routes.length - 1; i >= 0; i--) {
      if (this.routes[i]!.expiresAt <= now) {
        this.routes.splice(i, 1);
        this.gen++;
      }
    }
    for (let i = this.pmtu.length - 1; i >= 0; i--) {
      if (this.pmtu[i]!.expiresAt <= now) {
        this.pmtu.splice(i, 1);
        this.gen++;
      }
    }
  }

  /** The earliest expiry of a route or PMTU entry, or NEVER. */
  pollAt(): Instant {
    // Indexed loops (here and in findPmtu, per packet): no array iterator objects.
    let at = NEVER;
    const routes = this.routes, pmtu = this.pmtu;
    for (let i = 0; i < routes.length; i++) {
      const t = routes[i]!.expiresAt;
      if (t < at) at = t;
    }
    for (let i = 0; i < pmtu.length; i++) {
      const t = pmtu[i]!.expiresAt;
      if (t < at) at = t;
    }
    return at;
  }

  /**
   * Records a path MTU for `dst` learned from ICMP. Only lowers what is known (RFC 1191 4:
   * an increase is learned by the entry aging out), is clamped to the family minimum (IPv6
   * 1280, IPv4 `minV4`), and never exceeds `linkMtu`. Returns the MTU now in effect.
   */
  learnPmtu(dst: Uint8Array, mtu: number, linkMtu: number, now: Instant): number {
    const version: 4 | 6 = dst.length === 4 ? 4 : 6;
    const floor = version === 4 ? this.minV4 : 1280;
    const value = Math.min(linkMtu, Math.max(floor, mtu | 0));
    let e = this.findPmtu(dst, now);
    if (e !== null) {
      if (value < e.mtu) e.mtu = value;
      e.expiresAt = now + this.pmtuLifetime;
      // Also for a refresh: the new expiry is later than the one a cache stopped at.
      this.gen++;
      return e.mtu;
    }
    if (value >= linkMtu) return linkMtu;
    if (this.pmtu.length >= this.pmtuMax) {
      // Replace the entry closest to expiry (the oldest learned).
      let oldest = 0;
      for (let i = 1; i < this.pmtu.length; i++) {
        if (this.pmtu[i]!.expiresAt < this.pmtu[oldest]!.expiresAt) oldest = i;
      }
      this.pmtu.splice(oldest, 1);
    }
    e = { version, address: dst.slice(), mtu: value, expiresAt: now + this.pmtuLifetime };
    this.pmtu.push(e);
    this.gen++;
    return value;
  }

  /** The path MTU towards `dst`: a learned value, else `linkMtu`. */
  pathMtu(dst: Uint8Array, linkMtu: number, now: Instant = 0): number {
    const e = this.findPmtu(dst, now);
    return e === null ? linkMtu : Math.min(e.mtu, linkMtu);
  }

  /** Number of PMTU entries held. */
  get pmtuEntries(): number {
    return this.pmtu.length;
  }

  private findPmtu(dst: Uint8Array, now: Instant): PmtuEntry | null {
    const pmtu = this.pmtu;
    for (let k = 0; k < pmtu.length; k++) {
      const e = pmtu[k]!;
      if (e.expiresAt <= now || e.address.length !== dst.length) continue;
      let same = true;
      for (let i = 0; i < dst.length; i++) {
        if (e.address[i] !== dst[i]) {
          same = false;
          break;
        }
      }
      if (same) return e;
    }
    return null;
  }
}
