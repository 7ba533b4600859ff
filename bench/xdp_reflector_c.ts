/**
 * The C baseline next to the TypeScript reflector, in the same run: builds
 * `bench/xdp_reflector_c.c` (libxdp + libbpf, clang) into bench/out/, runs it on the NSM end
 * of a fresh veth lab against the TypeScript generator of `bench/xdp_reflector.ts` on the
 * peer end, then runs `bench/xdp_reflector.ts` itself (TypeScript reflector, same generator,
 * same sizes) and prints both with the TypeScript/C ratios.
 *
 * ```text
 * sudo deno run -A bench/xdp_reflector_c.ts [--seconds 5] [--size 60] [--ring 2048] [--batch 64]
 * ```
 *
 * Needs root, iproute2, clang, pkg-config, and the Debian packages libxdp-dev and libbpf-dev.
 * Both reflectors use copy mode and generic (skb) XDP on veth (the drivers' default there).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Lab } from "../xdp/lab.ts";

const HERE = new URL(".", import.meta.url).pathname;
const SRC = `${HERE}xdp_reflector_c.c`;
const OUT_DIR = `${HERE}out`;
const BIN = `${OUT_DIR}/xdp_reflector_c`;
const TS_REFLECTOR = `${HERE}xdp_reflector.ts`;

const dec = new TextDecoder();

async function sh(cmd: string[], what: string): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, { args: cmd.slice(1), stderr: "piped" }).output()
    .catch((e) => {
      throw new Error(`${what}: cannot run ${cmd[0]} (${e}); install it (Debian: see header)`);
    });
  if (!out.success) throw new Error(`${what} failed: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/** Compiles the C reflector when the binary is missing or older than its source. */
async function build(): Promise<void> {
  const src = await Deno.stat(SRC);
  const bin = await Deno.stat(BIN).catch(() => null);
  if (bin !== null && bin.mtime !== null && src.mtime !== null && bin.mtime >= src.mtime) return;
  await Deno.mkdir(OUT_DIR, { recursive: true });
  const flags = (await sh(
    ["pkg-config", "--cflags", "--libs", "libxdp", "libbpf"],
    "pkg-config libxdp libbpf (apt-get install libxdp-dev libbpf-dev pkg-config)",
  )).trim().split(/\s+/);
  await sh(["clang", "-O2", "-Wall", "-o", BIN, SRC, ...flags], "clang");
}

async function runC(o: Record<string, string>): Promise<Record<string, unknown>> {
  await using lab = await Lab.up({ offloads: "off" });
  const refl = new Deno.Command(BIN, {
    args: [lab.nsmIf, o.seconds!, o.batch!, o.ring!, "skb"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const gen = new Deno.Command("ip", {
    args: [
      ...["netns", "exec", lab.peerNs, Deno.execPath(), "run", "-A", TS_REFLECTOR, "gen"],
      ...["--ifname", lab.peerIf, "--dst-mac", lab.nsmMac, "--seconds", o.seconds!],
      ...["--size", o.size!, "--ring", o.ring!, "--batch", o.batch!, "--attach", "auto"],
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const genOut = await gen.output();
  try {
    refl.kill("SIGTERM");
  } catch { /* already gone */ }
  const reflOut = await refl.output();
  const line = dec.decode(reflOut.stdout).trim().split("\n").pop() ?? "";
  if (!line.startsWith("{")) {
    throw new Error(`C reflector failed: ${dec.decode(reflOut.stderr)}`);
  }
  const result = JSON.parse(line) as Record<string, unknown>;
  const g = dec.decode(genOut.stdout).trim().split("\n").pop() ?? "";
  result.generator = g.startsWith("{") ? JSON.parse(g) : dec.decode(genOut.stderr).slice(0, 300);
  return result;
}

async function runTs(o: Record<string, string>): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", TS_REFLECTOR, "--seconds", o.seconds!, "--size", o.size!],
      ...["--ring", o.ring!, "--batch", o.batch!],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = dec.decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!line.startsWith("{")) throw new Error(`TS reflector failed: ${dec.decode(out.stderr)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seconds: { type: "string", default: "5" },
      size: { type: "string", default: "60" },
      ring: { type: "string", default: "2048" },
      batch: { type: "string", default: "64" },
    },
  });
  const o = values as Record<string, string>;
  await build();
  const c = await runC(o);
  const ts = await runTs(o);
  const ratio = (k: string): number => Number(((ts[k] as number) / (c[k] as number)).toFixed(3));
  console.log(JSON.stringify({ c, ts }));
  console.log(
    `UDP reflector, ${o.size}-byte frames, copy mode + skb XDP on veth, ${o.seconds} s:\n` +
      `  C (libxdp):  ${c.reflectedPps} pps reflected, ${c.busyNsPerFrame} ns/frame busy\n` +
      `  TypeScript:  ${ts.reflectedPps} pps reflected, ${ts.busyNsPerFrame} ns/frame busy\n` +
      `  TS/C: reflectedPps ${ratio("reflectedPps")}, ` +
      `capacityPpsOneCore ${ratio("capacityPpsOneCore")}`,
  );
}
