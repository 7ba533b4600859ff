/**
 * Bounded waits shared by the NSM guest tests (the tcpip and the kernel backend): polling a
 * condition, and telling whether the NSM hung up on a `RawGuest`.
 *
 * @module
 */

import type { RawGuest } from "../../nsm/raw_guest.ts";

/** Calls `f` every 2 ms until it returns a value, and returns it; throws after `ms`. */
export async function poll<T>(f: () => T | undefined, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Whether the NSM closes `g`'s control socket within `ms` (bounded; generous by default). */
export async function closedByNsm(g: RawGuest, ms = 30_000): Promise<boolean> {
  const buf = new Uint8Array(16);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
  const r = await Promise.race([g.ctl.read(buf).catch(() => null), t]);
  clearTimeout(timer);
  return r === null;
}
