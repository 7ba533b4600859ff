/**
 * Throughput of the kernel-stack backend (`KernelBackend`) against the same kernel sockets used
 * directly, in a fresh network namespace (veth pair, 198.18.0.1 <-> 198.18.0.2), one TCP
 * connection, one direction at a time, all in one process:
 *
 * - `deno-conn`: Deno.Conn writer -> Deno.Conn reader (the ceiling for anything built on them)
 * - `backend-send`: backend.send() through its send ring -> Deno.Conn reader
 * - `backend-recv`: Deno.Conn writer -> backend.recv() through its receive ring
 *
 * The backend rows drive the backend like the kernel NSM loop does: call it, and yield to
 * Deno's event loop (`backend.yield()`) between passes.
 *
 * ```
 * deno run -A bench/kernel_backend.ts [MB per run, default 256]   # needs root and `ip`
 * ```
 *
 * @module
 */

import { KernelBackend } from "../nsm/backend_kernel.ts";
import { Errno, Family, SockAddr, SockType } from "../nsm/backend.ts";
import { NqeEvent } from "../nsm/nqe.ts";

const MB = 1024 * 1024;

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function outside(mb: number): Promise<void> {
  const ns = `nkkb${Deno.pid % 100000}`;
  await ip("netns", "add", ns);
  try {
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "add", "nkk0", "type", "veth", "peer", "name", "nkk1");
    await ip("-n", ns, "addr", "add", "198.18.0.1/24", "dev", "nkk0");
    await ip("-n", ns, "addr", "add", "198.18.0.2/24", "dev", "nkk1");
    await ip("-n", ns, "link", "set", "nkk0", "up");
    await ip("-n", ns, "link", "set", "nkk1", "up");
    const st = await new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "-A",
        import.meta.filename!,
        "--inside",
        `${mb}`,
      ],
    }).spawn().status;
    if (!st.success) throw new Error(`bench inside ${ns} failed`);
  } finally {
    await new Deno.Command("ip", { args: ["netns", "del", ns] }).output();
  }
}

async function pair(): Promise<{ a: Deno.TcpConn; b: Deno.TcpConn; close(): void }> {
  const l = Deno.listen({ hostname: "198.18.0.2", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "198.18.0.2", port: (l.addr as Deno.NetAddr).port }),
    l.accept(),
  ]);
  l.close();
  return {
    a,
    b,
    close(): void {
      a.close();
      b.close();
    },
  };
}

async function drain(c: Deno.Conn, total: number): Promise<void> {
  const buf = new Uint8Array(256 * 1024);
  let got = 0;
  while (got < total) {
    const n = await c.read(buf);
    if (n === null) throw new Error("early EOF");
    got += n;
  }
}

async function denoConn(total: number): Promise<number> {
  const p = await pair();
  const chunk = new Uint8Array(256 * 1024);
  const t0 = performance.now();
  const reader = drain(p.b, total);
  for (let sent = 0; sent < total;) {
    sent += await p.a.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
  }
  await reader;
  const ms = performance.now() - t0;
  p.close();
  return ms;
}

async function connected(
  b: KernelBackend,
): Promise<{ id: number; peer: Deno.TcpConn; l: Deno.TcpListener }> {
  const l = Deno.listen({ hostname: "198.18.0.2", port: 0 });
  const id = b.socket(Family.INET, SockType.STREAM, 0);
  b.connect(id, new SockAddr().setV4([198, 18, 0, 2], (l.addr as Deno.NetAddr).port), 0);
  const peer = await l.accept();
  while ((b.events(id) & NqeEvent.OUT) === 0) await b.wait(10);
  return { id, peer, l };
}

async function backendSend(total: number): Promise<number> {
  const b = new KernelBackend();
  const { id, peer, l } = await connected(b);
  const chunk = new Uint8Array(16 * 1024); // one NK data chunk per send, as ServiceLib does
  const t0 = performance.now();
  const reader = drain(peer, total);
  for (let sent = 0; sent < total;) {
    const n = b.send(id, chunk.subarray(0, Math.min(chunk.length, total - sent)), false, 0);
    if (n === -Errno.EAGAIN) {
      b.drainReady(() => {});
      await b.yield();
      continue;
    }
    if (n < 0) throw new Error(`send ${n}`);
    sent += n;
  }
  await reader;
  const ms = performance.now() - t0;
  peer.close();
  l.close();
  b.dispose(0);
  return ms;
}

async function backendRecv(total: number): Promise<number> {
  const b = new KernelBackend();
  const { id, peer, l } = await connected(b);
  const chunk = new Uint8Array(256 * 1024);
  const t0 = performance.now();
  const writer = (async () => {
    for (let sent = 0; sent < total;) {
      sent += await peer.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
    }
  })();
  const buf = new Uint8Array(16 * 1024);
  for (let got = 0; got < total;) {
    const n = b.recv(id, buf, 0);
    if (n === -Errno.EAGAIN) {
      b.drainReady(() => {});
      await b.yield();
      continue;
    }
    if (n <= 0) throw new Error(`recv ${n}`);
    got += n;
  }
  await writer;
  const ms = performance.now() - t0;
  peer.close();
  l.close();
  b.dispose(0);
  return ms;
}

async function inside(mb: number): Promise<void> {
  const total = mb * MB;
  const rows: [string, (t: number) => Promise<number>][] = [
    ["deno-conn", denoConn],
    ["backend-send", backendSend],
    ["backend-recv", backendRecv],
  ];
  console.log(`| path | MB/s (best of 3, ${mb} MB each) |`);
  console.log("| --- | --- |");
  for (const [name, fn] of rows) {
    let best = Infinity;
    for (let i = 0; i < 3; i++) best = Math.min(best, await fn(total));
    console.log(`| ${name} | ${(total / MB / (best / 1000)).toFixed(0)} |`);
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--inside") await inside(Number(Deno.args[1]));
  else await outside(Number(Deno.args[0] ?? "256"));
}
