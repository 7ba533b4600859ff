/**
 * TCP sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4, RFC 1982 style): every
 * comparison goes through the signed 32-bit difference so that wrap-around is invisible.
 *
 * Values are kept as unsigned 32-bit numbers (`>>> 0`). The functions also take the signed
 * 32-bit form of the same number (`| 0`): hot paths pass that, because an unsigned value above
 * 2^31 is a heap number wherever it crosses a call V8 does not inline.
 *
 * @module
 */

/** A sequence number, an unsigned 32-bit integer. */
export type Seq = number;

/** `a + n` modulo 2^32. */
export function seqAdd(a: Seq, n: number): Seq {
  return (a + n) >>> 0;
}

/** `a + n` modulo 2^32 in the signed 32-bit form (see the module comment). */
export function seqAdd32(a: Seq, n: number): number {
  return (a + n) | 0;
}

/** The signed distance `a - b` (positive when `a` is after `b`), valid within 2^31. */
export function seqDiff(a: Seq, b: Seq): number {
  return (a - b) | 0;
}

/** `a < b` in sequence space. */
export function seqLt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) < 0;
}

/** `a <= b` in sequence space. */
export function seqLe(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) <= 0;
}

/** `a > b` in sequence space. */
export function seqGt(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) > 0;
}

/** `a >= b` in sequence space. */
export function seqGe(a: Seq, b: Seq): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of `a` and `b` in sequence space. */
export function seqMax(a: Seq, b: Seq): Seq {
  return ((a - b) | 0) >= 0 ? a : b;
}

/** The earlier of `a` and `b` in sequence space. */
export function seqMin(a: Seq, b: Seq): Seq {
  return ((a - b) | 0) <= 0 ? a : b;
}

/** `lo <= x < hi` in sequence space (an empty range when `lo == hi`). */
export function seqInRange(x: Seq, lo: Seq, hi: Seq): boolean {
  return ((x - lo) | 0) >= 0 && ((x - hi) | 0) < 0;
}
