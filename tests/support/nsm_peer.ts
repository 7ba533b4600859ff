/**
 * The NSM program as the interop tests and benchmarks run it: `NsmProcess` starts `nsm/cli.ts`
 * (optionally inside a network namespace) and waits for its `ready` line; the Python scripts
 * are the Linux peer's side (a TCP stream client hashing what it sends and gets back, a UDP
 * echo client with a closed-port probe, and a kernel echo/discard server for comparisons).
 *
 * @module
 */

import { NSM_V8_FLAGS } from "../../nsm/heap.ts";

const CLI = new URL("../../nsm/cli.ts", import.meta.url).pathname;

/** Peer-side TCP client: streams N bytes per connection (echo: reads them back, hashing both). */
export const STREAM_PY = `
import hashlib, os, socket, sys, threading, time
host, port, total, conns, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
block = os.urandom(1 << 20)
res = [None] * conns
errs = []
def one(i):
    try:
        s = socket.create_connection((host, port), timeout=10)
        s.settimeout(30)
        hs, hr = hashlib.sha256(), hashlib.sha256()
        got = [0]
        def reader():
            while True:
                d = s.recv(1 << 18)
                if not d: break
                hr.update(d); got[0] += len(d)
        t = threading.Thread(target=reader)
        if mode == "echo": t.start()
        sent, mv = 0, memoryview(block)
        while sent < total:
            n = min(len(block), total - sent)
            s.sendall(mv[:n]); hs.update(mv[:n]); sent += n
        s.shutdown(socket.SHUT_WR)
        if mode == "echo": t.join()
        else:
            while s.recv(65536): pass
        s.close()
        res[i] = (sent, got[0], hs.hexdigest(), hr.hexdigest())
    except Exception as e:
        errs.append(repr(e))
t0 = time.time()
ths = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in ths: t.start()
for t in ths: t.join()
dt = time.time() - t0
ok = not errs and all(r is not None and (mode != "echo" or (r[0] == r[1] and r[2] == r[3])) for r in res)
tot = sum(r[0] for r in res if r)
print("%s conns=%d bytes=%d secs=%.3f mbit=%.1f" % ("ok" if ok else "MISMATCH", conns, tot, dt, tot * 8 / dt / 1e6))
for r in res: print(r)
for e in errs: print("error", e)
`;

/**
 * Peer-side burst of N concurrent TCP echo connections (non-blocking, one thread): each sends
 * SIZE random bytes, half-closes and must read exactly them back. Prints "ok conns=N ..." or
 * "FAIL ...".
 */
export const MANY_PY = `
import os, resource, selectors, socket, sys, time
host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 64), max(hard, n + 64)))
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
sel = selectors.DefaultSelector()
state = {}
t0 = time.time()
for i in range(n):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setblocking(False)
    s.connect_ex((host, port))
    state[s] = [os.urandom(size), 0, bytearray()]
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
done = ok = 0
errors = {}
deadline = time.time() + 60
while done < n and time.time() < deadline:
    for key, ev in sel.select(timeout=1):
        s = key.fileobj; st = state[s]
        try:
            if ev & selectors.EVENT_WRITE and st[1] < size:
                try:
                    st[1] += s.send(st[0][st[1]:])
                except (BlockingIOError, InterruptedError):
                    pass
                if st[1] == size:
                    s.shutdown(socket.SHUT_WR)
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if d:
                    st[2] += d
                    continue
                ok += bytes(st[2]) == st[0]
                sel.unregister(s); s.close(); done += 1
        except OSError as e:
            errors[e.errno] = errors.get(e.errno, 0) + 1
            sel.unregister(s); s.close(); done += 1
print("ok" if ok == n else "FAIL", "conns=%d ok=%d secs=%.2f errors=%s" % (n, ok, time.time() - t0, errors))
`;

/** Peer-side UDP echo client and closed-port probe. */
export const UDP_PY = `
import socket, sys
host, port, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(3)
out = []
for i in range(5):
    s.sendto(b'echo-%d-' % i + b'x' * (300 * i), (host, port))
    data, addr = s.recvfrom(4096)
    out.append('%s:%d' % (data[:7].decode(), len(data)))
print(' '.join(out))
# A connected UDP socket turns the ICMP port unreachable into ECONNREFUSED (traceroute's end).
c = socket.socket(fam, socket.SOCK_DGRAM)
c.settimeout(3)
c.connect((host, closed))
c.send(b'probe')
try:
    c.recv(100)
    print('no-error')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
`;

let scriptDir: string | null = null;
/** Writes `text` to `name` in a per-process temporary directory (removed at exit); its path. */
export async function script(name: string, text: string): Promise<string> {
  scriptDir ??= await Deno.makeTempDir({ prefix: "nsm_interop_" });
  const path = `${scriptDir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

/** The NSM (`nsm/cli.ts`) as a subprocess. */
export class NsmProcess {
  readonly #proc: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #pump: Promise<void>;
  readonly #stderr: Promise<string>;
  #exited = false;
  /** Process id (of `ip netns exec`, which execs the NSM: the same process). */
  readonly pid: number;

  private constructor(proc: Deno.ChildProcess) {
    this.#proc = proc;
    this.pid = proc.pid;
    const dec = new TextDecoder();
    this.#pump = (async () => {
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += dec.decode(chunk);
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          this.#lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
      if (buf !== "") this.#lines.push(buf);
    })();
    this.#stderr = (async () => {
      let s = "";
      for await (const chunk of proc.stderr) s += dec.decode(chunk);
      return s;
    })();
    proc.status.then(() => {
      this.#exited = true;
    });
  }

  /** Starts `nsm/cli.ts args` (in `netns` when given) and waits for its `ready` line. */
  static async start(netns: string | null, args: string[]): Promise<NsmProcess> {
    const deno = [Deno.execPath(), "run", "-A", NSM_V8_FLAGS, CLI, ...args];
    const cmd = netns === null ? deno : ["ip", "netns", "exec", netns, ...deno];
    const proc = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const p = new NsmProcess(proc);
    const deadline = Date.now() + 30_000;
    while (!p.#lines.some((l) => l.startsWith("ready")) && Date.now() < deadline && !p.#exited) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!p.#lines.some((l) => l.startsWith("ready"))) {
      const out = await p.stop();
      throw new Error(`the NSM did not get ready: ${JSON.stringify(out)}`);
    }
    return p;
  }

  /** The `ready` line. */
  get ready(): string {
    return this.#lines.find((l) => l.startsWith("ready")) ?? "";
  }

  /** SIGTERM, bounded wait (then SIGKILL); returns exit code, the `stopped` JSON and stderr. */
  async stop(): Promise<{ code: number; stopped: Record<string, unknown> | null; stderr: string }> {
    if (!this.#exited) {
      try {
        this.#proc.kill("SIGTERM");
      } catch { /* gone */ }
    }
    const timer = setTimeout(() => {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    const status = await this.#proc.status;
    clearTimeout(timer);
    await this.#pump;
    const line = this.#lines.find((l) => l.startsWith("stopped"));
    const stopped = line === undefined
      ? null
      : JSON.parse(line.slice(line.indexOf("{"))) as Record<string, unknown>;
    return { code: status.code, stopped, stderr: await this.#stderr };
  }
}

/**
 * Kernel-side echo (first port) and discard (second port) server, dual-stack, for running the
 * same workload against the Linux stack. Prints "ready" once listening.
 */
export const KERNEL_SERVER_PY = `
import socket, sys, threading
def handle(c, echo):
    buf = bytearray(1 << 18); mv = memoryview(buf)
    while True:
        n = c.recv_into(buf)
        if n == 0: break
        if echo: c.sendall(mv[:n])
    c.close()
def serve(s, echo):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, echo), daemon=True).start()
socks = []
for port, echo in ((int(sys.argv[1]), True), (int(sys.argv[2]), False)):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(64)
    threading.Thread(target=serve, args=(s, echo), daemon=True).start()
    socks.append(s)
print("ready", flush=True)
threading.Event().wait()
`;

globalThis.addEventListener("unload", () => {
  if (scriptDir !== null) Deno.removeSync(scriptDir, { recursive: true });
});
