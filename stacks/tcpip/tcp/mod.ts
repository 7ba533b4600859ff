/**
 * TCP: the per-connection state machine (`Tcb`), the socket layer (`TcpStack`, protocol 6),
 * buffers, SYN cookies/ISNs, typed errors and the scripted test harness. The sender's loss
 * recovery and congestion control live in `./recovery/`.
 *
 * @module
 */

export * from "./config.ts";
export * from "./counters.ts";
export * from "./errors.ts";
export { COOKIE_MAX_OFFSET, COOKIE_MSS, IsnGenerator, KeyedHash, SynCookies } from "./isn.ts";
export { AddResult, MAX_RANGES, Reassembly } from "./reassembly.ts";
export { ByteRing } from "./ring.ts";
export * from "./seq.ts";
export {
  IP_PROTOCOL_TCP,
  TcpSocket,
  TcpStack,
  type TcpStackOptions,
  WOULD_BLOCK,
} from "./stack.ts";
export type { TcpOptionName } from "./stack.ts";
export {
  ERROR,
  HANGUP,
  READABLE,
  receiveShiftFor,
  type SegmentInfo,
  Tcb,
  type TcbHost,
  TCP_STATE_NAMES,
  type TcpInfo,
  TcpState,
  windowShiftFor,
  WRITABLE,
} from "./tcb.ts";
export { type HeapEntry, TimerHeap } from "./timer_heap.ts";
