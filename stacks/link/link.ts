/**
 * The link boundary: what a network device looks like to the stack.
 *
 * A `Link` moves whole Ethernet frames in batches. Receive hands out views that are valid only
 * during the callback (on AF_XDP they point into UMEM; in the simulator into a reused buffer),
 * so the stack never copies a frame it only inspects. Transmit lends a buffer owned by the
 * device: the stack writes the frame in place, commits it, and `flush()` pushes the batch out
 * (one kick per batch on AF_XDP). This mirrors smoltcp's RxToken/TxToken split without a token
 * allocation per frame.
 *
 * Middlewares (pcap writer, fault injector) are themselves `Link`s wrapping another one.
 *
 * @module
 */

/** What a device does for the stack, so the stack can skip work the hardware already did. */
export interface LinkCapabilities {
  /** Frames arrive with IP/TCP/UDP checksums already verified (true only for offloading NICs). */
  readonly rxChecksumVerified: boolean;
  /**
   * The device completes TCP/UDP checksums on transmit: frames queued with `commitPartial()`
   * leave the kernel/NIC with only the pseudo-header sum in the checksum field. Use it only
   * together with `Link.commitPartial` being defined (a middleware may copy this flag from the
   * device it wraps without forwarding `commitPartial`).
   */
  readonly txChecksumOffload: boolean;
  /**
   * The device is a local virtual link (veth) whose Linux peer may send TCP/UDP frames with
   * CHECKSUM_PARTIAL: the checksum field holds only the folded pseudo-header sum and the rest
   * was never computed (no wire between the two ends can corrupt it). When true, the IP layer
   * accepts exactly that value as "partial" (counted in `counters.partialChecksums`); every
   * other checksum is still verified. Absent means false: never set it for a real wire.
   */
  readonly rxPartialChecksum?: boolean;
  /** Largest batch `receive()` hands out per call; a hint for the driver loop. */
  readonly maxBatch: number;
}

/** A frame-moving network device: simulated port, AF_XDP socket, TAP, or a middleware. */
export interface Link {
  /** Human-readable name for logs and metrics (`veth0`, `sim:a-b`). */
  readonly name: string;
  /** The device's Ethernet address, 6 bytes. Callers must not modify it. */
  readonly mac: Uint8Array;
  /** Largest IP packet (layer-3 MTU) the link carries, e.g. 1500. Frames add 14 (or 18) bytes. */
  readonly mtu: number;
  /** Offloads and hints. */
  readonly capabilities: LinkCapabilities;
  /**
   * Hands up to `max` received frames to `onFrame`, in arrival order, and returns how many it
   * handed out. Each `frame` view is valid only until `onFrame` returns.
   */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number;
  /**
   * Lends a transmit buffer of exactly `length` bytes, or returns `null` when the device has no
   * room (the caller keeps the packet or drops it; it must not spin). Until `commit()` or the
   * next `transmitBuffer()` call, the buffer is the caller's to fill.
   */
  transmitBuffer(length: number): Uint8Array | null;
  /**
   * Optional: `transmitBuffer(length)` that may lend a longer buffer, the device's whole frame
   * buffer, as the same view object every time that buffer is lent; `commit(length)` sends its
   * first `length` bytes. For callers that write at offsets (the IP layer's `beginPacketAt`):
   * no view per frame length on the transmit path.
   */
  transmitFrame?(length: number): Uint8Array | null;
  /** Queues the frame written into the last lent buffer, trimmed to `length` bytes. */
  commit(length: number): void;
  /**
   * Queues the frame like `commit(length)` and asks the device to complete one 16-bit
   * one's-complement checksum (Linux CHECKSUM_PARTIAL semantics, `skb_checksum_help`):
   *
   * - `csumStart`: byte offset from the start of the frame (the Ethernet header) where the
   *   summed region begins, i.e. the TCP/UDP header; the region runs to the end of the frame.
   * - `csumOffset`: offset of the 16-bit checksum field from `csumStart` (TCP 16, UDP 6).
   * - Before the call, the field at `csumStart + csumOffset` must hold the folded
   *   pseudo-header sum (source/destination address, protocol, L4 length), in network byte
   *   order and NOT complemented: exactly what Linux leaves there (`~tcp_v4_check(len, s, d,
   *   0)`). The device sums [csumStart, end of frame) including that field, folds to 16 bits
   *   and stores the complement; a result of 0 is stored as 0xffff (CSUM_MANGLED_0, right for
   *   UDP, harmless for TCP).
   *
   * Requires `csumStart + csumOffset + 2 <= length`; a request outside the frame is dropped
   * and counted by the device. Optional: only links that can (`capabilities.txChecksumOffload`)
   * should be asked; an implementation that cannot offload completes the checksum itself.
   * Allocation-free on the devices that implement it.
   */
  commitPartial?(length: number, csumStart: number, csumOffset: number): void;
  /** Pushes committed frames to the wire; cheap when nothing is queued. */
  flush(): void;
  /** Releases the device. Idempotent. */
  close(): void;
}

/** Size of an Ethernet II header without a VLAN tag. */
export const ETHERNET_HEADER_LEN = 14;

/**
 * Copies `frame` into a buffer lent by `link` and commits it; returns false when the link has
 * no room. For tests and slow paths: the stack writes into `transmitBuffer()` directly.
 */
export function transmitCopy(link: Link, frame: Uint8Array): boolean {
  const buf = link.transmitBuffer(frame.length);
  if (buf === null) return false;
  buf.set(frame);
  link.commit(frame.length);
  return true;
}
