/**
 * Helpers for scripting a `RecoveryEngine` in unit tests and benchmarks (virtual time only).
 *
 * @module
 */

import type { Instant } from "../../../time.ts";
import type { Seq } from "../seq.ts";
import type { AckResult } from "./api.ts";
import type { RecoveryEngine } from "./engine.ts";

/** Milliseconds to nanoseconds. */
export function ms(v: number): Instant {
  return v * 1_000_000;
}

/** Sends `n` new segments of `len` bytes at `now`; returns the first sequence number. */
export function sendNew(e: RecoveryEngine, n: number, len: number, now: Instant): Seq {
  const first = e.sndNxt;
  for (let i = 0; i < n; i++) e.onSend(e.sndNxt, len, now, false);
  return first;
}

/** SACK block array from sequence numbers given as (left, right) pairs. */
export function blocks(...edges: number[]): Uint32Array {
  const b = new Uint32Array(8);
  for (let i = 0; i < edges.length && i < 8; i++) b[i] = edges[i]! >>> 0;
  return b;
}

const empty = new Uint32Array(8);

/** Delivers an ACK: `sack` holds (left, right) pairs, absolute sequence numbers. */
export function ackWith(
  e: RecoveryEngine,
  now: Instant,
  ack: Seq,
  sack: number[] = [],
  tsRtt = -1,
  ece = false,
): AckResult {
  const b = sack.length === 0 ? empty : blocks(...sack);
  return e.onAck(now, ack >>> 0, b, sack.length / 2, tsRtt, ece);
}
