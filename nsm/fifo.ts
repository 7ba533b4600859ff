/**
 * A first-in first-out queue on a ring of slots that doubles when full and never shrinks.
 *
 * A plain array drained with `shift()` reallocates: V8 trims a shifted array's backing store
 * from the left, so pushes after it grow the store again (a copy every few elements). A bulk
 * sender parks and unparks one SEND per 16 KiB through such a queue: that was a heap
 * allocation per SEND (~16 B per frame sent, measured with bench/e2e/cli_alloc.ts).
 *
 * @module
 */

/** A growable ring-buffer queue. */
export class Fifo<T> {
  #slots: (T | undefined)[];
  #mask: number;
  #head = 0;
  #size = 0;

  /** An empty queue with room for `capacity` (rounded up to a power of two) before growing. */
  constructor(capacity = 8) {
    let c = 1;
    while (c < capacity) c *= 2;
    this.#slots = new Array<T | undefined>(c).fill(undefined);
    this.#mask = c - 1;
  }

  /** Elements queued. */
  get length(): number {
    return this.#size;
  }

  /** Appends `v` at the tail. */
  push(v: T): void {
    if (this.#size === this.#slots.length) this.#grow();
    this.#slots[(this.#head + this.#size) & this.#mask] = v;
    this.#size++;
  }

  /** Removes and returns the head, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const h = this.#head;
    const v = this.#slots[h];
    this.#slots[h] = undefined;
    this.#head = (h + 1) & this.#mask;
    this.#size--;
    return v;
  }

  /** The head without removing it, or undefined when empty. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#slots[this.#head];
  }

  /** The `i`-th element from the head (0 = head); undefined outside `[0, length)`. */
  at(i: number): T | undefined {
    return i < 0 || i >= this.#size ? undefined : this.#slots[(this.#head + i) & this.#mask];
  }

  /** Empties the queue (keeps the capacity). */
  clear(): void {
    while (this.#size > 0) this.shift();
    this.#head = 0;
  }

  #grow(): void {
    const old = this.#slots;
    const next = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#slots = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}
