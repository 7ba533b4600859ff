/**
 * Child of tests/deadline_alloc_test.ts: JS-heap bytes per `Interface.pollAtInto()` call (the
 * question NsmRuntime asks after each idle step) with a resolved neighbour and a TCP
 * connection whose deadlines are real instants (above 2^31 ns), against a control that keeps
 * each instant in a tagged slot (a heap number per call). Run with
 * --expose-gc and a young generation large enough that no GC falls into a measured interval.
 * Prints one JSON line.
 *
 * @module
 */

import { Interface } from "../../stacks/tcpip/iface/interface.ts";
import { TcpStack } from "../../stacks/tcpip/tcp/stack.ts";
import type { Link } from "../../stacks/link/link.ts";
import { IpAddress } from "../../stacks/tcpip/wire/address.ts";

const gc = (globalThis as unknown as { gc: () => void }).gc;

/** A link that sends nothing anywhere (the SYN's frame is dropped: a retransmit timer runs). */
class NullLink implements Link {
  readonly name = "null";
  readonly mac = new Uint8Array([2, 0, 0, 0, 0, 1]);
  readonly mtu = 1500;
  readonly capabilities = { rxChecksumVerified: false, txChecksumOffload: false, maxBatch: 8 };
  readonly #frame = new Uint8Array(1514);
  receive(): number {
    return 0;
  }
  transmitBuffer(): Uint8Array | null {
    return this.#frame;
  }
  commit(): void {}
  flush(): void {}
  close(): void {}
}

const now = 5e9 + 0.5;
const iface = new Interface(new NullLink(), {
  ipv4: [{ address: "198.18.0.1", prefixLength: 24 }],
});
const peer = IpAddress.parse("198.18.0.2");
iface.neighbors.confirm(4, peer.bytes, new Uint8Array([2, 0, 0, 0, 0, 2]), now, true);
const tcp = new TcpStack({ ip: iface, random: () => 12345 });
iface.register(tcp);
tcp.connect(peer, 5001, now);
if (!(tcp.pollAt() > now && tcp.pollAt() < now + 10e9)) {
  throw new Error("no retransmit timer armed");
}
const out = new Float64Array(2);

function asked(n: number): void {
  for (let i = 0; i < n; i++) iface.pollAtInto(out, 0);
}
/** The control: the instant kept in a tagged slot, a heap number per call (16 B). */
const boxes: unknown[] = [null];
function returned(n: number): void {
  for (let i = 0; i < n; i++) boxes[0] = iface.pollAt() + i;
}

function perCall(f: (n: number) => void): number {
  const n = 100_000;
  gc();
  const h0 = Deno.memoryUsage().heapUsed;
  f(n);
  return (Deno.memoryUsage().heapUsed - h0) / n;
}

for (let i = 0; i < 10; i++) {
  asked(50_000); // warm-up: every tier up to the optimizing compiler
  returned(50_000);
}
console.log(JSON.stringify({
  deadline: out[0],
  askedBytes: perCall(asked),
  returnedBytes: perCall(returned),
}));
