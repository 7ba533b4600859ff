/**
 * `NkClient`: one guest's attachment to the NSM. It connects to the control socket, attaches
 * the NK device it is given and runs a pump that drains the completion and receive rings
 * (resolving request promises, queueing received bytes and datagrams per socket) and sleeps on
 * the doorbell when idle. Sockets are integer ids in this guest's own namespace.
 *
 * Flow control: SEND payloads are copied into guest chunks; a writer waits when every chunk is
 * in flight (a chunk comes back with its completion) or its socket has `sendCap` SENDs in
 * flight, until half of those completed. Received chunks are copied out by `read()` and
 * returned with RECV_CREDIT as soon as they are consumed, which also reopens the socket's
 * receive credit in the NSM.
 *
 * Garbage: the steady-state data path allocates per wait, not per chunk (no Map, closure,
 * view or promise per SEND or RECV; one shared promise per wait, see `Signal`), and the pump
 * yields with microtasks, an event-loop turn every 16th time. What remains per chunk is
 * measured by bench/e2e/guest_alloc.ts.
 *
 * The pump keeps the process alive only while something waits for the NSM (a request, a read,
 * a chunk); an idle client lets the program exit.
 *
 * @module
 */

import { defaultCtlPath } from "../../nsm/ctl_path.ts";
import { GuestDevice, type GuestQueueSet } from "../../nsm/device.ts";
import { decodeNqe, encodeNqe, Nqe, NqeEvent, NqeFlag, NqeOp } from "../../nsm/nqe.ts";
import { monotonicNowInto } from "../../stacks/time.ts";
import { libc } from "../../stacks/sys/libc.ts";
import { setImmediate } from "node:timers";

/** `sched_yield(2)`: lets an NSM sharing this CPU run while the guest spins for its answer. */
function yieldCpu(): void {
  libc().sched_yield();
}
import { RING_HEADER_SIZE, SLOT_SIZE } from "../../nsm/ring.ts";
import { IntMap } from "../../nsm/backend.ts";
import { keptView, keptViews } from "../../stacks/link/kept_view.ts";
import { errnoError } from "./errors.ts";
import { AdaptiveSpin, type AdaptiveSpinOptions } from "./spin.ts";
import { Sleeper, SleeperUnavailableError } from "../../nsm/sleeper.ts";
import type { WakeReason } from "../../nsm/wake.ts";

/** Options of `NkClient.attach`. */
export interface AttachOptions {
  /** Control socket of the NSM (default `defaultCtlPath()`: same default as the NSM). */
  readonly ctl?: string;
  /**
   * The pump's spin before it sleeps (spin.ts). Default: `AdaptiveSpin`'s defaults, with
   * `maxNs` from `$NK_SPIN_MAX_US` (µs) when set. A longer ceiling keeps a bulk transfer from
   * sleeping between the NSM's bursts (each sleep allocates ~3 KB in the doorbell wait and
   * the socket read: most of a guest's garbage then) at the cost of spinning CPU.
   */
  readonly spin?: AdaptiveSpinOptions;
  /**
   * In the pauses of a bulk transfer driven by callbacks, sleep on a helper thread
   * (nsm/sleeper.ts) instead of Deno's async read of the doorbell: no garbage per sleep (the
   * read was ~1.2 KB of it, a few scavenges a second under load) for a slower wake-up. The
   * thread (a worker isolate) takes ~20-50 ms more at attach. Default true; used only where
   * FFI is granted. False for short-lived tools that attach once and exit.
   */
  readonly sleeper?: boolean;
}

/** `$NK_SPIN_MAX_US` as ns, or undefined when unset (or the environment is not readable). */
export function spinMaxFromEnv(): number | undefined {
  let v: string | undefined;
  try {
    v = Deno.env.get("NK_SPIN_MAX_US");
  } catch {
    return undefined; // no --allow-env
  }
  if (v === undefined || v === "") return undefined;
  const us = Number(v);
  if (!(us > 0 && us <= 1e6)) {
    throw new RangeError(
      `NK_SPIN_MAX_US=${v}: give the guest's spin ceiling in microseconds, in (0, 1000000]`,
    );
  }
  return us * 1000;
}

/** The answer of one request: the completion's fields that ops return. */
export interface Completion {
  /** >= 0 value, < 0 -errno. */
  readonly result: number;
  /** The socket the completion names (a CONNECT with `NqeFlag.OPEN`: the new one, 0 if none). */
  readonly socketId: number;
  /** Completion flags. */
  readonly flags: number;
  /** arg2 (GETSOCKOPT value). */
  readonly arg2: number;
  /** Address family of the completion's address (ACCEPT: the peer). */
  readonly family: number;
  /** Address bytes (copied). */
  readonly addr: Uint8Array;
  /** Port. */
  readonly port: number;
}

/** A received stream chunk or datagram not yet fully read (reused: see `SocketState.recycle`). */
export interface RxItem {
  /** Offset in the data region. */
  offset: number;
  /** Bytes. */
  length: number;
  /** Bytes already read. */
  pos: number;
  /** RECVFROM: source. */
  family: number;
  /** RECVFROM: source address bytes. */
  addr: Uint8Array | null;
  /** RECVFROM: source port. */
  port: number;
}

const noop = (): void => {};

/** Calls an application callback; a throw is reported as uncaught, not into our caller. */
function callSafely(f: (() => void) | null): void {
  if (f === null) return;
  try {
    f();
  } catch (e) {
    reportError(e);
  }
}

/**
 * A socket's received chunks in order: a ring of slots that doubles when full. An array used
 * as a queue (push, shift) reallocated its backing store every few dozen chunks as shift()
 * trimmed it from the front.
 */
export class RxQueue {
  #slots: (RxItem | undefined)[] = new Array<RxItem | undefined>(16).fill(undefined);
  #head = 0;
  #count = 0;

  /** Items queued. */
  get length(): number {
    return this.#count;
  }

  /** The first item, not removed. */
  peek(): RxItem | undefined {
    return this.#count === 0 ? undefined : this.#slots[this.#head];
  }

  /** Removes and returns the first item. */
  shift(): RxItem | undefined {
    if (this.#count === 0) return undefined;
    const it = this.#slots[this.#head];
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#slots.length - 1);
    this.#count--;
    return it;
  }

  /** Appends `it`. */
  push(it: RxItem): void {
    const n = this.#slots.length;
    if (this.#count === n) {
      const bigger = new Array<RxItem | undefined>(2 * n).fill(undefined);
      for (let i = 0; i < n; i++) bigger[i] = this.#slots[(this.#head + i) & (n - 1)];
      this.#slots = bigger;
      this.#head = 0;
    }
    this.#slots[(this.#head + this.#count) & (this.#slots.length - 1)] = it;
    this.#count++;
  }

  /** Removes and returns every item, in order. */
  takeAll(): RxItem[] {
    const out: RxItem[] = [];
    for (let it = this.shift(); it !== undefined; it = this.shift()) out.push(it);
    return out;
  }
}

/**
 * Calls the functions of `ws` in order and removes them (no array per wake-up); true when
 * there were any.
 */
function wakeAll(ws: (() => void)[]): boolean {
  const n = ws.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) ws[i]!();
  if (ws.length === n) {
    for (let i = 0; i < n; i++) ws.pop();
  } else ws.splice(0, n); // a waker registered another waiter synchronously: keep it
  return true;
}

/**
 * A wake-up any number of callers can await: `wait()` returns one shared promise until
 * `fire()` resolves it, and the next `wait()` makes a new one. One promise per wait, however
 * many wait, instead of a promise and a closure per waiter.
 */
export class Signal {
  #p: Promise<void> | null = null;
  #resolve: (() => void) | null = null;
  readonly #exec = (r: () => void): void => {
    this.#resolve = r;
  };
  readonly #arm: () => void;
  readonly #disarm: () => void;

  /** `arm` runs when a promise is made, `disarm` when it is resolved (GuestLib: ref/unref). */
  constructor(arm: () => void = noop, disarm: () => void = noop) {
    this.#arm = arm;
    this.#disarm = disarm;
  }

  /** True while a promise from `wait()` is unresolved. */
  get armed(): boolean {
    return this.#p !== null;
  }

  /** The promise the next `fire()` resolves. */
  wait(): Promise<void> {
    if (this.#p === null) {
      this.#arm();
      this.#p = new Promise<void>(this.#exec);
    }
    return this.#p;
  }

  /** Resolves the current promise, if any; true when there was one. */
  fire(): boolean {
    const r = this.#resolve;
    if (r === null) return false;
    this.#p = null;
    this.#resolve = null;
    this.#disarm();
    r();
    return true;
  }
}

/**
 * Values by request id for requests in flight, without a Map: slot `id & mask` holds one id and
 * its value; an id whose slot is taken goes to a Map on the side. Ids are handed out in order,
 * so with twice as many slots as requests can be in flight the side Map is rarely used. A Map
 * alone reallocated its table every few hundred set/delete pairs (~90 B per SEND).
 */
export class RequestTable<T> {
  readonly #ids: Uint32Array;
  readonly #values: (T | null)[];
  readonly #overflow = new Map<number, T>();

  /** A table of at least `slots` slots (rounded up to a power of two, at most 65536). */
  constructor(slots: number) {
    let size = 16;
    while (size < slots && size < 1 << 16) size <<= 1;
    this.#ids = new Uint32Array(size);
    this.#values = new Array<T | null>(size).fill(null);
  }

  /** Entries kept in the side Map (their slot was taken). */
  get overflowed(): number {
    return this.#overflow.size;
  }

  /** Files `value` under request `id` (not in the table yet). */
  put(id: number, value: T): void {
    const slot = id & (this.#ids.length - 1);
    if (this.#values[slot] === null) {
      this.#ids[slot] = id;
      this.#values[slot] = value;
    } else this.#overflow.set(id, value);
  }

  /** The value of request `id`, removed; null when there is none. */
  take(id: number): T | null {
    const slot = id & (this.#ids.length - 1);
    const v = this.#values[slot]!;
    if (v !== null && this.#ids[slot] === id) {
      this.#values[slot] = null;
      return v;
    }
    if (this.#overflow.size === 0) return null;
    const o = this.#overflow.get(id);
    if (o === undefined) return null;
    this.#overflow.delete(id);
    return o;
  }

  /** Removes every entry, calling `f` with each value. */
  clear(f: (v: T) => void): void {
    for (let i = 0; i < this.#values.length; i++) {
      const v = this.#values[i]!;
      if (v === null) continue;
      this.#values[i] = null;
      f(v);
    }
    const rest = [...this.#overflow.values()];
    this.#overflow.clear();
    for (const v of rest) f(v);
  }
}

/** Per-socket state of the guest side. */
export class SocketState {
  /** Received chunks in order. */
  readonly rx: RxQueue = new RxQueue();
  /** Peer finished sending (RDHUP). */
  eof = false;
  /** Pending error (-errno) reported by an EVENT, 0 none. */
  error = 0;
  /** SENDs submitted but not completed. */
  inFlight = 0;
  /** First error of an asynchronous SEND, thrown by the next write. */
  sendError = 0;
  /** Readers waiting for data/eof/error. */
  readonly readWaiters: (() => void)[] = [];
  /** Waiters for inFlight == 0. */
  readonly drainWaiters: (() => void)[] = [];
  /** Writers waiting for this socket's in-flight SENDs to drop below the per-socket cap. */
  readonly roomWaiters: (() => void)[] = [];
  /** Closed locally. */
  closed = false;
  /** Fired with `readWaiters`: data, EOF or an error arrived, or the socket closed. */
  readonly readable: Signal;
  /**
   * Fired with `roomWaiters`: in-flight SENDs dropped to half the per-socket cap (or failed),
   * so a waiting writer refills half the cap at once instead of waking per completion.
   */
  readonly room: Signal;
  /** Items `recycle`d by the reader, reused for the next chunks (none per chunk in steady state). */
  readonly #spare: RxItem[] = [];
  readonly #arm: () => void;
  readonly #disarm: () => void;
  #onReadable: (() => void) | null = null;
  #onWritable: (() => void) | null = null;
  /** Callbacks the client owes this socket after its drain: 1 readable, 2 writable. */
  notify = 0;
  /** State of socket `id`; `arm`/`disarm` run when a wait on it starts and ends. */
  constructor(readonly id: number, arm: () => void = noop, disarm: () => void = noop) {
    this.#arm = arm;
    this.#disarm = disarm;
    this.readable = new Signal(arm, disarm);
    this.room = new Signal(arm, disarm);
  }

  /** Called (without a promise) when readers would be woken: see `NkConn.onReadable`. */
  get onReadable(): (() => void) | null {
    return this.#onReadable;
  }

  set onReadable(f: (() => void) | null) {
    // A registered callback is a wait: it keeps the process alive like a pending read.
    if (f !== null && this.#onReadable === null) this.#arm();
    if (f === null && this.#onReadable !== null) this.#disarm();
    this.#onReadable = f;
  }

  /** Called (without a promise) when writers would be woken: see `NkConn.onWritable`. */
  get onWritable(): (() => void) | null {
    return this.#onWritable;
  }

  set onWritable(f: (() => void) | null) {
    if (f !== null && this.#onWritable === null) this.#arm();
    if (f === null && this.#onWritable !== null) this.#disarm();
    this.#onWritable = f;
  }

  /**
   * Unregisters both callbacks and calls them once more in a microtask (outside the caller's
   * stack), so they see the end: for close and detach.
   */
  endCallbacks(): void {
    const r = this.#onReadable, w = this.#onWritable;
    if (r === null && w === null) return;
    this.onReadable = null;
    this.onWritable = null;
    queueMicrotask(() => {
      callSafely(r);
      callSafely(w);
    });
  }

  /** Queues a received chunk. */
  pushRx(
    offset: number,
    length: number,
    family: number,
    addr: Uint8Array | null,
    port: number,
  ): void {
    const it = this.#spare.pop();
    if (it === undefined) {
      this.rx.push({ offset, length, pos: 0, family, addr, port });
      return;
    }
    it.offset = offset;
    it.length = length;
    it.pos = 0;
    it.family = family;
    it.addr = addr;
    it.port = port;
    this.rx.push(it);
  }

  /** Gives back an item taken off `rx` once nothing refers to it any more. */
  recycle(it: RxItem): void {
    it.addr = null;
    if (this.#spare.length < 64) this.#spare.push(it);
  }

  /** Wakes every reader (`readable` and `readWaiters`); true when any waited. */
  wakeReaders(): boolean {
    const fired = this.readable.fire();
    return wakeAll(this.readWaiters) || fired;
  }

  /** Wakes every writer waiting for room (`room` and `roomWaiters`); true when any waited. */
  wakeWriters(): boolean {
    const fired = this.room.fire();
    return wakeAll(this.roomWaiters) || fired;
  }
}

/** Data moved through an `NkClient` so far (`NkClient.traffic()`). */
export interface NkTraffic {
  /** Stream SEND chunks queued (`sendChunk`). */
  readonly sendChunks: number;
  /** Bytes in those chunks. */
  readonly sendBytes: number;
  /** RECV/RECVFROM chunks handed to a socket. */
  readonly recvChunks: number;
  /** Bytes in those chunks. */
  readonly recvBytes: number;
  /** Times the pump yielded to the application (one allocation each at least). */
  readonly pumpTurns: number;
  /** Times the pump's spin found nothing and it called the doorbell's wait. */
  readonly pumpWaits: number;
  /** Of those, waits that went to sleep (a doorbell read). */
  readonly pumpSleeps: number;
  /** Of those, sleeps on the sleeper thread (`AttachOptions.sleeper`). */
  readonly pumpThreadSleeps: number;
}

/** Thrown when the NSM cannot be reached or refused the attach; the message says what to do. */
export class NsmUnavailable extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "NsmUnavailable";
  }
}

interface Pending {
  /** `request()`: resolves its promise (null for `post()`). */
  resolve: ((c: Completion) => void) | null;
  /** `post()`: called with the completion's result and socket id (null: nothing to do). */
  done: ((result: number, socketId: number) => void) | null;
  sock: SocketState | null;
  op: number;
  /** A CONNECT with `NqeFlag.OPEN`: its completion names a socket this guest has no state for. */
  open: boolean;
}

const FREE_CREDIT = 0xffff_ffff;

/** A guest's connection to the NSM; see the module comment. */
export class NkClient {
  /** Guest id the NSM assigned. */
  readonly guestId: number;
  /** The device. */
  readonly device: GuestDevice;
  /** Control socket path used. */
  readonly ctlPath: string;
  readonly #ctl: Deno.Conn;
  readonly #qs: GuestQueueSet;
  /** Requests in flight by request id (`request`, `post`): no Map rehash per connection. */
  readonly #pending = new RequestTable<Pending>(256);
  /** Encoding scratch for `request`/`post` when the job ring has room (no Nqe per request). */
  readonly #reqNqe = new Nqe();
  /** One slot's bytes for copying `#reqNqe` into a backlog entry (encode, then decode). */
  readonly #copyView = new DataView(new ArrayBuffer(64));
  /** CLOSEs posted by `closeSocket` whose completion has not come (`shutdown` waits). */
  #closing = 0;
  /** Fired when `#closing` drops to 0. */
  readonly #closesDone = new Signal();
  /** `closeSocket`'s completion: the NSM freed the id, so its state goes. */
  readonly #closedDone = (_result: number, socketId: number): void => {
    this.forget(socketId);
    if (--this.#closing === 0) this.#closesDone.fire();
  };
  /** Stream SENDs in flight (`sendChunk`), completed without a promise. */
  readonly #sendPending: RequestTable<SocketState>;
  /** Signals chunk returns while a writer waits for a free chunk (`chunkFreed`). */
  readonly #chunkSignal: Signal;
  /** Per-socket cap on SENDs in flight: see `sendCap`. */
  readonly #sendCap: number;
  /** Encoding scratch for `sendChunk` when the ring has room (no Nqe per chunk). */
  readonly #sendNqe = new Nqe();
  /** Encoding scratch for RECV_CREDIT (only its op, socket, offset and credit are ever set). */
  readonly #creditNqe = new Nqe();
  /** By socket id: an IntMap, since a Map that empties rehashes (once per TCP_CRR connection). */
  readonly #socks = new IntMap<SocketState>();
  readonly #jobBacklog: Nqe[] = [];
  readonly #sendBacklog: Nqe[] = [];
  readonly #chunkWaiters: (() => void)[] = [];
  readonly #rx = new Nqe();
  /**
   * sendChunks, sendBytes, recvChunks, recvBytes, pumpTurns, pumpWaits: doubles in an array,
   * since byte totals pass 2^31 and a plain field would box a new heap number on every update.
   */
  readonly #traffic = new Float64Array(6);
  /** The pump's spin-before-sleep policy (budget and hit/miss counts). */
  readonly spin: AdaptiveSpin;
  #nextReq = 1;
  #waiters = 0;
  #dead: string | null = null;
  #closed = false;
  /** A drain since the pump last waited resolved a request or woke a waiter. */
  #woke = false;
  /** Sockets whose callbacks (`SocketState.notify`) run at the end of the drain. */
  readonly #notify: SocketState[] = [];

  private constructor(
    id: number,
    device: GuestDevice,
    ctl: Deno.Conn,
    ctlPath: string,
    spin: AdaptiveSpinOptions,
  ) {
    this.spin = new AdaptiveSpin({ idle: yieldCpu, ...spin });
    this.guestId = id;
    this.device = device;
    this.#ctl = ctl;
    this.ctlPath = ctlPath;
    this.#qs = device.queueSets[0]!;
    const data = device.data;
    // Every SEND in flight holds one of our chunks: twice as many slots keeps collisions rare.
    this.#sendPending = new RequestTable(2 * data.chunksPerHalf);
    this.#arm = () => this.#hold();
    this.#disarm = () => this.#unhold();
    this.#chunkSignal = new Signal(this.#arm, this.#disarm);
    this.#sendCap = Math.max(2, Math.min(64, data.chunksPerHalf >> 3));
    const chunks = 2 * data.chunksPerHalf;
    this.#wholeViews = new Array<Uint8Array>(chunks).fill(NO_VIEW);
    this.#pieceViews = keptViews(chunks);
    this.#headViews = new Array<Map<number, Uint8Array>>(chunks).fill(NO_PIECES);
  }

  readonly #arm: () => void;
  readonly #disarm: () => void;
  /** `view()`'s cache: the whole chunk's view by chunk index (`NO_VIEW` until made). */
  readonly #wholeViews: Uint8Array[];
  /** `view()`'s cache: two kept pieces per chunk index. */
  readonly #pieceViews: Uint8Array[];
  /** `view()`'s cache: pieces from the chunk's start by length, per chunk index. */
  readonly #headViews: Map<number, Uint8Array>[];

  /**
   * Chunks one socket may have in flight (SENDs not completed): a blocked connection (a peer
   * that stops reading) cannot take every chunk of this guest and stall its other sockets.
   */
  get sendCap(): number {
    return this.#sendCap;
  }

  /** Resolves when the NSM returns a chunk (or is gone): for writers that found none free. */
  chunkFreed(): Promise<void> {
    if (this.#dead !== null) return RESOLVED;
    return this.#chunkSignal.wait();
  }

  /**
   * `device.data.bytes` from `offset` for `length` bytes, reusing a view made earlier for the
   * same offset and length. Per chunk are kept: the whole chunk; pieces from its start by
   * length (up to `PIECES_PER_CHUNK`, then the table starts over); and the two most recent
   * pieces from elsewhere in it (stacks/link/kept_view.ts). The NSM fills receive chunks from
   * their start with whole segments: mostly 11 of 1448 B in 16 KB, then a dozen other
   * lengths, which the readers take whole. One kept piece per chunk made a view for ~40 % of
   * the chunks received in bulk (31.6 B per chunk sampled), two most recent ones for ~15 %.
   */
  view(offset: number, length: number): Uint8Array {
    const data = this.device.data;
    const size = data.chunkSize;
    const i = Math.floor(offset / size);
    const whole = this.#wholeViews;
    if (i < 0 || i >= whole.length) return data.bytes.subarray(offset, offset + length);
    if (offset === i * size) {
      if (length === size) {
        const v = whole[i]!;
        if (v.length === size) return v;
        return whole[i] = data.bytes.subarray(offset, offset + length);
      }
      let m = this.#headViews[i]!;
      if (m === NO_PIECES) m = this.#headViews[i] = new Map();
      const v = m.get(length);
      if (v !== undefined) return v;
      if (m.size >= PIECES_PER_CHUNK) m.clear();
      const nv = data.bytes.subarray(offset, offset + length);
      m.set(length, nv);
      return nv;
    }
    return keptView(this.#pieceViews, i, data.bytes, offset, offset + length);
  }

  /** Attaches to the NSM at `ctl` (see `AttachOptions`). Throws `NsmUnavailable`. */
  static async attach(options: AttachOptions = {}): Promise<NkClient> {
    const path = options.ctl ?? defaultCtlPath();
    const envMax = options.spin?.maxNs === undefined ? spinMaxFromEnv() : undefined;
    const spinOptions: AdaptiveSpinOptions = envMax === undefined
      ? { ...options.spin }
      : { ...options.spin, maxNs: envMax };
    let ctl: Deno.Conn;
    try {
      ctl = await Deno.connect({ transport: "unix", path });
    } catch (e) {
      throw new NsmUnavailable(
        `cannot reach the NSM control socket ${path} (${
          e instanceof Error ? e.message : String(e)
        }); start the NSM (deno task nsm ... --ctl ${path}) or pass --ctl`,
      );
    }
    try {
      // The client speaks first on the NSM's shared control socket (operators send "op").
      await ctl.write(
        new TextEncoder().encode(JSON.stringify({ v: 1, type: "attach", pid: Deno.pid }) + "\n"),
      );
      const line = await readLine(ctl);
      const msg = JSON.parse(line) as { guest?: number; device?: string; error?: string };
      if (msg.error !== undefined || msg.guest === undefined || msg.device === undefined) {
        throw new NsmUnavailable(`the NSM refused the guest: ${msg.error ?? line}`);
      }
      const dev = await GuestDevice.attach(msg.device);
      const c = new NkClient(msg.guest, dev, ctl, path, spinOptions);
      if (options.sleeper !== false && dev.bell.pollFd >= 0) await c.#startSleeper();
      c.#start();
      return c;
    } catch (e) {
      ctl.close();
      throw e;
    }
  }

  /** The helper thread the pump sleeps on, or null: Deno's async read of the doorbell. */
  #sleeper: Sleeper | null = null;

  /**
   * Starts the sleeper thread at attach (~20-50 ms). Started later, from a busy pump, the
   * worker sometimes never came up (in 5 of 13 bulk runs it had not started by the end),
   * presumably because its start-up needs the event loop at moments a busy pump does not give.
   */
  async #startSleeper(): Promise<void> {
    try {
      const s = await Sleeper.start(this.#onSleeperWake, { maxFds: 1 });
      s.setFds([this.device.bell.pollFd]);
      this.#sleeper = s;
    } catch (e) {
      if (!(e instanceof SleeperUnavailableError)) throw e;
      // Deno's read of the doorbell then (see AttachOptions.sleeper).
    }
  }

  /** True when the pump sleeps on a helper thread (`AttachOptions.sleeper`). */
  get sleepsOnThread(): boolean {
    return this.#sleeper !== null;
  }

  #start(): void {
    this.#ctl.unref();
    this.device.bell.unref();
    this.#watchCtl();
    this.#pump();
  }

  async #watchCtl(): Promise<void> {
    const buf = new Uint8Array(64);
    try {
      while ((await this.#ctl.read(buf)) !== null) { /* nothing is sent after the attach line */ }
    } catch {
      // closed
    }
    this.#die("the NSM closed the control connection");
  }

  /** True once the NSM is gone or `close()` was called. */
  get closed(): boolean {
    return this.#closed || this.#dead !== null;
  }

  #hold(): void {
    if (this.#waiters++ === 0) this.device.bell.ref();
  }

  #unhold(): void {
    if (--this.#waiters === 0) this.device.bell.unref();
  }

  /** Waits for `register` to call its resolver, keeping the process alive meanwhile. */
  async waitFor(register: (wake: () => void) => void): Promise<void> {
    this.#hold();
    try {
      await new Promise<void>((r) => register(r));
    } finally {
      this.#unhold();
    }
  }

  #die(why: string): void {
    if (this.#dead !== null) return;
    this.#dead = why;
    const err = -104; // ECONNRESET for everything outstanding
    this.#pending.clear((p) => {
      if (p.resolve !== null) p.resolve(deadCompletion());
      else {
        this.#unhold();
        if (p.done !== null) p.done(err, 0);
      }
    });
    this.#sendPending.clear((s) => {
      this.#unhold();
      if (s.sendError === 0) s.sendError = err;
      s.inFlight--;
    });
    for (const s of this.#socks.values()) {
      if (s.error === 0) s.error = err;
      s.wakeReaders();
      const d = s.drainWaiters.splice(0);
      for (const f of d) f();
      s.wakeWriters();
      s.endCallbacks();
    }
    for (const w of this.#chunkWaiters.splice(0)) w();
    this.#chunkSignal.fire();
  }

  /** Chunks and bytes sent and received so far (for benchmarks: per-chunk costs). */
  traffic(): NkTraffic {
    const t = this.#traffic;
    return {
      sendChunks: t[0]!,
      sendBytes: t[1]!,
      recvChunks: t[2]!,
      recvBytes: t[3]!,
      pumpTurns: t[4]!,
      pumpWaits: t[5]!,
      pumpSleeps: this.device.bell.sleeps,
      pumpThreadSleeps: this.#threadSleeps,
    };
  }

  /** Socket state of `id` (created on first use). */
  sock(id: number): SocketState {
    let s = this.#socks.get(id);
    if (s === undefined) this.#socks.set(id, s = new SocketState(id, this.#arm, this.#disarm));
    return s;
  }

  /** Forgets a closed socket's state. */
  forget(id: number): void {
    this.#socks.delete(id);
  }

  /**
   * Sends one request and resolves with its completion. `fill` sets the op's fields on a
   * fresh NQE (op, socketId, args ...); queueSet and requestId are set here.
   */
  request(fill: (n: Nqe) => void, sock: SocketState | null = null): Promise<Completion> {
    if (this.#dead !== null) return Promise.resolve(deadCompletion());
    return new Promise<Completion>((resolve) => {
      this.#issue(fill, sock, (c) => {
        this.#unhold();
        resolve(c);
      }, null);
    });
  }

  /**
   * `request()` without a promise, for requests nobody awaits (SETSOCKOPT, CLOSE): `done`,
   * if given, runs from the pump with the completion's result and socket id (or -ECONNRESET
   * and 0 when the NSM goes away). Keeps the process alive until the completion, as
   * `request()` does. Nothing is sent once the NSM is gone.
   */
  post(fill: (n: Nqe) => void, done: ((result: number, socketId: number) => void) | null): void {
    if (this.#dead !== null) return;
    this.#issue(fill, null, null, done);
  }

  /**
   * Closes socket `id` without waiting (CLOSE by `post`); its state is forgotten once the NSM
   * answered. `shutdown()` waits for these. For a connection with nothing in flight.
   */
  closeSocket(id: number): void {
    if (this.#dead !== null) return;
    this.#closing++;
    this.post((n) => {
      n.op = NqeOp.CLOSE;
      n.socketId = id;
    }, this.#closedDone);
  }

  #issue(
    fill: (n: Nqe) => void,
    sock: SocketState | null,
    resolve: ((c: Completion) => void) | null,
    done: ((result: number, socketId: number) => void) | null,
  ): void {
    // A scratch NQE, copied only when it must wait in a backlog: a fresh Nqe is an
    // ArrayBuffer, a Uint8Array and a DataView, three per connection in a TCP_CRR client.
    const n = this.#reqNqe.clear();
    fill(n);
    n.queueSet = 0;
    n.requestId = this.#nextReq;
    this.#nextReq = (this.#nextReq + 1) >>> 0 || 1;
    this.#hold();
    this.#pending.put(n.requestId, {
      resolve,
      done,
      sock,
      op: n.op,
      open: n.op === NqeOp.CONNECT && (n.flags & NqeFlag.OPEN) !== 0,
    });
    const send = n.op === NqeOp.SEND || n.op === NqeOp.SENDTO;
    const backlog = send ? this.#sendBacklog : this.#jobBacklog;
    if (backlog.length > 0 || !this.#write(send ? this.#qs.send : this.#qs.job, n)) {
      const copy = new Nqe();
      encodeNqe(this.#copyView, 0, n);
      backlog.push(decodeNqe(this.#copyView, 0, copy));
    }
  }

  /**
   * Queues a stream SEND of `length` bytes of the lent chunk at `offset` for socket `s`, and
   * counts it in `s.inFlight` until its completion, which records a failure in `s.sendError`
   * and wakes `s`'s room and drain waiters. No promise, closure or NQE object per chunk: at
   * several thousand chunks a second those were most of the guest's garbage. False (nothing
   * queued) when the NSM is gone.
   */
  sendChunk(s: SocketState, offset: number, length: number): boolean {
    if (this.#dead !== null) {
      if (s.sendError === 0) s.sendError = -104;
      return false;
    }
    const id = this.#nextReq;
    this.#nextReq = (this.#nextReq + 1) >>> 0 || 1;
    this.#hold();
    s.inFlight++;
    this.#sendPending.put(id, s);
    const t = this.#traffic;
    t[0]!++;
    t[1]! += length;
    const ring = this.#qs.send;
    const n = this.#sendBacklog.length === 0 && ring.claim(1) > 0 ? this.#sendNqe : new Nqe();
    n.op = NqeOp.SEND;
    n.flags = 0;
    n.queueSet = 0;
    n.socketId = s.id;
    n.requestId = id;
    n.dataOffset = offset;
    n.dataLength = length;
    if (n !== this.#sendNqe) {
      this.#sendBacklog.push(n);
      return true;
    }
    encodeNqe(ring.view, ring.slot(0), n);
    ring.publish(1);
    this.device.bell.notify();
    return true;
  }

  #write(ring: GuestQueueSet["job"], n: Nqe): boolean {
    if (ring.claim(1) === 0) return false;
    encodeNqe(ring.view, ring.slot(0), n);
    ring.publish(1);
    this.device.bell.notify();
    return true;
  }

  #flushBacklogs(): boolean {
    // Two explicit calls: iterating [[backlog, ring], ...] built three arrays per drain.
    const did = this.#flushBacklog(this.#jobBacklog, this.#qs.job) |
      this.#flushBacklog(this.#sendBacklog, this.#qs.send);
    if (did !== 0) this.device.bell.notify();
    return did !== 0;
  }

  /** Moves as much of `backlog` as fits into `ring`; 1 when it moved any, else 0. */
  #flushBacklog(backlog: Nqe[], ring: GuestQueueSet["job"]): number {
    if (backlog.length === 0) return 0;
    const k = ring.claim(backlog.length);
    if (k === 0) return 0;
    for (let i = 0; i < k; i++) encodeNqe(ring.view, ring.slot(i), backlog[i]!);
    ring.publish(k);
    backlog.splice(0, k);
    return 1;
  }

  /** Allocates a guest chunk, waiting while all are in flight; -1 when the NSM is gone. */
  async allocChunk(): Promise<number> {
    for (;;) {
      if (this.#dead !== null) return -1;
      const c = this.device.data.alloc();
      if (c >= 0) return c;
      await this.waitFor((w) => this.#chunkWaiters.push(w));
    }
  }

  /** Returns a received chunk (RECV) and opens `credit` bytes of receive window. */
  returnChunk(sockId: number, offset: number, credit: number): void {
    this.device.data.giveBack(offset);
    this.#postCredit(sockId, offset, credit);
  }

  /** Opens credit without returning a chunk. */
  credit(sockId: number, bytes: number): void {
    this.#postCredit(sockId, FREE_CREDIT, bytes);
  }

  /** RECV_CREDIT from a scratch NQE when the job ring has room (one per received chunk). */
  #postCredit(sockId: number, dataOffset: number, credit: number): void {
    if (this.#dead !== null) return;
    const ring = this.#qs.job;
    const direct = this.#jobBacklog.length === 0 && ring.claim(1) > 0;
    const n = direct ? this.#creditNqe : new Nqe();
    n.op = NqeOp.RECV_CREDIT;
    n.socketId = sockId;
    n.dataOffset = dataOffset;
    n.arg0 = credit;
    if (!direct) {
      this.#jobBacklog.push(n);
      return;
    }
    encodeNqe(ring.view, ring.slot(0), n);
    ring.publish(1);
    this.device.bell.notify();
  }

  /** Processes everything in the completion and receive rings. True when anything happened. */
  #drain(): boolean {
    let did = false;
    const comp = this.#qs.completion;
    let n = comp.available(64);
    while (n > 0) {
      did = true;
      const run = comp.contiguous(n);
      let off = comp.firstWord << 2;
      for (let i = 0; i < n; i++, off += SLOT_SIZE) {
        if (i === run) off = RING_HEADER_SIZE;
        this.#onCompletion(decodeNqe(comp.view, off, this.#rx));
      }
      comp.release(n);
      n = comp.available(64);
    }
    const recv = this.#qs.receive;
    n = recv.available(64);
    while (n > 0) {
      did = true;
      const run = recv.contiguous(n);
      let off = recv.firstWord << 2;
      for (let i = 0; i < n; i++, off += SLOT_SIZE) {
        if (i === run) off = RING_HEADER_SIZE;
        this.#onReceive(decodeNqe(recv.view, off, this.#rx));
      }
      recv.release(n);
      n = recv.available(64);
    }
    if (did) this.device.bell.notify(); // we released slots: the NSM may wait for room
    this.#runCallbacks();
    // A callback may have detached the client (the device is unmapped then).
    if (this.#closed || this.#dead !== null) return did;
    if (this.#flushBacklogs()) did = true;
    return did;
  }

  /** Owes `s` its callback `bit` (1 readable, 2 writable) if it has one. */
  #owe(s: SocketState, bit: number): void {
    if ((bit === 1 ? s.onReadable : s.onWritable) === null) return;
    if (s.notify === 0) this.#notify.push(s);
    s.notify |= bit;
  }

  /** Runs the callbacks owed, after the rings were released (they may submit more). */
  #runCallbacks(): void {
    const q = this.#notify;
    for (let i = 0; i < q.length; i++) {
      const s = q[i]!;
      const bits = s.notify;
      s.notify = 0;
      if ((bits & 1) !== 0) callSafely(s.onReadable);
      if ((bits & 2) !== 0) callSafely(s.onWritable);
    }
    while (q.length > 0) q.pop();
  }

  #onCompletion(c: Nqe): void {
    if ((c.flags & NqeFlag.CHUNK_RETURNED) !== 0) {
      this.device.data.reclaim(c.dataOffset);
      const w = this.#chunkWaiters.shift();
      if (w !== undefined) {
        w();
        this.#woke = true;
      }
      if (this.#chunkSignal.fire()) this.#woke = true;
    }
    const sent = this.#sendPending.take(c.requestId);
    if (sent !== null) {
      this.#unhold();
      if (c.result < 0 && sent.sendError === 0) sent.sendError = c.result;
      if (--sent.inFlight === 0 && wakeAll(sent.drainWaiters)) this.#woke = true;
      if (sent.inFlight <= this.#sendCap >> 1 || c.result < 0) {
        if (sent.wakeWriters()) this.#woke = true;
        this.#owe(sent, 2);
      }
      return;
    }
    const p = this.#pending.take(c.requestId);
    if (p === null) return; // a rejected RECV_CREDIT, or garbage
    // A new socket's data may follow its completion in the same drain, before the caller's
    // continuation runs: its state must exist now or the bytes would be taken as stray.
    if ((p.op === NqeOp.SOCKET || p.op === NqeOp.ACCEPT) && c.result > 0) this.sock(c.result);
    else if (p.open && c.socketId !== 0) this.sock(c.socketId);
    if (p.resolve === null) {
      // post(): nobody awaits it, so nothing of the application is woken.
      this.#unhold();
      if (p.done !== null) p.done(c.result, c.socketId);
      return;
    }
    this.#woke = this.#answered = true;
    p.resolve({
      result: c.result,
      socketId: c.socketId,
      flags: c.flags,
      arg2: c.arg2,
      family: c.family,
      addr: c.addr.slice(),
      port: c.port,
    });
  }

  #onReceive(r: Nqe): void {
    const s = this.#socks.get(r.socketId);
    if (r.op === NqeOp.RECV || r.op === NqeOp.RECVFROM) {
      if (this.device.data.borrow(r.dataOffset, r.dataLength) !== null) return; // NSM bug: drop
      if (s === undefined || s.closed) {
        this.returnChunk(r.socketId, r.dataOffset, r.dataLength);
        return;
      }
      s.pushRx(
        r.dataOffset,
        r.dataLength,
        r.family,
        r.op === NqeOp.RECVFROM ? r.addr.slice() : null,
        r.port,
      );
      const t = this.#traffic;
      t[2]!++;
      t[3]! += r.dataLength;
      // Data wakes the application unless it reads from a callback (`onReadable`, called in
      // this drain): a promise-based reader may be a few microtasks from calling read() (a
      // request/response client between its write and its read), and the pump's turns before
      // it spins are what let it run. Counting only readers already waiting, every such
      // transaction waited out the spin (rr_1b 21k -> 5.7k trans/s).
      if (s.wakeReaders() || s.onReadable === null) this.#woke = this.#answered = true;
      this.#owe(s, 1);
    } else if (r.op === NqeOp.EVENT && s !== undefined) {
      if (r.arg0 & NqeEvent.RDHUP) s.eof = true;
      if (r.arg0 & NqeEvent.ERR && r.result < 0) {
        s.error = r.result;
        if (s.wakeWriters()) this.#woke = this.#answered = true;
        this.#owe(s, 2);
      }
      if (s.wakeReaders()) this.#woke = this.#answered = true;
      this.#owe(s, 1);
    }
  }

  // The pump. A step function, not an async loop: every `await` of the loop allocated (a
  // settled promise's ~50 B per turn, a sleep's promise ~200 B, a macrotask's ~800 B). Its
  // turns are a settled promise's `then` (96 B; queueMicrotask wraps the callback in a closure,
  // 128 B), its macrotasks setImmediate, its sleeps the sleeper thread (nothing), or without a
  // sleeper Doorbell.wait().

  /** What the pump waits for between steps. */
  #pumpState: PumpState = PumpState.Stopped;
  /** Turns since the pump last slept (every 16th is a macrotask). */
  #turns = 0;
  /** Idle turns given to the application since the last drain that did work. */
  #idle = 0;
  /** bell.sleeps before the current wait: whether it slept. */
  #sleepsBefore = 0;
  /**
   * The wait's start and end, and how long the last sleep lasted (an array: a double field
   * would box a heap number per store).
   */
  readonly #waitClock = new Float64Array([0, 0, Infinity]);
  /**
   * Since the pump last slept a drain answered a caller: resolved a request, fed a reader, or
   * reported an error or end (not room for a writer: a bulk sender waits for that).
   */
  #answered = false;
  /** Sleeps taken on the sleeper thread. */
  #threadSleeps = 0;
  readonly #step = (): void => this.#pumpStep();
  /** The rings of our one queue set directly: GuestDevice.hasWork() loops over all sets. */
  readonly #hasWork = (): boolean => {
    const qs = this.#qs;
    return qs.completion.peekFill() > 0 || qs.receive.peekFill() > 0 ||
      (this.#jobBacklog.length > 0 && qs.job.claim(1) > 0) ||
      (this.#sendBacklog.length > 0 && qs.send.claim(1) > 0);
  };
  readonly #spinCheck = (): boolean => {
    if (this.#hasWork()) return true;
    this.spin.idle();
    return false;
  };
  readonly #onBellWait = (why: WakeReason): void => this.#afterWait(why);

  #pump(): void {
    if (this.#pumpState !== PumpState.Stopped) return;
    this.#pumpState = PumpState.Running;
    this.#pumpStep();
  }

  /**
   * A turn between the pump's passes: a microtask (the application's continuations, which our
   * drain resolved, run before it), and every 16th since the pump last slept a macrotask, so
   * timers and I/O run too (a sleep lets them run).
   */
  #turn(): void {
    this.#traffic[4]!++;
    this.#turns = (this.#turns + 1) & 15;
    if (this.#turns === 0) this.#macrotask();
    else {
      this.#pumpState = PumpState.Turn;
      RESOLVED.then(this.#step);
    }
  }

  #macrotask(): void {
    // setImmediate (~800 B), not a hop through the sleeper thread (nothing): the hop is two
    // thread wake-ups, and a request/response client takes this turn on every answer
    // (rr_1b 20.6k -> 15.2k trans/s through the sleeper). A bulk transfer's turns are
    // microtasks: its completions wake nobody, so it takes no idle turns.
    this.#pumpState = PumpState.Turn;
    setImmediate(this.#step);
  }

  #pumpStep(): void {
    this.#pumpState = PumpState.Running;
    const spin = this.spin;
    const bell = this.device.bell;
    const spinCheck = this.#spinCheck;
    const clock = this.#waitClock;
    while (!this.#closed && this.#dead === null) {
      const woke = this.#woke;
      this.#woke = false;
      const did = this.#drain();
      const wokeNow = this.#woke;
      this.#woke ||= woke;
      if (did) {
        this.#idle = 0;
        // A turn lets the continuations of the waiters this drain resolved run before the
        // next pass. A drain that resolved none (its callbacks, such as a bulk sender's
        // onWritable, ran inside it) needs none: the turn was ~96 B per wake-up, most of a
        // bulk sender's garbage. Every 16th pass is still a macrotask.
        if (wokeNow) return this.#turn();
        this.#turns = (this.#turns + 1) & 15;
        if (this.#turns === 0) return this.#macrotask();
        continue;
      }
      // Give the application a few turns to submit more before sleeping (a sleep costs the
      // NSM a doorbell write to wake us), when a drain since the last wait woke any of it: a
      // woken task may answer within a few microtasks. Otherwise nothing of it is pending on
      // us, and the turns would only allocate (a send's completions mostly wake nobody).
      if (this.#woke && this.#idle++ < 2) {
        // The second idle turn is a macrotask: once it runs, every continuation our drains
        // resolved has run, however many awaits deep (connect -> setsockopt -> write -> read
        // in a client), before the spin below blocks them. With microtask turns only, a
        // short-connection client waited out the spin on every step (conn_rate 5.0k -> 2.5k).
        return this.#idle === 1 ? this.#turn() : this.#macrotask();
      }
      this.#woke = false;
      // A short adaptive spin first (spin.ts): it catches the NSM's next batch without a
      // doorbell write when traffic is steady, and falls to 0 (no CPU) when idle. It runs
      // here, not in Doorbell.wait(), whose every call allocates (arrays, closures, promises)
      // even when the spin finds work at once.
      monotonicNowInto(clock, 0);
      this.#idle = 0;
      const budget = spin.budgetNs | 0; // an int: a fractional budget would be boxed per spin
      // With no budget, one check, a yield of the CPU (to an NSM sharing it) and another
      // check: what Doorbell.wait() does before it sleeps, without its allocations.
      if (
        budget > 0 ? spinUntilWork(spinCheck, clock, budget) : spinCheck() || this.#hasWork()
      ) {
        spin.record(false, 0);
        continue;
      }
      this.#sleepsBefore = bell.sleeps;
      this.#traffic[5]!++;
      const sl = this.#sleeper;
      const answered = this.#answered;
      this.#answered = false;
      // On the sleeper thread (no garbage, a slower wake-up) when the last sleep was short (under
      // 20 ms) and the drains since answered no caller, only made room: the pauses of a bulk
      // transfer, where sleeps come by the thousand. After an answer (a request's completion,
      // data for a reader that awaits it) the next one likely waits for another
      // (conn_rate 6.9k -> 6.0k conn/s with every short sleep on the thread): Deno's read of
      // the doorbell wakes it faster; so after a long sleep, and while nothing holds the
      // process alive (the thread's armed sleep would).
      if (
        sl !== null && !answered && clock[2]! < SHORT_SLEEP_NS && this.#waiters > 0 &&
        bell.pollFd >= 0 && !sl.failed
      ) {
        // The Dekker steps of Doorbell.wait() around a sleep on the helper thread.
        bell.beginSleep();
        if (spinCheck()) {
          if (!bell.endSleep()) this.#die("the NSM closed the doorbell");
          spin.record(false, 0);
          continue;
        }
        bell.sleeps++;
        this.#threadSleeps++;
        this.#pumpState = PumpState.Sleep;
        sl.sleep(-1);
        return;
      }
      this.#pumpState = PumpState.Sleep;
      bell.wait(spinCheck, 0).then(this.#onBellWait);
      return;
    }
    this.#pumpState = PumpState.Stopped;
  }

  /** The sleeper's wake-up: the end of a sleep. */
  readonly #onSleeperWake = (): void => {
    const sl = this.#sleeper;
    if (sl !== null && sl.failed) {
      this.#sleeper = null; // its thread died: Deno's read of the doorbell from now on
      void sl.close();
    }
    if (this.#pumpState === PumpState.Sleep) {
      this.#afterWait(this.device.bell.endSleep() ? "work" : "closed");
    }
  };

  #afterWait(why: WakeReason): void {
    const clock = this.#waitClock;
    const slept = this.device.bell.sleeps !== this.#sleepsBefore;
    if (slept) {
      this.#turns = 0;
      monotonicNowInto(clock, 1);
      clock[2] = clock[1]! - clock[0]!;
    }
    // The whole wait, spin too, as a small integer (a double argument is a heap number each).
    this.spin.record(slept, slept ? Math.min(clock[2]!, 1e9) | 0 : 0);
    if (why === "closed") this.#die("the NSM closed the doorbell");
    this.#pumpStep();
  }

  readonly #background = new Set<Promise<unknown>>();

  /** Tracks a background operation (a graceful close) that `shutdown()` waits for. */
  track(p: Promise<unknown>): void {
    this.#background.add(p);
    this.#hold();
    p.finally(() => {
      this.#background.delete(p);
      this.#unhold();
    });
  }

  /**
   * Waits (up to `timeoutMs`) until background closes finished, then detaches. Use this at
   * program end so closed connections finish gracefully instead of being reset.
   */
  async shutdown(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (
      (this.#background.size > 0 || this.#closing > 0) && Date.now() < until &&
      this.#dead === null
    ) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#background.size > 0
          ? Promise.allSettled([...this.#background])
          : this.#closesDone.wait(),
        new Promise((r) => timer = setTimeout(r, until - Date.now())),
      ]);
      clearTimeout(timer);
    }
    this.close();
  }

  /** Detaches at once: the NSM resets every socket of this guest. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#die("closed");
    // Ends the pump's sleep (the sleeper calls nobody once closed): it sees #closed and stops.
    const sl = this.#sleeper;
    this.#sleeper = null;
    if (sl !== null) void sl.close().then(this.#onSleeperWake);
    this.device.close();
    try {
      this.#ctl.close();
    } catch {
      // already closed
    }
  }

  /** Throws the Deno error for a negative result; returns the value otherwise. */
  static check(result: number, what: string): number {
    if (result < 0) throw errnoError(-result, what);
    return result;
  }
}

const RESOLVED: Promise<void> = Promise.resolve();
const NO_VIEW = new Uint8Array(0);
/** The shared empty table of `view()`'s pieces from a chunk's start (never written). */
const NO_PIECES: Map<number, Uint8Array> = new Map();
/** Pieces from a chunk's start that `view()` keeps per chunk, by length. */
const PIECES_PER_CHUNK = 32;
/**
 * A sleep shorter than this (spin included) may put the next one on the sleeper thread: far
 * above a busy transfer's pauses (~0.5 ms here, a few ms on a loaded machine), far below an
 * idle guest's sleeps (seconds), whose end should wake fast.
 */
const SHORT_SLEEP_NS = 20_000_000;

/**
 * Spins on `check` until it is true (true) or `budgetNs` after `clock[0]` (false), reading the
 * clock every 64 checks into `clock[1]`: the deadline as an argument, and each reading as a
 * returned number, were heap numbers per spin.
 */
export function spinUntilWork(
  check: () => boolean,
  clock: Float64Array,
  budgetNs: number,
): boolean {
  for (let i = 1;; i++) {
    if (check()) return true;
    if ((i & 63) === 0) {
      monotonicNowInto(clock, 1);
      if (clock[1]! >= clock[0]! + budgetNs) return false;
    }
  }
}

function deadCompletion(): Completion {
  return {
    result: -104,
    socketId: 0,
    flags: 0,
    arg2: 0,
    family: 0,
    addr: new Uint8Array(16),
    port: 0,
  };
}

// One event-loop turn (I/O and timers run) for the pump to let the application submit more:
// node's setImmediate, 1.1 us a turn; it holds the process alive only while pending. A nested
// setTimeout(0) costs 1-4 ms; a web MessageChannel tick allocated a MessageEvent, an Event and
// a serialized message per turn (a third of the guest's garbage in a bulk send, sampled with
// --trace-allocation-stack-interval) and had to be closed before every sleep so an idle
// process could exit (making one again cost ~20 us).
/** What `NkClient`'s pump waits for between its steps. */
const PumpState = {
  /** Not started, or ended (closed, or the NSM is gone). */
  Stopped: 0,
  /** In a step. */
  Running: 1,
  /** A microtask or setImmediate turn is queued. */
  Turn: 2,
  /** Asleep on the doorbell (the sleeper thread, or Doorbell.wait()). */
  Sleep: 3,
} as const;
type PumpState = typeof PumpState[keyof typeof PumpState];

async function readLine(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let len = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) throw new NsmUnavailable("the NSM closed the control socket before answering");
    len += n;
    const nl = buf.subarray(0, len).indexOf(10);
    if (nl >= 0) return new TextDecoder().decode(buf.subarray(0, nl));
    if (len === buf.length) throw new NsmUnavailable("the NSM's attach line is too long");
  }
}
