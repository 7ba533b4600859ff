/**
 * A scripted segment-level harness in the spirit of packetdrill: one `TcpStack` driven
 * directly with segments built from short specs at given times, and every segment it emits
 * captured by a fake `IpOutput` so a test can assert flags, sequence numbers, window and
 * options exactly.
 *
 * ```ts
 * const s = new TcpScript();
 * const l = s.stack.listen(null, 80, 8);
 * s.inject({ flags: "S", seq: 1000, win: 65535, mss: 1460, ws: 7, sackOk: true, ts: [10, 0] });
 * s.expect({ flags: "S.", ack: 1001, mss: 1460 });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Instant, MILLISECOND, NEVER } from "../../time.ts";
import { IpAddress } from "../wire/address.ts";
import {
  pseudoHeaderSumV4,
  pseudoHeaderSumV6,
  transportChecksumOk,
  writeTransportChecksum,
} from "../wire/checksum.ts";
import {
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  TcpRepr,
} from "../wire/tcp.ts";
import type { IpOutput, IpReceiveInfo } from "../iface/protocol.ts";
import type { TcpConfig } from "./config.ts";
import { TcpStack } from "./stack.ts";

/** A segment the stack emitted, decoded and copied. */
export interface Captured {
  /** Time of emission. */
  at: Instant;
  /** Source and destination. */
  src: IpAddress;
  /** Destination address. */
  dst: IpAddress;
  /** IP ECN codepoint requested. */
  ecn: number;
  /** Flags in packetdrill notation, e.g. "S.", "P.", "F.", "R". */
  flags: string;
  /** Raw flag bits. */
  flagBits: number;
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number. */
  seq: number;
  /** Acknowledgment number. */
  ack: number;
  /** Raw window field. */
  win: number;
  /** MSS option or 0. */
  mss: number;
  /** Window scale or -1. */
  ws: number;
  /** SACK-permitted option. */
  sackOk: boolean;
  /** [TSval, TSecr] or null. */
  ts: [number, number] | null;
  /** SACK blocks. */
  sack: [number, number][];
  /** Payload copy. */
  data: Uint8Array;
  /** True when the checksum verified. */
  checksumOk: boolean;
}

/** What a test specifies for an injected or expected segment. */
export interface SegSpec {
  /** Flags in packetdrill notation: S SYN, . ACK, F FIN, R RST, P PSH, E ECE, W CWR, U URG. */
  flags?: string;
  /** Sequence number. */
  seq?: number;
  /** Acknowledgment number. */
  ack?: number;
  /** Raw window field. */
  win?: number;
  /** MSS option (0 = absent). */
  mss?: number;
  /** Window scale option (-1 = absent). */
  ws?: number;
  /** SACK-permitted option. */
  sackOk?: boolean;
  /** Timestamps [TSval, TSecr], or null for none. */
  ts?: [number, number] | null;
  /** SACK blocks. */
  sack?: [number, number][];
  /** Payload bytes, or a length of filler bytes. */
  data?: Uint8Array | number;
  /** IP ECN codepoint of an injected segment. */
  ecn?: number;
  /** Source port (injected: the peer's port). */
  srcPort?: number;
  /** Destination port. */
  dstPort?: number;
  /** Corrupt the checksum of an injected segment. */
  badChecksum?: boolean;
}

/** Flags string -> bits. */
export function parseFlags(s: string): number {
  let f = 0;
  for (const c of s) {
    switch (c) {
      case "S":
        f |= TCP_SYN;
        break;
      case ".":
        f |= TCP_ACK;
        break;
      case "F":
        f |= TCP_FIN;
        break;
      case "R":
        f |= TCP_RST;
        break;
      case "P":
        f |= TCP_PSH;
        break;
      case "E":
        f |= TCP_ECE;
        break;
      case "W":
        f |= TCP_CWR;
        break;
      case "U":
        f |= TCP_URG;
        break;
      default:
        throw new Error(`unknown flag "${c}" in "${s}"; use S . F R P E W U`);
    }
  }
  return f;
}

/** Bits -> flags string in a canonical order (S F R P U E W then "."). */
export function formatFlags(f: number): string {
  let s = "";
  if (f & TCP_SYN) s += "S";
  if (f & TCP_FIN) s += "F";
  if (f & TCP_RST) s += "R";
  if (f & TCP_PSH) s += "P";
  if (f & TCP_URG) s += "U";
  if (f & TCP_ECE) s += "E";
  if (f & TCP_CWR) s += "W";
  if (f & TCP_ACK) s += ".";
  return s;
}

function canonical(s: string): string {
  return formatFlags(parseFlags(s));
}

/** An `IpOutput` that records every packet (and can refuse buffers to test retries). */
export class CaptureIp implements IpOutput {
  /** Captured segments, oldest first. */
  readonly sent: Captured[] = [];
  /** MTU reported for every destination. */
  mtu = 1500;
  /** When true, `beginPacket` returns null. */
  refuse = false;
  /** Current time stamped on captures. */
  now: Instant = 0;
  readonly #local: IpAddress[];
  readonly #buf = new Uint8Array(65536);
  #pending: { src: IpAddress; dst: IpAddress; len: number; ecn: number } | null = null;
  readonly #repr = new TcpRepr();

  /** Captures for a host with the given addresses. */
  constructor(local: IpAddress[]) {
    this.#local = local;
  }

  /** See IpOutput. */
  beginPacket(
    src: IpAddress,
    dst: IpAddress,
    _protocol: number,
    length: number,
    ecn: number,
  ): Uint8Array | null {
    if (this.refuse) return null;
    this.#pending = { src, dst, len: length, ecn };
    return this.#buf.subarray(0, length);
  }

  /** See IpOutput. */
  commitPacket(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    const seg = this.#buf.subarray(0, p.len);
    const pseudo = p.src.version === 4
      ? pseudoHeaderSumV4(p.src.v4, p.dst.v4, 6, p.len)
      : pseudoHeaderSumV6(p.src.bytes, p.dst.bytes, 6, p.len);
    const ok = transportChecksumOk(seg, pseudo);
    const r = this.#repr;
    const bad = r.parse(seg);
    if (bad !== undefined) throw new Error(`stack emitted an unparsable segment: ${bad}`);
    const sack: [number, number][] = [];
    for (let i = 0; i < r.sackCount; i++) {
      sack.push([r.sackBlocks[2 * i]!, r.sackBlocks[2 * i + 1]!]);
    }
    this.sent.push({
      at: this.now,
      src: p.src,
      dst: p.dst,
      ecn: p.ecn,
      flags: formatFlags(r.flags),
      flagBits: r.flags,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      seq: r.seq,
      ack: r.ack,
      win: r.window,
      mss: r.mss,
      ws: r.windowScale,
      sackOk: r.sackPermitted,
      ts: r.tsPresent ? [r.tsVal, r.tsEcr] : null,
      sack,
      data: r.payload.slice(),
      checksumOk: ok,
    });
  }

  /** See IpOutput. */
  sourceFor(dst: IpAddress): IpAddress | null {
    return this.#local.find((a) => a.version === dst.version) ?? null;
  }

  /** See IpOutput. */
  mtuFor(_dst: IpAddress): number {
    return this.mtu;
  }

  /** See IpOutput. */
  isLocal(address: IpAddress): boolean {
    return this.#local.some((a) => a.equals(address));
  }
}

/** Settings of a `TcpScript`. */
export interface TcpScriptOptions {
  /** The stack's address (default 198.18.0.1). */
  local?: IpAddress;
  /** The scripted peer's address (default 198.18.0.2). */
  remote?: IpAddress;
  /** Stack configuration overrides. */
  config?: Partial<TcpConfig>;
  /** Seed of the stack's random source. */
  seed?: number;
  /** Default local (stack) port for injected segments (default 8080). */
  port?: number;
  /** Default peer port (default 40000). */
  peerPort?: number;
  /** Fixed ISS for every connection of the stack (default: RFC 6528 generator). */
  iss?: number;
}

/** Drives one TcpStack segment by segment. */
export class TcpScript {
  /** The stack under test. */
  readonly stack: TcpStack;
  /** The capturing IP layer. */
  readonly ip: CaptureIp;
  /** Stack address. */
  readonly local: IpAddress;
  /** Peer address. */
  readonly remote: IpAddress;
  /** Default stack port. */
  port: number;
  /** Default peer port. */
  peerPort: number;
  /** Current virtual time. */
  now: Instant = 0;
  #cursor = 0;
  readonly #repr = new TcpRepr();
  readonly #buf = new Uint8Array(65536);

  /** A fresh stack with a capturing IP layer. */
  constructor(o: TcpScriptOptions = {}) {
    this.local = o.local ?? IpAddress.parse("198.18.0.1");
    this.remote = o.remote ?? IpAddress.parse("198.18.0.2");
    this.port = o.port ?? 8080;
    this.peerPort = o.peerPort ?? 40000;
    this.ip = new CaptureIp([this.local]);
    let state = (o.seed ?? 1) >>> 0 || 1;
    const random = (): number => {
      // xorshift32: deterministic and good enough for ports and secrets in tests.
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      return state;
    };
    const iss = o.iss;
    this.stack = new TcpStack({
      ip: this.ip,
      random,
      config: o.config ?? {},
      ...(iss === undefined ? {} : { isn: () => iss }),
    });
  }

  /** Advances virtual time to `t` ns, running every stack timer due on the way. */
  advanceTo(t: Instant): void {
    for (let i = 0; i < 100_000; i++) {
      const at = this.stack.pollAt();
      if (at === NEVER || at > t) break;
      this.now = Math.max(this.now, at);
      this.ip.now = this.now;
      this.stack.poll(this.now);
    }
    this.now = Math.max(this.now, t);
    this.ip.now = this.now;
  }

  /** Advances time by `ms` milliseconds. */
  wait(ms: number): void {
    this.advanceTo(this.now + ms * MILLISECOND);
  }

  /** Builds the bytes of a segment from the peer. */
  build(spec: SegSpec): Uint8Array {
    const r = this.#repr;
    r.reset();
    r.srcPort = spec.srcPort ?? this.peerPort;
    r.dstPort = spec.dstPort ?? this.port;
    r.seq = (spec.seq ?? 0) >>> 0;
    r.ack = (spec.ack ?? 0) >>> 0;
    r.flags = parseFlags(spec.flags ?? ".");
    r.window = spec.win ?? 65535;
    r.mss = spec.mss ?? 0;
    r.windowScale = spec.ws ?? -1;
    r.sackPermitted = spec.sackOk ?? false;
    if (spec.ts) {
      r.tsPresent = true;
      r.tsVal = spec.ts[0] >>> 0;
      r.tsEcr = spec.ts[1] >>> 0;
    }
    const sack = spec.sack ?? [];
    r.sackCount = sack.length;
    sack.forEach(([a, b], i) => {
      r.sackBlocks[2 * i] = a >>> 0;
      r.sackBlocks[2 * i + 1] = b >>> 0;
    });
    const data = typeof spec.data === "number"
      ? new Uint8Array(spec.data).map((_, i) => (i * 7 + 1) & 0xff)
      : spec.data ?? new Uint8Array(0);
    const hl = r.headerLength;
    const seg = this.#buf.subarray(0, hl + data.length);
    r.emit(seg);
    seg.set(data, hl);
    const pseudo = this.local.version === 4
      ? pseudoHeaderSumV4(this.remote.v4, this.local.v4, 6, seg.length)
      : pseudoHeaderSumV6(this.remote.bytes, this.local.bytes, 6, seg.length);
    writeTransportChecksum(seg, 16, pseudo);
    if (spec.badChecksum) seg[16]! ^= 0xff;
    return seg;
  }

  /** Delivers a segment from the peer at the current time. */
  inject(spec: SegSpec): void {
    const seg = this.build(spec);
    const info: IpReceiveInfo = {
      version: this.local.version,
      src: this.remote.bytes,
      dst: this.local.bytes,
      ecn: spec.ecn ?? 0,
      ttl: 64,
      packet: seg,
      checksumVerified: false,
    };
    this.stack.receive(info, seg, this.now);
  }

  /** Segments emitted since the last `expect`/`take`, without consuming them. */
  pending(): Captured[] {
    return this.ip.sent.slice(this.#cursor);
  }

  /** Consumes and returns the next emitted segment (fails when there is none). */
  take(): Captured {
    const c = this.ip.sent[this.#cursor];
    assert.ok(c !== undefined, "expected a segment from the stack, but it sent nothing");
    this.#cursor++;
    return c;
  }

  /** Consumes the next emitted segment and asserts every field `spec` names. */
  expect(spec: SegSpec): Captured {
    const c = this.take();
    const where = `segment #${this.#cursor - 1} ${describe(c)}`;
    assert.ok(c.checksumOk, `${where}: bad checksum`);
    if (spec.flags !== undefined) assert.equal(c.flags, canonical(spec.flags), `${where}: flags`);
    if (spec.seq !== undefined) assert.equal(c.seq, spec.seq >>> 0, `${where}: seq`);
    if (spec.ack !== undefined) assert.equal(c.ack, spec.ack >>> 0, `${where}: ack`);
    if (spec.win !== undefined) assert.equal(c.win, spec.win, `${where}: win`);
    if (spec.mss !== undefined) assert.equal(c.mss, spec.mss, `${where}: mss`);
    if (spec.ws !== undefined) assert.equal(c.ws, spec.ws, `${where}: wscale`);
    if (spec.sackOk !== undefined) assert.equal(c.sackOk, spec.sackOk, `${where}: sackOK`);
    if (spec.ts !== undefined) {
      if (spec.ts === null) assert.equal(c.ts, null, `${where}: ts`);
      else assert.deepEqual(c.ts, [spec.ts[0] >>> 0, spec.ts[1] >>> 0], `${where}: ts`);
    }
    if (spec.sack !== undefined) {
      assert.deepEqual(c.sack, spec.sack.map(([a, b]) => [a >>> 0, b >>> 0]), `${where}: sack`);
    }
    if (spec.data !== undefined) {
      if (typeof spec.data === "number") assert.equal(c.data.length, spec.data, `${where}: len`);
      else assert.deepEqual(c.data, spec.data, `${where}: data`);
    }
    if (spec.ecn !== undefined) assert.equal(c.ecn, spec.ecn, `${where}: ecn`);
    if (spec.srcPort !== undefined) assert.equal(c.srcPort, spec.srcPort, `${where}: sport`);
    if (spec.dstPort !== undefined) assert.equal(c.dstPort, spec.dstPort, `${where}: dport`);
    return c;
  }

  /** Asserts the stack emitted nothing more. */
  expectNone(): void {
    const rest = this.pending();
    assert.equal(rest.length, 0, `expected silence, got: ${rest.map(describe).join("; ")}`);
  }

  /** Asserts no exception escaped into the stack's safety net. */
  assertHealthy(): void {
    assert.equal(this.stack.lastInternalError, null, String(this.stack.lastInternalError));
  }
}

/** One-line description of a captured segment (for failure messages). */
export function describe(c: Captured): string {
  const ts = c.ts ? ` ts ${c.ts[0]}/${c.ts[1]}` : "";
  const sack = c.sack.length ? ` sack ${c.sack.map(([a, b]) => `${a}:${b}`).join(",")}` : "";
  const opts = (c.mss ? ` mss ${c.mss}` : "") + (c.ws >= 0 ? ` ws ${c.ws}` : "") +
    (c.sackOk ? " sackOK" : "");
  return `${c.flags} ${c.seq}:${
    c.seq + c.data.length
  }(${c.data.length}) ack ${c.ack} win ${c.win}${opts}${ts}${sack}`;
}
