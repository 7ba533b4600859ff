/**
 * Big-endian field access on byte views, shared by the protocol files. The callers check lengths
 * first (each `parse` validates once), so these helpers never bounds-check: reading past the end
 * of a Uint8Array yields `undefined`, which would silently become 0.
 *
 * @module
 */

/** Reads the big-endian u16 at `off`. */
export function read16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

/** Reads the big-endian u32 at `off` as an unsigned number. */
export function read32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Writes `v` as a big-endian u16 at `off`. */
export function write16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v;
}

/** Writes `v` as a big-endian u32 at `off`. */
export function write32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
}

/** Copies `n` bytes from `src[srcOff..]` into `dst[dstOff..]` (a loop: faster than `set` + subarray for short runs, and allocation-free). */
export function copyBytes(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/** True when the `n` bytes at `a[aOff..]` and `b[bOff..]` are equal. */
export function bytesEqual(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  n: number,
): boolean {
  for (let i = 0; i < n; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** A shared zero-length view, so "empty" payloads allocate nothing. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * A byte range of a buffer that becomes a subarray only when someone asks for it, so parsing
 * a frame allocates nothing while callers that want a `Uint8Array` still get one.
 */
export class Span {
  /** The buffer the range is in. */
  src: Uint8Array = EMPTY;
  /** Start offset in `src`. */
  start = 0;
  /** End offset in `src` (exclusive). */
  end = 0;
  private cached: Uint8Array | null = EMPTY;

  /** Points at `src[start..end)`. */
  set(src: Uint8Array, start: number, end: number): void {
    this.src = src;
    this.start = start;
    this.end = end;
    this.cached = start === end ? EMPTY : null;
  }

  /** Points at the whole of `view`. */
  assign(view: Uint8Array): void {
    this.src = view;
    this.start = 0;
    this.end = view.length;
    this.cached = view;
  }

  /** The range as a view (made on first use, then reused). */
  get view(): Uint8Array {
    let v = this.cached;
    if (v === null) {
      v = this.src.subarray(this.start, this.end);
      this.cached = v;
    }
    return v;
  }

  /** Number of bytes in the range. */
  get length(): number {
    return this.end - this.start;
  }
}
