/**
 * `deno task demo` (nsm/demo.ts) as a program: the simulated story (forced with
 * `NSM_DEMO_SIM=1`, what a machine without root runs), and as root the live story in a short
 * form (`--duration 4`: lab, NSM on AF_XDP, guest nkperf to Linux iperf3, two live swaps) plus
 * Ctrl-C in the middle of it (exit 130, lab gone).
 */

import assert from "node:assert/strict";
import { needsAll, needsRoot, needsTool } from "./support/require.ts";
import { parseDemoArgs } from "../nsm/demo.ts";

const DEMO = new URL("../nsm/demo.ts", import.meta.url).pathname;

async function runDemo(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DEMO, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function netnsList(): Promise<string> {
  const r = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(r.stdout);
}

Deno.test("parseDemoArgs() reads --duration/--out/--sim and NSM_DEMO_SIM; rejects bad values", () => {
  const none = (): undefined => undefined;
  assert.deepEqual(parseDemoArgs([], none), { duration: 20, sim: false, out: "out/demo.svg" });
  assert.deepEqual(parseDemoArgs(["--duration", "4", "--out=x.svg", "--sim"], none), {
    duration: 4,
    sim: true,
    out: "x.svg",
  });
  assert.equal(parseDemoArgs([], (n) => n === "NSM_DEMO_SIM" ? "1" : undefined).sim, true);
  assert.throws(() => parseDemoArgs(["--duration", "1"], none), /3\.\.600/);
  assert.throws(() => parseDemoArgs(["--bogus"], none), /unknown argument/);
});

Deno.test("deno task demo without the live lab (NSM_DEMO_SIM=1): the simulated story with live swaps, intact bytes and an SVG", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nsm-demo-sim-" });
  try {
    const svg = `${dir}/demo.svg`;
    const r = await runDemo(["--duration", "6", "--out", svg], { NSM_DEMO_SIM: "1" });
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /telling the same story over the simulated network/);
    assert.match(r.out, /time +cc +throughput +cwnd +rtt +retr/);
    // One line per virtual second, the cc in use changing at 2 s and 4 s (thirds of 6 s).
    const lines = r.out.split("\n").filter((l) => /^ +\d+\.0 s {2}\w+ +[\d.]+ Mbit\/s/.test(l));
    assert.equal(lines.length, 6, r.out);
    assert.match(lines[0]!, /cubic/);
    assert.match(lines[2]!, /bbr/);
    assert.match(lines[5]!, /dctcp/);
    assert.match(r.out, /swap cubic -> bbr \(live\)/);
    assert.match(r.out, /swap bbr -> dctcp \(live\)/);
    for (const cc of ["cubic", "bbr", "dctcp"]) {
      assert.match(r.out, new RegExp(`^  ${cc} +[\\d.]+ s +[\\d.]+ Mbit/s average`, "m"));
    }
    assert.match(r.out, /receiver's SHA-256 matches the sent stream; connection ESTABLISHED/);
    // Goodput near the simulated 50 Mbit/s bottleneck (40..50 over the run).
    const total = Number(/= ([\d.]+) Mbit\/s, one connection/.exec(r.out)![1]);
    assert.ok(total > 40 && total <= 50, `total ${total} Mbit/s`);
    const text = await Deno.readTextFile(svg);
    assert.match(text, /^<svg /);
    assert.match(text, /swap to bbr/);
    assert.match(text, /swap to dctcp/);
    for (const y of ["throughput (Mbit/s)", "cwnd (KB)", "smoothed RTT (ms)"]) {
      assert.ok(text.includes(y), y);
    }
    assert.equal((text.match(/<polyline/g) ?? []).length, 9); // 3 panels x 3 algorithms
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const live = needsAll(needsRoot(), needsTool("ip"), needsTool("iperf3"), needsTool("timeout"));

Deno.test({
  name:
    "deno task demo as root (--duration 4): lab, NSM on AF_XDP, guest nkperf to iperf3, two live swaps, SVG; Ctrl-C tears the lab down",
  ignore: live.ignore,
  async fn(): Promise<void> {
    live.assert();
    const dir = await Deno.makeTempDir({ prefix: "nsm-demo-live-" });
    try {
      const svg = `${dir}/demo.svg`;
      const r = await runDemo(["--duration", "4", "--out", svg]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.doesNotMatch(r.out, /simulated network/, r.out);
      assert.match(r.out, /NSM: ready link=xdp:\S+ /);
      assert.match(r.out, /ctl cc set bbr --guest \d+: tcp:\d+.* swapped live \(cubic -> bbr\)/);
      assert.match(r.out, /ctl cc set dctcp --guest \d+: .* swapped live \(bbr -> dctcp\)/);
      assert.match(r.out, /^ +\d+\.0 s {2}dctcp +[\d.]+ Mbit\/s/m);
      assert.match(r.out, /sender/); // nkperf's own summary (iperf3's accounting)
      assert.match(r.out, /total .* one connection, never dropped/);
      const name = /lab: namespaces (\w+)-nsm/.exec(r.out)![1]!;
      assert.match(r.out, new RegExp(`lab ${name} torn down`));
      assert.doesNotMatch(await netnsList(), new RegExp(name));
      const text = await Deno.readTextFile(svg);
      assert.match(text, /swap to bbr/);
      assert.match(text, /swap to dctcp/);

      // Ctrl-C in the middle: exit 130, everything removed.
      const p = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", DEMO, "--duration", "20", "--out", `${dir}/int.svg`],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      let out = "";
      const dec = new TextDecoder();
      const reader = (async () => {
        for await (const c of p.stdout) out += dec.decode(c, { stream: true });
      })();
      const end = Date.now() + 60_000;
      while (!/ 1\.0 s {2}cubic/.test(out) && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.match(out, / 1\.0 s {2}cubic/, out);
      p.kill("SIGINT");
      const st = await p.status;
      await reader;
      assert.equal(st.code, 130, out);
      const lab = /lab: namespaces (\w+)-nsm/.exec(out)![1]!;
      assert.match(out, new RegExp(`lab ${lab} torn down`));
      assert.doesNotMatch(await netnsList(), new RegExp(lab));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
