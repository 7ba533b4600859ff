/**
 * The payload region of an NK device: two halves of equal, fixed-size chunks.
 *
 * ```
 * region offset 0                       half                              2*half
 * | guest half: chunks 0..n-1            | NSM half: chunks 0..n-1          |
 * ```
 * Offsets in NQEs (`dataOffset`) are byte offsets from the region start; a payload lies inside
 * one chunk (`dataOffset + dataLength` may not cross the chunk's end).
 *
 * Ownership protocol (each side allocates only from its own half; the peer only borrows):
 * - Send: the guest `alloc()`s a chunk of its half, writes the payload, `lend()`s it and publishes
 *   a SEND/SENDTO NQE naming it. The NSM `borrow()`s it (validated: inside the guest half, inside
 *   one chunk, not already borrowed), reads it, `giveBack()`s it and completes the request with
 *   flag CHUNK_RETURNED; the guest then `reclaim()`s it (validated: its own half, currently lent).
 * - Receive: mirror image. The NSM allocates from its half, lends the chunk in a RECV/RECVFROM
 *   NQE; the guest borrows it, consumes the bytes, gives it back and returns it with a RECV_CREDIT
 *   NQE (dataOffset = the chunk), which the NSM reclaims.
 * - A side never writes into a chunk it lent until it reclaimed it, and never touches a peer
 *   chunk it has not borrowed.
 *
 * Everything that arrives from the peer is checked (`borrow`, `reclaim` return a fault reason
 * instead of throwing, and count it): a hostile guest cannot make the NSM read outside the
 * region, outside the guest half, or hold one chunk twice. Misuse by the local side itself
 * (freeing a chunk it does not own) throws `DataRegionError`: that is a bug, not input.
 *
 * The allocator state lives in each process's private memory, never in the shared region, so
 * the peer cannot corrupt it.
 *
 * @module
 */

/** Which end of the device this process is. */
export type DeviceSide = "guest" | "nsm";

/** Why a peer-supplied offset/length was rejected. */
export type DataFault =
  | "offset-out-of-region"
  | "wrong-half"
  | "length-crosses-chunk"
  | "chunk-not-lent"
  | "chunk-already-borrowed";

/** All fault reasons, for counters and tests. */
export const DATA_FAULTS: readonly DataFault[] = [
  "offset-out-of-region",
  "wrong-half",
  "length-crosses-chunk",
  "chunk-not-lent",
  "chunk-already-borrowed",
];

/** Local misuse of the region (a bug in this process) or a fault turned into an exception. */
export class DataRegionError extends Error {
  /** Machine-readable reason. */
  readonly reason: string;
  /** Builds the error; the message carries what to do. */
  constructor(reason: string, message: string) {
    super(message);
    this.name = "DataRegionError";
    this.reason = reason;
  }
}

/** Chunk states of the own half (private memory). */
const FREE = 0;
const LOCAL = 1;
const LENT = 2;

/** Geometry of a data region. */
export interface DataRegionGeometry {
  /** Bytes per chunk: a power of two, 64..2^24. */
  readonly chunkSize: number;
  /** Chunks in each half (>= 1). */
  readonly chunksPerHalf: number;
}

/** Bytes a region with this geometry occupies (both halves). */
export function dataRegionBytes(g: DataRegionGeometry): number {
  return 2 * g.chunkSize * g.chunksPerHalf;
}

/** Throws RangeError-like DataRegionError when the geometry cannot be used. */
export function checkDataGeometry(g: DataRegionGeometry): void {
  const { chunkSize, chunksPerHalf } = g;
  if (
    !Number.isInteger(chunkSize) || chunkSize < 64 || chunkSize > (1 << 24) ||
    (chunkSize & (chunkSize - 1)) !== 0
  ) {
    throw new DataRegionError(
      "bad-geometry",
      `chunk size ${chunkSize} invalid: use a power of two between 64 and 16 MiB`,
    );
  }
  if (!Number.isInteger(chunksPerHalf) || chunksPerHalf < 1) {
    throw new DataRegionError("bad-geometry", `chunksPerHalf ${chunksPerHalf} must be >= 1`);
  }
  if (dataRegionBytes(g) > 0x1_0000_0000) {
    throw new DataRegionError(
      "bad-geometry",
      `data region of ${
        dataRegionBytes(g)
      } bytes exceeds 4 GiB (offsets are u32): use fewer chunks`,
    );
  }
}

/** One side's view of the data region: allocator of its half, borrow checks for the other. */
export class DataRegion {
  /** The whole region (both halves); NQE dataOffset indexes into it. */
  readonly bytes: Uint8Array;
  /** Bytes per chunk. */
  readonly chunkSize: number;
  /** Chunks per half. */
  readonly chunksPerHalf: number;
  /** This process's side. */
  readonly side: DeviceSide;
  /** Region offset where this side's half starts. */
  readonly ownBase: number;
  /** Region offset where the peer's half starts. */
  readonly peerBase: number;
  /** Faults seen from the peer, per reason. */
  readonly faults: Record<DataFault, number> = {
    "offset-out-of-region": 0,
    "wrong-half": 0,
    "length-crosses-chunk": 0,
    "chunk-not-lent": 0,
    "chunk-already-borrowed": 0,
  };
  readonly #half: number;
  readonly #shift: number;
  readonly #state: Uint8Array;
  readonly #freeList: Int32Array;
  #freeCount: number;
  readonly #borrowed: Uint8Array;

  /** A view of the region at `offset` of `buffer` (64-byte aligned) for `side`. */
  constructor(buffer: ArrayBufferLike, offset: number, g: DataRegionGeometry, side: DeviceSide) {
    checkDataGeometry(g);
    const size = dataRegionBytes(g);
    if (offset % 64 !== 0 || offset + size > buffer.byteLength) {
      throw new DataRegionError(
        "bad-geometry",
        `data region [${offset}, +${size}) does not fit 64-byte aligned in ${buffer.byteLength} bytes`,
      );
    }
    this.bytes = new Uint8Array(buffer, offset, size);
    this.chunkSize = g.chunkSize;
    this.chunksPerHalf = g.chunksPerHalf;
    this.side = side;
    this.#half = g.chunkSize * g.chunksPerHalf;
    this.#shift = Math.log2(g.chunkSize);
    this.ownBase = side === "guest" ? 0 : this.#half;
    this.peerBase = side === "guest" ? this.#half : 0;
    this.#state = new Uint8Array(g.chunksPerHalf);
    this.#freeList = new Int32Array(g.chunksPerHalf);
    // Lowest chunk on top of the stack, so allocation order is predictable in tests.
    for (let i = 0; i < g.chunksPerHalf; i++) this.#freeList[i] = g.chunksPerHalf - 1 - i;
    this.#freeCount = g.chunksPerHalf;
    this.#borrowed = new Uint8Array(g.chunksPerHalf);
  }

  /** Own chunks currently free. */
  get freeChunks(): number {
    return this.#freeCount;
  }

  /**
   * Allocates a chunk of the own half; returns its region offset, or -1 when every chunk is in
   * use or lent (backpressure: wait for completions / credits).
   */
  alloc(): number {
    if (this.#freeCount === 0) return -1;
    const c = this.#freeList[--this.#freeCount]!;
    this.#state[c] = LOCAL;
    return this.ownBase + (c << this.#shift);
  }

  #ownChunk(offset: number, what: string): number {
    const rel = offset - this.ownBase;
    if (!Number.isInteger(offset) || rel < 0 || rel >= this.#half) {
      throw new DataRegionError(
        "not-own-chunk",
        `${what}(${offset}): offset is outside this side's half; pass an offset alloc() returned`,
      );
    }
    return rel >>> this.#shift;
  }

  /** Frees an own chunk that was allocated but never lent (throws on misuse). */
  free(offset: number): void {
    const c = this.#ownChunk(offset, "free");
    if (this.#state[c] !== LOCAL) {
      throw new DataRegionError(
        "not-allocated",
        `free(${offset}): chunk is ${
          this.#state[c] === LENT ? "lent to the peer" : "already free"
        }; ` +
          `free only chunks alloc() returned and that were never lent`,
      );
    }
    this.#state[c] = FREE;
    this.#freeList[this.#freeCount++] = c;
  }

  /** Marks an allocated own chunk as lent to the peer (call before publishing its NQE). */
  lend(offset: number): void {
    const c = this.#ownChunk(offset, "lend");
    if (this.#state[c] !== LOCAL) {
      throw new DataRegionError(
        "not-allocated",
        `lend(${offset}): chunk is not allocated locally; alloc() it first and lend it once`,
      );
    }
    this.#state[c] = LENT;
  }

  /**
   * The peer returned an own chunk (completion with CHUNK_RETURNED, or RECV_CREDIT): `offset` may
   * point anywhere inside the chunk. Returns null and frees the chunk, or the fault reason
   * (counted; the chunk state is unchanged).
   */
  reclaim(offset: number): DataFault | null {
    const rel = offset - this.ownBase;
    let fault: DataFault | null = null;
    if (!(offset >= 0 && offset < 2 * this.#half)) fault = "offset-out-of-region";
    else if (rel < 0 || rel >= this.#half) fault = "wrong-half";
    else {
      const c = rel >>> this.#shift;
      if (this.#state[c] !== LENT) fault = "chunk-not-lent";
      else {
        this.#state[c] = FREE;
        this.#freeList[this.#freeCount++] = c;
        return null;
      }
    }
    this.faults[fault]++;
    return fault;
  }

  /**
   * Validates a payload the peer lends (`dataOffset`, `dataLength` from its NQE) and marks the
   * chunk borrowed. Returns null when the bytes `bytes[offset .. offset+length)` may be read, or
   * the fault reason (counted; nothing is marked).
   */
  borrow(offset: number, length: number): DataFault | null {
    let fault: DataFault | null = null;
    const rel = offset - this.peerBase;
    if (
      !(offset >= 0 && offset < 2 * this.#half) || !(length >= 0) ||
      offset + length > 2 * this.#half
    ) {
      fault = "offset-out-of-region";
    } else if (rel < 0 || rel >= this.#half) fault = "wrong-half";
    else {
      const c = rel >>> this.#shift;
      const inChunk = rel - (c << this.#shift);
      if (inChunk + length > this.chunkSize) fault = "length-crosses-chunk";
      else if (this.#borrowed[c] !== 0) fault = "chunk-already-borrowed";
      else {
        this.#borrowed[c] = 1;
        return null;
      }
    }
    this.faults[fault]++;
    return fault;
  }

  /** Ends a borrow (before returning the chunk to the peer). Throws if it was not borrowed. */
  giveBack(offset: number): void {
    const rel = offset - this.peerBase;
    const c = rel >>> this.#shift;
    if (!(rel >= 0 && rel < this.#half) || this.#borrowed[c] !== 1) {
      throw new DataRegionError(
        "not-borrowed",
        `giveBack(${offset}): no borrowed peer chunk there; give back only what borrow() accepted`,
      );
    }
    this.#borrowed[c] = 0;
  }

  /** Total faults from the peer. */
  get faultCount(): number {
    let n = 0;
    for (const r of DATA_FAULTS) n += this.faults[r];
    return n;
  }
}
