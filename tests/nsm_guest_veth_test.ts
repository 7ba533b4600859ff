/**
 * Guests against a real Linux peer: a veth lab (xdp/lab.ts: the peer in its own network
 * namespace with 198.18.0.2 / fd00::2), our stack on the NSM end through AF_XDP with a
 * ServiceLib, run in this test process; guests are `nkcat` / nkperf processes attached through
 * the control socket; the peer uses Python sockets and iperf3. Needs root, ip, python3 (and
 * iperf3 for the nkperf case).
 *
 * Wall time: about 15-30 s.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Lab } from "../xdp/lab.ts";
import { XdpLink } from "../xdp/xdp_link.ts";
import { NsmRuntime } from "../nsm/runtime.ts";
import { ServiceLib } from "../nsm/service_lib.ts";
import { createTcpipHost } from "../nsm/stack_host.ts";
import { monotonicNow } from "../stacks/time.ts";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { NsmProcess } from "./support/nsm_peer.ts";

const gate = needsAll(needsRoot(), needsTool("ip"), needsTool("python3"));
const iperf = needsTool("iperf3");
const ROOT = new URL("..", import.meta.url).pathname;

const PEER_PY = `
import hashlib, socket, sys, threading
mode, host, port, infile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "listen":
    ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(1)
    print("listening", flush=True)
    s, _ = ls.accept()
else:
    s = socket.create_connection((host, port), timeout=10)
s.settimeout(60)
h = hashlib.sha256(); got = [0]
def rd():
    while True:
        d = s.recv(1 << 18)
        if not d: break
        h.update(d); got[0] += len(d)
t = threading.Thread(target=rd); t.start()
with open(infile, "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b: break
        s.sendall(b)
s.shutdown(socket.SHUT_WR)
t.join(); s.close()
print("done", got[0], h.hexdigest(), flush=True)
`;

interface Env {
  lab: Lab;
  ctl: string;
  dir: string;
  sl: ServiceLib;
  stop(): Promise<void>;
}

async function env(): Promise<Env> {
  const lab = await Lab.up({ offloads: "off" });
  const dir = await Deno.makeTempDir({ prefix: "nsm-veth-" });
  let link: XdpLink | null = null;
  try {
    link = XdpLink.open({ ifname: lab.nsmIf });
    const host = createTcpipHost(link, { ipv4: "198.18.0.1/24", ipv6: "fd00::1/64" });
    const sl = new ServiceLib(host.backend, { ctlPath: `${dir}/ctl.sock` });
    await sl.listen();
    const rt = new NsmRuntime(sl.wrapLink(link), host.iface);
    rt.add(sl);
    const done = rt.run();
    const l = link;
    return {
      lab,
      ctl: sl.ctlPath,
      dir,
      sl,
      async stop(): Promise<void> {
        rt.stop();
        await done;
        sl.close(monotonicNow());
        host.iface.poll(monotonicNow());
        l.close();
        await lab.down();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (e) {
    link?.close();
    await lab.down();
    throw e;
  }
}

async function randomFile(path: string, bytes: number): Promise<string> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const h = createHash("sha256");
  const block = new Uint8Array(1 << 20);
  for (let done = 0; done < bytes; done += block.length) {
    for (let i = 0; i < block.length; i += 65536) {
      crypto.getRandomValues(block.subarray(i, i + 65536));
    }
    const b = block.subarray(0, Math.min(block.length, bytes - done));
    h.update(b);
    let off = 0;
    while (off < b.length) off += await f.write(b.subarray(off));
  }
  f.close();
  return h.digest("hex");
}

async function sha256File(path: string): Promise<{ hash: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  using f = await Deno.open(path);
  for await (const c of f.readable) {
    h.update(c);
    bytes += c.length;
  }
  return { hash: h.digest("hex"), bytes };
}

function nkcat(args: string[], stdinFile: string, stdoutFile: string): Deno.ChildProcess {
  return new Deno.Command("sh", {
    args: [
      "-c",
      `p="$1"; shift; exec "$0" run -A "$p" "$@" < "${stdinFile}" > "${stdoutFile}"`,
      Deno.execPath(),
      `${ROOT}guest/nkcat/cli.ts`,
      ...args,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

async function lines(p: Deno.ChildProcess): Promise<string> {
  return new TextDecoder().decode((await p.output()).stdout);
}

const MB100 = 100_000_000;

Deno.test({
  name:
    "veth + AF_XDP: a guest nkcat sends 100 MB to a Linux peer and receives 100 MB from it at the same time, both SHA-256 identical",
  ignore: gate.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    gate.assert();
    const e = await env();
    try {
      const up = `${e.dir}/up.bin`, down = `${e.dir}/down.bin`, got = `${e.dir}/got.bin`;
      const upHash = await randomFile(up, MB100);
      const downHash = await randomFile(down, MB100);
      const py = `${e.dir}/peer.py`;
      await Deno.writeTextFile(py, PEER_PY);
      const peer = new Deno.Command("ip", {
        args: ["netns", "exec", e.lab.peerNs, "python3", py, "listen", "198.18.0.2", "7400", down],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const r = peer.stdout.getReader();
      const first = new TextDecoder().decode((await r.read()).value);
      assert.match(first, /listening/);
      const t0 = performance.now();
      const g = nkcat(["--ctl", e.ctl, "198.18.0.2", "7400"], up, got);
      const gs = await g.output();
      assert.equal(gs.code, 0, new TextDecoder().decode(gs.stderr));
      let rest = "";
      for (;;) {
        const { value, done } = await r.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      await peer.status;
      const secs = (performance.now() - t0) / 1000;
      const m = /done (\d+) ([0-9a-f]+)/.exec(rest);
      assert.ok(m, `peer output: ${first}${rest}`);
      assert.equal(Number(m[1]), MB100);
      assert.equal(m[2], upHash, "peer received exactly what the guest sent");
      const mine = await sha256File(got);
      assert.equal(mine.bytes, MB100);
      assert.equal(mine.hash, downHash, "guest received exactly what the peer sent");
      console.log(`  2 x 100 MB over veth/AF_XDP in ${secs.toFixed(1)} s`);
    } finally {
      await e.stop();
    }
  },
});

Deno.test({
  name:
    "veth + AF_XDP: nkcat --listen accepts a Linux peer's IPv6 connection and exchanges 10 MB each way intact",
  ignore: gate.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    gate.assert();
    const e = await env();
    try {
      const up = `${e.dir}/up.bin`, down = `${e.dir}/down.bin`, got = `${e.dir}/got.bin`;
      const upHash = await randomFile(up, 10_000_000);
      const downHash = await randomFile(down, 10_000_000);
      const py = `${e.dir}/peer.py`;
      await Deno.writeTextFile(py, PEER_PY);
      const g = nkcat(["--ctl", e.ctl, "--listen", "7401"], up, got);
      const err = g.stderr.getReader();
      assert.match(new TextDecoder().decode((await err.read()).value), /listening/);
      err.releaseLock();
      const out = await lines(
        new Deno.Command("ip", {
          args: ["netns", "exec", e.lab.peerNs, "python3", py, "connect", "fd00::1", "7401", down],
          stdout: "piped",
          stderr: "inherit",
        }).spawn(),
      );
      const gs = await g.status;
      assert.equal(gs.code, 0);
      const m = /done (\d+) ([0-9a-f]+)/.exec(out);
      assert.ok(m, out);
      assert.equal(m[2], upHash);
      assert.equal((await sha256File(got)).hash, downHash);
    } finally {
      await e.stop();
    }
  },
});

Deno.test({
  name:
    "veth + AF_XDP: nkperf through GuestLib against the peer's iperf3 server reports throughput and cwnd",
  ignore: gate.ignore || iperf.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    gate.assert();
    iperf.assert();
    const e = await env();
    try {
      const srv = new Deno.Command("ip", {
        args: ["netns", "exec", e.lab.peerNs, "iperf3", "-s", "-1", "-B", "198.18.0.2"],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait (bounded, generous) until iperf3 listens: a fixed sleep loses on a loaded machine.
      const until = Date.now() + 30_000;
      while ((await e.lab.peer(["ss", "-Hltn", "sport = :5201"])).stdout.trim() === "") {
        if (Date.now() > until) throw new Error("the peer's iperf3 -s did not listen within 30 s");
        await new Promise((r) => setTimeout(r, 50));
      }
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", `${ROOT}guest/guestlib/nkperf.ts`, "--ctl", e.ctl],
          ...["-c", "198.18.0.2", "-t", "3", "-J"],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr) + text);
      await srv.status;
      const j = JSON.parse(text);
      const bps = j.end.sum_received.bits_per_second as number;
      assert.ok(bps > 10e6, `throughput ${bps}`);
      const cwnds = (j.intervals as { streams: { snd_cwnd?: number }[] }[])
        .map((i) => i.streams[0]?.snd_cwnd ?? 0);
      assert.ok(cwnds.some((c) => c > 0), `cwnd reported: ${cwnds}`);
      console.log(`  nkperf -> iperf3: ${(bps / 1e9).toFixed(2)} Gbit/s`);
    } finally {
      await e.stop();
    }
  },
});

Deno.test({
  name:
    "deno task nsm --ctl: a guest nkcat reaches a Linux peer through the NSM program while its echo service keeps serving the peer",
  ignore: gate.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(): Promise<void> {
    gate.assert();
    const lab = await Lab.up({ offloads: "off" });
    const dir = await Deno.makeTempDir({ prefix: "nsm-cli-" });
    const ctl = `${dir}/ctl.sock`;
    let nsm: NsmProcess | null = null;
    try {
      nsm = await NsmProcess.start(null, [
        ...["--link", `xdp:${lab.nsmIf}`, "--ip", "198.18.0.1/24", "--ip6", "fd00::1/64"],
        ...["--echo", "7", "--ctl", ctl],
      ]);
      assert.match(nsm.ready, new RegExp(` ctl=${ctl}$`));
      const up = `${dir}/up.bin`, down = `${dir}/down.bin`, got = `${dir}/got.bin`;
      const upHash = await randomFile(up, 5_000_000);
      const downHash = await randomFile(down, 5_000_000);
      const py = `${dir}/peer.py`;
      await Deno.writeTextFile(py, PEER_PY);
      const peer = lab.spawnPeer(["python3", py, "listen", "198.18.0.2", "7402", down]);
      const r = peer.stdout.getReader();
      assert.match(new TextDecoder().decode((await r.read()).value), /listening/);
      const g = await nkcat(["--ctl", ctl, "198.18.0.2", "7402"], up, got).output();
      assert.equal(g.code, 0, new TextDecoder().decode(g.stderr));
      let rest = "";
      for (;;) {
        const { value, done } = await r.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      assert.match(rest, new RegExp(`done 5000000 ${upHash}`));
      assert.equal((await sha256File(got)).hash, downHash);
      const echo = await lab.peer([
        "python3",
        "-c",
        "import socket; s=socket.create_connection(('198.18.0.1',7),timeout=5); s.sendall(b'ping'); print(s.recv(10))",
      ]);
      assert.match(echo.stdout, /b'ping'/);
      const out = await nsm.stop();
      nsm = null;
      assert.equal(out.code, 0);
      const sl = out.stopped!["servicelib"] as { attached: number; bytesFromGuests: number };
      assert.equal(sl.attached, 1);
      assert.equal(sl.bytesFromGuests, 5_000_000);
      // Run with NSM_V8_FLAGS, it collected its start-up garbage and had their young generation.
      assert.deepEqual(out.stopped!["heap"], { startupGc: true, youngGenerationMb: 32 });
    } finally {
      await nsm?.stop();
      await lab.down();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
