/**
 * Builds our stack on a link: `Interface` + `TcpStack` + `UdpLayer` + `TcpipBackend`, the way
 * the NSM command does, for tests, benchmarks and the in-process test NSM.
 *
 * @module
 */

import { Interface } from "../stacks/tcpip/iface/interface.ts";
import type { UdpLayer } from "../stacks/tcpip/iface/udp.ts";
import { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import type { TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import type { Link } from "../stacks/link/link.ts";
import { TcpipBackend } from "./backend_tcpip.ts";

/** A stack built on one link. */
export interface TcpipHost {
  /** The IP interface. */
  readonly iface: Interface;
  /** TCP. */
  readonly tcp: TcpStack;
  /** UDP. */
  readonly udp: UdpLayer;
  /** The SocketBackend over both. */
  readonly backend: TcpipBackend;
}

/** Options of `createTcpipHost`. */
export interface TcpipHostOptions {
  /** IPv4 address with prefix, e.g. "198.18.0.1/24". */
  readonly ipv4?: string;
  /** IPv6 address with prefix, e.g. "fd00::1/64". */
  readonly ipv6?: string;
  /** TCP overrides. */
  readonly tcp?: Partial<TcpConfig>;
}

function cidr(s: string): { address: string; prefixLength: number } {
  const [a, p] = s.split("/");
  return { address: a!, prefixLength: Number(p ?? "24") };
}

/** Builds interface, TCP, UDP and backend on `link`. */
export function createTcpipHost(link: Link, o: TcpipHostOptions): TcpipHost {
  const iface = new Interface(link, {
    ipv4: o.ipv4 !== undefined ? [cidr(o.ipv4)] : [],
    ipv6: o.ipv6 !== undefined ? [cidr(o.ipv6)] : [],
  });
  const rand = new Uint32Array(1);
  const tcp = new TcpStack({
    ip: iface,
    random: () => crypto.getRandomValues(rand)[0]!,
    config: { synQueueMax: 4096, ...(o.tcp ?? {}) },
  });
  iface.register(tcp);
  const udp = iface.createUdp();
  return { iface, tcp, udp, backend: new TcpipBackend(tcp, udp) };
}
