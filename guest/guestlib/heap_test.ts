import assert from "node:assert/strict";
import { GUEST_SEMI_SPACE_MB, GUEST_V8_FLAGS } from "./heap.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task nkperf and deno task nkcat run their CLIs with exactly GUEST_V8_FLAGS", async () => {
  const tasks = (JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    tasks: Record<string, string>;
  }).tasks;
  for (const name of ["nkperf", "nkcat"]) {
    const words = tasks[name]!.split(" ");
    assert.ok(words.includes(GUEST_V8_FLAGS), `${tasks[name]} vs ${GUEST_V8_FLAGS}`);
  }
  assert.equal(
    GUEST_V8_FLAGS,
    `--v8-flags=--min-semi-space-size=${GUEST_SEMI_SPACE_MB},--no-memory-reducer`,
  );
});

Deno.test("GUEST_V8_FLAGS gives a program a 16 MB young generation (V8 starts it at 1 MB)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      GUEST_V8_FLAGS,
      `import { getHeapSpaceStatistics } from "node:v8";
       const s = getHeapSpaceStatistics().find((x) => x.space_name === "new_space");
       console.log(s ? s.space_used_size + s.space_available_size : -1);`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const bytes = Number(new TextDecoder().decode(out.stdout).trim());
  assert.ok(bytes >= GUEST_SEMI_SPACE_MB * 2 ** 20 * 0.9, `new space ${bytes} B`);
});
