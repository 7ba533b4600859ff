/**
 * `XdpLink`: a `Link` over AF_XDP. Received frames are handed up as views into the UMEM (no
 * copy) in batches; transmit lends a free UMEM frame that the stack fills in place; `flush()`
 * publishes the batch with one store and kicks the kernel (sendto) only when it asks for it.
 *
 * Driver loop sketch:
 *
 * ```ts
 * const link = XdpLink.open({ ifname: "veth0" });
 * while (running) {
 *   const n = link.receive(onFrame, 64); // onFrame may transmitBuffer()/commit() replies
 *   link.flush();                        // also drains completions and retries busy kicks
 *   if (n === 0) await link.wait(10);    // idle: sleep in poll() on the thread pool
 * }
 * link.close();
 * ```
 *
 * The XDP program is attached with a BPF link: it disappears when the link is closed, when
 * the process exits or crashes (the kernel closes the fd), and on SIGINT/SIGTERM (handled
 * here: every open XdpLink is closed, then the process exits with 128 + signal).
 *
 * @module
 */

import type { Link, LinkCapabilities } from "../stacks/link/link.ts";
import { keptView, keptViews } from "../stacks/link/kept_view.ts";
import { AS_DOUBLE } from "../stacks/tcpip/tcp/f64.ts";
import { type AttachMode, XdpProgram } from "./bpf.ts";
import { libc, struct, syscallError, XdpError } from "./libc.ts";
import { netdevInfo } from "./netdev.ts";
import {
  type BindMode,
  XDP_PKT_CONTD,
  XdpStatistics,
  XdpTxChecksumUnsupportedError,
  XskOptionError,
  XskSocket,
} from "./socket.ts";
import { FrameOwner, type HugepageMode } from "./umem.ts";
import { allowedCpus, kickUntilDrained, ThreadKicker } from "./kick.ts";
import {
  completeChecksum,
  validChecksumRequest,
  writeChecksumRequest,
  XDP_TX_METADATA,
} from "./tx_metadata.ts";

/** Bytes the kernel reserves in front of a received frame (XDP_PACKET_HEADROOM). */
export const XDP_PACKET_HEADROOM = 256;
/** Ethernet header plus one VLAN tag. */
const L2_OVERHEAD = 18;
/** Largest layer-3 MTU carried with multi-buffer frames (jumbo frames). */
const MULTI_BUFFER_MAX_MTU = 9216;

/** Options of `XdpLink.open`. */
export interface XdpLinkOptions {
  /** Interface to attach to. */
  readonly ifname: string;
  /** Number of queues (ids 0..n-1) or an explicit list of queue ids; default 1. */
  readonly queues?: number | readonly number[];
  /** Socket bind mode; default "auto" (zero-copy when the driver supports it). */
  readonly mode?: BindMode;
  /** XDP attach mode; default "auto" (generic on veth, native elsewhere with fallback). */
  readonly attachMode?: AttachMode;
  /** UMEM frame size, 2048 or 4096; default 2048. */
  readonly frameSize?: number;
  /** RX/TX ring descriptors per queue (power of two); default 2048. */
  readonly ringSize?: number;
  /** Huge pages for the UMEM; default "auto". */
  readonly hugepages?: HugepageMode;
  /** Largest batch `receive()` is asked for (capabilities.maxBatch); default 64. */
  readonly maxBatch?: number;
  /**
   * RX frames kept posted to the fill ring in the steady state, per queue; default
   * min(ringSize, 1024). A receive that finds half of the posted frames already filled doubles
   * it (up to ringSize: a burst); a long stretch that never needs a quarter of it halves it
   * again. The kernel fills frames in the order they were posted, so this is the receive
   * path's working set: a bulk receive cycling through all 8192 frames of the NSM's rings ran
   * 15 % slower than through 1024 (cold UMEM lines and views; bench/RESULTS.md, session 7).
   */
  readonly rxFillDepth?: number;
  /** Close all links and exit on SIGINT/SIGTERM; default true. */
  readonly handleSignals?: boolean;
  /**
   * Accept TCP/UDP checksums left partial by the Linux peer (`capabilities.rxPartialChecksum`):
   * "auto" (default) enables it only when the interface's driver is "veth", whose peer is a
   * local Linux stack that never finishes CHECKSUM_PARTIAL checksums; true/false force it.
   */
  readonly partialChecksums?: "auto" | boolean;
  /**
   * Multi-buffer AF_XDP (XDP_USE_SG, Linux >= 6.6) so frames larger than a UMEM frame (jumbo
   * MTUs) span chained descriptors: "auto" (default) uses it only when the interface MTU does
   * not fit one frame, falling back to a capped MTU with a warning when the kernel refuses;
   * true insists (errors propagate); false never. Received chains are copied into one buffer
   * (the `Link` hands out contiguous frames); long transmits are split across frames.
   */
  readonly multiBuffer?: "auto" | boolean;
  /**
   * Descriptors one copy-mode kick may send (XDP_MAX_TX_SKB_BUDGET, Linux >= 6.17): 32 ..
   * ringSize; default 256. Older kernels keep 32 (`XdpLink.txBudget` says which).
   */
  readonly txBudget?: number;
  /**
   * Kicks one `flush()` may make while the kernel stops at its budget (EAGAIN) with frames
   * left; default ringSize / txBudget (enough to drain a full ring). 1 = one kick per flush.
   */
  readonly maxKicksPerFlush?: number;
  /**
   * Where copy-mode TX kicks run: "inline" (sendto in `flush()`), "thread" (a worker thread
   * that kicks until the kernel has consumed the ring, so the kernel's per-frame transmit work
   * runs beside the stack), or "auto" ("thread" when this process may use more than one CPU,
   * else "inline"). Default "inline": on this 2-core lab the thread did not measure faster
   * (bench/RESULTS.md, "AF_XDP transmit (session 2)"). Zero-copy sockets always kick inline.
   */
  readonly txKick?: "inline" | "thread" | "auto";
  /** How long the kick thread spins for the next batch before it sleeps (µs); default 0. */
  readonly txKickSpinUs?: number;
  /**
   * TX checksum offload through AF_XDP TX metadata (`commitPartial()`,
   * `capabilities.txChecksumOffload`): "auto" (default) registers 24 bytes of TX metadata per
   * frame when the kernel accepts it (Linux >= 6.11) and uses it in copy mode; on refusal, or
   * with a zero-copy socket (driver support is not probed), offload stays off and
   * `txChecksumReason` says why (also reported through `onWarning` when the kernel refused).
   * "on" insists (throws `XdpTxChecksumUnsupportedError`; trusts a zero-copy driver);
   * "software" also sets XDP_UMEM_TX_SW_CSUM so copy mode completes checksums on the CPU
   * (wire checksums always complete; for tests and debugging); "off" registers nothing.
   */
  readonly txChecksumOffload?: "auto" | "on" | "off" | "software";
  /** Where fallbacks are reported; default `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/** Counters of an `XdpLink` (user-space side plus the kernel's XDP_STATISTICS). */
export interface XdpLinkStats {
  /** Frames handed up by `receive()`. */
  rxPackets: number;
  /** Bytes handed up. */
  rxBytes: number;
  /** Frames committed for transmit. */
  txPackets: number;
  /** Bytes committed. */
  txBytes: number;
  /** `transmitBuffer()` refused a frame longer than a UMEM frame. */
  txTooLong: number;
  /** `transmitBuffer()` found no free TX frame (all in flight). */
  txNoFrame: number;
  /** `commit()` found the TX ring full. */
  txRingFull: number;
  /** A received frame found no fill slot and was parked (should stay 0). */
  fillRingFull: number;
  /** Times a queue's fill depth doubled for a burst (`XdpLinkOptions.rxFillDepth`). */
  rxFillGrows: number;
  /** RX frames the queues keep out of their spares now (their fill depths, summed). */
  rxFillDepth: number;
  /** TX kicks (sendto), inline and on the kick thread. */
  kicks: number;
  /** Of `kicks`, those made by the kick thread. */
  kickThreadKicks: number;
  /** Times the kick thread went to sleep (0 with inline kicks). */
  kickThreadSleeps: number;
  /** Kicks answered EAGAIN/EBUSY/ENOBUFS/ENETDOWN (retried on the next flush). */
  kickBusy: number;
  /** RX wakeups (recvfrom) because the fill ring asked for one. */
  rxWakeups: number;
  /** Frames seen in a state they should not be in (kernel or driver bug; should stay 0). */
  ownershipViolations: number;
  /** Multi-buffer frames received (chains of descriptors reassembled into one frame). */
  rxMultiBuffer: number;
  /** Multi-buffer frames sent (split across UMEM frames). */
  txMultiBuffer: number;
  /** Received chains longer than the MTU allows (dropped). */
  rxTooLong: number;
  /** Frames sent with a checksum request in their TX metadata (`commitPartial`). */
  txChecksumOffloaded: number;
  /**
   * `commitPartial` frames whose checksum the link completed itself (offload off, or a
   * multi-buffer frame in "software" mode, which the kernel would sum over the first buffer).
   */
  txChecksumCompleted: number;
  /** `commitPartial` requests outside the frame (dropped; the kernel would wedge the ring). */
  txChecksumBadRequest: number;
  /** The kernel's counters, summed over the queues. */
  kernel: XdpStatistics;
}

/** Per-queue state. */
interface Queue {
  readonly sock: XskSocket;
  /**
   * The views handed up per UMEM frame (`keptView`, slot = address / frame size): a frame
   * comes back with the same length again and again (ACKs, full-size segments), and a view per
   * received frame was the receive path's one allocation.
   */
  readonly rxViews: Uint8Array[];
  /** Received frames that found no fill slot, recycled on the next receive. */
  readonly parked: Uint32Array;
  parkedCount: number;
  /** RX frames not posted (`XdpLinkOptions.rxFillDepth`): a stack, the last one back on top. */
  readonly spare: Uint32Array;
  spareCount: number;
  /** RX frames to keep out of `spare` (posted, in the kernel's rings, or being handed up). */
  depth: number;
  /** The steady-state depth: shrinking stops here. */
  readonly minDepth: number;
  /** Frames received since the depth was last reconsidered, and the largest backlog seen. */
  sinceReview: number;
  maxBacklog: number;
  /** Multi-buffer: the chain being reassembled (it may straddle receive calls). */
  readonly chain: Uint8Array;
  chainLen: number;
  inChain: boolean;
}

const NO_VIEW = new Uint8Array(0);

/** Frames received between reviews of a queue's fill depth, per RX frame of the queue. */
const DEPTH_REVIEW_LAPS = 16;

/** The RX frames a queue posts in the steady state (`XdpLinkOptions.rxFillDepth`). */
function rxFillDepth(options: XdpLinkOptions): number {
  const ring = options.ringSize ?? 2048;
  const depth = options.rxFillDepth ?? Math.min(ring, 1024);
  if (!Number.isInteger(depth) || depth < 1 || depth > ring) {
    throw new XskOptionError(`rxFillDepth ${depth}: use an integer in 1 .. ${ring} (ringSize)`);
  }
  return depth;
}

/** The socket's unposted RX frames as a stack, lowest address on top. */
function spareFrames(sock: XskSocket): Uint32Array {
  const spare = new Uint32Array(sock.rxFrameCount);
  const size = sock.umem.frameSize;
  let n = 0;
  for (let i = sock.rxFrameCount - 1; i >= sock.rxPosted; i--) spare[n++] = i * size;
  return spare;
}

/**
 * A view per UMEM frame, pre-filled so the array is dense (V8 keeps a dense array of objects
 * in fast elements; one first written at index 2048 would be a dictionary).
 */
function viewCache(frames: number): Uint8Array[] {
  return new Array<Uint8Array>(frames).fill(NO_VIEW);
}

const openLinks = new Set<XdpLink>();
let signalsInstalled = false;

function onSignal(signal: Deno.Signal): void {
  for (const l of [...openLinks]) {
    try {
      l.close();
    } catch {
      // Exiting anyway: the kernel releases what close() could not.
    }
  }
  Deno.exit(signal === "SIGINT" ? 130 : 143);
}
const onSigint = (): void => onSignal("SIGINT");
const onSigterm = (): void => onSignal("SIGTERM");

function track(link: XdpLink, signals: boolean): void {
  openLinks.add(link);
  if (signals && !signalsInstalled) {
    Deno.addSignalListener("SIGINT", onSigint);
    Deno.addSignalListener("SIGTERM", onSigterm);
    signalsInstalled = true;
  }
}

function untrack(link: XdpLink): void {
  openLinks.delete(link);
  if (openLinks.size === 0 && signalsInstalled) {
    Deno.removeSignalListener("SIGINT", onSigint);
    Deno.removeSignalListener("SIGTERM", onSigterm);
    signalsInstalled = false;
  }
}

globalThis.addEventListener("unload", () => {
  for (const l of [...openLinks]) l.close();
});

/**
 * An AF_XDP `Link`; see the module comment. With several queues, `receive()` visits them
 * round-robin and transmit uses the first queue's socket. Received checksums are not verified;
 * transmitted TCP/UDP checksums can be left partial with `commitPartial()` and completed by
 * the kernel/device through AF_XDP TX metadata (`txChecksum`, `XdpLinkOptions.txChecksumOffload`). A Linux peer on veth with TX checksum offload on sends UDP/TCP
 * frames with partial checksums (pseudo-header sum only): on veth (`partialChecksums`
 * "auto") the link says so in `capabilities.rxPartialChecksum` and the IP layer accepts
 * exactly those; elsewhere they would be dropped as bad-checksum.
 */
export class XdpLink implements Link {
  /** Interface name. */
  readonly name: string;
  /** Interface MAC address. */
  readonly mac: Uint8Array;
  /** Layer-3 MTU: the interface's, capped by what fits in a UMEM frame. */
  readonly mtu: number;
  /** No offloads on AF_XDP; `rxPartialChecksum` on veth (see `XdpLinkOptions`). */
  readonly capabilities: LinkCapabilities;
  /** Socket mode in use (the same on every queue). */
  readonly mode: "copy" | "zerocopy";
  /** XDP attach mode in use. */
  readonly attachMode: "skb" | "native";
  /** Why the requested zero-copy mode was not used, or undefined. */
  readonly fallbackReason: string | undefined;
  /** Queue ids bound. */
  readonly queueIds: readonly number[];
  /** Whether multi-buffer (XDP_USE_SG) frames are in use. */
  readonly multiBuffer: boolean;
  /** Descriptors the kernel sends per copy-mode kick (32 on kernels < 6.17). */
  readonly txBudget: number;
  /** "thread" when a kick thread sends (see `XdpLinkOptions.txKick`). */
  readonly txKick: "inline" | "thread";
  /**
   * Who completes `commitPartial()` checksums: "offload" (the kernel/device, via TX metadata),
   * "software" (the kernel on the CPU, XDP_UMEM_TX_SW_CSUM), "off" (this link, in JS).
   */
  readonly txChecksum: "offload" | "software" | "off";
  /** Why TX checksum offload is off although not disabled by the options, or undefined. */
  readonly txChecksumReason: string | undefined;
  /** Bytes between a TX frame's start and its data (the TX metadata area; 0 or 24). */
  readonly #txOff: number;
  /** Bytes of packet one TX UMEM frame holds (frame size minus `#txOff`). */
  readonly #txCap: number;
  readonly #kicker: ThreadKicker | null;
  readonly #maxKicks: number;
  readonly #kick: () => number;
  readonly #unsent: () => number;
  readonly #program: XdpProgram;
  readonly #queues: Queue[];
  readonly #tx: XskSocket;
  readonly #txBytes: Uint8Array;
  /**
   * The last view lent per UMEM frame (index = address / frame size): a bulk sender asks for
   * the same length again and again, and a view per frame was an allocation per packet.
   */
  readonly #txViews: Uint8Array[];
  /** Whole-frame views by frame index (`transmitFrame`), made once per frame. */
  readonly #txFrames: Uint8Array[];
  readonly #frameMask: number;
  readonly #frameSize: number;
  /** log2(frame size): address -> frame index. */
  readonly #frameShift: number;
  readonly #pollfds: Uint8Array<ArrayBuffer>;
  readonly #pollView: DataView;
  #rxNext = 0;
  #lent = -1;
  /** The jumbo scratch buffer is lent (multi-buffer transmit). */
  #lentJumbo = false;
  readonly #jumbo: Uint8Array;
  #txQueued = 0;
  #txUnsent = false;
  #txInFlight = 0;
  #closed = false;
  readonly #stats: XdpLinkStats = {
    // Double fields from the start (stacks/tcpip/tcp/f64.ts): rxBytes passed 2^31 2-3 s into a
    // bulk receive and the stats object's new map deoptimized #receiveQueue mid-transfer.
    rxPackets: AS_DOUBLE,
    rxBytes: AS_DOUBLE,
    txPackets: AS_DOUBLE,
    txBytes: AS_DOUBLE,
    txTooLong: 0,
    txNoFrame: 0,
    txRingFull: 0,
    fillRingFull: 0,
    rxFillGrows: 0,
    rxFillDepth: 0,
    kicks: 0,
    kickThreadKicks: 0,
    kickThreadSleeps: 0,
    kickBusy: 0,
    rxWakeups: 0,
    ownershipViolations: 0,
    rxMultiBuffer: 0,
    txMultiBuffer: 0,
    rxTooLong: 0,
    txChecksumOffloaded: 0,
    txChecksumCompleted: 0,
    txChecksumBadRequest: 0,
    kernel: {
      rxDropped: 0,
      rxInvalidDescs: 0,
      txInvalidDescs: 0,
      rxRingFull: 0,
      rxFillRingEmptyDescs: 0,
      txRingEmptyDescs: 0,
    },
  };

  private constructor(
    name: string,
    mac: Uint8Array,
    mtu: number,
    program: XdpProgram,
    socks: XskSocket[],
    maxBatch: number,
    rxPartialChecksum: boolean,
    multiBuffer: boolean,
    maxKicks: number | undefined,
    txKick: "inline" | "thread" | "auto",
    txKickSpinUs: number,
    txChecksum: "offload" | "software" | "off",
    txChecksumReason: string | undefined,
  ) {
    this.name = name;
    this.mac = mac;
    this.mtu = mtu;
    this.txChecksum = txChecksum;
    this.txChecksumReason = txChecksumReason;
    this.capabilities = {
      rxChecksumVerified: false,
      txChecksumOffload: txChecksum !== "off",
      rxPartialChecksum,
      maxBatch,
    };
    this.#program = program;
    this.attachMode = program.attachMode;
    const first = socks[0]!;
    this.mode = first.mode;
    this.fallbackReason = first.fallbackReason;
    this.queueIds = socks.map((s) => s.queue);
    this.multiBuffer = multiBuffer;
    const frameMax = mtu + L2_OVERHEAD;
    this.#queues = socks.map((sock) => ({
      sock,
      rxViews: keptViews(sock.umem.frameCount),
      parked: new Uint32Array(sock.rxFrameCount),
      parkedCount: 0,
      spare: spareFrames(sock),
      spareCount: sock.rxFrameCount - sock.rxPosted,
      depth: sock.rxPosted,
      minDepth: sock.rxPosted,
      sinceReview: 0,
      maxBacklog: 0,
      chain: new Uint8Array(multiBuffer ? frameMax : 0),
      chainLen: 0,
      inChain: false,
    }));
    this.#jumbo = new Uint8Array(multiBuffer ? frameMax : 0);
    this.#tx = first;
    this.txBudget = first.txBudget;
    const tx = first.tx;
    this.#maxKicks = maxKicks ?? Math.max(1, Math.ceil(tx.size / first.txBudget));
    this.#kick = () => first.kickTx();
    this.#unsent = () => tx.size - tx.free(tx.size);
    const threaded = first.mode === "copy" &&
      (txKick === "thread" || (txKick === "auto" && allowedCpus() > 1));
    this.txKick = threaded ? "thread" : "inline";
    this.#kicker = threaded
      ? new ThreadKicker(first.fd, first.txRingMapping(), txKickSpinUs)
      : null;
    this.#txBytes = first.umem.bytes;
    this.#txViews = viewCache(first.umem.frameCount);
    this.#txFrames = viewCache(first.umem.frameCount);
    this.#frameSize = first.umem.frameSize;
    this.#txOff = first.txMetadataLen;
    this.#txCap = first.umem.frameSize - first.txMetadataLen;
    this.#frameShift = 31 - Math.clz32(first.umem.frameSize);
    this.#frameMask = ~(first.umem.frameSize - 1);
    const st = this.#stats;
    st.rxPackets =
      st.rxBytes =
      st.txPackets =
      st.txBytes =
        0;
    this.#pollfds = struct(8 * socks.length);
    const pv = this.#pollView = new DataView(this.#pollfds.buffer);
    socks.forEach((s, i) => {
      pv.setInt32(i * 8, s.fd, true);
      pv.setInt16(i * 8 + 4, 1, /* POLLIN */ true);
    });
  }

  /**
   * Attaches to `options.ifname`: loads and attaches the redirect program, opens one socket per
   * queue and steers each queue to its socket. Throws a typed `XdpError` (see libc.ts) and
   * leaves nothing attached on failure.
   */
  static open(options: XdpLinkOptions): XdpLink {
    const info = netdevInfo(options.ifname);
    const q = options.queues ?? 1;
    const ids = typeof q === "number" ? Array.from({ length: q }, (_, i) => i) : [...q];
    if (ids.length === 0 || ids.some((i) => !Number.isInteger(i) || i < 0)) {
      throw new XdpError("XdpLink.open", 0, `queues ${String(q)}: give a count >= 1 or ids >= 0`);
    }
    const warn = options.onWarning ?? ((m: string) => console.warn(m));
    const frameSize = options.frameSize ?? 2048;
    const fit = frameSize - XDP_PACKET_HEADROOM - L2_OVERHEAD;
    const mbOption = options.multiBuffer ?? "auto";
    let multiBuffer = mbOption === true || (mbOption === "auto" && info.mtu > fit);
    let attached: { program: XdpProgram; socks: XskSocket[] };
    try {
      attached = XdpLink.#attach(info, ids, options, multiBuffer);
    } catch (e) {
      // An older kernel refuses BPF_F_XDP_HAS_FRAGS or XDP_USE_SG (EINVAL/EOPNOTSUPP): in
      // "auto" mode fall back to single-buffer frames and a capped MTU.
      if (
        !multiBuffer || mbOption !== "auto" || !(e instanceof XdpError) || e.errno === 1 ||
        e instanceof XdpTxChecksumUnsupportedError // not about multi-buffer: report as is
      ) {
        throw e;
      }
      warn(`XdpLink ${info.name}: multi-buffer AF_XDP unavailable (${e.message})`);
      multiBuffer = false;
      attached = XdpLink.#attach(info, ids, options, false);
    }
    const { program, socks } = attached;
    const first = socks[0]!;
    if (first.fallbackReason !== undefined) {
      warn(`XdpLink ${info.name}: zero-copy unavailable, using copy mode: ${first.fallbackReason}`);
    }
    const maxMtu = multiBuffer ? MULTI_BUFFER_MAX_MTU : fit;
    if (info.mtu > maxMtu) {
      warn(
        multiBuffer
          ? `XdpLink ${info.name}: interface MTU ${info.mtu} exceeds ${maxMtu}; using ${maxMtu}`
          : `XdpLink ${info.name}: interface MTU ${info.mtu} exceeds what a ${frameSize}-byte ` +
            `UMEM frame holds; using MTU ${fit} (jumbo frames need multi-buffer AF_XDP)`,
      );
    }
    const csumOption = options.txChecksumOffload ?? "auto";
    let txChecksum: "offload" | "software" | "off" = "off";
    let txChecksumReason: string | undefined = undefined;
    if (csumOption !== "off") {
      if (first.txMetadataLen === 0) {
        txChecksumReason = first.txChecksumFallback ?? "no TX metadata registered";
        warn(`XdpLink ${info.name}: TX checksum offload off: ${txChecksumReason}`);
      } else if (csumOption === "software") {
        txChecksum = "software";
      } else if (first.mode === "zerocopy" && csumOption === "auto") {
        txChecksumReason = "zero-copy socket: the driver's TX checksum support (netdev " +
          "xsk-features tx-checksum) is not probed; open with txChecksumOffload 'on' to trust it";
      } else {
        txChecksum = "offload";
      }
    }
    const partial = options.partialChecksums ?? "auto";
    const link = new XdpLink(
      info.name,
      info.mac,
      Math.min(info.mtu, maxMtu),
      program,
      socks,
      options.maxBatch ?? 64,
      partial === "auto" ? info.driver === "veth" : partial,
      multiBuffer,
      options.maxKicksPerFlush,
      options.txKick ?? "inline",
      options.txKickSpinUs ?? 0,
      txChecksum,
      txChecksumReason,
    );
    track(link, options.handleSignals ?? true);
    return link;
  }

  /** Loads/attaches the program and opens one socket per queue; cleans up on failure. */
  static #attach(
    info: ReturnType<typeof netdevInfo>,
    ids: number[],
    options: XdpLinkOptions,
    multiBuffer: boolean,
  ): { program: XdpProgram; socks: XskSocket[] } {
    const program = XdpProgram.attach({
      ifname: info.name,
      ifindex: info.index,
      slots: Math.max(...ids) + 1,
      mode: options.attachMode ?? "auto",
      driver: info.driver,
      frags: multiBuffer,
    });
    const socks: XskSocket[] = [];
    try {
      for (const queue of ids) {
        const sock = XskSocket.open({
          ifname: info.name,
          ifindex: info.index,
          queue,
          mode: options.mode ?? "auto",
          frameSize: options.frameSize ?? 2048,
          ringSize: options.ringSize ?? 2048,
          rxPosted: rxFillDepth(options),
          hugepages: options.hugepages ?? "auto",
          multiBuffer,
          txChecksum: options.txChecksumOffload ?? "auto",
          ...(options.txBudget === undefined ? {} : { txBudget: options.txBudget }),
        });
        socks.push(sock);
        program.setSocket(queue, sock.fd);
      }
    } catch (e) {
      for (const s of socks) s.close();
      program.close();
      throw e;
    }
    return { program, socks };
  }

  /**
   * Hands up to `max` received frames (UMEM views; with multi-buffer, chains are copied into
   * one per-queue buffer first) to `onFrame`; returns how many descriptors it consumed.
   */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    // After close() the rings are unmapped: touching them would fault, so every entry point
    // checks first.
    if (this.#closed) return 0;
    const queues = this.#queues;
    const n = queues.length;
    let total = 0;
    if (n === 1) {
      total = this.#receiveQueue(queues[0]!, onFrame, max);
    } else {
      for (let k = 0; k < n && total < max; k++) {
        total += this.#receiveQueue(queues[(this.#rxNext + k) % n]!, onFrame, max - total);
      }
      this.#rxNext = (this.#rxNext + 1) % n;
    }
    return total;
  }

  /**
   * True when `receive` has a frame (or a parked fill slot or an RX wake-up to do) or `flush`
   * has frames to publish or kicks to retry: the runtime's cheap check on a spinning pass.
   */
  hasWork(): boolean {
    if (this.#closed) return false;
    if (this.#txQueued > 0 || this.#txUnsent) return true;
    const queues = this.#queues;
    for (let k = 0; k < queues.length; k++) {
      const q = queues[k]!;
      if (q.parkedCount > 0 || q.sock.rx.peek(1) > 0 || q.sock.fill.needsWakeup()) return true;
    }
    return false;
  }

  #receiveQueue(q: Queue, onFrame: (frame: Uint8Array) => void, max: number): number {
    const sock = q.sock;
    if (q.parkedCount > 0) this.#unpark(q);
    const rx = sock.rx;
    const n = rx.peek(max);
    if (n === 0) {
      if (sock.fill.needsWakeup()) {
        sock.wakeRx();
        this.#stats.rxWakeups++;
      }
      return 0;
    }
    // Frames the kernel has filled and we have not taken (a lower bound: peek re-reads the
    // producer only when its cache holds fewer than asked for).
    const backlog = rx.ready();
    if (backlog > q.maxBacklog) q.maxBacklog = backlog;
    if (q.spareCount > 0 && 2 * backlog >= q.depth) this.#deepen(q);
    const start = rx.consumerIndex;
    const bytes = sock.umem.bytes;
    const views = q.rxViews;
    const shift = this.#frameShift;
    let i = 0;
    let rxBytes = 0;
    let frames = 0;
    const mb = this.multiBuffer;
    try {
      for (; i < n; i++) {
        const idx = start + i;
        const addr = rx.addr(idx);
        const len = rx.len(idx);
        rxBytes += len;
        if (mb && (q.inChain || (rx.options(idx) & XDP_PKT_CONTD) !== 0)) {
          this.#chain(q, bytes, addr, len, (rx.options(idx) & XDP_PKT_CONTD) !== 0, onFrame);
          continue;
        }
        frames++;
        onFrame(keptView(views, addr >>> shift, bytes, addr, addr + len));
      }
    } finally {
      // Recycle every frame of the batch, even when onFrame threw part-way: back to the fill
      // ring, or to the spares while the queue holds more than its depth.
      const fill = sock.fill;
      const mask = this.#frameMask;
      let keep = sock.rxFrameCount - q.spareCount - q.depth;
      if (keep > n) keep = n;
      let j = 0;
      for (; j < keep; j++) q.spare[q.spareCount++] = rx.addr(start + j) & mask;
      const fstart = fill.producerIndex;
      const got = fill.reserve(n - keep);
      for (let k = 0; j < n; j++, k++) {
        const base = rx.addr(start + j) & mask;
        if (k < got) fill.setAddr(fstart + k, base);
        else {
          q.parked[q.parkedCount++] = base;
          this.#stats.fillRingFull++;
        }
      }
      rx.release(n);
      fill.submit();
      q.sinceReview += n;
      if (q.sinceReview >= DEPTH_REVIEW_LAPS * sock.rxFrameCount) this.#review(q);
      this.#stats.rxPackets += frames;
      this.#stats.rxBytes += rxBytes;
    }
    return n;
  }

  /**
   * Appends one descriptor of a multi-buffer chain to the queue's reassembly buffer; hands
   * the frame up at the last one (XDP_PKT_CONTD clear). A chain longer than the buffer is
   * consumed to its end and dropped (counted).
   */
  #chain(
    q: Queue,
    bytes: Uint8Array,
    addr: number,
    len: number,
    more: boolean,
    onFrame: (frame: Uint8Array) => void,
  ): void {
    const buf = q.chain;
    // chainLen runs past buf.length to mark an oversized chain until its end.
    if (q.chainLen + len <= buf.length) buf.set(bytes.subarray(addr, addr + len), q.chainLen);
    q.chainLen += len;
    q.inChain = more;
    if (more) return;
    const total = q.chainLen;
    q.chainLen = 0;
    if (total > buf.length) {
      this.#stats.rxTooLong++;
      return;
    }
    this.#stats.rxPackets++;
    this.#stats.rxMultiBuffer++;
    onFrame(buf.subarray(0, total));
  }

  /** A burst: doubles the queue's depth (up to all its RX frames) and posts spares to match. */
  #deepen(q: Queue): void {
    const total = q.sock.rxFrameCount;
    q.depth = q.depth * 2 > total ? total : q.depth * 2;
    this.#stats.rxFillGrows++;
    let add = q.depth - (total - q.spareCount);
    if (add <= 0) return;
    const fill = q.sock.fill;
    const start = fill.producerIndex;
    add = fill.reserve(add);
    for (let j = 0; j < add; j++) fill.setAddr(start + j, q.spare[--q.spareCount]!);
    if (add > 0) fill.submit();
  }

  /**
   * Every DEPTH_REVIEW_LAPS x its RX frames received (131,072 frames, ~0.2 s of a bulk
   * receive, with the NSM's 8192): halves a depth that the largest backlog since the last
   * review stayed under a quarter of (down to the steady-state depth); the recycling then keeps
   * frames back in the spares until the queue holds no more than that.
   */
  #review(q: Queue): void {
    if (q.depth > q.minDepth && 4 * q.maxBacklog < q.depth) {
      const half = q.depth >> 1;
      q.depth = half < q.minDepth ? q.minDepth : half;
    }
    q.sinceReview = 0;
    q.maxBacklog = 0;
  }

  #unpark(q: Queue): void {
    const fill = q.sock.fill;
    const start = fill.producerIndex;
    const got = fill.reserve(q.parkedCount);
    for (let j = 0; j < got; j++) fill.setAddr(start + j, q.parked[--q.parkedCount]!);
    if (got > 0) fill.submit();
  }

  /**
   * Lends a free UMEM TX frame of `length` bytes, or null when none is free or it is too long.
   * With multi-buffer, a frame longer than a UMEM frame is written into a scratch buffer and
   * split across UMEM frames by `commit()`.
   */
  transmitBuffer(length: number): Uint8Array | null {
    if (this.#closed) return null;
    this.#lentJumbo = false;
    const cap = this.#txCap;
    if (length > cap && length <= this.#jumbo.length) {
      this.#lentJumbo = true;
      return this.#jumbo.subarray(0, length);
    }
    if (length > cap || length <= 0) {
      this.#stats.txTooLong++;
      return null;
    }
    const addr = this.#lendAddr();
    if (addr < 0) return null;
    const i = addr >>> this.#frameShift;
    // Data starts after the frame's TX metadata area (the kernel checks every descriptor).
    const at = addr + this.#txOff;
    let v = this.#txViews[i]!;
    if (v.length !== length || v.byteOffset !== this.#txBytes.byteOffset + at) {
      v = this.#txBytes.subarray(at, at + length);
      this.#txViews[i] = v;
    }
    return v;
  }

  /**
   * `transmitBuffer(length)` that lends the UMEM frame's whole data area (the same view every
   * time that frame is lent), for callers writing at offsets: no view per frame length. A
   * multi-buffer frame longer than one UMEM frame gets the scratch buffer as with
   * `transmitBuffer`.
   */
  transmitFrame(length: number): Uint8Array | null {
    if (length > this.#txCap) return this.transmitBuffer(length);
    if (this.#closed) return null;
    this.#lentJumbo = false;
    if (length <= 0) {
      this.#stats.txTooLong++;
      return null;
    }
    const addr = this.#lendAddr();
    if (addr < 0) return null;
    const i = addr >>> this.#frameShift;
    let v = this.#txFrames[i]!;
    if (v === NO_VIEW) {
      const at = addr + this.#txOff;
      v = this.#txBytes.subarray(at, at + this.#txCap);
      this.#txFrames[i] = v;
    }
    return v;
  }

  /** The lent TX frame's UMEM address (a free one taken if none is lent), or -1 (counted). */
  #lendAddr(): number {
    let addr = this.#lent;
    if (addr < 0) {
      const sock = this.#tx;
      if (sock.frames.available === 0) this.#reclaim();
      addr = sock.frames.pop();
      if (addr < 0) {
        this.#stats.txNoFrame++;
        return -1;
      }
      this.#lent = addr;
    }
    return addr;
  }

  /** Queues the lent frame (trimmed to `length`) on the TX ring; `flush()` publishes it. */
  commit(length: number): void {
    if (this.#lentJumbo) {
      this.#lentJumbo = false;
      this.#commitChain(length, -1, 0);
      return;
    }
    this.#commitOne(length, 0);
  }

  /**
   * Queues the lent frame like `commit(length)` with a request to complete the checksum at
   * `csumStart + csumOffset` over [csumStart, end of frame); the field must hold the folded,
   * uncomplemented pseudo-header sum (see `Link.commitPartial`). With `txChecksum` "offload"
   * or "software" the request goes in the frame's TX metadata (XDP_TX_METADATA on the first
   * descriptor); with "off" the link completes the checksum itself. A request outside the
   * frame (or outside a chain's first buffer) is dropped and counted (`txChecksumBadRequest`):
   * the kernel would refuse it and stall the TX ring.
   */
  commitPartial(length: number, csumStart: number, csumOffset: number): void {
    if (this.#lentJumbo) {
      this.#lentJumbo = false;
      const len = length < this.#jumbo.length ? length : this.#jumbo.length;
      const first = len < this.#txCap ? len : this.#txCap;
      if (!validChecksumRequest(first, csumStart, csumOffset)) {
        this.#stats.txChecksumBadRequest++;
        return;
      }
      // The kernel's software path sums only the first buffer of a chain: finish it here.
      if (this.txChecksum !== "offload") {
        completeChecksum(this.#jumbo.subarray(0, len), csumStart, csumOffset);
        this.#stats.txChecksumCompleted++;
        this.#commitChain(length, -1, 0);
        return;
      }
      this.#commitChain(length, csumStart, csumOffset);
      return;
    }
    const addr = this.#lent;
    if (addr < 0 || this.#closed) return;
    const len = length < this.#txCap ? length : this.#txCap;
    if (!validChecksumRequest(len, csumStart, csumOffset)) {
      this.#stats.txChecksumBadRequest++;
      return; // the frame stays lent, as when the ring is full
    }
    const at = addr + this.#txOff;
    if (this.txChecksum === "off") {
      completeChecksum(this.#txBytes.subarray(at, at + len), csumStart, csumOffset);
      this.#stats.txChecksumCompleted++;
      this.#commitOne(length, 0);
      return;
    }
    writeChecksumRequest(this.#txBytes, at, csumStart, csumOffset);
    if (this.#commitOne(length, XDP_TX_METADATA)) this.#stats.txChecksumOffloaded++;
  }

  /** Posts the lent single-buffer frame with descriptor `options`; false when not queued. */
  #commitOne(length: number, options: number): boolean {
    const addr = this.#lent;
    if (addr < 0 || this.#closed) return false;
    const sock = this.#tx;
    const tx = sock.tx;
    const idx = tx.producerIndex;
    if (tx.reserve(1) === 0) {
      // Keep the frame lent: the next transmitBuffer() reuses it; this packet is lost.
      this.#stats.txRingFull++;
      return false;
    }
    const len = length < this.#txCap ? length : this.#txCap;
    tx.setDesc(idx, addr + this.#txOff, len, options);
    sock.frames.move(addr, FrameOwner.User, FrameOwner.KernelTx); // counts violations itself
    this.#lent = -1;
    this.#txQueued++;
    this.#txInFlight++;
    this.#stats.txPackets++;
    this.#stats.txBytes += len;
    return true;
  }

  /**
   * Splits the jumbo scratch frame over UMEM frames chained with XDP_PKT_CONTD; with
   * `csumStart` >= 0 the first descriptor carries a checksum request (the kernel reads TX
   * metadata from a packet's first descriptor only).
   */
  #commitChain(length: number, csumStart: number, csumOffset: number): void {
    if (this.#closed) return;
    const len = length < this.#jumbo.length ? length : this.#jumbo.length;
    const size = this.#txCap;
    const txOff = this.#txOff;
    const parts = Math.ceil(len / size);
    const sock = this.#tx;
    const frames = sock.frames;
    // All or nothing: a partial chain would be an invalid packet.
    if (frames.available + (this.#lent >= 0 ? 1 : 0) < parts) this.#reclaim();
    if (frames.available + (this.#lent >= 0 ? 1 : 0) < parts) {
      this.#stats.txNoFrame++;
      return;
    }
    const tx = sock.tx;
    if (tx.free(parts) < parts) {
      this.#stats.txRingFull++;
      return;
    }
    const idx = tx.producerIndex;
    tx.reserve(parts);
    const src = this.#jumbo;
    for (let k = 0; k < parts; k++) {
      let addr = this.#lent;
      if (addr >= 0) this.#lent = -1;
      else addr = frames.pop();
      const off = k * size;
      const n = len - off < size ? len - off : size;
      const at = addr + txOff;
      this.#txBytes.set(src.subarray(off, off + n), at);
      let opts = k < parts - 1 ? XDP_PKT_CONTD : 0;
      if (k === 0 && csumStart >= 0) {
        writeChecksumRequest(this.#txBytes, at, csumStart, csumOffset);
        opts |= XDP_TX_METADATA;
      }
      tx.setDesc(idx + k, at, n, opts);
      frames.move(addr, FrameOwner.User, FrameOwner.KernelTx);
    }
    if (csumStart >= 0) this.#stats.txChecksumOffloaded++;
    this.#txQueued += parts;
    this.#txInFlight += parts;
    this.#stats.txPackets++;
    this.#stats.txMultiBuffer++;
    this.#stats.txBytes += len;
  }

  /** Publishes committed frames, kicks the kernel when needed, and recycles completions. */
  flush(): void {
    if (this.#closed) return;
    const sock = this.#tx;
    const tx = sock.tx;
    if (this.#txQueued > 0) {
      tx.submit();
      this.#txQueued = 0;
      this.#txUnsent = true;
    }
    const kicker = this.#kicker;
    // Until the thread runs (and should it die), flush kicks inline as without one.
    if (kicker !== null && this.#txUnsent && kicker.running) {
      kicker.request(); // it kicks until the ring is consumed, including later publishes
      this.#txUnsent = false;
    }
    if (kicker !== null && kicker.fatal !== 0) {
      throw syscallError("sendto(AF_XDP kick thread)", kicker.fatal, "other", `on ${this.name}`);
    }
    if (this.#txUnsent) {
      // Copy mode sends at most txBudget frames per kick: kick again while that is what
      // stopped it, rather than leave the rest for the next loop pass.
      if (tx.needsWakeup()) {
        kickUntilDrained(this.#kick, this.#unsent, this.#maxKicks, this.#stats);
      }
      // Everything consumed by the kernel: no more kicks until the next batch.
      if (tx.free(tx.size) === tx.size) this.#txUnsent = false;
    }
    if (this.#txInFlight > 0) this.#reclaim();
  }

  #reclaim(): void {
    const sock = this.#tx;
    const comp = sock.completion;
    const n = comp.peek(comp.size);
    if (n === 0) return;
    const start = comp.consumerIndex;
    const frames = sock.frames;
    const mask = this.#frameMask;
    for (let i = 0; i < n; i++) {
      const addr = comp.addr(start + i) & mask;
      // A completion for a frame we never sent is counted by move() and not reused.
      if (frames.move(addr, FrameOwner.KernelTx, FrameOwner.User)) frames.push(addr);
    }
    comp.release(n);
    this.#txInFlight -= n;
  }

  /**
   * Waits until a frame is ready on any queue or `timeoutMs` passes (poll(2) on Deno's thread
   * pool: for idle periods only, it costs tens of µs). Returns true when something is ready.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return false;
    const r = await libc().poll_wait(this.#pollfds, BigInt(this.#queues.length), timeoutMs);
    return r > 0;
  }

  /**
   * The descriptors `wait()` polls (one AF_XDP socket per queue), for a caller that sleeps on
   * them itself (NsmRuntime's sleeper thread, nsm/sleeper.ts). False once closed.
   */
  pollFds(into: number[]): boolean {
    if (this.#closed) return false;
    const pv = this.#pollView;
    for (let i = 0; i < this.#queues.length; i++) into.push(pv.getInt32(i * 8, true));
    return true;
  }

  /** A snapshot of the counters, with the kernel's XDP_STATISTICS summed over the queues. */
  stats(): XdpLinkStats {
    const k = this.#stats.kernel;
    k.rxDropped = k.rxInvalidDescs = k.txInvalidDescs = 0;
    k.rxRingFull = k.rxFillRingEmptyDescs = k.txRingEmptyDescs = 0;
    for (const q of this.#queues) {
      if (q.sock.closed) continue;
      const s = q.sock.statistics();
      k.rxDropped += s.rxDropped;
      k.rxInvalidDescs += s.rxInvalidDescs;
      k.txInvalidDescs += s.txInvalidDescs;
      k.rxRingFull += s.rxRingFull;
      k.rxFillRingEmptyDescs += s.rxFillRingEmptyDescs;
      k.txRingEmptyDescs += s.txRingEmptyDescs;
    }
    let violations = 0;
    let depth = 0;
    for (const q of this.#queues) {
      violations += q.sock.frames.violations;
      depth += q.depth;
    }
    const kicker = this.#kicker;
    return {
      ...this.#stats,
      kicks: this.#stats.kicks + (kicker?.kicks ?? 0),
      kickBusy: this.#stats.kickBusy + (kicker?.kickBusy ?? 0),
      kickThreadKicks: kicker?.kicks ?? 0,
      kickThreadSleeps: kicker?.sleeps ?? 0,
      ownershipViolations: violations,
      rxFillDepth: depth,
      kernel: { ...k },
    };
  }

  /** True while the kick thread (`txKick` "thread") is running; false without one. */
  get kickThreadRunning(): boolean {
    return this.#kicker?.running ?? false;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Detaches the program (first, so the kernel stops redirecting), then closes the sockets and
   * unmaps the UMEM. Afterwards receive/transmit do nothing, and views of frames kept past
   * their callback (which the `Link` contract forbids) point to unmapped memory.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    untrack(this);
    let error: unknown = undefined;
    try {
      this.#program.close();
    } catch (e) {
      error = e;
    }
    // The kick thread reads the TX ring: it must be gone before the ring is unmapped.
    if (this.#kicker !== null && !this.#kicker.stop()) {
      error ??= new XdpError("XdpLink.close", 0, "the TX kick thread did not stop within 2 s");
    }
    for (const q of this.#queues) {
      try {
        q.sock.close();
      } catch (e) {
        error ??= e;
      }
    }
    if (error !== undefined) throw error;
  }

  /** `using link = XdpLink.open(...)` closes it at scope exit. */
  [Symbol.dispose](): void {
    this.close();
  }
}
