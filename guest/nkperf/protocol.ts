/**
 * The iperf3 control protocol as nkperf speaks it, learned from iperf3's documentation and from
 * watching iperf 3.12 with tcpdump (`tcpdump -A 'tcp port 5201'` in a throwaway namespace):
 *
 * ```
 * client                                   server (port 5201)
 *   ── control connect, 37-byte cookie ──▶     36 chars of [a-z2-7] then NUL
 *   ◀── PARAM_EXCHANGE (9) ──────────────
 *   ── u32 BE length, JSON parameters ──▶     {"tcp":true,"time":2,"parallel":2,"len":131072,...}
 *   ◀── CREATE_STREAMS (10) ─────────────
 *   ── N data connects, each sends cookie ─▶
 *   ◀── TEST_START (1), TEST_RUNNING (2) ─
 *   ══ data flows (client→server, or server→client with "reverse":true) ══
 *   ── TEST_END (4) ─────────────────────▶     when the client's -t timer fires
 *   ◀── EXCHANGE_RESULTS (13) ────────────     the server has closed the data connections
 *   ── u32 length, JSON results ─────────▶
 *   ◀── u32 length, JSON results ─────────
 *   ◀── DISPLAY_RESULTS (14) ─────────────
 *   ── IPERF_DONE (16), close ───────────▶
 * ```
 *
 * A state is one signed byte; ACCESS_DENIED (-1, sent to a second client while a test runs) and
 * SERVER_ERROR (-2, followed by two big-endian i32s: iperf3's error number and errno) are
 * negative. Stream ids in the results are 1, 3, 4, 5, ... in data-connection order (iperf 3.12
 * skips 2; both sides number the same way and the results are matched by id).
 *
 * This module is the codec only (pure functions plus a buffered reader over a connection);
 * `client.ts` and `server.ts` drive it.
 *
 * @module
 */

import type { NetConn } from "./net.ts";

/** Length of the cookie on the wire: 36 characters and a terminating NUL. */
export const COOKIE_SIZE = 37;
/** Characters iperf3 draws cookie characters from (observed: lower-case letters and 2..7). */
export const COOKIE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
/** Default iperf3 port. */
export const DEFAULT_PORT = 5201;
/** Default TCP block length (iperf3's 128 KiB). */
export const DEFAULT_BLOCK_LEN = 128 * 1024;
/** Largest JSON frame we accept; iperf3's own frames are a few hundred bytes per stream. */
export const MAX_JSON_FRAME = 1 << 20;
/** Largest number of parallel streams iperf3 allows (-P). */
export const MAX_PARALLEL = 128;

/**
 * iperf3's error numbers a server sends after SERVER_ERROR (the client prints its own text for
 * them; values from iperf3's public error list).
 */
export const IperfErrno = {
  DURATION: 5,
  NUM_STREAMS: 6,
  BLOCK_SIZE: 7,
  OMIT: 12,
  UNIMPLEMENTED: 13,
} as const;

/** Control-channel state bytes (values as iperf3 sends them). */
export const State = {
  TEST_START: 1,
  TEST_RUNNING: 2,
  TEST_END: 4,
  STREAM_BEGIN: 5,
  STREAM_RUNNING: 6,
  STREAM_END: 7,
  ALL_STREAMS_END: 8,
  PARAM_EXCHANGE: 9,
  CREATE_STREAMS: 10,
  SERVER_TERMINATE: 11,
  CLIENT_TERMINATE: 12,
  EXCHANGE_RESULTS: 13,
  DISPLAY_RESULTS: 14,
  IPERF_START: 15,
  IPERF_DONE: 16,
  ACCESS_DENIED: -1,
  SERVER_ERROR: -2,
} as const;

/** One of the `State` values. */
export type StateValue = (typeof State)[keyof typeof State];

const STATE_NAMES = new Map<number, string>(
  Object.entries(State).map(([name, value]) => [value, name]),
);

/** Name of a state value ("PARAM_EXCHANGE"), or "UNKNOWN(n)". */
export function stateName(state: number): string {
  return STATE_NAMES.get(state) ?? `UNKNOWN(${state})`;
}

/** The byte that carries `state` (two's complement for the negative ones). */
export function encodeState(state: number): number {
  if (!Number.isInteger(state) || state < -128 || state > 127) {
    throw new RangeError(`state ${state} does not fit a signed byte; pass a State value`);
  }
  return state & 0xff;
}

/** The state a received byte means (sign-extends, so 0xff is ACCESS_DENIED). */
export function decodeState(byte: number): number {
  return (byte << 24) >> 24;
}

/** A peer broke the protocol or the connection ended early; `reason` names what went wrong. */
export class ProtocolError extends Error {
  /** Short machine-readable reason, e.g. "bad-cookie", "frame-too-long", "unexpected-eof". */
  readonly reason: string;
  /** iperf3's error number to send with SERVER_ERROR for this problem (`IperfErrno`). */
  readonly iperfErrno: number;
  /** Builds the error; `message` should say what to check. */
  constructor(reason: string, message: string, iperfErrno: number = IperfErrno.UNIMPLEMENTED) {
    super(message);
    this.name = "ProtocolError";
    this.reason = reason;
    this.iperfErrno = iperfErrno;
  }
}

/** The server refused or aborted the test (ACCESS_DENIED, SERVER_ERROR, SERVER_TERMINATE). */
export class ServerRefusedError extends Error {
  /** The state the server sent. */
  readonly state: number;
  /** For SERVER_ERROR: iperf3's error number and the errno the server reported. */
  readonly errorNumbers: readonly [number, number] | undefined;
  /** Builds the error from the state (and error numbers for SERVER_ERROR). */
  constructor(state: number, errorNumbers?: readonly [number, number]) {
    const what = state === State.ACCESS_DENIED
      ? "the server is busy with another test (ACCESS_DENIED); retry when it is done"
      : state === State.SERVER_ERROR
      ? `the server reported an error (SERVER_ERROR i_errno=${errorNumbers?.[0]} errno=${
        errorNumbers?.[1]
      }); see the server's output`
      : `the server ended the test (${stateName(state)}); see the server's output`;
    super(what);
    this.name = "ServerRefusedError";
    this.state = state;
    this.errorNumbers = errorNumbers;
  }
}

/** Draws a new 36-character cookie from `COOKIE_ALPHABET` using `random` (bytes source). */
export function makeCookie(
  random: (out: Uint8Array) => void = (out) => crypto.getRandomValues(out),
): string {
  const bytes = new Uint8Array(COOKIE_SIZE - 1);
  random(bytes);
  let s = "";
  for (const b of bytes) s += COOKIE_ALPHABET[b & 31];
  return s;
}

/** The 37 wire bytes of `cookie` (36 ASCII characters, NUL). */
export function encodeCookie(cookie: string): Uint8Array {
  if (cookie.length !== COOKIE_SIZE - 1 || !/^[\x21-\x7e]*$/.test(cookie)) {
    throw new RangeError(
      `cookie must be ${COOKIE_SIZE - 1} printable ASCII characters; use makeCookie()`,
    );
  }
  const out = new Uint8Array(COOKIE_SIZE);
  for (let i = 0; i < cookie.length; i++) out[i] = cookie.charCodeAt(i);
  return out;
}

/**
 * The cookie string in 37 received bytes, or a `ProtocolError` ("bad-cookie") when they are not
 * 36 printable ASCII characters and a NUL.
 */
export function decodeCookie(bytes: Uint8Array): string | ProtocolError {
  if (bytes.length !== COOKIE_SIZE || bytes[COOKIE_SIZE - 1] !== 0) {
    return new ProtocolError("bad-cookie", "cookie is not 36 characters and a NUL");
  }
  let s = "";
  for (let i = 0; i < COOKIE_SIZE - 1; i++) {
    const c = bytes[i]!;
    if (c < 0x21 || c > 0x7e) {
      return new ProtocolError("bad-cookie", "cookie holds a non-printable byte");
    }
    s += String.fromCharCode(c);
  }
  return s;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A JSON value framed as iperf3 does: u32 big-endian byte length, then UTF-8 JSON. */
export function encodeJsonFrame(value: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** The body length in a frame's 4-byte header, or a `ProtocolError` when above `max`. */
export function decodeJsonFrameLength(
  header: Uint8Array,
  max: number = MAX_JSON_FRAME,
): number | ProtocolError {
  if (header.length < 4) return new ProtocolError("truncated", "JSON frame header is short");
  const len = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
  if (len > max) {
    return new ProtocolError("frame-too-long", `JSON frame of ${len} bytes exceeds ${max}`);
  }
  return len;
}

/** Parses a frame body as a JSON object, or returns a `ProtocolError` ("bad-json"). */
export function decodeJsonBody(body: Uint8Array): Record<string, unknown> | ProtocolError {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(body));
  } catch {
    return new ProtocolError("bad-json", "JSON frame body is not valid UTF-8 JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return new ProtocolError("bad-json", "JSON frame body is not an object");
  }
  return v as Record<string, unknown>;
}

/** Test parameters exchanged in PARAM_EXCHANGE (the subset nkperf uses). */
export interface TestParams {
  /** Test length in seconds (-t). */
  readonly time: number;
  /** Number of parallel streams (-P). */
  readonly parallel: number;
  /** Block length in bytes (-l). */
  readonly len: number;
  /** Server sends, client receives (-R). */
  readonly reverse: boolean;
  /** Seconds at the start not counted in the results (-O). */
  readonly omit: number;
  /** Bytes to send (-n), 0 = by time; accepted, nkperf's sender stops by time only. */
  readonly num: number;
  /** Blocks to send (-k), 0 = by time; accepted, nkperf's sender stops by time only. */
  readonly blockcount: number;
  /** The peer's version string, when it sent one. */
  readonly clientVersion: string | undefined;
}

/** The JSON object nkperf's client sends (same keys and order as iperf 3.12). */
export function paramsToJson(p: TestParams, version: string): Record<string, unknown> {
  const o: Record<string, unknown> = {
    tcp: true,
    omit: p.omit,
    time: p.time,
    num: p.num,
    blockcount: p.blockcount,
    parallel: p.parallel,
  };
  if (p.reverse) o.reverse = true;
  o.len = p.len;
  o.pacing_timer = 1000;
  o.client_version = version;
  return o;
}

function num(o: Record<string, unknown>, key: string, dflt: number): number | undefined {
  const v = o[key];
  if (v === undefined) return dflt;
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * Validates a received parameter object. Returns the parameters, or a `ProtocolError` with
 * reason "unsupported" (UDP/SCTP, bidirectional) or "bad-params" (missing or out of range).
 */
export function paramsFromJson(o: Record<string, unknown>): TestParams | ProtocolError {
  if (o.udp === true || o.sctp === true || o.tcp === false) {
    return new ProtocolError("unsupported", "nkperf supports TCP tests only");
  }
  if (o.bidirectional === true) {
    return new ProtocolError("unsupported", "nkperf does not support --bidir");
  }
  const time = num(o, "time", 10);
  const parallel = num(o, "parallel", 1);
  const len = num(o, "len", DEFAULT_BLOCK_LEN);
  const omit = num(o, "omit", 0);
  const n = num(o, "num", 0);
  const blockcount = num(o, "blockcount", 0);
  if (
    time === undefined || parallel === undefined || len === undefined || omit === undefined ||
    n === undefined || blockcount === undefined
  ) {
    return new ProtocolError("bad-params", "a numeric parameter is not a number");
  }
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > MAX_PARALLEL) {
    return new ProtocolError(
      "bad-params",
      `parallel must be 1..${MAX_PARALLEL}`,
      IperfErrno.NUM_STREAMS,
    );
  }
  if (!Number.isInteger(len) || len < 1 || len > 1 << 24) {
    return new ProtocolError("bad-params", "len must be 1..16 MiB", IperfErrno.BLOCK_SIZE);
  }
  if (time < 0 || time > 86400) {
    return new ProtocolError("bad-params", "time must be 0..86400", IperfErrno.DURATION);
  }
  if (omit < 0 || omit > 600) {
    return new ProtocolError("bad-params", "omit must be 0..600", IperfErrno.OMIT);
  }
  const v = o.client_version;
  return {
    time,
    parallel,
    len,
    reverse: o.reverse === true,
    omit,
    num: n,
    blockcount,
    clientVersion: typeof v === "string" ? v : undefined,
  };
}

/** One stream's entry in the results exchange. */
export interface StreamResult {
  /** Stream id (1, 3, 4, ...; see `streamId`). */
  readonly id: number;
  /** Bytes this side sent (sender) or received (receiver) on the stream. */
  readonly bytes: number;
  /** Retransmissions, or -1 when this side is the receiver / cannot know. */
  readonly retransmits: number;
  /** Seconds from the test start when the stream started counting. */
  readonly startTime: number;
  /** Seconds from the test start when the stream stopped counting. */
  readonly endTime: number;
}

/** One side's results as exchanged in EXCHANGE_RESULTS. */
export interface TestResults {
  /** CPU use of the process during the test, percent of wall time. */
  readonly cpuTotal: number;
  /** User part of `cpuTotal`. */
  readonly cpuUser: number;
  /** System part of `cpuTotal`. */
  readonly cpuSystem: number;
  /** 1 = the sender knows retransmits, 0 = it cannot know, -1 = this side was the receiver. */
  readonly senderHasRetransmits: number;
  /** Congestion control in use, when known. */
  readonly congestion: string | undefined;
  /** Per-stream results. */
  readonly streams: readonly StreamResult[];
}

/** The results object in iperf 3.12's key order. */
export function resultsToJson(r: TestResults): Record<string, unknown> {
  const o: Record<string, unknown> = {
    cpu_util_total: r.cpuTotal,
    cpu_util_user: r.cpuUser,
    cpu_util_system: r.cpuSystem,
    sender_has_retransmits: r.senderHasRetransmits,
  };
  if (r.congestion !== undefined) o.congestion_used = r.congestion;
  o.streams = r.streams.map((s) => ({
    id: s.id,
    bytes: s.bytes,
    retransmits: s.retransmits,
    jitter: 0,
    errors: 0,
    packets: 0,
    start_time: s.startTime,
    end_time: s.endTime,
  }));
  return o;
}

// iperf 3.12 prints an unknown count as 2^64-1 (its -1 cast to unsigned); read both as -1.
function signedCount(v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) return -1;
  return v >= 2 ** 63 ? -1 : v;
}

/** Reads a peer's results object, or a `ProtocolError` ("bad-results"). */
export function resultsFromJson(o: Record<string, unknown>): TestResults | ProtocolError {
  const streams = o.streams;
  if (!Array.isArray(streams)) {
    return new ProtocolError("bad-results", "results have no streams array");
  }
  const out: StreamResult[] = [];
  for (const s of streams) {
    if (typeof s !== "object" || s === null) {
      return new ProtocolError("bad-results", "a stream result is not an object");
    }
    const e = s as Record<string, unknown>;
    if (typeof e.id !== "number" || typeof e.bytes !== "number") {
      return new ProtocolError("bad-results", "a stream result lacks numeric id/bytes");
    }
    out.push({
      id: e.id,
      bytes: e.bytes,
      retransmits: signedCount(e.retransmits),
      startTime: typeof e.start_time === "number" ? e.start_time : 0,
      endTime: typeof e.end_time === "number" ? e.end_time : 0,
    });
  }
  const n = (k: string): number => (typeof o[k] === "number" ? o[k] as number : 0);
  return {
    cpuTotal: n("cpu_util_total"),
    cpuUser: n("cpu_util_user"),
    cpuSystem: n("cpu_util_system"),
    senderHasRetransmits: signedCount(o.sender_has_retransmits),
    congestion: typeof o.congestion_used === "string" ? o.congestion_used : undefined,
    streams: out,
  };
}

/** The id of the `index`-th data stream (0-based): 1, 3, 4, 5, ... as iperf 3.12 numbers. */
export function streamId(index: number): number {
  return index === 0 ? 1 : index + 2;
}

/**
 * Reads exact byte counts, states and JSON frames from a connection, buffering what arrives
 * early. Not for the data path (data streams read straight into their own buffer).
 */
export class ControlReader {
  readonly #conn: NetConn;
  #buf = new Uint8Array(4096);
  #start = 0;
  #end = 0;

  /** Wraps `conn`; nothing else may read from it afterwards. */
  constructor(conn: NetConn) {
    this.#conn = conn;
  }

  /** Resolves with exactly `n` bytes (a fresh copy), or throws ProtocolError "unexpected-eof". */
  async readExact(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n) {
      if (this.#buf.length - this.#start < n) {
        const bigger = new Uint8Array(Math.max(this.#buf.length, n * 2));
        bigger.set(this.#buf.subarray(this.#start, this.#end));
        this.#end -= this.#start;
        this.#start = 0;
        this.#buf = bigger;
      }
      const got = await this.#conn.read(this.#buf.subarray(this.#end));
      if (got === null) {
        throw new ProtocolError(
          "unexpected-eof",
          `the peer closed the control connection (wanted ${n} more bytes); see its output`,
        );
      }
      this.#end += got;
    }
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }

  /** Reads one state byte (sign-extended). */
  async readState(): Promise<number> {
    return decodeState((await this.readExact(1))[0]!);
  }

  /** Reads one length-prefixed JSON object. */
  async readJson(): Promise<Record<string, unknown>> {
    const len = decodeJsonFrameLength(await this.readExact(4));
    if (len instanceof ProtocolError) throw len;
    const body = decodeJsonBody(await this.readExact(len));
    if (body instanceof ProtocolError) throw body;
    return body;
  }

  /** Reads a 37-byte cookie. */
  async readCookie(): Promise<string> {
    const c = decodeCookie(await this.readExact(COOKIE_SIZE));
    if (c instanceof ProtocolError) throw c;
    return c;
  }
}

/** Writes all of `bytes` to `conn` (Deno.Conn.write may write less than asked). */
export async function writeAll(conn: NetConn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Writes one state byte. */
export function writeState(conn: NetConn, state: number): Promise<void> {
  return writeAll(conn, Uint8Array.of(encodeState(state)));
}

/** Writes a SERVER_ERROR state followed by iperf3's error number and errno (i32 BE each). */
export function encodeServerError(iErrno: number, errno: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = encodeState(State.SERVER_ERROR);
  const v = new DataView(out.buffer);
  v.setInt32(1, iErrno);
  v.setInt32(5, errno);
  return out;
}
