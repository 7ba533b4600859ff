/**
 * A `Link` for unit tests of the IP layer and above: the test pushes received frames into `rx`
 * and reads what was sent from `sent` (copies). Optionally wired to a peer `FakeLink` (what one
 * commits arrives in the other's `rx`) and offering transmit checksum offload, which it
 * completes the way a NIC (or Linux's skb_checksum_help) does, or deliberately does not.
 *
 * @module
 */

import type { Link, LinkCapabilities } from "../../stacks/link/link.ts";
import { foldChecksum, onesComplementSumRange } from "../../stacks/tcpip/wire/checksum.ts";
import { Interface } from "../../stacks/tcpip/iface/interface.ts";

/** What a {@link FakeLink} offers. */
export interface FakeLinkOptions {
  /** Ethernet address (default 02:00:00:00:00:01). */
  mac?: Uint8Array;
  /** Name for logs (default "fake"). */
  name?: string;
  /** `capabilities.rxPartialChecksum` (a veth-like link); default false. */
  rxPartialChecksum?: boolean;
  /** `capabilities.txChecksumOffload` with a working `commitPartial`; default false. */
  txChecksumOffload?: boolean;
  /** With `txChecksumOffload`: false models a device that leaves the checksums partial. */
  completesChecksums?: boolean;
  /** Offer `transmitFrame` (lends the whole 2 KiB buffer); default false. */
  wholeFrames?: boolean;
}

/** A test link: frames in through `rx`, out into `sent` (and the peer's `rx`). */
export class FakeLink implements Link {
  readonly name: string;
  readonly mac: Uint8Array;
  readonly mtu = 1500;
  readonly capabilities: LinkCapabilities;
  /** Frames the next `receive()` hands out, oldest first. */
  readonly rx: Uint8Array[] = [];
  /** Copies of every committed frame. */
  readonly sent: Uint8Array[] = [];
  /** (length, csumStart, csumOffset) of every `commitPartial`. */
  readonly partials: [number, number, number][] = [];
  /** Frames committed whole (`commit`). */
  fullCommits = 0;
  /** Where committed frames are delivered too (a wire between two test links). */
  peer: FakeLink | null = null;
  readonly #lent = new Uint8Array(2048);
  readonly #completes: boolean;
  /** With `wholeFrames`: lends the whole buffer (the same view every time). */
  readonly transmitFrame?: (length: number) => Uint8Array | null;
  /** Buffers lent by `transmitFrame`. */
  framesLent = 0;

  /** Builds the link; see {@link FakeLinkOptions}. */
  constructor(options: FakeLinkOptions = {}) {
    this.name = options.name ?? "fake";
    this.mac = options.mac ?? new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
    this.capabilities = {
      rxChecksumVerified: false,
      txChecksumOffload: options.txChecksumOffload ?? false,
      rxPartialChecksum: options.rxPartialChecksum ?? false,
      maxBatch: 8,
    };
    this.#completes = options.completesChecksums ?? true;
    if (options.wholeFrames === true) {
      this.transmitFrame = (length) => {
        if (length > this.#lent.length) return null;
        this.framesLent++;
        return this.#lent;
      };
    }
  }

  /** Hands out up to `max` frames of `rx`. */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    let n = 0;
    while (n < max && this.rx.length > 0) {
      onFrame(this.rx.shift()!);
      n++;
    }
    return n;
  }

  /** Lends the one transmit buffer. */
  transmitBuffer(length: number): Uint8Array | null {
    return length > this.#lent.length ? null : this.#lent.subarray(0, length);
  }

  /** Records (and delivers to the peer) the frame in the lent buffer. */
  commit(length: number): void {
    this.fullCommits++;
    this.#out(length);
  }

  /** Completes the checksum like a device (unless told not to), then commits. */
  commitPartial(length: number, csumStart: number, csumOffset: number): void {
    this.partials.push([length, csumStart, csumOffset]);
    const f = this.#lent;
    if (this.#completes) {
      let c = foldChecksum(onesComplementSumRange(f, csumStart, length));
      if (c === 0) c = 0xffff;
      f[csumStart + csumOffset] = c >>> 8;
      f[csumStart + csumOffset + 1] = c & 0xff;
    }
    this.#out(length);
  }

  #out(length: number): void {
    const copy = this.#lent.slice(0, length);
    this.sent.push(copy);
    this.peer?.rx.push(copy);
  }

  /** Nothing to push. */
  flush(): void {}
  /** Nothing to release. */
  close(): void {}
}

/**
 * A {@link FakeLink} with an `Interface` on it at 198.18.0.1/24 and fd00::1/64 (plus `config`),
 * the setup of the interface unit tests.
 */
export function fakeInterface(
  config: ConstructorParameters<typeof Interface>[1] = {},
): { link: FakeLink; iface: Interface } {
  const link = new FakeLink();
  const iface = new Interface(link, {
    ipv4: [{ address: "198.18.0.1", prefixLength: 24 }],
    ipv6: [{ address: "fd00::1", prefixLength: 64 }],
    ...config,
  });
  return { link, iface };
}
