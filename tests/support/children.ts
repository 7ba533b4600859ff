/**
 * Child processes of the multi-process tests: a Deno program started and awaited until it says
 * it is ready, and stopped on every exit path.
 *
 * @module
 */

const dec = new TextDecoder();

/**
 * Spawns `deno run -A ...args` and resolves once its stdout matches `ready` (default: a line
 * starting with `ready`); its stdout is then dropped and its stderr goes to ours.
 */
export async function spawnReady(
  args: string[],
  ready: RegExp = /^ready/m,
): Promise<Deno.ChildProcess> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const r = p.stdout.getReader();
  let out = "";
  while (!ready.test(out)) {
    const { value, done } = await r.read();
    if (done) throw new Error(`${args[0]} exited before it was ready: ${out}`);
    out += dec.decode(value);
  }
  r.releaseLock();
  p.stdout.cancel().catch(() => {});
  return p;
}

/** Sends SIGTERM to each child still running and waits until all have exited. */
export async function stopAll(kids: readonly Deno.ChildProcess[]): Promise<void> {
  for (const k of kids) {
    try {
      k.kill("SIGTERM");
    } catch { /* gone */ }
    await k.status.catch(() => {});
  }
}
