import assert from "node:assert/strict";
import process from "node:process";
import { NsmDevice } from "../nsm/device.ts";
import { decodeNqe, encodeCompletion, encodeNqe, Nqe, NqeFlag, NqeOp } from "../nsm/nqe.ts";
import {
  fillNqe,
  foldPayload,
  hashNqe,
  payloadByte,
  payloadLength,
  type PeerReport,
} from "./nk_peer.ts";

const PEER = new URL("./nk_peer.ts", import.meta.url).pathname;

function spawnGuest(mode: string, path: string, arg: number): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PEER, mode, path, String(arg)],
    stdout: "piped",
    stderr: "piped",
  }).spawn().output();
}

function report(out: Deno.CommandOutput): PeerReport {
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `guest failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.trim().split("\n").at(-1)!) as PeerReport;
}

const COUNT = 3_000_000;

Deno.test({
  name:
    "two processes pass 3M NQEs through a queue set with matching checksums, index wrap and full-ring backpressure",
  sanitizeResources: false,
  async fn(): Promise<void> {
    const nsm = NsmDevice.create({
      name: `nk-2p-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      ringCapacity: 256,
      chunksPerHalf: 4,
      hugePages: "never",
      startIndex: 0xffff_f000, // every ring wraps past 2^32 after 4096 entries
    });
    try {
      const output = spawnGuest("stream", nsm.path, COUNT);
      const bell = await nsm.acceptGuest();
      const { job, completion } = nsm.queueSets[0]!;
      const req = new Nqe();
      let consumed = 0;
      let checksum = 0;
      let outOfOrder = 0;
      const pauses = [COUNT / 4, COUNT / 2];
      const hasWork = (): boolean => job.peekFill() > 0 && completion.claim(1) > 0;
      while (consumed < COUNT) {
        const n = job.available(completion.claim(64));
        for (let j = 0; j < n; j++) {
          decodeNqe(job.view, job.slot(j), req);
          if (req.requestId !== ((consumed + j) >>> 0)) outOfOrder++;
          const h = hashNqe(req);
          checksum = (checksum + h) >>> 0;
          encodeCompletion(completion.view, completion.slot(j), req, h & 0x7fffffff, 0);
        }
        if (n > 0) {
          job.release(n);
          completion.publish(n);
          consumed += n;
          bell.notify();
        } else if (await bell.wait(hasWork, 20_000) === "closed") break;
        if (pauses.length > 0 && consumed >= pauses[0]!) {
          pauses.shift();
          // Stop consuming for a while: the guest must hit a full job ring and wait.
          await new Promise((r) => setTimeout(r, 30));
        }
        assert.equal(job.fault, null);
        assert.equal(completion.fault, null);
      }
      const guest = report(await output);
      let expected = 0;
      const n = new Nqe();
      for (let i = 0; i < COUNT; i++) expected = (expected + hashNqe(fillNqe(n, i))) >>> 0;
      assert.equal(consumed, COUNT);
      assert.equal(outOfOrder, 0);
      assert.equal(guest.sent, COUNT);
      assert.equal(guest.completed, COUNT);
      assert.equal(guest.badCompletions, 0, "every completion echoed its request");
      assert.equal(guest.checksum, expected);
      assert.equal(checksum, expected, "the NSM decoded exactly what the guest encoded");
      assert.ok(guest.fullCount > 0, "the guest met a full job ring (backpressure)");
      assert.ok(job.index < 0xffff_f000, "indices wrapped past 2^32");
    } finally {
      nsm.close();
    }
  },
});

Deno.test({
  name:
    "an idle NSM sleeps on the doorbell, wakes for a guest NQE from another process, then sees the guest exit",
  sanitizeResources: false,
  async fn(): Promise<void> {
    const nsm = NsmDevice.create({
      name: `nk-2w-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      ringCapacity: 16,
      chunksPerHalf: 4,
      hugePages: "never",
    });
    try {
      const output = spawnGuest("idle", nsm.path, 300);
      const bell = await nsm.acceptGuest();
      const { job, completion } = nsm.queueSets[0]!;
      const cpu0 = process.cpuUsage();
      const why = await bell.wait(() => nsm.hasWork(), 50_000);
      const cpu = process.cpuUsage(cpu0);
      assert.equal(why, "work");
      assert.equal(bell.sleeps, 1, "the NSM slept on the socket instead of spinning");
      const req = new Nqe();
      assert.equal(job.available(4), 1);
      decodeNqe(job.view, job.slot(0), req);
      job.release(1);
      // Answer only once the guest is asleep, so its wake-up must come through the doorbell.
      for (let i = 0; i < 500 && !bell.peerSleeping; i++) {
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.ok(bell.peerSleeping);
      completion.claim(1);
      encodeCompletion(completion.view, completion.slot(0), req, 0, 0);
      completion.publish(1);
      bell.notify();
      assert.equal(bell.wakesSent, 1, "the guest was asleep and got a doorbell byte");
      const guest = report(await output);
      assert.equal(guest.completed, 1);
      assert.equal(guest.wake, "work");
      assert.equal(guest.sleeps, 1);
      assert.equal(guest.wakesSent, 1);
      assert.equal(await bell.wait(() => nsm.hasWork(), 0), "closed", "guest exit is seen as EOF");
      console.log(`NSM CPU while idle ~300 ms: ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms`);
    } finally {
      nsm.close();
    }
  },
});

Deno.test({
  name:
    "the NSM rejects a hostile guest process's out-of-half data references and its impossible ring index",
  sanitizeResources: false,
  async fn(): Promise<void> {
    const nsm = NsmDevice.create({
      name: `nk-2h-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      ringCapacity: 16,
      chunksPerHalf: 4,
      hugePages: "never",
    });
    try {
      const output = spawnGuest("hostile", nsm.path, 0);
      const bell = await nsm.acceptGuest();
      const { send, completion } = nsm.queueSets[0]!;
      const req = new Nqe();
      const faults: string[] = [];
      while (faults.length < 2) {
        assert.equal(await bell.wait(() => send.peekFill() > 0, 0, 5000), "work");
        const n = send.available(completion.claim(4));
        for (let j = 0; j < n; j++) {
          decodeNqe(send.view, send.slot(j), req);
          const fault = nsm.data.borrow(req.dataOffset, req.dataLength);
          faults.push(fault ?? "accepted");
          // A bad reference is answered with -EFAULT and no chunk to return.
          encodeCompletion(completion.view, completion.slot(j), req, fault === null ? 0 : -14, 0);
        }
        send.release(n);
        completion.publish(n);
        bell.notify();
      }
      assert.deepEqual(faults, ["offset-out-of-region", "wrong-half"]);
      assert.equal(nsm.data.faultCount, 2);
      // Wait until the corrupt index is seen (the guest rings after writing it) or the guest exits.
      for (let i = 0; i < 100 && send.fault === null; i++) {
        const why = await bell.wait(() => send.peekFill() > 0 || send.fault !== null, 0, 100);
        if (why === "closed") send.peekFill();
      }
      assert.equal(send.fault?.reason, "producer-index-beyond-capacity");
      assert.equal(send.available(16), 0, "nothing is read from a faulted ring");
      const guest = report(await output);
      assert.equal(guest.completed, 2);
      assert.equal(guest.badCompletions, 0, "the guest saw -EFAULT for both");
    } finally {
      nsm.close();
    }
  },
});

const DATA_COUNT = 20_000;

Deno.test({
  name:
    "payload chunks cross processes both ways with explicit ownership: SEND chunks come back, RECV chunks are credited",
  sanitizeResources: false,
  async fn(): Promise<void> {
    const nsm = NsmDevice.create({
      name: `nk-2d-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      ringCapacity: 64,
      chunkSize: 2048,
      chunksPerHalf: 8, // far fewer chunks than ring slots: chunk exhaustion is the backpressure
      hugePages: "never",
    });
    try {
      const output = spawnGuest("data", nsm.path, DATA_COUNT);
      const bell = await nsm.acceptGuest();
      const { job, send, completion, receive } = nsm.queueSets[0]!;
      const region = nsm.data;
      const bytes = region.bytes;
      const n = new Nqe();
      let sendsDone = 0;
      let recvSent = 0;
      let credited = 0;
      let sendChecksum = 0;
      let bad = 0;
      let exhausted = 0;
      const hasWork = (): boolean =>
        (send.peekFill() > 0 && completion.claim(1) > 0) || job.peekFill() > 0 ||
        (recvSent < DATA_COUNT && region.freeChunks > 0 && receive.claim(1) > 0);
      while (sendsDone < DATA_COUNT || credited < DATA_COUNT) {
        let progress = 0;
        const s = send.available(completion.claim(32));
        for (let j = 0; j < s; j++) {
          decodeNqe(send.view, send.slot(j), n);
          const fault = region.borrow(n.dataOffset, n.dataLength);
          if (fault !== null || n.requestId !== sendsDone + j) bad++;
          else {
            sendChecksum = foldPayload(sendChecksum, bytes, n.dataOffset, n.dataLength);
            region.giveBack(n.dataOffset);
          }
          encodeCompletion(
            completion.view,
            completion.slot(j),
            n,
            fault === null ? n.dataLength : -14,
            fault === null ? NqeFlag.CHUNK_RETURNED : 0,
          );
        }
        if (s > 0) {
          send.release(s);
          completion.publish(s);
          sendsDone += s;
          progress++;
        }
        const c = job.available(64);
        for (let j = 0; j < c; j++) {
          decodeNqe(job.view, job.slot(j), n);
          if (n.op !== NqeOp.RECV_CREDIT || region.reclaim(n.dataOffset) !== null) bad++;
        }
        if (c > 0) {
          job.release(c);
          credited += c;
          progress++;
        }
        let k = 0;
        const room = receive.claim(16);
        while (k < room && recvSent + k < DATA_COUNT) {
          const off = region.alloc();
          if (off < 0) {
            exhausted++;
            break;
          }
          const i = recvSent + k;
          const len = payloadLength(i);
          for (let j = 0; j < len; j++) bytes[off + j] = payloadByte(i, j);
          region.lend(off);
          n.clear();
          n.op = NqeOp.RECV;
          n.socketId = 1;
          n.dataOffset = off;
          n.dataLength = len;
          encodeNqe(receive.view, receive.slot(k), n);
          k++;
        }
        if (k > 0) {
          receive.publish(k);
          recvSent += k;
          progress++;
        }
        if (progress > 0) bell.notify();
        else if (await bell.wait(hasWork, 20_000) === "closed") break;
      }
      const guest = report(await output);
      let expected = 0;
      const tmp = new Uint8Array(2048);
      for (let i = 0; i < DATA_COUNT; i++) {
        const len = payloadLength(i);
        for (let j = 0; j < len; j++) tmp[j] = payloadByte(i, j);
        expected = foldPayload(expected, tmp, 0, len);
      }
      assert.equal(bad, 0);
      assert.equal(region.faultCount, 0);
      assert.equal(sendChecksum, expected, "the NSM read every SEND payload intact");
      assert.equal(guest.checksum, expected, "the guest read every RECV payload intact");
      assert.equal(guest.badCompletions, 0);
      assert.equal(guest.completed, DATA_COUNT);
      assert.equal(credited, DATA_COUNT);
      assert.equal(region.freeChunks, 8, "every NSM chunk came back");
      assert.ok(exhausted > 0, "the NSM ran out of receive chunks and waited for credits");
    } finally {
      nsm.close();
    }
  },
});

const PINGS = 10_000;

Deno.test({
  name:
    "no wake-up is lost when both processes sleep on every round trip (10k ping-pongs, none timing out)",
  sanitizeResources: false,
  async fn(): Promise<void> {
    const nsm = NsmDevice.create({
      name: `nk-2p-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
      ringCapacity: 16,
      chunksPerHalf: 4,
      hugePages: "never",
    });
    try {
      const output = spawnGuest("pingpong", nsm.path, PINGS);
      const bell = await nsm.acceptGuest();
      const { job, receive } = nsm.queueSets[0]!;
      const n = new Nqe();
      let timeouts = 0;
      let bad = 0;
      const ready = (): boolean => job.peekFill() > 0;
      for (let i = 0; i < PINGS; i++) {
        n.clear();
        n.op = NqeOp.EVENT;
        n.requestId = i;
        receive.claim(1);
        encodeNqe(receive.view, receive.slot(0), n);
        receive.publish(1);
        bell.notify();
        for (;;) {
          const why = await bell.wait(ready, 0, 2000);
          assert.notEqual(why, "closed");
          if (why === "timeout") timeouts++;
          if (job.available(1) > 0) break;
        }
        if (decodeNqe(job.view, job.slot(0), n).requestId !== i) bad++;
        job.release(1);
      }
      const guest = report(await output);
      assert.equal(timeouts, 0, "the NSM never needed its timeout");
      assert.equal(guest.checksum, 0, "the guest never needed its timeout");
      assert.equal(bad + guest.badCompletions, 0);
      assert.equal(guest.completed, PINGS);
      // Both really slept, thousands of times, so the doorbell carried the wake-ups. (Most
      // round trips alone; under CPU contention, e.g. a parallel test run, a reply sometimes
      // arrives before its waiter gets to sleep: 4,492 of 10,000 for the guest once.)
      assert.ok(bell.sleeps > PINGS / 10, `NSM slept ${bell.sleeps} times`);
      assert.ok(guest.sleeps > PINGS / 10, `guest slept ${guest.sleeps} times`);
      assert.ok(bell.wakesSent > PINGS / 10 && guest.wakesSent > PINGS / 10);
    } finally {
      nsm.close();
    }
  },
});
