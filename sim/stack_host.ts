/**
 * A simulator node running our stack: an `Interface` with a `TcpStack` registered on it, and an
 * application hook run after every poll. The experiment tool, the demo's simulated story and the
 * TCP/CC tests all drive their flows through it.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import { Interface, type InterfaceConfig } from "../stacks/tcpip/iface/interface.ts";
import { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import type { TcpConfig } from "../stacks/tcpip/tcp/config.ts";
import type { SimNode } from "./simulator.ts";
import type { SimPort } from "./port.ts";

/**
 * Application code run after each poll. Returning `false` says it touched no socket, so the
 * host skips the second interface poll that would push out what it wrote.
 */
export type StackApp = (now: Instant) => boolean | void;

/** A seeded xorshift32 source of unsigned 32-bit numbers (TCP's ISN/port randomness). */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Interface + TcpStack on a simulated port. */
export class StackHost implements SimNode {
  /** The IP interface. */
  readonly iface: Interface;
  /** The TCP stack registered on it. */
  readonly tcp: TcpStack;
  /** Application hook; null runs none. */
  app: StackApp | null = null;

  /** A host with the interface `config` on `port`; `seed` feeds TCP's randomness. */
  constructor(
    readonly port: SimPort,
    config: InterfaceConfig,
    seed: number,
    tcpConfig: Partial<TcpConfig> = {},
  ) {
    this.iface = new Interface(port, config);
    this.tcp = new TcpStack({ ip: this.iface, random: xorshift32(seed), config: tcpConfig });
    this.iface.register(this.tcp);
  }

  /** Receive and timers, the application, then push out what the application wrote. */
  poll(now: Instant): void {
    this.iface.poll(now);
    const app = this.app;
    if (app !== null && app(now) !== false) this.iface.poll(now);
  }

  /** Next instant the host has work. */
  pollAt(): Instant {
    return this.iface.pollAt();
  }
}
