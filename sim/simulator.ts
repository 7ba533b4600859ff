/**
 * The discrete-event simulator: a virtual clock in nanoseconds, an event queue, nodes (hosts
 * running the stack, switches) that are polled when their timer is due or when a frame arrives
 * at one of their ports, and a seeded PRNG from which every random stream is forked.
 *
 * Determinism: events at the same instant run in scheduling order, no wall clock is read, and
 * every random choice comes from a stream forked from the simulator's seed by a stable label.
 *
 * Node timers: after each poll the simulator re-reads `pollAt()` and keeps exactly one pending
 * timer event per node (moved, never duplicated). Code that changes a node's state from outside
 * its `poll()` (a test writing to a socket) calls `wake(node)` so the node is polled again.
 *
 * @module
 */

import { EventQueue, SimEvent } from "./event_queue.ts";
import type { EventHandler } from "./event_queue.ts";
import { FramePool } from "./frame.ts";
import { Prng } from "./prng.ts";
import type { Instant } from "../stacks/time.ts";
import type { SimPort } from "./port.ts";

/** A simulated host or device: polled at `pollAt()` and whenever a frame reaches its ports. */
export interface SimNode {
  /** Does all due work at virtual time `now` (receive frames, run timers, transmit). */
  poll(now: Instant): void;
  /** Next instant the node wants to be polled, or `NEVER` (+Infinity). */
  pollAt(): Instant;
}

/** Options for `new Simulator()`. */
export interface SimulatorOptions {
  /** Root seed for every random stream (32-bit integer). Default 1. */
  seed?: number;
  /** Start time in ns. Default 0. */
  start?: Instant;
}

/** Called for every frame delivered to a port (before it is queued), e.g. to hash a trace. */
export type DeliverHook = (now: Instant, port: SimPort, frame: Uint8Array) => void;

/** Thrown when an event is scheduled before the current virtual time. */
export class SimTimeError extends Error {
  /** Creates the error for a schedule at `at` while the clock is at `now`. */
  constructor(at: Instant, now: Instant) {
    super(
      `cannot schedule an event at ${at} ns: the virtual clock is already at ${now} ns; ` +
        `schedule at or after sim.now`,
    );
    this.name = "SimTimeError";
  }
}

/** Thrown when a node keeps asking to be polled at the same instant without time advancing. */
export class SimLivelockError extends Error {
  /** Creates the error for a node polled `polls` times at `now`. */
  constructor(polls: number, now: Instant) {
    super(
      `a node was polled ${polls} times at ${now} ns without time advancing; its pollAt() must ` +
        `return a later instant (or NEVER) once it has done the work that is due`,
    );
    this.name = "SimLivelockError";
  }
}

/** Polls of one node at one instant after which the simulator assumes a livelock. */
const LIVELOCK_POLLS = 1_000_000;

/** Per-node bookkeeping: the node's single timer event. */
export class NodeSlot implements EventHandler {
  /** The node. */
  readonly node: SimNode;
  /** The node's one and only timer/wake event. */
  readonly event: SimEvent;
  /** True while the node's poll() runs. */
  polling = false;
  /** A wake arrived during poll(): poll again at the same instant. */
  wakeRequested = false;
  /** Total polls so far. */
  polls = 0;
  #lastInstant = -1;
  #pollsThisInstant = 0;
  readonly #sim: Simulator;

  /** Creates the slot; use `Simulator.addNode()`. */
  constructor(sim: Simulator, node: SimNode) {
    this.#sim = sim;
    this.node = node;
    this.event = new SimEvent(this);
  }

  /** Event handler: polls the node, then re-arms its timer. */
  fire(_event: SimEvent, now: Instant): void {
    if (now === this.#lastInstant) {
      if (++this.#pollsThisInstant > LIVELOCK_POLLS) {
        throw new SimLivelockError(this.#pollsThisInstant, now);
      }
    } else {
      this.#lastInstant = now;
      this.#pollsThisInstant = 1;
    }
    this.polls++;
    this.polling = true;
    this.wakeRequested = false;
    try {
      this.node.poll(now);
    } finally {
      this.polling = false;
    }
    this.rearm();
  }

  /** Moves the timer event to the node's current `pollAt()` (or now, after a wake). */
  rearm(): void {
    const sim = this.#sim;
    const now = sim.now;
    let t = this.wakeRequested ? now : this.node.pollAt();
    this.wakeRequested = false;
    const ev = this.event;
    if (!(t < Number.POSITIVE_INFINITY)) {
      // NEVER (or NaN): no timer.
      sim.queue.cancel(ev);
      return;
    }
    if (t < now) t = now;
    if (ev.index >= 0 && ev.time === t) return; // keep its FIFO position
    sim.queue.schedule(ev, t);
  }

  /** Requests a poll at the current instant; coalesces with a poll already due now. */
  wake(): void {
    if (this.polling) {
      this.wakeRequested = true;
      return;
    }
    const ev = this.event;
    const now = this.#sim.now;
    if (ev.index >= 0 && ev.time <= now) return;
    this.#sim.queue.schedule(ev, now);
  }
}

/** A deterministic discrete-event network simulator. */
export class Simulator {
  /** Current virtual time in ns. */
  now: Instant;
  /** The root seed. */
  readonly seed: number;
  /** Root random stream; components fork their own streams from it (see `forkRng`). */
  readonly rng: Prng;
  /** The event queue (exposed for components that schedule reusable events). */
  readonly queue: EventQueue = new EventQueue();
  /** Optional hook called for every frame delivered to any port. */
  onDeliver: DeliverHook | null = null;
  /** Events run so far. */
  eventsProcessed = 0;
  readonly #nodes = new Map<SimNode, NodeSlot>();
  readonly #pools = new Map<number, FramePool>();
  readonly #labels = new Set<string>();

  /** Creates a simulator with its clock at `options.start` (default 0). */
  constructor(options: SimulatorOptions = {}) {
    this.seed = (options.seed ?? 1) | 0;
    this.now = options.start ?? 0;
    this.rng = new Prng(this.seed);
  }

  /**
   * Adds a node and schedules its first poll at its `pollAt()`. `ports` (if given) are bound
   * to the node so a frame arriving at one of them wakes it. Adding a node twice is a no-op
   * apart from binding the extra ports.
   */
  addNode(node: SimNode, ports: readonly SimPort[] = []): NodeSlot {
    let slot = this.#nodes.get(node);
    if (slot === undefined) {
      slot = new NodeSlot(this, node);
      this.#nodes.set(node, slot);
      slot.rearm();
    }
    for (const p of ports) {
      p.bindSlot(slot);
      // Frames that arrived before the port was bound must not wait for an unrelated wake.
      if (p.rxQueued > 0) slot.wake();
    }
    return slot;
  }

  /** The slot of an added node (throws a typed error for an unknown node). */
  slotOf(node: SimNode): NodeSlot {
    const slot = this.#nodes.get(node);
    if (slot === undefined) throw new UnknownNodeError();
    return slot;
  }

  /**
   * Schedules a poll of `node` at the current instant (coalesced with one already due now).
   * Call it after changing a node's state from outside its `poll()`.
   */
  wake(node: SimNode): void {
    this.slotOf(node).wake();
  }

  /** Schedules `fn` at absolute time `at` (>= now); returns the event so it can be cancelled. */
  schedule(at: Instant, fn: () => void): SimEvent {
    if (!(at >= this.now)) throw new SimTimeError(at, this.now);
    const ev = new SimEvent(null, fn);
    this.queue.schedule(ev, at);
    return ev;
  }

  /** Schedules a reusable event (with a handler) at `at` (>= now), moving it if queued. */
  scheduleEvent(event: SimEvent, at: Instant): void {
    if (!(at >= this.now)) throw new SimTimeError(at, this.now);
    this.queue.schedule(event, at);
  }

  /** Cancels a scheduled event; returns whether it was pending. */
  cancel(event: SimEvent): boolean {
    return this.queue.cancel(event);
  }

  /** Runs the earliest event, if any; returns false when the queue is empty. */
  step(): boolean {
    const ev = this.queue.pop();
    if (ev === undefined) return false;
    this.#run(ev);
    return true;
  }

  /** Runs every event with time <= `t`, then sets the clock to `t`. */
  runUntil(t: Instant): void {
    const q = this.queue;
    while (q.peekTime() <= t) this.#run(q.pop()!);
    if (t > this.now && t < Number.POSITIVE_INFINITY) this.now = t;
  }

  /**
   * Runs events until none is left or the next one is later than `limit`. Returns true when the
   * queue ran empty (the clock stays at the last event), false when stopped by `limit` (the
   * clock is then set to `limit`).
   */
  runUntilIdle(limit: Instant): boolean {
    const q = this.queue;
    while (q.size > 0 && q.peekTime() <= limit) this.#run(q.pop()!);
    if (q.size === 0) return true;
    if (limit > this.now && limit < Number.POSITIVE_INFINITY) this.now = limit;
    return false;
  }

  #run(ev: SimEvent): void {
    const t = ev.time;
    this.now = t;
    this.eventsProcessed++;
    const h = ev.handler;
    if (h !== null) h.fire(ev, t);
    else ev.callback!();
  }

  /** The shared pool of frame buffers of `capacity` bytes. */
  framePool(capacity: number): FramePool {
    let pool = this.#pools.get(capacity);
    if (pool === undefined) {
      pool = new FramePool(capacity);
      this.#pools.set(capacity, pool);
    }
    return pool;
  }

  /**
   * Forks an independent random stream for `label` (a channel or port name). The stream depends
   * only on (seed, label). A label used twice gets a `#2`, `#3` suffix so the two components
   * still draw from different streams.
   */
  forkRng(label: string): Prng {
    let l = label;
    for (let i = 2; this.#labels.has(l); i++) l = `${label}#${i}`;
    this.#labels.add(l);
    return this.rng.fork(l);
  }
}

/** Thrown by `wake()`/`slotOf()` for a node that was never added. */
export class UnknownNodeError extends Error {
  /** Creates the error. */
  constructor() {
    super("this node was never added to the simulator; call sim.addNode(node, ports) first");
    this.name = "UnknownNodeError";
  }
}
