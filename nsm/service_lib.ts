/**
 * ServiceLib: the NSM side of NetKernel's guest interface. Guests attach through a control
 * socket and get an NK device; their NQEs become calls on a `SocketBackend` (our stack or the
 * kernel's), and readiness becomes completion / receive NQEs.
 *
 * Attach: a guest connects to the control socket (`--ctl`, default `defaultCtlPath()`); the
 * NSM creates a device and writes one JSON line `{"guest":id,"device":path,"version":1}`; the
 * guest attaches to `path` and connects the doorbell. The guest is gone when the control socket
 * or the doorbell reaches EOF: every socket it had is reset (`abort`), parked requests are
 * dropped, the device is unmapped and unlinked.
 *
 * One event loop: ServiceLib is a `Pollable` of `NsmRuntime` (poll(now) runs every guest's
 * rings and the backend's ready list), and `wrapLink(link)` makes the runtime's idle sleep also
 * wake on any guest's doorbell (`Doorbell.waitAny` racing the link's wait). While busy the
 * runtime spins; each poll handles at most `batch` NQEs per ring and `socketBudget` ready
 * sockets per guest, so one busy guest cannot starve the others.
 *
 * Isolation: socket ids are per guest (a guest's id 5 is not another's 5; an id it does not
 * own is -EBADF). Each guest has its own rings, data region (its receive chunks are its receive
 * memory), socket limit (-EMFILE) and buffer budget (-ENOBUFS: every socket reserves its
 * SO_RCVBUF credit plus its SO_SNDBUF). A guest that stops reading stops only its sockets:
 * delivery to a socket stops when its credit (delivered, not yet returned bytes <= SO_RCVBUF)
 * is used up, when the guest's receive ring is full, or its receive chunks are all lent; the
 * stack's receive buffer then fills and TCP closes the window for that connection only.
 *
 * Hostile input (everything in shared memory is untrusted): unknown op -ENOSYS; unknown flag
 * bits, reserved byte, wrong queue set -EINVAL; foreign/unknown socket id -EBADF; bad data
 * reference -EFAULT. Ring indices that jump (`RingIndexError`) disconnect the guest; so does a
 * completion ring that stays full for `stallNs` while completions wait, and more than
 * `maxBadNqes` rejected NQEs. Every case is counted per guest (`GuestInfo.counters`) and in
 * `stats`; no other guest's rings, sockets or memory are touched.
 *
 * @module
 */

import { type Instant, MILLISECOND, NEVER, SECOND } from "../stacks/time.ts";
import { AS_DOUBLE } from "../stacks/tcpip/tcp/f64.ts";
import type { TcpStack } from "../stacks/tcpip/tcp/stack.ts";
import {
  Errno,
  IntMap,
  SockAddr,
  type SocketBackend,
  SockLevel,
  SockOpt,
  SockType,
} from "./backend.ts";
import { defaultCtlPath } from "./ctl_path.ts";
import { NsmDevice, type NsmQueueSet } from "./device.ts";
import {
  decodeNqe,
  encodeCompletion,
  encodeNqe,
  Nqe,
  NQE_ARG0,
  NQE_DATA_LENGTH,
  NQE_DATA_OFFSET,
  NQE_FLAGS,
  NQE_QUEUE_SET,
  NQE_REQUEST,
  NQE_RESERVED,
  NQE_RESULT,
  NQE_SIZE,
  NQE_SOCKET,
  NqeEvent,
  NqeFlag,
  NqeOp,
} from "./nqe.ts";
import { RING_HEADER_SIZE, type RingProducer, SLOT_SIZE } from "./ring.ts";
import { Doorbell } from "./wake.ts";
import type { Pollable, WaitableLink } from "./runtime.ts";
import { ControlHandler, ControlServer } from "./control_proto.ts";
import { dispatchShared } from "./ops.ts";
import type { ConnRef, GuestRow, GuestTable } from "./ops_view.ts";
import type { EgressScheduler } from "./sla.ts";
import { Fifo } from "./fifo.ts";
import { SlaSendQueue } from "./sla_queue.ts";
import { type SweepResult, sweepStaleDevices } from "./stale_sweep.ts";

/** Protocol version of the control line. */
export const CTL_VERSION = 1;

/** Tunables of `ServiceLib`. */
export interface ServiceLibOptions {
  /** Control socket path (default `defaultCtlPath()`). */
  readonly ctlPath?: string;
  /** Directory of device files and doorbells (default /dev/shm). */
  readonly deviceDir?: string;
  /** Slots per ring (default 1024). */
  readonly ringCapacity?: number;
  /** Data chunk size (default 16 KiB). */
  readonly chunkSize?: number;
  /** Chunks per half (default 512: 8 MiB per direction per guest). */
  readonly chunksPerHalf?: number;
  /** Guests at once (default 64). */
  readonly maxGuests?: number;
  /** Sockets per guest (default 4096). */
  readonly maxSocketsPerGuest?: number;
  /** Buffer bytes a guest's sockets may reserve (default 2 GiB). */
  readonly maxBufferBytesPerGuest?: number;
  /** Default receive credit per socket, SO_RCVBUF (default 256 KiB). */
  readonly defaultRcvBuf?: number;
  /** NQEs handled per ring per poll (default 64). */
  readonly batch?: number;
  /** Ready sockets serviced per guest per poll (default 256). */
  readonly socketBudget?: number;
  /** Disconnect a guest whose completion ring stays full this long (default 5 s). */
  readonly stallNs?: number;
  /** Disconnect a guest after this many rejected NQEs (default 100 000). */
  readonly maxBadNqes?: number;
  /** How long a guest may take to attach to its device (default 5 s). */
  readonly attachTimeoutMs?: number;
  /** Called with log lines (default: none). */
  readonly log?: (line: string) => void;
  /** Called when a guest attached (device live) or detached (sockets reset). */
  readonly onGuest?: (event: "attach" | "detach", guest: number, now: Instant) => void;
  /** Called when a guest's socket exists in the backend (after SOCKET or ACCEPT). */
  readonly onSocket?: (guest: number, backendId: number, stream: boolean, now: Instant) => void;
}

/** Reasons a guest was disconnected or an NQE rejected (counter names). */
export type GuestCounter =
  | "nqes"
  | "bad-op"
  | "bad-flags"
  | "bad-queue-set"
  | "bad-socket"
  | "bad-data"
  | "bad-credit"
  | "limit-sockets"
  | "limit-memory"
  | "ring-fault"
  | "stalled"
  | "too-many-bad-nqes";

const COUNTERS: readonly GuestCounter[] = [
  "nqes",
  "bad-op",
  "bad-flags",
  "bad-queue-set",
  "bad-socket",
  "bad-data",
  "bad-credit",
  "limit-sockets",
  "limit-memory",
  "ring-fault",
  "stalled",
  "too-many-bad-nqes",
];

function zeroCounters(): Record<GuestCounter, number> {
  const c = {} as Record<GuestCounter, number>;
  for (const k of COUNTERS) c[k] = 0;
  return c;
}

/** Totals over every guest, alive or gone. */
export interface ServiceLibStats {
  /** Guests attached so far. */
  attached: number;
  /** Guests torn down, by reason. */
  detached: Record<string, number>;
  /** Attach attempts that failed (timeout, device creation, limit). */
  attachFailed: number;
  /** Request NQEs consumed. */
  requests: number;
  /** Completions written. */
  completions: number;
  /** RECV/RECVFROM/EVENT written. */
  notifications: number;
  /** Stream bytes delivered to guests. */
  bytesToGuests: number;
  /** Bytes taken from guests' SENDs. */
  bytesFromGuests: number;
  /** Rejections and faults by counter, over all guests. */
  rejected: Record<GuestCounter, number>;
}

/** A snapshot of one guest for tests and status. */
export interface GuestInfo {
  /** Guest id. */
  readonly id: number;
  /** Guest process id (from the device header), 0 if unknown. */
  readonly pid: number;
  /** Device path. */
  readonly device: string;
  /** Open sockets. */
  readonly sockets: number;
  /** Buffer bytes reserved. */
  readonly bufferBytes: number;
  /** Counters. */
  readonly counters: Readonly<Record<GuestCounter, number>>;
}

const REQUEST_FLAGS = NqeFlag.MORE | NqeFlag.NONBLOCK | NqeFlag.OPEN;
/** Flags a NOP may carry on the fast path (OPEN on a NOP is rejected by the general one). */
const NOP_FLAGS = NqeFlag.MORE | NqeFlag.NONBLOCK;
const ACCEPT_QUEUE_MAX = 256;
/** `ServiceLib.pollAt()`'s cell. */
const AT = new Float64Array(1);
const PARKED_ACCEPTS_PER_GUEST = 4096;
const INTERESTING = NqeEvent.IN | NqeEvent.OUT | NqeEvent.ERR | NqeEvent.HUP | NqeEvent.RDHUP;

/** A request waiting for the backend (connect, accept, a blocking send, a deferred shutdown). */
class Parked {
  taken = 0;
  constructor(public req: Nqe) {}
}

/** Most parked SENDs kept for reuse (a bulk sender parks one per full send buffer). */
const PARKED_POOL_MAX = 1024;
/** Most closed sockets kept for reuse (a GSock is three objects: it and two lists). */
const SOCK_POOL_MAX = 256;

/** A guest's socket. */
class GSock {
  /** Delivered but not yet credited receive bytes. */
  uncredited = 0;
  rcvBuf!: number;
  sndBuf!: number;
  /**
   * Bytes of this socket's stream delivered so far (RECV arg2). A double field from the start
   * (see stacks/tcpip/tcp/f64.ts; 0 from `reset`): one that became double at 2^31 cost a heap
   * number per RECV.
   */
  streamOffset = AS_DOUBLE;
  interest = 0;
  lastReported = 0;
  eofSent = false;
  errSent = false;
  connecting: Parked | null = null;
  /** A non-blocking CONNECT waits for its OUT/ERR event. */
  connectEvent = false;
  readonly accepts: Parked[] = [];
  /** Parked SENDs in stream order (a ring: see nsm/fifo.ts). */
  readonly sends: Fifo<Parked> = new Fifo(16);
  shutdownReq: Parked | null = null;
  listening = false;
  connected = false;
  inDirty = false;
  closed = false;
  guest!: Guest;
  sid!: number;
  bid!: number;
  stream!: boolean;
  queueSet!: number;
  /** A new socket: the same as a pooled one made new (`reset`). */
  constructor(
    guest: Guest,
    sid: number,
    bid: number,
    stream: boolean,
    queueSet: number,
    rcvBuf: number,
    sndBuf: number,
  ) {
    this.reset(guest, sid, bid, stream, queueSet, rcvBuf, sndBuf);
  }

  /** Makes a closed socket (from `ServiceLib`'s pool) a new one; its lists are empty. */
  reset(
    guest: Guest,
    sid: number,
    bid: number,
    stream: boolean,
    queueSet: number,
    rcvBuf: number,
    sndBuf: number,
  ): this {
    this.guest = guest;
    this.sid = sid;
    this.bid = bid;
    this.stream = stream;
    this.queueSet = queueSet;
    this.rcvBuf = rcvBuf;
    this.sndBuf = sndBuf;
    this.uncredited = 0;
    this.streamOffset = 0;
    this.interest = 0;
    this.lastReported = 0;
    this.eofSent = false;
    this.errSent = false;
    this.connecting = null;
    this.connectEvent = false;
    this.shutdownReq = null;
    this.listening = false;
    this.connected = false;
    this.inDirty = false;
    this.closed = false;
    return this;
  }

  get reserved(): number {
    return this.rcvBuf + this.sndBuf;
  }
}

/** Lazily claims producer slots, publishes on flush. */
class RingWriter {
  #avail = 0;
  #used = 0;
  published = 0;
  constructor(readonly ring: RingProducer) {}
  /** Byte offset of the next free slot in `ring.view`, or -1 when the ring is full. */
  next(): number {
    if (this.#used === this.#avail) {
      if (this.#used > 0) this.flush();
      this.#avail = this.ring.claim(64);
      if (this.#avail === 0) return -1;
    }
    return this.ring.slot(this.#used++);
  }
  /** True when at least one slot is free (claims it for the next `next()`). */
  hasRoom(): boolean {
    if (this.#used < this.#avail) return true;
    if (this.#used > 0) this.flush();
    this.#avail = this.ring.claim(64);
    return this.#avail > 0;
  }
  flush(): void {
    if (this.#used > 0) {
      this.ring.publish(this.#used);
      this.published += this.#used;
    }
    this.#used = 0;
    this.#avail = 0;
  }
}

class QueueSetState {
  readonly completions: RingWriter;
  readonly receive: RingWriter;
  /** Completions waiting for room on the completion ring (FIFO). */
  readonly outq: Nqe[] = [];
  constructor(readonly rings: NsmQueueSet, readonly index: number) {
    this.completions = new RingWriter(rings.completion);
    this.receive = new RingWriter(rings.receive);
  }
}

/** One attached guest. */
class Guest {
  /** By guest socket id (an IntMap: a Map that empties rehashes, once per TCP_CRR connection). */
  readonly socks = new IntMap<GSock>();
  readonly qs: QueueSetState[];
  readonly dirty: GSock[] = [];
  /** Sockets waiting for receive-ring room or a free chunk. */
  readonly starved = new Set<GSock>();
  readonly counters = zeroCounters();
  nextSid = 1;
  bufferBytes = 0;
  /** Blocking ACCEPTs waiting over all sockets. */
  parkedAccepts = 0;
  stalledSince = -1;
  bad = 0;
  /**
   * Stream bytes taken from this guest's SENDs [0] and delivered to it [1]. In a Float64Array:
   * a number field that passed 2^31 cost a heap number per update.
   */
  readonly bytes = new Float64Array(2);
  /** Views of whole send chunks by chunk index, reused by #pushSend (see #sendView). */
  readonly sendViews: (Uint8Array | undefined)[];
  /** Views of own receive chunks by chunk index, reused by #deliver (see #chunkView). */
  readonly recvViews: (Uint8Array | undefined)[];
  dead = false;
  deadReason = "";
  pid = 0;
  constructor(
    readonly id: number,
    readonly dev: NsmDevice,
    readonly bell: Doorbell,
    readonly ctl: Deno.Conn,
  ) {
    this.qs = dev.queueSets.map((r, i) => new QueueSetState(r, i));
    const chunks = Math.ceil(dev.data.bytes.length / dev.data.chunkSize);
    this.sendViews = new Array(chunks);
    this.recvViews = new Array(chunks);
  }
}

function cloneNqe(src: Nqe, dst: Nqe): Nqe {
  dst.op = src.op;
  dst.flags = src.flags;
  dst.queueSet = src.queueSet;
  dst.socketId = src.socketId;
  dst.requestId = src.requestId;
  dst.result = src.result;
  dst.dataOffset = src.dataOffset;
  dst.dataLength = src.dataLength;
  dst.arg0 = src.arg0;
  dst.arg1 = src.arg1;
  dst.arg2 = src.arg2;
  // The address as four words: TypedArray.prototype.set is a builtin call per copy.
  const s = src.addrView, d = dst.addrView;
  d.setUint32(0, s.getUint32(0, true), true);
  d.setUint32(4, s.getUint32(4, true), true);
  d.setUint32(8, s.getUint32(8, true), true);
  d.setUint32(12, s.getUint32(12, true), true);
  dst.port = src.port;
  dst.family = src.family;
  dst.aux = src.aux;
  return dst;
}

let instances = 0;
/**
 * Random per-module-instance tag in device names: `deno test --parallel` runs test files as
 * workers of one process (one Deno.pid), each with its own `instances` counter, so pid and
 * counter alone gave two ServiceLibs the same /dev/shm name, and `replaceStale` let one delete
 * the other's live device and doorbell.
 */
const isolateTag = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);

/** Bytes of `s`'s parked SENDs not yet taken by the backend. */
function pendingBytes(s: GSock): number {
  let n = 0;
  for (let i = 0; i < s.sends.length; i++) {
    const p = s.sends.at(i)!;
    n += p.req.dataLength - (p.taken > 0 ? p.taken : 0);
  }
  return n;
}

/** Thrown when the control socket cannot be served (in use, no permission). */
export class ServiceLibError extends Error {
  /** Builds the error; the message says what to do. */
  constructor(message: string) {
    super(message);
    this.name = "ServiceLibError";
  }
}

/** The ServiceLib; see the module comment. */
export class ServiceLib implements Pollable {
  /** Name for logs. */
  readonly name = "servicelib";
  /** The control socket path. */
  readonly ctlPath: string;
  /** Totals. */
  get stats(): ServiceLibStats {
    const s = this.#stats;
    s.bytesFromGuests = this.#bytes[0]!;
    s.bytesToGuests = this.#bytes[1]!;
    return s;
  }
  /** Stream bytes from guests [0] and to them [1] (see `Guest.bytes`). */
  readonly #bytes = new Float64Array(2);
  readonly #stats: ServiceLibStats = {
    attached: 0,
    detached: {},
    attachFailed: 0,
    requests: 0,
    completions: 0,
    notifications: 0,
    bytesToGuests: 0,
    bytesFromGuests: 0,
    rejected: zeroCounters(),
  };
  readonly #backend: SocketBackend;
  readonly #o: Required<Omit<ServiceLibOptions, "log" | "ctlPath" | "onGuest" | "onSocket">>;
  /** What `listen()`'s stale-device sweep of `deviceDir` removed (null before `listen()`). */
  staleSweep: SweepResult | null = null;
  /** Called when a guest attached or detached (see `ServiceLibOptions.onGuest`). */
  onGuest: ServiceLibOptions["onGuest"];
  /** Called when a guest's socket exists in the backend (see `ServiceLibOptions.onSocket`). */
  onSocket: ServiceLibOptions["onSocket"];
  #ops: ControlServer = new ControlServer(
    new ControlHandler({ stacks: [], clock: () => this.#now }),
  );
  #sq: SlaSendQueue<GSock> | null = null;
  readonly #log: (line: string) => void;
  readonly #guests: Guest[] = [];
  readonly #byBid = new IntMap<GSock>();
  /** Decode target of the request loop; `#park` may trade it for a pooled one (no copy). */
  #req = new Nqe();
  readonly #out = new Nqe();
  readonly #addr = new SockAddr();
  readonly #pool: Nqe[] = [];
  readonly #parkedPool: Parked[] = [];
  /** Closed sockets for reuse by #adopt (TCP_CRR closes one per connection). */
  readonly #sockPool: GSock[] = [];
  readonly #sendTmp = new Parked(new Nqe());
  #listener: Deno.Listener | null = null;
  #nextGuest = 1;
  readonly #instance = ++instances;
  #now: Instant = 0;
  #kick: (() => void) | null = null;
  #closed = false;

  /** Serves guests on `backend`; call `listen()` to open the control socket. */
  constructor(backend: SocketBackend, options: ServiceLibOptions = {}) {
    this.#backend = backend;
    this.ctlPath = options.ctlPath ?? defaultCtlPath();
    this.#log = options.log ?? (() => {});
    this.onGuest = options.onGuest;
    this.onSocket = options.onSocket;
    this.#o = {
      deviceDir: options.deviceDir ?? "/dev/shm",
      ringCapacity: options.ringCapacity ?? 1024,
      chunkSize: options.chunkSize ?? 16384,
      chunksPerHalf: options.chunksPerHalf ?? 512,
      maxGuests: options.maxGuests ?? 64,
      maxSocketsPerGuest: options.maxSocketsPerGuest ?? 4096,
      // 4096 sockets at the default 256 KiB + 256 KiB: the socket limit binds first unless a
      // guest enlarges its buffers.
      maxBufferBytesPerGuest: options.maxBufferBytesPerGuest ?? 2048 * 1024 * 1024,
      defaultRcvBuf: options.defaultRcvBuf ?? 256 * 1024,
      batch: options.batch ?? 64,
      socketBudget: options.socketBudget ?? 256,
      stallNs: options.stallNs ?? 5 * SECOND,
      maxBadNqes: options.maxBadNqes ?? 100_000,
      attachTimeoutMs: options.attachTimeoutMs ?? 5000,
    };
  }

  /** The backend in use. */
  get backend(): SocketBackend {
    return this.#backend;
  }

  /** Guests attached now. */
  get guests(): GuestInfo[] {
    return this.#guests.filter((g) => !g.dead).map((g) => ({
      id: g.id,
      pid: g.pid,
      device: g.dev.path,
      sockets: g.socks.size,
      bufferBytes: g.bufferBytes,
      counters: { ...g.counters },
    }));
  }

  /**
   * Opens the control socket (creating its directory; a stale socket file nobody serves is
   * replaced), removes device files and doorbells of dead NSMs from `deviceDir`
   * (`sweepStaleDevices`, result in `staleSweep`, one log line per file) and starts accepting
   * guests in the background. Throws `ServiceLibError` when another NSM serves the path.
   */
  async listen(): Promise<void> {
    const path = this.ctlPath;
    const dir = path.slice(0, path.lastIndexOf("/"));
    if (dir) await Deno.mkdir(dir, { recursive: true });
    try {
      await Deno.lstat(path);
      let live = false;
      try {
        const c = await Deno.connect({ transport: "unix", path });
        c.close();
        live = true;
      } catch {
        // nobody listens: a leftover of a dead NSM
      }
      if (live) {
        throw new ServiceLibError(
          `control socket ${path} is served by another NSM; stop it or pass another --ctl path`,
        );
      }
      await Deno.remove(path);
    } catch (e) {
      if (e instanceof ServiceLibError) throw e;
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    // Devices of NSMs killed without cleanup would hold their tmpfs memory until reboot.
    this.staleSweep = sweepStaleDevices({ dir: this.#o.deviceDir, log: this.#log });
    this.#listener = Deno.listen({ transport: "unix", path });
    this.#acceptLoop(this.#listener);
  }

  async #acceptLoop(l: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch {
        return; // listener closed
      }
      // One socket for guests and operators: the client's first line says which it is.
      dispatchShared(conn, this.#ops, (c) => this.#attach(c)).catch((e) => {
        this.#stats.attachFailed++;
        this.#log(`attach failed: ${e instanceof Error ? e.message : String(e)}`);
        try {
          conn.close();
        } catch {
          // already closed
        }
      });
    }
  }

  async #attach(conn: Deno.Conn): Promise<void> {
    const enc = new TextEncoder();
    const live = this.#guests.filter((g) => !g.dead).length;
    if (live >= this.#o.maxGuests || this.#closed) {
      await conn.write(enc.encode(
        JSON.stringify({ error: `the NSM serves ${this.#o.maxGuests} guests already` }) + "\n",
      ));
      throw new ServiceLibError("guest limit reached");
    }
    const id = this.#nextGuest++;
    const dev = NsmDevice.create({
      name: `nk-${Deno.pid}-${isolateTag}-${this.#instance}-g${id}`,
      ringCapacity: this.#o.ringCapacity,
      chunkSize: this.#o.chunkSize,
      chunksPerHalf: this.#o.chunksPerHalf,
      dir: this.#o.deviceDir,
      bellDir: this.#o.deviceDir,
      hugePages: "never",
      replaceStale: true,
    });
    let bell: Doorbell;
    try {
      await conn.write(
        enc.encode(JSON.stringify({ guest: id, device: dev.path, version: CTL_VERSION }) + "\n"),
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((r) =>
        timer = setTimeout(() => r(null), this.#o.attachTimeoutMs)
      );
      const got = await Promise.race([dev.acceptGuest(), timeout]);
      clearTimeout(timer);
      if (got === null) throw new ServiceLibError(`guest ${id} did not attach to ${dev.path}`);
      bell = got;
      // close() may have run while this attach waited; it only tears down listed guests.
      if (this.#closed) {
        bell.close();
        throw new ServiceLibError(`guest ${id} attached while the NSM was shutting down`);
      }
    } catch (e) {
      dev.close();
      throw e;
    }
    const g = new Guest(id, dev, bell, conn);
    g.pid = dev.guestPid;
    this.#guests.push(g);
    this.#stats.attached++;
    this.#log(`guest ${id} attached: pid ${g.pid}, ${dev.path}`);
    this.onGuest?.("attach", id, this.#now);
    this.#watchCtl(g);
    this.#wake();
  }

  async #watchCtl(g: Guest): Promise<void> {
    const buf = new Uint8Array(256);
    for (;;) {
      let n: number | null;
      try {
        n = await g.ctl.read(buf);
      } catch {
        n = null;
      }
      if (n === null) {
        if (!g.dead) {
          g.deadReason ||= "control-closed";
          g.dead = true; // torn down by the next poll, inside the loop
          this.#wake();
        }
        return;
      }
    }
  }

  #wake(): void {
    const k = this.#kick;
    this.#kick = null;
    k?.();
  }

  // ------------------------------------------------------------------------------------------
  // The loop

  /** Serves every guest once: rings, ready sockets, teardown of the dead. True when it worked. */
  poll(now: Instant): boolean {
    this.#now = now;
    let busy = this.#backend.poll(now);
    if (this.#backend.drainReady(this.#onReady) > 0) busy = true;
    if (this.#sq !== null && this.#sq.drain(now, this.#slaSend) > 0) busy = true;
    const guests = this.#guests;
    for (let i = 0; i < guests.length; i++) {
      const g = guests[i]!;
      if (!g.dead && g.bell.closed) {
        g.deadReason ||= "doorbell-closed";
        g.dead = true;
      }
      if (g.dead) {
        this.#teardown(g);
        guests.splice(i--, 1);
        busy = true;
        continue;
      }
      if (this.#serve(g, now)) busy = true;
      if (g.dead) {
        this.#teardown(g);
        guests.splice(i--, 1);
      }
    }
    return busy;
  }

  readonly #onReady = (bid: number, _ev: number): void => {
    const s = this.#byBid.get(bid);
    if (s !== undefined) this.#markDirty(s);
  };

  #markDirty(s: GSock): void {
    if (s.inDirty || s.closed) return;
    s.inDirty = true;
    s.guest.dirty.push(s);
  }

  /** The earliest stall deadline, or now while sockets wait for service. */
  pollAt(): Instant {
    this.pollAtInto(AT, 0);
    return AT[0]!;
  }

  /**
   * `out[i] = pollAt()` (see `Pollable.pollAtInto`): nothing returned, and each candidate
   * compared with the cell rather than merged into a local (which boxes it).
   */
  pollAtInto(out: Float64Array, i: number): void {
    out[i] = NEVER;
    // Indexed loops in the per-pass functions: an array iterator is an allocation wherever the
    // loop runs unoptimized.
    const guests = this.#guests;
    for (let k = 0; k < guests.length; k++) {
      const g = guests[k]!;
      if (g.dead || g.dirty.length > 0) {
        out[i] = this.#now;
        return;
      }
      if (g.stalledSince >= 0) {
        const t = g.stalledSince + this.#o.stallNs;
        if (t < out[i]!) out[i] = t;
      }
    }
    if (this.#sq !== null) {
      const t = this.#sq.nextAt(this.#now);
      if (t < out[i]!) out[i] = t;
    }
    const b = this.#backend.pollAt();
    if (b < out[i]!) out[i] = b;
  }

  /** True when some guest has requests the loop can take now (the idle wake predicate). */
  hasWork(): boolean {
    const guests = this.#guests;
    for (let i = 0; i < guests.length; i++) {
      const g = guests[i]!;
      if (g.dead || g.bell.closed || g.dirty.length > 0) return true;
      for (let k = 0; k < g.qs.length; k++) {
        const q = g.qs[k]!;
        const r = q.rings;
        if (q.outq.length > 0 || r.job.peekFill() > 0 || r.send.peekFill() > 0) {
          if (r.completion.claim(1) > 0) return true;
        }
        if (g.starved.size > 0 && r.receive.claim(1) > 0 && g.dev.data.freeChunks > 0) return true;
      }
    }
    return false;
  }

  /**
   * A link whose `wait(ms)` also ends when a guest rings its doorbell, attaches or detaches:
   * give it to `NsmRuntime` instead of the bare link so the idle loop sleeps on everything.
   * `others`: more ServiceLibs served by the same loop (several stacks in one process).
   */
  wrapLink(link: WaitableLink, others: readonly ServiceLib[] = []): WaitableLink {
    return new GuestWakeLink(link, [this, ...others]);
  }

  /** @internal Live doorbells (for the idle wait). */
  liveBells(into: Doorbell[]): void {
    const guests = this.#guests;
    for (let i = 0; i < guests.length; i++) {
      const g = guests[i]!;
      if (!g.dead && !g.bell.closed) into.push(g.bell);
    }
  }

  /** @internal Arms the wake-up used when a guest attaches or detaches during a sleep. */
  setKick(k: (() => void) | null): void {
    this.#kick = k;
  }

  #serve(g: Guest, now: Instant): boolean {
    let busy = false;
    const batch = this.#o.batch;
    const qs = g.qs;
    for (let k = 0; k < qs.length; k++) {
      const q = qs[k]!;
      const r = q.rings;
      if (r.job.fault || r.send.fault || r.completion.fault || r.receive.fault) {
        this.#count(g, "ring-fault");
        g.deadReason = `ring-fault: ${
          (r.job.fault ?? r.send.fault ?? r.completion.fault ?? r.receive.fault)!.message
        }`;
        g.dead = true;
        return true;
      }
      if (this.#flushOutq(q) > 0) busy = true;
      // Consume only what can be completed right away (README rule); parked requests are few.
      if (q.outq.length === 0) {
        let n = r.job.available(batch);
        if (n > 0) {
          busy = true;
          // Batched ring path: slot offsets step by 64 to the wrap, no slot() call per NQE.
          const run = r.job.contiguous(n);
          let slot = r.job.firstWord << 2;
          for (let i = 0; i < n; i++, slot += SLOT_SIZE) {
            if (i === run) slot = RING_HEADER_SIZE;
            if (r.job.view.getUint8(slot) === NqeOp.NOP && this.#nopFast(g, q, r.job.view, slot)) {
              continue;
            }
            decodeNqe(r.job.view, slot, this.#req);
            this.#dispatch(g, q, this.#req, r.job.view.getUint8(slot + NQE_RESERVED), false, now);
          }
          r.job.release(n);
          this.#flushOutq(q);
        }
        n = q.outq.length === 0 ? r.send.available(batch) : 0;
        if (n > 0) {
          busy = true;
          const run = r.send.contiguous(n);
          let slot = r.send.firstWord << 2;
          for (let i = 0; i < n; i++, slot += SLOT_SIZE) {
            if (i === run) slot = RING_HEADER_SIZE;
            decodeNqe(r.send.view, slot, this.#req);
            this.#dispatch(g, q, this.#req, r.send.view.getUint8(slot + NQE_RESERVED), true, now);
          }
          r.send.release(n);
          this.#flushOutq(q);
        }
      }
      // Stall detection: completions wait and the guest does not drain its completion ring.
      if (q.outq.length > 0) {
        if (g.stalledSince < 0) g.stalledSince = now;
        else if (now - g.stalledSince > this.#o.stallNs) {
          this.#count(g, "stalled");
          g.deadReason = "stalled: the completion ring was not drained";
          g.dead = true;
          return true;
        }
      } else g.stalledSince = -1;
    }
    if (g.bad > this.#o.maxBadNqes) {
      this.#count(g, "too-many-bad-nqes");
      g.deadReason = "too many rejected NQEs";
      g.dead = true;
      return true;
    }
    // Starved sockets get another chance once the ring or the chunks have room.
    if (g.starved.size > 0 && g.dev.data.freeChunks > 0) {
      let room = false;
      for (const q of g.qs) if (q.receive.hasRoom()) room = true;
      if (room) {
        for (const s of g.starved) this.#markDirty(s);
        g.starved.clear();
      }
    }
    // Ready sockets.
    const dirty = g.dirty;
    if (dirty.length > 0) {
      busy = true;
      const n = dirty.length < this.#o.socketBudget ? dirty.length : this.#o.socketBudget;
      for (let i = 0; i < n; i++) {
        const s = dirty[i]!;
        s.inDirty = false;
        if (!s.closed) this.#service(s, now);
        else this.#poolSock(s); // closed while listed here (#closeSock left it)
      }
      // Compact in place: splice() would allocate an array of the removed entries.
      const left = dirty.length - n;
      for (let j = 0; j < left; j++) dirty[j] = dirty[j + n]!;
      // pop(), not `length = left`: at 0 V8 drops the backing store and the next push
      // allocates a new one; pop() keeps the capacity.
      while (dirty.length > left) dirty.pop();
    }
    let rang = false;
    for (let k = 0; k < qs.length; k++) {
      const q = qs[k]!;
      this.#flushOutq(q);
      q.receive.flush();
      if (q.completions.published > 0 || q.receive.published > 0) {
        q.completions.published = 0;
        q.receive.published = 0;
        rang = true;
      }
    }
    // Releases of job/send slots must ring too (the guest may wait for room).
    if (rang || busy) g.bell.notify();
    return busy;
  }

  #count(g: Guest, c: GuestCounter): void {
    g.counters[c]++;
    this.#stats.rejected[c]++;
  }

  #flushOutq(q: QueueSetState): number {
    const out = q.outq;
    let i = 0;
    while (i < out.length) {
      const slot = q.completions.next();
      if (slot < 0) break;
      const n = out[i++]!;
      encodeNqe(q.rings.completion.view, slot, n);
      this.#pool.push(n);
      this.#stats.completions++;
    }
    if (i > 0) {
      // Compact in place: splice() would allocate an array of the removed entries.
      const left = out.length - i;
      for (let j = 0; j < left; j++) out[j] = out[j + i]!;
      while (out.length > left) out.pop(); // keeps the capacity (see #serve)
    }
    q.completions.flush();
    return i;
  }

  /**
   * Completes `req` with `result` and `flags` and no extras: written straight into the
   * completion ring (published by the next `#flushOutq`) when nothing is queued before it and
   * the ring has room, so the common request allocates nothing and copies no `Nqe`; otherwise
   * queued like `#complete`. Only where a `#serve` of the guest follows in the same poll (it
   * publishes at its end): its request path and ready sockets, and the SLA drain before it.
   * A parked SEND's completion goes this way too (no copy of the parked Nqe).
   */
  #completeNow(q: QueueSetState, req: Nqe, result: number, flags: number): void {
    if (q.outq.length === 0) {
      const slot = q.completions.next();
      if (slot >= 0) {
        encodeCompletion(q.rings.completion.view, slot, req, result, flags);
        this.#stats.completions++;
        return;
      }
    }
    this.#complete(q, req, result, flags);
  }

  /**
   * A well-formed NOP completed slot to slot, without decoding the request into an Nqe: the
   * words `encodeCompletion` would write (op, COMPLETION, queue set, socket, request id,
   * result 0, data offset/length echoed, the rest zero). False (nothing done) when the NOP
   * needs the general path: bad flags or queue set (rejected there), or completions waiting.
   */
  #nopFast(g: Guest, q: QueueSetState, v: DataView, at: number): boolean {
    if (
      (v.getUint8(at + NQE_FLAGS) & ~NOP_FLAGS) !== 0 || v.getUint8(at + NQE_RESERVED) !== 0 ||
      v.getUint16(at + NQE_QUEUE_SET, true) !== q.index || q.outq.length !== 0
    ) return false;
    const out = q.completions.next();
    if (out < 0) return false;
    const c = q.rings.completion.view;
    c.setUint32(out, NqeOp.NOP | (NqeFlag.COMPLETION << 8) | (q.index << 16), true);
    c.setUint32(out + NQE_SOCKET, v.getUint32(at + NQE_SOCKET, true), true);
    c.setUint32(out + NQE_REQUEST, v.getUint32(at + NQE_REQUEST, true), true);
    c.setInt32(out + NQE_RESULT, 0, true);
    c.setUint32(out + NQE_DATA_OFFSET, v.getUint32(at + NQE_DATA_OFFSET, true), true);
    c.setUint32(out + NQE_DATA_LENGTH, v.getUint32(at + NQE_DATA_LENGTH, true), true);
    for (let i = NQE_ARG0; i < NQE_SIZE; i += 4) c.setUint32(out + i, 0, true);
    g.counters.nqes++;
    this.#stats.requests++;
    this.#stats.completions++;
    return true;
  }

  /** Queues a completion of `req` (copied) with `result` and `flags`; returns it for extras. */
  #complete(q: QueueSetState, req: Nqe, result: number, flags: number): Nqe {
    // Only what a completion echoes is copied; the rest is zero (no address copy and fill).
    const c = this.#pool.pop() ?? new Nqe();
    c.op = req.op;
    c.flags = flags | NqeFlag.COMPLETION;
    c.queueSet = req.queueSet;
    c.socketId = req.socketId;
    c.requestId = req.requestId;
    c.result = result;
    c.dataOffset = req.dataOffset;
    c.dataLength = req.dataLength;
    c.arg0 = 0;
    c.arg1 = 0;
    c.arg2 = 0;
    const a = c.addrView;
    a.setUint32(0, 0, true);
    a.setUint32(4, 0, true);
    a.setUint32(8, 0, true);
    a.setUint32(12, 0, true);
    c.port = 0;
    c.family = 0;
    c.aux = 0;
    q.outq.push(c);
    return c;
  }

  #reject(g: Guest, q: QueueSetState, req: Nqe, errno: number, why: GuestCounter): void {
    this.#count(g, why);
    g.bad++;
    this.#completeNow(q, req, -errno, 0);
  }

  #dispatch(
    g: Guest,
    q: QueueSetState,
    req: Nqe,
    reserved: number,
    sendRing: boolean,
    now: Instant,
  ): void {
    g.counters.nqes++;
    this.#stats.requests++;
    const op = req.op;
    const okOnRing = sendRing
      ? op === NqeOp.SEND || op === NqeOp.SENDTO
      : op <= NqeOp.POLL && op !== NqeOp.SEND && op !== NqeOp.RECV && op !== NqeOp.EVENT;
    if (!okOnRing) return this.#reject(g, q, req, Errno.ENOSYS, "bad-op");
    if ((req.flags & ~REQUEST_FLAGS) !== 0 || reserved !== 0) {
      return this.#reject(g, q, req, Errno.EINVAL, "bad-flags");
    }
    if (req.queueSet !== q.index) return this.#reject(g, q, req, Errno.EINVAL, "bad-queue-set");
    if ((req.flags & NqeFlag.OPEN) !== 0) {
      // OPEN belongs to CONNECT alone, and names no socket yet.
      if (op !== NqeOp.CONNECT || req.socketId !== 0) {
        return this.#reject(g, q, req, Errno.EINVAL, "bad-flags");
      }
      return this.#opOpenConnect(g, q, req, now);
    }
    switch (op) {
      case NqeOp.NOP:
        this.#completeNow(q, req, 0, 0);
        return;
      case NqeOp.SOCKET:
        return this.#opSocket(g, q, req);
      case NqeOp.RECV_CREDIT:
        return this.#opCredit(g, q, req);
    }
    const s = g.socks.get(req.socketId);
    if (s === undefined || s.closed) {
      if (op === NqeOp.SEND || op === NqeOp.SENDTO) {
        // Validate the chunk even so: a valid one is handed back, a bad one is -EFAULT.
        if (g.dev.data.borrow(req.dataOffset, req.dataLength) !== null) {
          return this.#reject(g, q, req, Errno.EFAULT, "bad-data");
        }
        g.dev.data.giveBack(req.dataOffset);
        this.#count(g, "bad-socket");
        g.bad++;
        this.#completeNow(q, req, -Errno.EBADF, NqeFlag.CHUNK_RETURNED);
        return;
      }
      return this.#reject(g, q, req, Errno.EBADF, "bad-socket");
    }
    if (s.queueSet !== q.index) return this.#reject(g, q, req, Errno.EINVAL, "bad-queue-set");
    const b = this.#backend;
    switch (op) {
      case NqeOp.BIND: {
        this.#toAddr(req);
        const r = b.bind(s.bid, this.#addr);
        const c = this.#complete(q, req, r, 0);
        if (r === 0) this.#withLocal(c, s.bid);
        return;
      }
      case NqeOp.LISTEN: {
        const r = b.listen(s.bid, req.arg0);
        const c = this.#complete(q, req, r, 0);
        if (r === 0) {
          s.listening = true;
          this.#withLocal(c, s.bid);
          this.#markDirty(s);
        }
        return;
      }
      case NqeOp.ACCEPT: {
        if (!s.listening) return void this.#completeNow(q, req, -Errno.EINVAL, 0);
        if (s.accepts.length > 0 || !this.#tryAccept(g, q, s, req)) {
          if (req.flags & NqeFlag.NONBLOCK) {
            this.#completeNow(q, req, -Errno.EAGAIN, 0);
          } else if (
            s.accepts.length >= ACCEPT_QUEUE_MAX || g.parkedAccepts >= PARKED_ACCEPTS_PER_GUEST
          ) {
            // Parked requests cost NSM memory: bounded per socket and per guest.
            this.#count(g, "limit-memory");
            this.#completeNow(q, req, -Errno.ENOBUFS, 0);
          } else {
            s.accepts.push(this.#park(req));
            g.parkedAccepts++;
          }
        }
        return;
      }
      case NqeOp.CONNECT: {
        if (s.connecting !== null) return void this.#completeNow(q, req, -Errno.EALREADY, 0);
        return this.#connect(q, s, req, now);
      }
      case NqeOp.SEND:
      case NqeOp.SENDTO:
        return this.#opSend(g, q, s, req, now);
      case NqeOp.SHUTDOWN: {
        if (req.arg0 > 2) return void this.#completeNow(q, req, -Errno.EINVAL, 0);
        if (s.sends.length > 0 && req.arg0 !== 0) {
          // Queued data first, then the FIN: finish when the parked sends are taken.
          if (s.shutdownReq !== null) return void this.#completeNow(q, req, -Errno.EALREADY, 0);
          s.shutdownReq = this.#park(req);
          return;
        }
        this.#completeNow(q, req, b.shutdown(s.bid, req.arg0, now), 0);
        this.#markDirty(s);
        return;
      }
      case NqeOp.CLOSE: {
        this.#closeSock(s, q, now, false);
        this.#completeNow(q, req, 0, 0);
        return;
      }
      case NqeOp.SETSOCKOPT:
        return this.#opSetsockopt(g, q, s, req, now);
      case NqeOp.GETSOCKOPT: {
        const v = b.getsockopt(s.bid, req.arg0, req.arg1);
        if (v < 0) this.#completeNow(q, req, v, 0);
        else this.#complete(q, req, 0, 0).arg2 = v;
        return;
      }
      case NqeOp.POLL: {
        s.interest = req.arg0 & INTERESTING;
        const ev = b.events(s.bid);
        s.lastReported = ev & s.interest;
        this.#completeNow(q, req, ev, 0);
        return;
      }
    }
  }

  /** Extension: BIND/LISTEN/CONNECT completions carry the local address (getsockname). */
  #withLocal(c: Nqe, bid: number): void {
    const a = this.#addr;
    if (this.#backend.localAddr(bid, a) !== 0) return;
    c.family = a.family;
    c.addr.set(a.addr);
    c.port = a.port;
    c.aux = a.scopeId;
  }

  #toAddr(req: Nqe): void {
    const a = this.#addr;
    a.family = req.family;
    a.addr.set(req.addr);
    a.port = req.port;
    a.scopeId = req.aux;
  }

  #opSocket(g: Guest, q: QueueSetState, req: Nqe): void {
    const s = this.#newSocket(g, q, req);
    this.#completeNow(q, req, typeof s === "number" ? s : s.sid, 0);
  }

  /** SOCKET's work: the new socket, or -errno (-EMFILE, -ENOBUFS, the backend's) if none. */
  #newSocket(g: Guest, q: QueueSetState, req: Nqe): GSock | number {
    if (g.socks.size >= this.#o.maxSocketsPerGuest) {
      this.#count(g, "limit-sockets");
      return -Errno.EMFILE;
    }
    const rcv = this.#o.defaultRcvBuf;
    if (g.bufferBytes + 2 * rcv > this.#o.maxBufferBytesPerGuest) {
      this.#count(g, "limit-memory");
      return -Errno.ENOBUFS;
    }
    const bid = this.#backend.socket(req.arg0, req.arg1, req.arg2);
    if (bid < 0) return bid;
    const s = this.#adopt(g, bid, req.arg1 === SockType.STREAM, q.index);
    this.onSocket?.(g.id, bid, s.stream, this.#now);
    return s;
  }

  /**
   * CONNECT with `NqeFlag.OPEN`: SOCKET and CONNECT in one request (one guest round trip per
   * connection instead of two). The request's socketId becomes the new socket's, so every
   * completion of it (now, parked, or an abort) names the socket; a failure completes with
   * socketId 0 and closes the socket (here, or in `#service` for a parked one): nothing leaks.
   */
  #opOpenConnect(g: Guest, q: QueueSetState, req: Nqe, now: Instant): void {
    const s = this.#newSocket(g, q, req);
    if (typeof s === "number") return void this.#completeNow(q, req, s, 0);
    req.socketId = s.sid;
    this.#connect(q, s, req, now);
  }

  /** CONNECT's work on socket `s` (no connect in progress). */
  #connect(q: QueueSetState, s: GSock, req: Nqe, now: Instant): void {
    this.#toAddr(req);
    const r = this.#backend.connect(s.bid, this.#addr, now);
    if (r === -Errno.EINPROGRESS) {
      s.connected = true;
      if (req.flags & NqeFlag.NONBLOCK) {
        this.#completeNow(q, req, r, 0);
        s.connectEvent = true; // README: then an EVENT with OUT (or ERR)
        this.#markDirty(s);
      } else {
        s.connecting = this.#park(req);
        this.#markDirty(s);
      }
      return;
    }
    if (r < 0 && (req.flags & NqeFlag.OPEN) !== 0) {
      req.socketId = 0;
      this.#completeNow(q, req, r, 0);
      this.#closeSock(s, null, now, false);
      return;
    }
    if (r === 0) s.connected = true;
    this.#completeNow(q, req, r, 0);
    if (r === 0) this.#markDirty(s);
  }

  #adopt(g: Guest, bid: number, stream: boolean, qs: number): GSock {
    let sid = g.nextSid;
    while (g.socks.has(sid)) sid = sid >= 0x7fff_ffff ? 1 : sid + 1;
    g.nextSid = sid >= 0x7fff_ffff ? 1 : sid + 1;
    const snd = this.#backend.getsockopt(bid, SockLevel.SOL_SOCKET, SockOpt.SO_SNDBUF);
    const rcv = this.#o.defaultRcvBuf;
    const old = this.#sockPool.pop();
    const s = old !== undefined
      ? old.reset(g, sid, bid, stream, qs, rcv, snd > 0 ? snd : rcv)
      : new GSock(g, sid, bid, stream, qs, rcv, snd > 0 ? snd : rcv);
    g.socks.set(sid, s);
    g.bufferBytes += s.reserved;
    this.#byBid.set(bid, s);
    return s;
  }

  /** Keeps closed socket `s` for #adopt (not a dead guest's: its teardown drops them all). */
  #poolSock(s: GSock): void {
    if (!s.guest.dead && this.#sockPool.length < SOCK_POOL_MAX) this.#sockPool.push(s);
  }

  #opCredit(g: Guest, q: QueueSetState, req: Nqe): void {
    if (req.dataOffset !== 0xffff_ffff) {
      if (g.dev.data.reclaim(req.dataOffset) !== null) {
        return this.#reject(g, q, req, Errno.EFAULT, "bad-data");
      }
      if (g.starved.size > 0) {
        for (const s of g.starved) this.#markDirty(s);
        g.starved.clear();
      }
    }
    const s = g.socks.get(req.socketId);
    if (s === undefined || s.closed) return; // chunk return for a closed socket is fine
    const n = req.arg0 > s.uncredited ? s.uncredited : req.arg0;
    if (req.arg0 > s.uncredited) this.#count(g, "bad-credit");
    s.uncredited -= n;
    if (n > 0) this.#markDirty(s);
  }

  #opSetsockopt(g: Guest, q: QueueSetState, s: GSock, req: Nqe, now: Instant): void {
    const level = req.arg0, name = req.arg1, value = req.arg2;
    if (
      level === SockLevel.SOL_SOCKET && (name === SockOpt.SO_RCVBUF || name === SockOpt.SO_SNDBUF)
    ) {
      const v = value < 4096 ? 4096 : value > 64 * 1024 * 1024 ? 64 * 1024 * 1024 : value;
      const old = name === SockOpt.SO_RCVBUF ? s.rcvBuf : s.sndBuf;
      if (g.bufferBytes - old + v > this.#o.maxBufferBytesPerGuest) {
        this.#count(g, "limit-memory");
        return void this.#completeNow(q, req, -Errno.ENOBUFS, 0);
      }
      const r = this.#backend.setsockopt(s.bid, level, name, v, now);
      if (r === 0) {
        g.bufferBytes += v - old;
        if (name === SockOpt.SO_RCVBUF) s.rcvBuf = v;
        else s.sndBuf = v;
        this.#markDirty(s);
      }
      return void this.#completeNow(q, req, r, 0);
    }
    this.#completeNow(q, req, this.#backend.setsockopt(s.bid, level, name, value, now), 0);
  }

  /**
   * A parked copy of `req` (a SEND, CONNECT, ACCEPT or SHUTDOWN), from the pool: a fresh
   * Parked + Nqe is five objects (the Nqe's address bytes, their buffer and view), and a
   * blocking CONNECT parks once per connection.
   */
  #park(req: Nqe): Parked {
    const p = this.#parkedPool.pop() ?? new Parked(new Nqe());
    if (req === this.#req) {
      // The request loop's decode target: hand it over and decode the next NQE into the
      // pooled record's Nqe instead of copying every field (a bulk sender parks a SEND per
      // full send buffer). The loop reads `#req` afresh for every NQE.
      const spare = p.req;
      p.req = req;
      this.#req = spare;
    } else cloneNqe(req, p.req);
    p.taken = 0;
    return p;
  }

  /** Returns a parked request that has been completed (its Nqe was copied) to the pool. */
  #unpark(p: Parked): void {
    if (this.#parkedPool.length < PARKED_POOL_MAX) this.#parkedPool.push(p);
  }

  #opSend(g: Guest, q: QueueSetState, s: GSock, req: Nqe, now: Instant): void {
    const data = g.dev.data;
    if (data.borrow(req.dataOffset, req.dataLength) !== null) {
      return this.#reject(g, q, req, Errno.EFAULT, "bad-data");
    }
    if (this.#sq !== null && s.stream && s.sends.length === 0) {
      // SLAs on: every stream SEND waits for its guest's turn (the scheduler admits bytes).
      s.sends.push(this.#park(req));
      this.#sq.update(g.id, s, pendingBytes(s), now);
      return;
    }
    if (s.sends.length > 0) {
      // Keep the stream in order behind the parked ones.
      if (req.flags & NqeFlag.NONBLOCK) {
        data.giveBack(req.dataOffset);
        this.#completeNow(q, req, -Errno.EAGAIN, NqeFlag.CHUNK_RETURNED);
      } else {
        s.sends.push(this.#park(req));
        if (this.#sq !== null && s.stream) this.#sq.update(g.id, s, pendingBytes(s), now);
      }
      return;
    }
    // The common case finishes at once: a reused record instead of a Parked per SEND.
    const p = this.#sendTmp;
    p.req = req;
    p.taken = 0;
    if (this.#pushSend(s, p, now)) {
      data.giveBack(req.dataOffset);
      this.#completeNow(q, req, p.taken, NqeFlag.CHUNK_RETURNED);
      return;
    }
    if (req.flags & NqeFlag.NONBLOCK) {
      data.giveBack(req.dataOffset);
      this.#completeNow(q, req, p.taken > 0 ? p.taken : -Errno.EAGAIN, NqeFlag.CHUNK_RETURNED);
      return;
    }
    const parked = this.#park(req);
    parked.taken = p.taken;
    s.sends.push(parked);
  }

  /**
   * Pushes the rest of a send into the backend. True when finished (all taken, or failed:
   * `taken` then holds -errno); false when the backend has no room (retry on readiness).
   */
  #pushSend(s: GSock, p: Parked, now: Instant, budget = Infinity): boolean {
    const req = p.req;
    const bytes = s.guest.dev.data.bytes;
    const b = this.#backend;
    if (req.dataLength === 0) return true;
    // The grant as a small integer: `budget - r` with the default Infinity was re-boxed as a
    // heap number on every pass of the loop.
    const limited = budget !== Infinity;
    let left = limited ? budget : 0;
    while (p.taken < req.dataLength) {
      if (limited && left <= 0) return false; // the SLA's grant is used up; the rest waits
      const end = limited && req.dataLength - p.taken > left ? p.taken + left : req.dataLength;
      // A SEND goes over whole when it fits (its view is kept per chunk, see #sendView); one
      // taken in parts needed a view per part. Only a socket writable by the stack's own
      // measure (free >= half of what is queued) takes a part: a buffer under three chunks.
      if (s.stream && b.sendSpace(s.bid) < end - p.taken) {
        if ((b.events(s.bid) & NqeEvent.OUT) === 0) return false;
      }
      const view = this.#sendView(s.guest, bytes, req.dataOffset + p.taken, end - p.taken);
      let r: number;
      if (req.op === NqeOp.SENDTO && !s.stream && req.family !== 0) {
        this.#toAddr(req);
        r = b.sendTo(s.bid, view, this.#addr, now);
      } else r = b.send(s.bid, view, (req.flags & NqeFlag.MORE) !== 0, now);
      if (r === -Errno.EAGAIN && s.stream) return false;
      if (r < 0) {
        // A datagram the link has no room for is dropped, as Linux does with ENOBUFS.
        if (r === -Errno.EAGAIN) r = -Errno.ENOBUFS;
        p.taken = p.taken > 0 ? p.taken : r;
        return true;
      }
      p.taken += r;
      if (limited) left -= r;
      this.#bytes[0] = this.#bytes[0]! + r;
      s.guest.bytes[0] = s.guest.bytes[0]! + r;
      if (!s.stream) break; // one datagram per request
    }
    return true;
  }

  /**
   * `bytes[off, off + len)` for a backend send. A range starting at a chunk boundary (a whole
   * SEND, or its first part) gets the view kept for that chunk while the length repeats: a
   * bulk sender reuses its chunks with the same lengths, and a fresh view per SEND was the
   * ServiceLib's largest allocation per frame. Ranges inside a chunk (the rest of a SEND the
   * socket took in parts) still get their own view.
   */
  #sendView(g: Guest, bytes: Uint8Array, off: number, len: number): Uint8Array {
    return this.#chunkView(g.sendViews, bytes, g.dev.data.chunkSize, off, len);
  }

  /**
   * `bytes[off, off + len)`, kept in `t` by chunk index for reuse while the length repeats
   * (see `#sendView`; `#deliver` asks for a whole-chunk view per receive attempt, and most
   * attempts of a short connection find nothing to read).
   */
  #chunkView(
    t: (Uint8Array | undefined)[],
    bytes: Uint8Array,
    cs: number,
    off: number,
    len: number,
  ): Uint8Array {
    if ((off & (cs - 1)) !== 0) return bytes.subarray(off, off + len);
    const k = off / cs;
    const v = t[k];
    if (
      v !== undefined && v.length === len && v.byteOffset === bytes.byteOffset + off &&
      v.buffer === bytes.buffer
    ) return v;
    const nv = bytes.subarray(off, off + len);
    t[k] = nv;
    return nv;
  }

  #tryAccept(g: Guest, q: QueueSetState, s: GSock, req: Nqe): boolean {
    const peer = this.#addr;
    for (;;) {
      if (g.socks.size >= this.#o.maxSocketsPerGuest) {
        this.#count(g, "limit-sockets");
        this.#completeNow(q, req, -Errno.EMFILE, 0);
        return true;
      }
      if (g.bufferBytes + 2 * this.#o.defaultRcvBuf > this.#o.maxBufferBytesPerGuest) {
        this.#count(g, "limit-memory");
        this.#completeNow(q, req, -Errno.ENOBUFS, 0);
        return true;
      }
      const bid = this.#backend.accept(s.bid, peer);
      if (bid === -Errno.EAGAIN) return false;
      if (bid < 0) {
        if (bid === -Errno.ENOBUFS) continue; // backend refused one; look for the next
        this.#complete(q, req, bid, 0);
        return true;
      }
      const c = this.#adopt(g, bid, true, s.queueSet);
      this.onSocket?.(g.id, bid, true, this.#now);
      c.connected = true;
      const done = this.#complete(q, req, c.sid, 0);
      done.family = peer.family;
      done.addr.set(peer.addr);
      done.port = peer.port;
      done.aux = peer.scopeId;
      this.#markDirty(c);
      return true;
    }
  }

  /** Delivers what is due for a ready socket: parked requests, data, EOF/errors, events. */
  #service(s: GSock, now: Instant): void {
    const g = s.guest;
    const q = g.qs[s.queueSet]!;
    const b = this.#backend;
    if (s.connecting !== null) {
      const ev = b.events(s.bid);
      if (ev & (NqeEvent.OUT | NqeEvent.ERR | NqeEvent.HUP)) {
        let err = 0;
        if (ev & NqeEvent.ERR || !(ev & NqeEvent.OUT)) {
          err = b.getsockopt(s.bid, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR);
          if (err <= 0) err = Errno.ECONNREFUSED;
          s.errSent = true; // the completion carries the error
        }
        const open = err !== 0 && (s.connecting.req.flags & NqeFlag.OPEN) !== 0;
        if (open) s.connecting.req.socketId = 0; // the guest never learns a closed socket's id
        const c = this.#complete(q, s.connecting.req, -err, 0);
        if (err === 0) this.#withLocal(c, s.bid);
        this.#unpark(s.connecting);
        s.connecting = null;
        if (err !== 0) s.connected = false;
        if (open) {
          // The socket was opened for this CONNECT alone: close it, or it leaks.
          this.#closeSock(s, null, now, false);
          return;
        }
      }
    }
    if (s.connectEvent) {
      const ev = b.events(s.bid);
      if (ev & (NqeEvent.OUT | NqeEvent.ERR | NqeEvent.HUP)) {
        let err = 0;
        if (!(ev & NqeEvent.OUT)) {
          err = b.getsockopt(s.bid, SockLevel.SOL_SOCKET, SockOpt.SO_ERROR);
          if (err <= 0) err = Errno.ECONNREFUSED;
        }
        if (!this.#event(q, s, err === 0 ? NqeEvent.OUT : NqeEvent.ERR | NqeEvent.HUP, -err)) {
          g.starved.add(s);
          return;
        }
        s.connectEvent = false;
        if (err !== 0) s.errSent = true;
      }
    }
    while (s.accepts.length > 0) {
      const p = s.accepts[0]!;
      if (!this.#tryAccept(g, q, s, p.req)) break;
      s.accepts.shift();
      this.#unpark(p);
      g.parkedAccepts--;
    }
    if (this.#sq !== null && s.stream && s.sends.length > 0) {
      // Ready (maybe writable again): back into the SLA queue; drain() pushes the bytes.
      this.#sq.update(g.id, s, pendingBytes(s), now);
    } else {
      while (s.sends.length > 0) {
        const p = s.sends.peek()!;
        if (!this.#pushSend(s, p, now)) break;
        g.dev.data.giveBack(p.req.dataOffset);
        this.#completeNow(q, p.req, p.taken, NqeFlag.CHUNK_RETURNED);
        s.sends.shift();
        this.#unpark(p);
      }
    }
    if (s.sends.length === 0 && s.shutdownReq !== null) {
      this.#complete(q, s.shutdownReq.req, b.shutdown(s.bid, s.shutdownReq.req.arg0, now), 0);
      this.#unpark(s.shutdownReq);
      s.shutdownReq = null;
    }
    if (!this.#deliver(s, q, now)) {
      g.starved.add(s);
      return;
    }
    // POLL interest: an EVENT for every interest bit that turned true.
    if (s.interest !== 0) {
      const ev = b.events(s.bid) & s.interest;
      const rising = ev & ~s.lastReported;
      if (rising !== 0) {
        if (!this.#event(q, s, ev, 0)) {
          g.starved.add(s);
          return;
        }
      }
      s.lastReported = ev;
    }
  }

  #event(q: QueueSetState, s: GSock, bits: number, result: number): boolean {
    const slot = q.receive.next();
    if (slot < 0) return false;
    const o = this.#out.clear();
    o.op = NqeOp.EVENT;
    o.queueSet = q.index;
    o.socketId = s.sid;
    o.arg0 = bits;
    o.result = result;
    encodeNqe(q.rings.receive.view, slot, o);
    this.#stats.notifications++;
    return true;
  }

  /** Moves received data into NSM chunks as RECV/RECVFROM NQEs. False when starved. */
  #deliver(s: GSock, q: QueueSetState, now: Instant): boolean {
    if (s.stream && (s.listening || !s.connected || s.eofSent || s.errSent)) return true;
    const g = s.guest;
    const data = g.dev.data;
    const b = this.#backend;
    const view = q.rings.receive.view;
    const o = this.#out;
    for (;;) {
      const room = s.rcvBuf - s.uncredited;
      if (room <= 0) return true; // credit exhausted: wait for RECV_CREDIT (per-socket backpressure)
      // A sliver of credit while the guest still holds data it will credit back: wait for more.
      // Reads of a few segments or more end where a segment ends (ByteRing.readAligned), so the
      // next starts there too and both copy with kept views; a read of less than a segment
      // cannot, and cost the read after it a view as well.
      if (room < MIN_PARTIAL_READ && s.uncredited > 0) return true;
      if (!q.receive.hasRoom()) return false;
      const chunk = data.alloc();
      if (chunk < 0) return false;
      const max = room < data.chunkSize ? room : data.chunkSize;
      let n: number;
      if (s.stream) {
        // The whole chunk's kept view, filled to `max`: a view of `max` bytes was a new one
        // whenever the credit cut a chunk short.
        const dst = this.#chunkView(g.recvViews, data.bytes, data.chunkSize, chunk, data.chunkSize);
        n = b.recv(s.bid, dst, now, max);
      } else {
        const dst = this.#chunkView(g.recvViews, data.bytes, data.chunkSize, chunk, max);
        n = b.recvFrom(s.bid, dst, this.#addr);
      }
      if (n === -Errno.EAGAIN || n === -Errno.ENOTCONN && !s.stream) {
        data.free(chunk);
        return true;
      }
      if (n <= 0 && s.stream) {
        data.free(chunk);
        if (n === -Errno.ENOTCONN) return true;
        const slot = q.receive.next();
        if (slot < 0) return false;
        o.clear();
        o.op = NqeOp.EVENT;
        o.queueSet = q.index;
        o.socketId = s.sid;
        if (n === 0) {
          o.arg0 = NqeEvent.IN | NqeEvent.RDHUP;
          s.eofSent = true;
        } else {
          o.arg0 = NqeEvent.IN | NqeEvent.ERR | NqeEvent.HUP;
          o.result = n;
          s.errSent = true;
        }
        encodeNqe(view, slot, o);
        this.#stats.notifications++;
        return true;
      }
      if (n < 0) {
        data.free(chunk);
        return true; // UDP error: nothing to deliver
      }
      const slot = q.receive.next();
      const len = n > max ? max : n;
      data.lend(chunk);
      o.clear();
      o.queueSet = q.index;
      o.socketId = s.sid;
      o.dataOffset = chunk;
      o.dataLength = len;
      if (s.stream) {
        o.op = NqeOp.RECV;
        o.arg2 = s.streamOffset;
        s.streamOffset += len;
        this.#bytes[1] = this.#bytes[1]! + len;
        g.bytes[1] = g.bytes[1]! + len;
      } else {
        o.op = NqeOp.RECVFROM;
        o.arg0 = n;
        const a = this.#addr;
        o.family = a.family;
        o.addr.set(a.addr);
        o.port = a.port;
        o.aux = a.scopeId;
      }
      s.uncredited += len;
      encodeNqe(view, slot, o); // hasRoom() above guaranteed the slot
      this.#stats.notifications++;
    }
  }

  /** Ends a guest socket: parked requests complete with -ECONNABORTED, backend close/abort. */
  #closeSock(s: GSock, q: QueueSetState | null, now: Instant, reset: boolean): void {
    if (s.closed) return;
    s.closed = true;
    const g = s.guest;
    if (q !== null) {
      if (s.connecting !== null) this.#complete(q, s.connecting.req, -Errno.ECONNABORTED, 0);
      // Indexed loops: an array iterator is an allocation wherever this runs unoptimized.
      for (let i = 0; i < s.accepts.length; i++) {
        this.#complete(q, s.accepts[i]!.req, -Errno.ECONNABORTED, 0);
      }
      for (let i = 0; i < s.sends.length; i++) {
        const p = s.sends.at(i)!;
        g.dev.data.giveBack(p.req.dataOffset);
        this.#complete(
          q,
          p.req,
          p.taken > 0 ? p.taken : -Errno.ECONNABORTED,
          NqeFlag.CHUNK_RETURNED,
        );
      }
      if (s.shutdownReq !== null) this.#complete(q, s.shutdownReq.req, -Errno.ECONNABORTED, 0);
    }
    // Completed above (copied) or dropped with the guest: back to the pool either way.
    if (s.connecting !== null) this.#unpark(s.connecting);
    s.connecting = null;
    g.parkedAccepts -= s.accepts.length;
    for (let i = 0; i < s.accepts.length; i++) this.#unpark(s.accepts[i]!);
    s.accepts.length = 0;
    for (let i = 0; i < s.sends.length; i++) this.#unpark(s.sends.at(i)!);
    s.sends.clear();
    if (s.shutdownReq !== null) this.#unpark(s.shutdownReq);
    s.shutdownReq = null;
    g.socks.delete(s.sid);
    if (g.starved.size > 0) g.starved.delete(s);
    g.bufferBytes -= s.reserved;
    this.#byBid.delete(s.bid);
    this.#sq?.remove(s, now);
    if (reset) this.#backend.abort(s.bid, now);
    else this.#backend.close(s.bid, now);
    // Reused only once nothing refers to it: while in the dirty list, #serve pools it there.
    if (!s.inDirty) this.#poolSock(s);
  }

  #teardown(g: Guest): void {
    const now = this.#now;
    for (const s of g.socks.values()) this.#closeSock(s, null, now, true);
    g.dirty.length = 0;
    g.starved.clear();
    g.dev.close();
    try {
      g.ctl.close();
    } catch {
      // already closed
    }
    const why = g.deadReason.split(":")[0] || "unknown";
    this.#stats.detached[why] = (this.#stats.detached[why] ?? 0) + 1;
    this.#log(`guest ${g.id} detached: ${g.deadReason}`);
    this.#sq?.removeGuest(g.id, now);
    this.onGuest?.("detach", g.id, now);
  }

  /**
   * SLAs' transmit path: hands at most `max` bytes of `s`'s parked SENDs to the backend,
   * completing those fully taken; returns the bytes taken (0: the socket is full).
   */
  readonly #slaSend = (s: GSock, max: number): number => {
    if (s.closed) return 0;
    const g = s.guest;
    const q = g.qs[s.queueSet]!;
    let total = 0;
    while (s.sends.length > 0 && total < max) {
      const p = s.sends.peek()!;
      const before = p.taken > 0 ? p.taken : 0;
      const done = this.#pushSend(s, p, this.#now, max - total);
      if (p.taken > before) total += p.taken - before;
      if (!done) break;
      g.dev.data.giveBack(p.req.dataOffset);
      this.#completeNow(q, p.req, p.taken, NqeFlag.CHUNK_RETURNED);
      s.sends.shift();
      this.#unpark(p);
    }
    // Completions are flushed by the guest's next #serve; a deferred SHUTDOWN runs there too.
    if (s.sends.length === 0 && s.shutdownReq !== null) this.#markDirty(s);
    return total;
  };

  /**
   * Mounts the operator control server on the shared control socket: a connection whose
   * first line is `{"type":"op",...}` is served by `server` (see nsm/ops.ts).
   */
  setOperators(server: ControlServer): void {
    this.#ops = server;
  }

  /** Turns SLAs on (every stream SEND goes through `sched`), or off with null. */
  setSla(sched: EgressScheduler | null): void {
    this.#sq = sched === null ? null : new SlaSendQueue<GSock>(sched);
  }

  /**
   * The guest table the operator tools read (`ctl guests`, `ctl conns`, metrics).
   * `resolve` maps a backend socket id to its TCP connection (null: not a connection, e.g.
   * UDP, a listener or not connected yet); `extra` adds connections of no guest (the NSM's
   * own services, guest 0).
   */
  guestTable(
    resolve: (backendId: number) => { stack: TcpStack; id: number } | null,
    extra?: () => ConnRef[],
  ): GuestTable {
    return {
      guests: (): GuestRow[] =>
        this.#guests.filter((g) => !g.dead).map((g) => ({
          id: g.id,
          pid: g.pid,
          device: g.dev.path,
          sockets: g.socks.size,
          bytesFromGuest: g.bytes[0]!,
          bytesToGuest: g.bytes[1]!,
          counters: { ...g.counters },
        })),
      connections: (): ConnRef[] => {
        const out: ConnRef[] = extra?.() ?? [];
        for (const g of this.#guests) {
          if (g.dead) continue;
          for (const s of g.socks.values()) {
            if (!s.stream || s.listening || s.closed) continue;
            const r = resolve(s.bid);
            if (r !== null) out.push({ guest: g.id, stack: r.stack, id: r.id, guestSocket: s.sid });
          }
        }
        return out;
      },
    };
  }

  /** Disconnects guest `id` (its sockets are reset); true when it existed. */
  disconnect(id: number, reason = "disconnected"): boolean {
    const g = this.#guests.find((x) => x.id === id && !x.dead);
    if (g === undefined) return false;
    g.deadReason = reason;
    g.dead = true;
    this.#wake();
    return true;
  }

  /** Stops accepting guests and tears every guest down (sockets reset). Idempotent. */
  close(now: Instant): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#now = now;
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    for (const g of this.#guests) {
      g.deadReason ||= "nsm-shutdown";
      g.dead = true;
      this.#teardown(g);
    }
    this.#guests.length = 0;
    this.#wake();
  }
}

/** `WaitableLink` wrapper whose idle wait also wakes on guests (see `ServiceLib.wrapLink`). */
class GuestWakeLink implements WaitableLink {
  readonly #link: WaitableLink;
  readonly #libs: readonly ServiceLib[];
  #pending: Promise<boolean> | null = null;
  constructor(link: WaitableLink, libs: readonly ServiceLib[]) {
    this.#link = link;
    this.#libs = libs;
  }
  get name(): string {
    return this.#link.name;
  }
  get mac(): Uint8Array {
    return this.#link.mac;
  }
  get mtu(): number {
    return this.#link.mtu;
  }
  get capabilities(): WaitableLink["capabilities"] {
    return this.#link.capabilities;
  }
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    return this.#link.receive(onFrame, max);
  }
  transmitBuffer(length: number): Uint8Array | null {
    return this.#link.transmitBuffer(length);
  }
  commit(length: number): void {
    this.#link.commit(length);
  }
  flush(): void {
    this.#link.flush();
  }
  hasWork(): boolean {
    return this.#link.hasWork?.() ?? true;
  }
  close(): void {
    this.#link.close();
  }
  #hasWork(): boolean {
    const libs = this.#libs;
    for (let i = 0; i < libs.length; i++) if (libs[i]!.hasWork()) return true;
    return false;
  }
  #sleeping: Promise<boolean> | null = null;

  wait(timeoutMs: number): Promise<boolean> {
    if (timeoutMs <= 0) return this.#link.wait(0);
    if (this.#hasWork()) return Promise.resolve(true);
    // A caller that stopped awaiting the previous sleep (NsmRuntime.wake()) gets that same sleep
    // back rather than a second waitAny over the same doorbells.
    if (this.#sleeping !== null) return this.#sleeping;
    const p = this.#sleep(timeoutMs).finally(() => {
      this.#sleeping = null;
    });
    this.#sleeping = p;
    return p;
  }
  readonly #hasWorkFn = (): boolean => this.#hasWork();
  /** The doorbells of one sleep, reused (emptied by pop(), which keeps the capacity). */
  readonly #bells: Doorbell[] = [];
  /** The doorbells `beginSleep()` armed, until `endSleep()`. */
  readonly #armed: Doorbell[] = [];

  pollFds(into: number[]): boolean {
    const link = this.#link;
    if (link.pollFds === undefined || !link.pollFds(into)) return false;
    const bells = this.#bells;
    while (bells.length > 0) bells.pop();
    const libs = this.#libs;
    for (let i = 0; i < libs.length; i++) libs[i]!.liveBells(bells);
    for (let i = 0; i < bells.length; i++) {
      // A doorbell without its own descriptor, or with a read left outstanding by wait(),
      // cannot be slept on here (that read would take its bytes).
      const fd = bells[i]!.pollFd;
      if (fd < 0) return false;
      into.push(fd);
    }
    return true;
  }

  beginSleep(kick: () => void): boolean {
    // The doorbells pollFds() listed: the Dekker steps of Doorbell.waitAny() for each, then
    // one re-check of every ring.
    const armed = this.#armed;
    const bells = this.#bells;
    for (let i = 0; i < bells.length; i++) {
      bells[i]!.beginSleep();
      armed.push(bells[i]!);
    }
    const libs = this.#libs;
    for (let i = 0; i < libs.length; i++) libs[i]!.setKick(kick);
    return !this.#hasWork();
  }

  endSleep(): void {
    const libs = this.#libs;
    for (let i = 0; i < libs.length; i++) libs[i]!.setKick(null);
    const armed = this.#armed;
    // A doorbell that reached EOF is marked closed here; ServiceLib.poll() tears its guest down.
    while (armed.length > 0) armed.pop()!.endSleep();
  }

  async #sleep(ms: number): Promise<boolean> {
    const bells = this.#bells;
    while (bells.length > 0) bells.pop();
    const libs = this.#libs;
    for (let i = 0; i < libs.length; i++) libs[i]!.liveBells(bells);
    const kick = new Promise<void>((r) => {
      for (const l of this.#libs) l.setKick(r);
    });
    // One link wait stays outstanding across sleeps (a doorbell may end a sleep first).
    this.#pending ??= this.#link.wait(ms).finally(() => {
      this.#pending = null;
    });
    const also = Promise.race([this.#pending, kick]);
    try {
      if (bells.length === 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          also.then(() => true),
          new Promise<boolean>((res) => timer = setTimeout(() => res(false), ms)),
        ]);
        clearTimeout(timer);
        return r;
      }
      const why = await Doorbell.waitAny(bells, this.#hasWorkFn, 0, ms, also);
      return why !== "timeout";
    } finally {
      for (const l of this.#libs) l.setKick(null);
    }
  }
}

/** Smallest credit `#deliver` reads into while the guest still holds uncredited data. */
const MIN_PARTIAL_READ = 4096;

/** Milliseconds until `at` from `now`, for callers scheduling their own sleeps. */
export function msUntil(at: Instant, now: Instant): number {
  return at === NEVER ? Infinity : Math.max(0, Math.ceil((at - now) / MILLISECOND));
}
