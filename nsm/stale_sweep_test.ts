import assert from "node:assert/strict";
import {
  H_NSM_PID,
  H_NSM_START_TIME,
  H_VERSION_MINOR,
  NK_HEADER_SIZE,
  NK_MAGIC,
  NsmDevice,
} from "./device.ts";
import { processState, selfStartTime } from "./proc_identity.ts";
import { sweepStaleDevices } from "./stale_sweep.ts";

/** A device header as NsmDevice writes it (only the fields the sweep reads). */
function header(pid: number, startTime: number, minor = 1): Uint8Array {
  const b = new Uint8Array(NK_HEADER_SIZE);
  const h = new DataView(b.buffer);
  h.setUint32(0, NK_MAGIC, true);
  h.setUint16(4, 1, true);
  h.setUint16(H_VERSION_MINOR, minor, true);
  h.setUint32(H_NSM_PID, pid, true);
  h.setUint32(H_NSM_START_TIME, startTime >>> 0, true);
  h.setUint32(H_NSM_START_TIME + 4, Math.floor(startTime / 2 ** 32), true);
  return b;
}

/** Pid and start time of a child process that has exited and been reaped. */
async function deadProcess(): Promise<{ pid: number; startTime: number }> {
  const child = new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
  const st = processState(child.pid);
  assert.ok(st, "the child's /proc/<pid>/stat is readable while it runs");
  child.kill("SIGKILL");
  await child.status;
  return { pid: child.pid, startTime: st.startTime };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("processState() reads this process's start time and reports no process for a reaped child", async () => {
  const self = processState(Deno.pid);
  assert.ok(self);
  assert.equal(self.exited, false);
  assert.equal(self.startTime, selfStartTime());
  assert.ok(self.startTime > 0);
  const dead = await deadProcess();
  assert.equal(processState(dead.pid), null);
});

Deno.test("sweepStaleDevices() removes a dead NSM's device and bell, keeps a live NSM's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  const listeners: Deno.Listener[] = [];
  try {
    const dead = await deadProcess();
    const deadName = `nk-${dead.pid}-t-1-g1`;
    const liveName = `nk-${Deno.pid}-t-1-g1`;
    Deno.writeFileSync(`${dir}/${deadName}`, header(dead.pid, dead.startTime));
    Deno.writeFileSync(`${dir}/${liveName}`, header(Deno.pid, selfStartTime()));
    for (const n of [deadName, liveName]) {
      listeners.push(Deno.listen({ transport: "unix", path: `${dir}/${n}.bell` }));
    }
    Deno.writeFileSync(`${dir}/unrelated`, new Uint8Array(10));
    const lines: string[] = [];
    const r = sweepStaleDevices({ dir, log: (l) => lines.push(l) });
    assert.equal(exists(`${dir}/${deadName}`), false);
    assert.equal(exists(`${dir}/${deadName}.bell`), false);
    assert.equal(exists(`${dir}/${liveName}`), true);
    assert.equal(exists(`${dir}/${liveName}.bell`), true);
    assert.equal(exists(`${dir}/unrelated`), true);
    assert.deepEqual(
      r.removed.map((f) => [f.kind, f.path, f.pid, f.reason]),
      [
        ["device", `${dir}/${deadName}`, dead.pid, "no-process"],
        ["bell", `${dir}/${deadName}.bell`, dead.pid, "no-process"],
      ],
    );
    assert.equal(r.kept, 2);
    assert.equal(r.bytesFreed, NK_HEADER_SIZE);
    assert.equal(lines.length, 2, "one log line per removed file");
    assert.match(lines[0]!, new RegExp(`removed stale device .*${deadName}.*pid ${dead.pid}`));
  } finally {
    for (const l of listeners) l.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() removes a device whose live pid has another start time (pid reused)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  try {
    const name = `nk-${Deno.pid}-t-2-g1`;
    Deno.writeFileSync(`${dir}/${name}`, header(Deno.pid, selfStartTime() + 1));
    const r = sweepStaleDevices({ dir });
    assert.equal(exists(`${dir}/${name}`), false);
    assert.deepEqual(r.removed.map((f) => f.reason), ["pid-reused"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() removes a lone bell and a lone device of dead owners, by the pid in the name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  const listeners: Deno.Listener[] = [];
  try {
    const dead = await deadProcess();
    // Old-style name, no device file: only the bell is left.
    listeners.push(Deno.listen({ transport: "unix", path: `${dir}/nk-${dead.pid}-1-g1.bell` }));
    // A device that died before its header was written (all zeros): the name gives the pid.
    Deno.writeFileSync(`${dir}/nk-${dead.pid}-1-g2`, new Uint8Array(NK_HEADER_SIZE));
    // A live NSM's bell without a device (unlinked early): kept.
    listeners.push(Deno.listen({ transport: "unix", path: `${dir}/nk-${Deno.pid}-1-g3.bell` }));
    const r = sweepStaleDevices({ dir });
    assert.deepEqual(r.removed.map((f) => f.path).sort(), [
      `${dir}/nk-${dead.pid}-1-g1.bell`,
      `${dir}/nk-${dead.pid}-1-g2`,
    ]);
    assert.equal(exists(`${dir}/nk-${Deno.pid}-1-g3.bell`), true);
    assert.equal(r.kept, 1);
  } finally {
    for (const l of listeners) l.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() judges a 1.0 header (no start time) by pid liveness and file age", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  try {
    const dead = await deadProcess();
    Deno.writeFileSync(`${dir}/nk-dead-old`, header(dead.pid, 0, 0));
    Deno.writeFileSync(`${dir}/nk-live-old`, header(Deno.pid, 12345, 0)); // minor 0: ignored
    // Written long before this process started: this pid cannot be its creator.
    Deno.writeFileSync(`${dir}/nk-reused-old`, header(Deno.pid, 0, 0));
    const past = new Date(Date.now() - 10 * 365 * 86_400_000);
    Deno.utimeSync(`${dir}/nk-reused-old`, past, past);
    const r = sweepStaleDevices({ dir });
    assert.deepEqual(r.removed.map((f) => [f.path, f.reason]).sort(), [
      [`${dir}/nk-dead-old`, "no-process"],
      [`${dir}/nk-reused-old`, "pid-reused"],
    ]);
    assert.equal(exists(`${dir}/nk-live-old`), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() keeps a device whose header names a dead pid while its name names a live one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  try {
    const dead = await deadProcess();
    // A guest can rewrite its header; the live NSM's pid in the name still protects the device.
    const name = `nk-${Deno.pid}-t-3-g1`;
    Deno.writeFileSync(`${dir}/${name}`, header(dead.pid, dead.startTime));
    Deno.writeFileSync(`${dir}/nk-guest1`, new Uint8Array(0)); // no header, no pid: not ours
    const r = sweepStaleDevices({ dir });
    assert.equal(r.removed.length, 0);
    assert.equal(r.kept, 2);
    assert.equal(exists(`${dir}/${name}`), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() of a missing directory removes nothing and does not throw", () => {
  const r = sweepStaleDevices({ dir: "/nonexistent-nk-sweep-dir" });
  assert.deepEqual(r, { removed: [], bytesFreed: 0, kept: 0, failed: [] });
});

Deno.test("NsmDevice.create() records the NSM pid and start time (minor 1), so its sweep keeps it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  const dev = NsmDevice.create({
    name: `nk-${Deno.pid}-t-4-g1`,
    dir,
    bellDir: dir,
    hugePages: "never",
    ringCapacity: 2,
    chunksPerHalf: 1,
  });
  try {
    const b = Deno.readFileSync(dev.path).subarray(0, NK_HEADER_SIZE);
    const h = new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.equal(h.getUint16(H_VERSION_MINOR, true), 1);
    assert.equal(h.getUint32(H_NSM_PID, true), Deno.pid);
    assert.equal(h.getUint32(H_NSM_START_TIME, true), selfStartTime());
    const r = sweepStaleDevices({ dir });
    assert.equal(r.removed.length, 0);
    assert.equal(r.kept, 2);
  } finally {
    dev.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() without read access to /proc removes nothing (every owner would look dead)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  try {
    const name = `nk-${Deno.pid}-t-5-g1`;
    Deno.writeFileSync(`${dir}/${name}`, header(Deno.pid, selfStartTime()));
    const script = `${dir}/sweep.ts`;
    Deno.writeTextFileSync(
      script,
      `import { sweepStaleDevices } from ${
        JSON.stringify(import.meta.resolve("./stale_sweep.ts"))
      };\n` +
        `const r = sweepStaleDevices({ dir: Deno.args[0]!, log: (l) => console.error(l) });\n` +
        `console.log(JSON.stringify(r));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", `--allow-read=${dir}`, `--allow-write=${dir}`, script, dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)).removed, []);
    assert.match(stderr, /sweep of .* skipped: \/proc\/self\/stat is not readable/);
    assert.equal(exists(`${dir}/${name}`), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweepStaleDevices() removes the device and bell of a real NSM process killed with SIGKILL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sweep-" });
  try {
    const script = `${dir}/nsm.ts`;
    Deno.writeTextFileSync(
      script,
      `import { NsmDevice } from ${JSON.stringify(import.meta.resolve("./device.ts"))};\n` +
        `const d = NsmDevice.create({ name: \`nk-\${Deno.pid}-k-1-g1\`, dir: Deno.args[0]!, ` +
        `bellDir: Deno.args[0]!, hugePages: "never", ringCapacity: 2, chunksPerHalf: 1 });\n` +
        `console.log(d.path);\n` +
        `await new Promise(() => setInterval(() => {}, 1000));\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, dir],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read(); // the device exists once its path is printed
    const path = new TextDecoder().decode(first.value).trim();
    assert.equal(path, `${dir}/nk-${child.pid}-k-1-g1`);
    assert.equal(sweepStaleDevices({ dir }).removed.length, 0, "a live NSM's device is kept");
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    assert.equal(exists(path), true, "SIGKILL left the device behind");
    assert.equal(exists(`${path}.bell`), true, "SIGKILL left the bell behind");
    const r = sweepStaleDevices({ dir });
    assert.deepEqual(r.removed.map((f) => [f.kind, f.path, f.pid]), [
      ["device", path, child.pid],
      ["bell", `${path}.bell`, child.pid],
    ]);
    assert.ok(r.bytesFreed > NK_HEADER_SIZE);
    assert.equal(exists(path), false);
    assert.equal(exists(`${path}.bell`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
