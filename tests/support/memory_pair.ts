/**
 * Two GuestLib clients on the two hosts of one in-process memory NSM (`startMemoryNsm`: A at
 * 198.18.0.1, B at 198.18.0.2), with a `done()` that closes both and stops the NSM.
 *
 * @module
 */

import { startMemoryNsm } from "../../nsm/memory_nsm.ts";
import { NkClient } from "../../guest/guestlib/client.ts";

/** The NSM, the clients of hosts A and B, and the teardown. */
export interface MemoryPair {
  readonly nsm: Awaited<ReturnType<typeof startMemoryNsm>>;
  readonly a: NkClient;
  readonly b: NkClient;
  done(): Promise<void>;
}

/** Starts the NSM (MTU 1500; `maxSockets` per guest when given) and attaches both clients. */
export async function memoryPair(maxSockets?: number): Promise<MemoryPair> {
  const dir = await Deno.makeTempDir({ prefix: "memory-pair-" });
  const nsm = await startMemoryNsm({
    ctl: `${dir}/a.sock`,
    peerCtl: `${dir}/b.sock`,
    mtu: 1500,
    ...(maxSockets !== undefined ? { maxSockets } : {}),
  });
  const a = await NkClient.attach({ ctl: `${dir}/a.sock` });
  const b = await NkClient.attach({ ctl: `${dir}/b.sock` });
  return {
    nsm,
    a,
    b,
    async done(): Promise<void> {
      a.close();
      b.close();
      await nsm.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
