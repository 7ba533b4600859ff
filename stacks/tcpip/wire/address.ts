/**
 * IP addresses as values for sockets, routes and configuration. Allocated when a socket or a
 * route is made, never per packet: the receive path reads raw addresses from the packet views.
 *
 * @module
 */

/** Error for an address string that is neither dotted-quad IPv4 nor RFC 4291 IPv6 text. */
export class AddressParseError extends Error {
  constructor(text: string) {
    super(`"${text}" is not an IPv4 (198.18.0.1) or IPv6 (fd00::1) address`);
    this.name = "AddressParseError";
  }
}

/** An immutable IPv4 or IPv6 address. */
export class IpAddress {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** The address in network byte order: 4 or 16 bytes. Do not modify. */
  readonly bytes: Uint8Array;
  /** For IPv4 the address as an unsigned 32-bit number, 0 for IPv6. */
  readonly v4: number;

  private constructor(version: 4 | 6, bytes: Uint8Array) {
    this.version = version;
    this.bytes = bytes;
    this.v4 = version === 4
      ? ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0
      : 0;
  }

  /** An IPv4 address from its unsigned 32-bit value. */
  static fromV4(value: number): IpAddress {
    const b = new Uint8Array(4);
    b[0] = value >>> 24;
    b[1] = value >>> 16;
    b[2] = value >>> 8;
    b[3] = value;
    return new IpAddress(4, b);
  }

  /** An address from 4 or 16 network-order bytes (copied). */
  static fromBytes(bytes: Uint8Array): IpAddress {
    if (bytes.length === 4) return new IpAddress(4, bytes.slice());
    if (bytes.length === 16) return new IpAddress(6, bytes.slice());
    throw new RangeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  }

  /** Parses `198.18.0.1` or `fd00::1` (with `::` compression and an optional IPv4 tail). */
  static parse(text: string): IpAddress {
    const v4 = parseV4(text);
    if (v4 !== null) return new IpAddress(4, v4);
    const v6 = parseV6(text);
    if (v6 !== null) return new IpAddress(6, v6);
    throw new AddressParseError(text);
  }

  /** True when both are the same version and bytes. */
  equals(other: IpAddress): boolean {
    if (other.version !== this.version) return false;
    for (let i = 0; i < this.bytes.length; i++) if (this.bytes[i] !== other.bytes[i]) return false;
    return true;
  }

  /** True when `raw` (4 or 16 bytes) holds this address. */
  equalsBytes(raw: Uint8Array): boolean {
    if (raw.length !== this.bytes.length) return false;
    for (let i = 0; i < raw.length; i++) if (raw[i] !== this.bytes[i]) return false;
    return true;
  }

  /** True for 0.0.0.0 and ::. */
  get isUnspecified(): boolean {
    return this.bytes.every((b) => b === 0);
  }

  /** True for 224.0.0.0/4 and ff00::/8. */
  get isMulticast(): boolean {
    return this.version === 4 ? (this.bytes[0]! & 0xf0) === 0xe0 : this.bytes[0] === 0xff;
  }

  /** Dotted quad for IPv4, RFC 5952 canonical text for IPv6. */
  toString(): string {
    if (this.version === 4) return this.bytes.join(".");
    const words: number[] = [];
    for (let i = 0; i < 16; i += 2) words.push((this.bytes[i]! << 8) | this.bytes[i + 1]!);
    // RFC 5952 4.2: compress the longest run (length >= 2) of zero words, the first on a tie.
    let bestStart = -1, bestLen = 1;
    for (let i = 0; i < 8;) {
      if (words[i] !== 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && words[j] === 0) j++;
      if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
      i = j;
    }
    const hex = words.map((w) => w.toString(16));
    if (bestStart < 0) return hex.join(":");
    return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
  }
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const words = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const groups = s.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseV4(g);
        if (v4 === null) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]!);
  const tail = halves.length === 2 ? words(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >>> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}
