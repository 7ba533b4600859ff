/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * `onesComplementSum` is the hot loop of every receive: it loads aligned 32-bit words through an
 * Int32Array laid over the whole ArrayBuffer (cached for the last four buffers, so nothing is
 * allocated per call), adds their low and high halves into two int32 accumulators (no carry handling in the
 * loop), and folds the carries once per 128 KiB chunk and at the end.
 *
 * Sums of 384 bytes and more (96 and more for buffers in the SIMD module's memory, see
 * `simdArena`) go to a hand-assembled WebAssembly SIMD module (checksum_simd.ts), 2-3x faster
 * at MTU sizes; this TypeScript loop is the fallback.
 *
 * Byte order: RFC 1071 section 2(B) — the one's complement sum is byte-order independent up to a
 * final swap. Native little-endian words give the sum of byte-swapped 16-bit words; folding and
 * swapping the result yields the big-endian sum. When the data starts at an odd address, the
 * word pairing is shifted by one byte, which is the same as swapping, so no final swap is needed.
 *
 * @module
 */

import { isSimdMemory, SIMD_CHECKSUM_AVAILABLE, simdSumRange } from "./checksum_simd.ts";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Below this length the byte loop wins over setting up the word path. */
const WORD_PATH_MIN = 32;
/** 32-bit words per inner chunk, so the int32 half-word accumulators cannot overflow. */
const CHUNK_WORDS = 32768;

/**
 * Word views over the last few ArrayBuffers summed. A stack alternates between at least two
 * buffers (its transmit ring and its receive ring, or two directions of a test link), so a
 * single cached view was rebuilt, and allocated, on nearly every call; four slots, replaced
 * round-robin, cover the buffers of a typical poll without a lookup structure.
 */
const CACHE_SLOTS = 4;
const cachedBuffers: (ArrayBufferLike | null)[] = [null, null, null, null];
const cachedViews: Int32Array[] = [
  new Int32Array(0),
  new Int32Array(0),
  new Int32Array(0),
  new Int32Array(0),
];
let cacheNext = 0;

function wordsOver(buffer: ArrayBufferLike): Int32Array {
  const words = buffer.byteLength >>> 2;
  for (let i = 0; i < CACHE_SLOTS; i++) {
    // A resizable buffer may have changed length since: compare the word count too.
    if (cachedBuffers[i] === buffer && cachedViews[i]!.length === words) return cachedViews[i]!;
  }
  const slot = cacheNext;
  cacheNext = (slot + 1) & (CACHE_SLOTS - 1);
  const v = new Int32Array(buffer, 0, words);
  cachedBuffers[slot] = buffer;
  cachedViews[slot] = v;
  return v;
}

/** Folds any non-negative integer sum (up to 2^53) to at most 16 bits with end-around carry. */
function fold(sum: number): number {
  if (sum <= 0xffffffff) {
    // Two 32-bit folds: the first leaves at most 0x1fffe, the second at most 0xffff.
    sum = (sum & 0xffff) + (sum >>> 16);
    return (sum & 0xffff) + (sum >>> 16);
  }
  while (sum > 0xffff) {
    const hi = Math.floor(sum / 65536);
    sum = sum - hi * 65536 + hi;
  }
  return sum;
}

function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/**
 * Sum of the 16-bit halves of `words[from..to)` (at most CHUNK_WORDS words). int32
 * accumulators: each step adds at most 2 * 0xffff, so 16384 steps stay below 2^31.
 */
function sumWords(words: Int32Array, from: number, to: number): number {
  let lo = 0, hi = 0;
  let w = from;
  for (; w + 1 < to; w += 2) {
    const a = words[w]!, b = words[w + 1]!;
    lo = (lo + (a & 0xffff) + (b & 0xffff)) | 0;
    hi = (hi + (a >>> 16) + (b >>> 16)) | 0;
  }
  if (w < to) {
    const a = words[w]!;
    lo += a & 0xffff;
    hi += a >>> 16;
  }
  return lo + hi;
}

/** Big-endian 16-bit word sum by bytes; `off..end` relative to `data`. */
function byteSum(data: Uint8Array, off: number, end: number): number {
  let sum = 0;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i < end) sum += data[i]! << 8;
  return sum;
}

/**
 * The one's complement sum of `data` as big-endian 16-bit words (an odd tail byte is padded
 * with zero), added to `initial`. The result is folded to at most 16 bits, so it can be chained
 * as `initial` again; pass it to `foldChecksum` for the final checksum. When chaining, every part
 * but the last must have even length.
 */
export function onesComplementSum(data: Uint8Array, initial = 0): number {
  return onesComplementSumRange(data, 0, data.length, initial);
}

/**
 * `onesComplementSum(data.subarray(start, end), initial)` without making the subarray (the
 * receive path sums header and segment ranges of a frame without allocating).
 * Requires 0 <= start <= end <= data.length.
 */
export function onesComplementSumRange(
  data: Uint8Array,
  start: number,
  end: number,
  initial = 0,
): number {
  const len = end - start;
  if (
    simdEnabled &&
    (len >= SIMD_COPIED_MIN || (len >= SIMD_IN_PLACE_MIN && isSimdMemory(data.buffer)))
  ) {
    return fold(initial + simdSumRange(data, start, end));
  }
  return onesComplementSumRangeScalar(data, start, end, initial);
}

/**
 * Crossovers measured with `deno run -A bench/checksum_bench.ts` (bench/RESULTS.md): the SIMD
 * module costs a fixed ~22 ns per call (the JS-to-Wasm transition) plus, for buffers outside
 * its memory, the copy in; the TypeScript word loop runs at ~8-9 GB/s, SIMD at ~25-33 GB/s.
 * Copied in, SIMD is ahead from about 400 B (42 vs 53 ns at 256 B, 67 vs 61 ns at 512 B); in
 * place, from about 100 B (equal at 64 B).
 */
const SIMD_COPIED_MIN = 384;
const SIMD_IN_PLACE_MIN = 96;
let simdEnabled = SIMD_CHECKSUM_AVAILABLE;

/**
 * Turns the WebAssembly SIMD path of `onesComplementSumRange` on or off (benchmarks and tests
 * of the fallback); it cannot be turned on where SIMD is unavailable. Returns the new setting.
 */
export function setChecksumSimd(enabled: boolean): boolean {
  simdEnabled = enabled && SIMD_CHECKSUM_AVAILABLE;
  return simdEnabled;
}

/**
 * The pure TypeScript `onesComplementSumRange` (the fallback when WebAssembly SIMD is missing,
 * and the reference the SIMD path is tested against).
 */
export function onesComplementSumRangeScalar(
  data: Uint8Array,
  start: number,
  end: number,
  initial = 0,
): number {
  const len = end - start;
  if (len < WORD_PATH_MIN || !LITTLE_ENDIAN) return fold(initial + byteSum(data, start, end));
  const base = data.byteOffset + start;
  const words = wordsOver(data.buffer);
  // Head: bytes before the first 4-aligned address, summed as little-endian-positioned bytes
  // (absolute even address = low byte) to match the word loads below.
  const headLen = (4 - (base & 3)) & 3;
  let sum = 0;
  for (let i = 0; i < headLen; i++) {
    const b = data[start + i]!;
    sum += ((base + i) & 1) === 0 ? b : b << 8;
  }
  let w = (base + headLen) >>> 2;
  const nWords = (len - headLen) >>> 2;
  const wEnd = w + nWords;
  while (w < wEnd) {
    const chunkEnd = wEnd - w > CHUNK_WORDS ? w + CHUNK_WORDS : wEnd;
    sum += sumWords(words, w, chunkEnd);
    w = chunkEnd;
  }
  for (let i = headLen + nWords * 4; i < len; i++) {
    const b = data[start + i]!;
    sum += ((base + i) & 1) === 0 ? b : b << 8;
  }
  let s = fold(sum);
  if ((base & 1) === 0) s = swap16(s);
  return fold(initial + s);
}

/** Folds a running sum and returns the 16-bit checksum to put on the wire (`~sum & 0xffff`). */
export function foldChecksum(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** The RFC 1071 Internet checksum of `data`. */
export function internetChecksum(data: Uint8Array): number {
  return foldChecksum(onesComplementSum(data));
}

/** The sum of the IPv4 pseudo-header (RFC 793/768): addresses as u32, protocol, L4 length. */
export function pseudoHeaderSumV4(
  src: number,
  dst: number,
  protocol: number,
  length: number,
): number {
  return fold(
    (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length,
  );
}

/**
 * `pseudoHeaderSumV4` from the 4-byte addresses as they sit in the packet. The receive path
 * uses it: building the u32 addresses first makes numbers above 2^30, which V8 boxes as heap
 * numbers (an allocation each) when they are passed to a function.
 */
export function pseudoHeaderSumV4Bytes(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): number {
  return fold(
    ((src[0]! << 8) | src[1]!) + ((src[2]! << 8) | src[3]!) + ((dst[0]! << 8) | dst[1]!) +
      ((dst[2]! << 8) | dst[3]!) + protocol + length,
  );
}

/** The sum of the IPv6 pseudo-header (RFC 8200 section 8.1): 16-byte addresses, protocol, length. */
export function pseudoHeaderSumV6(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): number {
  let sum = protocol + (length >>> 16) + (length & 0xffff);
  for (let i = 0; i < 16; i += 2) {
    sum += ((src[i]! << 8) | src[i + 1]!) + ((dst[i]! << 8) | dst[i + 1]!);
  }
  return fold(sum);
}

/** True when the TCP/UDP/ICMPv6 `segment` (checksum field included) sums to all ones. */
export function transportChecksumOk(segment: Uint8Array, pseudoSum: number): boolean {
  return fold(onesComplementSum(segment, pseudoSum)) === 0xffff;
}

/** `transportChecksumOk(data.subarray(start, end), pseudoSum)` without the subarray. */
export function checksumRangeOk(
  data: Uint8Array,
  start: number,
  end: number,
  pseudoSum: number,
): boolean {
  return fold(onesComplementSumRange(data, start, end, pseudoSum)) === 0xffff;
}

/**
 * Zeroes the 16-bit checksum field at `checksumOffset`, computes the checksum over `segment`
 * plus `pseudoSum`, and writes it (TCP 16, UDP 6, ICMPv6 2). For UDP (offset 6) a computed zero
 * is written as 0xffff, since zero means "no checksum" (RFC 768).
 */
export function writeTransportChecksum(
  segment: Uint8Array,
  checksumOffset: number,
  pseudoSum: number,
): void {
  segment[checksumOffset] = 0;
  segment[checksumOffset + 1] = 0;
  let c = foldChecksum(onesComplementSum(segment, pseudoSum));
  if (c === 0 && checksumOffset === 6) c = 0xffff;
  segment[checksumOffset] = c >>> 8;
  segment[checksumOffset + 1] = c;
}

/**
 * `writeTransportChecksum(buf.subarray(start, end), checksumOffset, pseudoSum)` without the
 * view: the segment sits at `[start, end)` of a frame buffer.
 */
export function writeTransportChecksumAt(
  buf: Uint8Array,
  start: number,
  end: number,
  checksumOffset: number,
  pseudoSum: number,
): void {
  const at = start + checksumOffset;
  buf[at] = 0;
  buf[at + 1] = 0;
  let c = foldChecksum(onesComplementSumRange(buf, start, end, pseudoSum));
  if (c === 0 && checksumOffset === 6) c = 0xffff;
  buf[at] = c >>> 8;
  buf[at + 1] = c;
}

/**
 * Leaves the transport checksum at `checksumOffset` partial for a device to complete (Linux
 * CHECKSUM_PARTIAL): the field holds the folded pseudo-header sum, not complemented. The device
 * sums the segment from its start, field included, and stores the complement, which equals what
 * `writeTransportChecksum` computes.
 */
export function writePartialChecksum(
  segment: Uint8Array,
  checksumOffset: number,
  pseudoSum: number,
): void {
  const f = fold(pseudoSum);
  segment[checksumOffset] = f >>> 8;
  segment[checksumOffset + 1] = f;
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changes from
 * `oldWord` to `newWord`: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it gives the same result as a
 * full recomputation (0x0000, not 0xffff, in the RFC's section 4 example).
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~fold(sum) & 0xffff;
}
