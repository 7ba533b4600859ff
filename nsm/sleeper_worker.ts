/**
 * The thread of `Sleeper` (nsm/sleeper.ts), run as a `node:worker_threads` worker: it waits
 * until the JS thread arms a sleep, sleeps in poll(2) on the armed descriptors plus the
 * sleeper's eventfd (its interrupt) for the armed timeout, then calls the JS thread's
 * thread-safe callback with why it woke, and waits for the next arm. The call blocks this
 * thread until the callback has run, so a callback that arms the next sleep is seen at once.
 *
 * Protocol: Int32 words of the shared control block, `SleeperWord` in sleeper.ts. The worker
 * moves STATE New -> Running when it starts (or exits at once when the sleeper was closed
 * first: New -> Exited), and sets Exited when it leaves its loop after STOP; the sleeper frees
 * the eventfd and the callback only after that.
 *
 * Garbage made here is this isolate's: it never pauses the JS thread.
 *
 * @module
 */

import { workerData } from "node:worker_threads";
import { EINTR, errno, libc } from "../stacks/sys/libc.ts";
import {
  POLL_SIZE,
  SleeperWake,
  SleeperWord,
  type SleeperWorkerData,
  SleeperWorkerState,
} from "./sleeper.ts";

const POLLIN = 0x1;
/** void (*)(int why): the sleeper's thread-safe callback. */
const WAKE = { parameters: ["i32"], result: "void" } as const;

function run(data: SleeperWorkerData): void {
  const ctl = new Int32Array(data.control);
  if (
    Atomics.compareExchange(
      ctl,
      SleeperWord.State,
      SleeperWorkerState.New,
      SleeperWorkerState.Running,
    ) !== SleeperWorkerState.New
  ) {
    return; // closed before it started: the eventfd may already be gone
  }
  try {
    loop(ctl, data);
  } finally {
    Atomics.store(ctl, SleeperWord.State, SleeperWorkerState.Exited);
    Atomics.notify(ctl, SleeperWord.State);
  }
}

function loop(ctl: Int32Array, data: SleeperWorkerData): void {
  const ptr = Deno.UnsafePointer.create(BigInt(data.callback));
  if (ptr === null) throw new Error("sleeper worker: null callback pointer");
  const wake = new Deno.UnsafeFnPointer(ptr as Deno.PointerObject<typeof WAKE>, WAKE);
  const c = libc();
  const pollfds = new Uint8Array(POLL_SIZE * (1 + data.maxFds));
  const pv = new DataView(pollfds.buffer);
  const drain = new Uint8Array(8);
  const nfds: Deno.PointerValue[] = [];
  for (let i = 0; i <= data.maxFds + 1; i++) nfds.push(Deno.UnsafePointer.create(BigInt(i)));
  pv.setInt32(0, data.eventFd, true);
  pv.setInt16(4, POLLIN, true);
  while (Atomics.load(ctl, SleeperWord.Stop) === 0) {
    if (Atomics.exchange(ctl, SleeperWord.Arm, 0) === 0) {
      Atomics.wait(ctl, SleeperWord.Arm, 0);
      continue;
    }
    const n = Atomics.load(ctl, SleeperWord.Count);
    for (let i = 0; i < n; i++) {
      const at = POLL_SIZE * (1 + i);
      pv.setInt32(at, Atomics.load(ctl, SleeperWord.Fds + i), true);
      pv.setInt16(at + 4, POLLIN, true);
      pv.setInt16(at + 6, 0, true);
    }
    pv.setInt16(6, 0, true);
    const r = c.poll(pollfds, nfds[n + 1]!, Atomics.load(ctl, SleeperWord.Timeout));
    if (Atomics.load(ctl, SleeperWord.Stop) !== 0) break;
    let why: number = SleeperWake.Timeout;
    if (r < 0) {
      // EINTR: a signal on this thread; the caller re-checks and sleeps again.
      why = errno() === EINTR ? SleeperWake.Interrupted : SleeperWake.Error;
    } else if (r > 0) {
      if (pv.getInt16(6, true) !== 0) {
        c.read(data.eventFd, drain, 8n); // back to 0 (EFD_NONBLOCK: never blocks)
        why = SleeperWake.Interrupted;
      }
      for (let i = 0; i < n; i++) {
        if (pv.getInt16(POLL_SIZE * (1 + i) + 6, true) !== 0) {
          why = SleeperWake.Ready;
          break;
        }
      }
    }
    wake.call(why);
  }
}

run(workerData as SleeperWorkerData);
