/**
 * What the hostile-guest tests of both NSM backends (tcpip and kernel) do to a `RawGuest`: ask
 * for one completion, use sockets that are not the guest's, point SENDTO data outside the
 * guest's half, and stop draining completions until the NSM stops taking jobs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Errno } from "../../nsm/backend.ts";
import { type Nqe, NqeFlag, NqeOp } from "../../nsm/nqe.ts";
import type { RawGuest } from "../../nsm/raw_guest.ts";
import { poll } from "./raw_guest_wait.ts";

/** Submits one NQE (`fill`, `send`, reserved byte `rsv`) and resolves with its completion. */
export type Ask = (
  fill: Parameters<RawGuest["submit"]>[0],
  send?: boolean,
  rsv?: number,
) => Promise<Nqe>;

/** An `Ask` on guest `h` that polls (bounded) for the completion of each request. */
export function askOn(h: RawGuest): Ask {
  return async (fill, send = false, rsv = 0) => {
    const id = h.submit(fill, send, rsv);
    return await poll(() => h.completions().find((c) => c.requestId === id));
  };
}

/** SHUTDOWN on socket ids this guest does not own (1, 2, 0xffffffff) completes with -EBADF. */
export async function assertForeignSocketsRejected(ask: Ask): Promise<void> {
  for (const sid of [1, 2, 0xffff_ffff]) {
    const c = await ask((n) => {
      n.op = NqeOp.SHUTDOWN;
      n.socketId = sid;
      n.arg0 = 2;
    });
    assert.equal(c.result, -Errno.EBADF, `socket ${sid} is not this guest's`);
  }
}

/**
 * SENDTO on `sock` with data outside the guest's half (past the end, in the NSM's half, too
 * long) completes with -EFAULT and without handing a chunk back.
 */
export async function assertBadSendtoRejected(h: RawGuest, ask: Ask, sock: number): Promise<void> {
  for (const [off, len] of [[0xffff_fff0, 64], [h.dev.data.peerBase, 8], [100, 1 << 20]]) {
    const c = await ask((n) => {
      n.op = NqeOp.SENDTO;
      n.socketId = sock;
      n.dataOffset = off!;
      n.dataLength = len!;
      n.family = 2;
      n.port = 9;
    }, true);
    assert.equal(c.result, -Errno.EFAULT, `data ${off}+${len}`);
    assert.equal(c.flags & NqeFlag.CHUNK_RETURNED, 0);
  }
}

/**
 * Submits NOPs in bursts without ever draining completions, until the NSM stops taking jobs
 * (bounded: 100 bursts 5 ms apart).
 */
export async function stallJobRing(s: RawGuest): Promise<void> {
  let submitted = 0;
  for (let burst = 0; burst < 100; burst++) {
    let k = 0;
    while (s.submit((n) => n.op = NqeOp.NOP) > 0) k++;
    submitted += k;
    if (k === 0 && submitted > 2 * s.qs.job.capacity) break; // NSM stopped taking
    await new Promise((r) => setTimeout(r, 5));
  }
}
