/**
 * Full-stack hosts for the simulator: `Interface` (Ethernet/ARP/IP) + `TcpStack` on a
 * `SimPort`, with an application hook run after every poll.
 */

import type { TcpConfig } from "../../stacks/tcpip/tcp/config.ts";
import type { Simulator } from "../../sim/simulator.ts";
import type { SimPort } from "../../sim/port.ts";
import type { Channel } from "../../sim/channel.ts";
import { pointToPoint, type PointToPointParams } from "../../sim/topology.ts";
import { IpAddress } from "../../stacks/tcpip/wire/address.ts";
import { type StackApp, StackHost } from "../../sim/stack_host.ts";

/** A simulated host running TCP over IPv4 and IPv6. */
export class TcpHost extends StackHost {
  /** Application code run after each poll (reads, writes, accepts). */
  override app: StackApp | null = () => {};

  /** A host with `v4`/`v6` addresses (/24, /64) on `port`; `seed` feeds TCP's randomness. */
  constructor(
    port: SimPort,
    v4: string,
    v6: string,
    seed: number,
    config: Partial<TcpConfig> = {},
  ) {
    super(
      port,
      {
        ipv4: [{ address: v4, prefixLength: 24 }],
        ipv6: [{ address: v6, prefixLength: 64 }],
      },
      seed,
      config,
    );
  }
}

/** Two TCP hosts on a point-to-point link, added to `sim`. */
export function tcpPointToPoint(
  sim: Simulator,
  params: PointToPointParams,
  config: Partial<TcpConfig> = {},
): {
  a: TcpHost;
  b: TcpHost;
  a4: IpAddress;
  b4: IpAddress;
  a6: IpAddress;
  b6: IpAddress;
  ab: Channel;
  ba: Channel;
} {
  const link = pointToPoint(sim, params);
  const a = new TcpHost(link.a, "198.18.0.1", "fd00::1", sim.seed * 2 + 1, config);
  const b = new TcpHost(link.b, "198.18.0.2", "fd00::2", sim.seed * 2 + 2, config);
  sim.addNode(a, [link.a]);
  sim.addNode(b, [link.b]);
  return {
    a,
    b,
    a4: IpAddress.parse("198.18.0.1"),
    b4: IpAddress.parse("198.18.0.2"),
    a6: IpAddress.parse("fd00::1"),
    b6: IpAddress.parse("fd00::2"),
    ab: link.ab,
    ba: link.ba,
  };
}
