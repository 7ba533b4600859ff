/**
 * The TX kick thread of `ThreadKicker` (xdp/kick.ts), run as a `node:worker_threads` worker:
 * it sleeps until the link asks for a kick, then calls `sendto` until the kernel has consumed
 * every descriptor the link published to the TX ring. In copy mode that `sendto` is where the
 * kernel builds an skb per frame, runs veth and the peer's receive processing; on this thread
 * it overlaps with the stack's own work on the JS thread.
 *
 * Protocol (Int32 words of the shared control block, see `KickWord` in kick.ts): the worker
 * moves STATE 0 -> 1 when it starts (and exits at once, touching nothing, when the link has
 * already cancelled it: 0 -> 3), and sets STATE 2 when it leaves its loop after STOP; the link
 * unmaps the ring only after that. REQ is set by the link after each publish; the worker
 * clears it before draining, so a publish during a drain is seen on the next round.
 *
 * @module
 */

import { workerData } from "node:worker_threads";
import { EAGAIN, EBUSY, ENETDOWN, ENOBUFS, errno, libc } from "./libc.ts";
import { KickWord, type KickWorkerData, KickWorkerState } from "./kick.ts";
import { MILLISECOND, monotonicNow } from "../stacks/time.ts";

const MSG_DONTWAIT = 0x40;
/** Longest idle sleep before STOP is looked at again (ms). */
const IDLE_WAIT_MS = 50;
/** Back-off after a kick that consumed nothing (ms): the kernel is out of room. */
const STALL_WAIT_MS = 0.1;

function run(data: KickWorkerData): void {
  const ctl = new Int32Array(data.control);
  if (
    Atomics.compareExchange(ctl, KickWord.State, KickWorkerState.New, KickWorkerState.Running) !==
      KickWorkerState.New
  ) {
    return; // cancelled before it started: the ring may already be unmapped
  }
  try {
    const ptr = Deno.UnsafePointer.create(BigInt(data.ring));
    if (ptr === null) throw new Error("kick worker: null TX ring pointer");
    const words = new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(ptr, data.ringBytes));
    const prodWord = data.producerWord;
    const consWord = data.consumerWord;
    const fd = data.fd;
    const spinNs = data.spinUs * (MILLISECOND / 1000);
    const sendto = libc().sendto;
    while (Atomics.load(ctl, KickWord.Stop) === 0) {
      if (Atomics.exchange(ctl, KickWord.Request, 0) === 0) {
        if (spinNs > 0) {
          // This loop is the thread's driver loop: the only place it reads the clock.
          const until = monotonicNow() + spinNs;
          while (Atomics.load(ctl, KickWord.Request) === 0 && monotonicNow() < until) {
            // spin: a busy sender publishes again within microseconds
          }
          if (Atomics.load(ctl, KickWord.Request) !== 0) continue;
        }
        Atomics.store(ctl, KickWord.Sleeping, 1);
        Atomics.add(ctl, KickWord.Sleeps, 1);
        Atomics.wait(ctl, KickWord.Request, 0, IDLE_WAIT_MS);
        Atomics.store(ctl, KickWord.Sleeping, 0);
        continue;
      }
      for (;;) {
        const cons = Atomics.load(words, consWord);
        if (Atomics.load(words, prodWord) === cons || Atomics.load(ctl, KickWord.Stop) !== 0) {
          break;
        }
        const r = sendto(fd, null, null, MSG_DONTWAIT, null, 0);
        Atomics.add(ctl, KickWord.Kicks, 1);
        if (r < 0) {
          const e = errno();
          Atomics.add(ctl, KickWord.KickBusy, 1);
          if (e !== EAGAIN && e !== EBUSY && e !== ENOBUFS && e !== ENETDOWN) {
            Atomics.store(ctl, KickWord.Fatal, e);
            return;
          }
        }
        if (Atomics.load(words, consWord) === cons) {
          Atomics.wait(ctl, KickWord.Stop, 0, STALL_WAIT_MS);
        }
      }
    }
  } finally {
    Atomics.store(ctl, KickWord.State, KickWorkerState.Exited);
    Atomics.notify(ctl, KickWord.State);
  }
}

run(workerData as KickWorkerData);
