/**
 * A plain kernel-socket TCP peer for the kernel-stack end-to-end tests (run inside the test's
 * network namespace): one connection; it reads everything (SHA-256 and count) while it sends
 * `--send N` bytes of `pattern(--seed)`, half-closes, and prints one JSON line
 * `{"received":n,"sha256":"..."}` when both directions are done.
 *
 * ```
 * deno run -A tests/support/kernel_peer.ts --listen HOST PORT --send N --seed S  # prints "listening"
 * deno run -A tests/support/kernel_peer.ts --connect HOST PORT --send N --seed S
 * deno run -A --unstable-net tests/support/kernel_peer.ts --udp-echo HOST PORT --send COUNT
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Deterministic pseudo-random bytes (xorshift32), the same on both sides of a test. */
export function pattern(seed: number, size: number): Uint8Array {
  const b = new Uint8Array(size + 3 & ~3);
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
  return b.subarray(0, size);
}

async function serve(conn: Deno.Conn, send: number, seed: number): Promise<void> {
  const h = createHash("sha256");
  let received = 0;
  const reader = (async () => {
    const buf = new Uint8Array(256 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
      received += n;
    }
  })();
  const data = pattern(seed, send);
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off, off + (1 << 20)));
  await conn.closeWrite();
  await reader;
  conn.close();
  console.log(JSON.stringify({ received, sha256: h.digest("hex") }));
}

async function main(args: string[]): Promise<void> {
  const mode = args[0], host = args[1]!, port = Number(args[2]);
  let send = 0, seed = 1;
  for (let i = 3; i < args.length; i += 2) {
    if (args[i] === "--send") send = Number(args[i + 1]);
    else if (args[i] === "--seed") seed = Number(args[i + 1]);
    else throw new Error(`kernel_peer: unknown flag ${args[i]}`);
  }
  if (mode === "--listen") {
    const l = Deno.listen({ hostname: host, port });
    console.log("listening");
    const c = await l.accept();
    l.close();
    await serve(c, send, seed);
  } else if (mode === "--udp-echo") {
    // Echoes `--send` datagrams (0 = forever) back to their sender.
    const d = Deno.listenDatagram({ hostname: host, port, transport: "udp" });
    console.log("listening");
    for (let i = 0; send === 0 || i < send; i++) {
      const [data, from] = await d.receive();
      await d.send(data, from);
    }
    d.close();
  } else if (mode === "--connect") {
    await serve(await Deno.connect({ hostname: host, port }), send, seed);
  } else {
    throw new Error(
      "usage: kernel_peer.ts --listen|--connect|--udp-echo HOST PORT [--send N] [--seed S]",
    );
  }
}

if (import.meta.main) await main(Deno.args);
