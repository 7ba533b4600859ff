import assert from "node:assert/strict";
import {
  H_NSM_PID,
  H_NSM_START_TIME,
  H_VERSION_MINOR,
  NK_HEADER_SIZE,
  NK_MAGIC,
} from "./device.ts";
import { memoryWire } from "./memory_link.ts";
import { processState, selfStartTime } from "./proc_identity.ts";
import { ServiceLib } from "./service_lib.ts";
import { createTcpipHost } from "./stack_host.ts";

function header(pid: number, startTime: number): Uint8Array {
  const b = new Uint8Array(NK_HEADER_SIZE);
  const h = new DataView(b.buffer);
  h.setUint32(0, NK_MAGIC, true);
  h.setUint16(4, 1, true);
  h.setUint16(H_VERSION_MINOR, 1, true);
  h.setUint32(H_NSM_PID, pid, true);
  h.setUint32(H_NSM_START_TIME, startTime, true);
  return b;
}

Deno.test("ServiceLib.listen() removes dead NSMs' devices and bells from its deviceDir, logs each, keeps live ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nk-sl-sweep-" });
  const child = new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
  const start = processState(child.pid)?.startTime ?? 0;
  child.kill("SIGKILL");
  await child.status;
  const dead = `nk-${child.pid}-x-1-g1`;
  const live = `nk-${Deno.pid}-x-1-g1`;
  Deno.writeFileSync(`${dir}/${dead}`, header(child.pid, start));
  Deno.writeFileSync(`${dir}/${live}`, header(Deno.pid, selfStartTime()));
  const bell = Deno.listen({ transport: "unix", path: `${dir}/${dead}.bell` });
  const [la] = memoryWire();
  const a = createTcpipHost(la, { ipv4: "198.18.0.1/24" });
  const lines: string[] = [];
  const sl = new ServiceLib(a.backend, {
    ctlPath: `${dir}/ctl.sock`,
    deviceDir: dir,
    log: (l) => lines.push(l),
  });
  try {
    assert.equal(sl.staleSweep, null);
    await sl.listen();
    const swept = sl.staleSweep as ServiceLib["staleSweep"];
    assert.ok(swept !== null, "listen() swept");
    assert.deepEqual(swept.removed.map((f) => f.path).sort(), [
      `${dir}/${dead}`,
      `${dir}/${dead}.bell`,
    ]);
    assert.equal(swept.kept, 1);
    assert.equal(lines.filter((l) => l.startsWith("removed stale ")).length, 2);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["ctl.sock", live]);
  } finally {
    sl.close(1);
    bell.close();
    await Deno.remove(dir, { recursive: true });
  }
});
