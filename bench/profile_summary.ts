/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`) as self time per function and per
 * stage of the packet path, optionally divided by a packet count to give ns per packet.
 *
 *     deno run -A --cpu-prof --cpu-prof-dir=/tmp/prof bench/gc_steady.ts --child --seconds 5
 *     deno run -A bench/profile_summary.ts /tmp/prof/CPU.*.cpuprofile [--per 411184] [--top 30]
 *
 * Stages are assigned by source file and function name (first match wins, see `STAGES`);
 * V8 builtins such as `TypedArray.prototype.set` are charged to their JS caller by the
 * profiler's sampling only when inlined, otherwise they appear under their own name and are
 * listed as "builtins/other".
 *
 * @module
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Stage rules: [stage, file pattern, function pattern]. */
const STAGES: [string, RegExp, RegExp][] = [
  ["harness/app", /bench\/|tests\/support\/|sim\/(?!experiment)/, /.*/],
  ["checksum", /wire\/checksum(_simd)?\.ts/, /.*/],
  // The only WebAssembly in the TCP benches is the SIMD checksum (CC modules are wasm too).
  ["checksum", /^wasm:/, /.*/],
  ["wire parse", /wire\/(tcp|ipv4|ipv6|ethernet|bytes)\.ts/, /parse|payload|view|Span|set$/],
  ["emit (headers)", /wire\/(tcp|ipv4|ipv6|ethernet|bytes)\.ts/, /.*/],
  ["ring copy", /tcp\/ring\.ts/, /.*/],
  ["engine (recovery/CC)", /tcp\/recovery\//, /.*/],
  ["timers (heap)", /tcp\/timer_heap\.ts/, /.*/],
  [
    "demux + socket layer",
    /tcp\/stack\.ts/,
    /receive|lookup|tupleHash|changed|notify|recv|send|#conn|#sock|pollAt|poll|refresh|be32/,
  ],
  ["emit (segment)", /tcp\/stack\.ts/, /.*/],
  [
    "Tcb output",
    /tcp\/tcb\.ts/,
    /output|sendSegment|sendAck|window|tsClock|unsent|finPending|copySendData/,
  ],
  ["Tcb.process", /tcp\/(tcb|reassembly|seq)\.ts/, /.*/],
  ["IP/interface", /iface\//, /.*/],
  ["link", /link\/|xdp\//, /.*/],
  ["GC", /^$/, /garbage collector/],
  ["idle/program", /^$/, /^\((program|idle|root)\)$/],
];

function stageOf(f: CallFrame): string {
  for (const [name, file, fn] of STAGES) {
    if (file.test(f.url) && fn.test(f.functionName)) return name;
  }
  return f.url === "" ? "builtins/other" : "other JS";
}

/** Self time (µs) per "function (file:line)" and per stage. */
export function summarise(p: Profile): { fns: Map<string, number>; stages: Map<string, number> } {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  const fns = new Map<string, number>();
  const stages = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const file = f.url.replace(/^.*\/main\//, "");
    const key = `${f.functionName || "(anonymous)"} (${file}:${f.lineNumber + 1})`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const s = stageOf(f);
    stages.set(s, (stages.get(s) ?? 0) + us);
  }
  return { fns, stages };
}

if (import.meta.main) {
  const file = Deno.args.find((a) => a.endsWith(".cpuprofile"));
  if (file === undefined) {
    console.error("usage: profile_summary.ts FILE.cpuprofile [--per N] [--top N]");
    Deno.exit(2);
  }
  const opt = (n: string, d: number): number => {
    const i = Deno.args.indexOf(n);
    return i >= 0 ? Number(Deno.args[i + 1]) : d;
  };
  const per = opt("--per", 0);
  const top = opt("--top", 25);
  const { fns, stages } = summarise(JSON.parse(await Deno.readTextFile(file)) as Profile);
  let total = 0;
  for (const v of stages.values()) total += v;
  const fmt = (us: number): string =>
    `${(us / 1000).toFixed(1).padStart(8)} ms ${(100 * us / total).toFixed(1).padStart(5)}%` +
    (per > 0 ? ` ${((us * 1000) / per).toFixed(1).padStart(8)} ns/pkt` : "");
  console.log("stage");
  for (const [k, v] of [...stages].sort((a, b) => b[1] - a[1])) console.log(`${fmt(v)}  ${k}`);
  console.log(`${fmt(total)}  total\n\ntop functions (self time)`);
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${fmt(v)}  ${k}`);
  }
}
