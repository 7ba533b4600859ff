/**
 * The congestion-control modules the NSM loads at start: the WebAssembly builds in cc/dist/
 * (`deno task build:cc`), registered under their names (cubic, dctcp, bbr, aimd) next to the
 * built-in reno. `deno task image` embeds the same directory (`deno compile --include`), so
 * the compiled NSM finds them at the same module-relative URL.
 *
 * @module
 */

import type { CcHost } from "../cc/host.ts";

/** Where the built modules live, relative to this file (also inside a compiled image). */
export const CC_DIST_URL: URL = new URL("../cc/dist/", import.meta.url);

/** Modules loaded at start, in order (reno is built in). */
export const BUNDLED_CC: readonly string[] = ["cubic", "dctcp", "bbr", "aimd"];

/** What `loadBundledCc` did. */
export interface BundledCcResult {
  /** Names registered. */
  readonly loaded: string[];
  /** Names not found or refused, with why. */
  readonly missing: { name: string; why: string }[];
}

/**
 * Loads and registers every bundled module found in `dir` (default `CC_DIST_URL`) into
 * `host`. Synchronous (start-up only). A missing module is reported, not thrown: the NSM
 * still runs with what it has (reno at least).
 */
export function loadBundledCc(host: CcHost, dir: URL = CC_DIST_URL): BundledCcResult {
  const loaded: string[] = [];
  const missing: { name: string; why: string }[] = [];
  for (const name of BUNDLED_CC) {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(new URL(`${name}.wasm`, dir));
    } catch (e) {
      missing.push({
        name,
        why: e instanceof Deno.errors.NotFound
          ? `not built (run deno task build:cc)`
          : e instanceof Error
          ? e.message
          : String(e),
      });
      continue;
    }
    try {
      host.register(host.loadBytes(bytes), name);
      loaded.push(name);
    } catch (e) {
      missing.push({ name, why: e instanceof Error ? e.message : String(e) });
    }
  }
  return { loaded, missing };
}
