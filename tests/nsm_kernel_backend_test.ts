/**
 * `--stack kernel` tests that need the host kernel's network: each test creates its own
 * network namespace with a veth pair (198.18.0.1/24 + fd00::1/64 and 198.18.0.2/24 +
 * fd00::2/64, both ends inside the namespace), runs a program inside it with
 * `ip netns exec`, and deletes the namespace in `finally`. Needs root and `ip`.
 *
 * 1. tests/support/kernel_backend_cases.ts: the backend alone against kernel peers
 *    (Deno.listen / Deno.connect / Deno.listenDatagram in the same process).
 * 2. End to end: `nsm/cli.ts --stack kernel` (ServiceLib on KernelBackend) and a kernel peer
 *    (tests/support/kernel_peer.ts) in the namespace, guest `nkcat` processes outside it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pattern } from "./support/kernel_peer.ts";
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
import { closeAll, listenDatagram } from "../guest/guestlib/mod.ts";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const req = needsAll(needsRoot(), needsTool("ip"));

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Creates a namespace with the veth pair described in the module comment; returns its name. */
export async function createKernelNetns(): Promise<string> {
  const ns = `nkk${Deno.pid % 100000}${Math.floor(Math.random() * 1e4)}`;
  await ip("netns", "add", ns);
  try {
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "add", "nkk0", "type", "veth", "peer", "name", "nkk1");
    await ip("-n", ns, "addr", "add", "198.18.0.1/24", "dev", "nkk0");
    await ip("-n", ns, "addr", "add", "198.18.0.2/24", "dev", "nkk1");
    await ip("-n", ns, "addr", "add", "fd00::1/64", "dev", "nkk0", "nodad");
    await ip("-n", ns, "addr", "add", "fd00::2/64", "dev", "nkk1", "nodad");
    await ip("-n", ns, "link", "set", "nkk0", "up");
    await ip("-n", ns, "link", "set", "nkk1", "up");
  } catch (e) {
    await deleteNetns(ns);
    throw e;
  }
  return ns;
}

/** Deletes the namespace (and with it the veth pair); never throws. */
export async function deleteNetns(ns: string): Promise<void> {
  await new Deno.Command("ip", { args: ["netns", "del", ns], stdout: "null", stderr: "null" })
    .output().catch(() => {});
}

Deno.test({
  name: "KernelBackend passes its cases against kernel peers inside a fresh netns (v4, v6, UDP)",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    const ns = await createKernelNetns();
    try {
      const cmd = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "test",
          "-A",
          "--unstable-net",
          `${ROOT}tests/support/kernel_backend_cases.ts`,
        ],
        env: { NK_KERNEL_NETNS: "1", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      });
      const child = cmd.spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
      const out = await child.output();
      clearTimeout(timer);
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
      assert.match(text, /ok \| \d+ passed \| 0 failed/);
    } finally {
      await deleteNetns(ns);
    }
  },
});

// ---------------------------------------------------------------------------------------------
// End to end: guest nkcat -> NQEs -> ServiceLib -> KernelBackend -> kernel -> kernel peer.
// The kernel NSM and the peer run inside the namespace; nkcat runs outside it (it has no route
// to 198.18.0.0/24 of its own: everything goes through the NSM's device).

const dec = new TextDecoder();

interface Proc {
  child: Deno.ChildProcess;
  out: string[];
  err: string[];
  lines: (re: RegExp, ms?: number) => Promise<string>;
  done: Promise<Deno.CommandStatus>;
}

function spawn(cmd: string, args: string[], stdin: "piped" | "null" = "null"): Proc {
  const child = new Deno.Command(cmd, { args, stdin, stdout: "piped", stderr: "piped" }).spawn();
  const out: string[] = [], err: string[] = [];
  const pump = async (s: ReadableStream<Uint8Array>, into: string[]): Promise<void> => {
    let buf = "";
    for await (const c of s) {
      buf += dec.decode(c, { stream: true });
      const ls = buf.split("\n");
      buf = ls.pop()!;
      into.push(...ls);
    }
    if (buf !== "") into.push(buf);
  };
  const a = pump(child.stdout, out), b = pump(child.stderr, err);
  const done = (async () => {
    const st = await child.status;
    await Promise.all([a, b]);
    return st;
  })();
  return {
    child,
    out,
    err,
    done,
    async lines(re: RegExp, ms = 15_000): Promise<string> {
      const until = Date.now() + ms;
      for (;;) {
        const l = out.find((x) => re.test(x));
        if (l !== undefined) return l;
        if (Date.now() > until) {
          throw new Error(`no line ${re}; stdout:\n${out.join("\n")}\nstderr:\n${err.join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

function kill(p: Proc): void {
  try {
    p.child.kill("SIGKILL");
  } catch {
    // already gone
  }
}

/** nkcat as a guest process (outside the namespace), stdout hashed. */
function nkcat(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}guest/nkcat/cli.ts`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Writes `data` to the guest's stdin and closes it; returns the bytes written (all, unless it exited). */
async function feed(p: Deno.ChildProcess, data: Uint8Array): Promise<number> {
  const w = p.stdin.getWriter();
  let off = 0;
  try {
    for (; off < data.length; off += 1 << 20) await w.write(data.subarray(off, off + (1 << 20)));
    await w.close();
  } catch {
    // The guest exited early; its status and stderr tell why.
  }
  return off;
}

async function drainHash(p: Deno.ChildProcess): Promise<{ sha256: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const c of p.stdout) {
    h.update(c);
    bytes += c.length;
  }
  return { sha256: h.digest("hex"), bytes };
}

function sha(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** `deno run -A --unstable-net script args` inside namespace `ns`. */
function runInNs(ns: string, script: string, args: string[]): Proc {
  return spawn("ip", [
    "netns",
    "exec",
    ns,
    Deno.execPath(),
    "run",
    "-A",
    "--unstable-net",
    script,
    ...args,
  ]);
}

/** Starts the kernel NSM in `ns`; returns it once it printed `ready`. */
async function startKernelNsmIn(ns: string, ctl: string, extra: string[] = []): Promise<Proc> {
  // deno task nsm, plus --unstable-net for UDP
  const p = runInNs(ns, `${ROOT}nsm/cli.ts`, ["--stack", "kernel", "--ctl", ctl, ...extra]);
  await p.lines(/^ready stack=kernel ctl=/);
  return p;
}

function peer(ns: string, args: string[]): Proc {
  return runInNs(ns, `${ROOT}tests/support/kernel_peer.ts`, args);
}

/** Runs `fn` with a kernel peer started in `ns` once it listens; the peer is killed and reaped after. */
async function withListeningPeer(
  ns: string,
  args: string[],
  fn: (pr: Proc) => Promise<void>,
): Promise<void> {
  const pr = peer(ns, args);
  try {
    await pr.lines(/^listening$/);
    await fn(pr);
  } finally {
    kill(pr);
    await pr.done;
  }
}

const MB = 1024 * 1024;
const SIZE = 100 * MB;

async function withKernelNsm(
  fn: (ns: string, ctl: string) => Promise<void>,
  extra: string[] = [],
  check: (stopped: Record<string, Record<string, unknown>>) => void = () => {},
): Promise<void> {
  const ns = await createKernelNetns();
  const dir = await Deno.makeTempDir({ prefix: "nsm-kernel-" });
  const ctl = `${dir}/k.sock`;
  let nsm: Proc | null = null;
  try {
    nsm = await startKernelNsmIn(ns, ctl, extra);
    await fn(ns, ctl);
    nsm.child.kill("SIGTERM");
    const st = await nsm.done;
    assert.ok(st.success, nsm.err.join("\n"));
    const stopped = nsm.out.find((l) => l.startsWith("stopped "));
    assert.ok(stopped !== undefined, nsm.out.join("\n"));
    const s = JSON.parse(stopped.slice(stopped.indexOf("{")));
    assert.equal(s.backend.internalErrors, 0, "no exception inside the backend's I/O tasks");
    check(s);
  } finally {
    if (nsm !== null) kill(nsm);
    await deleteNetns(ns);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "--stack kernel: guest nkcat -> kernel peer, 100 MB each way at once, SHA-256 identical",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (ns, ctl) => {
      await withListeningPeer(ns, [
        "--listen",
        "198.18.0.2",
        "7001",
        "--send",
        String(SIZE),
        "--seed",
        "2",
      ], async (pr) => {
        const up = pattern(1, SIZE);
        const t0 = performance.now();
        const g = nkcat(["--ctl", ctl, "198.18.0.2", "7001"]);
        const [, down, st] = await Promise.all([feed(g, up), drainHash(g), g.status]);
        const secs = (performance.now() - t0) / 1000;
        const gerr = await new Response(g.stderr).text();
        assert.equal(st.code, 0, gerr);
        const res = JSON.parse(await pr.lines(/^\{/));
        assert.equal(res.received, SIZE);
        assert.equal(res.sha256, sha(up), "guest -> peer bytes identical");
        assert.equal(down.bytes, SIZE);
        assert.equal(down.sha256, sha(pattern(2, SIZE)), "peer -> guest bytes identical");
        console.log(
          `kernel stack: 2 x ${SIZE / MB} MB in ${secs.toFixed(2)} s = ` +
            `${(2 * SIZE / MB / secs).toFixed(0)} MB/s total through NQEs`,
        );
      });
    });
  },
});

Deno.test({
  name: "--stack kernel: guest nkcat --listen accepts a kernel peer's connection, data both ways",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (ns, ctl) => {
      const size = 8 * MB;
      const g = nkcat(["--ctl", ctl, "--listen", "7002"]);
      let pr: Proc | null = null;
      try {
        const up = pattern(3, size);
        const feeding = feed(g, up);
        const draining = drainHash(g);
        // The guest's LISTEN reaches the kernel once nkcat attached; retry the connect until then.
        let res: { received: number; sha256: string } | null = null;
        for (let i = 0; i < 100 && res === null; i++) {
          pr = peer(ns, ["--connect", "198.18.0.1", "7002", "--send", String(size), "--seed", "4"]);
          const st = await pr.done;
          if (st.success) res = JSON.parse(pr.out.find((l) => l.startsWith("{"))!);
          else await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(res !== null, "the peer connected to the guest's listener");
        const [, down, st] = await Promise.all([feeding, draining, g.status]);
        assert.equal(st.code, 0, await new Response(g.stderr).text());
        assert.equal(res.received, size);
        assert.equal(res.sha256, sha(up));
        assert.equal(down.bytes, size);
        assert.equal(down.sha256, sha(pattern(4, size)));
      } finally {
        try {
          g.kill("SIGKILL");
        } catch {
          // exited
        }
        if (pr !== null) kill(pr);
      }
    });
  },
});

Deno.test({
  name: "--stack kernel: a refused connect reaches the guest as nkcat's connection error",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (_ns, ctl) => {
      const g = nkcat(["--ctl", ctl, "198.18.0.2", "7003"]);
      await g.stdin.close();
      const [st, out, err] = await Promise.all([
        g.status,
        new Response(g.stdout).text(),
        new Response(g.stderr).text(),
      ]);
      assert.equal(st.code, 1, `exit 1 (connection error); stderr: ${err}`);
      assert.equal(out, "");
      assert.match(err, /refused/i);
    });
  },
});

Deno.test({
  name: "--stack kernel: two guests at once, each to its own kernel peer, 20 MB each way, intact",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (ns, ctl) => {
      const size = 20 * MB;
      const peers = [7011, 7012].map((port, i) =>
        peer(ns, [
          "--listen",
          "198.18.0.2",
          String(port),
          "--send",
          String(size),
          "--seed",
          `${20 + i}`,
        ])
      );
      try {
        for (const p of peers) await p.lines(/^listening$/);
        const runs = [0, 1].map(async (i) => {
          const up = pattern(10 + i, size);
          const g = nkcat(["--ctl", ctl, "198.18.0.2", String(7011 + i)]);
          const [, down, st] = await Promise.all([feed(g, up), drainHash(g), g.status]);
          assert.equal(st.code, 0, await new Response(g.stderr).text());
          const res = JSON.parse(await peers[i]!.lines(/^\{/));
          assert.equal(res.received, size);
          assert.equal(res.sha256, sha(up), `guest ${i} -> peer intact`);
          assert.equal(down.bytes, size);
          assert.equal(down.sha256, sha(pattern(20 + i, size)), `peer -> guest ${i} intact`);
        });
        await Promise.all(runs);
      } finally {
        for (const p of peers) {
          kill(p);
          await p.done;
        }
      }
    });
  },
});

Deno.test({
  name:
    "--stack kernel: a hostile guest gets error completions and is disconnected (index jump, undrained ring) while another guest's 50 MB transfer stays intact",
  ignore: req.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(
      async (ns, ctl) => {
        const size = 50 * MB;
        await withListeningPeer(
          ns,
          ["--listen", "198.18.0.2", "7021", "--send", "0"],
          async (pr) => {
            const data = pattern(5, size);
            const a = nkcat(["--ctl", ctl, "198.18.0.2", "7021"]);
            const moved = Promise.all([drainHash(a), feed(a, data)]);

            const h = await RawGuest.attach(ctl);
            const ask = askOn(h);
            assert.equal((await ask((n) => n.op = 200)).result, -Errno.ENOSYS, "unknown op");
            assert.equal(
              (await ask((n) => n.op = NqeOp.RECV)).result,
              -Errno.ENOSYS,
              "NSM-only op",
            );
            assert.equal((await ask((n) => n.op = NqeOp.NOP, false, 1)).result, -Errno.EINVAL);
            await assertForeignSocketsRejected(ask);
            const sock = (await ask((n) => {
              n.op = NqeOp.SOCKET;
              n.arg0 = 2;
              n.arg1 = 2;
            })).result;
            assert.ok(sock > 0, `UDP socket on the kernel: ${sock}`);
            await assertBadSendtoRejected(h, ask, sock);
            h.corruptIndex("job", h.qs.job.index + 5000);
            assert.ok(await closedByNsm(h), "the NSM closes a guest whose job ring index jumped");
            h.close();

            const s = await RawGuest.attach(ctl);
            await stallJobRing(s);
            assert.ok(await closedByNsm(s), "stalled guest disconnected");
            s.close();

            const [down] = await moved;
            assert.equal((await a.status).code, 0);
            assert.equal(down.bytes, 0);
            const res = JSON.parse(await pr.lines(/^\{/));
            assert.equal(res.received, size);
            assert.equal(res.sha256, sha(data), "the other guest's transfer is intact");
          },
        );
      },
      // 2 s: CPU-starved well-behaved guests on a loaded machine are never taken for stalled.
      ["--stall-ms", "2000"],
      (stopped) => {
        const rejected = stopped.serviceLib!.rejected as Record<string, number>;
        assert.equal(rejected["ring-fault"], 1);
        assert.equal(rejected["stalled"], 1);
        assert.ok(rejected["bad-data"]! >= 3);
        assert.ok(rejected["bad-socket"]! >= 3);
      },
    );
  },
});

Deno.test({
  name:
    "--stack kernel: a guest killed mid-transfer has its kernel connection torn down (the peer's writes fail, no hang)",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (ns, ctl) => {
      await withListeningPeer(
        ns,
        ["--listen", "198.18.0.2", "7031", "--send", String(1024 * MB)],
        async (pr) => {
          const g = nkcat(["--ctl", ctl, "198.18.0.2", "7031"]);
          // Read a little, then die without closing anything.
          const reader = g.stdout.getReader();
          let got = 0;
          while (got < 4 * MB) got += (await reader.read()).value?.length ?? 0;
          g.kill("SIGKILL");
          await g.status;
          reader.releaseLock();
          await g.stdout.cancel().catch(() => {});
          await g.stderr.cancel().catch(() => {});
          const st = await Promise.race([
            pr.done,
            new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
          ]);
          assert.ok(st !== null, "the peer's connection ended");
          assert.ok(!st.success, "the peer saw an error, not a clean end");
          assert.match(pr.err.join("\n"), /ConnectionReset|BrokenPipe/);
        },
      );
    });
  },
});

Deno.test({
  name: "--stack kernel: IPv6 through the kernel: nkcat to [fd00::2], 8 MB each way, intact",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (ns, ctl) => {
      const size = 8 * MB;
      await withListeningPeer(ns, [
        "--listen",
        "fd00::2",
        "7041",
        "--send",
        String(size),
        "--seed",
        "6",
      ], async (pr) => {
        const up = pattern(7, size);
        const g = nkcat(["--ctl", ctl, "fd00::2", "7041"]);
        const [, down, st] = await Promise.all([feed(g, up), drainHash(g), g.status]);
        assert.equal(st.code, 0, await new Response(g.stderr).text());
        const res = JSON.parse(await pr.lines(/^\{/));
        assert.equal(res.received, size);
        assert.equal(res.sha256, sha(up));
        assert.equal(down.sha256, sha(pattern(6, size)));
      });
    });
  },
});

Deno.test({
  name: "--stack kernel: GuestLib UDP datagrams reach a kernel UDP echo peer and come back",
  ignore: req.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    req.assert();
    await withKernelNsm(async (ns, ctl) => {
      const pr = peer(ns, ["--udp-echo", "198.18.0.2", "7051", "--send", "20"]);
      try {
        await pr.lines(/^listening$/);
        const d = listenDatagram({ port: 0, hostname: "0.0.0.0", transport: "udp", ctl });
        await d.ready;
        const to: Deno.NetAddr = { transport: "udp", hostname: "198.18.0.2", port: 7051 };
        for (let i = 0; i < 20; i++) {
          const msg = pattern(100 + i, 100 + i * 50);
          assert.equal(await d.send(msg, to), msg.length);
          const [data, from] = await d.receive();
          assert.deepEqual(data, msg, `datagram ${i} echoed intact`);
          assert.equal((from as Deno.NetAddr).port, 7051);
          assert.equal((from as Deno.NetAddr).hostname, "198.18.0.2");
        }
        d.close();
        assert.ok((await pr.done).success);
      } finally {
        kill(pr);
        await closeAll();
      }
    });
  },
});
