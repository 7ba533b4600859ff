/**
 * Keyed hashing for TCP: initial sequence numbers per RFC 6528, per-connection timestamp
 * offsets (RFC 7323 5.4) and SYN cookies. The hash is HalfSipHash-2-4 (32-bit words, 64-bit
 * key, 32-bit output), the same primitive Linux uses for these jobs; inputs are fed as
 * 32-bit words so no bytes are allocated.
 *
 * @module
 */

import type { Instant } from "../../time.ts";

function rotl(x: number, b: number): number {
  return ((x << b) | (x >>> (32 - b))) >>> 0;
}

/** A HalfSipHash-2-4 state over 32-bit words, reusable. */
export class KeyedHash {
  #k0: number;
  #k1: number;
  #v0 = 0;
  #v1 = 0;
  #v2 = 0;
  #v3 = 0;
  #words = 0;

  /** A hash keyed with two 32-bit words. */
  constructor(k0: number, k1: number) {
    this.#k0 = k0 >>> 0;
    this.#k1 = k1 >>> 0;
  }

  #round(): void {
    let v0 = this.#v0, v1 = this.#v1, v2 = this.#v2, v3 = this.#v3;
    v0 = (v0 + v1) >>> 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) >>> 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) >>> 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) >>> 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
    this.#v0 = v0 >>> 0;
    this.#v1 = v1 >>> 0;
    this.#v2 = v2 >>> 0;
    this.#v3 = v3 >>> 0;
  }

  /** Starts a new message. */
  begin(): this {
    this.#v0 = this.#k0;
    this.#v1 = this.#k1;
    this.#v2 = (0x6c796765 ^ this.#k0) >>> 0;
    this.#v3 = (0x74656462 ^ this.#k1) >>> 0;
    this.#words = 0;
    return this;
  }

  /** Feeds one 32-bit word. */
  word(m: number): this {
    m >>>= 0;
    this.#v3 = (this.#v3 ^ m) >>> 0;
    this.#round();
    this.#round();
    this.#v0 = (this.#v0 ^ m) >>> 0;
    this.#words++;
    return this;
  }

  /** Feeds 4 or 16 address bytes as words. */
  address(bytes: Uint8Array): this {
    for (let i = 0; i + 3 < bytes.length; i += 4) {
      this.word((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!);
    }
    return this;
  }

  /** Finishes and returns the 32-bit hash. */
  end(): number {
    const b = ((this.#words * 4) << 24) >>> 0;
    this.#v3 = (this.#v3 ^ b) >>> 0;
    this.#round();
    this.#round();
    this.#v0 = (this.#v0 ^ b) >>> 0;
    this.#v2 = (this.#v2 ^ 0xff) >>> 0;
    this.#round();
    this.#round();
    this.#round();
    this.#round();
    return (this.#v1 ^ this.#v3) >>> 0;
  }
}

/**
 * RFC 6528 ISN generator: ISN = M + F(4-tuple, secret), M a 4-microsecond clock.
 */
export class IsnGenerator {
  readonly #hash: KeyedHash;
  readonly #tsHash: KeyedHash;

  /** `secret` is four random 32-bit words chosen once per stack. */
  constructor(secret: Uint32Array) {
    this.#hash = new KeyedHash(secret[0]!, secret[1]!);
    this.#tsHash = new KeyedHash(secret[2]!, secret[3]!);
  }

  #tuple(
    h: KeyedHash,
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
  ): number {
    return h.begin().address(local).address(remote).word((lport << 16) | rport).end();
  }

  /** The initial sequence number for a connection at `now`. */
  isn(local: Uint8Array, lport: number, remote: Uint8Array, rport: number, now: Instant): number {
    const m = Math.floor(now / 4000) >>> 0; // RFC 6528 3: a 4 microsecond timer
    return (m + this.#tuple(this.#hash, local, lport, remote, rport)) >>> 0;
  }

  /** A per-connection timestamp offset (RFC 7323 5.4), stable for the 4-tuple. */
  tsOffset(local: Uint8Array, lport: number, remote: Uint8Array, rport: number): number {
    return this.#tuple(this.#tsHash, local, lport, remote, rport);
  }
}

/** MSS values a SYN cookie can encode (3 bits), ascending. */
export const COOKIE_MSS: readonly number[] = [536, 1220, 1300, 1360, 1440, 1460, 4036, 8960];

/** Length of one SYN cookie period (64 s as in Linux): a cookie stays valid for two periods. */
export const COOKIE_PERIOD = 64_000_000_000;

/**
 * Largest distance (bytes, plus one for a FIN) a client's segment can lie beyond its ISN + 1
 * before the server has sent anything but the cookie SYN-ACK: the window of a SYN-ACK is never
 * scaled (RFC 7323 2.2), so the client may send at most 65535 bytes.
 */
export const COOKIE_MAX_OFFSET = 0x10000;

/** Domain-separation word of the cookie's tuple hash (the MAC's last word is at most 255). */
const TUPLE_WORD = 0xffffffff;

/**
 * SYN cookies (RFC 4987 3.6): the server ISN encodes a time counter, an MSS index and a keyed
 * hash, so no state is kept for a SYN when the queue is full. As in Bernstein's and Linux's
 * cookies the client ISN is bound by addition, not hashed:
 *
 *   cookie = H(tuple) + clientIsn + inner,  inner = t mod 32 (bits 31..27) | MSS index
 *            (bits 26..24) | MAC(tuple, t, MSS index) (bits 23..0)
 *
 * so the first segment (seq = clientIsn + 1) checks exactly, and a later segment of the same
 * client (seq = clientIsn + 1 + k) yields inner - k: `laterOffset` can tell that it belongs to
 * a cookie we issued, whose first segments were lost, without knowing the client ISN.
 */
export class SynCookies {
  readonly #hash: KeyedHash;

  /** Keyed with two secret words. */
  constructor(k0: number, k1: number) {
    this.#hash = new KeyedHash(k0, k1);
  }

  #tupleHash(local: Uint8Array, lport: number, remote: Uint8Array, rport: number): number {
    return this.#hash.begin().address(local).address(remote).word((lport << 16) | rport)
      .word(TUPLE_WORD).end();
  }

  #inner(
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
    t: number,
    mssIdx: number,
  ): number {
    const mac = this.#hash.begin().address(local).address(remote).word((lport << 16) | rport)
      .word((t << 3) | mssIdx).end() & 0xffffff;
    return ((t << 27) | (mssIdx << 24) | mac) >>> 0;
  }

  /** The cookie (our ISN) for a SYN; `mss` is rounded down to an encodable value. */
  make(
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
    clientIsn: number,
    mss: number,
    now: Instant,
  ): number {
    let idx = 0;
    for (let i = COOKIE_MSS.length - 1; i >= 0; i--) {
      if (COOKIE_MSS[i]! <= mss) {
        idx = i;
        break;
      }
    }
    const t = Math.floor(now / COOKIE_PERIOD) & 0x1f;
    const inner = this.#inner(local, lport, remote, rport, t, idx);
    return (this.#tupleHash(local, lport, remote, rport) + (clientIsn >>> 0) + inner) >>> 0;
  }

  /**
   * Checks a returned cookie (`ack - 1` of the final ACK, with the client's ISN `seq - 1`);
   * returns the encoded MSS or 0 when the cookie is forged or expired.
   */
  check(
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
    clientIsn: number,
    cookie: number,
    now: Instant,
  ): number {
    const inner = (cookie - this.#tupleHash(local, lport, remote, rport) - (clientIsn >>> 0)) >>> 0;
    const t = inner >>> 27;
    const idx = (inner >>> 24) & 7;
    const cur = Math.floor(now / COOKIE_PERIOD) & 0x1f;
    const age = (cur - t + 32) & 0x1f;
    if (age > 1) return 0;
    if (this.#inner(local, lport, remote, rport, t, idx) !== inner) return 0;
    return COOKIE_MSS[idx]!;
  }

  /**
   * For a segment that failed `check`: if `cookie` (its `ack - 1`) is one we issued to this
   * 4-tuple in the current or previous period and the segment lies k bytes (1 <= k <=
   * `COOKIE_MAX_OFFSET`) beyond the client's ISN + 1 (`seq - 1` taken as the ISN is k too
   * high), returns k: the segment is a later one of a cookie handshake whose first segment
   * was lost. Otherwise 0. A random ACK passes with probability 16 candidates * 2^16 / 2^32 =
   * 2^-12.
   */
  laterOffset(
    local: Uint8Array,
    lport: number,
    remote: Uint8Array,
    rport: number,
    seqMinusOne: number,
    cookie: number,
    now: Instant,
  ): number {
    // shifted = inner - k with 1 <= k <= 2^16 < 2^24, so inner's top byte (t, MSS index) is
    // shifted's top byte or the one above it (a borrow): at most two MACs to compute, which
    // keeps a flood of stray ACKs in cookie mode cheap.
    const shifted =
      (cookie - this.#tupleHash(local, lport, remote, rport) - (seqMinusOne >>> 0)) >>>
      0;
    const cur = Math.floor(now / COOKIE_PERIOD) & 0x1f;
    const top = shifted >>> 24;
    for (let borrow = 0; borrow <= 1; borrow++) {
      const b = (top + borrow) & 0xff;
      const t = b >>> 3;
      if (((cur - t + 32) & 0x1f) > 1) continue;
      const k = (this.#inner(local, lport, remote, rport, t, b & 7) - shifted) >>> 0;
      if (k >= 1 && k <= COOKIE_MAX_OFFSET) return k;
    }
    return 0;
  }
}
