/**
 * V8's sampling heap profiler through `node:inspector`, counting objects that died young too
 * (`includeObjectsCollectedByMinorGC`), so short-lived garbage on a hot path shows up by site.
 *
 * Optimized code reports an allocation under the outermost function of an inlined group; run
 * with `--v8-flags=--no-turbo-inlining` to see the inner sites (which then over-counts heap
 * numbers that inlining would have kept unboxed: confirm a site in a normal run).
 *
 * ```ts
 * const s = startHeapSampling(128);
 * ... work ...
 * console.log(formatHeapSites(await stopHeapSampling(s), 3, 30, perUnit));
 * ```
 *
 * @module
 */

import inspector from "node:inspector";

/** A profile node as the inspector returns it. */
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** A running sampler. */
export interface HeapSampler {
  /** The inspector session the sampler runs on. */
  session: inspector.Session;
}

/** Starts sampling one allocation per `intervalBytes` on average (dead objects included). */
export function startHeapSampling(intervalBytes = 128): HeapSampler {
  const session = new inspector.Session();
  session.connect();
  session.post("HeapProfiler.startSampling", {
    samplingInterval: intervalBytes,
    includeObjectsCollectedByMinorGC: true,
    includeObjectsCollectedByMajorGC: true,
  });
  return { session };
}

/** Stops the sampler; returns bytes by site (innermost `depth` frames joined). */
export function stopHeapSampling(s: HeapSampler, depth = 3): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    s.session.post("HeapProfiler.stopSampling", (err, r) => {
      s.session.disconnect();
      if (err !== null) return reject(err);
      const sites = new Map<string, number>();
      const walk = (n: ProfileNode, path: string[]): void => {
        const f = n.callFrame;
        const file = f.url.slice(f.url.lastIndexOf("/") + 1);
        const name = `${f.functionName || "(anon)"}${
          file !== "" ? ` (${file}:${f.lineNumber + 1})` : ""
        }`;
        const p = [...path, name];
        if (n.selfSize > 0) {
          const key = p.slice(-depth).reverse().join(" <- ");
          sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
        }
        for (const c of n.children) walk(c, p);
      };
      walk((r as unknown as { profile: { head: ProfileNode } }).profile.head, []);
      resolve(sites);
    });
  });
}

/** The `top` sites by bytes, with bytes per `per` units (e.g. per data segment). */
export function formatHeapSites(sites: Map<string, number>, top: number, per: number): string {
  let total = 0;
  for (const v of sites.values()) total += v;
  const rows = [...sites].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = [`sampled ${total} B in all, ${(total / per).toFixed(1)} B per unit`];
  for (const [k, v] of rows) {
    lines.push(`${(v / per).toFixed(1).padStart(8)} B  ${k}`);
  }
  return lines.join("\n");
}
