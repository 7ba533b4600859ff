/**
 * One AF_XDP socket bound to one queue of one interface, with its own UMEM and its four rings
 * mapped once.
 *
 * Frame budget: `ringSize` frames for receive (initially all posted to the fill ring) and
 * `ringSize` frames for transmit (a free stack). The fill ring has twice as many slots as
 * receive frames because the kernel publishes its fill consumer lazily (pitfall 4), so
 * recycling a received frame always finds a slot.
 *
 * Setup order (the one that works): UMEM_REG → ring sizes → MMAP_OFFSETS → mmap rings →
 * populate the fill ring → bind. The caller then puts the fd in the XSKMAP.
 *
 * @module
 */

import {
  check,
  EAGAIN,
  EBUSY,
  ENETDOWN,
  ENOBUFS,
  errno,
  libc,
  MAP_POPULATE,
  MAP_SHARED,
  mmapChecked,
  PROT_READ,
  PROT_WRITE,
  raiseMemlockLimit,
  struct,
  syscallError,
  XdpError,
  XdpZeroCopyUnsupportedError,
} from "./libc.ts";
import {
  ADDR_DESC_LEN,
  ConsumerRing,
  ProducerRing,
  type RingOffsets,
  XDP_DESC_LEN,
} from "./ring.ts";
import { FrameOwner, FramePool, type HugepageMode, Umem } from "./umem.ts";
import type { TxRingMapping } from "./kick.ts";
import { TX_METADATA_LEN, XDP_UMEM_TX_METADATA_LEN, XDP_UMEM_TX_SW_CSUM } from "./tx_metadata.ts";

/** Address family of AF_XDP sockets. */
export const AF_XDP = 44;
/** socket type for AF_XDP. */
export const SOCK_RAW = 3;
/** setsockopt level of AF_XDP options. */
export const SOL_XDP = 283;
/** getsockopt: ring offsets inside the mappings. */
export const XDP_MMAP_OFFSETS = 1;
/** setsockopt: RX ring size. */
export const XDP_RX_RING = 2;
/** setsockopt: TX ring size. */
export const XDP_TX_RING = 3;
/** setsockopt: register the UMEM. */
export const XDP_UMEM_REG = 4;
/** setsockopt: fill ring size. */
export const XDP_UMEM_FILL_RING = 5;
/** setsockopt: completion ring size. */
export const XDP_UMEM_COMPLETION_RING = 6;
/** getsockopt: drop counters (6 × u64). */
export const XDP_STATISTICS = 7;
/** getsockopt: bound options (u32 flags, bit 0 = zero-copy). */
export const XDP_OPTIONS = 8;
/** setsockopt: descriptors sent per copy-mode kick (Linux >= 6.17; range 32 .. TX ring size). */
export const XDP_MAX_TX_SKB_BUDGET = 9;
/** The kernel's copy-mode kick budget without XDP_MAX_TX_SKB_BUDGET (TX_BATCH_SIZE). */
export const DEFAULT_TX_BUDGET = 32;
/** errno of setsockopt for an option the kernel does not know. */
const ENOPROTOOPT = 92;
/** bind flag: force copy mode. */
export const XDP_COPY = 2;
/** bind flag: force zero-copy mode. */
export const XDP_ZEROCOPY = 4;
/** bind flag: the kernel sets XDP_RING_NEED_WAKEUP instead of being kicked blindly. */
export const XDP_USE_NEED_WAKEUP = 8;
/** bind flag: multi-buffer frames (a packet spans descriptors chained by XDP_PKT_CONTD). */
export const XDP_USE_SG = 16;
/** xdp_desc.options bit: more descriptors of the same packet follow. */
export const XDP_PKT_CONTD = 1;
/** Page offsets of the four ring mappings. */
export const XDP_PGOFF_RX_RING = 0;
/** TX ring page offset. */
export const XDP_PGOFF_TX_RING = 0x80000000;
/** Fill ring page offset. */
export const XDP_UMEM_PGOFF_FILL_RING = 0x100000000;
/** Completion ring page offset. */
export const XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000;
/** send/recv flag: do not block. */
export const MSG_DONTWAIT = 0x40;
const POLLIN = 1;
/**
 * How long bind() retries EBUSY while a just-closed socket releases the queue. The kernel
 * clears the queue's pool after an RCU grace period, from a work item that takes the RTNL lock
 * (xp_release_deferred), so namespace teardown elsewhere on the machine can hold it off for
 * seconds: 500 ms was seen to fail under a parallel test run.
 */
const BIND_BUSY_RETRY_MS = 5000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` (setup paths only). */
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** nfds = 1 as a pointer-typed size (computed once: creating pointers is slow). */
const ONE = Deno.UnsafePointer.create(1n);

/** How to bind: "auto" lets the kernel pick zero-copy when the driver has it. */
export type BindMode = "auto" | "copy" | "zerocopy";

/** Options of `XskSocket.open`. */
export interface XskSocketOptions {
  /** Interface name (messages). */
  readonly ifname: string;
  /** Interface index. */
  readonly ifindex: number;
  /** Queue id. */
  readonly queue: number;
  /** Default "auto". */
  readonly mode?: BindMode;
  /** 2048 or 4096; default 2048. */
  readonly frameSize?: number;
  /** Descriptors of the RX, TX and completion rings (power of two); default 2048. */
  readonly ringSize?: number;
  /** Default "auto". */
  readonly hugepages?: HugepageMode;
  /** Bind with XDP_USE_SG (multi-buffer, Linux >= 6.6); default false. */
  readonly multiBuffer?: boolean;
  /**
   * Descriptors one copy-mode kick (sendto) may send: 32 .. ringSize; default 256 (capped by
   * ringSize; rings of fewer than 32 slots keep 32). Kernels
   * without XDP_MAX_TX_SKB_BUDGET (< 6.17) keep 32 (see `XskSocket.txBudget`).
   */
  readonly txBudget?: number;
  /**
   * TX metadata for checksum offload (`tx_metadata_len` = 24 bytes before every TX frame):
   * "off" (default) registers none; "auto" asks and falls back to none when the kernel refuses
   * (`txChecksumFallback` says why); "on" insists (`XdpTxChecksumUnsupportedError`);
   * "software" insists and adds XDP_UMEM_TX_SW_CSUM (copy mode computes on the CPU).
   */
  readonly txChecksum?: "off" | "auto" | "on" | "software";
  /**
   * RX frames posted to the fill ring at bind, 1 .. ringSize (default ringSize). The others,
   * frames [rxPosted, ringSize), stay with the caller, who may post them later (`XdpLink`
   * keeps a shallow fill ring and grows it under bursts).
   */
  readonly rxPosted?: number;
}

/** The kernel refused TX metadata (checksum offload) although it was required. */
export class XdpTxChecksumUnsupportedError extends XdpError {
  /** Builds the error. */
  constructor(detail: string) {
    super(
      "setsockopt(XDP_UMEM_REG)",
      0,
      `AF_XDP TX checksum offload unavailable: ${detail}; it needs Linux >= 6.11 ` +
        `(XDP_UMEM_TX_METADATA_LEN): upgrade, or open with txChecksumOffload "auto"/"off" ` +
        `(the stack then computes checksums itself)`,
    );
    this.name = "XdpTxChecksumUnsupportedError";
  }
}

/** Kernel drop counters of one socket (`struct xdp_statistics`). */
export interface XdpStatistics {
  /** Dropped for reasons other than invalid descriptors. */
  rxDropped: number;
  /** Invalid descriptors on the fill/RX side. */
  rxInvalidDescs: number;
  /** Invalid descriptors posted to TX. */
  txInvalidDescs: number;
  /** Frames dropped because the RX ring was full (we were too slow). */
  rxRingFull: number;
  /** Times the kernel found the fill ring empty. */
  rxFillRingEmptyDescs: number;
  /** Times the kernel found the TX ring empty when kicked. */
  txRingEmptyDescs: number;
}

/** The four ring offset groups returned by XDP_MMAP_OFFSETS, in the kernel's order. */
interface MmapOffsets {
  rx: RingOffsets;
  tx: RingOffsets;
  fill: RingOffsets;
  completion: RingOffsets;
}

function readOffsets(fd: number): MmapOffsets {
  const buf = struct(128);
  const len = struct(4);
  new DataView(len.buffer).setUint32(0, 128, true);
  check(
    libc().getsockopt(fd, SOL_XDP, XDP_MMAP_OFFSETS, buf, len),
    "getsockopt(XDP_MMAP_OFFSETS)",
    "other",
  );
  const v = new DataView(buf.buffer);
  const group = (i: number): RingOffsets => ({
    producer: Number(v.getBigUint64(i * 32, true)),
    consumer: Number(v.getBigUint64(i * 32 + 8, true)),
    desc: Number(v.getBigUint64(i * 32 + 16, true)),
    flags: Number(v.getBigUint64(i * 32 + 24, true)),
  });
  return { rx: group(0), tx: group(1), fill: group(2), completion: group(3) };
}

function setU32(fd: number, opt: number, value: number): number {
  const b = struct(4);
  new DataView(b.buffer).setUint32(0, value, true);
  return libc().setsockopt(fd, SOL_XDP, opt, b, 4) < 0 ? errno() || -1 : 0;
}

/** The budget `XskSocket.open` asks for: a bulk pass queues ~100-150 frames per flush. */
const DEFAULT_SOCKET_TX_BUDGET = 256;

/**
 * setsockopt(XDP_MAX_TX_SKB_BUDGET) after checking the kernel's range (32 .. TX ring size);
 * returns the budget in force (32 when the kernel lacks the option).
 */
function applyTxBudget(fd: number, budget: number, ringSize: number): number {
  if (!Number.isInteger(budget) || budget < DEFAULT_TX_BUDGET || budget > ringSize) {
    throw new XskOptionError(
      `txBudget ${budget}: use an integer in ${DEFAULT_TX_BUDGET} .. ${ringSize} (the TX ring size)`,
    );
  }
  const err = setU32(fd, XDP_MAX_TX_SKB_BUDGET, budget);
  if (err === 0) return budget;
  if (err === ENOPROTOOPT) return DEFAULT_TX_BUDGET;
  throw syscallError("setsockopt(XDP_MAX_TX_SKB_BUDGET)", err, "other", `budget ${budget}`);
}

/** A mapping to unmap on close. */
interface Mapping {
  ptr: Deno.PointerObject;
  length: number;
}

/** Rejected socket options. */
export class XskOptionError extends XdpError {
  /** Builds the error. */
  constructor(message: string) {
    super("XskSocket.open", 0, message);
    this.name = "XskOptionError";
  }
}

/** An AF_XDP socket with its UMEM and rings; see the module comment. */
export class XskSocket {
  /** The socket fd (for the XSKMAP). */
  readonly fd: number;
  /** Queue id it is bound to. */
  readonly queue: number;
  /** The mode the kernel bound with. */
  readonly mode: "copy" | "zerocopy";
  /** Why zero-copy was not used although requested, or undefined. */
  readonly fallbackReason: string | undefined;
  /** The packet buffer. */
  readonly umem: Umem;
  /** RX ring (kernel → us). */
  readonly rx: ConsumerRing;
  /** TX ring (us → kernel). */
  readonly tx: ProducerRing;
  /** Fill ring (us → kernel: empty frames for RX). */
  readonly fill: ProducerRing;
  /** Completion ring (kernel → us: sent TX frames). */
  readonly completion: ConsumerRing;
  /** Free TX frames and frame ownership. */
  readonly frames: FramePool;
  /** Receive frames (the first half of the UMEM). */
  readonly rxFrameCount: number;
  /** Receive frames posted at bind: frames [0, rxPosted); the rest are the caller's. */
  readonly rxPosted: number;
  /**
   * Bytes of TX metadata before every TX frame's data (0 = none registered). TX descriptors
   * must then point `txMetadataLen` bytes into their frame (the kernel checks every one).
   */
  readonly txMetadataLen: number;
  /** XDP_UMEM_TX_SW_CSUM is set: copy mode completes requested checksums on the CPU. */
  readonly txSoftwareChecksum: boolean;
  /** Why TX metadata was asked for ("auto") but not registered, or undefined. */
  readonly txChecksumFallback: string | undefined;
  /** Descriptors the kernel sends per copy-mode kick (32 unless XDP_MAX_TX_SKB_BUDGET took). */
  get txBudget(): number {
    return this.#txBudget;
  }
  #txBudget: number;
  #maps: Mapping[];
  readonly #txMapping: TxRingMapping;
  #closed = false;
  readonly #pollfd = struct(8);
  readonly #stats = struct(48);
  readonly #statsLen = struct(4);

  private constructor(
    fd: number,
    queue: number,
    mode: "copy" | "zerocopy",
    fallbackReason: string | undefined,
    umem: Umem,
    rings: [ConsumerRing, ProducerRing, ProducerRing, ConsumerRing],
    frames: FramePool,
    rxFrameCount: number,
    rxPosted: number,
    maps: Mapping[],
    txBudget: number,
    txMapping: TxRingMapping,
    txMeta: { len: number; software: boolean; fallback: string | undefined },
  ) {
    this.fd = fd;
    this.txMetadataLen = txMeta.len;
    this.txSoftwareChecksum = txMeta.software;
    this.txChecksumFallback = txMeta.fallback;
    this.queue = queue;
    this.mode = mode;
    this.fallbackReason = fallbackReason;
    this.umem = umem;
    [this.rx, this.tx, this.fill, this.completion] = rings;
    this.frames = frames;
    this.rxFrameCount = rxFrameCount;
    this.rxPosted = rxPosted;
    this.#maps = maps;
    this.#txBudget = txBudget;
    this.#txMapping = txMapping;
    const pv = new DataView(this.#pollfd.buffer);
    pv.setInt32(0, fd, true);
    pv.setInt16(4, POLLIN, true);
  }

  /** Creates, maps and binds a socket; on zero-copy EOPNOTSUPP retries in copy mode. */
  static open(options: XskSocketOptions): XskSocket {
    const mode = options.mode ?? "auto";
    try {
      return XskSocket.#open(options, mode, undefined);
    } catch (e) {
      if (mode === "zerocopy" && e instanceof XdpZeroCopyUnsupportedError) {
        return XskSocket.#open(options, "copy", e.message);
      }
      throw e;
    }
  }

  static #open(
    options: XskSocketOptions,
    mode: BindMode,
    fallbackReason: string | undefined,
  ): XskSocket {
    const frameSize = options.frameSize ?? 2048;
    const ringSize = options.ringSize ?? 2048;
    if (ringSize < 8 || (ringSize & (ringSize - 1)) !== 0 || ringSize > 1 << 16) {
      throw new XskOptionError(`ringSize ${ringSize}: use a power of two in 8 .. 65536`);
    }
    const rxPosted = options.rxPosted ?? ringSize;
    if (!Number.isInteger(rxPosted) || rxPosted < 1 || rxPosted > ringSize) {
      throw new XskOptionError(
        `rxPosted ${rxPosted}: use an integer in 1 .. ${ringSize} (ringSize)`,
      );
    }
    const where = `interface ${options.ifname} queue ${options.queue}`;
    const c = libc();
    if (Deno.uid() === 0) raiseMemlockLimit();
    const fd = check(c.socket(AF_XDP, SOCK_RAW, 0), "socket(AF_XDP)", "socket", where);
    const maps: Mapping[] = [];
    let umem: Umem | null = null;
    try {
      umem = Umem.allocate({
        frameSize,
        frameCount: ringSize * 2,
        ...(options.hugepages === undefined ? {} : { hugepages: options.hugepages }),
      });
      // struct xdp_umem_reg: u64 addr, u64 len, u32 chunk_size, u32 headroom, u32 flags,
      // u32 tx_metadata_len (32 bytes; kernels before 6.8 read only the first 24/28).
      const txChecksum = options.txChecksum ?? "off";
      const reg = struct(32);
      const rv = new DataView(reg.buffer);
      rv.setBigUint64(0, umem.address, true);
      rv.setBigUint64(8, BigInt(frameSize * ringSize * 2), true);
      rv.setUint32(16, frameSize, true);
      rv.setUint32(20, 0, true);
      const regDetail = `${where}, ${ringSize * 2} frames of ${frameSize} bytes`;
      let txMeta = { len: 0, software: false, fallback: undefined as string | undefined };
      if (txChecksum !== "off") {
        // XDP_UMEM_TX_METADATA_LEN makes the kernel honour tx_metadata_len (6.11+). Kernels
        // that do not know the flag refuse it (EINVAL), so an accepted registration proves
        // support; a kernel < 6.8 would silently ignore a bare tx_metadata_len.
        const software = txChecksum === "software";
        rv.setUint32(24, XDP_UMEM_TX_METADATA_LEN | (software ? XDP_UMEM_TX_SW_CSUM : 0), true);
        rv.setUint32(28, TX_METADATA_LEN, true);
        if (c.setsockopt(fd, SOL_XDP, XDP_UMEM_REG, reg, 32) === 0) {
          txMeta = { len: TX_METADATA_LEN, software, fallback: undefined };
        } else {
          const err = errno();
          const why = `setsockopt(XDP_UMEM_REG) with tx_metadata_len ${TX_METADATA_LEN} ` +
            `failed (errno ${err})`;
          if (txChecksum !== "auto" || err !== 22 /* EINVAL */) {
            if (txChecksum !== "auto") throw new XdpTxChecksumUnsupportedError(why);
            throw syscallError("setsockopt(XDP_UMEM_REG)", err, "umem", regDetail);
          }
          txMeta.fallback = why;
          rv.setUint32(24, 0, true);
          rv.setUint32(28, 0, true);
        }
      }
      if (txMeta.len === 0) {
        check(
          c.setsockopt(fd, SOL_XDP, XDP_UMEM_REG, reg, 32),
          "setsockopt(XDP_UMEM_REG)",
          "umem",
          regDetail,
        );
      }
      const fillSize = ringSize * 2;
      for (
        const [opt, n, name] of [
          [XDP_UMEM_FILL_RING, fillSize, "XDP_UMEM_FILL_RING"],
          [XDP_UMEM_COMPLETION_RING, ringSize, "XDP_UMEM_COMPLETION_RING"],
          [XDP_RX_RING, ringSize, "XDP_RX_RING"],
          [XDP_TX_RING, ringSize, "XDP_TX_RING"],
        ] as const
      ) {
        const err = setU32(fd, opt, n);
        if (err !== 0) throw syscallError(`setsockopt(${name})`, err, "umem", where);
      }
      // More than 32 descriptors per copy-mode kick (pitfall 3); older kernels keep 32.
      // The default is capped by the ring; rings below 32 slots keep the kernel's 32.
      const txBudget = options.txBudget !== undefined
        ? applyTxBudget(fd, options.txBudget, ringSize)
        : ringSize >= DEFAULT_TX_BUDGET
        ? applyTxBudget(fd, Math.min(DEFAULT_SOCKET_TX_BUDGET, ringSize), ringSize)
        : DEFAULT_TX_BUDGET;
      const off = readOffsets(fd);
      const map = (pgoff: number, o: RingOffsets, n: number, descLen: number, what: string) => {
        const length = o.desc + n * descLen;
        const ptr = mmapChecked(
          length,
          PROT_READ | PROT_WRITE,
          MAP_SHARED | MAP_POPULATE,
          fd,
          pgoff,
          "other",
          `${what} ring of ${where}`,
        );
        maps.push({ ptr, length });
        return new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(ptr, length));
      };
      const rx = new ConsumerRing(
        map(XDP_PGOFF_RX_RING, off.rx, ringSize, XDP_DESC_LEN, "RX"),
        off.rx,
        ringSize,
        XDP_DESC_LEN,
      );
      const tx = new ProducerRing(
        map(XDP_PGOFF_TX_RING, off.tx, ringSize, XDP_DESC_LEN, "TX"), // maps[1]: txRingMapping
        off.tx,
        ringSize,
        XDP_DESC_LEN,
      );
      const fill = new ProducerRing(
        map(XDP_UMEM_PGOFF_FILL_RING, off.fill, fillSize, ADDR_DESC_LEN, "fill"),
        off.fill,
        fillSize,
        ADDR_DESC_LEN,
      );
      const completion = new ConsumerRing(
        map(XDP_UMEM_PGOFF_COMPLETION_RING, off.completion, ringSize, ADDR_DESC_LEN, "completion"),
        off.completion,
        ringSize,
        ADDR_DESC_LEN,
      );
      // Frames [0, ringSize) receive, [ringSize, 2 ringSize) transmit.
      const frames = new FramePool(ringSize * 2, frameSize);
      const start = fill.producerIndex;
      const got = fill.reserve(rxPosted);
      for (let i = 0; i < got; i++) {
        const addr = i * frameSize;
        frames.move(addr, FrameOwner.User, FrameOwner.KernelRx);
        fill.setAddr(start + i, addr);
      }
      fill.submit();
      for (let i = ringSize * 2 - 1; i >= ringSize; i--) frames.push(i * frameSize);

      const sxdp = struct(16);
      const sv = new DataView(sxdp.buffer);
      const modeFlag = mode === "copy" ? XDP_COPY : mode === "zerocopy" ? XDP_ZEROCOPY : 0;
      sv.setUint16(0, AF_XDP, true);
      const sg = options.multiBuffer === true ? XDP_USE_SG : 0;
      sv.setUint16(2, modeFlag | XDP_USE_NEED_WAKEUP | sg, true);
      sv.setUint32(4, options.ifindex, true);
      sv.setUint32(8, options.queue, true);
      // A socket closed just before (ours, e.g. a reopen) releases its queue from a kernel
      // work item a little later: EBUSY is retried for up to BIND_BUSY_RETRY_MS.
      let rc = c.bind(fd, sxdp, 16);
      for (
        let waited = 0, step = 1;
        rc < 0 && errno() === EBUSY && waited < BIND_BUSY_RETRY_MS;
        waited += step, step = Math.min(step * 2, 50)
      ) {
        sleepSync(step);
        rc = c.bind(fd, sxdp, 16);
      }
      check(rc, "bind(AF_XDP)", mode === "zerocopy" ? "zerocopy" : "bind", where);
      const opts = struct(4);
      const optLen = struct(4);
      new DataView(optLen.buffer).setUint32(0, 4, true);
      let zc = mode === "zerocopy";
      if (c.getsockopt(fd, SOL_XDP, XDP_OPTIONS, opts, optLen) === 0) {
        zc = (new DataView(opts.buffer).getUint32(0, true) & 1) !== 0;
      }
      return new XskSocket(
        fd,
        options.queue,
        zc ? "zerocopy" : "copy",
        fallbackReason,
        umem,
        [rx, tx, fill, completion],
        frames,
        ringSize,
        rxPosted,
        maps,
        txBudget,
        {
          pointer: maps[1]!.ptr,
          bytes: maps[1]!.length,
          producerWord: off.tx.producer >>> 2,
          consumerWord: off.tx.consumer >>> 2,
        },
        txMeta,
      );
    } catch (e) {
      // Unmap before closing: a socket fd closed with rings still mapped keeps the queue busy.
      for (const m of maps) c.munmap(m.ptr, BigInt(m.length));
      c.close(fd);
      umem?.close();
      throw e;
    }
  }

  /**
   * Sets how many descriptors one copy-mode kick may send (XDP_MAX_TX_SKB_BUDGET): `budget`
   * in 32 .. the TX ring size. Returns the budget now in force: `budget`, or 32 on a kernel
   * without the option (< 6.17). Throws `XskOptionError` for a budget out of range.
   */
  setTxBudget(budget: number): number {
    if (this.#closed) throw new XskOptionError("setTxBudget on a closed socket: open a new one");
    this.#txBudget = applyTxBudget(this.fd, budget, this.tx.size);
    return this.#txBudget;
  }

  /**
   * The TX ring's mapping, for a kick thread (`ThreadKicker`): valid until `close()`, so the
   * thread must be stopped before the socket is closed.
   */
  txRingMapping(): TxRingMapping {
    return this.#txMapping;
  }

  /**
   * TX kick: `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`. Returns 0, or the errno when the
   * kernel is busy (EAGAIN/EBUSY/ENOBUFS/ENETDOWN: retry on the next flush); throws otherwise.
   */
  kickTx(): number {
    if (libc().sendto(this.fd, null, null, MSG_DONTWAIT, null, 0) >= 0) return 0;
    const e = errno();
    if (e === EAGAIN || e === EBUSY || e === ENOBUFS || e === ENETDOWN) return e;
    throw syscallError("sendto(AF_XDP kick)", e, "other", `queue ${this.queue}`);
  }

  /** RX wakeup when the fill ring needs one: `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`. */
  wakeRx(): void {
    libc().recvfrom(this.fd, null, null, MSG_DONTWAIT, null, null);
  }

  /** Blocks (synchronously) up to `timeoutMs` for a received frame; true when one is ready. */
  pollSync(timeoutMs: number): boolean {
    return libc().poll(this.#pollfd, ONE, timeoutMs) > 0;
  }

  /** Waits up to `timeoutMs` on Deno's thread pool (idle waits only); true when readable. */
  async pollAsync(timeoutMs: number): Promise<boolean> {
    return (await libc().poll_wait(this.#pollfd, 1n, timeoutMs)) > 0;
  }

  /** Reads XDP_STATISTICS into `out` (or a new object). */
  statistics(out?: XdpStatistics): XdpStatistics {
    const s = out ?? {
      rxDropped: 0,
      rxInvalidDescs: 0,
      txInvalidDescs: 0,
      rxRingFull: 0,
      rxFillRingEmptyDescs: 0,
      txRingEmptyDescs: 0,
    };
    if (this.#closed) return s;
    new DataView(this.#statsLen.buffer).setUint32(0, 48, true);
    check(
      libc().getsockopt(this.fd, SOL_XDP, XDP_STATISTICS, this.#stats, this.#statsLen),
      "getsockopt(XDP_STATISTICS)",
      "other",
    );
    const v = new DataView(this.#stats.buffer);
    s.rxDropped = Number(v.getBigUint64(0, true));
    s.rxInvalidDescs = Number(v.getBigUint64(8, true));
    s.txInvalidDescs = Number(v.getBigUint64(16, true));
    s.rxRingFull = Number(v.getBigUint64(24, true));
    s.rxFillRingEmptyDescs = Number(v.getBigUint64(32, true));
    s.txRingEmptyDescs = Number(v.getBigUint64(40, true));
    return s;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Unmaps the rings, closes the socket, unmaps the UMEM. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const c = libc();
    for (const m of this.#maps) c.munmap(m.ptr, BigInt(m.length));
    this.#maps = [];
    c.close(this.fd);
    this.umem.close();
  }
}
