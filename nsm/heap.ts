/**
 * The NSM's heap sizing. V8 starts the young generation at 1 MB per semi-space and grows it only
 * when many objects survive; an NSM's garbage all dies young, so it stayed at a few MB and the
 * trickle that remains on a bulk transfer made a scavenge every few seconds. The data path
 * still boxes an instant per loop step (most of the ~0.17 MB/s sampled receiving 4 Gbit/s,
 * bench/RESULTS.md "Session 6"); with 32 MB semi-spaces from the start a 60 s bulk receive
 * ran into one scavenge (at 51 s, 9 ms, when it allocated ~0.25 MB/s), for 64 MB of address
 * space. (16 MB gave one
 * every ~10-25 s receiving: V8 scavenges when about half the new space is used.)
 * Every launcher of `nsm/cli.ts` passes `NSM_V8_FLAGS` (`deno task nsm`, the image, the
 * benchmarks, the tests' NsmProcess); the CLI says so on stderr when it runs without them.
 *
 * @module
 */

import { getHeapSpaceStatistics } from "node:v8";

/** Young-generation size the NSM runs with, per semi-space, MB. */
export const NSM_SEMI_SPACE_MB = 32;

/** The old generation's first limit, MB (see `NSM_V8_FLAGS`). */
export const NSM_INITIAL_OLD_SPACE_MB = 64;

/**
 * The V8 flags of the NSM process, as a `deno run` argument. `--no-memory-reducer`: V8's memory
 * reducer takes a low allocation rate for idleness and runs full mark-compacts to shrink the
 * heap; with the data path's garbage this low it did so under full load, two 3-5 ms pauses
 * ~30 s into a bulk transfer (bench/RESULTS.md). `--expose-gc`: for `collectStartupGarbage()`.
 * `--initial-old-space-size`: after that full GC V8 set the old generation's limit just above
 * what start-up left (~9 MB), and the first connection's buffers and kept views took it past:
 * an incremental mark-compact ~270 ms after start, 1.9-2.6 ms paused plus marking steps, in 3 of
 * 4 transfers (gc_nsm.ts --warmup 0 --show-gc); none in 4 with a 64 MB first limit.
 */
export const NSM_V8_FLAGS =
  `--v8-flags=--min-semi-space-size=${NSM_SEMI_SPACE_MB},--no-memory-reducer,--expose-gc,` +
  `--initial-old-space-size=${NSM_INITIAL_OLD_SPACE_MB}`;

/**
 * Collects the start-up's garbage (module loading, the stack's set-up) with a full GC when the
 * process runs with `--expose-gc` (`NSM_V8_FLAGS`), before the NSM serves: without it, what
 * start-up left in the young generation brought the first scavenge of a bulk transfer forward,
 * into its first seconds. True when it ran.
 */
export function collectStartupGarbage(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") return false;
  gc();
  return true;
}

/** Bytes the young generation's new space can hold now (used plus available). */
export function youngGenerationBytes(): number {
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === "new_space") return s.space_used_size + s.space_available_size;
  }
  return 0;
}

/**
 * A hint for the log when the process runs with a smaller young generation than
 * `NSM_V8_FLAGS` gives (started as plain `deno run nsm/cli.ts`), else null.
 */
export function heapSizingHint(): string | null {
  const mb = youngGenerationBytes() / (1 << 20);
  if (mb >= NSM_SEMI_SPACE_MB * 0.9) return null;
  return `note: young generation ${mb.toFixed(1)} MB; run with ${NSM_V8_FLAGS} ` +
    `(deno task nsm does) for fewer garbage-collection pauses under load`;
}
