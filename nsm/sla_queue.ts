/**
 * The SLA scheduler's transmit-path adapter for the ServiceLib: per guest a round-robin queue
 * of sockets that have bytes waiting (parked SENDs) and room in the stack, drained in the order
 * the `EgressScheduler` (DRR + token buckets) decides.
 *
 * ```ts
 * const q = new SlaSendQueue<GSock>(ops.sla);
 * q.update(guestId, sock, bytesParked, now);   // after parking a SEND, or when a socket turns WRITABLE
 * q.update(guestId, sock, 0, now);             // nothing left / socket closed (or q.remove(sock))
 * // in poll(now), once per iteration (the callback created once, not per call):
 * q.drain(now, sendFn);                        // sendFn(sock, max) -> bytes the stack took
 * // pollAt: Math.min(..., q.nextAt(now))
 * ```
 *
 * `sendFn` hands at most `max` bytes of the socket's parked data to the backend and returns
 * what it took (completing SENDs as they are fully taken). 0 means the socket is full: it
 * leaves the queue until `update` is called again (on WRITABLE). Between the sockets of one
 * guest the queue is round robin; between guests the scheduler decides.
 *
 * No allocation per decision: a socket's queue node is made the first time it is seen and
 * reused (kept until `remove`).
 *
 * @module
 */

import type { Instant } from "../stacks/time.ts";
import { type EgressScheduler, NO_GUEST } from "./sla.ts";

class Node<S> {
  prev: Node<S> | null = null;
  next: Node<S> | null = null;
  queued = false;
  readonly pending = new Float64Array(1); // typed array: no HeapNumber per store
  constructor(readonly sock: S, public guest: number) {}
}

class GuestQueue<S> {
  head: Node<S> | null = null;
  tail: Node<S> | null = null;
  readonly total = new Float64Array(1);
}

/** Per-guest socket queues drained by an `EgressScheduler`; see the module comment. */
export class SlaSendQueue<S extends object> {
  readonly #nodes = new Map<S, Node<S>>();
  readonly #guests = new Map<number, GuestQueue<S>>();

  /** Drains in the order `sched` decides. */
  constructor(readonly sched: EgressScheduler) {}

  /** Sockets queued now. */
  get queued(): number {
    let n = 0;
    for (const node of this.#nodes.values()) if (node.queued) n++;
    return n;
  }

  /** Bytes waiting for `guest` (as reported). */
  pending(guest: number): number {
    return this.#guests.get(guest)?.total[0] ?? 0;
  }

  /**
   * Sets how many bytes `sock` of `guest` has waiting and the stack can take (0 removes it
   * from the queue; its node is kept for reuse).
   */
  update(guest: number, sock: S, bytes: number, now: Instant): void {
    let node = this.#nodes.get(sock);
    if (node === undefined) {
      node = new Node(sock, guest);
      this.#nodes.set(sock, node);
    } else if (node.guest !== guest) {
      const oldGuest = node.guest;
      this.#unlink(node);
      this.sched.setBacklog(oldGuest, this.#queue(oldGuest).total[0]!, now);
      node.guest = guest;
    }
    const q = this.#queue(guest);
    const old = node.queued ? node.pending[0]! : 0;
    const fresh = bytes > 0 ? bytes : 0;
    q.total[0] = q.total[0]! - old + fresh;
    node.pending[0] = fresh;
    if (fresh > 0 && !node.queued) this.#append(q, node);
    else if (fresh === 0 && node.queued) this.#unlinkFrom(q, node);
    this.sched.setBacklog(guest, q.total[0]!, now);
  }

  /** Forgets a socket (closed). */
  remove(sock: S, now: Instant): void {
    const node = this.#nodes.get(sock);
    if (node === undefined) return;
    if (node.queued) {
      const q = this.#queue(node.guest);
      q.total[0] = q.total[0]! - node.pending[0]!;
      this.#unlinkFrom(q, node);
      this.sched.setBacklog(node.guest, q.total[0]!, now);
    }
    this.#nodes.delete(sock);
  }

  /** Forgets every socket of a guest that detached. */
  removeGuest(guest: number, now: Instant): void {
    for (const [sock, node] of this.#nodes) if (node.guest === guest) this.remove(sock, now);
    this.#guests.delete(guest);
    this.sched.setBacklog(guest, 0, now);
  }

  /**
   * Runs up to `maxDecisions` scheduler decisions, handing bytes to `send`; returns the bytes
   * the stack took.
   */
  drain(now: Instant, send: (sock: S, max: number) => number, maxDecisions = 256): number {
    const sched = this.sched;
    let total = 0;
    for (let i = 0; i < maxDecisions; i++) {
      const g = sched.next(now);
      if (g === NO_GUEST) break;
      const q = this.#guests.get(g);
      const node = q?.head ?? null;
      if (q === undefined || node === null) {
        sched.setBacklog(g, 0, now); // out of sync (should not happen): stop asking for g
        continue;
      }
      const want = node.pending[0]!;
      const max = sched.grant < want ? sched.grant : want;
      const taken = send(node.sock, max);
      if (!(taken > 0)) {
        // Socket full: out of the queue until update() on WRITABLE.
        q.total[0] = q.total[0]! - want;
        node.pending[0] = 0;
        this.#unlinkFrom(q, node);
        sched.setBacklog(g, q.total[0]!, now);
        continue;
      }
      sched.consume(g, taken, now);
      total += taken;
      q.total[0] = q.total[0]! - taken;
      node.pending[0] = want - taken;
      this.#unlinkFrom(q, node);
      if (want - taken > 0) this.#append(q, node); // round robin among the guest's sockets
      // consume() lowered the scheduler's backlog by `taken`; keep it equal to the queue's.
      sched.setBacklog(g, q.total[0]!, now);
    }
    return total;
  }

  /** When `drain` can next do something (see `EgressScheduler.nextAt`). */
  nextAt(now: Instant): Instant {
    return this.sched.nextAt(now);
  }

  #queue(guest: number): GuestQueue<S> {
    let q = this.#guests.get(guest);
    if (q === undefined) {
      q = new GuestQueue<S>();
      this.#guests.set(guest, q);
    }
    return q;
  }

  #unlink(node: Node<S>): void {
    if (!node.queued) return;
    const q = this.#queue(node.guest);
    q.total[0] = q.total[0]! - node.pending[0]!;
    this.#unlinkFrom(q, node);
    node.pending[0] = 0;
  }

  #append(q: GuestQueue<S>, node: Node<S>): void {
    node.prev = q.tail;
    node.next = null;
    if (q.tail !== null) q.tail.next = node;
    else q.head = node;
    q.tail = node;
    node.queued = true;
  }

  #unlinkFrom(q: GuestQueue<S>, node: Node<S>): void {
    if (node.prev !== null) node.prev.next = node.next;
    else q.head = node.next;
    if (node.next !== null) node.next.prev = node.prev;
    else q.tail = node.prev;
    node.prev = node.next = null;
    node.queued = false;
  }
}
