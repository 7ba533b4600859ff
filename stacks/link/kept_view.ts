/**
 * Views kept for reuse, two per slot (most recent first): the receive path hands the same
 * ranges of the same memory again and again (a link's frames, a packet's payload range), and a
 * view per packet was its garbage. Two per slot, because a peer that now and then splits a
 * segment hands a slot an odd range once; with one, the slot's next usual range missed too.
 *
 * @module
 */

/** A cache of `2 * slots` views, dense (filled with an empty view) so V8 keeps fast elements. */
export function keptViews(slots: number): Uint8Array[] {
  return new Array<Uint8Array>(2 * slots).fill(EMPTY);
}

const EMPTY = new Uint8Array(0);

/**
 * `src.subarray(start, end)`, from slot `slot` of `cache` when one of its two views is that
 * range of the same memory; otherwise made and kept (the older of the two is dropped).
 */
export function keptView(
  cache: Uint8Array[],
  slot: number,
  src: Uint8Array,
  start: number,
  end: number,
): Uint8Array {
  const k = 2 * slot;
  const at = src.byteOffset + start;
  const len = end - start;
  const v = cache[k]!;
  if (v.byteOffset === at && v.length === len && v.buffer === src.buffer) return v;
  const w = cache[k + 1]!;
  cache[k + 1] = v;
  if (w.byteOffset === at && w.length === len && w.buffer === src.buffer) {
    cache[k] = w;
    return w;
  }
  const nv = src.subarray(start, end);
  cache[k] = nv;
  return nv;
}
