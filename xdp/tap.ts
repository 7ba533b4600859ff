/**
 * `TapLink`: the fallback `Link` for machines without AF_XDP (or without privileges for BPF):
 * a TAP device (/dev/net/tun, IFF_TAP | IFF_NO_PI) through the same libc FFI table. The
 * kernel side of the TAP is an ordinary interface (move it into a namespace and give it
 * addresses: that is the peer); our side reads and writes whole Ethernet frames.
 *
 * Costs one read()/write() system call per frame and a copy each way, so it is a compatibility
 * path, not a fast one. The descriptor is non-blocking: `receive()` stops at EAGAIN, and
 * `wait()` sleeps in poll(2) on Deno's thread pool. The device disappears when `close()`
 * closes the descriptor (or the process exits).
 *
 * @module
 */

import type { Link, LinkCapabilities } from "../stacks/link/link.ts";
import { check, cString, EAGAIN, errno, libc, struct, syscallError } from "./libc.ts";
import { netdevInfo } from "./netdev.ts";

const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
/** ioctl request TUNSETIFF = _IOW('T', 202, int). */
export const TUNSETIFF = 0x400454ca;
/** TAP (Ethernet) device rather than TUN (IP). */
export const IFF_TAP = 0x0002;
/** No 4-byte packet-information prefix on frames. */
export const IFF_NO_PI = 0x1000;
const IFREQ_LEN = 40;
const IFR_FLAGS = 16;

/** Options of `TapLink.open`. */
export interface TapLinkOptions {
  /** Name of the TAP device to create (or attach to, when it is persistent). */
  readonly ifname: string;
  /** Our MAC address; default a random locally administered one (02:...). */
  readonly mac?: Uint8Array;
  /** Layer-3 MTU; default the device's (1500). */
  readonly mtu?: number;
  /** Frames per `receive()` call and transmit buffers per flush; default 64. */
  readonly maxBatch?: number;
}

/** Counters of a `TapLink`. */
export interface TapLinkStats {
  /** Frames handed up. */
  rxPackets: number;
  /** Bytes handed up. */
  rxBytes: number;
  /** Frames written. */
  txPackets: number;
  /** Bytes written. */
  txBytes: number;
  /** Frames the kernel refused (EAGAIN: its queue was full) or that failed to write. */
  txDropped: number;
  /** `transmitBuffer()` found every buffer of the batch taken (flush more often). */
  txNoBuffer: number;
}

/** A `Link` over a TAP device; see the module comment. */
export class TapLink implements Link {
  /** Device name. */
  readonly name: string;
  /** Our MAC (not the device's: the device's MAC belongs to the kernel side, the peer). */
  readonly mac: Uint8Array;
  /** Layer-3 MTU. */
  readonly mtu: number;
  /** The kernel completes checksums of what it hands to a TAP without a vnet header. */
  readonly capabilities: LinkCapabilities;
  #fd: number;
  readonly #rxBuf: Uint8Array<ArrayBuffer>;
  readonly #txBufs: Uint8Array<ArrayBuffer>[];
  readonly #txLens: Int32Array;
  #txCount = 0;
  #lent = false;
  readonly #pollfd = struct(8);
  readonly #stats: TapLinkStats = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txDropped: 0,
    txNoBuffer: 0,
  };

  private constructor(fd: number, name: string, mac: Uint8Array, mtu: number, batch: number) {
    this.#fd = fd;
    this.name = name;
    this.mac = mac;
    this.mtu = mtu;
    this.capabilities = { rxChecksumVerified: false, txChecksumOffload: false, maxBatch: batch };
    const frameMax = mtu + 18;
    this.#rxBuf = struct(frameMax);
    this.#txBufs = Array.from({ length: batch }, () => struct(frameMax));
    this.#txLens = new Int32Array(batch);
    const pv = new DataView(this.#pollfd.buffer);
    pv.setInt32(0, fd, true);
    pv.setInt16(4, 1, /* POLLIN */ true);
  }

  /** Creates (or attaches to) TAP device `ifname`; needs CAP_NET_ADMIN. */
  static open(options: TapLinkOptions): TapLink {
    const c = libc();
    const fd = check(
      c.open(cString("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0),
      "open(/dev/net/tun)",
      "other",
      "TAP fallback (modprobe tun; in containers pass --device /dev/net/tun)",
    );
    try {
      const req = struct(IFREQ_LEN);
      const name = cString(options.ifname);
      if (name.length > 16) throw new RangeError(`TAP name '${options.ifname}' exceeds 15 bytes`);
      req.set(name);
      new DataView(req.buffer).setUint16(IFR_FLAGS, IFF_TAP | IFF_NO_PI, true);
      check(c.ioctl(fd, BigInt(TUNSETIFF), req), "ioctl(TUNSETIFF)", "other", options.ifname);
      const info = netdevInfo(options.ifname);
      const mac = options.mac ?? randomMac();
      return new TapLink(fd, info.name, mac, options.mtu ?? info.mtu, options.maxBatch ?? 64);
    } catch (e) {
      c.close(fd);
      throw e;
    }
  }

  /** Reads up to `max` frames (stops at EAGAIN) and hands each to `onFrame`. */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    if (this.#fd < 0) return 0;
    const c = libc();
    const buf = this.#rxBuf;
    const size = BigInt(buf.length);
    let n = 0;
    while (n < max) {
      const r = Number(c.read(this.#fd, buf, size));
      if (r <= 0) {
        if (r < 0) {
          const e = errno();
          if (e !== EAGAIN) throw syscallError("read(TAP)", e, "other", this.name);
        }
        break;
      }
      n++;
      this.#stats.rxPackets++;
      this.#stats.rxBytes += r;
      onFrame(buf.subarray(0, r));
    }
    return n;
  }

  /** Lends one of the batch's transmit buffers, or null when all are queued. */
  transmitBuffer(length: number): Uint8Array | null {
    if (this.#fd < 0) return null;
    if (length > this.#rxBuf.length || length <= 0) return null;
    if (this.#txCount === this.#txBufs.length) {
      this.flush();
      if (this.#txCount === this.#txBufs.length) {
        this.#stats.txNoBuffer++;
        return null;
      }
    }
    this.#lent = true;
    return this.#txBufs[this.#txCount]!.subarray(0, length);
  }

  /** Queues the lent buffer, trimmed to `length`. */
  commit(length: number): void {
    if (!this.#lent) return;
    this.#lent = false;
    this.#txLens[this.#txCount++] = length;
  }

  /** Writes the queued frames, one write() each. */
  flush(): void {
    if (this.#fd < 0 || this.#txCount === 0) return;
    const c = libc();
    for (let i = 0; i < this.#txCount; i++) {
      const len = this.#txLens[i]!;
      const r = Number(c.write(this.#fd, this.#txBufs[i]!, BigInt(len)));
      if (r === len) {
        this.#stats.txPackets++;
        this.#stats.txBytes += len;
      } else this.#stats.txDropped++;
    }
    this.#txCount = 0;
  }

  /** Sleeps in poll(2) (thread pool) until a frame is readable or `timeoutMs` passes. */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.#fd < 0) return false;
    return (await libc().poll_wait(this.#pollfd, 1n, timeoutMs)) > 0;
  }

  /** The descriptor `wait()` polls, for a caller that sleeps on it itself (nsm/sleeper.ts). */
  pollFds(into: number[]): boolean {
    if (this.#fd < 0) return false;
    into.push(this.#fd);
    return true;
  }

  /** A copy of the counters. */
  stats(): TapLinkStats {
    return { ...this.#stats };
  }

  /** Closes the descriptor (a non-persistent TAP device disappears). Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }

  /** `using tap = TapLink.open(...)`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A random unicast, locally administered MAC (02:xx:xx:xx:xx:xx style). */
export function randomMac(): Uint8Array {
  const mac = crypto.getRandomValues(new Uint8Array(6));
  mac[0] = (mac[0]! & 0xfc) | 0x02;
  return mac;
}
