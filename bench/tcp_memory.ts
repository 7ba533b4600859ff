/**
 * Heap cost of idle established TCP connections: opens N connections between two stacks
 * (TCP-only pair harness), forces GC, and prints bytes per connection endpoint.
 *
 *   deno run -A --v8-flags=--expose-gc bench/tcp_memory.ts [N]
 *
 * @module
 */

import { SECOND } from "../stacks/time.ts";
import { cleanPath, TcpPair } from "../tests/support/tcp_pair.ts";

const n = Number(Deno.args[0] ?? 10_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("run with --v8-flags=--expose-gc for exact numbers");
  Deno.exit(2);
}

const pair = new TcpPair(cleanPath(), 1, { synQueueMax: 1_000_000 });
const l = pair.b.listen(null, 80, n);
gc();
const before = Deno.memoryUsage().heapUsed;
const clients: number[] = [];
const servers: number[] = [];
pair.run(60 * SECOND, () => {
  for (let i = 0; i < 200 && clients.length < n; i++) {
    clients.push(pair.a.connect(pair.addrB, 80, pair.now));
  }
  for (let id = pair.b.accept(l); id > 0; id = pair.b.accept(l)) servers.push(id);
}, () => servers.length === n && pair.a.connectionCount === n);
pair.a.trimIdle();
pair.b.trimIdle();
gc();
const after = Deno.memoryUsage().heapUsed;
const per = (after - before) / (2 * n);
console.log(
  `${n} connections (${2 * n} endpoints, client+server): heap +${
    ((after - before) / 1e6).toFixed(1)
  } MB, ` +
    `${Math.round(per)} B per idle connection endpoint; states ${pair.a.state(clients[0]!)} / ${
      pair.b.state(servers[0]!)
    }`,
);
