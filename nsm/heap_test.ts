import assert from "node:assert/strict";
import {
  NSM_INITIAL_OLD_SPACE_MB,
  NSM_SEMI_SPACE_MB,
  NSM_V8_FLAGS,
  youngGenerationBytes,
} from "./heap.ts";

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

/** Mark-compacts V8 started itself in a child that, after the start-up GC, holds 8 MB more. */
async function markCompactsAfterGrowth(v8Flags: string): Promise<number> {
  const src = new URL("./heap.ts", import.meta.url).href;
  // What a first connection brings: large arrays (kept views, tables) and buffers.
  const code = `import { collectStartupGarbage } from "${src}";
    collectStartupGarbage();
    const held = [];
    for (let i = 0; i < 40; i++) held.push(new Array(25_000).fill(i));
    for (let i = 0; i < 8; i++) held.push(new ArrayBuffer(4 << 20));
    await new Promise((r) => setTimeout(r, 300));
    console.log("held " + held.length);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", `${v8Flags},--trace-gc`, code],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /held 48/);
  return text.split("\n").filter((l) => /Mark-Compact/.test(l) && !/testing/.test(l)).length;
}

Deno.test("NSM_V8_FLAGS' first old-generation limit keeps V8 from marking when the first connection's memory arrives after the start-up GC", async () => {
  assert.equal(await markCompactsAfterGrowth(NSM_V8_FLAGS), 0);
  // The same flags without the limit: V8 marks and compacts (what the NSM did ~270 ms in).
  const without = NSM_V8_FLAGS.replace(`,--initial-old-space-size=${NSM_INITIAL_OLD_SPACE_MB}`, "");
  assert.notEqual(without, NSM_V8_FLAGS);
  assert.ok(await markCompactsAfterGrowth(without) >= 1);
});
