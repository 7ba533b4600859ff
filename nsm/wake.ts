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
 * - Notifier (after publishing entries or releasing slots): `notify()` = compareExchange(flag,
 *   1 -> 0); only if that flipped it, write one byte. While the peer is awake this is one locked
 *   instruction on a line only the notifier writes and no system call.
 * - No lost wake-up (Dekker). Waiter: W1 `Atomics.exchange(flag, 1)`, W2 load of the ring index
 *   (inside hasWork). Notifier: N1 store of the ring index (publish/release), N2 the flag read
 *   of the compare-exchange. W1 and N2 are locked read-modify-writes (xchg / lock cmpxchg),
 *   full barriers on x86-64 (and seq_cst RMWs, i.e. barriers, on arm64), so W2 cannot pass W1
 *   and N2 cannot pass N1: either the waiter's re-check sees the new index, or the notifier sees
 *   the flag and rings. This holds whatever kind of store N1 is: publish/release use a plain
 *   store on x86-64 (ring.ts: release order is all the ring needs) and leave the StoreLoad
 *   fence to this protocol.
 * - `notifyLazy()`, for a producer that publishes many batches in a row: one atomic load of the
 *   flag, no barrier; rings if it reads 1, otherwise records a debt. Without the barrier it can
 *   miss a sleep announced in the last few nanoseconds (N2 passing N1 in the store buffer), so
 *   the debt must be settled by a fenced check before the caller stops publishing: the next
 *   `notify()` does it, and so does `wait()`/`waitAny()` before sleeping (its own exchange W1 is
 *   the fence; then it reads the peer's flag and rings if set). Between the two, a sleeping peer
 *   is woken by the next `notifyLazy()` that reads its flag (the flag store is globally visible
 *   once the peer's exchange completes), so a missed sleep costs at most one batch of latency.
 *   The debt keeps two idle sides from waking each other forever: `wait()` rings only for
 *   entries published since the last fenced notify.
 * - The ordering premises (a locked RMW or a seq_cst store is not reordered with a later load on
 *   an NK mapping, an external buffer rather than a SharedArrayBuffer; a plain store is) are
 *   tested with two processes in tests/doorbell_wakeup_test.ts (store-buffer litmus).
 * - Spurious wake-ups are harmless (a byte may arrive for a sleep that already ended because the
 *   re-check found work); callers loop: wait, drain rings, wait again.
 * - EOF on the socket means the peer closed or died: `wait()` returns "closed".
 *
 * @module
 */

import { monotonicNow } from "../stacks/time.ts";
import { EAGAIN, EINTR, errno, libc } from "../stacks/sys/libc.ts";

/** Why `wait()` returned ("other": the caller's extra wake source, e.g. a link, won). */
export type WakeReason = "work" | "timeout" | "closed" | "other";

/** Byte offset of the guest's sleeping flag in the device header. */
export const GUEST_SLEEP_FLAG_OFFSET = 256;
/** Byte offset of the NSM's sleeping flag in the device header. */
export const NSM_SLEEP_FLAG_OFFSET = 384;

const ONE = new Uint8Array([1]);
/** send(2) flags of a synchronous ring: never block, no SIGPIPE from a gone peer. */
const RING_FLAGS = 0x40 /* MSG_DONTWAIT */ | 0x4000 /* MSG_NOSIGNAL */;
// Pointers made once: libc's sendto takes its buffer and length as pointers (the fast call
// path, no BigInt per call), as the AF_XDP kick does.
let onePtr: Deno.PointerValue = null;
let oneLen: Deno.PointerValue = null;
/** Where `endSleep()` reads the doorbell's bytes (their values carry nothing). */
const DRAIN = new Uint8Array(64);
let drainPtr: Deno.PointerValue = null;
let drainLen: Deno.PointerValue = null;

/** One byte on `fd` with sendto(2); the result of the call (-1: see errno). */
function ringFd(fd: number): number {
  if (onePtr === null) {
    onePtr = Deno.UnsafePointer.of(ONE);
    oneLen = Deno.UnsafePointer.create(1n);
  }
  return libc().sendto(fd, onePtr, oneLen, RING_FLAGS, null, 0);
}

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
  /** A notifyLazy() found the peer awake without a barrier: a fenced check is owed. */
  #owed = false;
  #read: Promise<number | null> | null = null;
  /** The socket's descriptor for synchronous rings (`useSyncRing`), -1: Deno's async write. */
  #fd = -1;
  readonly #onWriteError = (): void => {
    this.closed = true;
  };

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
   * Call after publishing entries the peer consumes (or releasing slots it waits for). Writes a
   * byte only when the peer sleeps; otherwise one locked compare-exchange (the StoreLoad fence
   * of the protocol). Settles any `notifyLazy()` debt.
   */
  notify(): void {
    // A locked read-modify-write, not a plain load: it orders the caller's preceding index
    // store before this read of the flag (StoreLoad), which no plain load guarantees. Only the
    // notifier that flips 1 -> 0 rings, so one byte per sleep.
    this.#owed = false;
    if (this.#peer.length === 0 || Atomics.compareExchange(this.#peer, 0, 1, 0) !== 1) return;
    this.#ring();
  }

  /**
   * A cheaper `notify()` for publishing many batches in a row: one atomic load of the peer's
   * flag, no barrier. Rings when it sees the peer asleep; otherwise the check is owed, and a
   * later `notify()`, `wait()` or `waitAny()` settles it (see the module comment). Never the
   * last call before the caller stops publishing for good without waiting: end with `notify()`.
   */
  notifyLazy(): void {
    const peer = this.#peer;
    if (peer.length === 0) return;
    if (Atomics.load(peer, 0) === 0) {
      this.#owed = true;
      return;
    }
    this.#owed = false;
    if (Atomics.compareExchange(peer, 0, 1, 0) === 1) this.#ring();
  }

  #ring(): void {
    this.wakesSent++;
    if (this.#fd >= 0) {
      // One send(2) on the JS thread: no promise per wake. EAGAIN means the socket buffer is
      // full of unread bytes, which wake the peer anyway.
      if (ringFd(this.#fd) >= 0) return;
      const e = errno();
      if (e === EAGAIN) return;
      if (e !== EINTR || ringFd(this.#fd) < 0) this.closed = true;
      return;
    }
    this.#conn.write(ONE).catch(this.#onWriteError);
  }

  /**
   * Rings with a synchronous send(2) on `fd`, the doorbell socket's own descriptor (see
   * `findDoorbellFd`), instead of Deno's async write and its promise per wake. Needs FFI;
   * `fd` must stay the socket's until `close()`, which stops using it first.
   */
  useSyncRing(fd: number): void {
    this.#fd = fd;
  }

  /** True when rings are synchronous writes (`useSyncRing`). */
  get syncRing(): boolean {
    return this.#fd >= 0;
  }

  /**
   * The descriptor a caller may sleep on itself (a `Sleeper`, nsm/sleeper.ts) with
   * `beginSleep()`/`endSleep()` around the sleep; -1 when it may not: no synchronous
   * descriptor (`useSyncRing`), closed, or a `wait()` left its read outstanding (that read
   * would take the bytes the caller's sleep waits for).
   */
  get pollFd(): number {
    return this.#read === null && !this.closed ? this.#fd : -1;
  }

  /**
   * Announces a sleep on `pollFd` as `wait()` does before its read: sets this side's sleeping
   * flag and settles a `notifyLazy()` debt. The caller then re-checks its rings once more and
   * sleeps only if they are still empty (the Dekker protocol of the module comment); either
   * way `endSleep()` follows.
   */
  beginSleep(): void {
    Atomics.exchange(this.#own, 0, 1);
    if (this.#owed) this.notify(); // see waitAny
  }

  /**
   * Ends a `beginSleep()`: takes the flag back and reads the bytes the peer rang with (one per
   * sleep it ended), without blocking. False when the peer closed the socket (`closed` is set
   * then).
   */
  endSleep(): boolean {
    if (this.#own.length !== 0) Atomics.compareExchange(this.#own, 0, 1, 0);
    const fd = this.#fd;
    if (fd < 0 || this.closed) return !this.closed;
    if (drainPtr === null) {
      drainPtr = Deno.UnsafePointer.of(DRAIN);
      drainLen = Deno.UnsafePointer.create(BigInt(DRAIN.length));
    }
    const c = libc();
    for (;;) {
      const n = c.recvfrom(fd, drainPtr, drainLen, RING_FLAGS, null, null);
      if (n > 0) continue;
      if (n === 0) break; // EOF
      const e = errno();
      if (e === EAGAIN) return true;
      if (e !== EINTR) break;
    }
    this.closed = true;
    return false;
  }

  /**
   * Waits until `hasWork()` is true, the timeout passes, or the peer goes away. Spins first
   * (blocking this process's event loop for at most `spinNs`), then sleeps at zero CPU.
   * `timeoutMs` undefined = no timeout (the driver passes its next timer deadline).
   * One waiter per doorbell at a time.
   */
  wait(hasWork: () => boolean, spinNs: number, timeoutMs?: number): Promise<WakeReason> {
    if (spinNs <= 0 && timeoutMs === undefined) return this.#waitOne(hasWork);
    return Doorbell.waitAny([this], hasWork, spinNs, timeoutMs);
  }

  /**
   * `waitAny([this], hasWork, 0)` without its arrays, per-bell `then`, race and timer: a guest
   * that spins itself and then sleeps calls this on every sleep, and those were ~2 of the
   * ~3.4 KB each sleep allocated (sampled; the rest is Deno's read).
   */
  async #waitOne(hasWork: () => boolean): Promise<WakeReason> {
    if (this.closed) return "closed";
    if (hasWork()) return "work";
    Atomics.exchange(this.#own, 0, 1);
    if (this.#owed) this.notify(); // see waitAny
    if (hasWork()) {
      Atomics.compareExchange(this.#own, 0, 1, 0);
      return "work";
    }
    this.sleeps++;
    const rd = this.#read ??= this.#conn.read(this.#buf).catch(() => null);
    const n = await rd;
    if (this.#own.length !== 0) Atomics.compareExchange(this.#own, 0, 1, 0);
    if (this.#read === rd) this.#read = null; // shared with an overlapping wait: see waitAny
    if (n === null) {
      this.closed = true;
      return "closed";
    }
    return "work";
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
    for (const b of bells) {
      Atomics.exchange(b.#own, 0, 1);
      // A notifyLazy() debt: our exchange was the fence it lacked; now check the peer's flag.
      if (b.#owed) b.notify();
    }
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
    this.#fd = -1; // before Deno closes it: the number may be reused at once
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * The descriptor of this process's end of a device doorbell at `path`: with `end` "accepted"
 * (the NSM's), the one socket in /proc/self/fd whose `getsockname` is `path` and that is not
 * listening (SO_ACCEPTCONN 0); with "connected" (the guest's), the one whose `getpeername` is
 * `path`. Null when FFI is not granted, /proc is unreadable, or not exactly one descriptor
 * matches. For `Doorbell.useSyncRing`: Deno does not expose a Conn's descriptor. (Not through
 * /proc/net/unix: an accepted socket belongs to the network namespace of the process that
 * connected, so an NSM in a namespace of its own did not find its guests' doorbells there and
 * rang each with an async write and its promise.)
 */
export function findDoorbellFd(
  path: string,
  end: "accepted" | "connected" = "accepted",
): number | null {
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const want = new TextEncoder().encode(path);
    if (want.length === 0 || want.length > SUN_PATH_MAX) return null;
    const c = libc();
    const addr = new Uint8Array(2 + SUN_PATH_MAX);
    const addrLen = new Uint32Array(1);
    const opt = new Int32Array(1);
    const optLen = new Uint32Array(1);
    let found: number | null = null;
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      let target: string;
      try {
        target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
      } catch {
        continue; // closed meanwhile (the directory's own descriptor)
      }
      if (!target.startsWith("socket:[")) continue;
      const fd = Number(e.name);
      addrLen[0] = addr.length;
      const lenBytes = new Uint8Array(addrLen.buffer);
      const rc0 = end === "accepted"
        ? c.getsockname(fd, addr, lenBytes)
        : c.getpeername(fd, addr, lenBytes);
      if (rc0 !== 0) continue;
      if ((addr[0]! | (addr[1]! << 8)) !== AF_UNIX || !boundTo(addr, addrLen[0]!, want)) continue;
      if (end === "connected") {
        if (found !== null) return null;
        found = fd;
        continue;
      }
      optLen[0] = 4;
      const rc = c.getsockopt(
        fd,
        SOL_SOCKET,
        SO_ACCEPTCONN,
        new Uint8Array(opt.buffer),
        new Uint8Array(optLen.buffer),
      );
      if (rc !== 0 || opt[0] !== 0) continue; // the listener has the same name
      if (found !== null) return null;
      found = fd;
    }
    return found;
  } catch {
    return null;
  }
}

/** sockaddr_un's sun_path size on Linux. */
const SUN_PATH_MAX = 108;
const AF_UNIX = 1;
const SOL_SOCKET = 1;
const SO_ACCEPTCONN = 30;

/** True when the sockaddr_un in `addr` (`len` bytes) names `path` (NUL-terminated or not). */
function boundTo(addr: Uint8Array, len: number, path: Uint8Array): boolean {
  const n = len - 2;
  if (n < path.length || (n > path.length && addr[2 + path.length] !== 0)) return false;
  for (let i = 0; i < path.length; i++) if (addr[2 + i] !== path[i]) return false;
  return true;
}
