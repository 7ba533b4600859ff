/**
 * The one's complement sum with WebAssembly SIMD (128-bit), for buffers that live in this
 * module's linear memory (zero-copy) or, copied in, for large buffers elsewhere.
 *
 * The module is hand-assembled below, byte by byte, so no toolchain or build step is needed.
 * Equivalent text format:
 *
 * ```wat
 * (module
 *   (memory (export "memory") 2)                       ;; 128 KiB; the host may grow it
 *   (func (export "sum") (param $p i32) (param $n i32) (result i32)
 *     (local $end i32) (local $s i32) (local $lim i32) (local $acc v128)
 *     ;; sums the little-endian 16-bit words of [p, p+n) (odd tail byte as a low byte) into
 *     ;; four u32 lanes with i32x4.extadd_pairwise_i16x8_u (no carries: each 64-byte step adds
 *     ;; at most 4 * 2 * 0xffff to a lane, so n <= 512 KiB cannot overflow), folds each lane
 *     ;; to 17 bits and returns their sum plus the scalar tail
 *     (local.set $end (i32.add (local.get $p) (local.get $n)))
 *     (local.set $acc (i32x4.splat (i32.const 0)))
 *     (local.set $lim (i32.add (local.get $p) (i32.and (local.get $n) (i32.const -64))))
 *     (block (loop                                      ;; 64 bytes per step, 4 loads
 *       (br_if 1 (i32.ge_u (local.get $p) (local.get $lim)))
 *       (local.set $acc (i32x4.add (i32x4.add (i32x4.add (i32x4.add (local.get $acc)
 *         (i32x4.extadd_pairwise_i16x8_u (v128.load offset=0 (local.get $p))))
 *         (i32x4.extadd_pairwise_i16x8_u (v128.load offset=16 (local.get $p))))
 *         (i32x4.extadd_pairwise_i16x8_u (v128.load offset=32 (local.get $p))))
 *         (i32x4.extadd_pairwise_i16x8_u (v128.load offset=48 (local.get $p)))))
 *       (local.set $p (i32.add (local.get $p) (i32.const 64)))
 *       (br 0)))
 *     (local.set $lim (i32.add (local.get $p)
 *       (i32.and (i32.sub (local.get $end) (local.get $p)) (i32.const -16))))
 *     (block (loop                                      ;; then 16 bytes per step
 *       (br_if 1 (i32.ge_u (local.get $p) (local.get $lim)))
 *       (local.set $acc (i32x4.add (local.get $acc)
 *         (i32x4.extadd_pairwise_i16x8_u (v128.load (local.get $p)))))
 *       (local.set $p (i32.add (local.get $p) (i32.const 16)))
 *       (br 0)))
 *     ;; s = sum over lanes k of (lane_k & 0xffff) + (lane_k >>> 16)   ($lim as a temporary)
 *     (local.set $s (i32.add (i32.add (i32.add (FOLD 0) (FOLD 1)) (FOLD 2)) (FOLD 3)))
 *     (block (loop                                      ;; 2-byte tail words
 *       (br_if 1 (i32.gt_u (i32.add (local.get $p) (i32.const 2)) (local.get $end)))
 *       (local.set $s (i32.add (local.get $s) (i32.load16_u (local.get $p))))
 *       (local.set $p (i32.add (local.get $p) (i32.const 2)))
 *       (br 0)))
 *     (if (i32.lt_u (local.get $p) (local.get $end))    ;; odd last byte
 *       (then (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $p))))))
 *     (local.get $s)))
 * ;; FOLD k = (i32.add (i32.and (local.tee $lim (i32x4.extract_lane k (local.get $acc)))
 * ;;                             (i32.const 0xffff))
 * ;;                    (i32.shr_u (local.get $lim) (i32.const 16)))
 * ```
 *
 * Byte order: the module adds little-endian words starting at the first byte, i.e. the
 * byte-swapped big-endian words (RFC 1071 2(B)), whatever the address; the wrapper folds and
 * swaps once. Wasm loads may be unaligned, so there is no head/tail alignment handling.
 *
 * @module
 */

/** Module header and every section before the code section. */
// deno-fmt-ignore
const HEAD_BYTES = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,         // "\0asm", version 1
  // type section (1): one type, func (i32, i32) -> i32
  0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f,
  // function section (3): one function of type 0
  0x03, 0x02, 0x01, 0x00,
  // memory section (5): one memory, no maximum, 2 pages
  0x05, 0x03, 0x01, 0x00, 0x02,
  // export section (7): "sum" = func 0, "memory" = memory 0
  0x07, 0x10, 0x02,
  0x03, 0x73, 0x75, 0x6d, 0x00, 0x00,
  0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00,
];

/** The function body, instruction by instruction (see the text format above). */
// deno-fmt-ignore
const BODY_BYTES = [
  // locals: 3 x i32 ($end=2, $s=3, $lim=4), 1 x v128 ($acc=5)
  0x02, 0x03, 0x7f, 0x01, 0x7b,
  0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x02,               // $end = $p + $n
  0x41, 0x00, 0xfd, 0x11, 0x21, 0x05,                     // $acc = i32x4.splat(0)
  0x20, 0x00, 0x20, 0x01, 0x41, 0x40, 0x71, 0x6a, 0x21, 0x04, // $lim = $p + ($n & -64)
  0x02, 0x40, 0x03, 0x40,                                 // block, loop
  0x20, 0x00, 0x20, 0x04, 0x4f, 0x0d, 0x01,               //   br_if 1 ($p >= $lim)
  0x20, 0x05,                                             //   $acc
  0x20, 0x00, 0xfd, 0x00, 0x00, 0x00,                     //   v128.load offset=0 ($p)
  0xfd, 0x7f, 0xfd, 0xae, 0x01,                           //   extadd_pairwise_i16x8_u, i32x4.add
  0x20, 0x00, 0xfd, 0x00, 0x00, 0x10,                     //   v128.load offset=16 ($p)
  0xfd, 0x7f, 0xfd, 0xae, 0x01,                           //   extadd_pairwise_i16x8_u, i32x4.add
  0x20, 0x00, 0xfd, 0x00, 0x00, 0x20,                     //   v128.load offset=32 ($p)
  0xfd, 0x7f, 0xfd, 0xae, 0x01,                           //   extadd_pairwise_i16x8_u, i32x4.add
  0x20, 0x00, 0xfd, 0x00, 0x00, 0x30,                     //   v128.load offset=48 ($p)
  0xfd, 0x7f, 0xfd, 0xae, 0x01,                           //   extadd_pairwise_i16x8_u, i32x4.add
  0x21, 0x05,                                             //   -> $acc
  0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0x00,         //   $p += 64
  0x0c, 0x00,                                             //   br 0
  0x0b, 0x0b,                                             // end loop, end block
  0x20, 0x00, 0x20, 0x02, 0x20, 0x00, 0x6b,               // $lim = $p + (($end - $p)
  0x41, 0x70, 0x71, 0x6a, 0x21, 0x04,                     //                 & -16)
  0x02, 0x40, 0x03, 0x40,                                 // block, loop
  0x20, 0x00, 0x20, 0x04, 0x4f, 0x0d, 0x01,               //   br_if 1 ($p >= $lim)
  0x20, 0x05, 0x20, 0x00, 0xfd, 0x00, 0x00, 0x00,         //   $acc, v128.load ($p)
  0xfd, 0x7f, 0xfd, 0xae, 0x01, 0x21, 0x05,               //   pairwise, add, -> $acc
  0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00,               //   $p += 16
  0x0c, 0x00,                                             //   br 0
  0x0b, 0x0b,                                             // end loop, end block
  0x20, 0x05, 0xfd, 0x1b, 0x00, 0x22, 0x04,               // FOLD 0: tee $lim (lane 0)
  0x41, 0xff, 0xff, 0x03, 0x71,                           //   & 0xffff
  0x20, 0x04, 0x41, 0x10, 0x76, 0x6a,                     //   + ($lim >>> 16)
  0x20, 0x05, 0xfd, 0x1b, 0x01, 0x22, 0x04,               // FOLD 1
  0x41, 0xff, 0xff, 0x03, 0x71,
  0x20, 0x04, 0x41, 0x10, 0x76, 0x6a,
  0x6a,                                                   // FOLD 0 + FOLD 1
  0x20, 0x05, 0xfd, 0x1b, 0x02, 0x22, 0x04,               // FOLD 2
  0x41, 0xff, 0xff, 0x03, 0x71,
  0x20, 0x04, 0x41, 0x10, 0x76, 0x6a,
  0x6a,                                                   // + FOLD 2
  0x20, 0x05, 0xfd, 0x1b, 0x03, 0x22, 0x04,               // FOLD 3
  0x41, 0xff, 0xff, 0x03, 0x71,
  0x20, 0x04, 0x41, 0x10, 0x76, 0x6a,
  0x6a, 0x21, 0x03,                                       // + FOLD 3 -> $s
  0x02, 0x40, 0x03, 0x40,                                 // block, loop
  0x20, 0x00, 0x41, 0x02, 0x6a, 0x20, 0x02, 0x4b,         //   $p + 2 > $end
  0x0d, 0x01,                                             //   br_if 1
  0x20, 0x03, 0x20, 0x00, 0x2f, 0x00, 0x00, 0x6a,         //   $s + i32.load16_u ($p)
  0x21, 0x03,                                             //   -> $s
  0x20, 0x00, 0x41, 0x02, 0x6a, 0x21, 0x00,               //   $p += 2
  0x0c, 0x00,                                             //   br 0
  0x0b, 0x0b,                                             // end loop, end block
  0x20, 0x00, 0x20, 0x02, 0x49, 0x04, 0x40,               // if ($p < $end)
  0x20, 0x03, 0x20, 0x00, 0x2d, 0x00, 0x00, 0x6a,         //   $s + i32.load8_u ($p)
  0x21, 0x03,                                             //   -> $s
  0x0b,                                                   // end if
  0x20, 0x03,                                             // return $s
  0x0b,                                                   // end function
];

/** Header, then the code section (10): one body, its size and the section's as LEB128. */
function assemble(): Uint8Array {
  const bodySize = leb(BODY_BYTES.length);
  const section = [0x01, ...bodySize, ...BODY_BYTES];
  return new Uint8Array([...HEAD_BYTES, 0x0a, ...leb(section.length), ...section]);
}

function leb(v: number): number[] {
  const out: number[] = [];
  do {
    let x = v & 0x7f;
    v >>>= 7;
    if (v !== 0) x |= 0x80;
    out.push(x);
  } while (v !== 0);
  return out;
}

/** The assembled module bytes (exported for tests that validate the encoding). */
export const SIMD_CHECKSUM_MODULE: Uint8Array = assemble();

interface SimdExports {
  memory: WebAssembly.Memory;
  sum: (p: number, n: number) => number;
}

let exportsOrNull: SimdExports | null = null;
let unavailableReason = "";
try {
  if (WebAssembly.validate(SIMD_CHECKSUM_MODULE as Uint8Array<ArrayBuffer>)) {
    const inst = new WebAssembly.Instance(
      new WebAssembly.Module(SIMD_CHECKSUM_MODULE as Uint8Array<ArrayBuffer>),
    );
    exportsOrNull = inst.exports as unknown as SimdExports;
  } else unavailableReason = "the runtime rejected the SIMD module (no WebAssembly SIMD)";
} catch (e) {
  unavailableReason = `WebAssembly unavailable: ${e}`;
}

/** True when WebAssembly SIMD works here; otherwise the functions below must not be called. */
export const SIMD_CHECKSUM_AVAILABLE: boolean = exportsOrNull !== null;
/** Why SIMD is unavailable ("" when it is available). */
export const SIMD_CHECKSUM_UNAVAILABLE_REASON: string = unavailableReason;

const simd: SimdExports = exportsOrNull ?? {
  memory: new WebAssembly.Memory({ initial: 0 }),
  sum: () => 0,
};
const MAX_CALL = 65536; // even, and far below the 512 KiB lane-overflow bound
const SCRATCH = 65536; // bytes of the first page used as the copy-in area
/** Extra bytes worth copying to avoid making a view of the range (headers around a payload). */
const WHOLE_VIEW_SLACK = 256;
/**
 * The memory's current ArrayBuffer and a byte view of it. `WebAssembly.Memory.buffer` is an API
 * getter that costs as much as a short sum, so it is read once here and again only after
 * `simdArena` grows the memory (nothing else can: the instance's exports stay in this module).
 */
let memBuffer: ArrayBufferLike = simd.memory.buffer;
let memBytes = new Uint8Array(memBuffer);
/** First byte of linear memory free for `simdArena` (the copy-in area comes before it). */
let arenaNext = SCRATCH;

function fold16(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** True when `buffer` is the SIMD module's memory (so sums of it need no copy). */
export function isSimdMemory(buffer: ArrayBufferLike): boolean {
  return buffer === memBuffer;
}

/**
 * The module's linear memory as bytes. It is replaced when `simdArena` grows the memory:
 * call again rather than keeping it.
 */
export function simdMemory(): Uint8Array {
  return memBytes;
}

/**
 * Reserves `bytes` of the SIMD module's linear memory and returns a view of it. Buffers taken
 * from here (e.g. a link's frame pool) are summed in place by `simdSumRange`, without the copy.
 * Growing the memory detaches views made earlier, so reserve everything before use.
 */
export function simdArena(bytes: number): Uint8Array {
  const start = (arenaNext + 63) & ~63;
  const need = start + bytes;
  const have = memBuffer.byteLength;
  if (need > have) {
    simd.memory.grow(Math.ceil((need - have) / 65536));
    memBuffer = simd.memory.buffer;
    memBytes = new Uint8Array(memBuffer);
  }
  arenaNext = need;
  return new Uint8Array(memBuffer, start, bytes);
}

/**
 * The one's complement sum of `data[start, end)` as big-endian 16-bit words (odd tail byte
 * padded with zero), folded to 16 bits: the same value as
 * `onesComplementSumRange(data, start, end)`. Buffers inside the module's memory are summed in
 * place; others are copied into it first (the whole view when the range is most of it, else
 * the range in 64 KiB pieces). Only when SIMD_CHECKSUM_AVAILABLE.
 */
export function simdSumRange(data: Uint8Array, start: number, end: number): number {
  let sum = 0;
  if (data.buffer === memBuffer) {
    let p = data.byteOffset + start;
    const stop = data.byteOffset + end;
    while (p < stop) {
      const n = stop - p > MAX_CALL ? MAX_CALL : stop - p;
      sum += simd.sum(p, n);
      p += n;
    }
  } else {
    const mem = simdMemory();
    const len = end - start;
    if (data.length <= MAX_CALL && data.length - len <= WHOLE_VIEW_SLACK) {
      // The range is most of the view (a segment in its frame): copy the whole view, which
      // needs no temporary view for set(), and sum the range where it landed.
      mem.set(data, 0);
      sum = simd.sum(start, len);
    } else {
      let s = start;
      while (s < end) {
        const n = end - s > MAX_CALL ? MAX_CALL : end - s;
        mem.set(data.subarray(s, s + n), 0);
        sum += simd.sum(0, n);
        s += n;
      }
    }
  }
  const f = fold16(sum);
  return ((f & 0xff) << 8) | (f >>> 8);
}
