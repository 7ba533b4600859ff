/**
 * NK device: one shared mapping holding a header, N queue sets of four SPSC rings, and a data
 * region; plus a UNIX-socket doorbell for wake-ups. The NSM creates it, one guest attaches by path.
 *
 * Layout (all offsets 64-byte aligned; the data region 4096-byte aligned):
 * ```
 * 0       header (4096 bytes; fields below)
 * 4096    queue set 0: job ring | completion ring | send ring | receive ring   (ringBytes each)
 *         queue set 1 ...
 * D       data region: guest half | NSM half                                   (D page aligned)
 * ```
 * Header fields (u32 little-endian unless noted):
 * ```
 *   0 magic 0x56444B4E ("NKDV")   4 u16 version major   6 u16 version minor   8 header size
 *  12 queue sets   16 ring capacity (slots)   20 slot size (64)   24 ring bytes
 *  28 chunk size   32 chunks per half   36 queue sets offset   40 data offset (u64 as lo, hi)
 *  48 total size (u64 as lo, hi)   56 state (0 init, 1 ready, 2 closed)   60 NSM pid
 *  64 guest pid (0 = free; an attaching guest claims it with compare-exchange)
 *  68 doorbell path length   72..199 doorbell path (UTF-8, UNIX socket)
 * 200 u64 (lo, hi) NSM start time (clock ticks since boot, /proc/<pid>/stat field 22; 0 = unknown;
 *     minor >= 1): with the pid, identifies the creator across pid reuse (stale-device sweep)
 * 256 guest sleeping flag (own 128-byte line pair)   384 NSM sleeping flag (own line pair)
 * ```
 * Rings per queue set: job (guest -> NSM: control requests and RECV_CREDIT), completion
 * (NSM -> guest: completions of job and send requests), send (guest -> NSM: SEND/SENDTO), receive
 * (NSM -> guest: RECV/RECVFROM/EVENT). Splitting data from control keeps bulk sends from
 * delaying control ops and lets each ring stay strictly single-producer single-consumer.
 *
 * @module
 */

import {
  checkDataGeometry,
  DataRegion,
  dataRegionBytes,
  type DataRegionGeometry,
} from "./data_region.ts";
import { initRing, ringBytes, RingConsumer, RingProducer, SLOT_SIZE } from "./ring.ts";
import { type HugePagePolicy, SharedMemory, type ShmBacking } from "./shm.ts";
import { selfStartTime } from "./proc_identity.ts";
import {
  Doorbell,
  findDoorbellFd,
  GUEST_SLEEP_FLAG_OFFSET,
  NSM_SLEEP_FLAG_OFFSET,
} from "./wake.ts";

/** "NKDV" as a little-endian u32. */
export const NK_MAGIC = 0x56444b4e;
/** Layout version; a guest rejects a different major. */
export const NK_VERSION_MAJOR = 1;
/** Minor version: additions that old guests may ignore (1: NSM start time at 200). */
export const NK_VERSION_MINOR = 1;
/** Header bytes (one page). */
export const NK_HEADER_SIZE = 4096;
/** Upper bound on queue sets, so a hostile header cannot make us allocate without limit. */
export const NK_MAX_QUEUE_SETS = 256;

/** Header field offsets. */
export const H_MAGIC = 0;
/** u16 major version. */
export const H_VERSION_MAJOR = 4;
/** u16 minor version. */
export const H_VERSION_MINOR = 6;
/** u32 header size. */
export const H_HEADER_SIZE = 8;
/** u32 number of queue sets. */
export const H_QUEUE_SETS = 12;
/** u32 ring capacity in slots. */
export const H_RING_CAPACITY = 16;
/** u32 slot size (64). */
export const H_SLOT_SIZE = 20;
/** u32 bytes per ring. */
export const H_RING_BYTES = 24;
/** u32 chunk size of the data region. */
export const H_CHUNK_SIZE = 28;
/** u32 chunks per half. */
export const H_CHUNKS_PER_HALF = 32;
/** u32 offset of queue set 0. */
export const H_QUEUE_SETS_OFFSET = 36;
/** u64 (lo, hi) offset of the data region. */
export const H_DATA_OFFSET = 40;
/** u64 (lo, hi) total device size. */
export const H_TOTAL_SIZE = 48;
/** u32 device state. */
export const H_STATE = 56;
/** u32 NSM process id. */
export const H_NSM_PID = 60;
/** u32 attached guest process id (0 = none). */
export const H_GUEST_PID = 64;
/** u32 doorbell path length. */
export const H_BELL_PATH_LEN = 68;
/** Doorbell path bytes. */
export const H_BELL_PATH = 72;
/** u64 (lo, hi) NSM process start time in clock ticks since boot (0 = unknown); minor >= 1. */
export const H_NSM_START_TIME = 200;
/** Maximum doorbell path bytes (sun_path is 108 including the NUL). */
export const BELL_PATH_MAX = 107;

/** Device states in the header. */
export const DeviceState = { INIT: 0, READY: 1, CLOSED: 2 } as const;

/** Ring names inside a queue set, in layout order. */
export const RING_ORDER = ["job", "completion", "send", "receive"] as const;

/** Geometry of a device. */
export interface DeviceGeometry extends DataRegionGeometry {
  /** Queue sets (1..256). */
  readonly queueSets: number;
  /** Slots per ring (power of two). */
  readonly ringCapacity: number;
}

/** Computed offsets of a device. */
export interface DeviceLayout {
  /** Bytes per ring. */
  readonly ringBytes: number;
  /** Offset of queue set 0. */
  readonly queueSetsOffset: number;
  /** Offset of the data region. */
  readonly dataOffset: number;
  /** Bytes the whole device needs. */
  readonly totalSize: number;
}

/** Offsets of every part of a device with geometry `g`. */
export function deviceLayout(g: DeviceGeometry): DeviceLayout {
  const rb = ringBytes(g.ringCapacity);
  const queueSetsOffset = NK_HEADER_SIZE;
  const dataOffset = Math.ceil((queueSetsOffset + g.queueSets * 4 * rb) / 4096) * 4096;
  return {
    ringBytes: rb,
    queueSetsOffset,
    dataOffset,
    totalSize: dataOffset + dataRegionBytes(g),
  };
}

/** Why a header was rejected on attach. */
export type HeaderFault =
  | "too-small"
  | "bad-magic"
  | "version-mismatch"
  | "bad-geometry"
  | "size-mismatch"
  | "not-ready"
  | "guest-already-attached";

/** The mapping is not a usable NK device; the message says what to do. */
export class DeviceHeaderError extends Error {
  /** What was wrong. */
  readonly reason: HeaderFault;
  /** Builds the error; the message carries what to do. */
  constructor(path: string, reason: HeaderFault, detail: string) {
    super(`NK device ${path}: ${reason}: ${detail}`);
    this.name = "DeviceHeaderError";
    this.reason = reason;
  }
}

/** `NsmDevice.create` was asked for something impossible; the message says what to change. */
export class DeviceConfigError extends Error {
  /** Builds the error; the message carries what to do. */
  constructor(message: string) {
    super(message);
    this.name = "DeviceConfigError";
  }
}

/** Options of `NsmDevice.create`. */
export interface NsmDeviceOptions {
  /** Device name: shared memory file name and doorbell socket stem. */
  readonly name: string;
  /** Default 1. */
  readonly queueSets?: number;
  /** Slots per ring, power of two. Default 1024. */
  readonly ringCapacity?: number;
  /** Data chunk size, power of two. Default 2048. */
  readonly chunkSize?: number;
  /** Chunks per half. Default 1024 (2 MiB per half at 2 KiB chunks). */
  readonly chunksPerHalf?: number;
  /** Huge page policy of the mapping. Default "auto". */
  readonly hugePages?: HugePagePolicy;
  /** Initial ring index of every ring (tests start near 2^32). Default 0. */
  readonly startIndex?: number;
  /** Replace a stale shared memory file / socket of the same name. Default false. */
  readonly replaceStale?: boolean;
  /** Directory of the doorbell socket. Default "/dev/shm" (or /tmp if unavailable). */
  readonly bellDir?: string;
  /** Directory of the shared memory file. Default "/dev/shm". */
  readonly dir?: string;
}

/** The NSM's end of one queue set: it consumes job/send and produces completion/receive. */
export interface NsmQueueSet {
  /** Guest control requests (and RECV_CREDIT). */
  readonly job: RingConsumer;
  /** Completions to the guest. */
  readonly completion: RingProducer;
  /** Guest SEND/SENDTO requests. */
  readonly send: RingConsumer;
  /** RECV/RECVFROM/EVENT notifications to the guest. */
  readonly receive: RingProducer;
}

/** The guest's end of one queue set. */
export interface GuestQueueSet {
  /** Control requests to the NSM. */
  readonly job: RingProducer;
  /** Completions from the NSM. */
  readonly completion: RingConsumer;
  /** SEND/SENDTO requests to the NSM. */
  readonly send: RingProducer;
  /** Notifications from the NSM. */
  readonly receive: RingConsumer;
}

function ringOffset(layout: DeviceLayout, qs: number, which: number): number {
  return layout.queueSetsOffset + (qs * 4 + which) * layout.ringBytes;
}

function flagView(buffer: ArrayBuffer, offset: number): Uint32Array {
  return new Uint32Array(buffer, offset, 1);
}

/** The NSM end of an NK device (creator and owner of the name). */
export class NsmDevice {
  /** Geometry the device was created with. */
  readonly geometry: DeviceGeometry;
  /** Offsets. */
  readonly layout: DeviceLayout;
  /** Path the guest attaches to. */
  readonly path: string;
  /** UNIX socket path of the doorbell. */
  readonly bellPath: string;
  /** What backs the mapping. */
  readonly backing: ShmBacking;
  /** The NSM half allocator and guest-half borrow checks. */
  readonly data: DataRegion;
  /** Queue sets, index = queue set number. */
  readonly queueSets: readonly NsmQueueSet[];
  /** Doorbell, present after `acceptGuest()`. */
  bell: Doorbell | null = null;
  readonly #shm: SharedMemory;
  readonly #listener: Deno.Listener;
  readonly #header: DataView;
  #closed = false;

  private constructor(
    shm: SharedMemory,
    g: DeviceGeometry,
    layout: DeviceLayout,
    listener: Deno.Listener,
    bellPath: string,
  ) {
    this.#shm = shm;
    this.geometry = g;
    this.layout = layout;
    this.path = shm.path;
    this.backing = shm.backing;
    this.bellPath = bellPath;
    this.#listener = listener;
    this.#header = new DataView(shm.buffer, 0, NK_HEADER_SIZE);
    this.data = new DataRegion(shm.buffer, layout.dataOffset, g, "nsm");
    const sets: NsmQueueSet[] = [];
    for (let q = 0; q < g.queueSets; q++) {
      const cap = g.ringCapacity;
      sets.push({
        job: new RingConsumer(shm.buffer, ringOffset(layout, q, 0), cap, `qs${q}.job`),
        completion: new RingProducer(
          shm.buffer,
          ringOffset(layout, q, 1),
          cap,
          `qs${q}.completion`,
        ),
        send: new RingConsumer(shm.buffer, ringOffset(layout, q, 2), cap, `qs${q}.send`),
        receive: new RingProducer(shm.buffer, ringOffset(layout, q, 3), cap, `qs${q}.receive`),
      });
    }
    this.queueSets = sets;
  }

  /** Creates the shared mapping, initializes every ring, listens on the doorbell socket. */
  static create(options: NsmDeviceOptions): NsmDevice {
    const g: DeviceGeometry = {
      queueSets: options.queueSets ?? 1,
      ringCapacity: options.ringCapacity ?? 1024,
      chunkSize: options.chunkSize ?? 2048,
      chunksPerHalf: options.chunksPerHalf ?? 1024,
    };
    if (!Number.isInteger(g.queueSets) || g.queueSets < 1 || g.queueSets > NK_MAX_QUEUE_SETS) {
      throw new DeviceConfigError(`queueSets ${g.queueSets} invalid: use 1..${NK_MAX_QUEUE_SETS}`);
    }
    checkDataGeometry(g);
    const layout = deviceLayout(g);
    const bellPath = `${options.bellDir ?? "/dev/shm"}/${options.name}.bell`;
    const bellBytes = new TextEncoder().encode(bellPath);
    if (bellBytes.length > BELL_PATH_MAX) {
      throw new DeviceConfigError(
        `doorbell path ${bellPath} is longer than ${BELL_PATH_MAX} bytes: use a shorter name or bellDir`,
      );
    }
    const shm = SharedMemory.create({
      name: options.name,
      size: layout.totalSize,
      ...(options.hugePages !== undefined ? { hugePages: options.hugePages } : {}),
      ...(options.dir !== undefined ? { dir: options.dir } : {}),
      ...(options.replaceStale !== undefined ? { replaceStale: options.replaceStale } : {}),
    });
    let listener: Deno.Listener;
    try {
      if (options.replaceStale === true) {
        try {
          Deno.removeSync(bellPath);
        } catch {
          // nothing stale
        }
      }
      listener = Deno.listen({ transport: "unix", path: bellPath });
    } catch (e) {
      shm.close();
      if (e instanceof Deno.errors.AddrInUse) {
        throw new DeviceConfigError(
          `doorbell socket ${bellPath} already exists: another NSM uses this name, or a crashed ` +
            `one left it behind; pick another name or pass replaceStale: true`,
        );
      }
      throw e;
    }
    const buf = shm.buffer;
    for (let q = 0; q < g.queueSets; q++) {
      for (let r = 0; r < 4; r++) {
        initRing(buf, ringOffset(layout, q, r), g.ringCapacity, options.startIndex ?? 0);
      }
    }
    const h = new DataView(buf, 0, NK_HEADER_SIZE);
    h.setUint32(H_MAGIC, NK_MAGIC, true);
    h.setUint16(H_VERSION_MAJOR, NK_VERSION_MAJOR, true);
    h.setUint16(H_VERSION_MINOR, NK_VERSION_MINOR, true);
    h.setUint32(H_HEADER_SIZE, NK_HEADER_SIZE, true);
    h.setUint32(H_QUEUE_SETS, g.queueSets, true);
    h.setUint32(H_RING_CAPACITY, g.ringCapacity, true);
    h.setUint32(H_SLOT_SIZE, SLOT_SIZE, true);
    h.setUint32(H_RING_BYTES, layout.ringBytes, true);
    h.setUint32(H_CHUNK_SIZE, g.chunkSize, true);
    h.setUint32(H_CHUNKS_PER_HALF, g.chunksPerHalf, true);
    h.setUint32(H_QUEUE_SETS_OFFSET, layout.queueSetsOffset, true);
    writeU64(h, H_DATA_OFFSET, layout.dataOffset);
    writeU64(h, H_TOTAL_SIZE, layout.totalSize);
    h.setUint32(H_NSM_PID, Deno.pid, true);
    writeU64(h, H_NSM_START_TIME, selfStartTime());
    h.setUint32(H_GUEST_PID, 0, true);
    h.setUint32(H_BELL_PATH_LEN, bellBytes.length, true);
    new Uint8Array(buf, H_BELL_PATH, bellBytes.length).set(bellBytes);
    // Ready last: a guest that sees READY sees every field above (seq-cst store after them).
    Atomics.store(new Uint32Array(buf, H_STATE, 1), 0, DeviceState.READY);
    return new NsmDevice(shm, g, layout, listener, bellPath);
  }

  /** Waits for the guest's doorbell connection (one guest per device). */
  async acceptGuest(): Promise<Doorbell> {
    const conn = await this.#listener.accept();
    const buf = this.#shm.buffer;
    this.bell = new Doorbell(
      conn,
      flagView(buf, NSM_SLEEP_FLAG_OFFSET),
      flagView(buf, GUEST_SLEEP_FLAG_OFFSET),
    );
    // Wakes of a sleeping guest as one send(2) each, without a promise (when FFI is granted).
    const fd = findDoorbellFd(this.bellPath);
    if (fd !== null) this.bell.useSyncRing(fd);
    return this.bell;
  }

  /** True when any job or send ring has entries (re-reads the producer indices). */
  hasWork(): boolean {
    for (const qs of this.queueSets) {
      if (qs.job.peekFill() > 0 || qs.send.peekFill() > 0) return true;
    }
    return false;
  }

  /** Process id of the attached guest (0 = none yet). */
  get guestPid(): number {
    return this.#header.getUint32(H_GUEST_PID, true);
  }

  /** Marks the device closed, closes the doorbell, unmaps and unlinks. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#shm.open) {
      Atomics.store(new Uint32Array(this.#shm.buffer, H_STATE, 1), 0, DeviceState.CLOSED);
    }
    this.bell?.close();
    try {
      this.#listener.close(); // also removes the socket file
    } catch {
      // already closed
    }
    try {
      Deno.removeSync(this.bellPath);
    } catch {
      // removed by the listener
    }
    this.#shm.close();
  }
}

function writeU64(h: DataView, off: number, v: number): void {
  h.setUint32(off, v >>> 0, true);
  h.setUint32(off + 4, Math.floor(v / 0x1_0000_0000), true);
}

function readU64(h: DataView, off: number): number {
  return h.getUint32(off, true) + h.getUint32(off + 4, true) * 0x1_0000_0000;
}

/** Validated header contents. */
export interface ParsedHeader {
  /** Geometry the header describes. */
  readonly geometry: DeviceGeometry;
  /** Offsets recomputed from the geometry (and checked against the header). */
  readonly layout: DeviceLayout;
  /** UNIX socket path of the doorbell. */
  readonly bellPath: string;
}

/**
 * Validates the header of a mapping (every field, against the recomputed layout and the mapped
 * size) and returns its geometry, or throws `DeviceHeaderError`. Exported for tests.
 */
export function parseHeader(buf: ArrayBuffer, path: string): ParsedHeader {
  if (buf.byteLength < NK_HEADER_SIZE) {
    throw new DeviceHeaderError(
      path,
      "too-small",
      `mapping has ${buf.byteLength} bytes, less than a header: is this an NK device?`,
    );
  }
  const h = new DataView(buf, 0, NK_HEADER_SIZE);
  const magic = h.getUint32(H_MAGIC, true);
  if (magic !== NK_MAGIC) {
    throw new DeviceHeaderError(
      path,
      "bad-magic",
      `magic 0x${magic.toString(16)} is not "NKDV": attach to a path NsmDevice.create() made`,
    );
  }
  const major = h.getUint16(H_VERSION_MAJOR, true);
  if (major !== NK_VERSION_MAJOR) {
    throw new DeviceHeaderError(
      path,
      "version-mismatch",
      `layout version ${major}.x, this guest speaks ${NK_VERSION_MAJOR}.x: upgrade the older side`,
    );
  }
  const state = Atomics.load(new Uint32Array(buf, H_STATE, 1), 0);
  if (state !== DeviceState.READY) {
    throw new DeviceHeaderError(
      path,
      "not-ready",
      state === DeviceState.INIT
        ? "the NSM is still initializing the device: retry shortly"
        : "the NSM closed this device: ask it for a new one",
    );
  }
  const g: DeviceGeometry = {
    queueSets: h.getUint32(H_QUEUE_SETS, true),
    ringCapacity: h.getUint32(H_RING_CAPACITY, true),
    chunkSize: h.getUint32(H_CHUNK_SIZE, true),
    chunksPerHalf: h.getUint32(H_CHUNKS_PER_HALF, true),
  };
  const cap = g.ringCapacity;
  const bad = (detail: string): DeviceHeaderError =>
    new DeviceHeaderError(path, "bad-geometry", `${detail}: the header is corrupt`);
  if (h.getUint32(H_SLOT_SIZE, true) !== SLOT_SIZE) throw bad("slot size is not 64");
  if (g.queueSets < 1 || g.queueSets > NK_MAX_QUEUE_SETS) {
    throw bad(`queue sets ${g.queueSets}`);
  }
  if (cap < 2 || cap > (1 << 30) || (cap & (cap - 1)) !== 0) {
    throw bad(`ring capacity ${cap} is not a power of two`);
  }
  try {
    checkDataGeometry(g);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (h.getUint32(H_HEADER_SIZE, true) !== NK_HEADER_SIZE) {
    throw bad(`header size ${h.getUint32(H_HEADER_SIZE, true)}`);
  }
  const layout = deviceLayout(g);
  if (
    h.getUint32(H_RING_BYTES, true) !== layout.ringBytes ||
    h.getUint32(H_QUEUE_SETS_OFFSET, true) !== layout.queueSetsOffset ||
    readU64(h, H_DATA_OFFSET) !== layout.dataOffset ||
    readU64(h, H_TOTAL_SIZE) !== layout.totalSize
  ) {
    throw bad("ring bytes / offsets / total size disagree with the geometry");
  }
  if (layout.totalSize > buf.byteLength) {
    throw new DeviceHeaderError(
      path,
      "size-mismatch",
      `header says ${layout.totalSize} bytes but only ${buf.byteLength} are mapped: the file was truncated`,
    );
  }
  const len = h.getUint32(H_BELL_PATH_LEN, true);
  if (len === 0 || len > BELL_PATH_MAX) throw bad(`doorbell path length ${len}`);
  const bellPath = new TextDecoder().decode(new Uint8Array(buf, H_BELL_PATH, len));
  return { geometry: g, layout, bellPath };
}

/** The guest end of an NK device. */
export class GuestDevice {
  /** Geometry read from the header. */
  readonly geometry: DeviceGeometry;
  /** Offsets. */
  readonly layout: DeviceLayout;
  /** Device path. */
  readonly path: string;
  /** The guest half allocator and NSM-half borrow checks. */
  readonly data: DataRegion;
  /** Queue sets. */
  readonly queueSets: readonly GuestQueueSet[];
  /** Doorbell to the NSM. */
  readonly bell: Doorbell;
  readonly #shm: SharedMemory;
  #closed = false;

  private constructor(shm: SharedMemory, parsed: ParsedHeader, bell: Doorbell) {
    this.#shm = shm;
    this.geometry = parsed.geometry;
    this.layout = parsed.layout;
    this.path = shm.path;
    this.bell = bell;
    const g = parsed.geometry;
    this.data = new DataRegion(shm.buffer, parsed.layout.dataOffset, g, "guest");
    const sets: GuestQueueSet[] = [];
    const buf = shm.buffer;
    const L = parsed.layout;
    for (let q = 0; q < g.queueSets; q++) {
      const cap = g.ringCapacity;
      sets.push({
        job: new RingProducer(buf, ringOffset(L, q, 0), cap, `qs${q}.job`),
        completion: new RingConsumer(buf, ringOffset(L, q, 1), cap, `qs${q}.completion`),
        send: new RingProducer(buf, ringOffset(L, q, 2), cap, `qs${q}.send`),
        receive: new RingConsumer(buf, ringOffset(L, q, 3), cap, `qs${q}.receive`),
      });
    }
    this.queueSets = sets;
  }

  /**
   * Maps the device at `path`, validates its header, claims the guest slot, and connects the
   * doorbell. Throws `DeviceHeaderError` for anything that is not a ready, unclaimed NK device.
   */
  static async attach(path: string): Promise<GuestDevice> {
    const shm = SharedMemory.open(path);
    try {
      const parsed = parseHeader(shm.buffer, path);
      const pid = new Uint32Array(shm.buffer, H_GUEST_PID, 1);
      const prev = Atomics.compareExchange(pid, 0, 0, Deno.pid);
      if (prev !== 0) {
        throw new DeviceHeaderError(
          path,
          "guest-already-attached",
          `process ${prev} already attached: one guest per device; ask the NSM for another device`,
        );
      }
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ transport: "unix", path: parsed.bellPath });
      } catch (e) {
        Atomics.store(pid, 0, 0);
        throw e;
      }
      const bell = new Doorbell(
        conn,
        flagView(shm.buffer, GUEST_SLEEP_FLAG_OFFSET),
        flagView(shm.buffer, NSM_SLEEP_FLAG_OFFSET),
      );
      // Wakes of a sleeping NSM as one send(2) each, without a promise (when FFI is granted).
      const fd = findDoorbellFd(parsed.bellPath, "connected");
      if (fd !== null) bell.useSyncRing(fd);
      return new GuestDevice(shm, parsed, bell);
    } catch (e) {
      shm.close();
      throw e;
    }
  }

  /** True when any completion or receive ring has entries (re-reads the producer indices). */
  hasWork(): boolean {
    for (const qs of this.queueSets) {
      if (qs.completion.peekFill() > 0 || qs.receive.peekFill() > 0) return true;
    }
    return false;
  }

  /** Closes the doorbell (the NSM sees EOF) and unmaps. Never unlinks. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.bell.close();
    this.#shm.close();
  }
}
