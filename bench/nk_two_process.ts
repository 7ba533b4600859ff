/**
 * Two-process NK device numbers: the NSM (this process) and a guest (this script re-spawned
 * with `guest <path>`) share one device and run the same phases in lockstep:
 *
 * A. raw:      guest -> NSM job ring, one u32 written/read per 64-byte slot, batch 64; one cold
 *              round (JIT warm-up included) then `--rounds` (default 5) timed rounds of the same
 *              size; reported: best warm round (as micro.ts takes the C ring's best run), the
 *              median, and the cold round
 * B. encoded:  the same with full encodeNqe/decodeNqe of every element
 * C. nop-rtt:  NOP requests pipelined (batch 32) through job ring -> NSM -> completion ring
 * D. ping:     one NOP at a time, both sides spinning (round-trip latency)
 * E. wake:     the guest is asleep on the doorbell; the NSM posts one NQE on the receive ring and
 *              spins for the guest's answer on the job ring (= one wake-up + reply)
 * F. wake2:    as E, but the NSM sleeps too while waiting (= two wake-ups per round trip)
 * G. idle:     both sides wait 2 s with nothing to do; CPU time of each process
 *
 * Run: deno run -A bench/nk_two_process.ts [scale] [--spin] [--pin] [--rounds R] [--only-a]
 *   [--sleeper]
 *   scale 1 = default counts (0.1 for a quick run). Phases A-D wait like a real driver loop:
 *   spin up to 50 us, then sleep on the doorbell; with --spin they never sleep (best numbers on
 *   an idle machine, worst on a loaded one, where a spinning side burns the peer's time slice).
 *   --pin: the NSM's main thread on CPU 0, the guest's on CPU 1 (sched_setaffinity, as
 *   bench/c/spsc_ring.c does with its two CPU arguments), so the scheduler cannot put both
 *   spinning sides on one core. --only-a: stop after phase A. --list: print every warm round.
 *   --sleeper: E and F sleep on a Sleeper thread, as GuestLib and NsmRuntime do.
 * Uses 2 cores for a few seconds.
 *
 * @module
 */

import process from "node:process";
import { GuestDevice, NsmDevice } from "../nsm/device.ts";
import { decodeNqe, encodeCompletion, encodeNqe, Nqe, NqeOp } from "../nsm/nqe.ts";
import { RING_HEADER_SIZE, type RingConsumer, type RingProducer, SLOT_WORDS } from "../nsm/ring.ts";
import type { Doorbell } from "../nsm/wake.ts";
import { Sleeper } from "../nsm/sleeper.ts";
import { monotonicNow } from "../stacks/time.ts";

function flagValue(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i < 0 ? undefined : Deno.args[i + 1];
}
const ROUNDS = Number(flagValue("--rounds") ?? 5);
const PIN = Deno.args.includes("--pin");
const ONLY_A = Deno.args.includes("--only-a");
const NUM_ARGS = Deno.args.filter((a, i) => /^[0-9.]+$/.test(a) && Deno.args[i - 1] !== "--rounds");
const SCALE = Number(NUM_ARGS[0] ?? 1);
const N_RAW = Math.round(20_000_000 * SCALE);
const N_ENC = Math.round(5_000_000 * SCALE);
const N_RTT = Math.round(5_000_000 * SCALE);
const N_PING = Math.round(200_000 * SCALE);
const N_WAKE = Math.max(20, Math.round(300 * SCALE));
const IDLE_MS = 2000;
const RING_HEADER_WORDS = RING_HEADER_SIZE / 4;
const GAP_MS = 3; // pause before each wake-up so the guest has gone to sleep
/** Spin budget before sleeping in phases A-D: 50 us, or (with --spin) never sleep. */
const SPIN_NS = Deno.args.includes("--spin") ? 1e15 : 50_000;

/** `bell.wait` that ends the benchmark when the peer is gone (instead of spinning on "closed"). */
async function idle(
  bell: Doorbell,
  hasWork: () => boolean,
  spinNs: number,
): Promise<void> {
  if (await bell.wait(hasWork, spinNs) === "closed") {
    throw new Error("the peer closed the device (it failed or was killed): stopping");
  }
}

/**
 * With `--sleeper`, phases E and F sleep as GuestLib's pump and NsmRuntime do: the doorbell's
 * `beginSleep()`/`endSleep()` around a sleep on a `Sleeper` thread (nsm/sleeper.ts), instead
 * of `Doorbell.wait()`'s async read.
 */
const SLEEPER = Deno.args.includes("--sleeper");
let sleeper: Sleeper | null = null;
let endSleep: (() => void) | null = null;

/** `idle()` for phases E and F: see SLEEPER. */
async function idleWake(bell: Doorbell, hasWork: () => boolean, spinNs: number): Promise<void> {
  if (!SLEEPER) return idle(bell, hasWork, spinNs);
  const until = monotonicNow() + spinNs;
  while (monotonicNow() < until) if (hasWork()) return;
  if (sleeper === null) {
    if (bell.pollFd < 0) throw new Error("--sleeper: the doorbell has no descriptor of its own");
    sleeper = await Sleeper.start(() => {
      const r = endSleep;
      endSleep = null;
      r?.();
    });
    sleeper.setFds([bell.pollFd]);
  }
  bell.beginSleep();
  if (!hasWork()) {
    const s = sleeper;
    await new Promise<void>((r) => {
      endSleep = r;
      s.sleep(-1);
    });
  }
  if (!bell.endSleep()) throw new Error("the peer closed the device: stopping");
}

/** Pins the calling thread (the JS main thread) to one CPU; other V8 threads stay free. */
function pinTo(cpu: number): void {
  const lib = Deno.dlopen("libc.so.6", {
    sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  });
  const mask = new BigUint64Array(16); // cpu_set_t: 1024 bits
  mask[cpu >> 6] = 1n << BigInt(cpu & 63);
  if (lib.symbols.sched_setaffinity(0, BigInt(mask.byteLength), mask) !== 0) {
    console.error(`sched_setaffinity(${cpu}) failed: running unpinned`);
  }
  lib.close();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Producer side of phase A: writes the running count into each slot. */
async function produceRaw(r: RingProducer, n: number, bell: Doorbell): Promise<void> {
  const room = (): boolean => r.claim(1) > 0;
  let sent = 0;
  while (sent < n) {
    const k = r.claim(n - sent < 64 ? n - sent : 64);
    if (k === 0) {
      await idle(bell, room, SPIN_NS);
      continue;
    }
    // The batched word path: one run to the wrap, then the rest from slot 0, no call per slot.
    const run = r.contiguous(k);
    const words = r.words;
    let w = r.firstWord;
    for (let j = 0; j < run; j++, w += SLOT_WORDS) words[w] = sent + j;
    w = RING_HEADER_WORDS;
    for (let j = run; j < k; j++, w += SLOT_WORDS) words[w] = sent + j;
    r.publish(k);
    sent += k;
    // No fence per batch (the C ring has none either); idle()'s wait or the notify() below
    // settles the check this skips (wake.ts, notifyLazy).
    bell.notifyLazy();
  }
  bell.notify();
}

/** Consumer side of phase A; returns [ns from first to last element, checksum ok]. */
async function consumeRaw(r: RingConsumer, n: number, bell: Doorbell): Promise<[number, boolean]> {
  const ready = (): boolean => r.peekFill() > 0;
  let got = 0;
  let bad = 0;
  let t0 = 0;
  while (got < n) {
    const k = r.available(n - got < 64 ? n - got : 64); // never eat the next phase
    if (k === 0) {
      await idle(bell, ready, SPIN_NS);
      continue;
    }
    if (got === 0) t0 = monotonicNow();
    const run = r.contiguous(k);
    const words = r.words;
    let w = r.firstWord;
    for (let j = 0; j < run; j++, w += SLOT_WORDS) if (words[w] !== ((got + j) >>> 0)) bad++;
    w = RING_HEADER_WORDS;
    for (let j = run; j < k; j++, w += SLOT_WORDS) if (words[w] !== ((got + j) >>> 0)) bad++;
    r.release(k);
    got += k;
    bell.notifyLazy();
  }
  bell.notify();
  return [monotonicNow() - t0, bad === 0];
}

async function produceEncoded(r: RingProducer, n: number, bell: Doorbell): Promise<void> {
  const room = (): boolean => r.claim(1) > 0;
  const e = new Nqe();
  e.op = NqeOp.SEND;
  e.family = 2;
  let sent = 0;
  while (sent < n) {
    const k = r.claim(n - sent < 64 ? n - sent : 64);
    if (k === 0) {
      await idle(bell, room, SPIN_NS);
      continue;
    }
    for (let j = 0; j < k; j++) {
      e.requestId = sent + j;
      e.dataLength = (sent + j) & 0x7ff;
      encodeNqe(r.view, r.slot(j), e);
    }
    r.publish(k);
    sent += k;
    bell.notify();
  }
}

async function consumeEncoded(
  r: RingConsumer,
  n: number,
  bell: Doorbell,
): Promise<[number, boolean]> {
  const ready = (): boolean => r.peekFill() > 0;
  const d = new Nqe();
  let got = 0;
  let bad = 0;
  let t0 = 0;
  while (got < n) {
    const k = r.available(n - got < 64 ? n - got : 64); // never eat the next phase
    if (k === 0) {
      await idle(bell, ready, SPIN_NS);
      continue;
    }
    if (got === 0) t0 = monotonicNow();
    for (let j = 0; j < k; j++) {
      decodeNqe(r.view, r.slot(j), d);
      if (d.requestId !== got + j) bad++;
    }
    r.release(k);
    got += k;
    bell.notify();
  }
  return [monotonicNow() - t0, bad === 0];
}

/** NSM side of C/D: completes `n` requests from job onto completion. */
async function serveNops(
  job: RingConsumer,
  comp: RingProducer,
  n: number,
  bell: Doorbell,
): Promise<void> {
  const ready = (): boolean => job.peekFill() > 0 && comp.claim(1) > 0;
  const req = new Nqe();
  let done = 0;
  while (done < n) {
    const k = job.available(Math.min(comp.claim(64), n - done));
    if (k === 0) {
      await idle(bell, ready, SPIN_NS);
      continue;
    }
    for (let j = 0; j < k; j++) {
      decodeNqe(job.view, job.slot(j), req);
      encodeCompletion(comp.view, comp.slot(j), req, 0, 0);
    }
    job.release(k);
    comp.publish(k);
    done += k;
    bell.notify();
  }
}

async function nsmMain(): Promise<void> {
  const nsm = NsmDevice.create({
    name: `nk-bench-${Deno.pid}`,
    ringCapacity: 1024,
    chunksPerHalf: 16,
    hugePages: "auto",
  });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "guest",
        nsm.path,
        String(SCALE),
        ...["--rounds", String(ROUNDS)],
        ...["--spin", "--pin", "--only-a", "--sleeper"].filter((f) => Deno.args.includes(f)),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const out = child.output();
    // A killed benchmark still removes its device and socket (and the guest then sees EOF).
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => {
        nsm.close();
        Deno.exit(130);
      });
    }
    const bell = await nsm.acceptGuest();
    const { job, completion, receive } = nsm.queueSets[0]!;
    const results: Record<string, string> = { backing: nsm.backing };

    const rates: number[] = [];
    let okA = true;
    for (let round = 0; round <= ROUNDS; round++) {
      const [t, ok] = await consumeRaw(job, N_RAW, bell);
      okA &&= ok;
      rates.push(N_RAW / t * 1000);
    }
    const cold = rates.shift()!;
    rates.sort((a, b) => a - b);
    results["A raw guest->NSM (batch 64)"] = `${rates.at(-1)!.toFixed(1)} M NQE/s ok=${okA} ` +
      `(best of ${ROUNDS} warm rounds of ${N_RAW}; median ${
        percentile(rates, 0.5).toFixed(1)
      }; cold first round ${cold.toFixed(1)})`;
    if (Deno.args.includes("--list")) {
      results["A warm rounds"] = `rounds: ${rates.map((r) => r.toFixed(1)).join(" ")}`;
    }
    if (ONLY_A) {
      for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(44)} ${v}`);
      await out;
      return;
    }
    const [tB, okB] = await consumeEncoded(job, N_ENC, bell);
    results["B encoded guest->NSM (batch 64)"] = `${
      (N_ENC / tB * 1000).toFixed(1)
    } M NQE/s ok=${okB}`;
    await serveNops(job, completion, N_RTT, bell);
    await serveNops(job, completion, N_PING, bell);

    // E: one wake-up per round trip; the NSM spins for the answer.
    const req = new Nqe();
    req.op = NqeOp.EVENT;
    const lat: number[] = [];
    const lat2: number[] = [];
    for (let phase = 0; phase < 2; phase++) {
      for (let i = 0; i < N_WAKE; i++) {
        await new Promise((r) => setTimeout(r, GAP_MS));
        if (!bell.peerSleeping) continue; // only count true wake-ups from sleep
        req.requestId = i;
        receive.claim(1);
        encodeNqe(receive.view, receive.slot(0), req);
        const t0 = monotonicNow();
        receive.publish(1);
        bell.notify();
        if (phase === 0) {
          while (job.available(1) === 0) { /* spin */ }
        } else {
          await idleWake(bell, () => job.peekFill() > 0, 0);
          while (job.available(1) === 0) { /* the byte may precede the index */ }
        }
        (phase === 0 ? lat : lat2).push(monotonicNow() - t0);
        job.release(1);
      }
    }
    // Tell the guest the wake phases are over: requestId 0xffffffff.
    req.requestId = 0xffff_ffff;
    receive.claim(1);
    encodeNqe(receive.view, receive.slot(0), req);
    receive.publish(1);
    bell.notify();

    // G: idle.
    const cpu0 = process.cpuUsage();
    const w0 = monotonicNow();
    await bell.wait(() => nsm.hasWork(), 0, IDLE_MS);
    const cpu = process.cpuUsage(cpu0);
    const idleWall = (monotonicNow() - w0) / 1e6;

    const guest = JSON.parse(
      new TextDecoder().decode((await out).stdout).trim().split("\n").at(-1)!,
    );
    lat.sort((a, b) => a - b);
    lat2.sort((a, b) => a - b);
    const us = (ns: number): string => (ns / 1000).toFixed(1);
    results["C NOP round trip pipelined (batch 32)"] = `${guest.rttMops.toFixed(2)} M ops/s`;
    results["D NOP ping-pong (batch 1)"] = `${guest.pingKops.toFixed(0)} k round trips/s (${
      guest.pingUs.toFixed(2)
    } us each)`;
    results["E wake-up from idle + reply (NSM spins)"] = `median ${us(percentile(lat, 0.5))} us, ` +
      `p90 ${us(percentile(lat, 0.9))} us, p99 ${us(percentile(lat, 0.99))} us (n=${lat.length})`;
    results["F wake-up round trip, both sleep"] = `median ${us(percentile(lat2, 0.5))} us, ` +
      `p90 ${us(percentile(lat2, 0.9))} us, p99 ${
        us(percentile(lat2, 0.99))
      } us (n=${lat2.length})`;
    results["G idle CPU over " + idleWall.toFixed(0) + " ms"] = `NSM ${
      ((cpu.user + cpu.system) / 1000).toFixed(2)
    } ms, guest ${guest.idleCpuMs.toFixed(2)} ms`;
    for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(44)} ${v}`);
  } finally {
    await sleeper?.close();
    nsm.close();
  }
}

async function guestMain(path: string): Promise<void> {
  const dev = await GuestDevice.attach(path);
  try {
    const bell = dev.bell;
    const notify = (): void => bell.notify();
    const { job, completion, receive } = dev.queueSets[0]!;
    for (let round = 0; round <= ROUNDS; round++) await produceRaw(job, N_RAW, bell);
    if (ONLY_A) return;
    await produceEncoded(job, N_ENC, bell);

    // C: pipelined NOPs, batch 32, as many in flight as the rings allow.
    const e = new Nqe();
    e.op = NqeOp.NOP;
    const c = new Nqe();
    let sent = 0;
    let done = 0;
    const cReady = (): boolean => completion.peekFill() > 0 || (sent < N_RTT && job.claim(1) > 0);
    let t0 = monotonicNow();
    while (done < N_RTT) {
      const k = sent < N_RTT ? job.claim(Math.min(32, N_RTT - sent)) : 0;
      for (let j = 0; j < k; j++) {
        e.requestId = sent + j;
        encodeNqe(job.view, job.slot(j), e);
      }
      if (k > 0) {
        job.publish(k);
        sent += k;
        notify();
      }
      const m = completion.available(64);
      for (let j = 0; j < m; j++) decodeNqe(completion.view, completion.slot(j), c);
      if (m > 0) {
        completion.release(m);
        done += m;
        notify();
      }
      if (k === 0 && m === 0) await idle(bell, cReady, SPIN_NS);
    }
    const rttMops = N_RTT / (monotonicNow() - t0) * 1000;

    // D: ping-pong.
    const room = (): boolean => job.claim(1) > 0;
    const answered = (): boolean => completion.peekFill() > 0;
    t0 = monotonicNow();
    for (let i = 0; i < N_PING; i++) {
      while (job.claim(1) === 0) await idle(bell, room, SPIN_NS);
      e.requestId = i;
      encodeNqe(job.view, job.slot(0), e);
      job.publish(1);
      notify();
      while (completion.available(1) === 0) await idle(bell, answered, SPIN_NS);
      completion.release(1);
      notify();
    }
    const pingNs = (monotonicNow() - t0) / N_PING;

    // E/F: sleep until the NSM posts on the receive ring, answer on the job ring.
    const ev = new Nqe();
    for (;;) {
      await idleWake(dev.bell, () => receive.peekFill() > 0, 20_000);
      const k = receive.available(1);
      if (k === 0) continue;
      decodeNqe(receive.view, receive.slot(0), ev);
      receive.release(1);
      if (ev.requestId === 0xffff_ffff) break;
      job.claim(1);
      encodeNqe(job.view, job.slot(0), ev);
      job.publish(1);
      notify();
    }

    // G: idle.
    const cpu0 = process.cpuUsage();
    await dev.bell.wait(() => dev.hasWork(), 0, IDLE_MS);
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({
      rttMops,
      pingKops: 1e6 / pingNs,
      pingUs: pingNs / 1000,
      idleCpuMs: (cpu.user + cpu.system) / 1000,
    }));
  } finally {
    await sleeper?.close();
    dev.close();
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "guest") {
    if (PIN) pinTo(1);
    await guestMain(Deno.args[1]!);
  } else {
    if (PIN) pinTo(0);
    await nsmMain();
  }
}
