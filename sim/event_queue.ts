/**
 * The simulator's event queue: a binary min-heap ordered by (time, insertion sequence), so
 * events at equal times run in the order they were scheduled (FIFO) and every run of the same
 * scenario processes events in exactly the same order.
 *
 * Events are reusable objects that know their heap position, so the hot path (frames, node
 * timers) reschedules or cancels in O(log n) without allocating: a frame in flight is itself
 * the event for its own arrival, and each node owns one timer event for its whole life.
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";

/** Something that handles events it scheduled; avoids a closure per event on hot paths. */
export interface EventHandler {
  /** Runs `event`, which has just been removed from the queue; `now` is its time. */
  fire(event: SimEvent, now: Instant): void;
}

/** A schedulable event. Reusable: once fired or cancelled it may be scheduled again. */
export class SimEvent {
  /** When the event fires (valid while queued). */
  time: Instant = 0;
  /** Insertion sequence number; breaks ties between equal times (FIFO). */
  seq: number = 0;
  /** Position in the heap, or -1 while not queued. */
  index: number = -1;
  /** Handler to call, or null when `callback` is used instead. */
  handler: EventHandler | null;
  /** Plain callback for one-off events (`Simulator.schedule`). */
  callback: (() => void) | null;

  /** Creates an event bound to a handler or a callback. */
  constructor(handler: EventHandler | null = null, callback: (() => void) | null = null) {
    this.handler = handler;
    this.callback = callback;
  }

  /** True while the event waits in a queue. */
  get queued(): boolean {
    return this.index >= 0;
  }
}

/** True when `a` must run before `b`. */
function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** Binary min-heap of `SimEvent`s keyed by (time, seq). */
export class EventQueue {
  readonly #heap: SimEvent[] = [];
  #seq = 0;

  /** Number of queued events. */
  get size(): number {
    return this.#heap.length;
  }

  /** Time of the earliest event, or +Infinity when empty. */
  peekTime(): Instant {
    const top = this.#heap[0];
    return top === undefined ? Number.POSITIVE_INFINITY : top.time;
  }

  /**
   * Queues `event` at `time`, taking a fresh sequence number (so it runs after everything
   * already queued at that time). If it is already queued it is moved, not duplicated.
   */
  schedule(event: SimEvent, time: Instant): void {
    event.time = time;
    event.seq = this.#seq++;
    const heap = this.#heap;
    if (event.index < 0) {
      event.index = heap.length;
      heap.push(event);
      this.#up(event.index);
    } else {
      // Moved to a later or earlier key: one of the two sifts is a no-op.
      this.#up(event.index);
      this.#down(event.index);
    }
  }

  /** Removes and returns the earliest event, or undefined when empty. */
  pop(): SimEvent | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (last !== top) {
      heap[0] = last;
      last.index = 0;
      this.#down(0);
    }
    top.index = -1;
    return top;
  }

  /** Removes `event` if queued; returns whether it was. */
  cancel(event: SimEvent): boolean {
    const i = event.index;
    if (i < 0) return false;
    const heap = this.#heap;
    const last = heap.pop()!;
    event.index = -1;
    if (last !== event) {
      heap[i] = last;
      last.index = i;
      this.#up(i);
      this.#down(last.index);
    }
    return true;
  }

  #up(i: number): void {
    const heap = this.#heap;
    const ev = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!before(ev, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = ev;
    ev.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const ev = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let child = heap[l]!;
      if (r < n) {
        const right = heap[r]!;
        if (before(right, child)) {
          c = r;
          child = right;
        }
      }
      if (!before(child, ev)) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = ev;
    ev.index = i;
  }
}
