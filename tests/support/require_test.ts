import assert from "node:assert/strict";
import { findTool, MissingRequirementError, needsAll, needsTool } from "./require.ts";

/** Runs `fn` with CI set to `value` (or unset), restoring the previous value afterwards. */
function withCi(value: string | undefined, fn: () => void): void {
  const before = Deno.env.get("CI");
  try {
    if (value === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", value);
    fn();
  } finally {
    if (before === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", before);
  }
}

Deno.test("needsTool ignores a test locally when the tool is missing", () => {
  withCi(undefined, () => {
    const r = needsTool("no-such-tool-for-netkernel-tests");
    assert.equal(r.available, false);
    assert.equal(r.ignore, true);
    assert.match(r.missing ?? "", /no-such-tool/);
  });
});

Deno.test("needsTool under CI=true does not ignore and assert() throws MissingRequirementError", () => {
  withCi("true", () => {
    const r = needsTool("no-such-tool-for-netkernel-tests");
    assert.equal(r.ignore, false);
    assert.throws(() => r.assert(), MissingRequirementError);
  });
});

Deno.test("needsTool finds a tool on PATH and its assert() passes", () => {
  const r = needsTool("sh");
  assert.equal(r.available, true);
  assert.equal(r.ignore, false);
  r.assert();
  assert.ok(findTool("sh")?.endsWith("/sh"));
});

Deno.test("needsAll is missing when any part is missing and names every missing part", () => {
  withCi(undefined, () => {
    const r = needsAll(needsTool("sh"), needsTool("no-such-a"), needsTool("no-such-b"));
    assert.equal(r.ignore, true);
    assert.match(r.missing ?? "", /no-such-a.*no-such-b/);
    assert.equal(needsAll(needsTool("sh")).available, true);
  });
});
