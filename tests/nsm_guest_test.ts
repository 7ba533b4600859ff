/**
 * End to end through NQEs, processes and the stack: `nsm/memory_nsm.ts` (two of our stacks on
 * an in-process memory wire, a ServiceLib per stack on its own control socket) plus guest
 * processes (`deno task nkcat` = guest/nkcat/cli.ts) and, for the hostile cases, this test
 * process itself as a raw NQE guest. No root, no network namespace.
 *
 * Wall time: about 20-40 s on the 2-vCPU dev VM (two 100 MB streams dominate).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Errno } from "../nsm/backend.ts";
import { NqeOp } from "../nsm/nqe.ts";
import { RawGuest } from "../nsm/raw_guest.ts";
import { closedByNsm } from "./support/raw_guest_wait.ts";
import {
  askOn,
  assertBadSendtoRejected,
  assertForeignSocketsRejected,
  stallJobRing,
} from "./support/hostile_guest.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Nsm {
  dir: string;
  ctlA: string;
  ctlB: string;
  proc: Deno.ChildProcess;
  log: string[];
  stop(): Promise<string>;
}

async function startNsm(extra: string[] = []): Promise<Nsm> {
  const dir = await Deno.makeTempDir({ prefix: "nsm-guest-" });
  const ctlA = `${dir}/a.sock`, ctlB = `${dir}/b.sock`;
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}nsm/memory_nsm.ts`, "--ctl", ctlA, "--peer-ctl", ctlB, ...extra],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const dec = new TextDecoder();
  // stderr: attach/detach log lines.
  (async () => {
    let buf = "";
    for await (const c of proc.stderr) {
      buf += dec.decode(c, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop()!;
      log.push(...lines);
    }
  })();
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`memory_nsm exited before ready: ${log.join("\n")}`);
    out += dec.decode(value);
  }
  return {
    dir,
    ctlA,
    ctlB,
    proc,
    log,
    async stop(): Promise<string> {
      try {
        proc.kill("SIGTERM");
      } catch {
        // already gone
      }
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += dec.decode(value);
      }
      await proc.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      return out;
    },
  };
}

function nkcat(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}guest/nkcat/cli.ts`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Deterministic pseudo-random bytes (xorshift), so both ends can be checked by hash. */
function pattern(seed: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const w = new Uint32Array(b.buffer);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    w[i] = x;
  }
  return b;
}

async function feed(p: Deno.ChildProcess, data: Uint8Array): Promise<void> {
  const w = p.stdin.getWriter();
  const step = 1 << 20;
  for (let off = 0; off < data.length; off += step) await w.write(data.subarray(off, off + step));
  await w.close();
}

async function drainHash(p: Deno.ChildProcess): Promise<{ hash: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const c of p.stdout) {
    h.update(c);
    bytes += c.length;
  }
  return { hash: h.digest("hex"), bytes };
}

async function text(s: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(s).text();
}

/**
 * Reads an nkcat listener's stderr: `listening` resolves once it prints "listening on port"
 * (its LISTEN completed in the NSM, so a connect cannot be refused), rejecting with what it
 * printed if it exits first or takes over 30 s (generous: startup on a loaded machine);
 * `all` is its whole stderr. Replaces fixed sleeps that lost the race on a busy machine.
 */
function listenerStderr(p: Deno.ChildProcess): { listening: Promise<void>; all: Promise<string> } {
  let said = "";
  let seen: () => void = () => {};
  let failed: (e: Error) => void = () => {};
  const listening = new Promise<void>((res, rej) => {
    seen = res;
    failed = rej;
  });
  const timer = setTimeout(
    () => failed(new Error(`nkcat did not listen within 30 s; stderr: ${said}`)),
    30_000,
  );
  const dec = new TextDecoder();
  const all = (async () => {
    for await (const c of p.stderr) {
      said += dec.decode(c);
      if (said.includes("listening on port")) seen();
    }
    clearTimeout(timer);
    failed(new Error(`nkcat exited before listening; stderr: ${said}`));
    return said;
  })();
  listening.then(() => clearTimeout(timer), () => clearTimeout(timer));
  return { listening, all };
}

function sha(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

async function waitLog(nsm: Nsm, re: RegExp, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const line = nsm.log.find((l) => re.test(l));
    if (line !== undefined) return line;
    if (Date.now() > until) throw new Error(`no log line ${re} in:\n${nsm.log.join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs a listener on B and a connector on A, each sending `up`/`down`; returns both outputs. */
async function transfer(
  nsm: Nsm,
  port: number,
  up: Uint8Array,
  down: Uint8Array,
): Promise<{ atB: { hash: string; bytes: number }; atA: { hash: string; bytes: number } }> {
  const b = nkcat(["--ctl", nsm.ctlB, "--listen", String(port)]);
  const errB = listenerStderr(b);
  await errB.listening;
  const a = nkcat(["--ctl", nsm.ctlA, "198.18.0.2", String(port)]);
  const errA = text(a.stderr);
  const [atB, atA] = await Promise.all([
    drainHash(b),
    drainHash(a),
    feed(b, down),
    feed(a, up),
  ]);
  const [sa, sb] = await Promise.all([a.status, b.status]);
  assert.equal(sa.code, 0, `nkcat A failed: ${await errA}`);
  assert.equal(sb.code, 0, `nkcat B failed: ${await errB.all}`);
  return { atB, atA };
}

Deno.test({
  name:
    "nkcat sends 100 MB guest -> NQEs -> NSM stack -> link -> peer stack -> NQEs -> guest and 100 MB back at the same time, SHA-256 identical",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    const nsm = await startNsm();
    try {
      const up = pattern(1, 100_000_000), down = pattern(2, 100_000_000);
      const t0 = performance.now();
      const { atB, atA } = await transfer(nsm, 7001, up, down);
      const secs = (performance.now() - t0) / 1000;
      assert.equal(atB.bytes, up.length);
      assert.equal(atB.hash, sha(up));
      assert.equal(atA.bytes, down.length);
      assert.equal(atA.hash, sha(down));
      console.log(
        `  2 x 100 MB in ${secs.toFixed(1)} s (${(1600 / secs).toFixed(0)} Mbit/s total)`,
      );
    } finally {
      const out = await nsm.stop();
      assert.match(out, /"tcpInternalErrors":0/);
    }
  },
});

Deno.test({
  name:
    "two guests on one NSM at once each get their own device and transfer 20 MB SHA-256 identical",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    const nsm = await startNsm();
    try {
      const d1 = pattern(3, 20_000_000), d2 = pattern(4, 20_000_000);
      const l1 = nkcat(["--ctl", nsm.ctlB, "--listen", "7101"]);
      const l2 = nkcat(["--ctl", nsm.ctlB, "--listen", "7102"]);
      const err1 = listenerStderr(l1), err2 = listenerStderr(l2);
      await Promise.all([err1.listening, err2.listening]);
      const c1 = nkcat(["--ctl", nsm.ctlA, "198.18.0.2", "7101"]);
      const c2 = nkcat(["--ctl", nsm.ctlA, "198.18.0.2", "7102"]);
      for (const p of [l1, l2]) p.stdin.close();
      const [r1, r2] = await Promise.all([
        drainHash(l1),
        drainHash(l2),
        drainHash(c1),
        drainHash(c2),
        feed(c1, d1),
        feed(c2, d2),
      ]);
      for (
        const [p, err] of [[l1, err1.all], [l2, err2.all], [c1, text(c1.stderr)], [
          c2,
          text(c2.stderr),
        ]] as const
      ) {
        const s = await p.status;
        assert.equal(s.code, 0, await err);
      }
      assert.equal(r1.hash, sha(d1));
      assert.equal(r2.hash, sha(d2));
      const devices = nsm.log.filter((l) => /attached: pid/.test(l)).map((l) =>
        l.replace(/.*, /, "")
      );
      assert.equal(devices.length, 4);
      assert.equal(new Set(devices).size, 4, "every guest has its own device");
    } finally {
      await nsm.stop();
    }
  },
});

Deno.test({
  name:
    "a hostile guest gets error completions for every bad NQE and is disconnected for a jumping ring index and for a ring it never drains, while another guest's 50 MB transfer is unaffected",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    // 2 s: long enough that the well-behaved guests, starved of CPU on a loaded machine, are
    // never taken for stalled; the stalled guest is still disconnected (closedByNsm below).
    const nsm = await startNsm(["--stall-ms", "2000"]);
    try {
      const data = pattern(5, 50_000_000);
      const b = nkcat(["--ctl", nsm.ctlB, "--listen", "7201"]);
      b.stdin.close();
      await listenerStderr(b).listening;
      const a = nkcat(["--ctl", nsm.ctlA, "198.18.0.2", "7201"]);
      const moved = Promise.all([drainHash(b), drainHash(a), feed(a, data)]);

      const h = await RawGuest.attach(nsm.ctlA);
      const ask = askOn(h);
      assert.equal((await ask((n) => n.op = 200)).result, -Errno.ENOSYS, "unknown op");
      assert.equal((await ask((n) => n.op = NqeOp.RECV)).result, -Errno.ENOSYS, "NSM-only op");
      assert.equal(
        (await ask((n) => {
          n.op = NqeOp.NOP;
          n.flags = 0x20;
        })).result,
        -Errno.EINVAL,
        "unknown flag",
      );
      assert.equal((await ask((n) => n.op = NqeOp.NOP, false, 1)).result, -Errno.EINVAL);
      // The benign guest is guest 1 of this NSM and has socket 1: not ours.
      await assertForeignSocketsRejected(ask);
      const sock = (await ask((n) => {
        n.op = NqeOp.SOCKET;
        n.arg0 = 2;
        n.arg1 = 2;
      })).result;
      assert.ok(sock > 0);
      await assertBadSendtoRejected(h, ask, sock);
      // Ring index that jumps: disconnected.
      h.corruptIndex("job", h.qs.job.index + 5000);
      assert.ok(await closedByNsm(h), "the NSM closes a guest whose job ring index jumped");
      await waitLog(nsm, /detached: ring-fault/);
      h.close();

      // A guest that never drains its completion ring: disconnected after --stall-ms.
      const s = await RawGuest.attach(nsm.ctlA);
      await stallJobRing(s);
      assert.ok(await closedByNsm(s), "stalled guest disconnected");
      await waitLog(nsm, /detached: stalled/);
      s.close();

      const [atB] = await moved;
      assert.equal((await a.status).code, 0);
      assert.equal((await b.status).code, 0);
      assert.equal(atB.hash, sha(data), "the other guest's transfer is intact");
    } finally {
      const out = await nsm.stop();
      const stats = JSON.parse(out.slice(out.indexOf("stopped ") + 8).trim());
      assert.equal(stats.a.rejected["ring-fault"], 1);
      assert.equal(stats.a.rejected["stalled"], 1);
      assert.ok(stats.a.rejected["bad-data"] >= 3);
      assert.ok(stats.a.rejected["bad-socket"] >= 3);
    }
  },
});

Deno.test({
  name:
    "a guest killed mid-transfer has its sockets reset (the peer sees ConnectionReset) and its device freed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    const nsm = await startNsm();
    try {
      const b = nkcat(["--ctl", nsm.ctlB, "--listen", "7301"]);
      b.stdin.close();
      const errB = listenerStderr(b);
      await errB.listening;
      const a = nkcat(["--ctl", nsm.ctlA, "198.18.0.2", "7301"]);
      const attachA = await waitLog(nsm, /guest \d+ attached: pid \d+, .*-1-g/);
      const device = attachA.replace(/.*, /, "");
      await Deno.stat(device);
      // Endless data into A until it dies.
      const w = a.stdin.getWriter();
      const chunk = pattern(6, 1 << 20);
      const writer = (async () => {
        try {
          for (let i = 0; i < 10_000; i++) await w.write(chunk);
        } catch {
          // A is gone
        }
      })();
      let got = 0;
      const reader = b.stdout.getReader();
      while (got < 5_000_000) {
        const { value, done } = await reader.read();
        if (done) break;
        got += value.length;
      }
      a.kill("SIGKILL");
      await a.status;
      const rest = (async () => {
        for (;;) if ((await reader.read()).done) break;
      })();
      const sb = await b.status;
      await rest;
      await writer;
      assert.equal(sb.code, 1, "the peer's nkcat fails instead of hanging");
      assert.match(await errB.all, /ConnectionReset/);
      await waitLog(nsm, /guest \d+ detached: (doorbell|control)-closed/);
      await assert.rejects(Deno.stat(device), Deno.errors.NotFound);
    } finally {
      await nsm.stop();
    }
  },
});
