/**
 * An echo server guest for tests: attaches to the NSM control socket `--ctl`, listens on TCP
 * `--port` and echoes every connection until its EOF, then closes it. Prints `ready` once
 * listening; runs until killed or until the NSM goes away.
 *
 * ```
 * deno run -A tests/support/nk_echo.ts --ctl PATH --port N
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { listen, type NkConn } from "../../guest/guestlib/mod.ts";

async function echo(c: NkConn): Promise<void> {
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await c.write(buf.subarray(off, n));
    }
  } catch {
    // reset by the peer
  }
  c.close();
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { ctl: { type: "string" }, port: { type: "string", default: "7" } },
  });
  const l = listen({
    port: Number(values.port),
    ...(values.ctl !== undefined ? { ctl: values.ctl } : {}),
  });
  await l.ready;
  console.log("ready");
  try {
    for await (const c of l) echo(c);
  } catch {
    // The NSM went away (tests stop it before this guest): nothing is left to serve.
  }
}
