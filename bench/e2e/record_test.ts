import assert from "node:assert/strict";
import { bulkClientArgs, RECORD_HEADING, recordRun } from "./main.ts";

const run = (date: string) => ({
  date,
  machine: "AMD EPYC, 2 vCPU, Linux 6.18.44",
  command: "deno task bench:e2e --repeat 3",
  table: "| test | unit |\n| ---- | ---- |\n| rr_1b | trans/s |",
});

Deno.test("recordRun() appends a run under one recorded-runs section, made once at the end of RESULTS.md", () => {
  const before = "# Benchmark results\n\n## Wire layer\n\ntext";
  const once = recordRun(before, run("2026-11-26T08:00:00Z"));
  assert.ok(once.startsWith(before + "\n"), "existing text kept as it was");
  assert.equal(once.split(RECORD_HEADING).length, 2, "the section heading once");
  assert.match(once, /### 2026-11-26T08:00:00Z\n\nAMD EPYC, 2 vCPU, Linux 6\.18\.44\n/);
  assert.match(once, /`deno task bench:e2e --repeat 3`\n\n\| test \| unit \|/);
  const twice = recordRun(once, run("2026-11-26T09:00:00Z"));
  assert.equal(twice.split(RECORD_HEADING).length, 2, "still one heading after a second run");
  assert.ok(twice.startsWith(once), "earlier runs are kept");
  assert.ok(
    twice.indexOf("### 2026-11-26T08:00:00Z") < twice.indexOf("### 2026-11-26T09:00:00Z"),
    "runs in order",
  );
});

Deno.test("bulkClientArgs() adds iperf3's -O only for --omit > 0, for iperf3 and nkperf alike", () => {
  assert.deepEqual(bulkClientArgs("198.18.0.2", 5201, 3, 0), [
    ...["-c", "198.18.0.2", "-p", "5201", "-t", "3", "-J"],
  ]);
  assert.deepEqual(bulkClientArgs("198.18.0.2", 5201, 3, 2).slice(-2), ["-O", "2"]);
});
