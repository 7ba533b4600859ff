/**
 * Sleeping and waking across processes: shared "sleeping" flags plus a UNIX-socket doorbell.
 *
 * Choice. An idle side must sleep at ~0 CPU, and its Deno event loop must stay free (timers,
 * other sockets, the TCP stack's own I/O). Measured on the dev VM (shared/notes/af_xdp.md):
 * futex and eventfd waits go through sync FFI and block the whole event loop (or need
 * `nonblocking: true`, a thread-pool hop + promise: 50-54 us), whereas a byte on a UNIX stream
 * socket read with Deno's async I/O wakes the event loop directly from epoll (32 us round trip),
 * and costs nothing while idle. So the doorbell is one connected UNIX stream per device; each
 * direction rings one side.
 *
 * Protocol (per side, one u32 flag in the device header, on its own cache line pair):
 * - Waiter: spin for `spinNs` re-checking its rings; then `Atomics.exchange(flag, 1)`; re-check
 *   the rings once more; if still empty, await one read on the doorbell socket.
 * - Notifier (after publishing entries or releasing slots): compareExchange(flag, 1 -> 0); only
 *   if that flipped it, write one byte. While the peer is awake this is one locked instruction
 *   on a cache line only the notifier writes (~20-30 ns per batch) and no system call.
 * - No lost wake-up: the waiter does store(flag) then load(ring index); the notifier does
 *   store(ring index) then read(flag). Both flag accesses are locked read-modify-writes
 *   (xchg / lock cmpxchg: full barriers on x86), so the two reads cannot both miss the other
 *   side's store (Dekker): either the waiter sees the new entries, or the notifier sees the flag
 *   and rings. This does not depend on how V8 compiles a plain Atomics.store.
 * - Spurious wake-ups are harmless (a byte may arrive for a sleep that already ended because the
 *   re-check found work); callers loop: wait, drain rings, wait again.
 * - EOF on the socket means the peer closed or died: `wait()` returns "closed".
 *
 * @module
 */

import { monotonicNow } from "../stacks/time.ts";

/** Why `wait()` returned ("other": the caller's extra wake source, e.g. a link, won). */
export type WakeReason = "work" | "timeout" | "closed" | "other";

/** Byte offset of the guest's sleeping flag in the device header. */
export const GUEST_SLEEP_FLAG_OFFSET = 256;
/** Byte offset of the NSM's sleeping flag in the device header. */
export const NSM_SLEEP_FLAG_OFFSET = 384;

const ONE = new Uint8Array([1]);

/** One side's end of a device doorbell. */
export class Doorbell {
  /** Times `wait()` actually went to sleep on the socket. */
  sleeps = 0;
  /** Bytes written to wake the peer. */
  wakesSent = 0;
  /** Set when the socket reported EOF or an error. */
  closed = false;
  readonly #conn: Deno.Conn;
  readonly #own: Uint32Array;
  readonly #peer: Uint32Array;
  readonly #buf = new Uint8Array(64);
  #read: Promise<number | null> | null = null;

  /**
   * `conn`: the connected doorbell socket. `ownFlag`/`peerFlag`: one-element views of the two
   * sleeping flags in shared memory.
   */
  constructor(conn: Deno.Conn, ownFlag: Uint32Array, peerFlag: Uint32Array) {
    this.#conn = conn;
    this.#own = ownFlag;
    this.#peer = peerFlag;
  }

  /** True while the peer announced it is (about to be) asleep. */
  get peerSleeping(): boolean {
    return Atomics.load(this.#peer, 0) !== 0;
  }

  /**
   * Call after publishing entries the peer consumes. Writes a byte only when the peer sleeps;
   * otherwise one atomic load.
   */
  notify(): void {
    // A locked read-modify-write, not a plain load: it orders the caller's preceding index
    // store before this read of the flag (StoreLoad), which no plain load guarantees. Only the
    // notifier that flips 1 -> 0 rings, so one byte per sleep.
    if (this.#peer.length === 0 || Atomics.compareExchange(this.#peer, 0, 1, 0) !== 1) return;
    this.wakesSent++;
    this.#conn.write(ONE).catch(() => {
      this.closed = true;
    });
  }

  /**
   * Waits until `hasWork()` is true, the timeout passes, or the peer goes away. Spins first
   * (blocking this process's event loop for at most `spinNs`), then sleeps at zero CPU.
   * `timeoutMs` undefined = no timeout (the driver passes its next timer deadline).
   * One waiter per doorbell at a time.
   */
  wait(hasWork: () => boolean, spinNs: number, timeoutMs?: number): Promise<WakeReason> {
    return Doorbell.waitAny([this], hasWork, spinNs, timeoutMs);
  }

  /**
   * `wait()` over several devices' doorbells at once (an NSM serving many guests): sleeps
   * until any of them rings. Returns "closed" when one of them reached EOF (check each
   * `closed`), "work" after any ring (possibly spurious: re-check the rings), or "timeout".
   * `also`: another wake source of the driver loop (e.g. the link's `wait(ms)` promise); if it
   * settles first the result is "other" (the doorbells stay armed for the next call: no byte
   * is lost, the outstanding reads are reused).
   */
  static async waitAny(
    bells: readonly Doorbell[],
    hasWork: () => boolean,
    spinNs: number,
    timeoutMs?: number,
    also?: Promise<unknown>,
  ): Promise<WakeReason> {
    for (const b of bells) if (b.closed) return "closed";
    if (hasWork()) return "work";
    if (spinNs > 0) {
      const until = monotonicNow() + spinNs;
      for (let i = 1;; i++) {
        if (hasWork()) return "work";
        if ((i & 63) === 0 && monotonicNow() >= until) break;
      }
    }
    for (const b of bells) Atomics.exchange(b.#own, 0, 1);
    if (hasWork()) {
      for (const b of bells) Atomics.compareExchange(b.#own, 0, 1, 0);
      return "work";
    }
    // One read per doorbell stays outstanding across waits, so no byte (or EOF) is ever lost.
    const racers: Promise<number>[] = [];
    for (let i = 0; i < bells.length; i++) {
      const b = bells[i]!;
      b.sleeps++;
      b.#read ??= b.#conn.read(b.#buf).catch(() => null);
      racers.push(b.#read.then(() => i));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (timeoutMs !== undefined) {
      racers.push(
        new Promise<number>((resolve) => timer = setTimeout(() => resolve(-1), timeoutMs)),
      );
    }
    if (also !== undefined) racers.push(also.then(() => -2, () => -2));
    let winner: number;
    try {
      winner = await Promise.race(racers);
    } finally {
      clearTimeout(timer);
    }
    // Take our flags back (a notifier may already have cleared them and sent a byte, which
    // then waits in the outstanding read for the next call). A device closed meanwhile has
    // detached its mapping (length 0): nothing to take back.
    for (const b of bells) if (b.#own.length !== 0) Atomics.compareExchange(b.#own, 0, 1, 0);
    if (winner === -2) return "other";
    if (winner < 0) return hasWork() ? "work" : "timeout";
    const b = bells[winner]!;
    // Another waitAny over the same bell (a caller that stopped awaiting an earlier one) may
    // share this read: take it through a local and clear the field only if it is still ours.
    const rd = b.#read;
    const n = rd === null ? 0 : await rd;
    if (b.#read === rd) b.#read = null;
    if (n === null) {
      b.closed = true;
      return "closed";
    }
    return "work";
  }

  /**
   * Lets the process exit while a `wait()` is pending (a guest library that is idle must not
   * keep its program alive); `ref()` undoes it while callers wait for answers.
   */
  unref(): void {
    try {
      this.#conn.unref();
    } catch {
      // closed
    }
  }

  /** Makes a pending `wait()` keep the process alive again (the default). */
  ref(): void {
    try {
      this.#conn.ref();
    } catch {
      // closed
    }
  }

  /** Closes the socket (the peer's wait returns "closed"). Idempotent. */
  close(): void {
    this.closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
