/**
 * AF_XDP TX metadata (Linux >= 6.8; `XDP_UMEM_TX_METADATA_LEN` >= 6.11): a `struct
 * xsk_tx_metadata` placed `tx_metadata_len` bytes BEFORE a TX frame's data in the UMEM, read by
 * the kernel when the descriptor's options carry `XDP_TX_METADATA`. We use it for checksum
 * offload only (`XDP_TXMD_FLAGS_CHECKSUM`).
 *
 * ```text
 * struct xsk_tx_metadata {          (include/uapi/linux/if_xdp.h, 24 bytes since 6.14)
 *   0  __u64 flags;                 XDP_TXMD_FLAGS_*
 *   8  __u16 request.csum_start;    from the packet's first byte (desc->addr)
 *  10  __u16 request.csum_offset;   from csum_start to the 16-bit field
 *  12  (4 bytes padding)
 *  16  __u64 request.launch_time;   XDP_TXMD_FLAGS_LAUNCH_TIME only
 * };                                union'd with completion.tx_timestamp at 8
 * ```
 *
 * Host byte order (little-endian on every target we run on).
 *
 * @module
 */

/** UMEM registration flag: honour `tx_metadata_len` (Linux >= 6.11; older kernels: EINVAL). */
export const XDP_UMEM_TX_METADATA_LEN = 1 << 2;
/** UMEM registration flag: copy mode completes requested checksums on the CPU. */
export const XDP_UMEM_TX_SW_CSUM = 1 << 1;
/** `xdp_desc.options` bit: the frame carries valid TX metadata (first descriptor only). */
export const XDP_TX_METADATA = 1 << 1;
/** `xsk_tx_metadata.flags`: request a TX timestamp. */
export const XDP_TXMD_FLAGS_TIMESTAMP = 1 << 0;
/** `xsk_tx_metadata.flags`: request checksum offload (csum_start/csum_offset). */
export const XDP_TXMD_FLAGS_CHECKSUM = 1 << 1;
/**
 * Bytes reserved before each TX frame: sizeof(struct xsk_tx_metadata) on 6.14+ (24); the
 * kernel requires a multiple of 8 below 256 and reads only the fields the flags select, so 24
 * also works on 6.11-6.13 (16-byte struct).
 */
export const TX_METADATA_LEN = 24;
/** Offset of `flags` (u64) from the start of the metadata. */
export const TXMD_FLAGS = 0;
/** Offset of `request.csum_start` (u16). */
export const TXMD_CSUM_START = 8;
/** Offset of `request.csum_offset` (u16). */
export const TXMD_CSUM_OFFSET = 10;

/**
 * Writes a checksum-offload request into the `TX_METADATA_LEN` bytes before `dataAt` in
 * `umem` (little-endian, byte stores: no DataView, no allocation). Returns nothing; the caller
 * sets `XDP_TX_METADATA` in the descriptor.
 */
export function writeChecksumRequest(
  umem: Uint8Array,
  dataAt: number,
  csumStart: number,
  csumOffset: number,
): void {
  const m = dataAt - TX_METADATA_LEN;
  // flags = XDP_TXMD_FLAGS_CHECKSUM as a u64: the rest of the word must be 0 (the kernel
  // rejects unknown flag bits; the area may hold an older request's bytes).
  umem[m] = XDP_TXMD_FLAGS_CHECKSUM;
  umem[m + 1] = 0;
  umem[m + 2] = 0;
  umem[m + 3] = 0;
  umem[m + 4] = 0;
  umem[m + 5] = 0;
  umem[m + 6] = 0;
  umem[m + 7] = 0;
  umem[m + TXMD_CSUM_START] = csumStart & 0xff;
  umem[m + TXMD_CSUM_START + 1] = csumStart >>> 8;
  umem[m + TXMD_CSUM_OFFSET] = csumOffset & 0xff;
  umem[m + TXMD_CSUM_OFFSET + 1] = csumOffset >>> 8;
}

/**
 * Whether the kernel accepts a checksum request for a first descriptor of `firstLen` bytes:
 * `xsk_skb_metadata` refuses `csum_start + csum_offset + 2 > desc->len` with EINVAL, and a
 * refused descriptor is left at the head of the TX ring (every later kick fails), so the link
 * must never post one.
 */
export function validChecksumRequest(
  firstLen: number,
  csumStart: number,
  csumOffset: number,
): boolean {
  return csumStart >= 0 && csumOffset >= 0 && csumStart <= 0xffff && csumOffset <= 0xffff &&
    csumStart + csumOffset + 2 <= firstLen;
}

/**
 * Completes a partial checksum in place, as `skb_checksum_help` does: one's-complement sum of
 * `frame[csumStart, end)` (the field holds the pseudo-header sum), folded, complemented,
 * 0 stored as 0xffff. For links that cannot offload and for chains the kernel's software path
 * would get wrong; not a fast path.
 */
export function completeChecksum(frame: Uint8Array, csumStart: number, csumOffset: number): void {
  const end = frame.length;
  let sum = 0;
  let i = csumStart;
  // Fold every 16 Ki words so the running sum stays a small integer (< 2^31).
  while (i + 1 < end) {
    const stop = Math.min(end - 1, i + 32768);
    for (; i < stop; i += 2) sum += (frame[i]! << 8) | frame[i + 1]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (i < end) sum += frame[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  const at = csumStart + csumOffset;
  const v = c === 0 ? 0xffff : c;
  frame[at] = v >>> 8;
  frame[at + 1] = v & 0xff;
}
