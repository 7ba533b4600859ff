/**
 * One TcpStack with one established passive connection, driven segment by segment: for unit
 * tests and benches that feed the stack hand-built peer segments (no path, no second stack).
 *
 * @module
 */

import type { IpOutput, IpReceiveInfo } from "../../stacks/tcpip/iface/protocol.ts";
import type { TcpConfig } from "../../stacks/tcpip/tcp/config.ts";
import { TcpStack } from "../../stacks/tcpip/tcp/stack.ts";
import { IpAddress } from "../../stacks/tcpip/wire/address.ts";
import { TCP_ACK, TCP_SYN, TcpRepr } from "../../stacks/tcpip/wire/tcp.ts";

/** The rig stack's own address. */
export const RIG_LOCAL: IpAddress = IpAddress.parse("198.18.0.1");
/** The simulated peer's address. */
export const RIG_REMOTE: IpAddress = IpAddress.parse("198.18.0.2");

/** The established connection and what is needed to feed it. */
export interface PassiveRig {
  /** The stack under test. */
  readonly stack: TcpStack;
  /** The accepted connection (peer 198.18.0.2:40000 -> us :80; peer ISN 1000, ours 5000). */
  readonly id: number;
  /** Receive info for the peer's segments (IPv4, checksum verified). */
  readonly info: IpReceiveInfo;
  /** A new peer segment: `flags`, `seq`, `ack`, window 65535, `len` zero bytes of data. */
  build(flags: number, seq: number, ack: number, len: number): Uint8Array;
}

/**
 * A stack on `ip` (random numbers from a seeded LCG, ISN 5000, no timestamps or ECN unless
 * `config` says otherwise) after a peer's SYN (MSS 1460) and ACK, with the connection accepted.
 */
export function passiveOpen(
  ip: IpOutput,
  seed: number,
  config: Partial<TcpConfig> = {},
): PassiveRig {
  let r = seed;
  const stack = new TcpStack({
    ip,
    random: () => (r = (Math.imul(r, 1103515245) + 12345) >>> 0),
    config: { timestamps: false, ecn: false, ...config },
    isn: () => 5000,
  });
  const l = stack.listen(null, 80, 4);
  const repr = new TcpRepr();
  const info: IpReceiveInfo = {
    version: 4,
    src: RIG_REMOTE.bytes,
    dst: RIG_LOCAL.bytes,
    ecn: 0,
    ttl: 64,
    packet: new Uint8Array(0),
    checksumVerified: true,
  };
  const build = (flags: number, seq: number, ack: number, len: number): Uint8Array => {
    repr.reset();
    repr.srcPort = 40000;
    repr.dstPort = 80;
    repr.seq = seq;
    repr.ack = ack;
    repr.flags = flags;
    repr.window = 65535;
    if (flags & TCP_SYN) repr.mss = 1460;
    const seg = new Uint8Array(repr.headerLength + len);
    repr.emit(seg);
    return seg;
  };
  stack.receive(info, build(TCP_SYN, 1000, 0, 0), 0);
  stack.receive(info, build(TCP_ACK, 1001, 5001, 0), 0);
  const id = stack.accept(l);
  if (id <= 0) throw new Error(`passiveOpen: the handshake did not complete (accept -> ${id})`);
  return { stack, id, info, build };
}
