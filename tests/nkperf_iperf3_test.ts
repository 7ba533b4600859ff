/**
 * nkperf against a stock iperf3 (Debian's iperf3, 3.12 here), in both roles, on Deno's sockets.
 * Each test builds its own pair of network namespaces joined by a veth pair (198.18.0.0/15
 * addresses, names unique per process and test), runs one side in each, parses both sides' -J
 * output and checks that the byte counts agree; the namespaces are deleted on every path.
 *
 * @module
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";

const gate = needsAll(needsRoot(), needsTool("ip"), needsTool("iperf3"), needsTool("ss"));
const CLI = new URL("../guest/nkperf/cli.ts", import.meta.url).pathname;
const ADDR_A = "198.18.77.1";
const ADDR_B = "198.18.77.2";
const PROC_TIMEOUT_MS = 40_000;

let pairCount = 0;

interface Pair {
  readonly a: string;
  readonly b: string;
}

async function run(args: string[], timeoutMs = 10_000): Promise<string> {
  const out = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text;
}

/** Runs `fn` with two fresh namespaces A (198.18.77.1) and B (198.18.77.2); always cleans up. */
async function withPair(fn: (p: Pair) => Promise<void>): Promise<void> {
  const tag = `${Deno.pid % 100000}${pairCount++}`;
  const p: Pair = { a: `nkpfa${tag}`, b: `nkpfb${tag}` };
  const va = `nka${tag}`;
  const vb = `nkb${tag}`;
  const made: string[] = [];
  try {
    for (const ns of [p.a, p.b]) {
      await run(["ip", "netns", "add", ns]);
      made.push(ns);
    }
    await run([
      "ip",
      "link",
      "add",
      va,
      "netns",
      p.a,
      "type",
      "veth",
      "peer",
      "name",
      vb,
      "netns",
      p.b,
    ]); // deno-fmt-ignore
    await run(["ip", "-n", p.a, "addr", "add", `${ADDR_A}/30`, "dev", va]);
    await run(["ip", "-n", p.b, "addr", "add", `${ADDR_B}/30`, "dev", vb]);
    for (const [ns, dev] of [[p.a, va], [p.b, vb]] as const) {
      await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      await run(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    await fn(p);
  } finally {
    for (const ns of made) {
      await run(["ip", "netns", "del", ns]).catch(() => {});
    }
  }
}

/** A background process in a namespace whose stdout is collected. */
function spawnIn(ns: string, cmd: string[]): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...cmd],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(PROC_TIMEOUT_MS),
  }).spawn();
}

async function finish(child: Deno.ChildProcess, what: string): Promise<Json> {
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  let j: Json;
  try {
    j = JSON.parse(stdout) as Json;
  } catch {
    throw new Error(`${what} printed no JSON (exit ${out.code}): ${stdout}\n${stderr}`);
  }
  assert.equal(j.error, undefined, `${what} reported an error: ${String(j.error)}`);
  assert.ok(out.success, `${what} exited with ${out.code}: ${stderr}`);
  return j;
}

/** Waits (bounded) until something listens on TCP `port` in `ns`. */
async function waitListening(ns: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const out = await run(["ip", "netns", "exec", ns, "ss", "-Hltn", `sport = :${port}`]);
    if (out.trim() !== "") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listened on port ${port} in ${ns} within 10 s`);
}

/** Waits (bounded, 30 s) until `count` TCP connections to local `port` in `ns` are established. */
async function waitEstablished(ns: string, port: number, count: number): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const out = await run([
      ...["ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", `sport = :${port}`],
    ]);
    if (out.trim().split("\n").filter((l) => l !== "").length >= count) return;
    if (Date.now() > until) throw new Error(`not ${count} connections on ${port} in ${ns}: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Json = Record<string, unknown>;
type Sum = { bytes: number; seconds: number; bits_per_second: number };
const sum = (j: Json, k: "sum_sent" | "sum_received"): Sum => (j.end as Json)[k] as Sum;
const streams = (j: Json): Json[] => (j.end as Json).streams as Json[];
const nkperf = (...args: string[]): string[] => [Deno.execPath(), "run", "-A", CLI, ...args];
const gbps = (s: Sum): string => (s.bits_per_second / 1e9).toFixed(2);

// Rates printed for the report; the assertions only check that the counts agree.
function log(what: string, sent: Sum, received: Sum): void {
  console.log(
    `  ${what}: sent ${sent.bytes} B (${gbps(sent)} Gbit/s), received ${received.bytes} B (${
      gbps(received)
    } Gbit/s)`,
  );
}

/** A test that needs root, ip, iperf3 and ss, run inside a fresh namespace pair. */
function pairTest(name: string, body: (p: Pair) => Promise<void>): void {
  Deno.test({
    name,
    ignore: gate.ignore,
    async fn(): Promise<void> {
      gate.assert();
      await withPair(body);
    },
  });
}

/**
 * Starts `serverCmd` in B, waits until it listens on 5201, runs `clientCmd` in A, and returns
 * both -J reports (client's first, as each test awaits them in that order).
 */
async function runTest(
  p: Pair,
  serverCmd: string[],
  serverWhat: string,
  clientCmd: string[],
  clientWhat: string,
): Promise<{ cj: Json; sj: Json }> {
  const server = spawnIn(p.b, serverCmd);
  await waitListening(p.b, 5201);
  const client = spawnIn(p.a, clientCmd);
  const cj = await finish(client, clientWhat);
  const sj = await finish(server, serverWhat);
  return { cj, sj };
}

/** Both directions moved data and the server's sums equal the client's. */
function assertSumsAgree(cj: Json, sj: Json): void {
  for (const k of ["sum_sent", "sum_received"] as const) {
    assert.ok(sum(cj, k).bytes > 0, k);
    assert.equal(sum(sj, k).bytes, sum(cj, k).bytes, k);
  }
}

pairTest(
  "nkperf -c -t 2 -J against iperf3 -s -1: the receiver's count reaches both reports",
  async (p) => {
    const { cj, sj } = await runTest(
      p,
      ["iperf3", "-s", "-1", "-J"],
      "iperf3 server",
      nkperf("-c", ADDR_B, "-t", "2", "-J"),
      "nkperf client",
    );
    const sent = sum(cj, "sum_sent");
    const received = sum(cj, "sum_received");
    assert.ok(sent.bytes > 0);
    assert.ok(received.bytes > 0 && received.bytes <= sent.bytes);
    // iperf 3.12's server reports what it received; our client learnt it in the exchange.
    assert.equal(sum(sj, "sum_received").bytes, received.bytes);
    assert.ok(sent.seconds >= 1.9 && sent.seconds < 3, `duration ${sent.seconds}`);
    assert.ok((cj.intervals as Json[]).length >= 2);
    log("nkperf -> iperf3", sent, received);
  },
);

pairTest(
  "nkperf -c -P 2 -R -J against iperf3 -s -1: iperf3 sends, both count the same bytes",
  async (p) => {
    const { cj, sj } = await runTest(
      p,
      ["iperf3", "-s", "-1", "-J"],
      "iperf3 server",
      nkperf("-c", ADDR_B, "-t", "2", "-P", "2", "-R", "-J"),
      "nkperf client",
    );
    assert.equal(streams(cj).length, 2);
    assert.equal(streams(sj).length, 2);
    const sent = sum(cj, "sum_sent");
    const received = sum(cj, "sum_received");
    assert.ok(received.bytes > 0 && received.bytes <= sent.bytes);
    // iperf 3.12's server reports what it sent; our client learnt it in the exchange.
    assert.equal(sum(sj, "sum_sent").bytes, sent.bytes);
    log("iperf3 -R -P 2 -> nkperf", sent, received);
  },
);

pairTest(
  "iperf3 -c -t 2 -P 2 -J against nkperf -s -1 -J: both reports agree on every count",
  async (p) => {
    const { cj, sj } = await runTest(
      p,
      nkperf("-s", "-1", "-J"),
      "nkperf server",
      ["iperf3", "-c", ADDR_B, "-t", "2", "-P", "2", "-J"],
      "iperf3 client",
    );
    assertSumsAgree(cj, sj);
    assert.ok(sum(sj, "sum_received").bytes <= sum(sj, "sum_sent").bytes);
    assert.deepEqual(
      streams(sj).map((s) => (s.receiver as Json).bytes),
      streams(cj).map((s) => (s.receiver as Json).bytes),
    );
    log("iperf3 -P 2 -> nkperf", sum(cj, "sum_sent"), sum(cj, "sum_received"));
  },
);

pairTest(
  "iperf3 -c -R -J against nkperf -s -1 -J: nkperf sends and both reports agree",
  async (p) => {
    const { cj, sj } = await runTest(
      p,
      nkperf("-s", "-1", "-J"),
      "nkperf server",
      ["iperf3", "-c", ADDR_B, "-t", "2", "-R", "-J"],
      "iperf3 client",
    );
    assertSumsAgree(cj, sj);
    assert.equal(((sj.start as Json).test_start as Json).reverse, 1);
    log("nkperf -R -> iperf3", sum(cj, "sum_sent"), sum(cj, "sum_received"));
  },
);

pairTest(
  "a second iperf3 client while nkperf -s runs a test is refused (ACCESS_DENIED)",
  async (p) => {
    const server = spawnIn(p.b, nkperf("-s", "-1", "-J"));
    await waitListening(p.b, 5201);
    // 4 s keeps the first test running well past the second client's attempt.
    const first = spawnIn(p.a, ["iperf3", "-c", ADDR_B, "-t", "4", "-J"]);
    // The first test runs once its data stream is connected (the server accepts it only
    // after taking the control connection): wait for both (bounded) instead of a fixed 700 ms
    // that a loaded machine can outlast, which let the second client win the server.
    await waitEstablished(p.b, 5201, 2);
    const second = await new Deno.Command("ip", {
      args: ["netns", "exec", p.a, "iperf3", "-c", ADDR_B, "-t", "1", "-J"],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(PROC_TIMEOUT_MS),
    }).output();
    const sj2 = JSON.parse(new TextDecoder().decode(second.stdout)) as Json;
    assert.match(String(sj2.error), /busy/);
    await finish(first, "iperf3 client");
    await finish(server, "nkperf server");
  },
);

pairTest(
  "iperf3 -c -O 1 -t 1 -J against nkperf -s -1 -J: the omitted second is left out on both",
  async (p) => {
    const { cj, sj } = await runTest(
      p,
      nkperf("-s", "-1", "-J"),
      "nkperf server",
      ["iperf3", "-c", ADDR_B, "-t", "1", "-O", "1", "-J"],
      "iperf3 client",
    );
    assert.equal(sum(sj, "sum_sent").bytes, sum(cj, "sum_sent").bytes);
    assert.equal(sum(sj, "sum_received").bytes, sum(cj, "sum_received").bytes);
    // Only the measured second counts, not the two seconds the data flowed.
    const received = sum(sj, "sum_received");
    // Counting the omitted second would give >= 2; below that, allow a loaded machine to end
    // the measured second late (the bound was 1.5).
    assert.ok(received.seconds > 0.9 && received.seconds < 1.9, `seconds ${received.seconds}`);
    const ivs = sj.intervals as Json[];
    assert.equal((ivs[0]!.sum as Json).omitted, true);
    assert.equal((ivs.at(-1)!.sum as Json).omitted, false);
  },
);
