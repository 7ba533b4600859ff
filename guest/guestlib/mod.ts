/**
 * GuestLib: sockets through the NSM for Deno programs. Code written for `Deno.connect` /
 * `Deno.listen` runs on the NSM's stack by changing one import:
 *
 * ```ts
 * import * as net from "../guest/guestlib/mod.ts";   // instead of Deno.connect / Deno.listen
 * const conn = await net.connect({ hostname: "198.18.0.2", port: 5201 });
 * await conn.write(new TextEncoder().encode("hi"));
 * for await (const c of net.listen({ port: 7 })) c.readable.pipeTo(c.writable);
 * ```
 *
 * The NSM is found through its control socket: `ctl` option, else `setCtlPath()`, else
 * `defaultCtlPath()` (`$NSM_CTL`, `$XDG_RUNTIME_DIR/nsm/ctl.sock`, `/run/nsm/ctl.sock` for
 * root): the same default as `deno task nsm`. One `NkClient` (NK device) is shared per path.
 *
 * Beyond Deno's shape, `NkConn` has non-waiting calls for data loops that must not allocate
 * per chunk: `tryWrite`/`tryRead`, with `onWritable`/`onReadable` callbacks (run by the pump,
 * no promise per wake-up) or `waitWritable`/`waitReadable`. `$NK_SPIN_MAX_US` sets the
 * pump's spin ceiling before it sleeps (see `AttachOptions.spin`). A program whose data path
 * must not pause for collections runs with `GUEST_V8_FLAGS` (a 16 MB young generation, no
 * memory reducer).
 *
 * @module
 */

import { defaultCtlPath } from "../../nsm/ctl_path.ts";
import type { NetApi, NetConn, NetListener, TcpInfoSample } from "../nkperf/net.ts";
import { type AttachOptions, NkClient, type NkTraffic, NsmUnavailable } from "./client.ts";
import { connectWith, NkConn, NkDatagramConn, NkListener, type NkTcpInfo } from "./conn.ts";

export { NkClient, NkConn, NkDatagramConn, NkListener, NsmUnavailable };
export { GUEST_SEMI_SPACE_MB, GUEST_V8_FLAGS } from "./heap.ts";
export type { AttachOptions, NkTcpInfo, NkTraffic };
export { errnoError } from "./errors.ts";
export { AdaptiveSpin } from "./spin.ts";
export type { AdaptiveSpinOptions } from "./spin.ts";
export { defaultCtlPath };

let ctlOverride: string | undefined;
const clients = new Map<string, Promise<NkClient>>();

/** Sets the control socket path used when a call passes no `ctl`. */
export function setCtlPath(path: string): void {
  ctlOverride = path;
}

/** The shared client for `ctl` (attaching on first use). */
export function client(ctl?: string): Promise<NkClient> {
  const path = ctl ?? ctlOverride ?? defaultCtlPath();
  let c = clients.get(path);
  if (c === undefined) {
    c = NkClient.attach({ ctl: path });
    clients.set(path, c);
    c.catch(() => clients.delete(path));
  }
  return c.then((x) => {
    if (x.closed) {
      clients.delete(path);
      return client(path);
    }
    return x;
  });
}

/** Like `Deno.connect` (TCP): resolves once established. */
export async function connect(
  opts: { hostname?: string; port: number; transport?: "tcp"; ctl?: string },
): Promise<NkConn> {
  return connectWith(await client(opts.ctl), opts);
}

/** Like `Deno.listen` (TCP). Errors such as AddrInUse surface at `accept()` / `ready`. */
export function listen(
  opts: { port: number; hostname?: string; transport?: "tcp"; ctl?: string },
): NkListener {
  return new NkListener(client(opts.ctl), opts);
}

/** Like `Deno.listenDatagram` (UDP): `send(p, addr)`, `receive()`. */
export function listenDatagram(
  opts: { port: number; hostname?: string; transport?: "udp"; ctl?: string },
): NkDatagramConn {
  return new NkDatagramConn(client(opts.ctl), opts);
}

/** Detaches every shared client (their sockets are reset by the NSM). */
export async function closeAll(): Promise<void> {
  for (const c of clients.values()) {
    try {
      (await c).close();
    } catch {
      // never attached
    }
  }
  clients.clear();
}

/**
 * nkperf's `NetApi` over GuestLib: `deno task nkperf` runs through the NSM with this object.
 * `tcpInfo` is synchronous in NetApi, so it returns the statistics fetched by the previous call
 * (a GETSOCKOPT round trip runs in the background): values lag one report interval.
 */
export function nkNet(options: { ctl?: string } = {}): NetApi {
  return {
    async connect(opts: { hostname: string; port: number }): Promise<NetConn> {
      const c = await connect({
        ...opts,
        ...(options.ctl !== undefined ? { ctl: options.ctl } : {}),
      });
      c.tcpInfoCached(); // start the first GETSOCKOPT now: the first interval gets cwnd/retransmits
      return c;
    },
    listen(opts: { port: number; hostname?: string }): NetListener {
      return listen({ ...opts, ...(options.ctl !== undefined ? { ctl: options.ctl } : {}) });
    },
    tcpInfo(conn: NetConn): TcpInfoSample | undefined {
      if (!(conn instanceof NkConn)) return undefined;
      const i = conn.tcpInfoCached();
      if (i === undefined) return undefined;
      return {
        sndCwnd: i.cwnd,
        retransmits: i.retransmits,
        rttUs: i.rttUs,
        rttVarUs: i.rttVarUs,
        pmtu: i.mss > 0 ? i.mss + 40 : 0,
        sndWnd: i.sndWnd,
      };
    },
  };
}
