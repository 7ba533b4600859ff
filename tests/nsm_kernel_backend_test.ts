/**
 * `--stack kernel` tests that need the host kernel's network: each test creates its own
 * network namespace with a veth pair (198.18.0.1/24 + fd00::1/64 and 198.18.0.2/24 +
 * fd00::2/64, both ends inside the namespace), runs a program inside it with
 * `ip netns exec`, and deletes the namespace in `finally`. Needs root and `ip`.
 *
 * 1. tests/support/kernel_backend_cases.ts: the backend alone against kernel peers
 *    (Deno.listen / Deno.connect / Deno.listenDatagram in the same process).
 *
 * @module
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const req = needsAll(needsRoot(), needsTool("ip"));

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Creates a namespace with the veth pair described in the module comment; returns its name. */
export async function createKernelNetns(): Promise<string> {
  const ns = `nkk${Deno.pid % 100000}${Math.floor(Math.random() * 1e4)}`;
  await ip("netns", "add", ns);
  try {
    await ip("-n", ns, "link", "set", "lo", "up");
    await ip("-n", ns, "link", "add", "nkk0", "type", "veth", "peer", "name", "nkk1");
    await ip("-n", ns, "addr", "add", "198.18.0.1/24", "dev", "nkk0");
    await ip("-n", ns, "addr", "add", "198.18.0.2/24", "dev", "nkk1");
    await ip("-n", ns, "addr", "add", "fd00::1/64", "dev", "nkk0", "nodad");
    await ip("-n", ns, "addr", "add", "fd00::2/64", "dev", "nkk1", "nodad");
    await ip("-n", ns, "link", "set", "nkk0", "up");
    await ip("-n", ns, "link", "set", "nkk1", "up");
  } catch (e) {
    await deleteNetns(ns);
    throw e;
  }
  return ns;
}

/** Deletes the namespace (and with it the veth pair); never throws. */
export async function deleteNetns(ns: string): Promise<void> {
  await new Deno.Command("ip", { args: ["netns", "del", ns], stdout: "null", stderr: "null" })
    .output().catch(() => {});
}

Deno.test({
  name: "KernelBackend passes its cases against kernel peers inside a fresh netns (v4, v6, UDP)",
  ignore: req.ignore,
  async fn(): Promise<void> {
    req.assert();
    const ns = await createKernelNetns();
    try {
      const cmd = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "test",
          "-A",
          "--unstable-net",
          `${ROOT}tests/support/kernel_backend_cases.ts`,
        ],
        env: { NK_KERNEL_NETNS: "1", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      });
      const child = cmd.spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
      const out = await child.output();
      clearTimeout(timer);
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, text);
      assert.match(text, /ok \| \d+ passed \| 0 failed/);
    } finally {
      await deleteNetns(ns);
    }
  },
});
