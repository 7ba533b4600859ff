/**
 * The driver loop's deadline question allocates nothing: NsmRuntime asks
 * `Interface.pollAtInto()` after each idle step (thousands of times a second under load), and
 * an instant returned, or merged from several places into one local, was a heap number per
 * call (16 B each for the neighbour cache and for TCP's timer heap; 105 KB/s of an NSM's
 * garbage receiving at 4.7 Gbit/s, sampled with bench/e2e/gc_nsm.ts --sample).
 */

import assert from "node:assert/strict";

Deno.test("Interface.pollAtInto() with a resolved neighbour and a TCP timer allocates nothing per call", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64",
      new URL("./support/deadline_alloc_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    deadline: number;
    askedBytes: number;
    returnedBytes: number;
  };
  // The retransmission timer of the connection's SYN, 1 s after its instant (5e9 ns).
  assert.equal(r.deadline, 6e9 + 0.5);
  // The measurement sees a heap number per call.
  assert.ok(r.returnedBytes > 8, `control: ${r.returnedBytes} B per call`);
  // 0.05 B measured; 16 B with either of the two boxes, 32 with both.
  assert.ok(r.askedBytes < 2, `pollAtInto: ${r.askedBytes} B per call`);
});
