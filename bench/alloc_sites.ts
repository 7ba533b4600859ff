/**
 * Allocation sites from V8's `--trace-allocation-stack-interval=N` output: every Nth heap
 * allocation prints a JS stack; this groups the stacks by their innermost JavaScript frames
 * (builtins such as `subarray` or `Uint8Array` kept, exit/stub frames dropped) and prints the
 * sites by count, so the biggest allocator per packet comes first.
 *
 * ```text
 * deno run -A --v8-flags=--trace-allocation-stack-interval=997 bench/gc_steady.ts --child \
 *   --seconds 3 > /tmp/alloc.txt 2>&1
 * deno run -A bench/alloc_sites.ts /tmp/alloc.txt [--depth 3] [--top 30] [--match RE]
 *   [--exclude RE] [--per N]
 * ```
 *
 * `--match`/`--exclude` keep or drop whole stacks whose text matches (e.g. `--exclude
 * "runUntil.*,2000000000,"` drops the gc_steady warm-up); `--per N` also prints samples x
 * interval / N (allocations per frame when N is the frame count and `--interval` is given).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One frame's short name: `fn (file:line)` or the builtin's name. */
function frameName(line: string): string | null {
  const m = /^\s*\d+: (.*)$/.exec(line);
  if (m === null) return null;
  const body = m[1]!;
  if (
    /^(ExitFrame|StubFrame|InternalFrame|EntryFrame|FastConstructFrame|BuiltinExitFrame \[)/.test(
      body,
    )
  ) {
    return null;
  }
  const fn =
    /^(?:BuiltinExitFrame )?([^\[(]*?)(?:\(aka [^)]*\))?\s*[\[(]/.exec(body)?.[1]?.trim() ??
      body.slice(0, 40);
  const file = /\[file:\/\/\/[^\]]*?([^/\]]+):~?(\d+)\]/.exec(body);
  const off = /offset=(\d+)/.exec(body);
  return file === null ? fn : `${fn} (${file[1]}:${file[2]}${off === null ? "" : "@" + off[1]})`;
}

/** Groups the stacks of `text` by their innermost `depth` JS frames; count per key. */
export function allocationSites(
  text: string,
  depth: number,
  match: RegExp | null,
  exclude: RegExp | null,
): { sites: Map<string, number>; total: number } {
  const sites = new Map<string, number>();
  let total = 0;
  for (const block of text.split("==== JS stack trace").slice(1)) {
    if (match !== null && !match.test(block)) continue;
    if (exclude !== null && exclude.test(block)) continue;
    const names: string[] = [];
    for (const l of block.split("\n")) {
      if (l.startsWith("=====")) break;
      const n = frameName(l);
      if (n !== null) names.push(n);
      if (names.length === depth) break;
    }
    const key = names.join(" <- ");
    sites.set(key, (sites.get(key) ?? 0) + 1);
    total++;
  }
  return { sites, total };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      depth: { type: "string", default: "3" },
      top: { type: "string", default: "30" },
      match: { type: "string" },
      exclude: { type: "string" },
      per: { type: "string" },
      interval: { type: "string" },
    },
  });
  const text = await Deno.readTextFile(positionals[0] ?? "/dev/stdin");
  const { sites, total } = allocationSites(
    text,
    Number(values.depth),
    values.match !== undefined ? new RegExp(values.match, "s") : null,
    values.exclude !== undefined ? new RegExp(values.exclude, "s") : null,
  );
  const scale = values.per !== undefined && values.interval !== undefined
    ? Number(values.interval) / Number(values.per)
    : 0;
  console.log(
    `${total} samples` + (scale > 0 ? `, ${(total * scale).toFixed(2)} allocations per unit` : ""),
  );
  const rows = [...sites].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
  for (const [k, n] of rows) {
    console.log(
      `${String(n).padStart(6)}${scale > 0 ? (n * scale).toFixed(3).padStart(8) : ""}  ${k}`,
    );
  }
}
