/**
 * An indexed binary min-heap of TCBs keyed by their next deadline, so the socket layer answers
 * `pollAt()` in O(1) and runs only due connections in `poll()`, however many exist.
 *
 * @module
 */

import { type Instant, NEVER } from "../../time.ts";

/** What the heap needs from an entry: a key and a slot index it maintains. */
export interface HeapEntry {
  /** Deadline the entry is queued under. */
  heapKey: Instant;
  /** Position in the heap, -1 when absent. */
  heapIndex: number;
}

/** Min-heap with O(log n) update and removal of arbitrary entries. */
export class TimerHeap<T extends HeapEntry> {
  readonly #key = new Float64Array(1);
  readonly #items: T[] = [];

  /** Number of queued entries. */
  get size(): number {
    return this.#items.length;
  }

  /** Earliest deadline, or NEVER. */
  peekKey(): Instant {
    return this.#items.length === 0 ? NEVER : this.#items[0]!.heapKey;
  }

  /** `out[i] = peekKey()`: stored, not returned (no heap number for a caller not inlining). */
  peekKeyInto(out: Float64Array, i: number): void {
    // Two stores, not one of a conditional: merging the key with NEVER boxed it (16 B a call).
    if (this.#items.length === 0) out[i] = NEVER;
    else out[i] = this.#items[0]!.heapKey;
  }

  /** Earliest entry, or undefined. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** Queues, re-keys or (for key NEVER) removes `e`. */
  set(e: T, key: Instant): void {
    // Through setFrom's slot, so the filing logic exists once and `key` is not passed on.
    this.#key[0] = key;
    this.setFrom(e, this.#key, 0);
  }

  /**
   * `set(e, keys[i])` with the key read here: a deadline above 2^31 ns passed as an argument to
   * a call that is not inlined is a heap number (one per re-filed connection).
   */
  setFrom(e: T, keys: Float64Array, i: number): void {
    const key = keys[i]!;
    if (key === NEVER) {
      this.remove(e);
      return;
    }
    if (e.heapIndex < 0) {
      e.heapKey = key;
      e.heapIndex = this.#items.length;
      this.#items.push(e);
      this.#up(e.heapIndex);
      return;
    }
    const old = e.heapKey;
    e.heapKey = key;
    if (key < old) this.#up(e.heapIndex);
    else if (key > old) this.#down(e.heapIndex);
  }

  /** Removes `e` if queued. */
  remove(e: T): void {
    const i = e.heapIndex;
    if (i < 0) return;
    const last = this.#items.pop()!;
    e.heapIndex = -1;
    e.heapKey = NEVER;
    if (last === e) return;
    this.#items[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  #up(i: number): void {
    const items = this.#items;
    const e = items[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pe = items[p]!;
      if (pe.heapKey <= e.heapKey) break;
      items[i] = pe;
      pe.heapIndex = i;
      i = p;
    }
    items[i] = e;
    e.heapIndex = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const e = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && items[r]!.heapKey < items[l]!.heapKey ? r : l;
      const ce = items[c]!;
      if (ce.heapKey >= e.heapKey) break;
      items[i] = ce;
      ce.heapIndex = i;
      i = c;
    }
    items[i] = e;
    e.heapIndex = i;
  }
}
