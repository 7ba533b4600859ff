/**
 * Classic libpcap files: a reader for test fixtures, a writer for traces, and `PcapLink`, a
 * `Link` middleware that records every frame a device receives or transmits.
 *
 * File layout (all fields in the byte order announced by the magic number):
 *
 * ```text
 * global header, 24 bytes
 *  0      4      6      8            12           16           20           24
 *  +------+------+------+------------+------------+------------+------------+
 *  | magic        |major |minor |  thiszone  |  sigfigs   |  snaplen   |  linktype  |
 *  +------+------+------+------------+------------+------------+------------+
 * record header, 16 bytes, then incl_len captured bytes
 *  0            4            8            12           16
 *  +------------+------------+------------+------------+
 *  |   ts_sec   | ts_frac    |  incl_len  |  orig_len  |
 *  +------------+------------+------------+------------+
 * ```
 *
 * `ts_frac` is microseconds for magic 0xa1b2c3d4 and nanoseconds for 0xa1b23c4d. Either
 * magic may appear byte-swapped (written on a host of the other endianness).
 *
 * Reading example:
 *
 * ```ts
 * const reader = new PcapReader(Deno.readFileSync("tests/fixtures/udp.pcap"));
 * for (const rec of reader) {
 *   rec.data; // Uint8Array view of the captured Ethernet frame (no copy)
 * }
 * ```
 *
 * @module
 */

import type { Instant } from "../time.ts";
import type { Link, LinkCapabilities } from "./link.ts";

/** Magic number of microsecond-resolution pcap files, as read in the file's own byte order. */
export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
/** Magic number of nanosecond-resolution pcap files, as read in the file's own byte order. */
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
/** LINKTYPE_ETHERNET: every record is an Ethernet II frame (optionally 802.1Q-tagged). */
export const LINKTYPE_ETHERNET = 1;
/** Size of the pcap global (file) header. */
export const PCAP_GLOBAL_HEADER_LEN = 24;
/** Size of each pcap record header. */
export const PCAP_RECORD_HEADER_LEN = 16;
/** Default snapshot length written by `PcapWriter` (what tcpdump uses: whole frames). */
export const PCAP_DEFAULT_SNAPLEN = 262_144;
/** Largest record `PcapReader` accepts, whatever the header's snaplen says (guards bad files). */
export const PCAP_MAX_RECORD_LEN = 262_144;

// Global header field offsets.
const GH_MAGIC = 0;
const GH_VERSION_MAJOR = 4;
const GH_VERSION_MINOR = 6;
const GH_THISZONE = 8;
const GH_SIGFIGS = 12;
const GH_SNAPLEN = 16;
const GH_LINKTYPE = 20;
// Record header field offsets.
const RH_TS_SEC = 0;
const RH_TS_FRAC = 4;
const RH_INCL_LEN = 8;
const RH_ORIG_LEN = 12;

const NS_PER_SECOND = 1_000_000_000;

/** Why a pcap file was rejected; see `PcapFormatError`. */
export type PcapErrorReason =
  | "truncated-header"
  | "bad-magic"
  | "unsupported-version"
  | "unsupported-link-type"
  | "truncated-record"
  | "bad-record-length";

/**
 * A pcap file is malformed or of a kind this reader does not handle. `reason` is stable for
 * tests to match on; `offset` is the byte offset of the bad header within the file.
 */
export class PcapFormatError extends Error {
  /** Machine-readable cause. */
  readonly reason: PcapErrorReason;
  /** Byte offset in the file where the bad header starts. */
  readonly offset: number;

  /** Builds the error; `detail` says what was found and what to do about it. */
  constructor(reason: PcapErrorReason, offset: number, detail: string) {
    super(`pcap ${reason} at byte ${offset}: ${detail}`);
    this.name = "PcapFormatError";
    this.reason = reason;
    this.offset = offset;
  }
}

/** One captured frame as read from a pcap file. */
export interface PcapRecord {
  /** Zero-based position of the record in the file. */
  readonly index: number;
  /** Whole seconds of the capture timestamp (Unix epoch for real captures). */
  readonly seconds: number;
  /** Sub-second part of the timestamp in nanoseconds (microsecond files are scaled by 1000). */
  readonly nanoseconds: number;
  /**
   * `seconds * 1e9 + nanoseconds` as an `Instant`. Exact while below 2^53 ns (~104 days), i.e.
   * for simulator and monotonic-clock traces; epoch-based captures lose sub-microsecond
   * precision here, so use `seconds`/`nanoseconds` when exactness matters.
   */
  readonly timestamp: Instant;
  /** The captured bytes (a view into the reader's input, not a copy). */
  readonly data: Uint8Array;
  /** Length of the frame on the wire; larger than `data.length` when the capture was cut. */
  readonly originalLength: number;
}

/**
 * Parses a classic pcap file held in memory. The global header is validated by the
 * constructor; records are validated as they are iterated, so a truncated tail throws
 * `PcapFormatError` only when reached. Iterating again starts from the first record.
 */
export class PcapReader implements Iterable<PcapRecord> {
  /** True when the file's fields are little-endian. */
  readonly littleEndian: boolean;
  /** True for nanosecond-resolution files (magic 0xa1b23c4d). */
  readonly nanosecondResolution: boolean;
  /** File format version, normally 2.4. */
  readonly versionMajor: number;
  /** File format minor version, normally 4. */
  readonly versionMinor: number;
  /** The snapshot length the capturing tool used. */
  readonly snapLen: number;
  /** The link type; always `LINKTYPE_ETHERNET` for files this reader accepts. */
  readonly linkType: number;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  /** Validates the global header of `bytes`; throws `PcapFormatError` if it is not usable. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < PCAP_GLOBAL_HEADER_LEN) {
      throw new PcapFormatError(
        "truncated-header",
        0,
        `file has ${bytes.length} bytes, a pcap global header needs ${PCAP_GLOBAL_HEADER_LEN}`,
      );
    }
    const magicBE = this.#view.getUint32(GH_MAGIC, false);
    const magicLE = this.#view.getUint32(GH_MAGIC, true);
    if (magicBE === PCAP_MAGIC_MICROSECONDS || magicBE === PCAP_MAGIC_NANOSECONDS) {
      this.littleEndian = false;
      this.nanosecondResolution = magicBE === PCAP_MAGIC_NANOSECONDS;
    } else if (magicLE === PCAP_MAGIC_MICROSECONDS || magicLE === PCAP_MAGIC_NANOSECONDS) {
      this.littleEndian = true;
      this.nanosecondResolution = magicLE === PCAP_MAGIC_NANOSECONDS;
    } else {
      throw new PcapFormatError(
        "bad-magic",
        0,
        `magic 0x${magicBE.toString(16).padStart(8, "0")} is not classic pcap ` +
          "(pcapng files must be converted first: editcap -F pcap in.pcapng out.pcap)",
      );
    }
    const le = this.littleEndian;
    this.versionMajor = this.#view.getUint16(GH_VERSION_MAJOR, le);
    this.versionMinor = this.#view.getUint16(GH_VERSION_MINOR, le);
    if (this.versionMajor !== 2) {
      throw new PcapFormatError(
        "unsupported-version",
        0,
        `version ${this.versionMajor}.${this.versionMinor}; only pcap 2.x is supported`,
      );
    }
    // thiszone and sigfigs are always 0 in practice and carry no meaning for us.
    this.snapLen = this.#view.getUint32(GH_SNAPLEN, le);
    // The upper bits of the link-type field may carry FCS flags (libpcap's LT_FCS_*): ignore them.
    this.linkType = this.#view.getUint32(GH_LINKTYPE, le) & 0x0fff_ffff;
    if (this.linkType !== LINKTYPE_ETHERNET) {
      throw new PcapFormatError(
        "unsupported-link-type",
        GH_LINKTYPE,
        `link type ${this.linkType}; only Ethernet (1) is supported, capture on an Ethernet ` +
          "interface (not 'any', which gives Linux cooked captures)",
      );
    }
  }

  /** Iterates over the records in file order; see `PcapRecord`. */
  *[Symbol.iterator](): Iterator<PcapRecord> {
    const le = this.littleEndian;
    const view = this.#view;
    const total = this.#bytes.length;
    let offset = PCAP_GLOBAL_HEADER_LEN;
    let index = 0;
    while (offset < total) {
      if (total - offset < PCAP_RECORD_HEADER_LEN) {
        throw new PcapFormatError(
          "truncated-record",
          offset,
          `record ${index} header needs ${PCAP_RECORD_HEADER_LEN} bytes, ${
            total - offset
          } remain; the file was cut short (capture not flushed?)`,
        );
      }
      const seconds = view.getUint32(offset + RH_TS_SEC, le);
      const frac = view.getUint32(offset + RH_TS_FRAC, le);
      const inclLen = view.getUint32(offset + RH_INCL_LEN, le);
      const origLen = view.getUint32(offset + RH_ORIG_LEN, le);
      const nanoseconds = this.nanosecondResolution ? frac : frac * 1000;
      if (nanoseconds >= NS_PER_SECOND) {
        throw new PcapFormatError(
          "bad-record-length",
          offset,
          `record ${index} has a sub-second timestamp field of ${frac}, beyond one second`,
        );
      }
      if (inclLen > PCAP_MAX_RECORD_LEN || inclLen > origLen) {
        throw new PcapFormatError(
          "bad-record-length",
          offset,
          `record ${index} claims ${inclLen} captured of ${origLen} original bytes ` +
            `(captured must be <= original and <= ${PCAP_MAX_RECORD_LEN})`,
        );
      }
      const dataStart = offset + PCAP_RECORD_HEADER_LEN;
      if (total - dataStart < inclLen) {
        throw new PcapFormatError(
          "truncated-record",
          offset,
          `record ${index} needs ${inclLen} bytes of data, ${
            total - dataStart
          } remain; the file was cut short`,
        );
      }
      yield {
        index,
        seconds,
        nanoseconds,
        timestamp: seconds * NS_PER_SECOND + nanoseconds,
        data: this.#bytes.subarray(dataStart, dataStart + inclLen),
        originalLength: origLen,
      };
      offset = dataStart + inclLen;
      index++;
    }
  }

  /** All records as an array (convenience for tests). */
  records(): PcapRecord[] {
    return [...this];
  }

  /** Reads and parses a pcap file from disk (needs --allow-read). */
  static fromFile(path: string | URL): PcapReader {
    return new PcapReader(Deno.readFileSync(path));
  }
}

/** Where `PcapWriter` puts its bytes. `write` must consume all of `bytes` before returning. */
export interface PcapSink {
  /** Appends `bytes`; the array is reused by the writer afterwards, so copy if you keep it. */
  write(bytes: Uint8Array): void;
  /** Releases the sink; called once by `PcapWriter.close()`. */
  close(): void;
}

/** Collects a pcap file in memory; `bytes()` returns everything written so far. */
export class MemoryPcapSink implements PcapSink {
  #chunks: Uint8Array[] = [];
  #length = 0;

  /** Copies `bytes` into the sink. */
  write(bytes: Uint8Array): void {
    this.#chunks.push(bytes.slice());
    this.#length += bytes.length;
  }

  /** No-op: memory needs no release; the bytes stay readable. */
  close(): void {}

  /** The whole file written so far (call `PcapWriter.flush()` first). A fresh copy. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** Writes to a file opened with `Deno.openSync` (truncating it). */
export class FilePcapSink implements PcapSink {
  #file: Deno.FsFile | null;

  /** Creates or truncates `path` (needs --allow-write). */
  constructor(path: string | URL) {
    this.#file = Deno.openSync(path, { write: true, create: true, truncate: true });
  }

  /** Writes all of `bytes`, looping over short writes. */
  write(bytes: Uint8Array): void {
    if (this.#file === null) {
      throw new PcapWriterClosedError();
    }
    let done = 0;
    while (done < bytes.length) {
      done += this.#file.writeSync(bytes.subarray(done));
    }
  }

  /** Closes the file. Idempotent. */
  close(): void {
    if (this.#file !== null) {
      this.#file.close();
      this.#file = null;
    }
  }
}

/** A frame was written to a `PcapWriter` (or its file sink) after `close()`. */
export class PcapWriterClosedError extends Error {
  /** Builds the error. */
  constructor() {
    super("pcap writer is closed: create a new PcapWriter to record more frames");
    this.name = "PcapWriterClosedError";
  }
}

/** Options for `PcapWriter`. */
export interface PcapWriterOptions {
  /** Frames longer than this are cut (original length still recorded). Default 262144. */
  snapLen?: number;
  /** Bytes buffered before a write to the sink. Default 64 KiB. */
  bufferSize?: number;
}

/**
 * Writes a nanosecond-resolution, native-little-endian pcap file (magic 0xa1b23c4d, v2.4,
 * Ethernet). Records are buffered; `flush()` hands them to the sink and `close()` flushes and
 * releases it. Both are idempotent. Timestamps are `Instant`s (ns); negative values clamp to 0.
 */
export class PcapWriter {
  /** The snapshot length written in the header. */
  readonly snapLen: number;
  readonly #sink: PcapSink;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #used = 0;
  #closed = false;
  #frames = 0;

  /** Starts a file on `sink` (the global header is written by the first flush). */
  constructor(sink: PcapSink, options: PcapWriterOptions = {}) {
    this.#sink = sink;
    this.snapLen = options.snapLen ?? PCAP_DEFAULT_SNAPLEN;
    const size = Math.max(options.bufferSize ?? 65_536, PCAP_GLOBAL_HEADER_LEN);
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
    const v = this.#view;
    v.setUint32(GH_MAGIC, PCAP_MAGIC_NANOSECONDS, true);
    v.setUint16(GH_VERSION_MAJOR, 2, true);
    v.setUint16(GH_VERSION_MINOR, 4, true);
    v.setInt32(GH_THISZONE, 0, true);
    v.setUint32(GH_SIGFIGS, 0, true);
    v.setUint32(GH_SNAPLEN, this.snapLen, true);
    v.setUint32(GH_LINKTYPE, LINKTYPE_ETHERNET, true);
    this.#used = PCAP_GLOBAL_HEADER_LEN;
  }

  /** Opens (creating or truncating) `path` and returns a writer to it. */
  static toFile(path: string | URL, options: PcapWriterOptions = {}): PcapWriter {
    return new PcapWriter(new FilePcapSink(path), options);
  }

  /** Number of records written so far. */
  get framesWritten(): number {
    return this.#frames;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Appends one record stamped `timestamp` (ns). `originalLength` defaults to the frame's
   * length; frames beyond `snapLen` are cut. Copies `frame`, which the caller may then reuse.
   */
  write(timestamp: Instant, frame: Uint8Array, originalLength: number = frame.length): void {
    if (this.#closed) throw new PcapWriterClosedError();
    const incl = Math.min(frame.length, this.snapLen);
    const t = timestamp > 0 ? Math.round(timestamp) : 0;
    const seconds = Math.floor(t / NS_PER_SECOND);
    const nanos = t - seconds * NS_PER_SECOND;
    if (this.#used + PCAP_RECORD_HEADER_LEN > this.#buf.length) this.flush();
    const v = this.#view;
    const h = this.#used;
    // ts_sec is 32-bit; wraps in 2106, long after this matters.
    v.setUint32(h + RH_TS_SEC, seconds >>> 0, true);
    v.setUint32(h + RH_TS_FRAC, nanos, true);
    v.setUint32(h + RH_INCL_LEN, incl, true);
    v.setUint32(h + RH_ORIG_LEN, Math.max(originalLength, incl), true);
    this.#used += PCAP_RECORD_HEADER_LEN;
    const data = incl === frame.length ? frame : frame.subarray(0, incl);
    if (this.#used + incl <= this.#buf.length) {
      this.#buf.set(data, this.#used);
      this.#used += incl;
    } else {
      // Larger than what is left of the buffer: write the header, then the frame directly.
      this.flush();
      this.#sink.write(data);
    }
    this.#frames++;
  }

  /** Hands buffered bytes to the sink. Idempotent; a no-op after `close()`. */
  flush(): void {
    if (this.#closed || this.#used === 0) return;
    this.#sink.write(this.#buf.subarray(0, this.#used));
    this.#used = 0;
  }

  /** Flushes and closes the sink. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#sink.close();
  }
}

/** Which directions `PcapLink` records. */
export type PcapDirection = "both" | "rx" | "tx";

/** Options for `PcapLink`. */
export interface PcapLinkOptions {
  /** Directions to record. Default "both". */
  direction?: PcapDirection;
  /** Close the writer when the link is closed. Default true. */
  closeWriter?: boolean;
}

/**
 * A `Link` middleware that passes everything through to `inner` and records each received
 * frame (as it is handed up) and each transmitted frame (when committed) into `writer`,
 * stamped by `clock()` — the simulator's virtual clock or `monotonicNow`. Frames are copied
 * into the writer's buffer, so the zero-copy views of `inner` stay valid as before.
 */
export class PcapLink implements Link {
  readonly #inner: Link;
  readonly #writer: PcapWriter;
  readonly #clock: () => Instant;
  readonly #rx: boolean;
  readonly #tx: boolean;
  readonly #closeWriter: boolean;
  #txBuf: Uint8Array | null = null;
  #onFrame: (frame: Uint8Array) => void = noop;
  // Bound once so receive() allocates no closure per call.
  readonly #recordRx = (frame: Uint8Array): void => {
    this.#writer.write(this.#clock(), frame);
    this.#onFrame(frame);
  };
  #closed = false;

  /** Wraps `inner`; see the class comment. */
  constructor(
    inner: Link,
    writer: PcapWriter,
    clock: () => Instant,
    options: PcapLinkOptions = {},
  ) {
    this.#inner = inner;
    this.#writer = writer;
    this.#clock = clock;
    const dir = options.direction ?? "both";
    this.#rx = dir !== "tx";
    this.#tx = dir !== "rx";
    this.#closeWriter = options.closeWriter ?? true;
  }

  /** The wrapped device's name. */
  get name(): string {
    return this.#inner.name;
  }
  /** The wrapped device's MAC address. */
  get mac(): Uint8Array {
    return this.#inner.mac;
  }
  /** The wrapped device's MTU. */
  get mtu(): number {
    return this.#inner.mtu;
  }
  /** The wrapped device's capabilities. */
  get capabilities(): LinkCapabilities {
    return this.#inner.capabilities;
  }
  /** The writer frames are recorded to. */
  get writer(): PcapWriter {
    return this.#writer;
  }

  /** Receives from `inner`, recording each frame before `onFrame` sees it. */
  receive(onFrame: (frame: Uint8Array) => void, max: number): number {
    if (!this.#rx || this.#writer.closed) return this.#inner.receive(onFrame, max);
    this.#onFrame = onFrame;
    try {
      return this.#inner.receive(this.#recordRx, max);
    } finally {
      this.#onFrame = noop;
    }
  }

  /** Lends `inner`'s transmit buffer, remembering it so `commit` can record it. */
  transmitBuffer(length: number): Uint8Array | null {
    const buf = this.#inner.transmitBuffer(length);
    this.#txBuf = buf;
    return buf;
  }

  /** Records the committed frame, then commits it on `inner`. */
  commit(length: number): void {
    const buf = this.#txBuf;
    if (this.#tx && buf !== null && !this.#writer.closed) {
      this.#writer.write(this.#clock(), buf.subarray(0, Math.min(length, buf.length)));
    }
    this.#txBuf = null;
    this.#inner.commit(length);
  }

  /** Flushes `inner` (the pcap file is flushed by `close()` or `writer.flush()`). */
  flush(): void {
    this.#inner.flush();
  }

  /** Closes `inner` and, unless `closeWriter: false`, the writer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inner.close();
    if (this.#closeWriter) this.#writer.close();
    else this.#writer.flush();
  }
}

function noop(_frame: Uint8Array): void {}
