import assert from "node:assert/strict";
import { NSM_SEMI_SPACE_MB, NSM_V8_FLAGS, youngGenerationBytes } from "./heap.ts";

async function childYoungMb(
  flags: string[],
): Promise<{ mb: number; hint: string; collected: boolean; heapFreed: number }> {
  const src = new URL("./heap.ts", import.meta.url).href;
  // Start-up garbage: 4 MB of short-lived arrays, then collectStartupGarbage().
  const code =
    `import { collectStartupGarbage, youngGenerationBytes, heapSizingHint } from "${src}";
    let keep = 0;
    for (let i = 0; i < 4096; i++) keep += new Array(128).fill(i).length;
    const before = Deno.memoryUsage().heapUsed;
    const collected = collectStartupGarbage();
    const heapFreed = before - Deno.memoryUsage().heapUsed;
    console.log(JSON.stringify({ mb: youngGenerationBytes() / 1048576, hint: heapSizingHint() ?? "",
      collected, heapFreed, keep }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...flags, code],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("NSM_V8_FLAGS gives the process a 32 MB young generation, and the sizing hint stays quiet then", async () => {
  const r = await childYoungMb([NSM_V8_FLAGS]);
  assert.ok(r.mb >= NSM_SEMI_SPACE_MB * 0.9, `${r.mb} MB`);
  assert.equal(r.hint, "");
});

Deno.test("collectStartupGarbage() clears the start-up's garbage under NSM_V8_FLAGS (gc exposed), and does nothing without", async () => {
  const r = await childYoungMb([NSM_V8_FLAGS]);
  assert.equal(r.collected, true);
  assert.ok(r.heapFreed > 1_000_000, `${r.heapFreed} B freed`);
  const plain = await childYoungMb([]);
  assert.equal(plain.collected, false);
});

Deno.test("heapSizingHint() names the flag when the NSM runs with V8's default young generation", async () => {
  const r = await childYoungMb([]);
  assert.ok(r.mb < NSM_SEMI_SPACE_MB * 0.9, `${r.mb} MB by default`);
  assert.match(r.hint, /--min-semi-space-size=32/);
  assert.ok(youngGenerationBytes() > 0);
});

Deno.test("deno task nsm runs the CLI with exactly NSM_V8_FLAGS", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = cfg.tasks.nsm;
  assert.ok(task.split(" ").includes(NSM_V8_FLAGS), `${task} vs ${NSM_V8_FLAGS}`);
  assert.match(NSM_V8_FLAGS, /--no-memory-reducer/);
  assert.match(NSM_V8_FLAGS, /--expose-gc/);
});
