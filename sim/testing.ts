/**
 * Small nodes and frame builders for simulator tests and benchmarks: a sink that records what
 * arrives, a scripted sender, and an Ethernet/IP frame builder.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import { NEVER } from "../stacks/time.ts";
import type { SimNode, Simulator } from "./simulator.ts";
import type { SimPort } from "./port.ts";

/** One frame a `Sink` received. */
export interface Received {
  /** Virtual time of the poll that received it. */
  time: Instant;
  /** A copy of the frame. */
  bytes: Uint8Array;
}

/** A node that drains its port and records (or just counts) every frame. */
export class Sink implements SimNode {
  /** Frames received, copied (empty when `keep` is false). */
  readonly frames: Received[] = [];
  /** Frames received. */
  count = 0;
  /** Bytes received. */
  bytes = 0;
  /** Times `poll()` ran. */
  polls = 0;
  readonly #port: SimPort;
  readonly #keep: boolean;
  #now: Instant = 0;
  readonly #onFrame: (f: Uint8Array) => void;

  /** Creates the sink on `port` and adds it to `sim`. */
  constructor(sim: Simulator, port: SimPort, keep = true) {
    this.#port = port;
    this.#keep = keep;
    this.#onFrame = (f) => {
      this.count++;
      this.bytes += f.length;
      if (this.#keep) this.frames.push({ time: this.#now, bytes: f.slice() });
    };
    sim.addNode(this, [port]);
  }

  /** Drains the port. */
  poll(now: Instant): void {
    this.polls++;
    this.#now = now;
    this.#port.receive(this.#onFrame, Number.POSITIVE_INFINITY);
  }

  /** Only woken by arrivals. */
  pollAt(): Instant {
    return NEVER;
  }
}

/** Sends `frame` (copied) from `port` at virtual time `at`, flushing at once. */
export function sendAt(sim: Simulator, port: SimPort, at: Instant, frame: Uint8Array): void {
  sim.schedule(at, () => {
    const buf = port.transmitBuffer(frame.length);
    if (buf === null) throw new Error(`${port.name} had no room at ${at} ns; raise its queue`);
    buf.set(frame);
    port.commit(frame.length);
    port.flush();
  });
}

/** Fields of a test frame; everything optional. */
export interface FrameSpec {
  /** Destination MAC. Default broadcast. */
  dst?: Uint8Array;
  /** Source MAC. Default 02:00:00:00:00:01. */
  src?: Uint8Array;
  /** Total frame length. Default 64. */
  length?: number;
  /** EtherType. Default 0x88b5 (local experimental). */
  ethertype?: number;
  /** A 32-bit sequence number written at offset 14 (non-IP frames only). */
  seq?: number;
  /** Insert an 802.1Q tag (VLAN 1) before the EtherType. */
  vlan?: boolean;
  /** For ethertype 0x0800/0x86dd: the ECN codepoint of the IP header. */
  ecn?: number;
}

/**
 * Builds an Ethernet frame; for IPv4 a valid 20-byte header (UDP, checksum filled), for IPv6 a
 * 40-byte header. The payload is a deterministic byte pattern.
 */
export function buildFrame(spec: FrameSpec = {}): Uint8Array {
  const len = spec.length ?? 64;
  const f = new Uint8Array(len);
  f.set(spec.dst ?? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  f.set(spec.src ?? [0x02, 0, 0, 0, 0, 1], 6);
  let off = 12;
  if (spec.vlan === true) {
    f[12] = 0x81;
    f[13] = 0x00;
    f[14] = 0x00;
    f[15] = 0x01;
    off = 16;
  }
  const type = spec.ethertype ?? 0x88b5;
  f[off] = type >> 8;
  f[off + 1] = type & 0xff;
  const ip = off + 2;
  for (let i = ip; i < len; i++) f[i] = (i * 7 + 3) & 0xff;
  const ecn = spec.ecn ?? 0;
  if (type === 0x0800) {
    const total = len - ip;
    f.set([0x45, ecn & 3, total >> 8, total & 0xff, 0, 1, 0x40, 0, 64, 17, 0, 0], ip);
    f.set([198, 18, 0, 1, 198, 18, 0, 2], ip + 12);
    const c = ipv4HeaderChecksum(f.subarray(ip, ip + 20));
    f[ip + 10] = c >> 8;
    f[ip + 11] = c & 0xff;
  } else if (type === 0x86dd) {
    const payload = len - ip - 40;
    f.set([0x60, (ecn & 3) << 4, 0, 0, payload >> 8, payload & 0xff, 17, 64], ip);
    f.fill(0, ip + 8, ip + 40);
    f[ip + 8] = 0xfd;
    f[ip + 24] = 0xfd;
    f[ip + 23] = 1;
    f[ip + 39] = 2;
  } else if (spec.seq !== undefined) {
    new DataView(f.buffer).setUint32(ip, spec.seq >>> 0);
  }
  return f;
}

/** RFC 1071 checksum of an IPv4 header with its checksum field taken as zero. */
export function ipv4HeaderChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) {
    if (i === 10) continue;
    sum += (header[i]! << 8) | header[i + 1]!;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
