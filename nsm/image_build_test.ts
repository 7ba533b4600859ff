import assert from "node:assert/strict";
import { denortUnusable, ImageArgsError, parseImageArgs } from "./image_build.ts";

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
