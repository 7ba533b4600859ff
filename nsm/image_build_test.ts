import assert from "node:assert/strict";
import {
  compileArgs,
  denortUnusable,
  ImageArgsError,
  imageSourceFiles,
  parseImageArgs,
  WORKER_MODULES,
} from "./image_build.ts";

Deno.test("parseImageArgs() defaults to out/nsm-image, kind auto; reads --output/--target/--kind", () => {
  assert.deepEqual(parseImageArgs([]), {
    output: "out/nsm-image",
    target: undefined,
    kind: "auto",
  });
  assert.deepEqual(parseImageArgs(["-o", "x", "--target", "t", "--kind", "sfx"]), {
    output: "x",
    target: "t",
    kind: "sfx",
  });
  assert.throws(() => parseImageArgs(["--kind", "zip"]), ImageArgsError);
});

Deno.test("denortUnusable() refuses DENORT_BIN pointing at the full deno CLI (its image is a REPL)", async () => {
  const old = Deno.env.get("DENORT_BIN");
  try {
    Deno.env.set("DENORT_BIN", Deno.execPath());
    assert.match((await denortUnusable()) ?? "", /is the full deno CLI, not denort/);
    Deno.env.delete("DENORT_BIN");
    assert.equal(await denortUnusable(), undefined);
  } finally {
    if (old !== undefined) Deno.env.set("DENORT_BIN", old);
    else Deno.env.delete("DENORT_BIN");
  }
});

Deno.test("the image carries the worker modules no import reaches: compile includes them, the self-extractor's file list has them and their imports", async () => {
  const root = new URL("../", import.meta.url);
  const args = compileArgs({ output: "out/x", target: undefined, kind: "compile" }, root);
  for (const m of WORKER_MODULES) {
    const i = args.indexOf(new URL(m, root).pathname);
    assert.ok(i > 0 && args[i - 1] === "--include", `${m} in ${args.join(" ")}`);
  }
  const files = await imageSourceFiles(root);
  for (const m of WORKER_MODULES) assert.ok(files.includes(m), m);
  assert.ok(files.includes("nsm/sleeper.ts")); // imported by the sleeper's worker (and the NSM)
  assert.ok(files.includes("nsm/image_main.ts"));
  assert.equal(new Set(files).size, files.length, "no file twice");
});
