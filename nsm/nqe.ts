/**
 * NQE: the 64-byte NetKernel Queue Element, one per ring slot. All integers little-endian;
 * address bytes in network order. nsm/README.md documents every op for a C GuestLib.
 *
 * ```
 *  0      1      2             4                            8
 * +------+------+-------------+----------------------------+
 * |  op  |flags |  queueSet   |          socketId           |   0
 * +------+------+-------------+----------------------------+
 * |          requestId        |     result (i32, -errno)    |   8
 * +---------------------------+----------------------------+
 * |          dataOffset       |          dataLength         |  16
 * +---------------------------+----------------------------+
 * |             arg0          |             arg1            |  24
 * +---------------------------+----------------------------+
 * |         arg2 low 32       |     arg2 high 21 (53-bit)   |  32
 * +---------------------------+----------------------------+
 * |                  addr[16] (IPv4: first 4 bytes)         |  40
 * |                                                         |
 * +-------------+------+------+----------------------------+
 * | port (u16)  |family| rsvd |        aux (u32)            |  56
 * +-------------+------+------+----------------------------+
 * ```
 *
 * Encode/decode copy between a reusable `Nqe` object and a slot through a DataView: no
 * allocation per element.
 *
 * @module
 */

/** Size of one NQE in bytes (one ring slot, one cache line). */
export const NQE_SIZE = 64;

/** Field offsets. */
export const NQE_OP = 0;
/** Offset of flags (u8). */
export const NQE_FLAGS = 1;
/** Offset of queueSet (u16). */
export const NQE_QUEUE_SET = 2;
/** Offset of socketId (u32). */
export const NQE_SOCKET = 4;
/** Offset of requestId (u32). */
export const NQE_REQUEST = 8;
/** Offset of result (i32). */
export const NQE_RESULT = 12;
/** Offset of dataOffset (u32). */
export const NQE_DATA_OFFSET = 16;
/** Offset of dataLength (u32). */
export const NQE_DATA_LENGTH = 20;
/** Offset of arg0 (u32). */
export const NQE_ARG0 = 24;
/** Offset of arg1 (u32). */
export const NQE_ARG1 = 28;
/** Offset of arg2 (u64 holding a value below 2^53). */
export const NQE_ARG2 = 32;
/** Offset of addr (16 bytes, network order). */
export const NQE_ADDR = 40;
/** Offset of port (u16, host value stored little-endian). */
export const NQE_PORT = 56;
/** Offset of family (u8: 0, AF_INET 2, AF_INET6 10). */
export const NQE_FAMILY = 58;
/** Offset of the reserved byte (must be 0). */
export const NQE_RESERVED = 59;
/** Offset of aux (u32: IPv6 scope id, or op-specific). */
export const NQE_AUX = 60;

/** NQE operation codes. Requests travel guest->NSM, notifications NSM->guest. */
export const NqeOp = {
  /** No operation; completed with result 0 (liveness and round-trip measurement). */
  NOP: 0,
  /** Create a socket: arg0 domain, arg1 type, arg2 protocol. Result: new socket id. */
  SOCKET: 1,
  /** Bind: addr/port/family. Result 0. */
  BIND: 2,
  /** Listen: arg0 backlog. Result 0. */
  LISTEN: 3,
  /** Accept one connection. Result: new socket id; addr/port/family: the peer. */
  ACCEPT: 4,
  /** Connect to addr/port/family. Result 0 once established. */
  CONNECT: 5,
  /** Send the guest chunk [dataOffset, +dataLength). Result: bytes taken. */
  SEND: 6,
  /** NSM->guest (receive ring): stream bytes in an NSM chunk. */
  RECV: 7,
  /** Guest->NSM: return a receive chunk (dataOffset) and open arg0 bytes of window. */
  RECV_CREDIT: 8,
  /** Shutdown: arg0 how (0 read, 1 write, 2 both). Result 0. */
  SHUTDOWN: 9,
  /** Close the socket id. Result 0. */
  CLOSE: 10,
  /** Set option: arg0 level, arg1 name, arg2 integer value. Result 0. */
  SETSOCKOPT: 11,
  /** Get option: arg0 level, arg1 name. Result 0; completion arg2 = value. */
  GETSOCKOPT: 12,
  /** Arm readiness interest: arg0 event mask. Result: current mask. */
  POLL: 13,
  /** NSM->guest (receive ring): readiness changed; arg0 mask now true. */
  EVENT: 14,
  /** UDP send of the guest chunk to addr/port/family. Result: bytes sent. */
  SENDTO: 15,
  /** NSM->guest (receive ring): one datagram in an NSM chunk, source in addr/port/family. */
  RECVFROM: 16,
} as const;

/** One NQE op code. */
export type NqeOpCode = typeof NqeOp[keyof typeof NqeOp];

/** Number of defined op codes (ops are 0..NQE_OP_COUNT-1). */
export const NQE_OP_COUNT = 17;

const OP_NAMES: readonly string[] = [
  "nop",
  "socket",
  "bind",
  "listen",
  "accept",
  "connect",
  "send",
  "recv",
  "recv-credit",
  "shutdown",
  "close",
  "setsockopt",
  "getsockopt",
  "poll",
  "event",
  "sendto",
  "recvfrom",
];

/** Name of an op code for logs ("op-<n>" when unknown). */
export function nqeOpName(op: number): string {
  return OP_NAMES[op] ?? `op-${op}`;
}

/** NQE flag bits. */
export const NqeFlag = {
  /** SEND/SENDTO: more data follows right away (coalesce, like MSG_MORE). */
  MORE: 0x01,
  /** Completion: the request's data chunk is owned by the guest again. */
  CHUNK_RETURNED: 0x02,
  /** Request: fail with -EAGAIN instead of waiting (accept, connect, send). */
  NONBLOCK: 0x04,
  /**
   * CONNECT: open the socket first, as a SOCKET would (arg0 domain, arg1 type, arg2 protocol;
   * socketId 0), so a connection costs one request instead of two round trips. The completion's
   * socketId is the new socket; when it fails (a SOCKET error such as -EMFILE, or the connect's)
   * socketId is 0 and no socket remains.
   */
  OPEN: 0x08,
  /** Set on every NQE the NSM writes to the completion ring. */
  COMPLETION: 0x80,
} as const;

/** Address family values of the `family` field (Linux AF_* numbers). */
export const NqeFamily = { NONE: 0, INET: 2, INET6: 10 } as const;

/** Readiness bits of POLL/EVENT masks (Linux poll(2) values). */
export const NqeEvent = { IN: 0x001, OUT: 0x004, ERR: 0x008, HUP: 0x010, RDHUP: 0x2000 } as const;

/** Largest arg2 value (2^53 - 1: exact in a JS number). */
export const NQE_ARG2_MAX = Number.MAX_SAFE_INTEGER;

/** A decoded NQE: a plain reusable struct. Create one per loop, not per element. */
export class Nqe {
  /** Op code (NqeOp). */
  op = 0;
  /** Flag bits (NqeFlag). */
  flags = 0;
  /** Queue set the element belongs to. */
  queueSet = 0;
  /** NSM socket id (0 for SOCKET and NOP requests). */
  socketId = 0;
  /** Guest-chosen id echoed in the completion. */
  requestId = 0;
  /** Completion value (>= 0) or -errno; 0 in requests. */
  result = 0;
  /** Byte offset of the payload in the data region. */
  dataOffset = 0;
  /** Payload bytes. */
  dataLength = 0;
  /** Op-specific u32. */
  arg0 = 0;
  /** Op-specific u32. */
  arg1 = 0;
  /** Op-specific unsigned value below 2^53. */
  arg2 = 0;
  /** Address bytes (network order); meaningful per `family`. */
  readonly addr: Uint8Array = new Uint8Array(16);
  /** The same 16 bytes as a DataView, so the codec moves them as four u32 words. */
  readonly addrView: DataView = new DataView(this.addr.buffer);
  /** Port (host value). */
  port = 0;
  /** 0, NqeFamily.INET or NqeFamily.INET6. */
  family = 0;
  /** IPv6 scope id or op-specific u32. */
  aux = 0;

  /** Resets every field to zero (for building a new request in a reused object). */
  clear(): this {
    this.op = 0;
    this.flags = 0;
    this.queueSet = 0;
    this.socketId = 0;
    this.requestId = 0;
    this.result = 0;
    this.dataOffset = 0;
    this.dataLength = 0;
    this.arg0 = 0;
    this.arg1 = 0;
    this.arg2 = 0;
    this.addr.fill(0);
    this.port = 0;
    this.family = 0;
    this.aux = 0;
    return this;
  }
}

const TWO_32 = 0x1_0000_0000;

/** Writes `n` into the 64 bytes at `offset` of `view`. No allocation. */
export function encodeNqe(view: DataView, offset: number, n: Nqe): void {
  // op, flags and queueSet as one little-endian word (so are port, family and reserved): one
  // access instead of three (each DataView access is a bounds check and a store).
  view.setUint32(
    offset + NQE_OP,
    (n.op & 0xff) | (n.flags & 0xff) << 8 | (n.queueSet & 0xffff) << 16,
    true,
  );
  view.setUint32(offset + NQE_SOCKET, n.socketId, true);
  view.setUint32(offset + NQE_REQUEST, n.requestId, true);
  view.setInt32(offset + NQE_RESULT, n.result, true);
  view.setUint32(offset + NQE_DATA_OFFSET, n.dataOffset, true);
  view.setUint32(offset + NQE_DATA_LENGTH, n.dataLength, true);
  view.setUint32(offset + NQE_ARG0, n.arg0, true);
  view.setUint32(offset + NQE_ARG1, n.arg1, true);
  const a2 = n.arg2;
  view.setUint32(offset + NQE_ARG2, a2 >>> 0, true);
  view.setUint32(offset + NQE_ARG2 + 4, (a2 / TWO_32) >>> 0, true);
  const a = n.addrView;
  view.setUint32(offset + NQE_ADDR, a.getUint32(0, true), true);
  view.setUint32(offset + NQE_ADDR + 4, a.getUint32(4, true), true);
  view.setUint32(offset + NQE_ADDR + 8, a.getUint32(8, true), true);
  view.setUint32(offset + NQE_ADDR + 12, a.getUint32(12, true), true);
  view.setUint32(offset + NQE_PORT, (n.port & 0xffff) | (n.family & 0xff) << 16, true); // rsvd 0
  view.setUint32(offset + NQE_AUX, n.aux, true);
}

/**
 * Reads the 64 bytes at `offset` of `view` into `n` and returns it. Never throws for any byte
 * content: checking op, ids and data bounds is the receiver's job (see data_region.ts).
 * arg2's high word is masked to 21 bits so the value stays an exact integer.
 */
export function decodeNqe(view: DataView, offset: number, n: Nqe): Nqe {
  const w0 = view.getUint32(offset + NQE_OP, true); // op | flags << 8 | queueSet << 16
  n.op = w0 & 0xff;
  n.flags = (w0 >>> 8) & 0xff;
  n.queueSet = w0 >>> 16;
  n.socketId = view.getUint32(offset + NQE_SOCKET, true);
  n.requestId = view.getUint32(offset + NQE_REQUEST, true);
  n.result = view.getInt32(offset + NQE_RESULT, true);
  n.dataOffset = view.getUint32(offset + NQE_DATA_OFFSET, true);
  n.dataLength = view.getUint32(offset + NQE_DATA_LENGTH, true);
  n.arg0 = view.getUint32(offset + NQE_ARG0, true);
  n.arg1 = view.getUint32(offset + NQE_ARG1, true);
  n.arg2 = view.getUint32(offset + NQE_ARG2, true) +
    (view.getUint32(offset + NQE_ARG2 + 4, true) & 0x1f_ffff) * TWO_32;
  const a = n.addrView;
  a.setUint32(0, view.getUint32(offset + NQE_ADDR, true), true);
  a.setUint32(4, view.getUint32(offset + NQE_ADDR + 4, true), true);
  a.setUint32(8, view.getUint32(offset + NQE_ADDR + 8, true), true);
  a.setUint32(12, view.getUint32(offset + NQE_ADDR + 12, true), true);
  const w14 = view.getUint32(offset + NQE_PORT, true); // port | family << 16 | reserved << 24
  n.port = w14 & 0xffff;
  n.family = (w14 >>> 16) & 0xff;
  n.aux = view.getUint32(offset + NQE_AUX, true);
  return n;
}

/**
 * Writes a completion for request `req` into the slot: op, queueSet, socketId, requestId,
 * dataOffset/dataLength echoed, the given result and flags (COMPLETION is added), other
 * fields zero. For the common case where the completion carries no address or arg2.
 */
export function encodeCompletion(
  view: DataView,
  offset: number,
  req: Nqe,
  result: number,
  flags: number,
): void {
  view.setUint32(
    offset + NQE_OP,
    (req.op & 0xff) | ((flags | NqeFlag.COMPLETION) & 0xff) << 8 | (req.queueSet & 0xffff) << 16,
    true,
  );
  view.setUint32(offset + NQE_SOCKET, req.socketId, true);
  view.setUint32(offset + NQE_REQUEST, req.requestId, true);
  view.setInt32(offset + NQE_RESULT, result, true);
  view.setUint32(offset + NQE_DATA_OFFSET, req.dataOffset, true);
  view.setUint32(offset + NQE_DATA_LENGTH, req.dataLength, true);
  for (let i = NQE_ARG0; i < NQE_SIZE; i += 4) view.setUint32(offset + i, 0, true);
}
