/**
 * Guest side of the two-process NK device tests (run by tests/nk_two_process_test.ts as a
 * separate Deno process), plus the deterministic NQE content and checksum both sides use.
 *
 * Usage: deno run -A tests/nk_peer.ts <stream|idle|hostile|data|pingpong> <device path> <count>
 * Prints one JSON line with what it observed.
 *
 * @module
 */

import { GuestDevice } from "../nsm/device.ts";
import { decodeNqe, encodeNqe, Nqe, NQE_OP_COUNT, NqeFamily, NqeFlag, NqeOp } from "../nsm/nqe.ts";

const FAMILIES = [NqeFamily.NONE, NqeFamily.INET, NqeFamily.INET6];

/** Fills `n` with the deterministic content of element `i` (every field varies with i). */
export function fillNqe(n: Nqe, i: number): Nqe {
  n.op = i % NQE_OP_COUNT;
  n.flags = i & 0x7f;
  n.queueSet = 0;
  n.socketId = Math.imul(i, 7) >>> 0;
  n.requestId = i >>> 0;
  n.result = 0;
  n.dataOffset = Math.imul(i, 13) >>> 0;
  n.dataLength = i & 0xffff;
  n.arg0 = (i ^ 0x5a5a5a5a) >>> 0;
  n.arg1 = ~i >>> 0;
  n.arg2 = i * 1_000_003;
  for (let k = 0; k < 16; k++) n.addr[k] = (i + k) & 0xff;
  n.port = (i * 3) & 0xffff;
  n.family = FAMILIES[i % 3]!;
  n.aux = Math.imul(i, 31) >>> 0;
  return n;
}

function mix(h: number, v: number): number {
  h = Math.imul(h ^ (v >>> 0), 0x9e3779b1);
  return (h ^ (h >>> 15)) >>> 0;
}

/** 32-bit hash of every field of `n` (request fields; result excluded). */
export function hashNqe(n: Nqe): number {
  let h = 0x811c9dc5;
  h = mix(h, n.op | (n.flags << 8) | (n.queueSet << 16));
  h = mix(h, n.socketId);
  h = mix(h, n.requestId);
  h = mix(h, n.dataOffset);
  h = mix(h, n.dataLength);
  h = mix(h, n.arg0);
  h = mix(h, n.arg1);
  h = mix(h, n.arg2 >>> 0);
  h = mix(h, Math.floor(n.arg2 / 0x1_0000_0000));
  const a = n.addr;
  for (let k = 0; k < 16; k += 4) {
    h = mix(h, a[k]! | (a[k + 1]! << 8) | (a[k + 2]! << 16) | (a[k + 3]! << 24));
  }
  h = mix(h, n.port | (n.family << 16));
  return mix(h, n.aux);
}

/** Payload length of data message `i` (1..2048, varied). */
export function payloadLength(i: number): number {
  return 1 + ((i * 7919) % 2048);
}

/** Byte `j` of data message `i`. */
export function payloadByte(i: number, j: number): number {
  return (i * 131 + j * 31) & 0xff;
}

/** Checksum of `len` payload bytes at `off`, folded into `h`. */
export function foldPayload(h: number, bytes: Uint8Array, off: number, len: number): number {
  for (let j = 0; j < len; j++) h = (Math.imul(h, 31) + bytes[off + j]!) >>> 0;
  return h;
}

/** What the guest reports on stdout. */
export interface PeerReport {
  readonly sent: number;
  readonly completed: number;
  readonly checksum: number;
  readonly badCompletions: number;
  readonly fullCount: number;
  readonly sleeps: number;
  readonly wakesSent: number;
  readonly wake?: string;
}

const BATCH = 64;

/** Sends `count` NQEs on queue set 0's job ring and checks one completion per NQE. */
async function stream(dev: GuestDevice, count: number): Promise<PeerReport> {
  const qs = dev.queueSets[0]!;
  const job = qs.job;
  const comp = qs.completion;
  const n = new Nqe();
  const c = new Nqe();
  let sent = 0;
  let completed = 0;
  let checksum = 0;
  let bad = 0;
  const hasWork = (): boolean => comp.peekFill() > 0 || (sent < count && job.claim(1) > 0);
  while (completed < count) {
    let k = 0;
    if (sent < count) {
      k = job.claim(Math.min(BATCH, count - sent));
      for (let j = 0; j < k; j++) {
        fillNqe(n, sent + j);
        encodeNqe(job.view, job.slot(j), n);
        checksum = (checksum + hashNqe(n)) >>> 0;
      }
      if (k > 0) {
        job.publish(k);
        sent += k;
      }
    }
    const m = comp.available(BATCH);
    for (let j = 0; j < m; j++) {
      decodeNqe(comp.view, comp.slot(j), c);
      const i = completed + j;
      // The NSM echoes identity and answers with the low 31 bits of the request hash.
      if (
        c.requestId !== (i >>> 0) || c.op !== i % NQE_OP_COUNT ||
        (c.flags & NqeFlag.COMPLETION) === 0 ||
        c.result !== (hashNqe(fillNqe(n, i)) & 0x7fffffff)
      ) bad++;
    }
    if (m > 0) {
      comp.release(m);
      completed += m;
    }
    if (k > 0 || m > 0) dev.bell.notify();
    else {
      const why = await dev.bell.wait(hasWork, 20_000);
      if (why === "closed") break;
    }
    if (job.fault !== null || comp.fault !== null) throw job.fault ?? comp.fault;
  }
  return {
    sent,
    completed,
    checksum,
    badCompletions: bad,
    fullCount: job.fullCount,
    sleeps: dev.bell.sleeps,
    wakesSent: dev.bell.wakesSent,
  };
}

/** Stays idle for `idleMs`, then sends one NOP and sleeps until its completion arrives. */
async function idle(dev: GuestDevice, idleMs: number): Promise<PeerReport> {
  const qs = dev.queueSets[0]!;
  await new Promise((r) => setTimeout(r, idleMs));
  const n = new Nqe();
  n.op = NqeOp.NOP;
  n.requestId = 7;
  qs.job.claim(1);
  encodeNqe(qs.job.view, qs.job.slot(0), n);
  qs.job.publish(1);
  dev.bell.notify();
  // No spin: go straight to sleep so the wake-up must come through the doorbell.
  const wake = await dev.bell.wait(() => qs.completion.peekFill() > 0, 0);
  const got = qs.completion.available(1);
  const ok = got === 1 && decodeNqe(qs.completion.view, qs.completion.slot(0), n).requestId === 7;
  return {
    sent: 1,
    completed: ok ? 1 : 0,
    checksum: 0,
    badCompletions: ok ? 0 : 1,
    fullCount: 0,
    sleeps: dev.bell.sleeps,
    wakesSent: dev.bell.wakesSent,
    wake,
  };
}

/**
 * Chunk ownership across processes: `count` SENDs from guest chunks (completed with
 * CHUNK_RETURNED and reclaimed) while the NSM delivers `count` RECVs in its chunks (borrowed,
 * checksummed, returned with RECV_CREDIT). Few chunks per half, so both sides run out and wait.
 */
async function data(dev: GuestDevice, count: number): Promise<PeerReport> {
  const { job, send, completion, receive } = dev.queueSets[0]!;
  const region = dev.data;
  const bytes = region.bytes;
  const n = new Nqe();
  let sent = 0;
  let completed = 0;
  let received = 0;
  let checksum = 0;
  let bad = 0;
  const hasWork = (): boolean =>
    completion.peekFill() > 0 || receive.peekFill() > 0 ||
    (sent < count && region.freeChunks > 0 && send.claim(1) > 0);
  while (completed < count || received < count) {
    let progress = 0;
    // Send from our half while chunks and ring slots last.
    let k = 0;
    const room = send.claim(16);
    while (k < room && sent + k < count) {
      const off = region.alloc();
      if (off < 0) break;
      const i = sent + k;
      const len = payloadLength(i);
      for (let j = 0; j < len; j++) bytes[off + j] = payloadByte(i, j);
      region.lend(off);
      n.clear();
      n.op = NqeOp.SEND;
      n.socketId = 1;
      n.requestId = i;
      n.dataOffset = off;
      n.dataLength = len;
      encodeNqe(send.view, send.slot(k), n);
      k++;
    }
    if (k > 0) {
      send.publish(k);
      sent += k;
      progress++;
    }
    // Completions give our chunks back.
    const m = completion.available(32);
    for (let j = 0; j < m; j++) {
      decodeNqe(completion.view, completion.slot(j), n);
      if (
        (n.flags & NqeFlag.CHUNK_RETURNED) === 0 || n.result !== payloadLength(n.requestId) ||
        region.reclaim(n.dataOffset) !== null
      ) bad++;
    }
    if (m > 0) {
      completion.release(m);
      completed += m;
      progress++;
    }
    // Received chunks: read, give back, return with RECV_CREDIT.
    const r = receive.available(job.claim(32));
    for (let j = 0; j < r; j++) {
      decodeNqe(receive.view, receive.slot(j), n);
      if (n.op !== NqeOp.RECV || region.borrow(n.dataOffset, n.dataLength) !== null) {
        bad++;
        continue;
      }
      checksum = foldPayload(checksum, bytes, n.dataOffset, n.dataLength);
      region.giveBack(n.dataOffset);
      const len = n.dataLength;
      n.op = NqeOp.RECV_CREDIT;
      n.arg0 = len;
      n.dataLength = 0;
      encodeNqe(job.view, job.slot(j), n);
    }
    if (r > 0) {
      receive.release(r);
      job.publish(r);
      received += r;
      progress++;
    }
    if (progress > 0) dev.bell.notify();
    else if (await dev.bell.wait(hasWork, 20_000) === "closed") break;
  }
  return {
    sent,
    completed,
    checksum,
    badCompletions: bad + region.faultCount,
    fullCount: send.fullCount,
    sleeps: dev.bell.sleeps,
    wakesSent: dev.bell.wakesSent,
  };
}

/**
 * Ping-pong in which the guest never spins: every wait sleeps on the doorbell, with a 2 s
 * timeout that would reveal a lost wake-up. `count` round trips; echoes each receive-ring NQE.
 */
async function pingpong(dev: GuestDevice, count: number): Promise<PeerReport> {
  const { job, receive } = dev.queueSets[0]!;
  const n = new Nqe();
  let done = 0;
  let timeouts = 0;
  let bad = 0;
  const ready = (): boolean => receive.peekFill() > 0;
  while (done < count) {
    const why = await dev.bell.wait(ready, 0, 2000);
    if (why === "closed") break;
    if (why === "timeout") timeouts++;
    const k = receive.available(1);
    if (k === 0) continue;
    decodeNqe(receive.view, receive.slot(0), n);
    receive.release(1);
    if (n.requestId !== done) bad++;
    job.claim(1);
    encodeNqe(job.view, job.slot(0), n);
    job.publish(1);
    dev.bell.notify();
    done++;
  }
  return {
    sent: done,
    completed: done,
    checksum: timeouts,
    badCompletions: bad,
    fullCount: 0,
    sleeps: dev.bell.sleeps,
    wakesSent: dev.bell.wakesSent,
  };
}

/**
 * A hostile guest: two SEND NQEs with data references outside its half, then (after their
 * completions) a send-ring producer index beyond the ring's capacity.
 */
async function hostile(dev: GuestDevice): Promise<PeerReport> {
  const { send, completion } = dev.queueSets[0]!;
  const n = new Nqe();
  n.op = NqeOp.SEND;
  n.socketId = 1;
  const refs: Array<[number, number]> = [[0xffff_ff00, 512], [dev.data.peerBase, 100]];
  send.claim(2);
  for (let j = 0; j < 2; j++) {
    n.requestId = j;
    n.dataOffset = refs[j]![0];
    n.dataLength = refs[j]![1];
    encodeNqe(send.view, send.slot(j), n);
  }
  send.publish(2);
  dev.bell.notify();
  let completed = 0;
  let bad = 0;
  while (completed < 2) {
    if (await dev.bell.wait(() => completion.peekFill() > 0, 20_000) === "closed") break;
    const m = completion.available(2);
    for (let j = 0; j < m; j++) {
      if (decodeNqe(completion.view, completion.slot(j), n).result !== -14) bad++;
    }
    completion.release(m);
    completed += m;
  }
  // Now lie about the producer index: 5 slots more than the ring can hold.
  const prod = new Uint32Array(send.view.buffer, send.view.byteOffset, 1);
  prod[0] = (send.index + send.capacity + 5) >>> 0;
  dev.bell.notify();
  return {
    sent: 2,
    completed,
    checksum: 0,
    badCompletions: bad,
    fullCount: 0,
    sleeps: dev.bell.sleeps,
    wakesSent: dev.bell.wakesSent,
  };
}

if (import.meta.main) {
  const [mode, path, countArg] = Deno.args;
  const dev = await GuestDevice.attach(path!);
  try {
    const report = mode === "stream"
      ? await stream(dev, Number(countArg))
      : mode === "hostile"
      ? await hostile(dev)
      : mode === "data"
      ? await data(dev, Number(countArg))
      : mode === "pingpong"
      ? await pingpong(dev, Number(countArg))
      : await idle(dev, Number(countArg));
    console.log(JSON.stringify(report));
  } finally {
    dev.close();
  }
}
